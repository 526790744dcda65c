/*
 * The CD-ROM class driver's IOCTLs: table of contents (READ TOC/PMA/ATIP), configuration (GET
 * CONFIGURATION), raw reads (READ CD), DVD structures, media handling (START STOP UNIT, PREVENT
 * ALLOW MEDIUM REMOVAL, TEST UNIT READY with the media change count), the guide's exclusive
 * access, set speed and streaming pages, and storstack's image loading. Every request from a
 * handle other than the exclusive owner's is refused while the drive is locked, except the
 * queries that cannot disturb the owner. Privileged requests need the 'p' right.
 */
#include <errno.h>
#include <stdio.h>

#include "drivers/class/cdrom/cdromp.h"

static BOOLEAN CdRompHasRight(PIRP Irp, ULONG Right)
{
    PCDROM_FILE_CONTEXT ctx = CdRompFileContext(Irp);
    return !ctx || (ctx->Rights & Right); /* no handle: a request from inside the stack */
}

/* Sends a CDB that returns parameter data into the system buffer; Information = bytes moved. */
static NTSTATUS CdRompDataIn(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb, PVOID Buffer,
                             ULONG Length, ULONG_PTR *Information)
{
    NTSTATUS status = ClassSendSrbSynchronous(Fdo, Srb, Buffer, Length, FALSE);
    *Information = NT_SUCCESS(status) ? Srb->DataTransferLength : 0;
    return status;
}

/* IOCTL_CDROM_READ_TOC: format 0 in MSF into a CDROM_TOC. IOCTL_CDROM_GET_LAST_SESSION: format
 * 1 in MSF into a CDROM_TOC_SESSION_DATA. IOCTL_CDROM_READ_TOC_EX: the format, MSF bit and
 * session/track the caller gives (full TOC, PMA and ATIP are MSF only). */
static NTSTATUS CdRompReadToc(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG Code, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG out = sp->Parameters.DeviceIoControl.OutputBufferLength;
    SCSI_REQUEST_BLOCK srb = {0};
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_READ_TOC;
    if (Code == IOCTL_CDROM_READ_TOC) {
        if (out < sizeof(CDROM_TOC))
            return STATUS_BUFFER_TOO_SMALL;
        srb.Cdb[1] = 0x02;
        out = sizeof(CDROM_TOC);
    } else if (Code == IOCTL_CDROM_GET_LAST_SESSION) {
        if (out < sizeof(CDROM_TOC_SESSION_DATA))
            return STATUS_BUFFER_TOO_SMALL;
        srb.Cdb[1] = 0x02;
        srb.Cdb[2] = CDROM_READ_TOC_EX_FORMAT_SESSION;
        out = sizeof(CDROM_TOC_SESSION_DATA);
    } else {
        CDROM_READ_TOC_EX in;
        if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
            return STATUS_INFO_LENGTH_MISMATCH;
        memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
        if (in.Format > CDROM_READ_TOC_EX_FORMAT_CDTEXT || in.Reserved1 || in.Reserved2 ||
            in.Reserved3)
            return STATUS_INVALID_PARAMETER;
        if ((in.Format == CDROM_READ_TOC_EX_FORMAT_FULL_TOC ||
             in.Format == CDROM_READ_TOC_EX_FORMAT_PMA ||
             in.Format == CDROM_READ_TOC_EX_FORMAT_ATIP) &&
            !in.Msf)
            return STATUS_INVALID_PARAMETER;
        if (in.Format == CDROM_READ_TOC_EX_FORMAT_TOC && in.SessionTrack > 99 &&
            in.SessionTrack != 0xAA)
            return STATUS_INVALID_PARAMETER;
        if (out < 4)
            return STATUS_BUFFER_TOO_SMALL;
        srb.Cdb[1] = in.Msf ? 0x02 : 0;
        srb.Cdb[2] = in.Format;
        srb.Cdb[6] = in.SessionTrack;
        if (out > 0xFFFE)
            out = 0xFFFE;
    }
    scsi_put_be16(&srb.Cdb[7], (USHORT)out);
    return CdRompDataIn(Fdo, &srb, Irp->AssociatedIrp.SystemBuffer, out, Info);
}

static NTSTATUS CdRompGetConfiguration(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG out = sp->Parameters.DeviceIoControl.OutputBufferLength;
    GET_CONFIGURATION_IOCTL_INPUT in;
    if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    if (in.RequestType > SCSI_GET_CONFIGURATION_REQUEST_TYPE_ONE || in.Feature > 0xFFFF ||
        in.Reserved[0] || in.Reserved[1])
        return STATUS_INVALID_PARAMETER;
    if (out < 8)
        return STATUS_BUFFER_TOO_SMALL;
    if (out > 0xFFFF)
        out = 0xFFFF;
    SCSI_REQUEST_BLOCK srb = {0};
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_GET_CONFIGURATION;
    srb.Cdb[1] = (UCHAR)in.RequestType;
    scsi_put_be16(&srb.Cdb[2], (USHORT)in.Feature);
    scsi_put_be16(&srb.Cdb[7], (USHORT)out);
    return CdRompDataIn(Fdo, &srb, Irp->AssociatedIrp.SystemBuffer, out, Info);
}

/* IOCTL_CDROM_RAW_READ: READ CD of whole 2352-byte sectors (with C2 pointers for RawWithC2),
 * split into transfers the adapter takes. Sub-channel modes are not supported: no image holds
 * sub-channel data. */
static NTSTATUS CdRompRawRead(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    RAW_READ_INFO in;
    UCHAR type, flags;
    ULONG sector = RAW_SECTOR_SIZE;

    if (!CdRompHasRight(Irp, CDROM_RIGHT_PRIVILEGED))
        return STATUS_ACCESS_DENIED;
    if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    switch (in.TrackMode) {
    case YellowMode2:
        type = 3, flags = 0xF8;
        break;
    case XAForm2:
        type = 5, flags = 0xF8;
        break;
    case CDDA:
        type = 1, flags = 0x10;
        break;
    case RawWithC2:
        type = 0, flags = 0xFA, sector = RAW_SECTOR_SIZE + 294;
        break;
    case RawWithC2AndSubCode:
    case RawWithSubCode:
        return STATUS_NOT_SUPPORTED;
    default:
        return STATUS_INVALID_PARAMETER;
    }
    if (in.DiskOffset.QuadPart < 0 || (in.DiskOffset.QuadPart % COOKED_SECTOR_SIZE))
        return STATUS_INVALID_PARAMETER;
    if (!Irp->MdlAddress || in.SectorCount == 0 ||
        (ULONGLONG)in.SectorCount * sector > MmGetMdlByteCount(Irp->MdlAddress))
        return STATUS_BUFFER_TOO_SMALL;
    ULONGLONG lba = (ULONGLONG)in.DiskOffset.QuadPart / COOKED_SECTOR_SIZE;
    if (lba + in.SectorCount > 0xFFFFFFFFull)
        return STATUS_INVALID_PARAMETER;
    PUCHAR buf = MmGetSystemAddressForMdlSafe(Irp->MdlAddress, 0);
    ULONG per = ClassMaximumTransferBytes(fdx) / sector, done = 0;
    NTSTATUS status = STATUS_SUCCESS;
    if (per == 0)
        per = 1;
    while (done < in.SectorCount) {
        ULONG n = in.SectorCount - done < per ? in.SectorCount - done : per;
        SCSI_REQUEST_BLOCK srb = {0};
        srb.CdbLength = 12;
        srb.Cdb[0] = SCSIOP_READ_CD;
        srb.Cdb[1] = (UCHAR)(type << 2);
        scsi_put_be32(&srb.Cdb[2], (ULONG)(lba + done));
        srb.Cdb[6] = (UCHAR)(n >> 16);
        srb.Cdb[7] = (UCHAR)(n >> 8);
        srb.Cdb[8] = (UCHAR)n;
        srb.Cdb[9] = flags;
        status = ClassSendSrbSynchronous(Fdo, &srb, buf + (size_t)done * sector, n * sector, FALSE);
        if (!NT_SUCCESS(status))
            break;
        done += n;
    }
    *Info = (ULONG_PTR)done * sector;
    return status;
}

static NTSTATUS CdRompReadDvdStructure(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG out = sp->Parameters.DeviceIoControl.OutputBufferLength;
    DVD_READ_STRUCTURE in;
    if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    if (in.Format >= DvdMaxDescriptor || in.BlockByteOffset.QuadPart < 0 ||
        in.BlockByteOffset.QuadPart % COOKED_SECTOR_SIZE)
        return STATUS_INVALID_PARAMETER;
    if (out < sizeof(DVD_DESCRIPTOR_HEADER))
        return STATUS_BUFFER_TOO_SMALL;
    if (out > 0xFFFF)
        out = 0xFFFF;
    SCSI_REQUEST_BLOCK srb = {0};
    srb.CdbLength = 12;
    srb.Cdb[0] = SCSIOP_READ_DVD_STRUCTURE;
    scsi_put_be32(&srb.Cdb[2], (ULONG)(in.BlockByteOffset.QuadPart / COOKED_SECTOR_SIZE));
    srb.Cdb[6] = in.LayerNumber;
    srb.Cdb[7] = (UCHAR)in.Format;
    scsi_put_be16(&srb.Cdb[8], (USHORT)out);
    srb.Cdb[10] = (UCHAR)(in.SessionId << 6);
    return CdRompDataIn(Fdo, &srb, Irp->AssociatedIrp.SystemBuffer, out, Info);
}

/* START STOP UNIT with LOEJ: eject (Start 0) or load (Start 1). A drive whose removal is
 * prevented answers 53/02: STATUS_DEVICE_BUSY. */
static NTSTATUS CdRompStartStop(PDEVICE_OBJECT Fdo, BOOLEAN Load)
{
    SCSI_REQUEST_BLOCK srb = {0};
    UCHAR sense[32];
    srb.CdbLength = 6;
    srb.Cdb[0] = SCSIOP_START_STOP_UNIT;
    srb.Cdb[4] = Load ? 0x03 : 0x02;
    NTSTATUS status = CdRompSendSrb(Fdo, &srb, NULL, 0, FALSE, sense, sizeof(sense));
    if (!NT_SUCCESS(status) && (srb.SrbStatus & SRB_STATUS_AUTOSENSE_VALID) &&
        (sense[2] & 0x0F) == SCSI_SENSE_ILLEGAL_REQUEST &&
        sense[12] == SCSI_ADSENSE_MEDIA_LOAD_OR_EJECT_FAILED && sense[13] == 0x02)
        status = STATUS_DEVICE_BUSY;
    CdRompUpdateMedia(Fdo, FALSE);
    return status;
}

/* IOCTL_STORAGE_MEDIA_REMOVAL: per-handle lock counts; PREVENT goes to the drive when the
 * device's count leaves zero, ALLOW when it comes back to zero. */
static NTSTATUS CdRompMediaRemoval(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_DATA data = CdRompData(Fdo);
    PCDROM_FILE_CONTEXT ctx = CdRompFileContext(Irp);
    PREVENT_MEDIA_REMOVAL in;
    KIRQL irql;
    BOOLEAN send = FALSE;

    if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    if (!ctx)
        return STATUS_INVALID_DEVICE_REQUEST;
    KeAcquireSpinLock(&data->Lock, &irql);
    if (in.PreventMediaRemoval) {
        ctx->LockCount++;
        send = data->LockCount++ == 0;
    } else if (ctx->LockCount) {
        ctx->LockCount--;
        send = --data->LockCount == 0;
    } else {
        KeReleaseSpinLock(&data->Lock, irql);
        return STATUS_INVALID_DEVICE_STATE; /* this handle holds no lock */
    }
    KeReleaseSpinLock(&data->Lock, irql);
    if (!send)
        return STATUS_SUCCESS;
    SCSI_REQUEST_BLOCK srb = {0};
    srb.CdbLength = 6;
    srb.Cdb[0] = SCSIOP_MEDIUM_REMOVAL;
    srb.Cdb[4] = in.PreventMediaRemoval ? 1 : 0;
    NTSTATUS status = ClassSendSrbSynchronous(Fdo, &srb, NULL, 0, FALSE);
    if (!NT_SUCCESS(status)) {
        KeAcquireSpinLock(&data->Lock, &irql);
        if (in.PreventMediaRemoval) {
            ctx->LockCount--;
            data->LockCount--;
        } else {
            ctx->LockCount++;
            data->LockCount++;
        }
        KeReleaseSpinLock(&data->Lock, irql);
    }
    return status;
}

/* IOCTL_STORAGE_CHECK_VERIFY: TEST UNIT READY; the media change count follows when the output
 * has room. A handle that has not seen the latest change gets STATUS_VERIFY_REQUIRED once: the
 * change notification each open handle receives. */
static NTSTATUS CdRompCheckVerify(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_DATA data = CdRompData(Fdo);
    PCDROM_FILE_CONTEXT ctx = CdRompFileContext(Irp);
    SCSI_REQUEST_BLOCK srb = {0};
    KIRQL irql;
    srb.CdbLength = 6;
    srb.Cdb[0] = SCSIOP_TEST_UNIT_READY;
    NTSTATUS status = CdRompSendSrb(Fdo, &srb, NULL, 0, FALSE, NULL, 0);
    if (status == STATUS_VERIFY_REQUIRED || (NT_SUCCESS(status) && !CdRompMediaBytes(Fdo)) ||
        (status == STATUS_NO_MEDIA_IN_DEVICE && CdRompMediaBytes(Fdo)))
        CdRompUpdateMedia(Fdo, status == STATUS_VERIFY_REQUIRED);
    if (status == STATUS_VERIFY_REQUIRED) {
        srb.SrbStatus = 0;
        status = CdRompSendSrb(Fdo, &srb, NULL, 0, FALSE, NULL, 0);
    }
    KeAcquireSpinLock(&data->Lock, &irql);
    ULONG count = data->MediaChangeCount;
    BOOLEAN changed = ctx && ctx->SeenChangeCount != count;
    if (ctx)
        ctx->SeenChangeCount = count;
    KeReleaseSpinLock(&data->Lock, irql);
    if (sp->Parameters.DeviceIoControl.OutputBufferLength >= sizeof(ULONG)) {
        memcpy(Irp->AssociatedIrp.SystemBuffer, &count, sizeof(count));
        *Info = sizeof(ULONG);
    } else if (sp->Parameters.DeviceIoControl.OutputBufferLength) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (changed && (NT_SUCCESS(status) || status == STATUS_NO_MEDIA_IN_DEVICE))
        return STATUS_VERIFY_REQUIRED;
    return status;
}

static NTSTATUS CdRompGetMediaTypes(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCDROM_DATA data = fdx->DriverData;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    GET_MEDIA_TYPES t;
    if (sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(t))
        return STATUS_BUFFER_TOO_SMALL;
    memset(&t, 0, sizeof(t));
    t.DeviceType = FILE_DEVICE_CD_ROM;
    t.MediaInfoCount = 1;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.MediaType = data->MediaIsDvd ? DVD_ROM : CD_ROM;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.Cylinders.QuadPart =
        (LONGLONG)(CdRompMediaBytes(Fdo) / COOKED_SECTOR_SIZE);
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.TracksPerCylinder = 1;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.SectorsPerTrack = 1;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.BytesPerSector = COOKED_SECTOR_SIZE;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.NumberMediaSides = 1;
    t.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.MediaCharacteristics =
        MEDIA_READ_ONLY | (CdRompMediaBytes(Fdo) ? MEDIA_CURRENTLY_MOUNTED : 0);
    memcpy(Irp->AssociatedIrp.SystemBuffer, &t, sizeof(t));
    *Info = sizeof(t);
    return STATUS_SUCCESS;
}

/* The guide's "Exclusive Access Mode": query, lock with a caller name, unlock. */
static NTSTATUS CdRompExclusiveAccess(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_DATA data = CdRompData(Fdo);
    PFILE_OBJECT fo = sp->FileObject;
    ULONG in_len = sp->Parameters.DeviceIoControl.InputBufferLength;
    CDROM_EXCLUSIVE_LOCK lock;
    KIRQL irql;
    NTSTATUS status = STATUS_SUCCESS;

    if (in_len < sizeof(CDROM_EXCLUSIVE_ACCESS))
        return STATUS_INFO_LENGTH_MISMATCH;
    memset(&lock, 0, sizeof(lock));
    memcpy(&lock, Irp->AssociatedIrp.SystemBuffer, in_len < sizeof(lock) ? in_len : sizeof(lock));
    switch (lock.Access.RequestType) {
    case ExclusiveAccessQueryState: {
        CDROM_EXCLUSIVE_LOCK_STATE st;
        if (sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(st))
            return STATUS_BUFFER_TOO_SMALL;
        memset(&st, 0, sizeof(st));
        KeAcquireSpinLock(&data->Lock, &irql);
        st.LockState = data->ExclusiveOwner != NULL;
        memcpy(st.CallerName, data->ExclusiveCaller, sizeof(st.CallerName));
        KeReleaseSpinLock(&data->Lock, irql);
        memcpy(Irp->AssociatedIrp.SystemBuffer, &st, sizeof(st));
        *Info = sizeof(st);
        return STATUS_SUCCESS;
    }
    case ExclusiveAccessLockDevice: {
        if (in_len < sizeof(CDROM_EXCLUSIVE_LOCK) || !fo)
            return STATUS_INFO_LENGTH_MISMATCH;
        if (lock.Access.Flags & ~(ULONG)(CDROM_LOCK_IGNORE_VOLUME | CDROM_NO_MEDIA_NOTIFICATIONS))
            return STATUS_INVALID_PARAMETER;
        if (!CdRompHasRight(Irp, CDROM_RIGHT_PRIVILEGED))
            return STATUS_ACCESS_DENIED;
        /* the caller name: printable ASCII, NUL-terminated, not empty */
        ULONG n = 0;
        while (n < CDROM_EXCLUSIVE_CALLER_LENGTH && lock.CallerName[n])
            n++;
        if (n == 0 || n == CDROM_EXCLUSIVE_CALLER_LENGTH)
            return STATUS_INVALID_PARAMETER;
        for (ULONG i = 0; i < n; i++) {
            if (lock.CallerName[i] < 0x20 || lock.CallerName[i] > 0x7E)
                return STATUS_INVALID_PARAMETER;
        }
        KeAcquireSpinLock(&data->Lock, &irql);
        if (data->ExclusiveOwner) {
            status = STATUS_ACCESS_DENIED;
        } else {
            data->ExclusiveOwner = fo;
            data->ExclusiveFlags = lock.Access.Flags;
            memset(data->ExclusiveCaller, 0, sizeof(data->ExclusiveCaller));
            memcpy(data->ExclusiveCaller, lock.CallerName, n);
        }
        KeReleaseSpinLock(&data->Lock, irql);
        return status;
    }
    case ExclusiveAccessUnlockDevice:
        KeAcquireSpinLock(&data->Lock, &irql);
        if (!data->ExclusiveOwner) {
            status = STATUS_INVALID_DEVICE_STATE;
        } else if (data->ExclusiveOwner != fo) {
            status = STATUS_ACCESS_DENIED;
        } else {
            data->ExclusiveOwner = NULL;
            memset(data->ExclusiveCaller, 0, sizeof(data->ExclusiveCaller));
        }
        KeReleaseSpinLock(&data->Lock, irql);
        return status;
    default:
        return STATUS_INVALID_PARAMETER;
    }
}

/* The guide's "Set Speed": SET CD SPEED, or SET STREAMING with one performance descriptor. */
static NTSTATUS CdRompSetSpeed(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG in_len = sp->Parameters.DeviceIoControl.InputBufferLength;
    SCSI_REQUEST_BLOCK srb = {0};
    ULONG type;
    if (in_len < sizeof(CDROM_SET_SPEED))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&type, Irp->AssociatedIrp.SystemBuffer, sizeof(type));
    if (type == CdromSetSpeed) {
        CDROM_SET_SPEED in;
        memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
        if (in.RotationControl > CdromCAVRotation)
            return STATUS_INVALID_PARAMETER;
        srb.CdbLength = 12;
        srb.Cdb[0] = SCSIOP_SET_CD_SPEED;
        srb.Cdb[1] = (UCHAR)in.RotationControl;
        scsi_put_be16(&srb.Cdb[2], in.ReadSpeed);
        scsi_put_be16(&srb.Cdb[4], in.WriteSpeed);
        return ClassSendSrbSynchronous(Fdo, &srb, NULL, 0, FALSE);
    }
    if (type != CdromSetStreaming)
        return STATUS_INVALID_PARAMETER;
    CDROM_SET_STREAMING in;
    if (in_len < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    if (in.RotationControl > CdromCAVRotation || (!in.RestoreDefaults && in.ReadTime == 0) ||
        in.EndLba < in.StartLba)
        return STATUS_INVALID_PARAMETER;
    UCHAR d[28];
    memset(d, 0, sizeof(d));
    d[0] = (UCHAR)((in.RotationControl & 3) << 3 | (in.RestoreDefaults ? 0x04 : 0) |
                   (in.SetExact ? 0x02 : 0) | (in.RandomAccess ? 0x01 : 0));
    scsi_put_be32(d + 4, in.StartLba);
    scsi_put_be32(d + 8, in.EndLba);
    scsi_put_be32(d + 12, in.ReadSize);
    scsi_put_be32(d + 16, in.ReadTime);
    scsi_put_be32(d + 20, in.WriteSize);
    scsi_put_be32(d + 24, in.WriteTime);
    srb.CdbLength = 12;
    srb.Cdb[0] = SCSIOP_SET_STREAMING;
    scsi_put_be16(&srb.Cdb[9], sizeof(d));
    return ClassSendSrbSynchronous(Fdo, &srb, d, sizeof(d), TRUE);
}

static NTSTATUS CdRompEnableStreaming(PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_FILE_CONTEXT ctx = CdRompFileContext(Irp);
    CDROM_STREAMING_CONTROL in;
    if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(in))
        return STATUS_INFO_LENGTH_MISMATCH;
    memcpy(&in, Irp->AssociatedIrp.SystemBuffer, sizeof(in));
    if (!ctx)
        return STATUS_INVALID_DEVICE_REQUEST;
    switch (in.RequestType) {
    case CdromStreamingDisable:
        ctx->Streaming = FALSE;
        return STATUS_SUCCESS;
    case CdromStreamingEnableForReadOnly:
    case CdromStreamingEnableForReadWrite:
        ctx->Streaming = TRUE;
        return STATUS_SUCCESS;
    case CdromStreamingEnableForWriteOnly:
        ctx->Streaming = FALSE; /* nothing is written to a read-only drive */
        return STATUS_SUCCESS;
    default:
        return STATUS_INVALID_PARAMETER;
    }
}

/* The STORSTAK SRB_FUNCTION_IO_CONTROL to the miniport; ReturnCode is 0 or a positive errno. */
static NTSTATUS CdRompMiniportControl(PDEVICE_OBJECT Fdo, ULONG Code, PVOID Data, ULONG Length,
                                      ULONG *ReturnCode)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    /* the header, then the body right after its 28 bytes (unaligned, as on Windows) */
    _Alignas(8) UCHAR msg[sizeof(SRB_IO_CONTROL) + sizeof(STORSTACK_CDROM_STATUS)];
    _Static_assert(sizeof(STORSTACK_CDROM_STATUS) >= sizeof(STORSTACK_CDROM_LOAD_IMAGE),
                   "the status body is the larger");
    SRB_IO_CONTROL io;
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    SCSI_REQUEST_BLOCK srb = {0};

    if (Length > sizeof(msg) - sizeof(io))
        return STATUS_INVALID_PARAMETER;
    memset(&io, 0, sizeof(io));
    io.HeaderLength = sizeof(io);
    memcpy(io.Signature, STORSTACK_SRB_SIGNATURE, 8);
    io.Timeout = 30;
    io.ControlCode = Code;
    io.Length = Length;
    memcpy(msg, &io, sizeof(io));
    memcpy(msg + sizeof(io), Data, Length);
    srb.Length = sizeof(srb);
    srb.Function = SRB_FUNCTION_IO_CONTROL;
    srb.SrbFlags = SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT | SRB_FLAGS_NO_QUEUE_FREEZE;
    srb.DataBuffer = msg;
    srb.DataTransferLength = (ULONG)sizeof(io) + Length;
    srb.TimeOutValue = 30;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp = IoBuildDeviceIoControlRequest(0, fdx->LowerDeviceObject, NULL, 0, NULL, 0, TRUE,
                                             &event, &iosb);
    if (!irp) {
        KeDeleteEvent(&event);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(irp);
    next->MajorFunction = IRP_MJ_SCSI;
    next->Parameters.Scsi.Srb = &srb;
    IoCallDriver(fdx->LowerDeviceObject, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    if (SRB_STATUS(srb.SrbStatus) != SRB_STATUS_SUCCESS)
        return STATUS_NOT_SUPPORTED; /* a miniport without storstack's virtual drives */
    memcpy(&io, msg, sizeof(io));
    memcpy(Data, msg + sizeof(io), Length);
    *ReturnCode = io.ReturnCode;
    return STATUS_SUCCESS;
}

static NTSTATUS CdRompStatusFromErrno(ULONG Error)
{
    switch (Error) {
    case 0:
        return STATUS_SUCCESS;
    case ENOENT:
    case ENOTDIR:
        return STATUS_OBJECT_NAME_NOT_FOUND;
    case EACCES:
    case EPERM:
        return STATUS_ACCESS_DENIED;
    case EBUSY:
        return STATUS_DEVICE_BUSY;
    case ENOMEM:
        return STATUS_INSUFFICIENT_RESOURCES;
    case EINVAL:
        return STATUS_UNRECOGNIZED_MEDIA;
    default:
        return STATUS_UNSUCCESSFUL;
    }
}

static NTSTATUS CdRompLoadImage(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_DATA data = CdRompData(Fdo);
    STORSTACK_CDROM_LOAD_IMAGE in;
    ULONG rc = 0;
    ULONG n = sp->Parameters.DeviceIoControl.InputBufferLength;
    if (!CdRompHasRight(Irp, CDROM_RIGHT_WRITE) || (sp->FileObject && !sp->FileObject->WriteAccess))
        return STATUS_ACCESS_DENIED;
    if (n == 0 || n > sizeof(in.Path))
        return STATUS_INFO_LENGTH_MISMATCH;
    memset(&in, 0, sizeof(in));
    memcpy(in.Path, Irp->AssociatedIrp.SystemBuffer, n);
    if (memchr(in.Path, '\0', n) == NULL)
        return STATUS_INVALID_PARAMETER; /* not NUL-terminated inside the buffer */
    NTSTATUS status =
        CdRompMiniportControl(Fdo, STORSTACK_SRB_CDROM_LOAD_IMAGE, &in, sizeof(in), &rc);
    if (!NT_SUCCESS(status))
        return status;
    KIRQL irql;
    KeAcquireSpinLock(&data->Lock, &irql);
    snprintf(data->LastLoadError, sizeof(data->LastLoadError), "%s", rc ? in.Path : "");
    KeReleaseSpinLock(&data->Lock, irql);
    if (rc)
        return CdRompStatusFromErrno(rc);
    CdRompUpdateMedia(Fdo, TRUE);
    return STATUS_SUCCESS;
}

static NTSTATUS CdRompGetStatus(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG_PTR *Info)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PCDROM_DATA data = CdRompData(Fdo);
    STORSTACK_CDROM_STATUS st;
    ULONG rc = 0;
    if (sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(st))
        return STATUS_BUFFER_TOO_SMALL;
    memset(&st, 0, sizeof(st));
    NTSTATUS status =
        CdRompMiniportControl(Fdo, STORSTACK_SRB_CDROM_GET_STATUS, &st, sizeof(st), &rc);
    if (!NT_SUCCESS(status))
        return status;
    if (rc)
        return CdRompStatusFromErrno(rc);
    KIRQL irql;
    KeAcquireSpinLock(&data->Lock, &irql);
    st.MediaChangeCount = data->MediaChangeCount;
    snprintf(st.Message, sizeof(st.Message), "%s", data->LastLoadError);
    KeReleaseSpinLock(&data->Lock, irql);
    memcpy(Irp->AssociatedIrp.SystemBuffer, &st, sizeof(st));
    *Info = sizeof(st);
    return STATUS_SUCCESS;
}

/* IOCTL_CDROM_GET_DRIVE_GEOMETRY and the disk forms Windows' cdrom also answers (callers such
 * as the iSCSI target learn the block size from them): 2048-byte sectors, 64 heads x 32 sectors,
 * the medium's length. No disc: STATUS_NO_MEDIA_IN_DEVICE. */
static NTSTATUS CdRompGeometry(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG Code, ULONG_PTR *Info)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG need = Code == IOCTL_DISK_GET_DRIVE_GEOMETRY_EX ? FIELD_OFFSET(DISK_GEOMETRY_EX, Data)
                 : Code == IOCTL_DISK_GET_LENGTH_INFO     ? sizeof(GET_LENGTH_INFORMATION)
                                                          : sizeof(DISK_GEOMETRY);
    if (sp->Parameters.DeviceIoControl.OutputBufferLength < need)
        return STATUS_BUFFER_TOO_SMALL;
    CdRompUpdateMedia(Fdo, FALSE);
    LARGE_INTEGER bytes = {.QuadPart = (LONGLONG)CdRompMediaBytes(Fdo)};
    if (!bytes.QuadPart)
        return STATUS_NO_MEDIA_IN_DEVICE;
    DISK_GEOMETRY_EX gx;
    memset(&gx, 0, sizeof(gx));
    gx.Geometry = fdx->DiskGeometry;
    gx.Geometry.MediaType = RemovableMedia;
    gx.Geometry.TracksPerCylinder = 64;
    gx.Geometry.SectorsPerTrack = 32;
    gx.Geometry.Cylinders.QuadPart = bytes.QuadPart / (64 * 32 * COOKED_SECTOR_SIZE);
    gx.DiskSize = bytes;
    if (Code == IOCTL_DISK_GET_LENGTH_INFO) {
        GET_LENGTH_INFORMATION li = {.Length = bytes};
        memcpy(Irp->AssociatedIrp.SystemBuffer, &li, sizeof(li));
    } else {
        memcpy(Irp->AssociatedIrp.SystemBuffer, &gx, need);
    }
    *Info = need;
    return STATUS_SUCCESS;
}

/* Requests another handle may make while the drive is exclusively locked. */
static BOOLEAN CdRompAllowedWhileLocked(PIRP Irp, ULONG Code)
{
    if (Code == IOCTL_STORAGE_QUERY_PROPERTY || Code == IOCTL_STORAGE_GET_DEVICE_NUMBER ||
        Code == IOCTL_STORSTACK_CDROM_GET_STATUS)
        return TRUE;
    if (Code == IOCTL_CDROM_EXCLUSIVE_ACCESS) {
        PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
        ULONG type;
        if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(type))
            return FALSE;
        memcpy(&type, Irp->AssociatedIrp.SystemBuffer, sizeof(type));
        return type == ExclusiveAccessQueryState;
    }
    return FALSE;
}

NTSTATUS CdRomDeviceControl(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
    ULONG_PTR info = 0;
    NTSTATUS status;

    if (CdRompLockedOut(Fdo, Irp) && !CdRompAllowedWhileLocked(Irp, code))
        return CdRompComplete(Irp, STATUS_ACCESS_DENIED, 0);
    switch (code) {
    case IOCTL_CDROM_READ_TOC:
    case IOCTL_CDROM_READ_TOC_EX:
    case IOCTL_CDROM_GET_LAST_SESSION:
        status = CdRompReadToc(Fdo, Irp, code, &info);
        break;
    case IOCTL_CDROM_GET_CONFIGURATION:
        status = CdRompGetConfiguration(Fdo, Irp, &info);
        break;
    case IOCTL_CDROM_RAW_READ:
        status = CdRompRawRead(Fdo, Irp, &info);
        break;
    case IOCTL_DVD_READ_STRUCTURE:
        status = CdRompReadDvdStructure(Fdo, Irp, &info);
        break;
    case IOCTL_CDROM_GET_DRIVE_GEOMETRY:
    case IOCTL_DISK_GET_DRIVE_GEOMETRY:
    case IOCTL_DISK_GET_DRIVE_GEOMETRY_EX:
    case IOCTL_DISK_GET_LENGTH_INFO:
        status = CdRompGeometry(Fdo, Irp, code, &info);
        break;
    case IOCTL_STORAGE_EJECT_MEDIA:
    case IOCTL_STORAGE_LOAD_MEDIA:
        status = CdRompHasRight(Irp, CDROM_RIGHT_WRITE)
                     ? CdRompStartStop(Fdo, code == IOCTL_STORAGE_LOAD_MEDIA)
                     : STATUS_ACCESS_DENIED;
        break;
    case IOCTL_STORAGE_MEDIA_REMOVAL:
        status = CdRompMediaRemoval(Fdo, Irp);
        break;
    case IOCTL_STORAGE_CHECK_VERIFY:
    case IOCTL_STORAGE_CHECK_VERIFY2:
        status = CdRompCheckVerify(Fdo, Irp, &info);
        break;
    case IOCTL_STORAGE_GET_MEDIA_TYPES_EX:
        status = CdRompGetMediaTypes(Fdo, Irp, &info);
        break;
    case IOCTL_CDROM_EXCLUSIVE_ACCESS:
        status = CdRompExclusiveAccess(Fdo, Irp, &info);
        break;
    case IOCTL_CDROM_SET_SPEED:
        status = CdRompSetSpeed(Fdo, Irp);
        break;
    case IOCTL_CDROM_ENABLE_STREAMING:
        status = CdRompEnableStreaming(Irp);
        break;
    case IOCTL_STORSTACK_CDROM_LOAD_IMAGE:
        status = CdRompLoadImage(Fdo, Irp);
        break;
    case IOCTL_STORSTACK_CDROM_GET_STATUS:
        status = CdRompGetStatus(Fdo, Irp, &info);
        break;
    case IOCTL_SCSI_PASS_THROUGH:
    case IOCTL_SCSI_PASS_THROUGH_DIRECT:
        if (!CdRompHasRight(Irp, CDROM_RIGHT_PRIVILEGED))
            return CdRompComplete(Irp, STATUS_ACCESS_DENIED, 0);
        return ClassDeviceControl(Fdo, Irp);
    default:
        return ClassDeviceControl(Fdo, Irp);
    }
    return CdRompComplete(Irp, status, info);
}
