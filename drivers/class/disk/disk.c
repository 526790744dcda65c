/*
 * disk: the disk class driver on classpnp. It claims direct-access logical units (GenDisk),
 * names them \Device\Harddisk<N>\DR<N> with the user name PhysicalDrive<N>, checks reads and
 * writes against the medium (whole sectors, inside the capacity), answers the disk IOCTLs
 * (geometry, length) and turns flushes and shutdown into SYNCHRONIZE CACHE. Everything else is
 * the class library's.
 */
#include <stdio.h>

#include <storstack/storage/classpnp.h>

#include "drivers/class/disk/disk.h"

typedef struct _DISK_DATA {
    ULONG DiskNumber;
    char PhysicalDriveName[32];
    char PartitionZeroName[64];
    BOOLEAN LinksCreated;
} DISK_DATA, *PDISK_DATA;

static NTSTATUS DiskAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    PDEVICE_OBJECT fdo = NULL;
    PFUNCTIONAL_DEVICE_EXTENSION fdx;
    PDISK_DATA data;
    char name[64];
    NTSTATUS status = STATUS_OBJECT_NAME_COLLISION;
    ULONG n;

    /* The disk number is the first free \Device\Harddisk<N>\DR<N>. */
    for (n = 0; n < 1024 && status == STATUS_OBJECT_NAME_COLLISION; n++) {
        snprintf(name, sizeof(name), "\\Device\\Harddisk%u\\DR%u", n, n);
        status = ClassCreateDeviceObject(DriverObject, name, Pdo, TRUE, &fdo);
    }
    if (!NT_SUCCESS(status))
        return status;
    n--;
    fdx = fdo->DeviceExtension;
    data = fdx->DriverData;
    data->DiskNumber = n;
    fdx->DeviceNumber = n;
    fdx->LowerDeviceObject = IoAttachDeviceToDeviceStack(fdo, Pdo);
    fdo->Flags |= DO_DIRECT_IO;
    fdo->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

/* ClassInitDevice: learn the medium (capacity, block size). */
static NTSTATUS DiskInitFdo(PDEVICE_OBJECT Fdo)
{
    return ClassReadDriveCapacity(Fdo);
}

static NTSTATUS DiskStartFdo(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PDISK_DATA data = fdx->DriverData;
    PEXECUTIVE ex = IoGetExecutive(Fdo);
    NTSTATUS status;

    snprintf(data->PhysicalDriveName, sizeof(data->PhysicalDriveName), "PhysicalDrive%u",
             data->DiskNumber);
    snprintf(data->PartitionZeroName, sizeof(data->PartitionZeroName),
             "\\Device\\Harddisk%u\\Partition0", data->DiskNumber);
    status = IoCreateSymbolicLink(ex, data->PhysicalDriveName, fdx->DeviceName);
    if (!NT_SUCCESS(status))
        return status;
    IoCreateSymbolicLink(ex, data->PartitionZeroName, fdx->DeviceName);
    data->LinksCreated = TRUE;
    IoSetDeviceUserName(Fdo, data->PhysicalDriveName);
    IoSetDeviceUserName(Fdo, fdx->DeviceName);
    /* without it the disk would not be flushed at shutdown */
    return IoRegisterShutdownNotification(Fdo);
}

static NTSTATUS DiskRemoveDevice(PDEVICE_OBJECT Fdo, UCHAR Type)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PDISK_DATA data = fdx->DriverData;
    if (data->LinksCreated) {
        IoDeleteSymbolicLink(IoGetExecutive(Fdo), data->PhysicalDriveName);
        IoDeleteSymbolicLink(IoGetExecutive(Fdo), data->PartitionZeroName);
        data->LinksCreated = FALSE;
    }
    IoUnregisterShutdownNotification(Fdo);
    return STATUS_SUCCESS;
}

/* ClassReadWriteVerification: whole sectors, inside the medium. */
static NTSTATUS DiskReadWriteVerification(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    LONGLONG offset = sp->Parameters.Read.ByteOffset.QuadPart;
    ULONG length = sp->Parameters.Read.Length;
    ULONG mask = fdx->DiskGeometry.BytesPerSector - 1;

    if (offset < 0 || ((ULONGLONG)offset & mask) || (length & mask))
        return STATUS_INVALID_PARAMETER;
    if ((ULONGLONG)offset + length > (ULONGLONG)fdx->PartitionLength.QuadPart)
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

static NTSTATUS DiskDeviceControl(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    NTSTATUS status;

    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_DISK_GET_DRIVE_GEOMETRY_EX:
    case IOCTL_DISK_GET_DRIVE_GEOMETRY:
    case IOCTL_DISK_GET_LENGTH_INFO: {
        ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
        ULONG need = code == IOCTL_DISK_GET_DRIVE_GEOMETRY_EX ? FIELD_OFFSET(DISK_GEOMETRY_EX, Data)
                     : code == IOCTL_DISK_GET_DRIVE_GEOMETRY  ? sizeof(DISK_GEOMETRY)
                                                              : sizeof(GET_LENGTH_INFORMATION);
        Irp->IoStatus.Information = 0;
        if (out_len < need) {
            status = STATUS_BUFFER_TOO_SMALL;
        } else {
            /* the capacity read at start: reading it again here would change what reads and
             * writes are being checked against while they run (a fixed disk keeps its size) */
            status = STATUS_SUCCESS;
        }
        if (NT_SUCCESS(status)) {
            PVOID out = Irp->AssociatedIrp.SystemBuffer;
            if (code == IOCTL_DISK_GET_LENGTH_INFO) {
                GET_LENGTH_INFORMATION li = {.Length = fdx->PartitionLength};
                memcpy(out, &li, sizeof(li));
            } else if (code == IOCTL_DISK_GET_DRIVE_GEOMETRY) {
                memcpy(out, &fdx->DiskGeometry, sizeof(DISK_GEOMETRY));
            } else {
                DISK_GEOMETRY_EX gx;
                memset(&gx, 0, sizeof(gx));
                gx.Geometry = fdx->DiskGeometry;
                gx.DiskSize = fdx->PartitionLength;
                memcpy(out, &gx, FIELD_OFFSET(DISK_GEOMETRY_EX, Data));
            }
            Irp->IoStatus.Information = need;
        }
        Irp->IoStatus.Status = status;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return status;
    }
    default:
        return ClassDeviceControl(Fdo, Irp);
    }
}

/* IRP_MJ_FLUSH_BUFFERS: SYNCHRONIZE CACHE, completed asynchronously. IRP_MJ_SHUTDOWN: the same,
 * waited for, then SRB_FUNCTION_SHUTDOWN so an adapter cache flushes too. */
static NTSTATUS DiskShutdownFlush(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    if (sp->MajorFunction == IRP_MJ_FLUSH_BUFFERS)
        return ClassSynchronizeCache(Fdo, Irp);

    SCSI_REQUEST_BLOCK srb = {0};
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_SYNCHRONIZE_CACHE;
    srb.TimeOutValue = 60;
    NTSTATUS status = ClassSendSrbSynchronous(Fdo, &srb, NULL, 0, FALSE);
    IO_STATUS_BLOCK iosb;
    SCSI_REQUEST_BLOCK sd = {0};
    sd.Length = sizeof(sd);
    sd.Function = SRB_FUNCTION_SHUTDOWN;
    sd.TimeOutValue = 60;
    KEVENT event;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    PIRP irp = IoBuildDeviceIoControlRequest(0, fdx->LowerDeviceObject, NULL, 0, NULL, 0, TRUE,
                                             &event, &iosb);
    if (irp) {
        PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(irp);
        next->MajorFunction = IRP_MJ_SCSI;
        next->Parameters.Scsi.Srb = &sd;
        IoCallDriver(fdx->LowerDeviceObject, irp);
        KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    }
    KeDeleteEvent(&event);
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    ClassReleaseRemoveLockFromShutdownFlush(Fdo);
    return status;
}

NTSTATUS DiskDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    CLASS_INIT_DATA init;
    memset(&init, 0, sizeof(init));
    init.InitializationDataSize = sizeof(init);
    init.FdoData.DeviceExtensionSize = sizeof(DISK_DATA);
    init.FdoData.DeviceType = FILE_DEVICE_DISK;
    init.FdoData.DeviceCharacteristics = FILE_DEVICE_SECURE_OPEN;
    init.FdoData.ClassReadWriteVerification = DiskReadWriteVerification;
    init.FdoData.ClassDeviceControl = DiskDeviceControl;
    init.FdoData.ClassShutdownFlush = DiskShutdownFlush;
    init.FdoData.ClassInitDevice = DiskInitFdo;
    init.FdoData.ClassStartDevice = DiskStartFdo;
    init.FdoData.ClassRemoveDevice = DiskRemoveDevice;
    init.ClassAddDevice = DiskAddDevice;
    return (NTSTATUS)ClassInitialize(DriverObject, (PVOID)RegistryPath, &init);
}

const char DiskInf[] = "[Version]\n"
                       "Signature = \"$Windows NT$\"\n"
                       "Class = DiskDrive\n"
                       "ClassGuid = {4d36e967-e325-11ce-bfc1-08002be10318}\n"
                       "Provider = storstack\n"
                       "[Models]\n"
                       "Disk drive = disk_Install, GenDisk\n"
                       "[disk_Install.Services]\n"
                       "AddService = disk, 0x00000002, disk_Service_Inst\n"
                       "[disk_Service_Inst]\n"
                       "ServiceType = 1\n"
                       "StartType = 0\n";
