/*
 * The storage class library (classpnp.h): what a class driver (disk, cdrom, tape, changer)
 * builds on. ClassInitialize takes the class driver's CLASS_INIT_DATA and installs the library's
 * dispatch routines; the library turns reads and writes into SRBs through transfer packets
 * (split by the adapter's MaximumTransferLength and NumberOfPhysicalBreaks), retries what
 * ClassInterpretSenseInfo says to retry, and handles the PnP, power and generic storage IOCTLs,
 * calling the class driver's routines where the class differs.
 */
#ifndef STORSTACK_STORAGE_CLASSPNP_H
#define STORSTACK_STORAGE_CLASSPNP_H

#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storage/ntddstor.h>
#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/wdm/io.h>
#include <storstack/wdm/pnp.h>
#include <storstack/wdm/registry.h>

#define MAXIMUM_RETRIES        4
#define SL_WRITE_THROUGH       0x04 /* IRP stack location flag: FUA */
#define SL_FT_SEQUENTIAL_WRITE 0x08

typedef struct _FUNCTIONAL_DEVICE_EXTENSION FUNCTIONAL_DEVICE_EXTENSION,
    *PFUNCTIONAL_DEVICE_EXTENSION;

typedef NTSTATUS CLASS_ADD_DEVICE(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo);
typedef NTSTATUS CLASS_INIT_DEVICE(PDEVICE_OBJECT DeviceObject);
typedef NTSTATUS CLASS_START_DEVICE(PDEVICE_OBJECT DeviceObject);
typedef NTSTATUS CLASS_STOP_DEVICE(PDEVICE_OBJECT DeviceObject, UCHAR Type);
typedef NTSTATUS CLASS_REMOVE_DEVICE(PDEVICE_OBJECT DeviceObject, UCHAR Type);
typedef NTSTATUS CLASS_READ_WRITE(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef NTSTATUS CLASS_DEVICE_CONTROL(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef NTSTATUS CLASS_SHUTDOWN_FLUSH(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef NTSTATUS CLASS_CREATE_CLOSE(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef void CLASS_ERROR(PDEVICE_OBJECT DeviceObject, PSCSI_REQUEST_BLOCK Srb, NTSTATUS *Status,
                         BOOLEAN *Retry);

typedef struct _CLASS_DEV_INFO {
    ULONG DeviceExtensionSize; /* class driver's data after FUNCTIONAL_DEVICE_EXTENSION */
    ULONG DeviceType;
    ULONG DeviceCharacteristics;
    CLASS_ERROR *ClassError;
    CLASS_READ_WRITE *ClassReadWriteVerification;
    CLASS_DEVICE_CONTROL *ClassDeviceControl;
    CLASS_SHUTDOWN_FLUSH *ClassShutdownFlush;
    CLASS_CREATE_CLOSE *ClassCreateClose;
    CLASS_INIT_DEVICE *ClassInitDevice;
    CLASS_START_DEVICE *ClassStartDevice;
    CLASS_STOP_DEVICE *ClassStopDevice;
    CLASS_REMOVE_DEVICE *ClassRemoveDevice;
} CLASS_DEV_INFO, *PCLASS_DEV_INFO;

typedef struct _CLASS_INIT_DATA {
    ULONG InitializationDataSize;
    CLASS_DEV_INFO FdoData;
    CLASS_ADD_DEVICE *ClassAddDevice;
    DRIVER_UNLOAD *ClassUnload;
} CLASS_INIT_DATA, *PCLASS_INIT_DATA;

struct _CLASS_PRIVATE_FDO_DATA;

/* The FDO's device extension; the class driver's own data follows it (DriverData). */
struct _FUNCTIONAL_DEVICE_EXTENSION {
    ULONG Signature;
    PDEVICE_OBJECT DeviceObject;
    PDEVICE_OBJECT LowerDeviceObject; /* the next device down (a filter or the port PDO) */
    PDEVICE_OBJECT LowerPdo;          /* the port's PDO */
    PCLASS_DEV_INFO DevInfo;
    PSTORAGE_DEVICE_DESCRIPTOR DeviceDescriptor;
    PSTORAGE_ADAPTER_DESCRIPTOR AdapterDescriptor;
    DISK_GEOMETRY DiskGeometry;
    LARGE_INTEGER PartitionLength; /* bytes */
    ULONG SectorShift;
    ULONG DeviceNumber;
    ULONG TimeOutValue; /* seconds, for SRBs */
    ULONG SrbFlags;
    BOOLEAN Claimed;
    BOOLEAN Started;
    BOOLEAN Removed;
    atomic_int OutstandingIrps; /* the remove lock's count */
    KEVENT RemoveEvent;
    struct _CLASS_PRIVATE_FDO_DATA *PrivateFdoData;
    char DeviceName[64];
    char LinkName[64];
    PVOID DriverData; /* the class driver's part of the extension */
};

#define CLASS_FDO_SIGNATURE 0x4F444643u /* 'CFDO' */

ULONG ClassInitialize(PVOID Argument1, PVOID Argument2, PCLASS_INIT_DATA InitializationData);
NTSTATUS ClassCreateDeviceObject(PDRIVER_OBJECT DriverObject, PCSTR ObjectNameBuffer,
                                 PDEVICE_OBJECT LowerDeviceObject, BOOLEAN IsFdo,
                                 PDEVICE_OBJECT *DeviceObject);
NTSTATUS ClassClaimDevice(PDEVICE_OBJECT LowerDeviceObject, BOOLEAN Release);
NTSTATUS ClassGetDescriptor(PDEVICE_OBJECT DeviceObject, STORAGE_PROPERTY_ID *PropertyId,
                            PVOID *Descriptor);
NTSTATUS ClassReadDriveCapacity(PDEVICE_OBJECT Fdo);
NTSTATUS ClassSendSrbSynchronous(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb, PVOID BufferAddress,
                                 ULONG BufferLength, BOOLEAN WriteToDevice);
BOOLEAN ClassInterpretSenseInfo(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb,
                                UCHAR MajorFunctionCode, ULONG IoDeviceCode, ULONG RetryCount,
                                NTSTATUS *Status, ULONG *RetryInterval);
void ClassReleaseQueue(PDEVICE_OBJECT Fdo);
ULONG ClassModeSense(PDEVICE_OBJECT Fdo, PUCHAR ModeSenseBuffer, ULONG Length, UCHAR PageMode);
PVOID ClassFindModePage(PUCHAR ModeSenseBuffer, ULONG Length, UCHAR PageMode, BOOLEAN Use6Byte);
NTSTATUS ClassDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp);
void ClassCompleteRequest(PDEVICE_OBJECT DeviceObject, PIRP Irp, CCHAR PriorityBoost);
NTSTATUS ClassSendDeviceIoControlSynchronous(ULONG IoControlCode, PDEVICE_OBJECT TargetDeviceObject,
                                             PVOID Buffer, ULONG InputBufferLength,
                                             ULONG OutputBufferLength,
                                             BOOLEAN InternalDeviceIoControl,
                                             PIO_STATUS_BLOCK IoStatus);
/* The maximum bytes one transfer packet carries, from the adapter's limits (sector multiple). */
ULONG ClassMaximumTransferBytes(PFUNCTIONAL_DEVICE_EXTENSION FdoExtension);
/* Sends SYNCHRONIZE CACHE (10) for the whole medium; with Wait FALSE the IRP is completed later. */
NTSTATUS ClassSynchronizeCache(PDEVICE_OBJECT Fdo, PIRP Irp);

/* A class driver's ClassShutdownFlush that completes the IRP itself calls this afterwards:
 * classpnp took the remove lock for it. (ClassSynchronizeCache releases it on its own.) */
void ClassReleaseRemoveLockFromShutdownFlush(PDEVICE_OBJECT Fdo);

static inline PFUNCTIONAL_DEVICE_EXTENSION ClassGetFdoExtension(PDEVICE_OBJECT Fdo)
{
    return Fdo->DeviceExtension;
}

#endif
