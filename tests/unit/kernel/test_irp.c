/*
 * Unit tests of the I/O manager (kernel/iomgr.c) over a hand-built three-device stack (top,
 * middle, bottom) of one in-test driver whose per-device behaviour each test chooses: completion
 * routines run bottom-up with their own device object, SL_INVOKE_ON_SUCCESS/ERROR/CANCEL
 * filtering, STATUS_MORE_PROCESSING_REQUIRED stopping completion, PendingReturned propagation,
 * IoSkipCurrentIrpStackLocation, an IRP with no stack location left failing with
 * STATUS_DRIVER_INTERNAL_ERROR, the requests the I/O manager builds (IoBuildDeviceIoControlRequest
 * for METHOD_BUFFERED, METHOD_OUT_DIRECT and METHOD_NEITHER, IoBuildSynchronousFsdRequest), the
 * lookaside lists, and the object namespace (device names, symbolic links, collisions). Every
 * test ends with no device and no IRP left in the executive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/executive.h"

/* ---- The in-test driver -------------------------------------------------------------------- */

enum mode {
    MODE_COMPLETE,     /* complete with the device's Status and Information */
    MODE_PASS_ROUTINE, /* copy to next, set a completion routine, call the lower device */
    MODE_PASS_PLAIN,   /* copy to next without a routine, call the lower device */
    MODE_SKIP,         /* skip the location, call the lower device */
    MODE_PEND,         /* mark pending, keep the IRP, return STATUS_PENDING */
    MODE_CALL_GUARDED, /* call the lower device, setting up the next location only if one is left */
    MODE_IOCTL,        /* check and answer a built device I/O control request */
    MODE_READ,         /* answer a built read */
    MODE_PEND_CANCEL,  /* mark pending, keep the IRP with a cancel routine that completes it */
};

struct routine_cfg {
    int id;
    NTSTATUS ret;
    BOOLEAN propagate_pending;
    BOOLEAN on_success, on_error, on_cancel;
};

typedef struct _TEST_EXT {
    PDEVICE_OBJECT Lower;
    enum mode Mode;
    NTSTATUS Status;
    ULONG_PTR Information;
    struct routine_cfg Routine;
    int Dispatched;
    PIRP Kept;
    /* what the device saw */
    IO_STACK_LOCATION Seen;
    CHAR SeenLocation;
    PVOID SeenSystemBuffer;
    PMDL SeenMdl;
    PVOID SeenUserBuffer;
    UCHAR SeenInput[64];
    ULONG FillLength;
} TEST_EXT;

struct log_entry {
    int id;
    PDEVICE_OBJECT dev;
    BOOLEAN pending;
    NTSTATUS status;
};

static struct {
    int count;
    struct log_entry e[16];
} g_log;

static NTSTATUS record_completion(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    struct routine_cfg *cfg = Context;
    if (g_log.count < 16)
        g_log.e[g_log.count++] =
            (struct log_entry){cfg->id, DeviceObject, Irp->PendingReturned, Irp->IoStatus.Status};
    if (cfg->propagate_pending && Irp->PendingReturned)
        IoMarkIrpPending(Irp);
    return cfg->ret;
}

static int g_cancel_calls;
static PDEVICE_OBJECT g_cancel_dev;

/* The classic cancel routine: release the cancel lock, forget the IRP, complete it cancelled. */
static void test_cancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    TEST_EXT *ext = DeviceObject->DeviceExtension;
    IoReleaseCancelSpinLock(Irp->CancelIrql);
    g_cancel_calls++;
    g_cancel_dev = DeviceObject;
    if (ext->Kept == Irp)
        ext->Kept = NULL;
    Irp->IoStatus.Status = STATUS_CANCELLED;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
}

static NTSTATUS test_dispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    TEST_EXT *ext = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ext->Dispatched++;
    ext->Seen = *sp;
    ext->SeenLocation = Irp->CurrentLocation;
    switch (ext->Mode) {
    case MODE_COMPLETE:
        Irp->IoStatus.Status = ext->Status;
        Irp->IoStatus.Information = ext->Information;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return ext->Status;
    case MODE_PASS_ROUTINE:
        IoCopyCurrentIrpStackLocationToNext(Irp);
        IoSetCompletionRoutine(Irp, record_completion, &ext->Routine, ext->Routine.on_success,
                               ext->Routine.on_error, ext->Routine.on_cancel);
        return IoCallDriver(ext->Lower, Irp);
    case MODE_PASS_PLAIN:
        IoCopyCurrentIrpStackLocationToNext(Irp);
        return IoCallDriver(ext->Lower, Irp);
    case MODE_SKIP:
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(ext->Lower, Irp);
    case MODE_PEND:
        IoMarkIrpPending(Irp);
        ext->Kept = Irp;
        return STATUS_PENDING;
    case MODE_PEND_CANCEL:
        IoMarkIrpPending(Irp);
        ext->Kept = Irp;
        IoSetCancelRoutine(Irp, test_cancel);
        return STATUS_PENDING;
    case MODE_CALL_GUARDED:
        if (Irp->CurrentLocation > 1)
            IoCopyCurrentIrpStackLocationToNext(Irp);
        return IoCallDriver(ext->Lower, Irp);
    case MODE_IOCTL:
        ext->SeenSystemBuffer = Irp->AssociatedIrp.SystemBuffer;
        ext->SeenMdl = Irp->MdlAddress;
        ext->SeenUserBuffer = Irp->UserBuffer;
        if (Irp->AssociatedIrp.SystemBuffer && sp->Parameters.DeviceIoControl.InputBufferLength)
            memcpy(ext->SeenInput, Irp->AssociatedIrp.SystemBuffer,
                   sp->Parameters.DeviceIoControl.InputBufferLength);
        if (ext->FillLength) {
            PUCHAR out = Irp->MdlAddress
                             ? MmGetSystemAddressForMdlSafe(Irp->MdlAddress, NormalPagePriority)
                             : Irp->AssociatedIrp.SystemBuffer;
            memset(out, 'x', ext->FillLength);
        }
        Irp->IoStatus.Status = ext->Status;
        Irp->IoStatus.Information = ext->Information;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return ext->Status;
    case MODE_READ:
        ext->SeenMdl = Irp->MdlAddress;
        ext->SeenUserBuffer = Irp->UserBuffer;
        if (Irp->MdlAddress)
            memset(MmGetSystemAddressForMdlSafe(Irp->MdlAddress, NormalPagePriority), 'r',
                   MmGetMdlByteCount(Irp->MdlAddress));
        Irp->IoStatus.Status = ext->Status;
        Irp->IoStatus.Information = ext->Information;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return ext->Status;
    }
    return STATUS_INVALID_DEVICE_REQUEST;
}

struct fixture {
    PEXECUTIVE ex;
    DRIVER_OBJECT driver;
    PDEVICE_OBJECT bottom, middle, top;
};

static TEST_EXT *X(PDEVICE_OBJECT dev)
{
    return dev->DeviceExtension;
}

static PDEVICE_OBJECT create_device(struct fixture *f, PCSTR name)
{
    PDEVICE_OBJECT dev = NULL;
    assert_int_equal(
        IoCreateDevice(&f->driver, sizeof(TEST_EXT), name, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev),
        STATUS_SUCCESS);
    dev->Flags &= ~DO_DEVICE_INITIALIZING;
    return dev;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f || !NT_SUCCESS(ExCreateExecutive(&f->ex)))
        return -1;
    f->driver.Type = IO_TYPE_DRIVER;
    f->driver.Size = sizeof(f->driver);
    f->driver.Executive = f->ex;
    f->driver.DriverExtension = &f->driver.ExtensionStorage;
    f->driver.ExtensionStorage.DriverObject = &f->driver;
    snprintf(f->driver.DriverName, sizeof(f->driver.DriverName), "\\Driver\\irptest");
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        f->driver.MajorFunction[i] = test_dispatch;
    f->bottom = create_device(f, "\\Device\\Bottom");
    f->middle = create_device(f, NULL);
    f->top = create_device(f, NULL);
    X(f->middle)->Lower = IoAttachDeviceToDeviceStack(f->middle, f->bottom);
    X(f->top)->Lower = IoAttachDeviceToDeviceStack(f->top, f->bottom);
    memset(&g_log, 0, sizeof(g_log));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    IoDetachDevice(f->middle);
    IoDetachDevice(f->bottom);
    IoDeleteDevice(f->top);
    IoDeleteDevice(f->middle);
    IoDeleteDevice(f->bottom);
    ExQueryCounters(f->ex, &c);
    ExDestroyExecutive(f->ex);
    free(f);
    /* every device and IRP a test made is gone */
    if (c.Devices != 0 || c.Irps != 0) {
        fprintf(stderr, "leak: %d devices, %d IRPs\n", (int)c.Devices, (int)c.Irps);
        return -1;
    }
    return 0;
}

static void set_routine(PDEVICE_OBJECT dev, int id, NTSTATUS ret, BOOLEAN s, BOOLEAN e, BOOLEAN c)
{
    X(dev)->Mode = MODE_PASS_ROUTINE;
    X(dev)->Routine =
        (struct routine_cfg){.id = id, .ret = ret, .on_success = s, .on_error = e, .on_cancel = c};
}

/* An IRP for the top of the stack, with the originator's own completion routine that keeps it. */
static PIRP new_irp(struct fixture *f, struct routine_cfg *originator)
{
    PIRP irp = IoAllocateIrpForDevice(f->top);
    assert_non_null(irp);
    assert_int_equal(irp->StackCount, 3);
    PIO_STACK_LOCATION sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_READ;
    sp->Parameters.Read.Length = 512;
    sp->Parameters.Read.ByteOffset.QuadPart = 4096;
    if (originator)
        IoSetCompletionRoutine(irp, record_completion, originator, TRUE, TRUE, TRUE);
    return irp;
}

/* ---- Completion ---------------------------------------------------------------------------- */

static void test_completion_routines_run_bottom_up_with_their_own_device(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    set_routine(f->middle, 1, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_SUCCESS;
    X(f->bottom)->Information = 512;

    PIRP irp = new_irp(f, &orig);
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_SUCCESS);
    assert_int_equal(g_log.count, 3);
    assert_int_equal(g_log.e[0].id, 1);
    assert_ptr_equal(g_log.e[0].dev, f->middle);
    assert_int_equal(g_log.e[1].id, 2);
    assert_ptr_equal(g_log.e[1].dev, f->top);
    /* the originator has no stack location of its own: no device */
    assert_int_equal(g_log.e[2].id, 0);
    assert_null(g_log.e[2].dev);
    assert_int_equal(irp->IoStatus.Information, 512);
    /* each driver saw the location meant for it */
    assert_int_equal(X(f->top)->SeenLocation, 3);
    assert_int_equal(X(f->middle)->SeenLocation, 2);
    assert_int_equal(X(f->bottom)->SeenLocation, 1);
    assert_ptr_equal(X(f->bottom)->Seen.DeviceObject, f->bottom);
    assert_int_equal(X(f->bottom)->Seen.Parameters.Read.Length, 512);
    IoFreeIrp(irp);
}

static void test_invoke_on_success_and_error_filter_completion_routines(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_SUCCESS, FALSE, TRUE, FALSE);    /* errors only */
    set_routine(f->middle, 1, STATUS_SUCCESS, TRUE, FALSE, FALSE); /* success only */
    X(f->bottom)->Mode = MODE_COMPLETE;

    X(f->bottom)->Status = STATUS_SUCCESS;
    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 2);
    assert_int_equal(g_log.e[0].id, 1);
    assert_int_equal(g_log.e[1].id, 0);
    IoFreeIrp(irp);

    memset(&g_log, 0, sizeof(g_log));
    X(f->bottom)->Status = STATUS_IO_DEVICE_ERROR;
    irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 2);
    assert_int_equal(g_log.e[0].id, 2);
    assert_int_equal(g_log.e[0].status, STATUS_IO_DEVICE_ERROR);
    assert_int_equal(g_log.e[1].id, 0);
    IoFreeIrp(irp);

    /* a warning status is not success: error routines run */
    memset(&g_log, 0, sizeof(g_log));
    X(f->bottom)->Status = STATUS_BUFFER_OVERFLOW;
    irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 2);
    assert_int_equal(g_log.e[0].id, 2);
    IoFreeIrp(irp);
}

static void test_invoke_on_cancel_runs_for_a_cancelled_irp_only(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_SUCCESS, FALSE, FALSE, TRUE); /* cancel only */
    X(f->middle)->Mode = MODE_SKIP;
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_CANCELLED;

    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 1); /* not cancelled: only the originator */
    IoFreeIrp(irp);

    memset(&g_log, 0, sizeof(g_log));
    irp = new_irp(f, &orig);
    irp->Cancel = TRUE;
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 2);
    assert_int_equal(g_log.e[0].id, 2);
    assert_int_equal(g_log.e[0].status, STATUS_CANCELLED);
    IoFreeIrp(irp);
}

static void test_cancel_irp_calls_the_routine_of_the_driver_holding_it(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    X(f->top)->Mode = MODE_SKIP;
    X(f->middle)->Mode = MODE_PASS_PLAIN;
    X(f->bottom)->Mode = MODE_PEND_CANCEL;
    g_cancel_calls = 0;

    PIRP irp = new_irp(f, &orig);
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_PENDING);
    assert_ptr_equal(X(f->bottom)->Kept, irp);
    assert_true(IoCancelIrp(irp));
    assert_int_equal(g_cancel_calls, 1);
    assert_ptr_equal(g_cancel_dev, f->bottom);
    assert_null(X(f->bottom)->Kept);
    assert_int_equal(g_log.count, 1);
    assert_int_equal(g_log.e[0].status, STATUS_CANCELLED);
    assert_true(irp->Cancel);
    /* the routine was taken: a second cancel finds none */
    assert_false(IoCancelIrp(irp));
    assert_int_equal(g_cancel_calls, 1);
    IoFreeIrp(irp);
}

static void test_cancel_without_routine_marks_the_irp_only(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    X(f->top)->Mode = MODE_PEND;
    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_false(IoCancelIrp(irp));
    assert_true(irp->Cancel);
    assert_int_equal(g_log.count, 0);
    /* the driver sees Cancel and completes it itself */
    X(f->top)->Kept = NULL;
    irp->IoStatus.Status = STATUS_CANCELLED;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    assert_int_equal(g_log.count, 1);
    IoFreeIrp(irp);
}

static void test_completing_with_a_cancel_routine_set_is_a_violation(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    EXECUTIVE_COUNTERS before, after;
    X(f->top)->Mode = MODE_PEND_CANCEL;
    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    ExQueryCounters(f->ex, &before);
    X(f->top)->Kept = NULL;
    irp->IoStatus.Status = STATUS_SUCCESS;
    IoCompleteRequest(irp, IO_NO_INCREMENT); /* the routine was never cleared */
    ExQueryCounters(f->ex, &after);
    assert_int_equal(after.Violations, before.Violations + 1);
    assert_null(atomic_load(&irp->CancelRoutine));
    IoFreeIrp(irp);
}

static int g_user_done;
static void count_user_completion(PVOID Context[3], NTSTATUS Status, ULONG_PTR Information)
{
    (void)Information;
    g_user_done++;
    *(NTSTATUS *)Context[0] = Status;
}

static BOOLEAN match_context(PIRP Irp, PVOID Context)
{
    return Irp->UserCompletion.Context[1] == Context;
}

/* Two owned IRPs on one file object: cancelling by a match cancels only that one, completion
 * takes IRPs off the list, and a cancel of all finds the rest. */
static void test_cancel_file_irps_cancels_tracked_irps_that_match(void **state)
{
    struct fixture *f = *state;
    FILE_OBJECT file;
    NTSTATUS st[2] = {STATUS_PENDING, STATUS_PENDING};
    PIRP irp[2];
    X(f->top)->Mode = MODE_PEND_CANCEL;
    g_user_done = 0;
    IoInitializeFileObject(&file, f->top);
    for (int i = 0; i < 2; i++) {
        irp[i] = IoAllocateIrpForDevice(f->top);
        irp[i]->Flags |= IRP_IO_MANAGER_OWNED;
        irp[i]->UserCompletion.Routine = count_user_completion;
        irp[i]->UserCompletion.Context[0] = &st[i];
        irp[i]->UserCompletion.Context[1] = (PVOID)(uintptr_t)(i + 1);
        irp[i]->Tail.Overlay.OriginalFileObject = &file;
        IoGetNextIrpStackLocation(irp[i])->MajorFunction = IRP_MJ_READ;
        IoGetNextIrpStackLocation(irp[i])->FileObject = &file;
        IoTrackIrp(irp[i]);
        assert_int_equal(IoCallDriver(f->top, irp[i]), STATUS_PENDING);
    }
    assert_int_equal(IoCancelFileIrps(&file, match_context, (PVOID)(uintptr_t)2), 1);
    assert_int_equal(g_user_done, 1);
    assert_int_equal(st[1], STATUS_CANCELLED);
    assert_int_equal(st[0], STATUS_PENDING);
    assert_int_equal(IoCancelFileIrps(&file, match_context, (PVOID)(uintptr_t)2), 0);
    assert_int_equal(IoCancelFileIrps(&file, NULL, NULL), 1);
    assert_int_equal(st[0], STATUS_CANCELLED);
    assert_true(IsListEmpty(&file.IrpList));
    IoDeleteFileObject(&file);
}

static void test_more_processing_required_stops_completion_until_completed_again(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_MORE_PROCESSING_REQUIRED, TRUE, TRUE, TRUE);
    set_routine(f->middle, 1, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_SUCCESS;

    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 2); /* middle, then top, which stopped it */
    assert_int_equal(g_log.e[1].id, 2);
    /* the top driver owns the IRP again, at its own location */
    assert_int_equal(irp->CurrentLocation, 3);
    irp->IoStatus.Status = STATUS_DEVICE_BUSY;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    assert_int_equal(g_log.count, 3);
    assert_int_equal(g_log.e[2].id, 0);
    assert_int_equal(g_log.e[2].status, STATUS_DEVICE_BUSY);
    IoFreeIrp(irp);
}

static void test_pending_returned_reaches_routine_that_propagates_it(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    X(f->top)->Routine.propagate_pending = TRUE;
    X(f->middle)->Mode = MODE_SKIP;
    X(f->bottom)->Mode = MODE_PEND;

    PIRP irp = new_irp(f, &orig);
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_PENDING);
    assert_int_equal(g_log.count, 0);
    assert_ptr_equal(X(f->bottom)->Kept, irp);
    irp->IoStatus.Status = STATUS_SUCCESS;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    assert_int_equal(g_log.count, 2);
    assert_int_equal(g_log.e[0].id, 2);
    assert_ptr_equal(g_log.e[0].dev, f->top);
    assert_true(g_log.e[0].pending);
    assert_true(g_log.e[1].pending);
    IoFreeIrp(irp);

    /* a routine that does not propagate it hides it from the layers above */
    memset(&g_log, 0, sizeof(g_log));
    X(f->top)->Routine.propagate_pending = FALSE;
    irp = new_irp(f, &orig);
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_PENDING);
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    assert_int_equal(g_log.count, 2);
    assert_true(g_log.e[0].pending);
    assert_false(g_log.e[1].pending);
    IoFreeIrp(irp);
}

static void test_pending_returned_propagates_through_layers_without_routines(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    X(f->top)->Mode = MODE_PASS_PLAIN;
    X(f->middle)->Mode = MODE_PASS_PLAIN;
    X(f->bottom)->Mode = MODE_PEND;

    PIRP irp = new_irp(f, &orig);
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_PENDING);
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    assert_int_equal(g_log.count, 1);
    assert_true(g_log.e[0].pending);
    IoFreeIrp(irp);

    /* and no pending when nobody pended */
    memset(&g_log, 0, sizeof(g_log));
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_SUCCESS;
    irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    assert_int_equal(g_log.count, 1);
    assert_false(g_log.e[0].pending);
    IoFreeIrp(irp);
}

static void test_skip_current_location_gives_lower_driver_the_same_parameters(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};
    set_routine(f->top, 2, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    X(f->middle)->Mode = MODE_SKIP;
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_SUCCESS;

    PIRP irp = new_irp(f, &orig);
    IoCallDriver(f->top, irp);
    /* bottom ran in the location top prepared for middle */
    assert_int_equal(X(f->middle)->SeenLocation, 2);
    assert_int_equal(X(f->bottom)->SeenLocation, 2);
    assert_int_equal(X(f->bottom)->Seen.MajorFunction, IRP_MJ_READ);
    assert_int_equal(X(f->bottom)->Seen.Parameters.Read.Length, 512);
    assert_true(X(f->bottom)->Seen.Parameters.Read.ByteOffset.QuadPart == 4096);
    /* top's routine still ran once, for top */
    assert_int_equal(g_log.count, 2);
    assert_ptr_equal(g_log.e[0].dev, f->top);
    IoFreeIrp(irp);
}

static void test_irp_without_stack_location_left_fails_with_driver_internal_error(void **state)
{
    struct fixture *f = *state;
    struct routine_cfg orig = {.id = 0, .ret = STATUS_MORE_PROCESSING_REQUIRED};

    /* one location, sent to a three-deep stack: the top driver's call to middle has none left */
    PIRP irp = IoAllocateIrpEx(IoGetExecutive(f->top), 1, FALSE);
    assert_non_null(irp);
    IoGetNextIrpStackLocation(irp)->MajorFunction = IRP_MJ_READ;
    IoSetCompletionRoutine(irp, record_completion, &orig, TRUE, TRUE, TRUE);
    X(f->top)->Mode = MODE_CALL_GUARDED;
    X(f->middle)->Mode = MODE_COMPLETE;
    assert_int_equal(IoCallDriver(f->top, irp), STATUS_DRIVER_INTERNAL_ERROR);
    assert_int_equal(X(f->top)->Dispatched, 1);
    assert_int_equal(X(f->middle)->Dispatched, 0);
    assert_int_equal(irp->IoStatus.Status, STATUS_DRIVER_INTERNAL_ERROR);
    /* the request was completed: the originator heard of it */
    assert_int_equal(g_log.count, 1);
    assert_int_equal(g_log.e[0].status, STATUS_DRIVER_INTERNAL_ERROR);
    IoFreeIrp(irp);

    /* no location at all */
    irp = IoAllocateIrpEx(IoGetExecutive(f->top), 0, FALSE);
    assert_non_null(irp);
    assert_int_equal(IoCallDriver(f->bottom, irp), STATUS_DRIVER_INTERNAL_ERROR);
    assert_int_equal(X(f->bottom)->Dispatched, 0);
    assert_int_equal(irp->IoStatus.Status, STATUS_DRIVER_INTERNAL_ERROR);
    IoFreeIrp(irp);
}

/* ---- Requests the I/O manager builds ------------------------------------------------------- */

#define IOCTL_TEST_BUFFERED CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_TEST_OUT_DIRECT                                                                      \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x801, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
#define IOCTL_TEST_NEITHER CTL_CODE(FILE_DEVICE_UNKNOWN, 0x802, METHOD_NEITHER, FILE_ANY_ACCESS)

/* Sends a built IOCTL to the bottom device and waits; returns the status block. */
static IO_STATUS_BLOCK send_ioctl(struct fixture *f, ULONG code, PVOID in, ULONG in_len, PVOID out,
                                  ULONG out_len, BOOLEAN internal)
{
    KEVENT event;
    IO_STATUS_BLOCK iosb = {.Status = 0x12345678, .Information = 0xABCD};
    LARGE_INTEGER zero = {.QuadPart = 0};
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp = IoBuildDeviceIoControlRequest(code, f->bottom, in, in_len, out, out_len, internal,
                                             &event, &iosb);
    assert_non_null(irp);
    IoCallDriver(f->bottom, irp);
    /* the driver completed inline: the event is already signalled */
    assert_int_equal(KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, &zero),
                     STATUS_SUCCESS);
    KeDeleteEvent(&event);
    return iosb;
}

static void test_buffered_ioctl_copies_input_in_and_information_bytes_out(void **state)
{
    struct fixture *f = *state;
    UCHAR in[8] = "ABCDEFG", out[16];
    TEST_EXT *b = X(f->bottom);
    memset(out, 0xEE, sizeof(out));
    b->Mode = MODE_IOCTL;
    b->Status = STATUS_SUCCESS;
    b->FillLength = 16;
    b->Information = 10;

    IO_STATUS_BLOCK iosb = send_ioctl(f, IOCTL_TEST_BUFFERED, in, 8, out, 16, FALSE);
    assert_int_equal(iosb.Status, STATUS_SUCCESS);
    assert_int_equal(iosb.Information, 10);
    assert_int_equal(b->Seen.MajorFunction, IRP_MJ_DEVICE_CONTROL);
    assert_int_equal(b->Seen.Parameters.DeviceIoControl.IoControlCode, IOCTL_TEST_BUFFERED);
    assert_int_equal(b->Seen.Parameters.DeviceIoControl.InputBufferLength, 8);
    assert_int_equal(b->Seen.Parameters.DeviceIoControl.OutputBufferLength, 16);
    /* the driver worked in a system buffer holding a copy of the input */
    assert_non_null(b->SeenSystemBuffer);
    assert_ptr_not_equal(b->SeenSystemBuffer, in);
    assert_ptr_not_equal(b->SeenSystemBuffer, out);
    assert_memory_equal(b->SeenInput, "ABCDEFG", 8);
    /* exactly Information bytes came back */
    for (int i = 0; i < 10; i++)
        assert_int_equal(out[i], 'x');
    for (int i = 10; i < 16; i++)
        assert_int_equal(out[i], 0xEE);

    /* internal device control */
    iosb = send_ioctl(f, IOCTL_TEST_BUFFERED, in, 8, out, 16, TRUE);
    assert_int_equal(b->Seen.MajorFunction, IRP_MJ_INTERNAL_DEVICE_CONTROL);
}

static void test_buffered_ioctl_copies_out_on_warning_but_not_on_error(void **state)
{
    struct fixture *f = *state;
    UCHAR in[4] = "in", out[16];
    TEST_EXT *b = X(f->bottom);
    b->Mode = MODE_IOCTL;
    b->FillLength = 16;
    b->Information = 16;

    memset(out, 0xEE, sizeof(out));
    b->Status = STATUS_BUFFER_OVERFLOW;
    IO_STATUS_BLOCK iosb = send_ioctl(f, IOCTL_TEST_BUFFERED, in, 4, out, 16, FALSE);
    assert_int_equal(iosb.Status, STATUS_BUFFER_OVERFLOW);
    assert_int_equal(iosb.Information, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 'x');

    memset(out, 0xEE, sizeof(out));
    b->Status = STATUS_INVALID_PARAMETER;
    iosb = send_ioctl(f, IOCTL_TEST_BUFFERED, in, 4, out, 16, FALSE);
    assert_int_equal(iosb.Status, STATUS_INVALID_PARAMETER);
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 0xEE);
}

static void test_buffered_ioctl_copy_back_is_bounded_by_output_length(void **state)
{
    struct fixture *f = *state;
    UCHAR in[32], out[64];
    TEST_EXT *b = X(f->bottom);
    memset(in, 'i', sizeof(in));
    memset(out, 0xEE, sizeof(out));
    b->Mode = MODE_IOCTL;
    b->Status = STATUS_SUCCESS;
    b->FillLength = 32;
    b->Information = 16; /* a driver that reports more than the caller's output buffer holds */

    send_ioctl(f, IOCTL_TEST_BUFFERED, in, 32, out, 8, FALSE);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], 'x');
    /* nothing written past the 8 bytes the caller offered */
    for (int i = 8; i < 64; i++)
        assert_int_equal(out[i], 0xEE);
}

static void test_out_direct_ioctl_gives_an_mdl_over_the_output_buffer(void **state)
{
    struct fixture *f = *state;
    UCHAR in[8] = "request", out[100];
    TEST_EXT *b = X(f->bottom);
    memset(out, 0, sizeof(out));
    b->Mode = MODE_IOCTL;
    b->Status = STATUS_SUCCESS;
    b->FillLength = 100;
    b->Information = 100;

    IO_STATUS_BLOCK iosb = send_ioctl(f, IOCTL_TEST_OUT_DIRECT, in, 8, out + 0, 100, FALSE);
    assert_int_equal(iosb.Status, STATUS_SUCCESS);
    assert_int_equal(iosb.Information, 100);
    assert_non_null(b->SeenMdl);
    assert_memory_equal(b->SeenInput, "request", 8);
    /* the driver wrote straight into the caller's buffer through the MDL */
    for (int i = 0; i < 100; i++)
        assert_int_equal(out[i], 'x');
}

static PMDL g_seen_mdl_copy_va;
static ULONG g_seen_mdl_count;
static NTSTATUS mdl_probe_dispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    g_seen_mdl_copy_va = Irp->MdlAddress ? MmGetMdlVirtualAddress(Irp->MdlAddress) : NULL;
    g_seen_mdl_count = Irp->MdlAddress ? MmGetMdlByteCount(Irp->MdlAddress) : 0;
    Irp->IoStatus.Status = STATUS_SUCCESS;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

static void test_out_direct_mdl_describes_exactly_the_output_buffer(void **state)
{
    struct fixture *f = *state;
    UCHAR out[300];
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    f->driver.MajorFunction[IRP_MJ_DEVICE_CONTROL] = mdl_probe_dispatch;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp = IoBuildDeviceIoControlRequest(IOCTL_TEST_OUT_DIRECT, f->bottom, NULL, 0, out + 3,
                                             200, FALSE, &event, &iosb);
    assert_non_null(irp);
    IoCallDriver(f->bottom, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    f->driver.MajorFunction[IRP_MJ_DEVICE_CONTROL] = test_dispatch;
    assert_ptr_equal(g_seen_mdl_copy_va, (PVOID)(out + 3));
    assert_int_equal(g_seen_mdl_count, 200);
}

static void test_neither_ioctl_passes_the_callers_pointers(void **state)
{
    struct fixture *f = *state;
    UCHAR in[4] = "abc", out[4];
    TEST_EXT *b = X(f->bottom);
    b->Mode = MODE_IOCTL;
    b->Status = STATUS_SUCCESS;
    send_ioctl(f, IOCTL_TEST_NEITHER, in, 4, out, 4, FALSE);
    assert_ptr_equal(b->Seen.Parameters.DeviceIoControl.Type3InputBuffer, in);
    assert_ptr_equal(b->SeenUserBuffer, out);
}

static void test_synchronous_fsd_read_builds_mdl_and_reports_through_event(void **state)
{
    struct fixture *f = *state;
    static UCHAR buf[4096];
    KEVENT event;
    IO_STATUS_BLOCK iosb = {0};
    LARGE_INTEGER offset = {.QuadPart = 8192};
    TEST_EXT *b = X(f->bottom);
    b->Mode = MODE_READ;
    b->Status = STATUS_SUCCESS;
    b->Information = 4096;

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp =
        IoBuildSynchronousFsdRequest(IRP_MJ_READ, f->bottom, buf, 4096, &offset, &event, &iosb);
    assert_non_null(irp);
    assert_int_equal(IoCallDriver(f->bottom, irp), STATUS_SUCCESS);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    assert_int_equal(iosb.Status, STATUS_SUCCESS);
    assert_int_equal(iosb.Information, 4096);
    assert_int_equal(b->Seen.MajorFunction, IRP_MJ_READ);
    assert_int_equal(b->Seen.Parameters.Read.Length, 4096);
    assert_true(b->Seen.Parameters.Read.ByteOffset.QuadPart == 8192);
    assert_non_null(b->SeenMdl);
    assert_ptr_equal(b->SeenUserBuffer, buf);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(buf[i], 'r');

    /* a request without data has no MDL */
    b->Information = 0;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp =
        IoBuildSynchronousFsdRequest(IRP_MJ_FLUSH_BUFFERS, f->bottom, NULL, 0, NULL, &event, &iosb);
    assert_non_null(irp);
    IoCallDriver(f->bottom, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    assert_int_equal(b->Seen.MajorFunction, IRP_MJ_FLUSH_BUFFERS);
    assert_null(b->SeenMdl);
}

static void test_synchronous_fsd_request_sent_to_stack_top_reaches_bottom(void **state)
{
    struct fixture *f = *state;
    KEVENT event;
    IO_STATUS_BLOCK iosb = {0};
    set_routine(f->top, 2, STATUS_SUCCESS, TRUE, TRUE, TRUE);
    X(f->middle)->Mode = MODE_PASS_PLAIN;
    X(f->bottom)->Mode = MODE_COMPLETE;
    X(f->bottom)->Status = STATUS_NOT_SUPPORTED;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp = IoBuildSynchronousFsdRequest(IRP_MJ_SHUTDOWN, f->top, NULL, 0, NULL, &event, &iosb);
    IoCallDriver(f->top, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    assert_int_equal(iosb.Status, STATUS_NOT_SUPPORTED);
    assert_int_equal(g_log.count, 1);
    assert_int_equal(X(f->bottom)->Seen.MajorFunction, IRP_MJ_SHUTDOWN);
}

/* ---- Lookaside lists ----------------------------------------------------------------------- */

static int g_allocs, g_frees;
static PVOID counting_allocate(ULONG PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    g_allocs++;
    return malloc(NumberOfBytes);
}
static void counting_free(PVOID Buffer)
{
    g_frees++;
    free(Buffer);
}

static void test_lookaside_reuses_entries_and_counts_misses(void **state)
{
    NPAGED_LOOKASIDE_LIST l;
    PVOID a, b, c, d, e;
    g_allocs = g_frees = 0;
    ExInitializeNPagedLookasideList(&l, counting_allocate, counting_free, 0, 100, 0x74736554, 2);
    a = ExAllocateFromNPagedLookasideList(&l);
    b = ExAllocateFromNPagedLookasideList(&l);
    c = ExAllocateFromNPagedLookasideList(&l);
    assert_int_equal(l.TotalAllocates, 3);
    assert_int_equal(l.AllocateMisses, 3);
    assert_int_equal(g_allocs, 3);
    memset(a, 1, 100);
    ExFreeToNPagedLookasideList(&l, a);
    ExFreeToNPagedLookasideList(&l, b);
    ExFreeToNPagedLookasideList(&l, c); /* past the depth of 2: really freed */
    assert_int_equal(g_frees, 1);
    assert_int_equal(l.CurrentDepth, 2);
    d = ExAllocateFromNPagedLookasideList(&l);
    e = ExAllocateFromNPagedLookasideList(&l);
    /* both came from the list, most recently freed first */
    assert_ptr_equal(d, b);
    assert_ptr_equal(e, a);
    assert_int_equal(l.TotalAllocates, 5);
    assert_int_equal(l.AllocateMisses, 3);
    assert_int_equal(g_allocs, 3);
    ExFreeToNPagedLookasideList(&l, d);
    ExFreeToNPagedLookasideList(&l, e);
    ExDeleteNPagedLookasideList(&l);
    assert_int_equal(g_frees, 3);
}

static void test_small_irps_come_from_the_executive_lookaside(void **state)
{
    struct fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    PIRP a = IoAllocateIrpEx(f->ex, 4, FALSE);
    assert_non_null(a);
    assert_true(a->Flags & IRP_ALLOCATED_FIXED);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Irps, 1);
    IoFreeIrp(a);
    PIRP b = IoAllocateIrpEx(f->ex, 2, FALSE);
    assert_ptr_equal(a, b); /* the same memory, reused */
    assert_int_equal(b->StackCount, 2);
    assert_int_equal(b->CurrentLocation, 3);
    IoFreeIrp(b);
    PIRP big = IoAllocateIrpEx(f->ex, IO_MAX_FAST_STACK + 4, FALSE);
    assert_non_null(big);
    assert_false(big->Flags & IRP_ALLOCATED_FIXED);
    assert_int_equal(big->StackCount, IO_MAX_FAST_STACK + 4);
    IoFreeIrp(big);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Irps, 0);
}

/* ---- Names --------------------------------------------------------------------------------- */

static void expect_resolves(PEXECUTIVE ex, PCSTR name, PDEVICE_OBJECT expected)
{
    PDEVICE_OBJECT dev = NULL;
    NTSTATUS status = IoGetDeviceObjectPointer(ex, name, &dev);
    if (status != STATUS_SUCCESS)
        fail_msg("'%s' did not resolve (0x%08X)", name, (unsigned)status);
    assert_ptr_equal(dev, expected);
    ObDereferenceObject(dev);
}

static void expect_not_found(PEXECUTIVE ex, PCSTR name)
{
    PDEVICE_OBJECT dev = NULL;
    NTSTATUS status = IoGetDeviceObjectPointer(ex, name, &dev);
    if (status != STATUS_OBJECT_NAME_NOT_FOUND)
        fail_msg("'%s' resolved (0x%08X)", name, (unsigned)status);
}

static void test_symbolic_link_resolves_in_every_user_form(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(IoCreateSymbolicLink(f->ex, "\\DosDevices\\TestDisk0", "\\Device\\Bottom"),
                     STATUS_SUCCESS);
    expect_resolves(f->ex, "TestDisk0", f->bottom);
    expect_resolves(f->ex, "\\\\.\\TestDisk0", f->bottom);
    expect_resolves(f->ex, "\\??\\TestDisk0", f->bottom);
    expect_resolves(f->ex, "\\DosDevices\\TestDisk0", f->bottom);
    expect_resolves(f->ex, "\\\\.\\testdisk0", f->bottom); /* names ignore case */
    expect_resolves(f->ex, "\\Device\\Bottom", f->bottom);
    expect_not_found(f->ex, "TestDisk1");
    expect_not_found(f->ex, "\\Device\\Nothing");
    assert_int_equal(IoDeleteSymbolicLink(f->ex, "TestDisk0"), STATUS_SUCCESS);
    expect_not_found(f->ex, "TestDisk0");
    expect_resolves(f->ex, "\\Device\\Bottom", f->bottom);
}

static void test_symbolic_link_chain_resolves_and_a_loop_does_not_hang(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(IoCreateSymbolicLink(f->ex, "\\??\\Disk", "\\Device\\Bottom"), STATUS_SUCCESS);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "Alias", "\\DosDevices\\Disk"), STATUS_SUCCESS);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "Alias2", "\\DosDevices\\Alias"), STATUS_SUCCESS);
    expect_resolves(f->ex, "Alias2", f->bottom);
    expect_resolves(f->ex, "\\\\.\\Alias", f->bottom);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "LoopA", "\\DosDevices\\LoopB"), STATUS_SUCCESS);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "LoopB", "\\DosDevices\\LoopA"), STATUS_SUCCESS);
    expect_not_found(f->ex, "LoopA");
    /* a dangling link */
    assert_int_equal(IoCreateSymbolicLink(f->ex, "Dangling", "\\Device\\Gone"), STATUS_SUCCESS);
    expect_not_found(f->ex, "Dangling");
}

static void test_name_collisions_are_refused(void **state)
{
    struct fixture *f = *state;
    PDEVICE_OBJECT dup = (PDEVICE_OBJECT)0x1;
    EXECUTIVE_COUNTERS before, after;
    ExQueryCounters(f->ex, &before);
    assert_int_equal(
        IoCreateDevice(&f->driver, 0, "\\Device\\Bottom", FILE_DEVICE_UNKNOWN, 0, FALSE, &dup),
        STATUS_OBJECT_NAME_COLLISION);
    assert_null(dup);
    assert_int_equal(
        IoCreateDevice(&f->driver, 0, "\\device\\BOTTOM", FILE_DEVICE_UNKNOWN, 0, FALSE, &dup),
        STATUS_OBJECT_NAME_COLLISION);
    ExQueryCounters(f->ex, &after);
    assert_int_equal(after.Devices, before.Devices);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "X", "\\Device\\Bottom"), STATUS_SUCCESS);
    /* the same link in another spelling is the same name */
    assert_int_equal(IoCreateSymbolicLink(f->ex, "\\\\.\\X", "\\Device\\Bottom"),
                     STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(IoCreateSymbolicLink(f->ex, "\\DosDevices\\x", "\\Device\\Other"),
                     STATUS_OBJECT_NAME_COLLISION);
    expect_resolves(f->ex, "X", f->bottom);
}

static void test_deleted_device_name_is_free_and_referenced_device_outlives_delete(void **state)
{
    struct fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    PDEVICE_OBJECT dev = create_device(f, "\\Device\\Temp"), ref = NULL;
    assert_int_equal(IoGetDeviceObjectPointer(f->ex, "\\Device\\Temp", &ref), STATUS_SUCCESS);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 4);
    IoDeleteDevice(dev);
    expect_not_found(f->ex, "\\Device\\Temp");
    /* still referenced: not freed yet */
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 4);
    assert_string_equal(ref->Name, "\\Device\\Temp");
    ObDereferenceObject(ref);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 3);
    /* the name can be taken again */
    dev = create_device(f, "\\Device\\Temp");
    IoDeleteDevice(dev);
}

static void test_deleted_device_stays_valid_until_the_device_above_detaches(void **state)
{
    /* The WDK's IRP_MN_REMOVE_DEVICE pattern: the lower driver deletes its device while the upper
     * one is still attached; the upper one then calls IoDetachDevice(lower) and deletes its own.
     * Windows keeps the lower device object until that detach; freeing it at IoDeleteDevice
     * makes every forward-then-detach filter touch freed memory. */
    struct fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    PDEVICE_OBJECT lower = create_device(f, NULL), upper = create_device(f, NULL);
    assert_ptr_equal(IoAttachDeviceToDeviceStack(upper, lower), lower);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 5);
    IoDeleteDevice(lower);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 5); /* still allocated: upper is attached to it */
    IoDetachDevice(lower);
    ExQueryCounters(f->ex, &c);
    assert_int_equal(c.Devices, 4);
    IoDeleteDevice(upper);
}

static void test_attach_reports_stack_size_and_lowest_device(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->bottom->StackSize, 1);
    assert_int_equal(f->middle->StackSize, 2);
    assert_int_equal(f->top->StackSize, 3);
    assert_ptr_equal(X(f->middle)->Lower, f->bottom);
    assert_ptr_equal(X(f->top)->Lower, f->middle); /* attaches to the top of the stack */
    assert_ptr_equal(IoGetAttachedDevice(f->bottom), f->top);
    PDEVICE_OBJECT ref = IoGetAttachedDeviceReference(f->middle);
    assert_ptr_equal(ref, f->top);
    ObDereferenceObject(ref);
}

/* ---- Power manager (kernel/power.c)
           ------------------------------------------------------- */

struct power_seen {
    int calls;
    PDEVICE_OBJECT dev;
    UCHAR minor;
    POWER_STATE state;
    NTSTATUS status;
};

static void power_done(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction, POWER_STATE PowerState,
                       PVOID Context, PIO_STATUS_BLOCK IoStatus)
{
    struct power_seen *p = Context;
    p->calls++;
    p->dev = DeviceObject;
    p->minor = MinorFunction;
    p->state = PowerState;
    p->status = IoStatus->Status;
}

static void test_po_request_power_irp_goes_to_the_stack_top_and_calls_back(void **state)
{
    struct fixture *f = *state;
    struct power_seen seen = {0};
    POWER_STATE d3 = {.DeviceState = PowerDeviceD3};
    PIRP irp = NULL;
    X(f->top)->Mode = MODE_SKIP;
    X(f->middle)->Mode = MODE_SKIP;
    X(f->bottom)->Mode = MODE_PEND;

    /* asked for the bottom device (a PDO), sent to the top of its stack */
    assert_int_equal(PoRequestPowerIrp(f->bottom, IRP_MN_SET_POWER, d3, power_done, &seen, &irp),
                     STATUS_PENDING);
    assert_non_null(irp);
    assert_int_equal(X(f->top)->Dispatched, 1);
    assert_int_equal(X(f->bottom)->Seen.MajorFunction, IRP_MJ_POWER);
    assert_int_equal(X(f->bottom)->Seen.MinorFunction, IRP_MN_SET_POWER);
    assert_int_equal(X(f->bottom)->Seen.Parameters.Power.Type, DevicePowerState);
    assert_int_equal(X(f->bottom)->Seen.Parameters.Power.State.DeviceState, PowerDeviceD3);
    assert_int_equal(seen.calls, 0); /* not before the IRP completes */

    PoStartNextPowerIrp(X(f->bottom)->Kept);
    X(f->bottom)->Kept->IoStatus.Status = STATUS_SUCCESS;
    IoCompleteRequest(X(f->bottom)->Kept, IO_NO_INCREMENT);
    assert_int_equal(seen.calls, 1);
    assert_ptr_equal(seen.dev, f->bottom);
    assert_int_equal(seen.minor, IRP_MN_SET_POWER);
    assert_int_equal(seen.state.DeviceState, PowerDeviceD3);
    assert_int_equal(seen.status, STATUS_SUCCESS);
    /* the IRP is freed after the callback (the teardown counts IRPs) */
}

static void test_po_request_power_irp_reports_a_failure_and_refuses_bad_requests(void **state)
{
    struct fixture *f = *state;
    struct power_seen seen = {0};
    POWER_STATE d0 = {.DeviceState = PowerDeviceD0}, bad = {.DeviceState = PowerDeviceMaximum};
    X(f->top)->Mode = MODE_COMPLETE;
    X(f->top)->Status = STATUS_DEVICE_BUSY;
    assert_int_equal(PoRequestPowerIrp(f->bottom, IRP_MN_QUERY_POWER, d0, power_done, &seen, NULL),
                     STATUS_PENDING);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.minor, IRP_MN_QUERY_POWER);
    assert_int_equal(seen.status, STATUS_DEVICE_BUSY);

    assert_int_equal(PoRequestPowerIrp(f->bottom, IRP_MN_WAIT_WAKE, d0, power_done, &seen, NULL),
                     STATUS_INVALID_PARAMETER);
    assert_int_equal(PoRequestPowerIrp(f->bottom, IRP_MN_SET_POWER, bad, power_done, &seen, NULL),
                     STATUS_INVALID_PARAMETER);
    bad.DeviceState = PowerDeviceUnspecified;
    assert_int_equal(PoRequestPowerIrp(f->bottom, IRP_MN_SET_POWER, bad, power_done, &seen, NULL),
                     STATUS_INVALID_PARAMETER);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(X(f->top)->Dispatched, 1);
}

static void test_po_set_power_state_records_device_states_only(void **state)
{
    struct fixture *f = *state;
    POWER_STATE d3 = {.DeviceState = PowerDeviceD3}, s3 = {.SystemState = PowerSystemSleeping3};
    POWER_STATE bad = {.DeviceState = PowerDeviceMaximum};
    assert_int_equal(PoGetDevicePowerState(f->bottom), PowerDeviceD0); /* created working */
    assert_int_equal(PoSetPowerState(f->bottom, DevicePowerState, d3).DeviceState, PowerDeviceD0);
    assert_int_equal(PoGetDevicePowerState(f->bottom), PowerDeviceD3);
    assert_int_equal(PoGetDevicePowerState(f->top), PowerDeviceD0); /* per device */
    assert_int_equal(PoSetPowerState(f->bottom, SystemPowerState, s3).DeviceState,
                     PowerDeviceUnspecified);
    assert_int_equal(PoSetPowerState(f->bottom, DevicePowerState, bad).DeviceState,
                     PowerDeviceUnspecified);
    assert_int_equal(PoGetDevicePowerState(f->bottom), PowerDeviceD3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_completion_routines_run_bottom_up_with_their_own_device),
        T(test_invoke_on_success_and_error_filter_completion_routines),
        T(test_invoke_on_cancel_runs_for_a_cancelled_irp_only),
        T(test_cancel_irp_calls_the_routine_of_the_driver_holding_it),
        T(test_cancel_without_routine_marks_the_irp_only),
        T(test_completing_with_a_cancel_routine_set_is_a_violation),
        T(test_cancel_file_irps_cancels_tracked_irps_that_match),
        T(test_more_processing_required_stops_completion_until_completed_again),
        T(test_pending_returned_reaches_routine_that_propagates_it),
        T(test_pending_returned_propagates_through_layers_without_routines),
        T(test_skip_current_location_gives_lower_driver_the_same_parameters),
        T(test_irp_without_stack_location_left_fails_with_driver_internal_error),
        T(test_buffered_ioctl_copies_input_in_and_information_bytes_out),
        T(test_buffered_ioctl_copies_out_on_warning_but_not_on_error),
        T(test_buffered_ioctl_copy_back_is_bounded_by_output_length),
        T(test_out_direct_ioctl_gives_an_mdl_over_the_output_buffer),
        T(test_out_direct_mdl_describes_exactly_the_output_buffer),
        T(test_neither_ioctl_passes_the_callers_pointers),
        T(test_synchronous_fsd_read_builds_mdl_and_reports_through_event),
        T(test_synchronous_fsd_request_sent_to_stack_top_reaches_bottom),
        T(test_lookaside_reuses_entries_and_counts_misses),
        T(test_small_irps_come_from_the_executive_lookaside),
        T(test_symbolic_link_resolves_in_every_user_form),
        T(test_symbolic_link_chain_resolves_and_a_loop_does_not_hang),
        T(test_name_collisions_are_refused),
        T(test_deleted_device_name_is_free_and_referenced_device_outlives_delete),
        T(test_deleted_device_stays_valid_until_the_device_above_detaches),
        T(test_attach_reports_stack_size_and_lowest_device),
        T(test_po_request_power_irp_goes_to_the_stack_top_and_calls_back),
        T(test_po_request_power_irp_reports_a_failure_and_refuses_bad_requests),
        T(test_po_set_power_state_records_device_states_only),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
