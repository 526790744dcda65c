/*
 * Plug and Play: the minor functions of IRP_MJ_PNP, device relations, the devnode tree's
 * services to drivers, and driver packages (a DriverEntry plus an INF-shaped manifest naming the
 * hardware and compatible IDs it serves). The PnP manager matches IDs to services, loads drivers,
 * builds each device stack (lower filters, function driver, upper filters) and starts it.
 */
#ifndef STORSTACK_WDM_PNP_H
#define STORSTACK_WDM_PNP_H

#include <storstack/wdm/io.h>

#define IRP_MN_START_DEVICE           0x00
#define IRP_MN_QUERY_REMOVE_DEVICE    0x01
#define IRP_MN_REMOVE_DEVICE          0x02
#define IRP_MN_CANCEL_REMOVE_DEVICE   0x03
#define IRP_MN_STOP_DEVICE            0x04
#define IRP_MN_QUERY_STOP_DEVICE      0x05
#define IRP_MN_CANCEL_STOP_DEVICE     0x06
#define IRP_MN_QUERY_DEVICE_RELATIONS 0x07
#define IRP_MN_QUERY_INTERFACE        0x08
#define IRP_MN_QUERY_CAPABILITIES     0x09
#define IRP_MN_QUERY_RESOURCES        0x0A
#define IRP_MN_QUERY_DEVICE_TEXT      0x0C
#define IRP_MN_QUERY_ID               0x13
#define IRP_MN_QUERY_PNP_DEVICE_STATE 0x14
#define IRP_MN_SURPRISE_REMOVAL       0x17

typedef struct _DEVICE_RELATIONS {
    ULONG Count;
    PDEVICE_OBJECT Objects[];
} DEVICE_RELATIONS, *PDEVICE_RELATIONS;

/* Asks the PnP manager to query the device's bus relations again (on a work item). */
void IoInvalidateDeviceRelations(PDEVICE_OBJECT DeviceObject, DEVICE_RELATION_TYPE Type);
/* Waits until every queued enumeration has been processed (storstack: for tests and tools). */
void IoSynchronizeDeviceRelations(PEXECUTIVE Executive);

typedef enum _DEVICE_REGISTRY_PROPERTY {
    DevicePropertyDeviceDescription = 0,
    DevicePropertyHardwareID = 1,
    DevicePropertyCompatibleIDs = 2,
    DevicePropertyClassName = 4,
    DevicePropertyDriverKeyName = 9,
    DevicePropertyLocationInformation = 10,
    DevicePropertyPhysicalDeviceObjectName = 11,
    DevicePropertyEnumeratorName = 15,
} DEVICE_REGISTRY_PROPERTY;

/* Reads a property of a PDO's devnode. REG_MULTI_SZ properties are NUL-separated, NUL-NUL ended. */
NTSTATUS IoGetDeviceProperty(PDEVICE_OBJECT DeviceObject, DEVICE_REGISTRY_PROPERTY DeviceProperty,
                             ULONG BufferLength, PVOID PropertyBuffer, PULONG ResultLength);

/* The devnode's registry key path below CurrentControlSet ("Enum\<instance path>"). */
#define PLUGPLAY_REGKEY_DEVICE 1
#define PLUGPLAY_REGKEY_DRIVER 2
NTSTATUS IoGetDeviceRegistryKeyPath(PDEVICE_OBJECT PhysicalDeviceObject, ULONG DevInstKeyType,
                                    char *Path, ULONG PathLength);

/* Records a name by which users reach this device (shown in the tree), e.g. "PhysicalDrive0". */
void IoSetDeviceUserName(PDEVICE_OBJECT DeviceObject, PCSTR Name);

/* storstack: records why a device failed (shown by the tree and returned by a failed boot), as
 * a driver's event log entry would tell on Windows. Any device of the stack names the devnode. */
void IoSetDeviceProblemText(PDEVICE_OBJECT DeviceObject, PCSTR Format, ...)
    __attribute__((format(printf, 2, 3)));

/* A driver package: what an INF and a driver binary are on Windows. */
typedef struct _DRIVER_PACKAGE {
    PCSTR ServiceName; /* "disk" */
    PDRIVER_INITIALIZE DriverEntry;
    PCSTR InfText; /* the manifest, INI syntax */
} DRIVER_PACKAGE, *PDRIVER_PACKAGE;

/* Adds a package to the executive's driver store; the manifest is parsed and checked here. */
NTSTATUS IoRegisterDriverPackage(PEXECUTIVE Executive, const DRIVER_PACKAGE *Package);

#endif
