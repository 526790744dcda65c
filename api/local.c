/*
 * The in-process stack behind the user API: storstack_create boots an executive, registers the
 * in-tree driver packages (vminiport, disk), loads the configuration into the registry and starts
 * PnP; each call then does what the Windows I/O manager does for the Win32 call of the same
 * shape: CreateFile sends IRP_MJ_CREATE to the top of the named device's stack, ReadFile and
 * WriteFile build IRPs with an MDL over the caller's buffer, DeviceIoControl builds a
 * METHOD_*-correct IRP, and access rights are checked against the handle first.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntddscsi.h>

#include "api/api_p.h"
#include "api/local.h"
#include "drivers/class/cdrom/cdrom.h"
#include "drivers/class/disk/disk.h"
#include "drivers/filter/faultinject/faultinject.h"
#include "drivers/miniport/vminiport/vminiport.h"
#include "kernel/executive.h"

/* With no configuration: one virtual adapter with a 1 GiB sparse RAM disk and an empty CD-ROM
 * drive (`storstack cdrom CdRom0 load IMAGE` puts a disc in). */
static const char local_default_config[] =
    "[Enum\\Root\\VMINIPORT\\0000]\n"
    "HardwareID = multi:ROOT\\VMINIPORT\n"
    "DeviceDesc = storstack virtual storage adapter\n"
    "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
    "Type = disk\n"
    "Backend = ram\n"
    "Size = 1G\n"
    "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target2\\Lun0]\n"
    "Type = cdrom\n";

static const DRIVER_PACKAGE local_packages[] = {
    {"vminiport", VminiportDriverEntry, VminiportInf},
    {"disk", DiskDriverEntry, DiskInf},
    {"cdrom", CdRomDriverEntry, CdRomInf},
    {"faultinject", FaultInjectDriverEntry, FaultInjectInf},
};

struct local_stack {
    struct storstack base;
    PEXECUTIVE ex;
    atomic_long in_flight; /* asynchronous requests not yet called back */
};

struct local_handle {
    struct storstack_handle base;
    struct local_stack *stack;
    PDEVICE_OBJECT top; /* referenced */
    FILE_OBJECT file;
    uint32_t access;
};

static const struct storstack_ops local_ops;

static void local_io_begin(struct local_stack *s)
{
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
}

static void local_io_end(struct local_stack *s)
{
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_release);
}

storstack_t *storstack_create(const char *config_path, char *err, size_t errlen)
{
    return storstack_create_ex(config_path, NULL, NULL, 0, err, errlen);
}

storstack_t *storstack_create_ex(const char *config_path, const char *config_text,
                                 const DRIVER_PACKAGE *extra, size_t extra_count, char *err,
                                 size_t errlen)
{
    struct local_stack *s = calloc(1, sizeof(*s));
    char error[512] = "";
    NTSTATUS status;

    if (err && errlen)
        err[0] = 0;
    if (!s) {
        if (err)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &local_ops;
    status = ExCreateExecutive(&s->ex);
    if (!NT_SUCCESS(status)) {
        snprintf(error, sizeof(error), "cannot create the executive (%s)",
                 storstack_status_name(status));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(local_packages) / sizeof(local_packages[0]); i++) {
        status = IoRegisterDriverPackage(s->ex, &local_packages[i]);
        if (!NT_SUCCESS(status)) {
            snprintf(error, sizeof(error), "driver package %s: manifest rejected (%s)",
                     local_packages[i].ServiceName, storstack_status_name(status));
            goto fail;
        }
    }
    for (size_t i = 0; i < extra_count; i++) {
        status = IoRegisterDriverPackage(s->ex, &extra[i]);
        if (!NT_SUCCESS(status)) {
            snprintf(error, sizeof(error), "driver package %s: rejected (%s)", extra[i].ServiceName,
                     storstack_status_name(status));
            goto fail;
        }
    }
    status =
        config_path ? CmLoadIniFile(s->ex, config_path, error, sizeof(error))
        : config_text
            ? CmLoadIniText(s->ex, config_text, "configuration", error, sizeof(error))
            : CmLoadIniText(s->ex, local_default_config, "built-in default", error, sizeof(error));
    if (!NT_SUCCESS(status))
        goto fail;
    status = PnpStartSystem(s->ex, error, sizeof(error));
    if (!NT_SUCCESS(status)) {
        if (!error[0])
            snprintf(error, sizeof(error), "the device tree did not start (%s)",
                     storstack_status_name(status));
        goto fail;
    }
    return &s->base;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", error);
    if (s->ex)
        ExDestroyExecutive(s->ex);
    free(s);
    return NULL;
}

static void local_destroy(storstack_t *stack)
{
    struct local_stack *s = (struct local_stack *)stack;
    /* Overlapped requests still running finish before the stack goes (the callers' buffers
     * stay theirs until the callback). Destroy is rare: a short poll is enough. */
    while (atomic_load_explicit(&s->in_flight, memory_order_acquire) != 0)
        usleep(1000);
    ExDestroyExecutive(s->ex);
    free(s);
}

/* Sends a no-data IRP (create, cleanup, close, flush) to the handle's device and waits. */
static NTSTATUS local_simple_irp(struct local_handle *h, UCHAR major)
{
    KEVENT event;
    IO_STATUS_BLOCK iosb = {0};
    PIRP irp;
    NTSTATUS status;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp = IoBuildSynchronousFsdRequest(major, h->top, NULL, 0, NULL, &event, &iosb);
    if (!irp) {
        KeDeleteEvent(&event);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    IoGetNextIrpStackLocation(irp)->FileObject = &h->file;
    if (major == IRP_MJ_CREATE)
        IoGetNextIrpStackLocation(irp)->Parameters.Create.DesiredAccess = h->access;
    irp->Tail.Overlay.OriginalFileObject = &h->file;
    IoCallDriver(h->top, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    status = iosb.Status;
    KeDeleteEvent(&event);
    return status;
}

static storstack_status_t local_open(storstack_t *stack, const char *name, uint32_t access,
                                     const struct storstack_identity *who, storstack_handle_t **out)
{
    struct local_stack *s = (struct local_stack *)stack;
    struct local_handle *h;
    PDEVICE_OBJECT dev;
    NTSTATUS status;

    if (access & ~(STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE))
        return STATUS_INVALID_PARAMETER;
    status = IoGetDeviceObjectPointer(s->ex, name, &dev);
    if (!NT_SUCCESS(status))
        return status;
    h = calloc(1, sizeof(*h));
    if (!h) {
        ObDereferenceObject(dev);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    h->base.stack = stack;
    h->stack = s;
    h->access = access;
    h->top = IoGetAttachedDeviceReference(dev);
    ObDereferenceObject(dev);
    IoInitializeFileObject(&h->file, h->top);
    if (who) {
        h->file.Caller.Nexus = who->nexus;
        snprintf(h->file.Caller.Principal, sizeof(h->file.Caller.Principal), "%s", who->principal);
        snprintf(h->file.Caller.TransportId, sizeof(h->file.Caller.TransportId), "%s",
                 who->transport_id ? who->transport_id : "");
    } else {
        snprintf(h->file.Caller.Principal, sizeof(h->file.Caller.Principal), "uid:%u",
                 (unsigned)getuid());
    }
    h->file.ReadAccess = (access & STORSTACK_GENERIC_READ) != 0;
    h->file.WriteAccess = (access & STORSTACK_GENERIC_WRITE) != 0;
    status = local_simple_irp(h, IRP_MJ_CREATE);
    if (!NT_SUCCESS(status)) {
        IoDeleteFileObject(&h->file);
        ObDereferenceObject(h->top);
        free(h);
        return status;
    }
    *out = &h->base;
    return STATUS_SUCCESS;
}

static storstack_status_t local_close(storstack_handle_t *handle)
{
    struct local_handle *h = (struct local_handle *)handle;
    local_simple_irp(h, IRP_MJ_CLEANUP);
    local_simple_irp(h, IRP_MJ_CLOSE);
    IoDeleteFileObject(&h->file);
    ObDereferenceObject(h->top);
    free(h);
    return STATUS_SUCCESS;
}

static storstack_status_t local_rw_async(storstack_handle_t *handle, int write, void *buf,
                                         uint32_t length, uint64_t offset,
                                         storstack_io_callback *callback, void *context);

static storstack_status_t local_flush(storstack_handle_t *handle)
{
    struct local_handle *h = (struct local_handle *)handle;
    if (!h->file.WriteAccess)
        return STATUS_ACCESS_DENIED;
    return local_simple_irp(h, IRP_MJ_FLUSH_BUFFERS);
}

static storstack_status_t local_ioctl(storstack_handle_t *handle, uint32_t code, const void *in,
                                      uint32_t in_length, void *out, uint32_t out_length,
                                      uint32_t *returned)
{
    struct local_handle *h = (struct local_handle *)handle;
    ULONG required = (code >> 14) & 3;
    KEVENT event;
    IO_STATUS_BLOCK iosb = {0};
    PIRP irp;

    *returned = 0;
    /* The I/O manager checks the IOCTL's required access against the handle. */
    if (((required & FILE_READ_ACCESS) && !h->file.ReadAccess) ||
        ((required & FILE_WRITE_ACCESS) && !h->file.WriteAccess))
        return STATUS_ACCESS_DENIED;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp = IoBuildDeviceIoControlRequest(code, h->top, (PVOID)in, in_length, out, out_length, FALSE,
                                        &event, &iosb);
    if (!irp) {
        KeDeleteEvent(&event);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    IoGetNextIrpStackLocation(irp)->FileObject = &h->file;
    IoCallDriver(h->top, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    if (!NT_ERROR(iosb.Status))
        *returned = (uint32_t)iosb.Information;
    return iosb.Status;
}

static storstack_status_t local_get_tree(storstack_t *stack, char **json)
{
    struct local_stack *s = (struct local_stack *)stack;
    IoSynchronizeDeviceRelations(s->ex);
    *json = PnpTreeToJson(s->ex);
    return *json ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

static storstack_status_t local_reg_get_string(storstack_t *stack, const char *key,
                                               const char *name, char *out, size_t out_length)
{
    struct local_stack *s = (struct local_stack *)stack;
    return RtlQueryRegistryString(s->ex, key, name, out,
                                  out_length > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ULONG)out_length);
}

static storstack_status_t local_ioctl_async(storstack_handle_t *handle, uint32_t code,
                                            const void *in, uint32_t in_length, void *out,
                                            uint32_t out_length, storstack_io_callback *callback,
                                            void *context);
static storstack_status_t local_cancel(storstack_handle_t *handle, int all, const void *context,
                                       uint32_t *cancelled);

static const struct storstack_ops local_ops = {
    .destroy = local_destroy,
    .open = local_open,
    .close = local_close,
    .rw_async = local_rw_async,
    .flush = local_flush,
    .ioctl = local_ioctl,
    .ioctl_async = local_ioctl_async,
    .cancel = local_cancel,
    .get_tree = local_get_tree,
    .reg_get_string = local_reg_get_string,
};

/* ---- Overlapped reads and writes ----------------------------------------------------------- */

/* Runs after the I/O manager freed the IRP: the caller's callback, its context, our stack. */
static void local_user_completion(PVOID Context[3], NTSTATUS Status, ULONG_PTR Information)
{
    storstack_io_callback *callback;
    memcpy(&callback, &Context[0], sizeof(callback));
    callback(Context[1], Status, Information);
    local_io_end(Context[2]);
}

static void local_set_user_completion(PIRP irp, struct local_handle *h,
                                      storstack_io_callback *callback, void *context);

static storstack_status_t local_rw_async(storstack_handle_t *handle, int write, void *buf,
                                         uint32_t length, uint64_t offset,
                                         storstack_io_callback *callback, void *context)
{
    struct local_handle *h = (struct local_handle *)handle;
    PIO_STACK_LOCATION sp;
    PIRP irp;

    if (write ? !h->file.WriteAccess : !h->file.ReadAccess)
        return STATUS_ACCESS_DENIED;
    if (length && !buf)
        return STATUS_INVALID_USER_BUFFER;
    if (offset > (uint64_t)INT64_MAX)
        return STATUS_INVALID_PARAMETER;
    irp = IoAllocateIrpForDevice(h->top); /* from the executive's IRP lookaside */
    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    irp->Flags |= IRP_IO_MANAGER_OWNED;
    local_set_user_completion(irp, h, callback, context);
    irp->UserBuffer = buf;
    if (length) {
        IoInitializeIrpMdl(irp, buf, length);
    }
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = write ? IRP_MJ_WRITE : IRP_MJ_READ;
    sp->FileObject = &h->file;
    sp->Parameters.Read.Length = length;
    sp->Parameters.Read.ByteOffset.QuadPart = (LONGLONG)offset;
    local_io_begin(h->stack);
    IoTrackIrp(irp); /* on the handle's list, for storstack_cancel */
    IoCallDriver(h->top, irp);
    return STATUS_PENDING;
}

/* ---- Overlapped DeviceIoControl and CancelIoEx ---------------------------------------------- */

static void local_set_user_completion(PIRP irp, struct local_handle *h,
                                      storstack_io_callback *callback, void *context)
{
    irp->UserCompletion.Routine = local_user_completion;
    memcpy(&irp->UserCompletion.Context[0], &callback, sizeof(callback));
    irp->UserCompletion.Context[1] = context;
    irp->UserCompletion.Context[2] = h->stack;
    irp->Tail.Overlay.OriginalFileObject = &h->file;
}

static storstack_status_t local_ioctl_async(storstack_handle_t *handle, uint32_t code,
                                            const void *in, uint32_t in_length, void *out,
                                            uint32_t out_length, storstack_io_callback *callback,
                                            void *context)
{
    struct local_handle *h = (struct local_handle *)handle;
    ULONG required = (code >> 14) & 3;
    PIRP irp;

    if (((required & FILE_READ_ACCESS) && !h->file.ReadAccess) ||
        ((required & FILE_WRITE_ACCESS) && !h->file.WriteAccess))
        return STATUS_ACCESS_DENIED;
    /* No event and no status block: the I/O manager calls local_user_completion instead. */
    irp = IoBuildDeviceIoControlRequest(code, h->top, (PVOID)in, in_length, out, out_length, FALSE,
                                        NULL, NULL);
    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    local_set_user_completion(irp, h, callback, context);
    IoGetNextIrpStackLocation(irp)->FileObject = &h->file;
    local_io_begin(h->stack);
    IoTrackIrp(irp);
    IoCallDriver(h->top, irp);
    return STATUS_PENDING;
}

struct local_cancel_match {
    int all;
    const void *context;
};

/* An IRP of this API (not one a driver sent on the same file object) with the caller's context. */
static BOOLEAN local_cancel_matches(PIRP Irp, PVOID Context)
{
    const struct local_cancel_match *m = Context;
    return Irp->UserCompletion.Routine == local_user_completion &&
           (m->all || Irp->UserCompletion.Context[1] == m->context);
}

static storstack_status_t local_cancel(storstack_handle_t *handle, int all, const void *context,
                                       uint32_t *cancelled)
{
    struct local_handle *h = (struct local_handle *)handle;
    struct local_cancel_match m = {all, context};
    *cancelled = IoCancelFileIrps(&h->file, local_cancel_matches, &m);
    return STATUS_SUCCESS;
}

PEXECUTIVE storstack_local_executive(storstack_t *stack)
{
    return stack && !stack->remote ? ((struct local_stack *)stack)->ex : NULL;
}
