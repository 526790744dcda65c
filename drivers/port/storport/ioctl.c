/*
 * Storport's IOCTL interface: SCSI pass-through (Bypassing the Class Driver with SCSI
 * Pass-Through Requests to Storport), hardware queries (Querying Storport for Hardware
 * Information: capabilities, inquiry data, address) and IOCTL_STORAGE_QUERY_PROPERTY for the
 * adapter and device descriptors and device identifiers. Every length in a caller's buffer is
 * checked here, once, before Storport touches the bytes it describes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/port/storport/storport_p.h"

typedef struct _STORP_PASSTHROUGH {
    SCSI_REQUEST_BLOCK Srb;
    UCHAR Sense[STORP_SENSE_LENGTH];
    PIRP OriginalIrp;
    PSTORP_ADAPTER Adapter;
    BOOLEAN Direct;
    PVOID Header;    /* the caller's SCSI_PASS_THROUGH(_DIRECT) in the system buffer */
    PIRP InnerIrp;   /* the IRP_MJ_SCSI IRP carrying Srb */
    atomic_int Refs; /* the request's own, and the armed cancel routine's */
} STORP_PASSTHROUGH, *PSTORP_PASSTHROUGH;

ULONG StorpPassThroughContextSize(void)
{
    return sizeof(STORP_PASSTHROUGH);
}

/* Drops a reference; the last frees the SRB's IRP and completes the caller's IRP. */
static void StorpPassThroughRelease(PSTORP_PASSTHROUGH pt)
{
    PIRP original = pt->OriginalIrp;
    if (atomic_fetch_sub(&pt->Refs, 1) != 1)
        return;
    IoFreeIrp(pt->InnerIrp);
    ExFreeToNPagedLookasideList(&pt->Adapter->PassThroughLookaside, pt);
    IoCompleteRequest(original, IO_NO_INCREMENT);
}

/* The caller's IRP is cancelable while the SRB is out: cancelling it cancels the SRB's IRP,
 * which Storport takes off its queue or aborts at the miniport (io.c). The SRB's IRP stays
 * allocated until this routine is done with it (its reference). */
static void StorpPassThroughCancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PSTORP_PASSTHROUGH pt = Irp->Tail.Overlay.DriverContext[1];
    IoReleaseCancelSpinLock(Irp->CancelIrql);
    IoCancelIrp(pt->InnerIrp);
    StorpPassThroughRelease(pt);
}

static NTSTATUS StorpPassThroughCompletion(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PSTORP_PASSTHROUGH pt = Context;
    PIRP original = pt->OriginalIrp;
    PSCSI_REQUEST_BLOCK srb = &pt->Srb;
    PSCSI_PASS_THROUGH spt = pt->Header; /* same leading fields as the DIRECT form */
    ULONG sense_len = 0, info;
    UCHAR status = SRB_STATUS(srb->SrbStatus);

    spt->ScsiStatus = srb->ScsiStatus;
    if ((srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID) && spt->SenseInfoLength) {
        sense_len = srb->SenseInfoBufferLength < spt->SenseInfoLength ? srb->SenseInfoBufferLength
                                                                      : spt->SenseInfoLength;
        memcpy((PUCHAR)spt + spt->SenseInfoOffset, pt->Sense, sense_len);
    }
    spt->SenseInfoLength = (UCHAR)sense_len;
    spt->DataTransferLength = srb->DataTransferLength;
    info = pt->Direct ? sizeof(SCSI_PASS_THROUGH_DIRECT) : sizeof(SCSI_PASS_THROUGH);
    if (sense_len && spt->SenseInfoOffset + sense_len > info)
        info = spt->SenseInfoOffset + sense_len;
    if (!pt->Direct && spt->DataIn == SCSI_IOCTL_DATA_IN && srb->DataTransferLength &&
        spt->DataBufferOffset + srb->DataTransferLength > info)
        info = (ULONG)(spt->DataBufferOffset + srb->DataTransferLength);

    /* A SCSI status (CHECK CONDITION, BUSY...) is the caller's to read, not an IRP failure. */
    if (status == SRB_STATUS_SUCCESS || status == SRB_STATUS_DATA_OVERRUN ||
        (status == SRB_STATUS_ERROR && srb->ScsiStatus != SCSISTAT_GOOD))
        original->IoStatus.Status = STATUS_SUCCESS;
    else
        original->IoStatus.Status = StorpSrbStatusToNtStatus(srb);
    original->IoStatus.Information = NT_SUCCESS(original->IoStatus.Status) ? info : 0;
    if (IoSetCancelRoutine(original, NULL))
        atomic_fetch_sub(&pt->Refs, 1); /* the routine will not run: its reference goes */
    StorpPassThroughRelease(pt);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Validates a pass-through request and sends it to the unit as an SRB, asynchronously. */
static NTSTATUS StorpPassThrough(PSTORP_ADAPTER adapter, PSTORP_UNIT unit, PIRP Irp, BOOLEAN direct)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG in_len = sp->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    PSCSI_PASS_THROUGH spt = Irp->AssociatedIrp.SystemBuffer;
    PSCSI_PASS_THROUGH_DIRECT sptd = Irp->AssociatedIrp.SystemBuffer;
    ULONG header = direct ? sizeof(SCSI_PASS_THROUGH_DIRECT) : sizeof(SCSI_PASS_THROUGH);
    ULONG buffer_len = in_len > out_len ? in_len : out_len;
    PSTORP_PASSTHROUGH pt;
    PIRP irp;
    PIO_STACK_LOCATION next;
    PVOID data;

    /* The header comes back (ScsiStatus, lengths), so both buffers hold at least the header. */
    if (!spt || in_len < header || out_len < header)
        return STATUS_INVALID_PARAMETER;
    if (spt->Length != header)
        return STATUS_REVISION_MISMATCH;
    if (spt->CdbLength == 0 || spt->CdbLength > 16)
        return STATUS_INVALID_PARAMETER;
    if (spt->DataIn > SCSI_IOCTL_DATA_UNSPECIFIED)
        return STATUS_INVALID_PARAMETER;
    if (spt->DataTransferLength > adapter->Config.MaximumTransferLength)
        return STATUS_INVALID_PARAMETER;
    /* Sense goes back in the output buffer, after the header. */
    if (spt->SenseInfoLength && (spt->SenseInfoOffset < header ||
                                 (ULONGLONG)spt->SenseInfoOffset + spt->SenseInfoLength > out_len))
        return STATUS_INVALID_PARAMETER;
    if (direct) {
        if (spt->DataTransferLength && !sptd->DataBuffer)
            return STATUS_INVALID_PARAMETER;
        if (((ULONG_PTR)sptd->DataBuffer & adapter->Config.AlignmentMask) != 0)
            return STATUS_INVALID_PARAMETER;
        data = sptd->DataBuffer;
    } else {
        /* The data lies in the same buffer: after the header, inside what was passed in (data
         * out) or what can be returned (data in), never overlapping the sense bytes. */
        ULONGLONG end = (ULONGLONG)spt->DataBufferOffset + spt->DataTransferLength;
        if (spt->DataTransferLength) {
            if (spt->DataBufferOffset < header || spt->DataBufferOffset > buffer_len ||
                end > buffer_len) /* offset first: offset + length must not wrap */
                return STATUS_INVALID_PARAMETER;
            if (spt->DataIn == SCSI_IOCTL_DATA_IN && end > out_len)
                return STATUS_INVALID_PARAMETER;
            if (spt->DataIn != SCSI_IOCTL_DATA_IN && end > in_len)
                return STATUS_INVALID_PARAMETER;
            if (spt->SenseInfoLength && spt->SenseInfoOffset < end &&
                spt->DataBufferOffset < (ULONGLONG)spt->SenseInfoOffset + spt->SenseInfoLength)
                return STATUS_INVALID_PARAMETER;
        }
        data = spt->DataTransferLength ? (PUCHAR)spt + spt->DataBufferOffset : NULL;
    }
    if (!unit) {
        unit = StorpFindUnit(adapter, spt->PathId, spt->TargetId, spt->Lun);
        if (!unit || !unit->Present)
            return STATUS_DEVICE_DOES_NOT_EXIST;
    } else {
        spt->PathId = unit->PathId;
        spt->TargetId = unit->TargetId;
        spt->Lun = unit->Lun;
    }

    pt = ExAllocateFromNPagedLookasideList(&adapter->PassThroughLookaside);
    irp = pt ? IoAllocateIrpEx(adapter->Executive, 2, FALSE) : NULL;
    if (!irp) {
        if (pt)
            ExFreeToNPagedLookasideList(&adapter->PassThroughLookaside, pt);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    memset(pt, 0, sizeof(*pt));
    pt->Adapter = adapter;
    pt->OriginalIrp = Irp;
    pt->InnerIrp = irp;
    pt->Direct = direct;
    pt->Header = spt;
    pt->Srb.Length = sizeof(SCSI_REQUEST_BLOCK);
    pt->Srb.Function = SRB_FUNCTION_EXECUTE_SCSI;
    pt->Srb.CdbLength = spt->CdbLength;
    memcpy(pt->Srb.Cdb, spt->Cdb, spt->CdbLength);
    pt->Srb.DataTransferLength = spt->DataTransferLength;
    pt->Srb.DataBuffer = spt->DataTransferLength ? data : NULL;
    pt->Srb.SenseInfoBuffer = pt->Sense;
    pt->Srb.SenseInfoBufferLength = (UCHAR)(spt->SenseInfoLength ? spt->SenseInfoLength : 0);
    pt->Srb.TimeOutValue = spt->TimeOutValue;
    pt->Srb.QueueAction = SRB_SIMPLE_TAG_REQUEST;
    pt->Srb.SrbFlags = SRB_FLAGS_NO_QUEUE_FREEZE | SRB_FLAGS_QUEUE_ACTION_ENABLE |
                       (spt->DataIn == SCSI_IOCTL_DATA_IN    ? SRB_FLAGS_DATA_IN
                        : spt->DataIn == SCSI_IOCTL_DATA_OUT ? SRB_FLAGS_DATA_OUT
                        : spt->DataTransferLength            ? SRB_FLAGS_UNSPECIFIED_DIRECTION
                                                             : SRB_FLAGS_NO_DATA_TRANSFER);
    if (!spt->SenseInfoLength)
        pt->Srb.SrbFlags |= SRB_FLAGS_DISABLE_AUTOSENSE;

    IoMarkIrpPending(Irp);
    /* Our own stack location holds the completion routine; the next one is the port's. */
    IoSetNextIrpStackLocation(irp);
    IoSetCompletionRoutine(irp, StorpPassThroughCompletion, pt, TRUE, TRUE, TRUE);
    next = IoGetNextIrpStackLocation(irp);
    next->MajorFunction = IRP_MJ_SCSI;
    next->Parameters.Scsi.Srb = &pt->Srb;
    /* The handle the pass-through came through names its initiator (StorPortGetRequestInitiator).
     */
    next->FileObject = IoGetCurrentIrpStackLocation(Irp)->FileObject;
    IoSetNextIrpStackLocation(irp);
    next->DeviceObject = unit->DeviceObject ? unit->DeviceObject : adapter->DeviceObject;
    /* Cancelable from here (the contract in README.md "Cancellation and resets"). A cancel that
     * came before the routine was armed is passed on: the SRB's IRP goes in already cancelled. */
    Irp->Tail.Overlay.DriverContext[1] = pt;
    atomic_init(&pt->Refs, 2);
    IoSetCancelRoutine(Irp, StorpPassThroughCancel);
    if (Irp->Cancel && IoSetCancelRoutine(Irp, NULL)) {
        atomic_store(&pt->Refs, 1);
        irp->Cancel = TRUE;
    }
    StorpExecuteSrb(unit, irp, &pt->Srb);
    return STATUS_PENDING;
}

static NTSTATUS StorpGetInquiryData(PSTORP_ADAPTER adapter, PIRP Irp, ULONG out_len)
{
    PUCHAR buf = Irp->AssociatedIrp.SystemBuffer;
    PPORT_CONFIGURATION_INFORMATION c = &adapter->Config;
    ULONG bus_info =
        FIELD_OFFSET(SCSI_ADAPTER_BUS_INFO, BusData) + c->NumberOfBuses * sizeof(SCSI_BUS_DATA);
    ULONG offset = (bus_info + 7u) & ~7u, needed = offset;
    ULONG entry =
        (ULONG)((FIELD_OFFSET(SCSI_INQUIRY_DATA, InquiryData) + INQUIRYDATABUFFERSIZE + 7u) & ~7u);

    for (ULONG i = 0; i < adapter->UnitTableSize; i++)
        if (adapter->UnitTable[i] && adapter->UnitTable[i]->Present)
            needed += entry;
    if (out_len < needed) {
        Irp->IoStatus.Information = 0;
        return STATUS_BUFFER_TOO_SMALL;
    }
    memset(buf, 0, needed);
    PSCSI_ADAPTER_BUS_INFO info = (PSCSI_ADAPTER_BUS_INFO)buf;
    info->NumberOfBuses = c->NumberOfBuses;
    for (UCHAR path = 0; path < c->NumberOfBuses; path++) {
        PSCSI_INQUIRY_DATA prev = NULL;
        info->BusData[path].InitiatorBusId = (UCHAR)c->InitiatorBusId[path];
        for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
            PSTORP_UNIT unit = adapter->UnitTable[i];
            if (!unit || !unit->Present || unit->PathId != path)
                continue;
            PSCSI_INQUIRY_DATA d = (PSCSI_INQUIRY_DATA)(buf + offset);
            d->PathId = unit->PathId;
            d->TargetId = unit->TargetId;
            d->Lun = unit->Lun;
            d->DeviceClaimed = unit->ClaimedBy != NULL;
            d->InquiryDataLength = INQUIRYDATABUFFERSIZE;
            memcpy(d->InquiryData, unit->InquiryData, INQUIRYDATABUFFERSIZE);
            if (prev)
                prev->NextInquiryDataOffset = offset;
            else
                info->BusData[path].InquiryDataOffset = offset;
            info->BusData[path].NumberOfLogicalUnits++;
            prev = d;
            offset += entry;
        }
    }
    Irp->IoStatus.Information = needed;
    return STATUS_SUCCESS;
}

static void StorpFillAdapterDescriptor(PSTORP_ADAPTER adapter, PSTORAGE_ADAPTER_DESCRIPTOR d)
{
    PPORT_CONFIGURATION_INFORMATION c = &adapter->Config;
    memset(d, 0, sizeof(*d));
    d->Version = sizeof(*d);
    d->Size = sizeof(*d);
    d->MaximumTransferLength = c->MaximumTransferLength;
    d->MaximumPhysicalPages = c->NumberOfPhysicalBreaks;
    d->AlignmentMask = c->AlignmentMask;
    d->AdapterUsesPio = FALSE;
    d->AdapterScansDown = c->AdapterScansDown;
    d->CommandQueueing = c->TaggedQueuing || c->MultipleRequestPerLu;
    d->AcceleratedTransfer = TRUE;
    d->BusType = (UCHAR)adapter->BusType;
    d->BusMajorVersion = 2;
    d->SrbType = SRB_TYPE_SCSI_REQUEST_BLOCK;
    d->AddressType = STORAGE_ADDRESS_TYPE_BTL8;
}

/* Copies a descriptor of `size` bytes; a short buffer gets the header (Version, Size) only, so
 * the caller learns how much to allocate, as Windows does. */
static NTSTATUS StorpReturnDescriptor(PIRP Irp, ULONG out_len, const void *desc, ULONG size)
{
    if (out_len < sizeof(STORAGE_DESCRIPTOR_HEADER)) {
        Irp->IoStatus.Information = 0;
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    ULONG n = out_len < size ? out_len : size;
    memcpy(Irp->AssociatedIrp.SystemBuffer, desc, n);
    Irp->IoStatus.Information = n;
    return STATUS_SUCCESS;
}

static NTSTATUS StorpDeviceDescriptor(PSTORP_UNIT unit, PIRP Irp, ULONG out_len)
{
    UCHAR buf[sizeof(STORAGE_DEVICE_DESCRIPTOR) + 128 + 96];
    PSTORAGE_DEVICE_DESCRIPTOR d = (PSTORAGE_DEVICE_DESCRIPTOR)buf;
    ULONG off = FIELD_OFFSET(STORAGE_DEVICE_DESCRIPTOR, RawDeviceProperties);
    PUCHAR inq = unit->InquiryData;

    memset(buf, 0, sizeof(buf));
    d->Version = sizeof(STORAGE_DEVICE_DESCRIPTOR);
    d->DeviceType = inq[0] & 0x1F;
    d->DeviceTypeModifier = inq[1] & 0x7F;
    d->RemovableMedia = (inq[1] & 0x80) != 0;
    d->CommandQueueing = (inq[7] & 0x02) != 0;
    d->BusType = unit->Adapter->BusType;
    d->RawPropertiesLength = unit->InquiryLength;
    memcpy(buf + off, inq, unit->InquiryLength);
    off += unit->InquiryLength;
    d->VendorIdOffset = off;
    memcpy(buf + off, unit->VendorId, 8);
    off += 9;
    d->ProductIdOffset = off;
    memcpy(buf + off, unit->ProductId, 16);
    off += 17;
    d->ProductRevisionOffset = off;
    memcpy(buf + off, unit->Revision, 4);
    off += 5;
    if (unit->SerialNumber[0]) {
        d->SerialNumberOffset = off;
        size_t l = strlen(unit->SerialNumber);
        memcpy(buf + off, unit->SerialNumber, l);
        off += (ULONG)l + 1;
    }
    d->Size = off;
    return StorpReturnDescriptor(Irp, out_len, buf, off);
}

/* StorageDeviceIdProperty: the VPD 83h designation descriptors as STORAGE_IDENTIFIERs. */
static NTSTATUS StorpDeviceIdDescriptor(PSTORP_UNIT unit, PIRP Irp, ULONG out_len)
{
    UCHAR vpd[252], out[512];
    PSTORAGE_DEVICE_ID_DESCRIPTOR d = (PSTORAGE_DEVICE_ID_DESCRIPTOR)out;
    ULONG off = FIELD_OFFSET(STORAGE_DEVICE_ID_DESCRIPTOR, Identifiers), got, pagelen;
    PSTORAGE_IDENTIFIER prev = NULL;

    got = StorpInquiry(unit, TRUE, 0x83, vpd, sizeof(vpd), NULL);
    if (got < 4)
        return STATUS_NOT_SUPPORTED;
    pagelen = scsi_get_be16(vpd + 2);
    if (pagelen > got - 4)
        pagelen = got - 4;
    memset(out, 0, sizeof(out));
    d->Version = sizeof(STORAGE_DEVICE_ID_DESCRIPTOR);
    for (ULONG p = 4; p + 4 <= 4 + pagelen;) {
        ULONG idlen = vpd[p + 3];
        if (p + 4 + idlen > 4 + pagelen)
            break;
        ULONG size = (ULONG)((FIELD_OFFSET(STORAGE_IDENTIFIER, Identifier) + idlen + 7u) & ~7u);
        if (off + size > sizeof(out))
            break;
        PSTORAGE_IDENTIFIER id = (PSTORAGE_IDENTIFIER)(out + off);
        id->CodeSet = vpd[p] & 0x0F;
        id->Type = vpd[p + 1] & 0x0F;
        id->Association = (vpd[p + 1] >> 4) & 0x03;
        id->IdentifierSize = (USHORT)idlen;
        memcpy(id->Identifier, vpd + p + 4, idlen);
        if (prev)
            prev->NextOffset = (USHORT)((PUCHAR)id - (PUCHAR)prev);
        prev = id;
        d->NumberOfIdentifiers++;
        off += size;
        p += 4 + idlen;
    }
    d->Size = off;
    return StorpReturnDescriptor(Irp, out_len, out, off);
}

NTSTATUS StorpQueryProperty(PSTORP_ADAPTER Adapter, PSTORP_UNIT Unit, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PSTORAGE_PROPERTY_QUERY q = Irp->AssociatedIrp.SystemBuffer;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    STORAGE_ADAPTER_DESCRIPTOR ad;
    BOOLEAN exists;

    if (!q || sp->Parameters.DeviceIoControl.InputBufferLength <
                  FIELD_OFFSET(STORAGE_PROPERTY_QUERY, AdditionalParameters))
        return STATUS_INVALID_PARAMETER;
    if (q->QueryType != PropertyStandardQuery && q->QueryType != PropertyExistsQuery)
        return STATUS_INVALID_PARAMETER;
    switch (q->PropertyId) {
    case StorageAdapterProperty:
        exists = TRUE;
        break;
    case StorageDeviceProperty:
    case StorageDeviceIdProperty:
        exists = Unit != NULL;
        break;
    default:
        exists = FALSE;
        break;
    }
    if (q->QueryType == PropertyExistsQuery) {
        Irp->IoStatus.Information = 0;
        return exists ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED;
    }
    if (!exists)
        return STATUS_NOT_SUPPORTED;
    switch (q->PropertyId) {
    case StorageAdapterProperty:
        StorpFillAdapterDescriptor(Adapter, &ad);
        return StorpReturnDescriptor(Irp, out_len, &ad, sizeof(ad));
    case StorageDeviceProperty:
        return StorpDeviceDescriptor(Unit, Irp, out_len);
    default:
        return StorpDeviceIdDescriptor(Unit, Irp, out_len);
    }
}

NTSTATUS StorpDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    STORP_COMMON *common = DeviceObject->DeviceExtension;
    PSTORP_UNIT unit = NULL;
    PSTORP_ADAPTER adapter;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    NTSTATUS status;

    if (common->Signature == STORP_UNIT_SIGNATURE) {
        unit = ((PSTORP_PDO_EXTENSION)DeviceObject->DeviceExtension)->Unit;
        adapter = unit->Adapter;
    } else {
        adapter = DeviceObject->DeviceExtension;
    }
    Irp->IoStatus.Information = 0;
    if (!adapter->Started) {
        status = STATUS_DEVICE_NOT_READY;
        goto done;
    }
    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_SCSI_PASS_THROUGH:
    case IOCTL_SCSI_PASS_THROUGH_DIRECT:
        status = StorpPassThrough(adapter, unit, Irp,
                                  sp->Parameters.DeviceIoControl.IoControlCode ==
                                      IOCTL_SCSI_PASS_THROUGH_DIRECT);
        if (status == STATUS_PENDING)
            return status;
        break;
    case IOCTL_SCSI_GET_CAPABILITIES: {
        IO_SCSI_CAPABILITIES cap = {0};
        if (out_len < sizeof(cap)) {
            status = STATUS_BUFFER_TOO_SMALL;
            break;
        }
        cap.Length = sizeof(cap);
        cap.MaximumTransferLength = adapter->Config.MaximumTransferLength;
        cap.MaximumPhysicalPages = adapter->Config.NumberOfPhysicalBreaks;
        cap.AlignmentMask = adapter->Config.AlignmentMask;
        cap.TaggedQueuing = adapter->Config.TaggedQueuing;
        cap.AdapterScansDown = adapter->Config.AdapterScansDown;
        memcpy(Irp->AssociatedIrp.SystemBuffer, &cap, sizeof(cap));
        Irp->IoStatus.Information = sizeof(cap);
        status = STATUS_SUCCESS;
        break;
    }
    case IOCTL_SCSI_GET_INQUIRY_DATA:
        KeAcquireSpinLock(&adapter->UnitLock, NULL);
        status = StorpGetInquiryData(adapter, Irp, out_len);
        KeReleaseSpinLock(&adapter->UnitLock, 0);
        break;
    case IOCTL_SCSI_GET_ADDRESS: {
        SCSI_ADDRESS addr = {0};
        if (!unit) {
            status = STATUS_INVALID_DEVICE_REQUEST;
            break;
        }
        if (out_len < sizeof(addr)) {
            status = STATUS_BUFFER_TOO_SMALL;
            break;
        }
        addr.Length = sizeof(addr);
        addr.PortNumber = (UCHAR)adapter->PortNumber;
        addr.PathId = unit->PathId;
        addr.TargetId = unit->TargetId;
        addr.Lun = unit->Lun;
        memcpy(Irp->AssociatedIrp.SystemBuffer, &addr, sizeof(addr));
        Irp->IoStatus.Information = sizeof(addr);
        status = STATUS_SUCCESS;
        break;
    }
    case IOCTL_SCSI_RESCAN_BUS:
        IoInvalidateDeviceRelations(adapter->PhysicalDeviceObject, BusRelations);
        IoSynchronizeDeviceRelations(adapter->Executive);
        status = STATUS_SUCCESS;
        break;
    case IOCTL_STORAGE_QUERY_PROPERTY:
        status = StorpQueryProperty(adapter, unit, Irp);
        break;
    case IOCTL_STORSTACK_GET_EVENTS:
        status = StorpGetEvents(adapter, Irp);
        break;
    case IOCTL_STORAGE_RESET_DEVICE:
        /* the unit's logical unit (iSCSI LOGICAL UNIT RESET maps here); the adapter has none */
        status = unit ? StorpResetUnit(unit, SRB_FUNCTION_RESET_LOGICAL_UNIT)
                      : STATUS_INVALID_DEVICE_REQUEST;
        break;
    case IOCTL_STORAGE_RESET_BUS: {
        PSTORAGE_BUS_RESET_REQUEST req = Irp->AssociatedIrp.SystemBuffer;
        if (!req || sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*req)) {
            status = STATUS_INVALID_PARAMETER;
            break;
        }
        status = StorpResetBus(adapter, req->PathId);
        break;
    }
    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }
done:
    Irp->IoStatus.Status = status;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}
