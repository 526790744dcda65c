/*
 * Storport's logical-unit PDOs: the device IDs a class driver is matched by (the SCSI rules:
 * SCSI\<Type><Vendor><Product><Rev> down to Gen<Type>), device text, and the PnP requests a bus
 * driver answers for its children. A unit the bus no longer reports is deleted on REMOVE.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "drivers/port/storport/storport_p.h"

static PCSTR StorpTypeName(UCHAR type)
{
    switch (type) {
    case DIRECT_ACCESS_DEVICE:
        return "Disk";
    case SEQUENTIAL_ACCESS_DEVICE:
        return "Sequential";
    case 0x02:
        return "Printer";
    case 0x03:
        return "Processor";
    case 0x04:
        return "Worm";
    case READ_ONLY_DIRECT_ACCESS_DEVICE:
        return "CdRom";
    case 0x06:
        return "Scanner";
    case 0x07:
        return "Optical";
    case MEDIUM_CHANGER:
        return "Changer";
    case 0x09:
        return "Net";
    case 0x0C:
        return "Array";
    case 0x0D:
        return "Enclosure";
    case 0x0E:
        return "RBC";
    default:
        return "Other";
    }
}

static PCSTR StorpGenericName(UCHAR type)
{
    switch (type) {
    case DIRECT_ACCESS_DEVICE:
        return "GenDisk";
    case SEQUENTIAL_ACCESS_DEVICE:
        return "GenSequential";
    case 0x02:
        return "GenPrinter";
    case 0x04:
        return "GenWorm";
    case READ_ONLY_DIRECT_ACCESS_DEVICE:
        return "GenCdRom";
    case 0x06:
        return "GenScanner";
    case 0x07:
        return "GenOptical";
    case MEDIUM_CHANGER:
        return "GenChanger";
    case 0x09:
        return "GenNet";
    case 0x0C:
        return "GenArray";
    case 0x0D:
        return "GenEnclosure";
    default:
        return "GenOther";
    }
}

/* Copies an INQUIRY text field into an ID: spaces and unprintables become '_', length kept. */
static void StorpIdField(char *dst, PCSTR src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c <= 0x20 || c >= 0x7F || c == ',') ? '_' : (char)c;
    }
    dst[len] = 0;
}

/* Appends an ID to a multi-sz under construction. */
static void StorpAppendId(char *buf, size_t *n, size_t cap, PCSTR id)
{
    size_t l = strlen(id);
    if (*n + l + 2 > cap)
        return;
    memcpy(buf + *n, id, l + 1);
    *n += l + 1;
    buf[*n] = 0;
}

static PVOID StorpDupString(PCSTR s, size_t len)
{
    PVOID p = ExAllocatePoolWithTag(NonPagedPool, len + 2, 0);
    if (p)
        memcpy(p, s, len);
    return p;
}

static NTSTATUS StorpQueryId(PSTORP_UNIT unit, BUS_QUERY_ID_TYPE type, ULONG_PTR *info)
{
    char vendor[9], product[17], rev[5], buf[512], id[128];
    PCSTR tname = StorpTypeName(unit->DeviceType);
    size_t n = 0;

    StorpIdField(vendor, unit->VendorId, 8);
    StorpIdField(product, unit->ProductId, 16);
    StorpIdField(rev, unit->Revision, 4);
    memset(buf, 0, sizeof(buf));
    switch (type) {
    case BusQueryDeviceID: {
        /* the device ID drops the padding the hardware IDs keep */
        char v[9], p[17], r[5];
        memcpy(v, vendor, sizeof(v));
        memcpy(p, product, sizeof(p));
        memcpy(r, rev, sizeof(r));
        for (char *f[] = {v, p, r}, **q = f; q < f + 3; q++)
            for (int i = (int)strlen(*q) - 1; i >= 0 && (*q)[i] == '_'; i--)
                (*q)[i] = 0;
        n = (size_t)snprintf(buf, sizeof(buf), "SCSI\\%s&Ven_%s&Prod_%s&Rev_%s", tname, v, p, r) +
            1;
        break;
    }
    case BusQueryInstanceID:
        n = (size_t)snprintf(buf, sizeof(buf), "%u&%u&%u&%u", unit->Adapter->PortNumber,
                             unit->PathId, unit->TargetId, unit->Lun) +
            1;
        break;
    case BusQueryHardwareIDs:
        snprintf(id, sizeof(id), "SCSI\\%s%s%s%s", tname, vendor, product, rev);
        StorpAppendId(buf, &n, sizeof(buf), id);
        snprintf(id, sizeof(id), "SCSI\\%s%s%s", tname, vendor, product);
        StorpAppendId(buf, &n, sizeof(buf), id);
        snprintf(id, sizeof(id), "SCSI\\%s%s", tname, vendor);
        StorpAppendId(buf, &n, sizeof(buf), id);
        snprintf(id, sizeof(id), "SCSI\\%s%s%c", vendor, product, rev[0]);
        StorpAppendId(buf, &n, sizeof(buf), id);
        snprintf(id, sizeof(id), "%s%s%c", vendor, product, rev[0]);
        StorpAppendId(buf, &n, sizeof(buf), id);
        StorpAppendId(buf, &n, sizeof(buf), StorpGenericName(unit->DeviceType));
        n++;
        break;
    case BusQueryCompatibleIDs:
        snprintf(id, sizeof(id), "SCSI\\%s", tname);
        StorpAppendId(buf, &n, sizeof(buf), id);
        StorpAppendId(buf, &n, sizeof(buf), "SCSI\\RAW");
        n++;
        break;
    default:
        return STATUS_NOT_SUPPORTED;
    }
    *info = (ULONG_PTR)StorpDupString(buf, n);
    return *info ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

static NTSTATUS StorpQueryText(PSTORP_UNIT unit, DEVICE_TEXT_TYPE type, ULONG_PTR *info)
{
    char buf[160], vendor[9], product[17];
    if (type == DeviceTextDescription) {
        /* "<vendor> <product> SCSI <Type> Device", trimmed, as Windows names SCSI devices */
        snprintf(vendor, sizeof(vendor), "%.8s", unit->VendorId);
        snprintf(product, sizeof(product), "%.16s", unit->ProductId);
        for (int i = (int)strlen(vendor) - 1; i >= 0 && vendor[i] == ' '; i--)
            vendor[i] = 0;
        for (int i = (int)strlen(product) - 1; i >= 0 && product[i] == ' '; i--)
            product[i] = 0;
        snprintf(buf, sizeof(buf), "%s %s SCSI %s Device", vendor, product,
                 StorpTypeName(unit->DeviceType));
    } else if (type == DeviceTextLocationInformation) {
        snprintf(buf, sizeof(buf), "Bus Number %u, Target Id %u, LUN %u", unit->PathId,
                 unit->TargetId, unit->Lun);
    } else {
        return STATUS_NOT_SUPPORTED;
    }
    *info = (ULONG_PTR)StorpDupString(buf, strlen(buf) + 1);
    return *info ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

NTSTATUS StorpCreateUnitPdo(PSTORP_UNIT Unit)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PDEVICE_OBJECT pdo;
    char name[96];
    NTSTATUS status;
    snprintf(name, sizeof(name), "%s\\P%uT%uL%u", adapter->DeviceName, Unit->PathId, Unit->TargetId,
             Unit->Lun);
    status = IoCreateDevice(adapter->DeviceObject->DriverObject, sizeof(STORP_PDO_EXTENSION), name,
                            FILE_DEVICE_MASS_STORAGE, FILE_DEVICE_SECURE_OPEN, FALSE, &pdo);
    if (!NT_SUCCESS(status))
        return status;
    ((PSTORP_PDO_EXTENSION)pdo->DeviceExtension)->Common.Signature = STORP_UNIT_SIGNATURE;
    ((PSTORP_PDO_EXTENSION)pdo->DeviceExtension)->Unit = Unit;
    pdo->StackSize = 1;
    pdo->AlignmentRequirement = adapter->Config.AlignmentMask;
    pdo->Flags |= DO_DIRECT_IO;
    Unit->DeviceObject = pdo;
    return STATUS_SUCCESS;
}

/* Frees a unit and deletes its PDO. Nothing may be outstanding. */
void StorpDeleteUnit(PSTORP_UNIT Unit)
{
    if (Unit->DeviceObject) {
        ((PSTORP_PDO_EXTENSION)Unit->DeviceObject->DeviceExtension)->Unit = Unit;
        IoDeleteDevice(Unit->DeviceObject);
        Unit->DeviceObject = NULL;
    }
    KeDeleteSpinLock(&Unit->Lock);
    free(Unit);
}

/* ---- HwStorUnitControl ---------------------------------------------------------------------- */

void StorpQueryUnitControl(PSTORP_ADAPTER Adapter)
{
    PHW_UNIT_CONTROL control = Adapter->Driver->Init.HwUnitControl;
    SCSI_SUPPORTED_CONTROL_TYPE_LIST list = {.MaxControlType = ScsiUnitControlMax};

    memset(Adapter->UnitControl, 0, sizeof(Adapter->UnitControl));
    if (!control || control(Adapter->HwDeviceExtension, ScsiQuerySupportedUnitControlTypes,
                            &list) != ScsiUnitControlSuccess)
        return;
    for (ULONG i = 0; i < ScsiUnitControlMax; i++)
        Adapter->UnitControl[i] = list.SupportedTypeList[i];
}

SCSI_UNIT_CONTROL_STATUS StorpUnitControl(PSTORP_UNIT Unit, STOR_UNIT_CONTROL_TYPE Type,
                                          PVOID Parameters)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PHW_UNIT_CONTROL control = adapter->Driver->Init.HwUnitControl;
    STOR_ADDRESS address = {.Type = STOR_ADDRESS_TYPE_BTL8,
                            .AddressLength = STOR_ADDR_BTL8_ADDRESS_LENGTH,
                            .Path = Unit->PathId,
                            .Target = Unit->TargetId,
                            .Lun = Unit->Lun};

    if (!control || (ULONG)Type >= ScsiUnitControlMax || !adapter->UnitControl[Type] ||
        !adapter->HwDeviceExtension)
        return ScsiUnitControlUnsuccessful;
    /* the unit's address, for the length of the call: the parameters themselves, or the power
     * parameters' Address */
    if (Type == ScsiUnitStart || Type == ScsiUnitRemove || Type == ScsiUnitSurpriseRemoval)
        Parameters = &address;
    else if (Type == ScsiUnitPower)
        ((PSTOR_UNIT_CONTROL_POWER)Parameters)->Address = &address;
    return control(adapter->HwDeviceExtension, Type, Parameters);
}

void StorpRestartUnits(PSTORP_ADAPTER Adapter)
{
    for (ULONG i = 0; i < Adapter->UnitTableSize; i++) {
        KeAcquireSpinLock(&Adapter->UnitLock, NULL);
        PSTORP_UNIT unit = Adapter->UnitTable[i];
        BOOLEAN started = unit && unit->Present && unit->Started && !unit->Removed;
        KeReleaseSpinLock(&Adapter->UnitLock, 0);
        if (started && StorpUnitControl(unit, ScsiUnitStart, NULL) == ScsiUnitControlSuccess)
            StorpLogEvent(Adapter, unit->PathId, unit->TargetId, unit->Lun,
                          STORP_EVENT_ADAPTER_RESTART, 0, NULL, "storport",
                          "HwStorUnitControl ScsiUnitStart after the adapter restart");
    }
}

NTSTATUS StorpUnitDispatchPnp(PSTORP_UNIT Unit, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    NTSTATUS status = Irp->IoStatus.Status;
    ULONG_PTR info = Irp->IoStatus.Information;

    switch (sp->MinorFunction) {
    case IRP_MN_START_DEVICE:
        Unit->Started = TRUE;
        Unit->Removed = FALSE;
        StorpUnitControl(Unit, ScsiUnitStart, NULL);
        status = STATUS_SUCCESS;
        break;
    case IRP_MN_QUERY_ID:
        status = StorpQueryId(Unit, sp->Parameters.QueryId.IdType, &info);
        if (status == STATUS_NOT_SUPPORTED)
            status = Irp->IoStatus.Status;
        break;
    case IRP_MN_QUERY_DEVICE_TEXT:
        status = StorpQueryText(Unit, sp->Parameters.QueryDeviceText.DeviceTextType, &info);
        if (status == STATUS_NOT_SUPPORTED)
            status = Irp->IoStatus.Status;
        break;
    case IRP_MN_SURPRISE_REMOVAL:
        StorpUnitControl(Unit, ScsiUnitSurpriseRemoval, NULL);
        status = STATUS_SUCCESS;
        break;
    case IRP_MN_QUERY_REMOVE_DEVICE:
    case IRP_MN_CANCEL_REMOVE_DEVICE:
        status = STATUS_SUCCESS;
        break;
    case IRP_MN_REMOVE_DEVICE:
        if (Unit->Started)
            StorpUnitControl(Unit, ScsiUnitRemove, NULL);
        Unit->Started = FALSE;
        Unit->ClaimedBy = NULL;
        status = STATUS_SUCCESS;
        Irp->IoStatus.Status = status;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        if (!Unit->Present) {
            /* The bus no longer reports it: the PDO goes away now. A unit still present keeps
             * its PDO until the adapter is removed, as a bus driver must. */
            PSTORP_ADAPTER adapter = Unit->Adapter;
            ULONG targets = adapter->Config.MaximumNumberOfTargets;
            ULONG luns = adapter->Config.MaximumNumberOfLogicalUnits;
            KeAcquireSpinLock(&adapter->UnitLock, NULL);
            adapter
                ->UnitTable[((ULONG)Unit->PathId * targets + Unit->TargetId) * luns + Unit->Lun] =
                NULL;
            KeReleaseSpinLock(&adapter->UnitLock, 0);
            StorpDeleteUnit(Unit);
        } else {
            Unit->Removed = TRUE;
        }
        return status;
    default:
        break;
    }
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = info;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}
