/*
 * classpnp's internal routines for requests the class sends itself: synchronous SRBs with
 * retries (ClassSendSrbSynchronous), claiming the device (ClassClaimDevice), descriptors
 * (ClassGetDescriptor), capacity (ClassReadDriveCapacity), mode pages (ClassModeSense,
 * ClassFindModePage), releasing a frozen queue (ClassReleaseQueue), and the asynchronous SRBs
 * behind START UNIT and cache flushes.
 */
#include <stdlib.h>
#include <unistd.h>

#include "drivers/class/classpnp/classp.h"

static NTSTATUS ClasspSignal(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    KeSetEvent(Context, 0, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Sends an SRB to the device below the FDO and waits; no retries. */
static NTSTATUS ClasspSendSrbOnce(PDEVICE_OBJECT Lower, PSCSI_REQUEST_BLOCK Srb)
{
    KEVENT event;
    PIRP irp = IoAllocateIrpForDevice(Lower);
    PIO_STACK_LOCATION sp;
    NTSTATUS status;

    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = Srb;
    IoSetCompletionRoutine(irp, ClasspSignal, &event, TRUE, TRUE, TRUE);
    IoCallDriver(Lower, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    status = irp->IoStatus.Status;
    IoFreeIrp(irp);
    KeDeleteEvent(&event);
    return status;
}

NTSTATUS ClassSendSrbSynchronous(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb, PVOID BufferAddress,
                                 ULONG BufferLength, BOOLEAN WriteToDevice)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    UCHAR sense[CLASSP_SENSE_LENGTH];
    NTSTATUS status = STATUS_IO_DEVICE_ERROR;
    ULONG retries = MAXIMUM_RETRIES, interval = 0;

    for (;;) {
        Srb->Length = sizeof(SCSI_REQUEST_BLOCK);
        Srb->Function = SRB_FUNCTION_EXECUTE_SCSI;
        Srb->SrbStatus = 0;
        Srb->ScsiStatus = 0;
        Srb->DataBuffer = BufferLength ? BufferAddress : NULL;
        Srb->DataTransferLength = BufferLength;
        Srb->SenseInfoBuffer = sense;
        Srb->SenseInfoBufferLength = sizeof(sense);
        Srb->SrbFlags = fdx->SrbFlags | SRB_FLAGS_NO_QUEUE_FREEZE |
                        (BufferLength ? (WriteToDevice ? SRB_FLAGS_DATA_OUT : SRB_FLAGS_DATA_IN)
                                      : SRB_FLAGS_NO_DATA_TRANSFER);
        if (!Srb->TimeOutValue)
            Srb->TimeOutValue = fdx->TimeOutValue;
        ClasspSendSrbOnce(fdx->LowerDeviceObject, Srb);
        if (SRB_STATUS(Srb->SrbStatus) == SRB_STATUS_SUCCESS ||
            (SRB_STATUS(Srb->SrbStatus) == SRB_STATUS_DATA_OVERRUN && !WriteToDevice)) {
            status = STATUS_SUCCESS; /* an underrun on a read: DataTransferLength says how much */
            break;
        }
        BOOLEAN retry = ClassInterpretSenseInfo(Fdo, Srb, IRP_MJ_SCSI, 0, MAXIMUM_RETRIES - retries,
                                                &status, &interval);
        if (NT_SUCCESS(status) || !retry || retries-- == 0)
            break;
        if (interval)
            usleep(interval * 100000u);
    }
    Srb->SenseInfoBuffer = NULL;
    Srb->SenseInfoBufferLength = 0;
    return status;
}

NTSTATUS ClassClaimDevice(PDEVICE_OBJECT LowerDeviceObject, BOOLEAN Release)
{
    SCSI_REQUEST_BLOCK srb = {0};
    srb.Length = sizeof(srb);
    srb.Function = Release ? SRB_FUNCTION_RELEASE_DEVICE : SRB_FUNCTION_CLAIM_DEVICE;
    ClasspSendSrbOnce(LowerDeviceObject, &srb);
    if (SRB_STATUS(srb.SrbStatus) == SRB_STATUS_SUCCESS)
        return STATUS_SUCCESS;
    return SRB_STATUS(srb.SrbStatus) == SRB_STATUS_BUSY ? STATUS_DEVICE_BUSY
                                                        : STATUS_IO_DEVICE_ERROR;
}

NTSTATUS ClassSendDeviceIoControlSynchronous(ULONG IoControlCode, PDEVICE_OBJECT TargetDeviceObject,
                                             PVOID Buffer, ULONG InputBufferLength,
                                             ULONG OutputBufferLength,
                                             BOOLEAN InternalDeviceIoControl,
                                             PIO_STATUS_BLOCK IoStatus)
{
    KEVENT event;
    PIRP irp;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp = IoBuildDeviceIoControlRequest(IoControlCode, TargetDeviceObject, Buffer,
                                        InputBufferLength, Buffer, OutputBufferLength,
                                        InternalDeviceIoControl, &event, IoStatus);
    if (!irp) {
        KeDeleteEvent(&event);
        IoStatus->Status = STATUS_INSUFFICIENT_RESOURCES;
        IoStatus->Information = 0;
        return IoStatus->Status;
    }
    IoCallDriver(TargetDeviceObject, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    return IoStatus->Status;
}

/* Storage Class Driver's GetDescriptor Routine: the header first to learn the size, then all. */
NTSTATUS ClassGetDescriptor(PDEVICE_OBJECT DeviceObject, STORAGE_PROPERTY_ID *PropertyId,
                            PVOID *Descriptor)
{
    STORAGE_PROPERTY_QUERY query;
    union {
        STORAGE_PROPERTY_QUERY q;
        STORAGE_DESCRIPTOR_HEADER h;
    } probe;
    IO_STATUS_BLOCK iosb;
    PUCHAR buf;
    ULONG size;

    *Descriptor = NULL;
    memset(&probe, 0, sizeof(probe));
    probe.q.PropertyId = *PropertyId;
    probe.q.QueryType = PropertyStandardQuery;
    ClassSendDeviceIoControlSynchronous(IOCTL_STORAGE_QUERY_PROPERTY, DeviceObject, &probe,
                                        sizeof(probe.q), sizeof(probe.h), FALSE, &iosb);
    if (!NT_SUCCESS(iosb.Status))
        return iosb.Status;
    if (iosb.Information < sizeof(STORAGE_DESCRIPTOR_HEADER) || probe.h.Size < sizeof(probe.h) ||
        probe.h.Size > 64 * 1024)
        return STATUS_DEVICE_PROTOCOL_ERROR;
    size = probe.h.Size;
    buf = ExAllocatePoolWithTag(NonPagedPool, size > sizeof(query) ? size : sizeof(query), 0);
    if (!buf)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(&query, 0, sizeof(query));
    query.PropertyId = *PropertyId;
    query.QueryType = PropertyStandardQuery;
    memcpy(buf, &query, sizeof(query));
    ClassSendDeviceIoControlSynchronous(IOCTL_STORAGE_QUERY_PROPERTY, DeviceObject, buf,
                                        sizeof(query), size, FALSE, &iosb);
    if (!NT_SUCCESS(iosb.Status)) {
        ExFreePool(buf);
        return iosb.Status;
    }
    *Descriptor = buf;
    return STATUS_SUCCESS;
}

/* READ CAPACITY (10), and (16) when the medium is past 2 TiB of 512-byte blocks (SBC-4 5.16). */
NTSTATUS ClassReadDriveCapacity(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    SCSI_REQUEST_BLOCK srb;
    UCHAR data[32];
    ULONGLONG last_lba;
    ULONG block;
    NTSTATUS status;

    memset(&srb, 0, sizeof(srb));
    memset(data, 0, sizeof(data));
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_READ_CAPACITY;
    status = ClassSendSrbSynchronous(Fdo, &srb, data, 8, FALSE);
    if (!NT_SUCCESS(status))
        return status;
    last_lba = scsi_get_be32(data);
    block = scsi_get_be32(data + 4);
    if (last_lba == 0xFFFFFFFFull) {
        memset(&srb, 0, sizeof(srb));
        srb.CdbLength = 16;
        srb.Cdb[0] = SCSIOP_SERVICE_ACTION_IN16;
        srb.Cdb[1] = SERVICE_ACTION_READ_CAPACITY16;
        scsi_put_be32(&srb.Cdb[10], 32);
        status = ClassSendSrbSynchronous(Fdo, &srb, data, 32, FALSE);
        if (!NT_SUCCESS(status))
            return status;
        last_lba = scsi_get_be64(data);
        block = scsi_get_be32(data + 8);
    }
    if (block < 512 || block > 65536 || (block & (block - 1))) {
        DbgPrint("classpnp: block length %u is not usable\n", block);
        return STATUS_INVALID_BLOCK_LENGTH;
    }
    fdx->DiskGeometry.BytesPerSector = block;
    fdx->SectorShift = (ULONG)__builtin_ctz(block);
    fdx->PartitionLength.QuadPart = (LONGLONG)((last_lba + 1) << fdx->SectorShift);
    /* A geometry for callers that still want one: 255 heads, 63 sectors per track. */
    fdx->DiskGeometry.TracksPerCylinder = 255;
    fdx->DiskGeometry.SectorsPerTrack = 63;
    fdx->DiskGeometry.Cylinders.QuadPart = (LONGLONG)((last_lba + 1) / (255 * 63));
    fdx->DiskGeometry.MediaType = fdx->DeviceDescriptor && fdx->DeviceDescriptor->RemovableMedia
                                      ? RemovableMedia
                                      : FixedMedia;
    Fdo->SectorSize = block;
    return STATUS_SUCCESS;
}

ULONG ClasspModeSense(PDEVICE_OBJECT Fdo, PUCHAR Buffer, ULONG Length, UCHAR PageMode,
                      UCHAR PageControl)
{
    SCSI_REQUEST_BLOCK srb;
    if (Length > 255)
        Length = 255;
    memset(&srb, 0, sizeof(srb));
    memset(Buffer, 0, Length);
    srb.CdbLength = 6;
    srb.Cdb[0] = SCSIOP_MODE_SENSE;
    srb.Cdb[2] = (UCHAR)((PageControl << 6) | (PageMode & 0x3F));
    srb.Cdb[4] = (UCHAR)Length;
    if (!NT_SUCCESS(ClassSendSrbSynchronous(Fdo, &srb, Buffer, Length, FALSE)))
        return 0;
    return srb.DataTransferLength;
}

ULONG ClassModeSense(PDEVICE_OBJECT Fdo, PUCHAR ModeSenseBuffer, ULONG Length, UCHAR PageMode)
{
    return ClasspModeSense(Fdo, ModeSenseBuffer, Length, PageMode, 0);
}

PVOID ClassFindModePage(PUCHAR ModeSenseBuffer, ULONG Length, UCHAR PageMode, BOOLEAN Use6Byte)
{
    ULONG header = Use6Byte ? 4 : 8, offset, end;
    if (Length < header)
        return NULL;
    /* mode data length counts the bytes after itself */
    end = Use6Byte ? (ULONG)ModeSenseBuffer[0] + 1 : (ULONG)scsi_get_be16(ModeSenseBuffer) + 2;
    if (end > Length)
        end = Length;
    offset = header + (Use6Byte ? ModeSenseBuffer[3] : scsi_get_be16(ModeSenseBuffer + 6));
    while (offset + 2 <= end) {
        if ((ModeSenseBuffer[offset] & 0x3F) == PageMode)
            return offset + 2 + ModeSenseBuffer[offset + 1] <= end ? ModeSenseBuffer + offset
                                                                   : NULL;
        offset += 2 + ModeSenseBuffer[offset + 1];
    }
    return NULL;
}

/* ---- Asynchronous one-off SRBs ----------------------------------------------------------------
 */

typedef struct _CLASSP_ASYNC_SRB {
    SCSI_REQUEST_BLOCK Srb;
    UCHAR Sense[CLASSP_SENSE_LENGTH];
    PDEVICE_OBJECT Fdo;
    PIRP OriginalIrp; /* completed with the outcome, when set */
    PIRP Irp;
    ULONG RetriesLeft;
} CLASSP_ASYNC_SRB, *PCLASSP_ASYNC_SRB;

static void ClasspSendAsync(PCLASSP_ASYNC_SRB a);

static NTSTATUS ClasspAsyncDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PCLASSP_ASYNC_SRB a = Context;
    NTSTATUS status = STATUS_SUCCESS;
    if (a->Srb.Function == SRB_FUNCTION_EXECUTE_SCSI &&
        SRB_STATUS(a->Srb.SrbStatus) != SRB_STATUS_SUCCESS) {
        BOOLEAN retry = ClassInterpretSenseInfo(a->Fdo, &a->Srb, IRP_MJ_SCSI, 0, 0, &status, NULL);
        if (retry && a->RetriesLeft) {
            a->RetriesLeft--;
            ClasspSendAsync(a);
            return STATUS_MORE_PROCESSING_REQUIRED;
        }
    }
    if (a->OriginalIrp) {
        PFUNCTIONAL_DEVICE_EXTENSION fdx = a->Fdo->DeviceExtension;
        a->OriginalIrp->IoStatus.Status = status;
        a->OriginalIrp->IoStatus.Information = 0;
        IoCompleteRequest(a->OriginalIrp, IO_NO_INCREMENT);
        ClasspReleaseRemoveLock(fdx);
    }
    IoFreeIrp(Irp);
    free(a);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

static void ClasspSendAsync(PCLASSP_ASYNC_SRB a)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = a->Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp;
    IoReuseIrp(a->Irp, STATUS_NOT_SUPPORTED);
    a->Srb.SrbStatus = 0;
    a->Srb.ScsiStatus = 0;
    a->Srb.SenseInfoBuffer = a->Sense;
    a->Srb.SenseInfoBufferLength = sizeof(a->Sense);
    sp = IoGetNextIrpStackLocation(a->Irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = &a->Srb;
    IoSetCompletionRoutine(a->Irp, ClasspAsyncDone, a, TRUE, TRUE, TRUE);
    IoCallDriver(fdx->LowerDeviceObject, a->Irp);
}

static PCLASSP_ASYNC_SRB ClasspNewAsync(PDEVICE_OBJECT Fdo, UCHAR Function, PIRP Original)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCLASSP_ASYNC_SRB a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->Irp = IoAllocateIrpForDevice(fdx->LowerDeviceObject);
    if (!a->Irp) {
        free(a);
        return NULL;
    }
    a->Fdo = Fdo;
    a->OriginalIrp = Original;
    a->RetriesLeft = MAXIMUM_RETRIES;
    a->Srb.Length = sizeof(SCSI_REQUEST_BLOCK);
    a->Srb.Function = Function;
    a->Srb.TimeOutValue = fdx->TimeOutValue;
    a->Srb.SrbFlags = SRB_FLAGS_NO_QUEUE_FREEZE | SRB_FLAGS_NO_DATA_TRANSFER;
    return a;
}

void ClasspReleaseQueueAsync(PDEVICE_OBJECT Fdo)
{
    PCLASSP_ASYNC_SRB a;
    if (!Fdo)
        return;
    a = ClasspNewAsync(Fdo, SRB_FUNCTION_RELEASE_QUEUE, NULL);
    if (a) {
        a->Srb.SrbFlags |= SRB_FLAGS_BYPASS_FROZEN_QUEUE;
        ClasspSendAsync(a);
    }
}

/* Storage Class Driver's ReleaseQueue Routine, from a context that may wait. */
void ClassReleaseQueue(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    SCSI_REQUEST_BLOCK srb = {0};
    srb.Length = sizeof(srb);
    srb.Function = SRB_FUNCTION_RELEASE_QUEUE;
    srb.SrbFlags = SRB_FLAGS_BYPASS_FROZEN_QUEUE;
    ClasspSendSrbOnce(fdx->LowerDeviceObject, &srb);
}

void ClassSendStartUnit(PDEVICE_OBJECT Fdo)
{
    PCLASSP_ASYNC_SRB a = ClasspNewAsync(Fdo, SRB_FUNCTION_EXECUTE_SCSI, NULL);
    if (!a)
        return;
    a->RetriesLeft = 0;
    a->Srb.CdbLength = 6;
    a->Srb.Cdb[0] = SCSIOP_START_STOP_UNIT;
    a->Srb.Cdb[4] = 0x01; /* START */
    ClasspSendAsync(a);
}

/* SYNCHRONIZE CACHE (10) over the whole medium; completes Irp with the outcome. */
NTSTATUS ClassSynchronizeCache(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PCLASSP_ASYNC_SRB a = ClasspNewAsync(Fdo, SRB_FUNCTION_EXECUTE_SCSI, Irp);
    if (!a) {
        PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
        Irp->IoStatus.Status = STATUS_INSUFFICIENT_RESOURCES;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        ClasspReleaseRemoveLock(fdx);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    a->Srb.CdbLength = 10;
    a->Srb.Cdb[0] = SCSIOP_SYNCHRONIZE_CACHE;
    a->Srb.TimeOutValue = 60;
    IoMarkIrpPending(Irp);
    ClasspSendAsync(a);
    return STATUS_PENDING;
}

ULONG ClassMaximumTransferBytes(PFUNCTIONAL_DEVICE_EXTENSION fdx)
{
    PSTORAGE_ADAPTER_DESCRIPTOR ad = fdx->AdapterDescriptor;
    ULONG max = ad && ad->MaximumTransferLength ? ad->MaximumTransferLength : 64 * 1024;
    ULONG block = fdx->DiskGeometry.BytesPerSector ? fdx->DiskGeometry.BytesPerSector : 512;
    /* A buffer that is not page aligned spans one page more than its length: with N physical
     * breaks, (N - 1) pages are always safe. */
    if (ad && ad->MaximumPhysicalPages > 1 && (ad->MaximumPhysicalPages - 1) * PAGE_SIZE < max)
        max = (ad->MaximumPhysicalPages - 1) * PAGE_SIZE;
    max &= ~(block - 1);
    return max ? max : block;
}
