/*
 * Storport's interface with its miniports (storport.h): initialization data, the port
 * configuration, the Hw* callbacks a miniport provides, and the StorPort* services it calls.
 * A miniport written against the WDK's storport.h should port here with few changes: names,
 * fields and semantics follow it. Two executive-specific facts: "physical" addresses are host
 * virtual addresses, and there is no hardware bus, so virtual miniports
 * (VIRTUAL_HW_INITIALIZATION_DATA) are the common case.
 */
#ifndef STORSTACK_STORAGE_STORPORT_H
#define STORSTACK_STORAGE_STORPORT_H

#include <stdarg.h>

#include <storstack/nt/ntdef.h>
#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/wdm/io.h>

typedef PHYSICAL_ADDRESS STOR_PHYSICAL_ADDRESS, SCSI_PHYSICAL_ADDRESS, *PSTOR_PHYSICAL_ADDRESS;

typedef enum _INTERFACE_TYPE {
    InterfaceTypeUndefined = -1,
    Internal = 0,
    Isa,
    Eisa,
    MicroChannel,
    TurboChannel,
    PCIBus,
} INTERFACE_TYPE;

typedef enum _STOR_SYNCHRONIZATION_MODEL {
    StorSynchronizeHalfDuplex,
    StorSynchronizeFullDuplex
} STOR_SYNCHRONIZATION_MODEL;

typedef enum _SCSI_ADAPTER_CONTROL_TYPE {
    ScsiQuerySupportedControlTypes = 0,
    ScsiStopAdapter,
    ScsiRestartAdapter,
    ScsiSetBootConfig,
    ScsiSetRunningConfig,
    ScsiAdapterControlMax,
} SCSI_ADAPTER_CONTROL_TYPE;

typedef enum _SCSI_ADAPTER_CONTROL_STATUS {
    ScsiAdapterControlSuccess = 0,
    ScsiAdapterControlUnsuccessful
} SCSI_ADAPTER_CONTROL_STATUS;

/* The answer to ScsiQuerySupportedControlTypes (HwStorAdapterControl) and, with the unit types,
 * ScsiQuerySupportedUnitControlTypes (HwStorUnitControl): Storport sets MaxControlType to the
 * number of types it asks about; the miniport marks the ones it handles, up to MaxControlType.
 * (Windows declares the array open-ended; here it holds the larger of the two type counts.) */
#define STOR_MAX_CONTROL_TYPES 16
typedef struct _SCSI_SUPPORTED_CONTROL_TYPE_LIST {
    ULONG MaxControlType;
    BOOLEAN SupportedTypeList[STOR_MAX_CONTROL_TYPES];
} SCSI_SUPPORTED_CONTROL_TYPE_LIST, *PSCSI_SUPPORTED_CONTROL_TYPE_LIST;

typedef enum _STOR_UNIT_CONTROL_TYPE {
    ScsiQuerySupportedUnitControlTypes = 0,
    ScsiUnitUsage,
    ScsiUnitStart,
    ScsiUnitPower,
    ScsiUnitPoFxPowerInfo,
    ScsiUnitPoFxPowerRequired,
    ScsiUnitPoFxPowerActive,
    ScsiUnitPoFxPowerSetFState,
    ScsiUnitPoFxPowerControl,
    ScsiUnitRemove,
    ScsiUnitSurpriseRemoval,
    /* storstack extension: an I_T nexus ended (Parameters: PSTOR_UNIT_NEXUS_LOSS). */
    ScsiUnitNexusLoss,
    ScsiUnitControlMax,
} STOR_UNIT_CONTROL_TYPE;

/*
 * storstack extension, HwStorUnitControl ScsiUnitNexusLoss: a handle opened with an I_T nexus
 * identity (storstack_open_ex; the iSCSI target opens one per session and LUN) was cleaned up at
 * the unit: its I_T nexus is gone (SAM-5 6.3.4, logout or connection loss). A miniport whose
 * devices keep state per nexus (SPC-2 reservations, prevention of medium removal) ends it.
 * Called at PASSIVE_LEVEL with no Storport lock held. TransportId may be "".
 */
typedef struct _STOR_UNIT_NEXUS_LOSS {
    UCHAR PathId, TargetId, Lun;
    ULONGLONG Nexus;
    PCSTR TransportId;
} STOR_UNIT_NEXUS_LOSS, *PSTOR_UNIT_NEXUS_LOSS;

_Static_assert(ScsiUnitControlMax <= STOR_MAX_CONTROL_TYPES &&
                   ScsiAdapterControlMax <= STOR_MAX_CONTROL_TYPES,
               "SCSI_SUPPORTED_CONTROL_TYPE_LIST holds every control type");

typedef enum _SCSI_UNIT_CONTROL_STATUS {
    ScsiUnitControlSuccess = 0,
    ScsiUnitControlUnsuccessful
} SCSI_UNIT_CONTROL_STATUS;

#define SP_RETURN_NOT_FOUND  0
#define SP_RETURN_FOUND      1
#define SP_RETURN_ERROR      2
#define SP_RETURN_BAD_CONFIG 3

#define SP_UNINITIALIZED_VALUE       ((ULONG)~0)
#define SCSI_MAXIMUM_TARGETS_PER_BUS 128
#define SCSI_MAXIMUM_LOGICAL_UNITS   255
#define SCSI_MAXIMUM_BUSES           8
#define SCSI_MINIMUM_PHYSICAL_BREAKS 16
#define SCSI_MAXIMUM_PHYSICAL_BREAKS 255

typedef struct _ACCESS_RANGE {
    SCSI_PHYSICAL_ADDRESS RangeStart;
    ULONG RangeLength;
    BOOLEAN RangeInMemory;
} ACCESS_RANGE, *PACCESS_RANGE;

typedef struct _PORT_CONFIGURATION_INFORMATION {
    ULONG Length;
    ULONG SystemIoBusNumber;
    INTERFACE_TYPE AdapterInterfaceType;
    ULONG BusInterruptLevel;
    ULONG BusInterruptVector;
    ULONG InterruptMode;
    ULONG MaximumTransferLength;
    ULONG NumberOfPhysicalBreaks;
    ULONG DmaChannel;
    ULONG DmaPort;
    ULONG DmaWidth;
    ULONG DmaSpeed;
    ULONG AlignmentMask;
    ULONG NumberOfAccessRanges;
    ACCESS_RANGE (*AccessRanges)[];
    PVOID MiniportDumpData;
    UCHAR NumberOfBuses;
    CCHAR InitiatorBusId[8];
    BOOLEAN ScatterGather;
    BOOLEAN Master;
    BOOLEAN CachesData;
    BOOLEAN AdapterScansDown;
    BOOLEAN AtdiskPrimaryClaimed;
    BOOLEAN AtdiskSecondaryClaimed;
    BOOLEAN Dma32BitAddresses;
    BOOLEAN DemandMode;
    BOOLEAN MapBuffers;
    BOOLEAN NeedPhysicalAddresses;
    BOOLEAN TaggedQueuing;
    BOOLEAN AutoRequestSense;
    BOOLEAN MultipleRequestPerLu;
    BOOLEAN ReceiveEvent;
    BOOLEAN RealModeInitialized;
    BOOLEAN BufferAccessScsiPortControlled;
    UCHAR MaximumNumberOfTargets;
    UCHAR SrbType;
    UCHAR AddressType;
    UCHAR ReservedUchars[1];
    ULONG SlotNumber;
    ULONG DeviceExtensionSize;
    ULONG SpecificLuExtensionSize;
    ULONG SrbExtensionSize;
    UCHAR Dma64BitAddresses;
    BOOLEAN ResetTargetSupported;
    UCHAR MaximumNumberOfLogicalUnits;
    BOOLEAN WmiDataProvider;
    STOR_SYNCHRONIZATION_MODEL SynchronizationModel;
    ULONG MaxNumberOfIO; /* adapter-wide outstanding requests */
    ULONG MaxIOsPerLun;
    ULONG InitialLunQueueDepth;
    ULONG BusResetHoldTime; /* microseconds */
    ULONG FeatureSupport;
    BOOLEAN VirtualDevice;
} PORT_CONFIGURATION_INFORMATION, *PPORT_CONFIGURATION_INFORMATION;

/* Miniport callbacks */
typedef BOOLEAN HW_INITIALIZE(PVOID DeviceExtension);
typedef BOOLEAN HW_BUILDIO(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb);
typedef BOOLEAN HW_STARTIO(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb);
typedef BOOLEAN HW_INTERRUPT(PVOID DeviceExtension);
typedef ULONG HW_FIND_ADAPTER(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                              PCSTR ArgumentString, PPORT_CONFIGURATION_INFORMATION ConfigInfo,
                              PBOOLEAN Reserved3);
typedef ULONG VIRTUAL_HW_FIND_ADAPTER(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                                      PVOID LowerDevice, PCSTR ArgumentString,
                                      PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Again);
typedef BOOLEAN HW_RESET_BUS(PVOID DeviceExtension, ULONG PathId);
typedef BOOLEAN HW_DMA_STARTED(PVOID DeviceExtension);
typedef BOOLEAN HW_ADAPTER_STATE(PVOID DeviceExtension, PVOID Context, BOOLEAN SaveState);
typedef SCSI_ADAPTER_CONTROL_STATUS
HW_ADAPTER_CONTROL(PVOID DeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType, PVOID Parameters);
typedef void HW_FREE_ADAPTER_RESOURCES(PVOID DeviceExtension);
typedef void HW_PROCESS_SERVICE_REQUEST(PVOID DeviceExtension, PVOID Irp);
typedef void HW_COMPLETE_SERVICE_IRP(PVOID DeviceExtension);
typedef BOOLEAN HW_PASSIVE_INITIALIZE_ROUTINE(PVOID DeviceExtension);
typedef void HW_TIMER(PVOID DeviceExtension);
typedef SCSI_UNIT_CONTROL_STATUS
HW_UNIT_CONTROL(PVOID DeviceExtension, STOR_UNIT_CONTROL_TYPE ControlType, PVOID Parameters);
typedef HW_INITIALIZE *PHW_INITIALIZE;
typedef HW_BUILDIO *PHW_BUILDIO;
typedef HW_STARTIO *PHW_STARTIO;
typedef HW_INTERRUPT *PHW_INTERRUPT;
typedef HW_FIND_ADAPTER *PHW_FIND_ADAPTER;
typedef VIRTUAL_HW_FIND_ADAPTER *PVIRTUAL_HW_FIND_ADAPTER;
typedef HW_RESET_BUS *PHW_RESET_BUS;
typedef HW_DMA_STARTED *PHW_DMA_STARTED;
typedef HW_ADAPTER_STATE *PHW_ADAPTER_STATE;
typedef HW_ADAPTER_CONTROL *PHW_ADAPTER_CONTROL;
typedef HW_FREE_ADAPTER_RESOURCES *PHW_FREE_ADAPTER_RESOURCES;
typedef HW_PROCESS_SERVICE_REQUEST *PHW_PROCESS_SERVICE_REQUEST;
typedef HW_COMPLETE_SERVICE_IRP *PHW_COMPLETE_SERVICE_IRP;
typedef HW_PASSIVE_INITIALIZE_ROUTINE *PHW_PASSIVE_INITIALIZE_ROUTINE;
typedef HW_TIMER *PHW_TIMER;
typedef HW_UNIT_CONTROL *PHW_UNIT_CONTROL;

typedef struct _HW_INITIALIZATION_DATA {
    ULONG HwInitializationDataSize;
    INTERFACE_TYPE AdapterInterfaceType;
    PHW_INITIALIZE HwInitialize;
    PHW_STARTIO HwStartIo;
    PHW_INTERRUPT HwInterrupt;
    PHW_FIND_ADAPTER HwFindAdapter;
    PHW_RESET_BUS HwResetBus;
    PHW_DMA_STARTED HwDmaStarted;
    PHW_ADAPTER_STATE HwAdapterState;
    ULONG DeviceExtensionSize;
    ULONG SpecificLuExtensionSize;
    ULONG SrbExtensionSize;
    ULONG NumberOfAccessRanges;
    PVOID Reserved;
    BOOLEAN MapBuffers;
    BOOLEAN NeedPhysicalAddresses;
    BOOLEAN TaggedQueuing;
    BOOLEAN AutoRequestSense;
    BOOLEAN MultipleRequestPerLu;
    BOOLEAN ReceiveEvent;
    USHORT VendorIdLength;
    PVOID VendorId;
    union {
        USHORT ReservedUshort;
        USHORT PortVersionFlags;
    };
    USHORT DeviceIdLength;
    PVOID DeviceId;
    PHW_ADAPTER_CONTROL HwAdapterControl;
    PHW_BUILDIO HwBuildIo;
    PHW_FREE_ADAPTER_RESOURCES HwFreeAdapterResources;
    PHW_PROCESS_SERVICE_REQUEST HwProcessServiceRequest;
    PHW_COMPLETE_SERVICE_IRP HwCompleteServiceIrp;
    PVOID HwInitializeTracing;
    PVOID HwCleanupTracing;
    PVOID HwTracingEnabled;
    ULONG FeatureSupport;
    ULONG SrbTypeFlags;
    ULONG AddressTypeFlags;
    ULONG Reserved1;
    PHW_UNIT_CONTROL HwUnitControl;
} HW_INITIALIZATION_DATA, *PHW_INITIALIZATION_DATA;

typedef struct _VIRTUAL_HW_INITIALIZATION_DATA {
    ULONG HwInitializationDataSize;
    INTERFACE_TYPE AdapterInterfaceType;
    PHW_INITIALIZE HwInitialize;
    PHW_STARTIO HwStartIo;
    PHW_INTERRUPT HwInterrupt;
    PVIRTUAL_HW_FIND_ADAPTER HwFindAdapter;
    PHW_RESET_BUS HwResetBus;
    PHW_DMA_STARTED HwDmaStarted;
    PHW_ADAPTER_STATE HwAdapterState;
    ULONG DeviceExtensionSize;
    ULONG SpecificLuExtensionSize;
    ULONG SrbExtensionSize;
    ULONG NumberOfAccessRanges;
    PVOID Reserved;
    BOOLEAN MapBuffers;
    BOOLEAN NeedPhysicalAddresses;
    BOOLEAN TaggedQueuing;
    BOOLEAN AutoRequestSense;
    BOOLEAN MultipleRequestPerLu;
    BOOLEAN ReceiveEvent;
    USHORT VendorIdLength;
    PVOID VendorId;
    union {
        USHORT ReservedUshort;
        USHORT PortVersionFlags;
    };
    USHORT DeviceIdLength;
    PVOID DeviceId;
    PHW_ADAPTER_CONTROL HwAdapterControl;
    PHW_BUILDIO HwBuildIo;
    PHW_FREE_ADAPTER_RESOURCES HwFreeAdapterResources;
    PHW_PROCESS_SERVICE_REQUEST HwProcessServiceRequest;
    PHW_COMPLETE_SERVICE_IRP HwCompleteServiceIrp;
    PVOID HwInitializeTracing;
    PVOID HwCleanupTracing;
    PVOID HwTracingEnabled;
    ULONG FeatureSupport;
    ULONG SrbTypeFlags;
    ULONG AddressTypeFlags;
    ULONG Reserved1;
    PHW_UNIT_CONTROL HwUnitControl;
} VIRTUAL_HW_INITIALIZATION_DATA, *PVIRTUAL_HW_INITIALIZATION_DATA;

/* Scatter/gather */
typedef struct _STOR_SCATTER_GATHER_ELEMENT {
    STOR_PHYSICAL_ADDRESS PhysicalAddress;
    ULONG Length;
    ULONG_PTR Reserved;
} STOR_SCATTER_GATHER_ELEMENT, *PSTOR_SCATTER_GATHER_ELEMENT;

typedef struct _STOR_SCATTER_GATHER_LIST {
    ULONG NumberOfElements;
    ULONG_PTR Reserved;
    STOR_SCATTER_GATHER_ELEMENT List[];
} STOR_SCATTER_GATHER_LIST, *PSTOR_SCATTER_GATHER_LIST;

/* Notifications (StorPortNotification) */
typedef enum _SCSI_NOTIFICATION_TYPE {
    RequestComplete,
    NextRequest,
    NextLuRequest,
    ResetDetected,
    CallDisableInterrupts,
    CallEnableInterrupts,
    RequestTimerCall,
    BusChangeDetected,
    WMIEvent,
    WMIReregister,
    LinkUp,
    LinkDown,
    QueryTickCount,
    BufferOverrunDetected,
    TraceNotification,
    GetExtendedFunctionTable,
    EnablePassiveInitialization = 0x1000,
    InitializeDpc,
    IssueDpc,
    AcquireSpinLock,
    ReleaseSpinLock,
    StateChangeDetected,
} SCSI_NOTIFICATION_TYPE;

/* StorPortSynchronizeAccess */
typedef BOOLEAN STOR_SYNCHRONIZED_ACCESS(PVOID HwDeviceExtension, PVOID Context);
typedef STOR_SYNCHRONIZED_ACCESS *PSTOR_SYNCHRONIZED_ACCESS;

/* StorPortGetDeviceBase / registry */
#define MINIPORT_REG_SZ     1
#define MINIPORT_REG_BINARY 3
#define MINIPORT_REG_DWORD  4

/* DPCs, spin locks, timers, work items and performance options (Storport's miniport services
 * for deferred work). A STOR_DPC is the miniport's storage, initialized by StorPortInitializeDpc
 * (the InitializeDpc notification), queued by StorPortIssueDpc; its routine runs on a DPC thread
 * and takes DpcLock with StorPortAcquireSpinLock. Timers and work items are handles Storport
 * allocates (StorPortInitializeTimer/WorkItem) and frees (StorPortFreeTimer/WorkItem). */
typedef enum _STOR_SPINLOCK {
    DpcLock = 1,
    StartIoLock,
    InterruptLock,
    ThreadedDpcLock,
    DpcLevelLock,
} STOR_SPINLOCK;

typedef struct _STOR_LOCK_HANDLE {
    STOR_SPINLOCK Lock;
    PVOID Context; /* the lock taken */
} STOR_LOCK_HANDLE, *PSTOR_LOCK_HANDLE;

struct _STOR_DPC;
typedef void HW_DPC_ROUTINE(struct _STOR_DPC *Dpc, PVOID HwDeviceExtension, PVOID SystemArgument1,
                            PVOID SystemArgument2);
typedef HW_DPC_ROUTINE *PHW_DPC_ROUTINE;

typedef struct _STOR_DPC {
    KDPC Dpc;
    KSPIN_LOCK Lock; /* DpcLock */
    PVOID HwDeviceExtension;
    PHW_DPC_ROUTINE Routine;
} STOR_DPC, *PSTOR_DPC;

typedef void HW_TIMER_EX(PVOID DeviceExtension, PVOID Context);
typedef HW_TIMER_EX *PHW_TIMER_EX;
typedef void HW_WORKITEM(PVOID HwDeviceExtension, PVOID Context, PVOID Worker);
typedef HW_WORKITEM *PHW_WORKITEM;

#define STOR_PERF_DPC_REDIRECTION                        0x00000001
#define STOR_PERF_CONCURRENT_CHANNELS                    0x00000002
#define STOR_PERF_OPTIMIZE_FOR_COMPLETION_DURING_STARTIO 0x00000004
#define STOR_PERF_VERSION                                5

typedef struct _PERF_CONFIGURATION_DATA {
    ULONG Version;
    ULONG Size;
    ULONG Flags;
    ULONG ConcurrentChannels;
    ULONG FirstRedirectionMessageNumber, LastRedirectionMessageNumber;
    ULONG DeviceNode;
    ULONG Reserved;
    PVOID MessageTargets;
} PERF_CONFIGURATION_DATA, *PPERF_CONFIGURATION_DATA;

#define STOR_STATUS_UNSUCCESSFUL 0xC1000001
#define STOR_STATUS_BUSY         0xC1000005

void StorPortInitializeDpc(PVOID HwDeviceExtension, PSTOR_DPC Dpc, PHW_DPC_ROUTINE HwDpcRoutine);
BOOLEAN StorPortIssueDpc(PVOID HwDeviceExtension, PSTOR_DPC Dpc, PVOID SystemArgument1,
                         PVOID SystemArgument2);
/* DpcLock takes LockContext (the PSTOR_DPC); StartIoLock and InterruptLock take the adapter's. */
void StorPortAcquireSpinLock(PVOID HwDeviceExtension, STOR_SPINLOCK SpinLock, PVOID LockContext,
                             PSTOR_LOCK_HANDLE LockHandle);
void StorPortReleaseSpinLock(PVOID HwDeviceExtension, PSTOR_LOCK_HANDLE LockHandle);
BOOLEAN
StorPortEnablePassiveInitialization(PVOID HwDeviceExtension,
                                    PHW_PASSIVE_INITIALIZE_ROUTINE HwPassiveInitializeRoutine);
ULONG StorPortInitializeTimer(PVOID HwDeviceExtension, PVOID *TimerHandle);
/* One-shot: TimerCallback(HwDeviceExtension, CallbackContext) after TimerValue microseconds; a
 * second request replaces the first; 0 cancels. */
ULONG StorPortRequestTimer(PVOID HwDeviceExtension, PVOID TimerHandle, PHW_TIMER_EX TimerCallback,
                           PVOID CallbackContext, ULONGLONG TimerValue, ULONGLONG TolerableDelay);
ULONG StorPortFreeTimer(PVOID HwDeviceExtension, PVOID TimerHandle);
ULONG StorPortInitializeWorkItem(PVOID HwDeviceExtension, PVOID *Worker);
/* Runs WorkItemCallback on a system worker thread (passive level); STOR_STATUS_BUSY while the
 * same work item is queued and has not started (once it runs, it can be queued again). Freeing
 * a queued or running work item is STOR_STATUS_BUSY. */
ULONG StorPortQueueWorkItem(PVOID HwDeviceExtension, PHW_WORKITEM WorkItemCallback, PVOID Worker,
                            PVOID Context);
ULONG StorPortFreeWorkItem(PVOID HwDeviceExtension, PVOID Worker);
/* Query: fills Flags with what this Storport supports. Set: STOR_PERF_CONCURRENT_CHANNELS
 * (ConcurrentChannels > 1) lets HwStorStartIo run concurrently, without the StartIo lock. */
ULONG StorPortInitializePerfOpts(PVOID HwDeviceExtension, BOOLEAN Query,
                                 PPERF_CONFIGURATION_DATA PerfConfigData);

/* Device state change (for buses that report it, NVMe, SAS): the unit at Address changed
 * (STATE_CHANGE_LUN) or the target (STATE_CHANGE_TARGET) or the bus (STATE_CHANGE_BUS); Storport
 * logs it and rescans the bus. */
#define STATE_CHANGE_LUN    0x1
#define STATE_CHANGE_TARGET 0x2
#define STATE_CHANGE_BUS    0x4
typedef struct _STOR_ADDR_BTL8 {
    USHORT Type;
    USHORT Port;
    ULONG AddressLength;
    UCHAR Path, Target, Lun, Reserved;
} STOR_ADDR_BTL8, *PSTOR_ADDR_BTL8;
#define STOR_ADDRESS_TYPE_BTL8        0
#define STOR_ADDR_BTL8_ADDRESS_LENGTH 4
typedef STOR_ADDR_BTL8 STOR_ADDRESS, *PSTOR_ADDRESS;

/*
 * HwStorUnitControl's parameters. ScsiUnitStart, ScsiUnitRemove and ScsiUnitSurpriseRemoval pass
 * the unit's PSTOR_ADDRESS; ScsiUnitPower a PSTOR_UNIT_CONTROL_POWER. Storport asks
 * ScsiQuerySupportedUnitControlTypes once, when the adapter has started, and sends only what the
 * miniport marked. It sends ScsiUnitStart when a unit's PDO starts and again for every present
 * unit after an adapter restart in error recovery (the restarted adapter has lost its per-unit
 * state); ScsiUnitPower after each D0/D3 transition of a unit (idle power management);
 * ScsiUnitRemove when a unit's PDO is removed; ScsiUnitSurpriseRemoval on surprise removal.
 * Called at PASSIVE_LEVEL with no Storport lock held.
 */
typedef enum _STOR_POWER_ACTION {
    StorPowerActionNone = 0,
    StorPowerActionReserved,
    StorPowerActionSleep,
    StorPowerActionHibernate,
    StorPowerActionShutdown,
    StorPowerActionShutdownReset,
    StorPowerActionShutdownOff,
    StorPowerActionWarmEject
} STOR_POWER_ACTION;

typedef enum _STOR_DEVICE_POWER_STATE {
    StorPowerDeviceUnspecified = 0,
    StorPowerDeviceD0,
    StorPowerDeviceD1,
    StorPowerDeviceD2,
    StorPowerDeviceD3,
    StorPowerDeviceMaximum
} STOR_DEVICE_POWER_STATE;

typedef struct _STOR_UNIT_CONTROL_POWER {
    PSTOR_ADDRESS Address;
    STOR_POWER_ACTION PowerAction;
    STOR_DEVICE_POWER_STATE PowerState;
} STOR_UNIT_CONTROL_POWER, *PSTOR_UNIT_CONTROL_POWER;

BOOLEAN StorPortStateChangeDetected(PVOID HwDeviceExtension, ULONG ChangedEntity,
                                    PSTOR_ADDR_BTL8 Address, ULONG Attributes,
                                    PVOID HwStateChangeDetectedCallback, PVOID CallbackContext);

/* Storport routines */
ULONG StorPortInitialize(PVOID Argument1, PVOID Argument2, PVOID HwInitializationData,
                         PVOID HwContext);
void StorPortNotification(SCSI_NOTIFICATION_TYPE NotificationType, PVOID HwDeviceExtension, ...);
PSTOR_SCATTER_GATHER_LIST StorPortGetScatterGatherList(PVOID HwDeviceExtension,
                                                       PSCSI_REQUEST_BLOCK Srb);
PSCSI_REQUEST_BLOCK StorPortGetSrb(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                                   LONG QueueTag);
PVOID StorPortGetLogicalUnit(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun);
STOR_PHYSICAL_ADDRESS StorPortGetPhysicalAddress(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                                                 PVOID VirtualAddress, ULONG *Length);
PVOID StorPortGetVirtualAddress(PVOID HwDeviceExtension, STOR_PHYSICAL_ADDRESS PhysicalAddress);
PVOID StorPortGetUncachedExtension(PVOID HwDeviceExtension,
                                   PPORT_CONFIGURATION_INFORMATION ConfigInfo, ULONG NumberOfBytes);
ULONG StorPortGetSystemAddress(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                               PVOID *SystemAddress);
BOOLEAN StorPortSynchronizeAccess(PVOID HwDeviceExtension,
                                  PSTOR_SYNCHRONIZED_ACCESS SynchronizedAccessRoutine,
                                  PVOID Context);
/* Queue management (the miniport holds off Storport): a pause lasts TimeOut seconds or until the
 * matching resume; busy lasts until RequestsToComplete more requests have completed (at most
 * what is outstanding) or until ready. Callable from any miniport context. */
BOOLEAN StorPortPause(PVOID HwDeviceExtension, ULONG TimeOut);
BOOLEAN StorPortResume(PVOID HwDeviceExtension);
BOOLEAN StorPortPauseDevice(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                            ULONG TimeOut);
BOOLEAN StorPortResumeDevice(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun);
BOOLEAN StorPortBusy(PVOID HwDeviceExtension, ULONG RequestsToComplete);
BOOLEAN StorPortReady(PVOID HwDeviceExtension);
BOOLEAN StorPortDeviceBusy(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                           ULONG RequestsToComplete);
BOOLEAN StorPortDeviceReady(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun);
BOOLEAN StorPortSetDeviceQueueDepth(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId,
                                    UCHAR Lun, ULONG Depth);
void StorPortCompleteRequest(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                             UCHAR SrbStatus);
void StorPortMoveMemory(PVOID WriteBuffer, PVOID ReadBuffer, ULONG Length);
#define StorPortCopyMemory(d, s, n) memcpy((d), (s), (n))
void StorPortStallExecution(ULONG Delay);
void StorPortDebugPrint(ULONG DebugPrintLevel, PCSTR DebugMessage, ...)
    __attribute__((format(printf, 2, 3)));
ULONG StorPortAllocatePool(PVOID HwDeviceExtension, ULONG NumberOfBytes, ULONG Tag,
                           PVOID *BufferPointer);
ULONG StorPortFreePool(PVOID HwDeviceExtension, PVOID BufferPointer);
/* Reads Parameters\Device (Global FALSE: Parameters\Device<N>) under the miniport's service key. */
BOOLEAN StorPortRegistryRead(PVOID HwDeviceExtension, PCSTR ValueName, ULONG Global, ULONG Type,
                             PUCHAR Buffer, PULONG BufferLength);
/* Reads the adapter's Device Parameters key (optionally a subkey of it). Returns a STOR_STATUS. */
ULONG StorPortRegistryReadAdapterKey(PVOID HwDeviceExtension, PCSTR SubKeyName, PCSTR ValueName,
                                     ULONG ValueType, PVOID *ValueData, PUSHORT ValueDataLength);
/* storstack extension: a miniport's reason for failing (a bad configuration in HwStorFindAdapter,
 * say), in words; the adapter's devnode keeps it and a failed boot reports it. */
void StorPortLogErrorText(PVOID HwDeviceExtension, PCSTR Format, ...)
    __attribute__((format(printf, 2, 3)));
/* storstack extension: the initiator a request came from, for miniports whose devices keep state
 * per I_T nexus (unit attentions, reservations). A request sent through a handle opened with an
 * identity (a pass-through from the iSCSI target, say) reports that handle's nexus, TransportID
 * and principal; anything else (class driver I/O, a handle of this host) reports nexus 0 and
 * empty strings, and the routine returns FALSE. The strings live as long as the SRB. */
BOOLEAN StorPortGetRequestInitiator(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                                    PULONGLONG Nexus, PCSTR *TransportId, PCSTR *Principal);
void StorPortLogError(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb, UCHAR PathId,
                      UCHAR TargetId, UCHAR Lun, ULONG ErrorCode, ULONG UniqueId);

#define STOR_STATUS_SUCCESS                0x00000000
#define STOR_STATUS_UNSUCCESSFUL           0xC1000001
#define STOR_STATUS_NOT_IMPLEMENTED        0xC1000002
#define STOR_STATUS_INSUFFICIENT_RESOURCES 0xC1000003
#define STOR_STATUS_BUFFER_TOO_SMALL       0xC1000004
#define STOR_STATUS_INVALID_PARAMETER      0xC100000A

/* StorPortLogError codes */
#define SP_BUS_PARITY_ERROR          0x0001
#define SP_UNEXPECTED_DISCONNECT     0x0002
#define SP_INVALID_RESELECTION       0x0003
#define SP_BUS_TIME_OUT              0x0004
#define SP_PROTOCOL_ERROR            0x0005
#define SP_INTERNAL_ADAPTER_ERROR    0x0006
#define SP_REQUEST_TIMEOUT           0x0007
#define SP_IRQ_NOT_RESPONDING        0x0008
#define SP_BAD_FW_WARNING            0x0009
#define SP_BAD_FW_ERROR              0x000a
#define SP_LOST_WMI_MINIPORT_REQUEST 0x000b

#endif
