/*
 * cdrom: the CD-ROM class driver on classpnp (Storage Class Drivers; the guide's CD-ROM pages).
 * It claims CD/DVD logical units (GenCdRom), names them \Device\CdRom<N> with the user name
 * CdRom<N>, reads in the medium's block size through classpnp's transfer packets (or, for a handle
 * with streaming enabled, as READ (12) STREAMING without retries), follows the medium by polling
 * GET EVENT STATUS NOTIFICATION on a timer, and checks every open and privileged request against
 * the device's security descriptor. Per-handle state (exclusive lock owner, removal locks,
 * streaming, the media change count seen) lives in a context hung on the FILE_OBJECT at create.
 */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/class/cdrom/cdrom.h"
#include "drivers/class/cdrom/cdromp.h"

#define CDROM_CLASS_GUID "{4d36e965-e325-11ce-bfc1-08002be10318}"

#ifndef FILE_READ_ONLY_DEVICE
#define FILE_READ_ONLY_DEVICE 0x00000002
#endif

static NTSTATUS CdRompSignal(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    KeSetEvent(Context, 0, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Sends one SRB down and waits, without retries; the sense data (if any) lands in Sense. */
NTSTATUS CdRompSendSrb(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb, PVOID Buffer, ULONG Length,
                       BOOLEAN Write, PUCHAR Sense, ULONG SenseLength)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    UCHAR local[32];
    KEVENT event;
    PIRP irp = IoAllocateIrpForDevice(fdx->LowerDeviceObject);
    NTSTATUS status;
    ULONG interval;

    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (!Sense) {
        Sense = local;
        SenseLength = sizeof(local);
    }
    memset(Sense, 0, SenseLength);
    Srb->Length = sizeof(SCSI_REQUEST_BLOCK);
    Srb->Function = SRB_FUNCTION_EXECUTE_SCSI;
    Srb->SrbStatus = 0;
    Srb->ScsiStatus = 0;
    Srb->DataBuffer = Length ? Buffer : NULL;
    Srb->DataTransferLength = Length;
    Srb->SenseInfoBuffer = Sense;
    Srb->SenseInfoBufferLength = (UCHAR)(SenseLength > 255 ? 255 : SenseLength);
    Srb->SrbFlags =
        fdx->SrbFlags | SRB_FLAGS_NO_QUEUE_FREEZE |
        (Length ? (Write ? SRB_FLAGS_DATA_OUT : SRB_FLAGS_DATA_IN) : SRB_FLAGS_NO_DATA_TRANSFER);
    if (!Srb->TimeOutValue)
        Srb->TimeOutValue = fdx->TimeOutValue;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIO_STACK_LOCATION sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = Srb;
    IoSetCompletionRoutine(irp, CdRompSignal, &event, TRUE, TRUE, TRUE);
    IoCallDriver(fdx->LowerDeviceObject, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    IoFreeIrp(irp);
    KeDeleteEvent(&event);
    if (SRB_STATUS(Srb->SrbStatus) == SRB_STATUS_SUCCESS ||
        (SRB_STATUS(Srb->SrbStatus) == SRB_STATUS_DATA_OVERRUN && !Write))
        status = STATUS_SUCCESS;
    else
        ClassInterpretSenseInfo(Fdo, Srb, IRP_MJ_SCSI, 0, MAXIMUM_RETRIES, &status, &interval);
    Srb->SenseInfoBuffer = NULL;
    return status;
}

/* ---- the medium ---------------------------------------------------------------------------- */

static BOOLEAN CdRompMediaEvent(PDEVICE_OBJECT Fdo);

/* No medium: reads fail at once, and the transfer splitting still has a block size. */
static void CdRompNoMedium(PFUNCTIONAL_DEVICE_EXTENSION fdx)
{
    fdx->PartitionLength.QuadPart = 0;
    fdx->DiskGeometry.BytesPerSector = COOKED_SECTOR_SIZE;
    fdx->SectorShift = 11;
    fdx->DeviceObject->SectorSize = COOKED_SECTOR_SIZE;
}

void CdRompUpdateMedia(PDEVICE_OBJECT Fdo, BOOLEAN Changed)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCDROM_DATA data = fdx->DriverData;
    SCSI_REQUEST_BLOCK srb;
    UCHAR hdr[8];
    KIRQL irql;
    NTSTATUS status;

    KeWaitForSingleObject(&data->MediaLock, Executive, KernelMode, FALSE, NULL);
    /* a pending media event is this change: take it, so the poll does not count it again */
    if (CdRompMediaEvent(Fdo))
        Changed = TRUE;
    /* TEST UNIT READY takes the unit attentions pending for us; MEDIUM MAY HAVE CHANGED (28h)
     * is a change even when a disc is present before and after */
    for (int i = 0; i < 4; i++) {
        UCHAR sense[32];
        memset(&srb, 0, sizeof(srb));
        srb.CdbLength = 6;
        srb.Cdb[0] = SCSIOP_TEST_UNIT_READY;
        status = CdRompSendSrb(Fdo, &srb, NULL, 0, FALSE, sense, sizeof(sense));
        if (!(srb.SrbStatus & SRB_STATUS_AUTOSENSE_VALID) ||
            (sense[2] & 0x0F) != SCSI_SENSE_UNIT_ATTENTION)
            break;
        if (sense[12] == SCSI_ADSENSE_MEDIUM_CHANGED)
            Changed = TRUE;
    }
    BOOLEAN present = NT_SUCCESS(status) && NT_SUCCESS(ClassReadDriveCapacity(Fdo));
    if (!present)
        CdRompNoMedium(fdx);
    BOOLEAN dvd = FALSE;
    if (present) {
        memset(&srb, 0, sizeof(srb));
        srb.CdbLength = 10;
        srb.Cdb[0] = SCSIOP_GET_CONFIGURATION;
        srb.Cdb[1] = SCSI_GET_CONFIGURATION_REQUEST_TYPE_ONE;
        srb.Cdb[8] = sizeof(hdr);
        if (NT_SUCCESS(ClassSendSrbSynchronous(Fdo, &srb, hdr, sizeof(hdr), FALSE)))
            dvd = scsi_get_be16(hdr + 6) == 0x0010;
    }
    KeAcquireSpinLock(&data->Lock, &irql);
    if (present != (atomic_load(&data->MediaBytes) != 0) || Changed)
        data->MediaChangeCount++;
    atomic_store_explicit(&data->MediaBytes, present ? (ULONGLONG)fdx->PartitionLength.QuadPart : 0,
                          memory_order_release);
    data->MediaIsDvd = dvd;
    KeReleaseSpinLock(&data->Lock, irql);
    KeSetEvent(&data->MediaLock, 0, FALSE);
}

/* GET EVENT STATUS NOTIFICATION, polled, media class (MMC-6 6.7): TRUE when the drive reports
 * NewMedia, MediaRemoval or MediaChanged (the event is consumed). */
static BOOLEAN CdRompMediaEvent(PDEVICE_OBJECT Fdo)
{
    SCSI_REQUEST_BLOCK srb;
    UCHAR ev[8];
    memset(&srb, 0, sizeof(srb));
    memset(ev, 0, sizeof(ev));
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_GET_EVENT_STATUS;
    srb.Cdb[1] = 0x01; /* polled */
    srb.Cdb[4] = 0x10; /* media class */
    srb.Cdb[8] = sizeof(ev);
    if (!NT_SUCCESS(CdRompSendSrb(Fdo, &srb, ev, sizeof(ev), FALSE, NULL, 0)) ||
        srb.DataTransferLength < 8 || (ev[2] & 0x87) != 4)
        return FALSE;
    UCHAR code = ev[4] & 0x0F;
    return code == 2 || code == 3 || code == 4;
}

/* The poll, in a work item: a media event means the medium must be looked at again. */
static void CdRompPollWork(PDEVICE_OBJECT Fdo, PVOID Context)
{
    PCDROM_DATA data = CdRompData(Fdo);
    KIRQL irql;
    KeAcquireSpinLock(&data->Lock, &irql);
    /* an exclusive owner that asked for no media notifications gets none while it holds the
     * lock: the poll leaves the drive's events alone until it unlocks */
    BOOLEAN quiet =
        data->ExclusiveOwner && (data->ExclusiveFlags & CDROM_NO_MEDIA_NOTIFICATIONS) != 0;
    KeReleaseSpinLock(&data->Lock, irql);
    if (!quiet && !atomic_load(&data->Stopping) && CdRompMediaEvent(Fdo))
        CdRompUpdateMedia(Fdo, TRUE);
    atomic_store(&data->PollQueued, 0);
}

/* The timer's DPC: queue the poll unless one is queued or the device is going away. Taking
 * PollQueued before looking at Stopping pairs with remove, which sets Stopping before it waits
 * for PollQueued to clear. */
static void CdRompPollDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PDEVICE_OBJECT fdo = Context;
    PCDROM_DATA data = CdRompData(fdo);
    int idle = 0;
    if (!atomic_compare_exchange_strong(&data->PollQueued, &idle, 1))
        return;
    if (atomic_load(&data->Stopping)) {
        atomic_store(&data->PollQueued, 0);
        return;
    }
    IoQueueWorkItem(data->PollWorkItem, CdRompPollWork, DelayedWorkQueue, NULL);
}

BOOLEAN CdRompLockedOut(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PCDROM_DATA data = CdRompData(Fdo);
    PFILE_OBJECT fo = IoGetCurrentIrpStackLocation(Irp)->FileObject;
    KIRQL irql;
    KeAcquireSpinLock(&data->Lock, &irql);
    BOOLEAN out = data->ExclusiveOwner && data->ExclusiveOwner != fo;
    KeReleaseSpinLock(&data->Lock, irql);
    return out;
}

/* ---- PnP ----------------------------------------------------------------------------------- */

static NTSTATUS CdRomAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    PDEVICE_OBJECT fdo = NULL;
    char name[64];
    NTSTATUS status = STATUS_OBJECT_NAME_COLLISION;
    ULONG n;

    /* the first free \Device\CdRom<N> */
    for (n = 0; n < 1024 && status == STATUS_OBJECT_NAME_COLLISION; n++) {
        snprintf(name, sizeof(name), "\\Device\\CdRom%u", n);
        status = ClassCreateDeviceObject(DriverObject, name, Pdo, TRUE, &fdo);
    }
    if (!NT_SUCCESS(status))
        return status;
    n--;
    PFUNCTIONAL_DEVICE_EXTENSION fdx = fdo->DeviceExtension;
    PCDROM_DATA data = fdx->DriverData;
    data->CdRomNumber = n;
    fdx->DeviceNumber = n;
    KeInitializeSpinLock(&data->Lock);
    KeInitializeEvent(&data->MediaLock, SynchronizationEvent, TRUE);
    atomic_init(&data->PollQueued, 0);
    atomic_init(&data->MediaBytes, 0);
    atomic_init(&data->Stopping, false);
    fdx->LowerDeviceObject = IoAttachDeviceToDeviceStack(fdo, Pdo);
    fdo->Flags |= DO_DIRECT_IO;
    fdo->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

/* ClassInitDevice: the medium, if there is one; an empty drive starts too. */
static NTSTATUS CdRomInitDevice(PDEVICE_OBJECT Fdo)
{
    CdRompUpdateMedia(Fdo, FALSE);
    CdRompData(Fdo)->MediaChangeCount = 0;
    return STATUS_SUCCESS;
}

/* The security descriptor: the devnode's Security value, else the CD-ROM class key's. */
static NTSTATUS CdRompReadSecurity(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCDROM_DATA data = fdx->DriverData;
    PEXECUTIVE ex = IoGetExecutive(Fdo);
    char key[512], why[128];
    NTSTATUS status = STATUS_OBJECT_NAME_NOT_FOUND;

    data->Security[0] = '\0';
    if (NT_SUCCESS(
            IoGetDeviceRegistryKeyPath(fdx->LowerPdo, PLUGPLAY_REGKEY_DEVICE, key, sizeof(key))))
        status =
            RtlQueryRegistryString(ex, key, "Security", data->Security, sizeof(data->Security));
    if (status == STATUS_OBJECT_NAME_NOT_FOUND)
        status = RtlQueryRegistryString(ex, "Control\\Class\\" CDROM_CLASS_GUID, "Security",
                                        data->Security, sizeof(data->Security));
    if (status == STATUS_OBJECT_NAME_NOT_FOUND) {
        data->Security[0] = '\0';
        return STATUS_SUCCESS;
    }
    if (!NT_SUCCESS(status)) {
        IoSetDeviceProblemText(Fdo, "cdrom: the Security value cannot be read (longer than %u?)",
                               CDROM_SECURITY_MAX - 1);
        return status;
    }
    if (!CdRompDescriptorValid(data->Security, why, sizeof(why))) {
        IoSetDeviceProblemText(Fdo, "cdrom: Security '%s': %s", data->Security, why);
        return STATUS_INVALID_PARAMETER;
    }
    return STATUS_SUCCESS;
}

static NTSTATUS CdRomStartDevice(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCDROM_DATA data = fdx->DriverData;
    PEXECUTIVE ex = IoGetExecutive(Fdo);
    ULONGLONG poll = CDROM_POLL_DEFAULT_MS;
    NTSTATUS status = CdRompReadSecurity(Fdo);
    if (!NT_SUCCESS(status))
        return status;

    snprintf(data->LinkName, sizeof(data->LinkName), "CdRom%u", data->CdRomNumber);
    status = IoCreateSymbolicLink(ex, data->LinkName, fdx->DeviceName);
    if (!NT_SUCCESS(status))
        return status;
    data->LinkCreated = TRUE;
    IoSetDeviceUserName(Fdo, data->LinkName);
    IoSetDeviceUserName(Fdo, fdx->DeviceName);

    /* Services\cdrom\Parameters\MediaPollInterval (ms; 0 = no polling) */
    RtlQueryRegistryUlonglong(ex, "Services\\cdrom\\Parameters", "MediaPollInterval", &poll);
    data->PollIntervalMs = poll > 600000 ? 600000 : (ULONG)poll;
    if (data->PollIntervalMs) {
        data->PollWorkItem = IoAllocateWorkItem(Fdo);
        if (!data->PollWorkItem)
            return STATUS_INSUFFICIENT_RESOURCES;
        KeInitializeTimerEx(ex, &data->PollTimer);
        KeInitializeDpcEx(ex, &data->PollDpc, CdRompPollDpc, Fdo);
        LARGE_INTEGER due = {.QuadPart = -(LONGLONG)data->PollIntervalMs * 10000};
        KeSetTimerEx(&data->PollTimer, due, (LONG)data->PollIntervalMs, &data->PollDpc);
        data->TimerStarted = TRUE;
    }
    return STATUS_SUCCESS;
}

static NTSTATUS CdRomRemoveDevice(PDEVICE_OBJECT Fdo, UCHAR Type)
{
    PCDROM_DATA data = CdRompData(Fdo);
    atomic_store(&data->Stopping, true);
    if (data->TimerStarted) {
        KeCancelTimer(&data->PollTimer);
        /* a DPC that fired before the cancel runs to its end, and the poll it queued too */
        KeRemoveQueueDpc(&data->PollDpc);
        KeFlushQueuedDpcsEx(IoGetExecutive(Fdo));
        for (int i = 0; i < 10000 && atomic_load(&data->PollQueued); i++)
            KeStallExecutionProcessor(1000);
        KeDeleteEvent(&data->PollTimer.Signal);
        data->TimerStarted = FALSE;
    }
    if (data->PollWorkItem) {
        IoFreeWorkItem(data->PollWorkItem);
        data->PollWorkItem = NULL;
    }
    if (data->LinkCreated) {
        IoDeleteSymbolicLink(IoGetExecutive(Fdo), data->LinkName);
        data->LinkCreated = FALSE;
    }
    KeDeleteEvent(&data->MediaLock);
    return STATUS_SUCCESS;
}

/* ---- create, cleanup, close ---------------------------------------------------------------- */

NTSTATUS CdRompComplete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

/* Drops what a handle holds: its exclusive lock and its medium removal locks. */
static void CdRompReleaseHandle(PDEVICE_OBJECT Fdo, PCDROM_FILE_CONTEXT ctx)
{
    PCDROM_DATA data = CdRompData(Fdo);
    KIRQL irql;
    BOOLEAN allow = FALSE;
    KeAcquireSpinLock(&data->Lock, &irql);
    if (data->ExclusiveOwner == ctx->FileObject) {
        data->ExclusiveOwner = NULL;
        memset(data->ExclusiveCaller, 0, sizeof(data->ExclusiveCaller));
    }
    if (ctx->LockCount) {
        data->LockCount -= ctx->LockCount;
        ctx->LockCount = 0;
        allow = data->LockCount == 0;
    }
    KeReleaseSpinLock(&data->Lock, irql);
    if (allow) {
        SCSI_REQUEST_BLOCK srb = {0};
        srb.CdbLength = 6;
        srb.Cdb[0] = SCSIOP_MEDIUM_REMOVAL;
        ClassSendSrbSynchronous(Fdo, &srb, NULL, 0, FALSE);
    }
}

/* IRP_MJ_CREATE checks the opener against the security descriptor (read or write access as
 * asked); CLEANUP releases the handle's locks (the exclusive lock dies with its handle); CLOSE
 * frees the context. */
static NTSTATUS CdRomCreateClose(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PFILE_OBJECT fo = sp->FileObject;
    PCDROM_DATA data = CdRompData(Fdo);

    if (!fo)
        return CdRompComplete(Irp, STATUS_SUCCESS, 0);
    PCDROM_FILE_CONTEXT ctx = fo->FsContext2;
    switch (sp->MajorFunction) {
    case IRP_MJ_CREATE: {
        ULONG rights = CdRompRightsFor(data->Security, fo->Caller.Principal);
        if ((fo->ReadAccess && !(rights & CDROM_RIGHT_READ)) ||
            (fo->WriteAccess && !(rights & CDROM_RIGHT_WRITE))) {
            DbgPrint("cdrom: CdRom%u: %s may not open for %s\n", data->CdRomNumber,
                     fo->Caller.Principal[0] ? fo->Caller.Principal : "(nobody)",
                     fo->WriteAccess ? "writing" : "reading");
            return CdRompComplete(Irp, STATUS_ACCESS_DENIED, 0);
        }
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return CdRompComplete(Irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        ctx->FileObject = fo;
        ctx->Rights = rights;
        KIRQL irql;
        KeAcquireSpinLock(&data->Lock, &irql);
        ctx->SeenChangeCount = data->MediaChangeCount;
        KeReleaseSpinLock(&data->Lock, irql);
        fo->FsContext2 = ctx;
        return CdRompComplete(Irp, STATUS_SUCCESS, 0);
    }
    case IRP_MJ_CLEANUP:
        if (ctx)
            CdRompReleaseHandle(Fdo, ctx);
        return CdRompComplete(Irp, STATUS_SUCCESS, 0);
    default:
        if (ctx) {
            fo->FsContext2 = NULL;
            free(ctx);
        }
        return CdRompComplete(Irp, STATUS_SUCCESS, 0);
    }
}

/* ---- reads --------------------------------------------------------------------------------- */

/* A streaming read (the guide's "Real-time Streaming"): READ (12) with STREAMING set, one
 * transfer at a time, no retries, so a damaged sector costs the stream that sector and not a
 * stall. Runs in the caller's thread and completes the IRP. */
static NTSTATUS CdRompStreamingRead(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PUCHAR buf = MmGetSystemAddressForMdlSafe(Irp->MdlAddress, 0);
    ULONGLONG offset = (ULONGLONG)sp->Parameters.Read.ByteOffset.QuadPart;
    ULONG length = sp->Parameters.Read.Length, done = 0;
    ULONG max = ClassMaximumTransferBytes(fdx);
    NTSTATUS status = STATUS_SUCCESS;

    while (done < length) {
        ULONG n = length - done < max ? length - done : max;
        SCSI_REQUEST_BLOCK srb = {0};
        srb.CdbLength = 12;
        srb.Cdb[0] = SCSIOP_READ12;
        scsi_put_be32(&srb.Cdb[2], (ULONG)((offset + done) >> fdx->SectorShift));
        scsi_put_be32(&srb.Cdb[6], n >> fdx->SectorShift);
        srb.Cdb[10] = 0x80; /* STREAMING */
        status = CdRompSendSrb(Fdo, &srb, buf + done, n, FALSE, NULL, 0);
        if (!NT_SUCCESS(status))
            break;
        done += srb.DataTransferLength;
        if (srb.DataTransferLength < n)
            break;
    }
    IoMarkIrpPending(Irp);
    CdRompComplete(Irp, status, done);
    return STATUS_PENDING;
}

/* ClassReadWriteVerification: no writes to a read-only medium; whole sectors inside the medium;
 * not from another handle while the drive is exclusively locked. */
static NTSTATUS CdRomReadWriteVerification(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    LONGLONG offset = sp->Parameters.Read.ByteOffset.QuadPart;
    ULONG length = sp->Parameters.Read.Length;
    ULONG mask = fdx->DiskGeometry.BytesPerSector - 1;

    if (CdRompLockedOut(Fdo, Irp))
        return STATUS_ACCESS_DENIED;
    if (sp->MajorFunction == IRP_MJ_WRITE)
        return STATUS_MEDIA_WRITE_PROTECTED;
    ULONGLONG media = CdRompMediaBytes(Fdo);
    if (!media) {
        CdRompUpdateMedia(Fdo, FALSE); /* a disc may have arrived since the last poll */
        media = CdRompMediaBytes(Fdo);
    }
    if (!media)
        return STATUS_NO_MEDIA_IN_DEVICE;
    if (offset < 0 || ((ULONGLONG)offset & mask) || (length & mask))
        return STATUS_INVALID_PARAMETER;
    if ((ULONGLONG)offset + length > media)
        return STATUS_INVALID_PARAMETER;
    PCDROM_FILE_CONTEXT ctx = CdRompFileContext(Irp);
    if (ctx && ctx->Streaming && length && Irp->MdlAddress)
        return CdRompStreamingRead(Fdo, Irp);
    return STATUS_SUCCESS;
}

NTSTATUS CdRomDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    CLASS_INIT_DATA init;
    memset(&init, 0, sizeof(init));
    init.InitializationDataSize = sizeof(init);
    init.FdoData.DeviceExtensionSize = sizeof(CDROM_DATA);
    init.FdoData.DeviceType = FILE_DEVICE_CD_ROM;
    init.FdoData.DeviceCharacteristics = FILE_REMOVABLE_MEDIA | FILE_READ_ONLY_DEVICE;
    init.FdoData.ClassReadWriteVerification = CdRomReadWriteVerification;
    init.FdoData.ClassDeviceControl = CdRomDeviceControl;
    init.FdoData.ClassCreateClose = CdRomCreateClose;
    init.FdoData.ClassInitDevice = CdRomInitDevice;
    init.FdoData.ClassStartDevice = CdRomStartDevice;
    init.FdoData.ClassRemoveDevice = CdRomRemoveDevice;
    init.ClassAddDevice = CdRomAddDevice;
    return (NTSTATUS)ClassInitialize(DriverObject, (PVOID)RegistryPath, &init);
}

const char CdRomInf[] = "[Version]\n"
                        "Signature = \"$Windows NT$\"\n"
                        "Class = CDROM\n"
                        "ClassGuid = " CDROM_CLASS_GUID "\n"
                        "Provider = storstack\n"
                        "[Models]\n"
                        "CD-ROM drive = cdrom_Install, GenCdRom\n"
                        "[cdrom_Install.Services]\n"
                        "AddService = cdrom, 0x00000002, cdrom_Service_Inst\n"
                        "[cdrom_Service_Inst]\n"
                        "ServiceType = 1\n"
                        "StartType = 0\n";
