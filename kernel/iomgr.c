/*
 * The I/O manager: device objects and their stacks, the object namespace (device names and
 * symbolic links), IRP allocation, IoCallDriver and IoCompleteRequest with completion routines
 * as Windows runs them, MDLs, lookaside lists, and the I/O manager's own completion step for the
 * IRPs it builds (buffered I/O copy-back, I/O status block, event, APC-style user callback).
 */
#include <stdio.h>
#include <stdlib.h>

#include "kernel/executive_p.h"

/* ---- Pool and lookaside lists -------------------------------------------------------------- */

PVOID ExAllocatePoolWithTag(ULONG PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return calloc(1, NumberOfBytes ? NumberOfBytes : 1);
}

void ExFreePool(PVOID P)
{
    free(P);
}

void ExInitializeNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, ALLOCATE_FUNCTION *Allocate,
                                     FREE_FUNCTION *Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                     USHORT Depth)
{
    memset(Lookaside, 0, sizeof(*Lookaside));
    KeInitializeSpinLock(&Lookaside->Lock);
    Lookaside->Size = (ULONG)(Size < sizeof(SINGLE_LIST_ENTRY) ? sizeof(SINGLE_LIST_ENTRY) : Size);
    Lookaside->Tag = Tag;
    Lookaside->Depth = Depth ? Depth : 256;
    Lookaside->Allocate = Allocate;
    Lookaside->Free = Free;
}

void ExDeleteNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    PSINGLE_LIST_ENTRY e = Lookaside->ListHead.Next;
    while (e) {
        PSINGLE_LIST_ENTRY next = e->Next;
        if (Lookaside->Free)
            Lookaside->Free(e);
        else
            free(e);
        e = next;
    }
    Lookaside->ListHead.Next = NULL;
    KeDeleteSpinLock(&Lookaside->Lock);
}

PVOID ExAllocateFromNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    PSINGLE_LIST_ENTRY e;
    KeAcquireSpinLock(&Lookaside->Lock, NULL);
    Lookaside->TotalAllocates++;
    e = Lookaside->ListHead.Next;
    if (e) {
        Lookaside->ListHead.Next = e->Next;
        Lookaside->CurrentDepth--;
    } else {
        Lookaside->AllocateMisses++;
    }
    KeReleaseSpinLock(&Lookaside->Lock, 0);
    if (!e)
        e = Lookaside->Allocate ? Lookaside->Allocate(NonPagedPool, Lookaside->Size, Lookaside->Tag)
                                : malloc(Lookaside->Size);
    return e;
}

void ExFreeToNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry)
{
    PSINGLE_LIST_ENTRY e = Entry;
    KeAcquireSpinLock(&Lookaside->Lock, NULL);
    if (Lookaside->CurrentDepth < Lookaside->Depth) {
        e->Next = Lookaside->ListHead.Next;
        Lookaside->ListHead.Next = e;
        Lookaside->CurrentDepth++;
        e = NULL;
    }
    KeReleaseSpinLock(&Lookaside->Lock, 0);
    if (e) {
        if (Lookaside->Free)
            Lookaside->Free(e);
        else
            free(e);
    }
}

/* ---- Object namespace ---------------------------------------------------------------------- */

/* Normalises a user-visible name to the namespace's form: "\\.\X", "\??\X", "X" -> "\DosDevices\X".
 */
static void IopCanonicalName(PCSTR in, char *out, size_t len)
{
    if (!strncmp(in, "\\\\.\\", 4))
        snprintf(out, len, "\\DosDevices\\%s", in + 4);
    else if (!strncmp(in, "\\??\\", 4))
        snprintf(out, len, "\\DosDevices\\%s", in + 4);
    else if (in[0] == '\\')
        snprintf(out, len, "%s", in);
    else
        snprintf(out, len, "\\DosDevices\\%s", in);
}

static POB_NAME IopLookupNameLocked(PEXECUTIVE ex, PCSTR name)
{
    for (POB_NAME n = ex->Names; n; n = n->Next)
        if (!strcasecmp(n->Name, name))
            return n;
    return NULL;
}

static NTSTATUS IopInsertName(PEXECUTIVE ex, PCSTR name, PCSTR target, PDEVICE_OBJECT device)
{
    POB_NAME n;
    if (strlen(name) >= sizeof(n->Name) || (target && strlen(target) >= sizeof(n->Target)))
        return STATUS_OBJECT_NAME_INVALID;
    pthread_mutex_lock(&ex->Lock);
    if (IopLookupNameLocked(ex, name)) {
        pthread_mutex_unlock(&ex->Lock);
        return STATUS_OBJECT_NAME_COLLISION;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        pthread_mutex_unlock(&ex->Lock);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    snprintf(n->Name, sizeof(n->Name), "%s", name);
    if (target)
        snprintf(n->Target, sizeof(n->Target), "%s", target);
    n->Device = device;
    n->Next = ex->Names;
    ex->Names = n;
    pthread_mutex_unlock(&ex->Lock);
    return STATUS_SUCCESS;
}

static void IopRemoveName(PEXECUTIVE ex, PCSTR name, PDEVICE_OBJECT device)
{
    pthread_mutex_lock(&ex->Lock);
    for (POB_NAME *pp = &ex->Names; *pp; pp = &(*pp)->Next) {
        POB_NAME n = *pp;
        if ((name && !strcasecmp(n->Name, name)) || (device && n->Device == device)) {
            *pp = n->Next;
            free(n);
            break;
        }
    }
    pthread_mutex_unlock(&ex->Lock);
}

void IopFreeNames(PEXECUTIVE ex)
{
    while (ex->Names) {
        POB_NAME n = ex->Names;
        ex->Names = n->Next;
        free(n);
    }
}

NTSTATUS IoCreateSymbolicLink(PEXECUTIVE Executive, PCSTR SymbolicLinkName, PCSTR DeviceName)
{
    char link[128];
    IopCanonicalName(SymbolicLinkName, link, sizeof(link));
    return IopInsertName(Executive, link, DeviceName, NULL);
}

NTSTATUS IoDeleteSymbolicLink(PEXECUTIVE Executive, PCSTR SymbolicLinkName)
{
    char link[128];
    IopCanonicalName(SymbolicLinkName, link, sizeof(link));
    IopRemoveName(Executive, link, NULL);
    return STATUS_SUCCESS;
}

NTSTATUS IoGetDeviceObjectPointer(PEXECUTIVE Executive, PCSTR ObjectName,
                                  PDEVICE_OBJECT *DeviceObject)
{
    char name[128];
    POB_NAME n;
    int depth;

    IopCanonicalName(ObjectName, name, sizeof(name));
    pthread_mutex_lock(&Executive->Lock);
    for (depth = 0; depth < 8; depth++) {
        n = IopLookupNameLocked(Executive, name);
        if (!n)
            break;
        if (n->Device) {
            ObReferenceObject(n->Device);
            *DeviceObject = n->Device;
            pthread_mutex_unlock(&Executive->Lock);
            return STATUS_SUCCESS;
        }
        snprintf(name, sizeof(name), "%s", n->Target);
    }
    pthread_mutex_unlock(&Executive->Lock);
    return STATUS_OBJECT_NAME_NOT_FOUND;
}

/* ---- Driver and device objects --------------------------------------------------------------- */

PVOID IoAllocateDriverObjectExtension(PDRIVER_OBJECT DriverObject, SIZE_T Size)
{
    if (DriverObject->DriverExtension->ClientDriverExtension)
        return NULL;
    DriverObject->DriverExtension->ClientDriverExtension = calloc(1, Size);
    return DriverObject->DriverExtension->ClientDriverExtension;
}

PVOID IoGetDriverObjectExtension(PDRIVER_OBJECT DriverObject)
{
    return DriverObject->DriverExtension->ClientDriverExtension;
}

NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize, PCSTR DeviceName,
                        ULONG DeviceType, ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                        PDEVICE_OBJECT *DeviceObject)
{
    PEXECUTIVE ex = DriverObject->Executive;
    PDEVICE_OBJECT dev;
    NTSTATUS status;
    size_t ext = (DeviceExtensionSize + 15u) & ~15u;

    *DeviceObject = NULL;
    dev = aligned_alloc(64, (sizeof(DEVICE_OBJECT) + ext + 63u) & ~(size_t)63u);
    if (!dev)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(dev, 0, sizeof(DEVICE_OBJECT) + ext);
    dev->Type = IO_TYPE_DEVICE;
    dev->Size = sizeof(DEVICE_OBJECT);
    dev->DriverObject = DriverObject;
    dev->DeviceType = DeviceType;
    dev->Characteristics = DeviceCharacteristics;
    dev->StackSize = 1;
    dev->Flags = DO_DEVICE_INITIALIZING | (Exclusive ? DO_EXCLUSIVE : 0);
    dev->DeviceExtension = DeviceExtensionSize ? (PUCHAR)dev + sizeof(DEVICE_OBJECT) : NULL;
    atomic_init(&dev->DeviceObjectExtension.ReferenceCount, 1);
    atomic_init(&dev->DeviceObjectExtension.PowerState, PowerDeviceD0); /* created working */
    if (DeviceName && DeviceName[0]) {
        if (strlen(DeviceName) >= sizeof(dev->Name)) {
            free(dev);
            return STATUS_OBJECT_NAME_INVALID;
        }
        snprintf(dev->Name, sizeof(dev->Name), "%s", DeviceName);
        status = IopInsertName(ex, DeviceName, NULL, dev);
        if (!NT_SUCCESS(status)) {
            free(dev);
            return status;
        }
        dev->Flags |= DO_DEVICE_HAS_NAME;
    }
    pthread_mutex_lock(&ex->Lock);
    dev->NextDevice = DriverObject->DeviceObject;
    DriverObject->DeviceObject = dev;
    pthread_mutex_unlock(&ex->Lock);
    atomic_fetch_add(&ex->DeviceCount, 1);
    *DeviceObject = dev;
    return STATUS_SUCCESS;
}

static void IopFreeDevice(PDEVICE_OBJECT dev)
{
    PEXECUTIVE ex = IoGetExecutive(dev);
    atomic_fetch_sub(&ex->DeviceCount, 1);
    free(dev);
}

void IoDeleteDevice(PDEVICE_OBJECT DeviceObject)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    PDRIVER_OBJECT drv = DeviceObject->DriverObject;

    if (DeviceObject->Flags & DO_DEVICE_HAS_NAME)
        IopRemoveName(ex, NULL, DeviceObject);
    pthread_mutex_lock(&ex->Lock);
    for (PDEVICE_OBJECT *pp = &drv->DeviceObject; *pp; pp = &(*pp)->NextDevice) {
        if (*pp == DeviceObject) {
            *pp = DeviceObject->NextDevice;
            break;
        }
    }
    pthread_mutex_unlock(&ex->Lock);
    ObDereferenceObject(DeviceObject);
}

void ObReferenceObject(PVOID Object)
{
    PDEVICE_OBJECT dev = Object;
    atomic_fetch_add(&dev->DeviceObjectExtension.ReferenceCount, 1);
}

void ObDereferenceObject(PVOID Object)
{
    PDEVICE_OBJECT dev = Object;
    if (atomic_fetch_sub(&dev->DeviceObjectExtension.ReferenceCount, 1) == 1)
        IopFreeDevice(dev);
}

PDEVICE_OBJECT IoGetAttachedDevice(PDEVICE_OBJECT DeviceObject)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    pthread_mutex_lock(&ex->Lock);
    while (DeviceObject->AttachedDevice)
        DeviceObject = DeviceObject->AttachedDevice;
    pthread_mutex_unlock(&ex->Lock);
    return DeviceObject;
}

PDEVICE_OBJECT IoGetAttachedDeviceReference(PDEVICE_OBJECT DeviceObject)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    pthread_mutex_lock(&ex->Lock);
    while (DeviceObject->AttachedDevice)
        DeviceObject = DeviceObject->AttachedDevice;
    ObReferenceObject(DeviceObject);
    pthread_mutex_unlock(&ex->Lock);
    return DeviceObject;
}

PDEVICE_OBJECT IoAttachDeviceToDeviceStack(PDEVICE_OBJECT SourceDevice, PDEVICE_OBJECT TargetDevice)
{
    PEXECUTIVE ex = IoGetExecutive(TargetDevice);
    PDEVICE_OBJECT top;
    pthread_mutex_lock(&ex->Lock);
    top = TargetDevice;
    while (top->AttachedDevice)
        top = top->AttachedDevice;
    top->AttachedDevice = SourceDevice;
    SourceDevice->DeviceObjectExtension.AttachedTo = top;
    /* The attachment keeps the device below alive: on REMOVE it may delete itself before the
     * driver above, back from IoCallDriver, detaches from it (as on Windows). */
    ObReferenceObject(top);
    SourceDevice->StackSize = (CCHAR)(top->StackSize + 1);
    SourceDevice->AlignmentRequirement =
        top->AlignmentRequirement > SourceDevice->AlignmentRequirement
            ? top->AlignmentRequirement
            : SourceDevice->AlignmentRequirement;
    if (top->SectorSize && !SourceDevice->SectorSize)
        SourceDevice->SectorSize = top->SectorSize;
    pthread_mutex_unlock(&ex->Lock);
    return top;
}

void IoDetachDevice(PDEVICE_OBJECT TargetDevice)
{
    PEXECUTIVE ex = IoGetExecutive(TargetDevice);
    BOOLEAN attached;
    pthread_mutex_lock(&ex->Lock);
    attached = TargetDevice->AttachedDevice != NULL;
    if (attached) {
        TargetDevice->AttachedDevice->DeviceObjectExtension.AttachedTo = NULL;
        TargetDevice->AttachedDevice = NULL;
    }
    pthread_mutex_unlock(&ex->Lock);
    if (attached)
        ObDereferenceObject(TargetDevice); /* the attachment's reference; may free it now */
}

void IopDeleteDriverObjects(PEXECUTIVE ex)
{
    for (PPNP_PACKAGE p = ex->Packages; p; p = p->Next) {
        if (p->DriverObject) {
            if (p->DriverObject->DriverUnload)
                p->DriverObject->DriverUnload(p->DriverObject);
            free(p->DriverObject->DriverExtension->ClientDriverExtension);
            free(p->DriverObject);
            p->DriverObject = NULL;
        }
    }
}

/* ---- IRPs ---------------------------------------------------------------------------------- */

void IoInitializeIrp(PIRP Irp, USHORT PacketSize, CCHAR StackSize)
{
    memset(Irp, 0, PacketSize);
    Irp->Type = IO_TYPE_IRP;
    Irp->Size = PacketSize;
    Irp->StackCount = StackSize;
    Irp->CurrentLocation = (CHAR)(StackSize + 1);
    Irp->Tail.Overlay.CurrentStackLocation = &Irp->Stack[StackSize];
    InitializeListHead(&Irp->Tail.Overlay.ListEntry);
    InitializeListHead(&Irp->ThreadListEntry);
}

PIRP IoAllocateIrpEx(PEXECUTIVE Executive, CCHAR StackSize, BOOLEAN ChargeQuota)
{
    PIRP irp;
    ULONG flags = 0;
    if (StackSize <= IO_MAX_FAST_STACK) {
        irp = ExAllocateFromNPagedLookasideList(&Executive->IrpLookaside);
        flags = IRP_ALLOCATED_FIXED;
    } else {
        irp = malloc(IoSizeOfIrp(StackSize));
    }
    if (!irp)
        return NULL;
    IoInitializeIrp(irp, IoSizeOfIrp(StackSize), StackSize);
    irp->Flags = flags;
    irp->Executive = Executive;
    atomic_fetch_add(&Executive->IrpCount, 1);
    return irp;
}

void IoReuseIrp(PIRP Irp, NTSTATUS Iostatus)
{
    ULONG fixed = Irp->Flags & IRP_ALLOCATED_FIXED;
    PEXECUTIVE ex = Irp->Executive;
    IoInitializeIrp(Irp, Irp->Size, Irp->StackCount);
    Irp->Flags = fixed;
    Irp->Executive = ex;
    Irp->IoStatus.Status = Iostatus;
}

void IoFreeIrp(PIRP Irp)
{
    PEXECUTIVE ex = Irp->Executive;
    atomic_fetch_sub(&ex->IrpCount, 1);
    if (Irp->Flags & IRP_ALLOCATED_FIXED)
        ExFreeToNPagedLookasideList(&ex->IrpLookaside, Irp);
    else
        free(Irp);
}

NTSTATUS IoCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp;
    if (Irp->CurrentLocation <= 1) {
        /* No stack location left for this driver: Windows bugchecks (NO_MORE_IRP_STACK_LOCATIONS).
         * Fail the request instead, so a broken stack shows up as an error, not a crash. */
        Irp->IoStatus.Status = STATUS_DRIVER_INTERNAL_ERROR;
        Irp->IoStatus.Information = 0;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return STATUS_DRIVER_INTERNAL_ERROR;
    }
    IoSetNextIrpStackLocation(Irp);
    sp = IoGetCurrentIrpStackLocation(Irp);
    sp->DeviceObject = DeviceObject;
    return DeviceObject->DriverObject->MajorFunction[sp->MajorFunction](DeviceObject, Irp);
}

/*
 * A METHOD_BUFFERED system buffer of `len` bytes: from the executive's small or large lookaside
 * list when it fits (no malloc per IOCTL: every SCSI pass-through takes this path), else from the
 * heap. The `input` bytes are copied in and the rest is zeroed, as calloc did, so a driver that
 * reports more output than it wrote returns zeros, never an earlier request's bytes.
 */
static PVOID IopAllocateSystemBuffer(PEXECUTIVE ex, const void *input, ULONG input_len, ULONG len)
{
    PNPAGED_LOOKASIDE_LIST list = len <= IOP_SYSTEM_BUFFER_SMALL   ? &ex->SystemBufferSmall
                                  : len <= IOP_SYSTEM_BUFFER_LARGE ? &ex->SystemBufferLarge
                                                                   : NULL;
    uint8_t *header = list ? ExAllocateFromNPagedLookasideList(list)
                           : malloc((size_t)IOP_SYSTEM_BUFFER_HEADER + len);
    if (!header)
        return NULL;
    memcpy(header, &list, sizeof(list));
    uint8_t *buf = header + IOP_SYSTEM_BUFFER_HEADER;
    if (input_len)
        memcpy(buf, input, input_len);
    memset(buf + input_len, 0, len - input_len);
    return buf;
}

static void IopFreeSystemBuffer(PVOID Buffer)
{
    uint8_t *header = (uint8_t *)Buffer - IOP_SYSTEM_BUFFER_HEADER;
    PNPAGED_LOOKASIDE_LIST list;
    memcpy(&list, header, sizeof(list));
    if (list)
        ExFreeToNPagedLookasideList(list, header);
    else
        free(header);
}

/* The I/O manager's completion of an IRP it owns: copy buffered output back, report status,
 * signal the waiter or run the caller's callback, free what it allocated. */
static void IopCompleteOwnedIrp(PIRP Irp)
{
    IO_STATUS_BLOCK iosb = Irp->IoStatus;
    PKEVENT event = Irp->UserEvent;
    PIO_APC_ROUTINE apc = Irp->Overlay.AsynchronousParameters.UserApcRoutine;
    PVOID apc_context = Irp->Overlay.AsynchronousParameters.UserApcContext;
    void (*callback)(PVOID *, NTSTATUS, ULONG_PTR) = Irp->UserCompletion.Routine;
    PVOID callback_context[3];
    memcpy(callback_context, Irp->UserCompletion.Context, sizeof(callback_context));

    if ((Irp->Flags & IRP_BUFFERED_IO) && (Irp->Flags & IRP_INPUT_OPERATION) && Irp->UserBuffer &&
        !NT_ERROR(iosb.Status) && iosb.Information) { /* warnings (BUFFER_OVERFLOW) copy too */
        if (iosb.Information > Irp->UserBufferLength) {
            /* A driver reported more than the caller's buffer holds: Windows would bugcheck.
             * Copy what fits, and count the violation where tests and fuzzers look. */
            DbgPrint("iomgr: IRP %p: Information %lu exceeds the output buffer (%u)\n", (void *)Irp,
                     (unsigned long)iosb.Information, Irp->UserBufferLength);
            atomic_fetch_add(&Irp->Executive->Violations, 1);
            iosb.Information = Irp->UserBufferLength;
        }
        memcpy(Irp->UserBuffer, Irp->AssociatedIrp.SystemBuffer, iosb.Information);
    }
    if (Irp->Flags & IRP_TRACKED) {
        PFILE_OBJECT file = Irp->Tail.Overlay.OriginalFileObject;
        pthread_mutex_lock(&file->IrpListLock);
        RemoveEntryList(&Irp->ThreadListEntry);
        pthread_mutex_unlock(&file->IrpListLock);
    }
    if (Irp->Flags & IRP_DEALLOCATE_BUFFER)
        IopFreeSystemBuffer(Irp->AssociatedIrp.SystemBuffer);
    if ((Irp->Flags & IRP_FREE_MDL) && Irp->MdlAddress)
        IoFreeMdl(Irp->MdlAddress);
    if (Irp->UserIosb)
        *Irp->UserIosb = iosb;
    IoFreeIrp(Irp);
    /* After the IRP is gone: the waiter may free the event and status block right away. */
    if (apc)
        apc(apc_context, &iosb, 0);
    if (callback)
        callback(callback_context, iosb.Status, iosb.Information);
    if (event)
        KeSetEvent(event, 0, FALSE);
}

void IoCompleteRequest(PIRP Irp, CCHAR PriorityBoost)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);

    if (atomic_load(&Irp->CancelRoutine)) {
        /* Windows bugchecks (CANCEL_STATE_IN_COMPLETED_IRP): the driver completed an IRP whose
         * cancel routine it had not cleared, so IoCancelIrp could still call it. */
        DbgPrint("iomgr: IRP %p completed with a cancel routine set\n", (void *)Irp);
        atomic_fetch_add(&Irp->Executive->Violations, 1);
        atomic_store(&Irp->CancelRoutine, NULL);
    }
    for (Irp->CurrentLocation++, Irp->Tail.Overlay.CurrentStackLocation++;
         Irp->CurrentLocation <= (CHAR)(Irp->StackCount + 1);
         sp++, Irp->CurrentLocation++, Irp->Tail.Overlay.CurrentStackLocation++) {
        Irp->PendingReturned = (sp->Control & SL_PENDING_RETURNED) != 0;
        BOOLEAN invoke =
            sp->CompletionRoutine &&
            ((NT_SUCCESS(Irp->IoStatus.Status) && (sp->Control & SL_INVOKE_ON_SUCCESS)) ||
             (!NT_SUCCESS(Irp->IoStatus.Status) && (sp->Control & SL_INVOKE_ON_ERROR)) ||
             (Irp->Cancel && (sp->Control & SL_INVOKE_ON_CANCEL)));
        if (invoke) {
            PDEVICE_OBJECT dev = Irp->CurrentLocation == (CHAR)(Irp->StackCount + 1)
                                     ? NULL
                                     : IoGetCurrentIrpStackLocation(Irp)->DeviceObject;
            PIO_COMPLETION_ROUTINE routine = sp->CompletionRoutine;
            PVOID context = sp->Context;
            memset(sp, 0, sizeof(*sp));
            if (routine(dev, Irp, context) == STATUS_MORE_PROCESSING_REQUIRED)
                return;
        } else {
            if (Irp->PendingReturned && Irp->CurrentLocation <= Irp->StackCount)
                IoMarkIrpPending(Irp);
            memset(sp, 0, sizeof(*sp));
        }
    }
    if (Irp->Flags & IRP_IO_MANAGER_OWNED)
        IopCompleteOwnedIrp(Irp);
}

/* ---- Cancellation -------------------------------------------------------------------------- */

static pthread_mutex_t IopCancelSpinLock = PTHREAD_MUTEX_INITIALIZER;

void IoAcquireCancelSpinLock(PKIRQL Irql)
{
    pthread_mutex_lock(&IopCancelSpinLock);
    *Irql = 0;
}

void IoReleaseCancelSpinLock(KIRQL Irql)
{
    (void)Irql;
    pthread_mutex_unlock(&IopCancelSpinLock);
}

BOOLEAN IoCancelIrp(PIRP Irp)
{
    KIRQL irql;
    PDRIVER_CANCEL routine;

    IoAcquireCancelSpinLock(&irql);
    Irp->Cancel = TRUE;
    routine = IoSetCancelRoutine(Irp, NULL);
    if (!routine) {
        IoReleaseCancelSpinLock(irql);
        return FALSE;
    }
    Irp->CancelIrql = irql;
    /* The routine releases the cancel spin lock. The IRP's current location is the driver that
     * set the routine (it holds the IRP pending). */
    routine(IoGetCurrentIrpStackLocation(Irp)->DeviceObject, Irp);
    return TRUE;
}

void IoInitializeFileObject(PFILE_OBJECT FileObject, PDEVICE_OBJECT DeviceObject)
{
    pthread_mutexattr_t attr;
    memset(FileObject, 0, sizeof(*FileObject));
    FileObject->Type = IO_TYPE_FILE;
    FileObject->Size = sizeof(*FileObject);
    FileObject->DeviceObject = DeviceObject;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&FileObject->IrpListLock, &attr);
    pthread_mutexattr_destroy(&attr);
    InitializeListHead(&FileObject->IrpList);
}

void IoDeleteFileObject(PFILE_OBJECT FileObject)
{
    pthread_mutex_destroy(&FileObject->IrpListLock);
}

void IoTrackIrp(PIRP Irp)
{
    PFILE_OBJECT file = Irp->Tail.Overlay.OriginalFileObject;
    pthread_mutex_lock(&file->IrpListLock);
    InsertTailList(&file->IrpList, &Irp->ThreadListEntry);
    Irp->Flags |= IRP_TRACKED;
    pthread_mutex_unlock(&file->IrpListLock);
}

ULONG IoCancelFileIrps(PFILE_OBJECT FileObject, BOOLEAN (*Match)(PIRP Irp, PVOID Context),
                       PVOID Context)
{
    ULONG n = 0;
    /* The lock is recursive and held throughout, so no IRP of the list can be freed under us;
     * a cancel routine that completes IRPs of this list (on this thread) removes them, so the walk
     * restarts after each cancel and skips the IRPs already cancelled. */
    pthread_mutex_lock(&FileObject->IrpListLock);
    for (;;) {
        PIRP victim = NULL;
        for (PLIST_ENTRY e = FileObject->IrpList.Flink; e != &FileObject->IrpList; e = e->Flink) {
            PIRP irp = CONTAINING_RECORD(e, IRP, ThreadListEntry);
            if (!irp->Cancel && (!Match || Match(irp, Context))) {
                victim = irp;
                break;
            }
        }
        if (!victim)
            break;
        n++;
        IoCancelIrp(victim); /* without a routine yet, Cancel is still set for the driver */
    }
    pthread_mutex_unlock(&FileObject->IrpListLock);
    return n;
}

/* ---- MDLs ---------------------------------------------------------------------------------- */

void MmInitializeMdl(PMDL Mdl, PVOID BaseVa, SIZE_T Length)
{
    memset(Mdl, 0, sizeof(*Mdl));
    Mdl->Size = sizeof(MDL);
    Mdl->StartVa = (PVOID)((ULONG_PTR)BaseVa & ~(ULONG_PTR)(PAGE_SIZE - 1));
    Mdl->ByteOffset = (ULONG)((ULONG_PTR)BaseVa & (PAGE_SIZE - 1));
    Mdl->ByteCount = (ULONG)Length;
    Mdl->MdlFlags = MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA;
    Mdl->MappedSystemVa = BaseVa;
}

PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                   PIRP Irp)
{
    PMDL mdl = malloc(sizeof(MDL));
    if (!mdl)
        return NULL;
    MmInitializeMdl(mdl, VirtualAddress, Length);
    if (Irp) {
        if (SecondaryBuffer && Irp->MdlAddress) {
            PMDL m = Irp->MdlAddress;
            while (m->Next)
                m = m->Next;
            m->Next = mdl;
        } else {
            Irp->MdlAddress = mdl;
        }
    }
    return mdl;
}

void IoFreeMdl(PMDL Mdl)
{
    if (!(Mdl->MdlFlags & MDL_ALLOCATED_FIXED))
        free(Mdl);
}

void IoInitializeIrpMdl(PIRP Irp, PVOID Buffer, ULONG Length)
{
    MmInitializeMdl(&Irp->EmbeddedMdl, Buffer, Length);
    Irp->EmbeddedMdl.MdlFlags |= MDL_ALLOCATED_FIXED;
    Irp->MdlAddress = &Irp->EmbeddedMdl;
}

void IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length)
{
    USHORT fixed = TargetMdl->MdlFlags & MDL_ALLOCATED_FIXED;
    MmInitializeMdl(TargetMdl, VirtualAddress, Length);
    TargetMdl->MdlFlags |= MDL_PARTIAL | fixed;
}

/* ---- Requests the I/O manager builds --------------------------------------------------------- */

PIRP IoBuildDeviceIoControlRequest(ULONG IoControlCode, PDEVICE_OBJECT DeviceObject,
                                   PVOID InputBuffer, ULONG InputBufferLength, PVOID OutputBuffer,
                                   ULONG OutputBufferLength, BOOLEAN InternalDeviceIoControl,
                                   PKEVENT Event, PIO_STATUS_BLOCK IoStatusBlock)
{
    PIRP irp = IoAllocateIrpForDevice(DeviceObject);
    PIO_STACK_LOCATION sp;
    ULONG method = METHOD_FROM_CTL_CODE(IoControlCode);

    if (!irp)
        return NULL;
    irp->Flags |= IRP_IO_MANAGER_OWNED;
    irp->UserEvent = Event;
    irp->UserIosb = IoStatusBlock;
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction =
        InternalDeviceIoControl ? IRP_MJ_INTERNAL_DEVICE_CONTROL : IRP_MJ_DEVICE_CONTROL;
    sp->Parameters.DeviceIoControl.IoControlCode = IoControlCode;
    sp->Parameters.DeviceIoControl.InputBufferLength = InputBufferLength;
    sp->Parameters.DeviceIoControl.OutputBufferLength = OutputBufferLength;

    switch (method) {
    case METHOD_BUFFERED: {
        ULONG len = InputBufferLength > OutputBufferLength ? InputBufferLength : OutputBufferLength;
        if (len) {
            irp->AssociatedIrp.SystemBuffer =
                IopAllocateSystemBuffer(irp->Executive, InputBuffer, InputBufferLength, len);
            if (!irp->AssociatedIrp.SystemBuffer) {
                IoFreeIrp(irp);
                return NULL;
            }
            irp->Flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
            if (OutputBuffer && OutputBufferLength) {
                irp->Flags |= IRP_INPUT_OPERATION;
                irp->UserBuffer = OutputBuffer;
                irp->UserBufferLength = OutputBufferLength;
            }
        }
        break;
    }
    case METHOD_IN_DIRECT:
    case METHOD_OUT_DIRECT:
        irp->AssociatedIrp.SystemBuffer = InputBufferLength ? InputBuffer : NULL;
        if (OutputBuffer && OutputBufferLength) {
            IoInitializeIrpMdl(irp, OutputBuffer, OutputBufferLength);
        }
        break;
    case METHOD_NEITHER:
        sp->Parameters.DeviceIoControl.Type3InputBuffer = InputBuffer;
        irp->UserBuffer = OutputBuffer;
        break;
    }
    return irp;
}

PIRP IoBuildSynchronousFsdRequest(ULONG MajorFunction, PDEVICE_OBJECT DeviceObject, PVOID Buffer,
                                  ULONG Length, PLARGE_INTEGER StartingOffset, PKEVENT Event,
                                  PIO_STATUS_BLOCK IoStatusBlock)
{
    PIRP irp = IoAllocateIrpForDevice(DeviceObject);
    PIO_STACK_LOCATION sp;
    if (!irp)
        return NULL;
    irp->Flags |= IRP_IO_MANAGER_OWNED;
    irp->UserEvent = Event;
    irp->UserIosb = IoStatusBlock;
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = (UCHAR)MajorFunction;
    if (MajorFunction == IRP_MJ_READ || MajorFunction == IRP_MJ_WRITE) {
        sp->Parameters.Read.Length = Length;
        sp->Parameters.Read.ByteOffset.QuadPart = StartingOffset ? StartingOffset->QuadPart : 0;
        if (Length) {
            IoInitializeIrpMdl(irp, Buffer, Length);
        }
        irp->UserBuffer = Buffer;
    }
    return irp;
}

static NTSTATUS IopSignalCompletion(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    KeSetEvent((PKEVENT)Context, 0, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

NTSTATUS IoForwardIrpSynchronously(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    KEVENT event;
    NTSTATUS status;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    IoCopyCurrentIrpStackLocationToNext(Irp);
    IoSetCompletionRoutine(Irp, IopSignalCompletion, &event, TRUE, TRUE, TRUE);
    status = IoCallDriver(DeviceObject, Irp);
    if (status == STATUS_PENDING)
        KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    else
        KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    return Irp->IoStatus.Status;
}

/* ---- Shutdown notification ----------------------------------------------------------------- */

NTSTATUS IoRegisterShutdownNotification(PDEVICE_OBJECT DeviceObject)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    NTSTATUS status = STATUS_INSUFFICIENT_RESOURCES;
    pthread_mutex_lock(&ex->Lock);
    if (ex->ShutdownCount == ex->ShutdownCapacity) {
        ULONG capacity = ex->ShutdownCapacity ? ex->ShutdownCapacity * 2 : 16;
        PDEVICE_OBJECT *grown = realloc(ex->ShutdownDevices, capacity * sizeof(*grown));
        if (grown) {
            ex->ShutdownDevices = grown;
            ex->ShutdownCapacity = capacity;
        }
    }
    if (ex->ShutdownCount < ex->ShutdownCapacity) {
        ex->ShutdownDevices[ex->ShutdownCount++] = DeviceObject;
        status = STATUS_SUCCESS;
    }
    pthread_mutex_unlock(&ex->Lock);
    return status;
}

void IoUnregisterShutdownNotification(PDEVICE_OBJECT DeviceObject)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    pthread_mutex_lock(&ex->Lock);
    for (ULONG i = 0; i < ex->ShutdownCount; i++) {
        if (ex->ShutdownDevices[i] == DeviceObject) {
            ex->ShutdownDevices[i] = ex->ShutdownDevices[--ex->ShutdownCount];
            break;
        }
    }
    pthread_mutex_unlock(&ex->Lock);
}
