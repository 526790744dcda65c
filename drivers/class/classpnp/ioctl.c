/*
 * ClassDeviceControl: the storage IOCTLs every class device answers. Property queries for the
 * device and adapter come from the descriptors cached at start; the write cache property
 * (Querying for the Write Cache Property) is read from the caching mode page; the device unique
 * identifier (Device Unique Identifiers (DUIDs) for Storage Devices) is built from the device
 * identifiers (VPD 83h) and the device descriptor (serial number, VPD 80h). SCSI IOCTLs and
 * other storage properties go down to the port driver unchanged.
 */
#include <stdlib.h>

#include "drivers/class/classpnp/classp.h"

static NTSTATUS ClasspForwardDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    if (Irp->PendingReturned)
        IoMarkIrpPending(Irp);
    ClasspReleaseRemoveLock(Context);
    return STATUS_SUCCESS;
}

static NTSTATUS ClasspForward(PFUNCTIONAL_DEVICE_EXTENSION fdx, PIRP Irp)
{
    IoCopyCurrentIrpStackLocationToNext(Irp);
    IoSetCompletionRoutine(Irp, ClasspForwardDone, fdx, TRUE, TRUE, TRUE);
    return IoCallDriver(fdx->LowerDeviceObject, Irp);
}

static NTSTATUS ClasspReturn(PIRP Irp, ULONG out_len, const void *data, ULONG size)
{
    ULONG n;
    if (out_len < sizeof(STORAGE_DESCRIPTOR_HEADER)) {
        Irp->IoStatus.Information = 0;
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    n = out_len < size ? out_len : size;
    memcpy(Irp->AssociatedIrp.SystemBuffer, data, n);
    Irp->IoStatus.Information = n;
    return STATUS_SUCCESS;
}

/* StorageDeviceWriteCacheProperty from MODE SENSE caching page: current and changeable. */
static NTSTATUS ClasspWriteCacheProperty(PDEVICE_OBJECT Fdo, PIRP Irp, ULONG out_len)
{
    STORAGE_WRITE_CACHE_PROPERTY p = {0};
    UCHAR cur[64], chg[64];
    ULONG n;
    PUCHAR page;

    p.Version = sizeof(p);
    p.Size = sizeof(p);
    p.FlushCacheSupported = TRUE; /* SYNCHRONIZE CACHE is mandatory for us to use */
    n = ClasspModeSense(Fdo, cur, sizeof(cur), MODE_PAGE_CACHING, 0);
    page = n ? ClassFindModePage(cur, n, MODE_PAGE_CACHING, TRUE) : NULL;
    if (!page) {
        p.WriteCacheType = WriteCacheTypeUnknown;
        p.WriteCacheEnabled = WriteCacheEnableUnknown;
        p.WriteCacheChangeable = WriteCacheChangeUnknown;
        p.WriteThroughSupported = WriteThroughUnknown;
    } else {
        BOOLEAN wce = (page[2] & 0x04) != 0;
        p.WriteCacheEnabled = wce ? WriteCacheEnabled : WriteCacheDisabled;
        n = ClasspModeSense(Fdo, chg, sizeof(chg), MODE_PAGE_CACHING, 1);
        PUCHAR cpage = n ? ClassFindModePage(chg, n, MODE_PAGE_CACHING, TRUE) : NULL;
        BOOLEAN changeable = cpage && (cpage[2] & 0x04);
        p.WriteCacheChangeable = changeable ? WriteCacheChangeable : WriteCacheNotChangeable;
        p.WriteCacheType = wce || changeable ? WriteCacheTypeWriteBack : WriteCacheTypeWriteThrough;
        /* DPOFUA in the device-specific parameter says FUA (write-through) is honoured */
        p.WriteThroughSupported =
            (cur[2] & 0x10) ? WriteThroughSupported : WriteThroughNotSupported;
    }
    return ClasspReturn(Irp, out_len, &p, sizeof(p));
}

static NTSTATUS ClasspDeviceUniqueId(PFUNCTIONAL_DEVICE_EXTENSION fdx, PIRP Irp, ULONG out_len)
{
    STORAGE_PROPERTY_ID id = StorageDeviceIdProperty;
    PSTORAGE_DEVICE_ID_DESCRIPTOR ids = NULL;
    PSTORAGE_DEVICE_DESCRIPTOR dev = fdx->DeviceDescriptor;
    PSTORAGE_DEVICE_UNIQUE_IDENTIFIER duid;
    ULONG size, off;
    NTSTATUS status;

    ClassGetDescriptor(fdx->LowerDeviceObject, &id, (PVOID *)&ids);
    if (!ids && !(dev && dev->SerialNumberOffset))
        return STATUS_NOT_SUPPORTED; /* nothing unique to build a DUID from */
    size = (ULONG)((sizeof(*duid) + 7u) & ~7u);
    if (ids)
        size += (ids->Size + 7u) & ~7u;
    size += dev->Size;
    duid = calloc(1, size);
    if (!duid) {
        ExFreePool(ids);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    duid->Version = DUID_VERSION_1;
    duid->Size = size;
    off = (ULONG)((sizeof(*duid) + 7u) & ~7u);
    if (ids) {
        duid->StorageDeviceIdOffset = off;
        memcpy((PUCHAR)duid + off, ids, ids->Size);
        off += (ids->Size + 7u) & ~7u;
    }
    duid->StorageDeviceOffset = off;
    memcpy((PUCHAR)duid + off, dev, dev->Size);
    status = ClasspReturn(Irp, out_len, duid, size);
    free(duid);
    ExFreePool(ids);
    return status;
}

static NTSTATUS ClasspQueryProperty(PDEVICE_OBJECT Fdo, PIRP Irp, BOOLEAN *forward)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PSTORAGE_PROPERTY_QUERY q = Irp->AssociatedIrp.SystemBuffer;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;

    *forward = FALSE;
    if (!q || sp->Parameters.DeviceIoControl.InputBufferLength <
                  FIELD_OFFSET(STORAGE_PROPERTY_QUERY, AdditionalParameters))
        return STATUS_INVALID_PARAMETER;
    if (q->QueryType != PropertyStandardQuery && q->QueryType != PropertyExistsQuery)
        return STATUS_INVALID_PARAMETER;
    switch (q->PropertyId) {
    case StorageDeviceProperty:
        if (q->QueryType == PropertyExistsQuery)
            return STATUS_SUCCESS;
        return ClasspReturn(Irp, out_len, fdx->DeviceDescriptor, fdx->DeviceDescriptor->Size);
    case StorageAdapterProperty:
        if (q->QueryType == PropertyExistsQuery)
            return STATUS_SUCCESS;
        return ClasspReturn(Irp, out_len, fdx->AdapterDescriptor, fdx->AdapterDescriptor->Size);
    case StorageDeviceWriteCacheProperty:
        if (q->QueryType == PropertyExistsQuery)
            return STATUS_SUCCESS;
        return ClasspWriteCacheProperty(Fdo, Irp, out_len);
    case StorageDeviceUniqueIdProperty:
        if (q->QueryType == PropertyExistsQuery)
            return STATUS_SUCCESS;
        return ClasspDeviceUniqueId(fdx, Irp, out_len);
    default:
        *forward = TRUE; /* device identifiers and others: the port answers */
        return STATUS_SUCCESS;
    }
}

NTSTATUS ClassDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    BOOLEAN forward = FALSE;
    NTSTATUS status;

    if (!ClasspAcquireRemoveLock(fdx)) {
        Irp->IoStatus.Status = STATUS_DEVICE_DOES_NOT_EXIST;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return STATUS_DEVICE_DOES_NOT_EXIST;
    }
    Irp->IoStatus.Information = 0;
    switch (code) {
    case IOCTL_STORAGE_QUERY_PROPERTY:
        status = ClasspQueryProperty(DeviceObject, Irp, &forward);
        break;
    case IOCTL_STORAGE_GET_DEVICE_NUMBER: {
        STORAGE_DEVICE_NUMBER n = {DeviceObject->DeviceType, fdx->DeviceNumber, 0};
        if (out_len < sizeof(n)) {
            status = STATUS_BUFFER_TOO_SMALL;
            break;
        }
        memcpy(Irp->AssociatedIrp.SystemBuffer, &n, sizeof(n));
        Irp->IoStatus.Information = sizeof(n);
        status = STATUS_SUCCESS;
        break;
    }
    case IOCTL_STORAGE_CHECK_VERIFY:
    case IOCTL_STORAGE_CHECK_VERIFY2: {
        SCSI_REQUEST_BLOCK srb = {0};
        srb.CdbLength = 6;
        srb.Cdb[0] = SCSIOP_TEST_UNIT_READY;
        status = ClassSendSrbSynchronous(DeviceObject, &srb, NULL, 0, FALSE);
        break;
    }
    default:
        /* SCSI pass-through, address, capabilities, inquiry data and the rest of the SCSI and
         * storage IOCTLs belong to the port driver (Handling SCSI Pass-Through Requests). */
        if (DEVICE_TYPE_FROM_CTL_CODE(code) == IOCTL_SCSI_BASE ||
            DEVICE_TYPE_FROM_CTL_CODE(code) == IOCTL_STORAGE_BASE) {
            forward = TRUE;
            status = STATUS_SUCCESS;
        } else {
            status = STATUS_INVALID_DEVICE_REQUEST;
        }
        break;
    }
    if (forward)
        return ClasspForward(fdx, Irp);
    Irp->IoStatus.Status = status;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    ClasspReleaseRemoveLock(fdx);
    return status;
}
