/*
 * The class library's driver-level part: ClassInitialize (Storage Class Driver's DriverEntry
 * Routine), the dispatch routines it installs (Storage Class Driver's Dispatch Routines), device
 * object creation, PnP start (Handling PnP Start in a Storage Class Driver: descriptors, claim,
 * the class driver's init and start) and removal (Storage Class Driver's RemoveDevice Routine),
 * and the remove lock that keeps an FDO alive while requests are in it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/class/classpnp/classp.h"

typedef struct _CLASS_DRIVER_EXTENSION {
    CLASS_INIT_DATA InitData;
} CLASS_DRIVER_EXTENSION, *PCLASS_DRIVER_EXTENSION;

BOOLEAN ClasspAcquireRemoveLock(PFUNCTIONAL_DEVICE_EXTENSION fdx)
{
    atomic_fetch_add(&fdx->OutstandingIrps, 1);
    /* Removed is read and written with sequentially consistent atomics: the remover stores it
     * then reads the count, a releaser drops the count then reads it, so one of them sees the
     * other and the remover's wait always ends. */
    if (__atomic_load_n(&fdx->Removed, __ATOMIC_SEQ_CST)) {
        ClasspReleaseRemoveLock(fdx);
        return FALSE;
    }
    return TRUE;
}

void ClasspReleaseRemoveLock(PFUNCTIONAL_DEVICE_EXTENSION fdx)
{
    if (atomic_fetch_sub(&fdx->OutstandingIrps, 1) == 1 &&
        __atomic_load_n(&fdx->Removed, __ATOMIC_SEQ_CST))
        KeSetEvent(&fdx->RemoveEvent, 0, FALSE);
}

void ClassReleaseRemoveLockFromShutdownFlush(PDEVICE_OBJECT Fdo)
{
    ClasspReleaseRemoveLock(Fdo->DeviceExtension);
}

void ClassCompleteRequest(PDEVICE_OBJECT DeviceObject, PIRP Irp, CCHAR PriorityBoost)
{
    IoCompleteRequest(Irp, PriorityBoost);
}

static NTSTATUS ClasspCompleteWith(PIRP Irp, NTSTATUS status, ULONG_PTR info)
{
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = info;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

NTSTATUS ClassCreateDeviceObject(PDRIVER_OBJECT DriverObject, PCSTR ObjectNameBuffer,
                                 PDEVICE_OBJECT LowerDeviceObject, BOOLEAN IsFdo,
                                 PDEVICE_OBJECT *DeviceObject)
{
    PCLASS_DRIVER_EXTENSION drvx = IoGetDriverObjectExtension(DriverObject);
    PCLASS_DEV_INFO info = &drvx->InitData.FdoData;
    ULONG size = (ULONG)((sizeof(FUNCTIONAL_DEVICE_EXTENSION) + 15u) & ~15u);
    PFUNCTIONAL_DEVICE_EXTENSION fdx;
    PDEVICE_OBJECT dev;
    NTSTATUS status;

    if (!IsFdo)
        return STATUS_NOT_SUPPORTED; /* class PDOs (partitions, changer children) come later */
    status = IoCreateDevice(
        DriverObject, size + info->DeviceExtensionSize + sizeof(CLASS_PRIVATE_FDO_DATA),
        ObjectNameBuffer, info->DeviceType, info->DeviceCharacteristics, FALSE, &dev);
    if (!NT_SUCCESS(status))
        return status;
    fdx = dev->DeviceExtension;
    fdx->Signature = CLASS_FDO_SIGNATURE;
    fdx->DeviceObject = dev;
    fdx->LowerPdo = LowerDeviceObject;
    fdx->DevInfo = info;
    fdx->TimeOutValue = CLASSP_DEFAULT_TIMEOUT;
    {
        /* Services\Disk\TimeOutValue (seconds), the value Windows' class drivers honour */
        ULONGLONG timeout;
        if (NT_SUCCESS(RtlQueryRegistryUlonglong(IoGetExecutive(dev), "Services\\Disk",
                                                 "TimeOutValue", &timeout)) &&
            timeout >= 1 && timeout <= 108000)
            fdx->TimeOutValue = (ULONG)timeout;
    }
    fdx->DriverData = info->DeviceExtensionSize ? (PUCHAR)fdx + size : NULL;
    fdx->PrivateFdoData =
        (PCLASS_PRIVATE_FDO_DATA)((PUCHAR)fdx + size + ((info->DeviceExtensionSize + 7u) & ~7u));
    KeInitializeEvent(&fdx->RemoveEvent, NotificationEvent, FALSE);
    if (ObjectNameBuffer)
        snprintf(fdx->DeviceName, sizeof(fdx->DeviceName), "%s", ObjectNameBuffer);
    *DeviceObject = dev;
    return STATUS_SUCCESS;
}

static NTSTATUS ClasspDispatchCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    if (fdx->DevInfo->ClassCreateClose)
        return fdx->DevInfo->ClassCreateClose(DeviceObject, Irp);
    /* The cleanup of a handle that carries an I_T nexus goes down to the port, which tells the
     * miniport the nexus is gone (storstack: ScsiUnitNexusLoss). */
    if (sp->MajorFunction == IRP_MJ_CLEANUP && sp->FileObject && sp->FileObject->Caller.Nexus &&
        fdx->LowerDeviceObject) {
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(fdx->LowerDeviceObject, Irp);
    }
    return ClasspCompleteWith(Irp, STATUS_SUCCESS, 0);
}

/* IRP_MJ_READ / IRP_MJ_WRITE (Storage Class Driver's Support of I/O Requests). */
static NTSTATUS ClasspDispatchReadWrite(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    NTSTATUS status;

    if (!ClasspAcquireRemoveLock(fdx))
        return ClasspCompleteWith(Irp, STATUS_DEVICE_DOES_NOT_EXIST, 0);
    if (!fdx->Started) {
        ClasspReleaseRemoveLock(fdx);
        return ClasspCompleteWith(Irp, STATUS_DEVICE_NOT_READY, 0);
    }
    if (fdx->DevInfo->ClassReadWriteVerification) {
        status = fdx->DevInfo->ClassReadWriteVerification(DeviceObject, Irp);
        if (status != STATUS_SUCCESS) {
            ClasspReleaseRemoveLock(fdx);
            if (status == STATUS_PENDING)
                return status; /* the class driver took it */
            return ClasspCompleteWith(Irp, status, 0);
        }
    }
    if (sp->Parameters.Read.Length == 0) {
        ClasspReleaseRemoveLock(fdx);
        return ClasspCompleteWith(Irp, STATUS_SUCCESS, 0);
    }
    if (!Irp->MdlAddress) {
        ClasspReleaseRemoveLock(fdx);
        return ClasspCompleteWith(Irp, STATUS_INVALID_PARAMETER, 0);
    }
    return ClasspServiceReadWrite(DeviceObject, Irp);
}

static NTSTATUS ClasspDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    if (!fdx->Started)
        return ClasspCompleteWith(Irp, STATUS_DEVICE_NOT_READY, 0);
    if (fdx->DevInfo->ClassDeviceControl)
        return fdx->DevInfo->ClassDeviceControl(DeviceObject, Irp);
    return ClassDeviceControl(DeviceObject, Irp);
}

static NTSTATUS ClasspDispatchShutdownFlush(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    if (!ClasspAcquireRemoveLock(fdx))
        return ClasspCompleteWith(Irp, STATUS_DEVICE_DOES_NOT_EXIST, 0);
    if (!fdx->Started || !fdx->DevInfo->ClassShutdownFlush) {
        ClasspReleaseRemoveLock(fdx);
        return ClasspCompleteWith(Irp, fdx->Started ? STATUS_SUCCESS : STATUS_DEVICE_NOT_READY, 0);
    }
    /* the class driver completes the IRP and releases the remove lock */
    return fdx->DevInfo->ClassShutdownFlush(DeviceObject, Irp);
}

/* IRP_MJ_SCSI sent to a class FDO (by an upper filter): passed down unchanged. */
static NTSTATUS ClasspDispatchScsi(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(fdx->LowerDeviceObject, Irp);
}

static NTSTATUS ClasspDispatchPower(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(fdx->LowerDeviceObject, Irp);
}

static NTSTATUS ClasspStartDevice(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    STORAGE_PROPERTY_ID id;
    NTSTATUS status;

    id = StorageAdapterProperty;
    status = ClassGetDescriptor(fdx->LowerDeviceObject, &id, (PVOID *)&fdx->AdapterDescriptor);
    if (!NT_SUCCESS(status))
        return status;
    id = StorageDeviceProperty;
    status = ClassGetDescriptor(fdx->LowerDeviceObject, &id, (PVOID *)&fdx->DeviceDescriptor);
    if (!NT_SUCCESS(status))
        return status;
    /* Storage Class Driver's ClaimDevice Routine: one class driver per unit. */
    status = ClassClaimDevice(fdx->LowerDeviceObject, FALSE);
    if (!NT_SUCCESS(status))
        return status;
    fdx->Claimed = TRUE;
    fdx->PrivateFdoData->MaxTransferBytes = ClassMaximumTransferBytes(fdx);
    status = ClasspInitializePackets(Fdo);
    if (!NT_SUCCESS(status))
        return status;
    if (fdx->DevInfo->ClassInitDevice) {
        status = fdx->DevInfo->ClassInitDevice(Fdo);
        if (!NT_SUCCESS(status))
            return status;
    }
    /* the block size is known now: split on whole blocks */
    fdx->PrivateFdoData->MaxTransferBytes = ClassMaximumTransferBytes(fdx);
    if (fdx->DevInfo->ClassStartDevice) {
        status = fdx->DevInfo->ClassStartDevice(Fdo);
        if (!NT_SUCCESS(status))
            return status;
    }
    fdx->Started = TRUE;
    return STATUS_SUCCESS;
}

static void ClasspReleaseResources(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    if (fdx->Claimed) {
        ClassClaimDevice(fdx->LowerDeviceObject, TRUE);
        fdx->Claimed = FALSE;
    }
    ClasspFreePackets(Fdo);
    ExFreePool(fdx->AdapterDescriptor);
    ExFreePool(fdx->DeviceDescriptor);
    fdx->AdapterDescriptor = NULL;
    fdx->DeviceDescriptor = NULL;
}

static NTSTATUS ClasspDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PDEVICE_OBJECT lower = fdx->LowerDeviceObject;
    NTSTATUS status;

    switch (sp->MinorFunction) {
    case IRP_MN_START_DEVICE:
        status = IoForwardIrpSynchronously(lower, Irp);
        if (NT_SUCCESS(status))
            status = ClasspStartDevice(DeviceObject);
        return ClasspCompleteWith(Irp, status, 0);
    case IRP_MN_REMOVE_DEVICE:
    case IRP_MN_SURPRISE_REMOVAL:
        if (sp->MinorFunction == IRP_MN_SURPRISE_REMOVAL) {
            fdx->Started = FALSE;
            break;
        }
        /* Wait until no request is inside this FDO, then let the class driver clean up. */
        __atomic_store_n(&fdx->Removed, TRUE, __ATOMIC_SEQ_CST);
        fdx->Started = FALSE;
        if (atomic_load(&fdx->OutstandingIrps) > 0)
            KeWaitForSingleObject(&fdx->RemoveEvent, Executive, KernelMode, FALSE, NULL);
        if (fdx->DevInfo->ClassRemoveDevice)
            fdx->DevInfo->ClassRemoveDevice(DeviceObject, IRP_MN_REMOVE_DEVICE);
        ClasspReleaseResources(DeviceObject);
        IoSkipCurrentIrpStackLocation(Irp);
        status = IoCallDriver(lower, Irp);
        IoDetachDevice(lower);
        KeDeleteEvent(&fdx->RemoveEvent);
        IoDeleteDevice(DeviceObject);
        return status;
    case IRP_MN_QUERY_REMOVE_DEVICE:
    case IRP_MN_CANCEL_REMOVE_DEVICE:
        Irp->IoStatus.Status = STATUS_SUCCESS;
        break;
    default:
        break;
    }
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(lower, Irp);
}

static NTSTATUS ClasspAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    PCLASS_DRIVER_EXTENSION drvx = IoGetDriverObjectExtension(DriverObject);
    return drvx->InitData.ClassAddDevice(DriverObject, Pdo);
}

ULONG ClassInitialize(PVOID Argument1, PVOID Argument2, PCLASS_INIT_DATA InitializationData)
{
    PDRIVER_OBJECT drv = Argument1;
    PCLASS_DRIVER_EXTENSION drvx;

    if (!InitializationData ||
        InitializationData->InitializationDataSize != sizeof(CLASS_INIT_DATA))
        return (ULONG)STATUS_REVISION_MISMATCH;
    if (!InitializationData->ClassAddDevice || !InitializationData->FdoData.ClassDeviceControl ||
        !InitializationData->FdoData.ClassReadWriteVerification)
        return (ULONG)STATUS_INVALID_PARAMETER;
    drvx = IoAllocateDriverObjectExtension(drv, sizeof(CLASS_DRIVER_EXTENSION));
    if (!drvx)
        return (ULONG)STATUS_OBJECT_NAME_COLLISION;
    drvx->InitData = *InitializationData;
    drv->DriverExtension->AddDevice = ClasspAddDevice;
    drv->DriverUnload = InitializationData->ClassUnload;
    drv->MajorFunction[IRP_MJ_CREATE] = ClasspDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_CLOSE] = ClasspDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_CLEANUP] = ClasspDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_READ] = ClasspDispatchReadWrite;
    drv->MajorFunction[IRP_MJ_WRITE] = ClasspDispatchReadWrite;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = ClasspDispatchDeviceControl;
    drv->MajorFunction[IRP_MJ_SCSI] = ClasspDispatchScsi;
    drv->MajorFunction[IRP_MJ_FLUSH_BUFFERS] = ClasspDispatchShutdownFlush;
    drv->MajorFunction[IRP_MJ_SHUTDOWN] = ClasspDispatchShutdownFlush;
    drv->MajorFunction[IRP_MJ_PNP] = ClasspDispatchPnp;
    drv->MajorFunction[IRP_MJ_POWER] = ClasspDispatchPower;
    return STATUS_SUCCESS;
}
