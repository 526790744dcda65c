/*
 * The I/O manager's contract with drivers, as in wdm.h: driver and device objects, IRPs with
 * their stack locations, completion routines, events, DPCs, timers, work items and lookaside
 * lists. Names, fields and semantics follow Windows; where a routine needs to know which stack
 * instance it belongs to (Windows has only one), it finds it through the driver or device object
 * (DriverObject->Executive), so two executives can run in one process.
 */
#ifndef STORSTACK_WDM_IO_H
#define STORSTACK_WDM_IO_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <storstack/nt/ntdef.h>

typedef struct _EXECUTIVE EXECUTIVE, *PEXECUTIVE;
typedef struct _DEVICE_NODE DEVICE_NODE, *PDEVICE_NODE;

typedef UCHAR KIRQL, *PKIRQL;
typedef CHAR KPROCESSOR_MODE;
#define KernelMode 0
#define UserMode   1

#define PASSIVE_LEVEL  0
#define APC_LEVEL      1
#define DISPATCH_LEVEL 2

/* ---- Synchronization ---------------------------------------------------------------------- */

/* A spin lock; a short-held lock that spins briefly and then sleeps on a futex, since user-space
 * threads can be descheduled mid-hold. State: 0 free, 1 held, 2 held with sleepers (ke.c). */
typedef struct _KSPIN_LOCK {
    atomic_uint State;
} KSPIN_LOCK, *PKSPIN_LOCK;

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
void KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql);
void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
void KeDeleteSpinLock(PKSPIN_LOCK SpinLock); /* storstack: nothing to free, kept for symmetry */

typedef enum _EVENT_TYPE { NotificationEvent, SynchronizationEvent } EVENT_TYPE;

typedef struct _KEVENT {
    pthread_mutex_t Mutex;
    pthread_cond_t Cond;
    EVENT_TYPE Type;
    LONG SignalState;
} KEVENT, *PKEVENT;

typedef enum _KWAIT_REASON { Executive, Suspended, UserRequest } KWAIT_REASON;

void KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
LONG KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);
void KeClearEvent(PKEVENT Event);
LONG KeReadStateEvent(PKEVENT Event);
/* Timeout: NULL waits forever; negative is relative in 100 ns units. STATUS_TIMEOUT on expiry. */
#define STATUS_TIMEOUT ((NTSTATUS)0x00000102)
NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout);
void KeDeleteEvent(PKEVENT Event); /* storstack: frees the host primitives */

/* Monotonic time in 100 ns units: KeQueryInterruptTime at clock-tick granularity (cheap),
 * KeQueryInterruptTimePrecise exact (QpcTimeStamp, when not NULL, gets nanoseconds). */
ULONGLONG KeQueryInterruptTime(void);
ULONGLONG KeQueryInterruptTimePrecise(PULONGLONG QpcTimeStamp);
void KeStallExecutionProcessor(ULONG MicroSeconds);

/* ---- DPCs, timers, work items ------------------------------------------------------------ */

struct _KDPC;
typedef void KDEFERRED_ROUTINE(struct _KDPC *Dpc, PVOID DeferredContext, PVOID SystemArgument1,
                               PVOID SystemArgument2);
typedef KDEFERRED_ROUTINE *PKDEFERRED_ROUTINE;

typedef struct _KDPC {
    LIST_ENTRY DpcListEntry;
    PKDEFERRED_ROUTINE DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    atomic_int Inserted;
    PEXECUTIVE Executive;
} KDPC, *PKDPC;

/* storstack: a DPC belongs to an executive (its DPC threads run it). */
void KeInitializeDpc(PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext);
void KeInitializeDpcEx(PEXECUTIVE Executive, PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine,
                       PVOID DeferredContext);
BOOLEAN KeInsertQueueDpc(PKDPC Dpc, PVOID SystemArgument1, PVOID SystemArgument2);
BOOLEAN KeRemoveQueueDpc(PKDPC Dpc);
/* KeFlushQueuedDpcs for one executive: returns once every queued DPC has run and none is
 * running. Not from a DPC routine. */
void KeFlushQueuedDpcsEx(PEXECUTIVE Executive);

typedef struct _KTIMER {
    KEVENT Signal; /* first: KeWaitForSingleObject(&Timer) waits for expiry, as on Windows */
    LIST_ENTRY TimerListEntry;
    ULONGLONG DueTime; /* absolute interrupt time */
    LONG Period;       /* ms; 0 for one-shot */
    PKDPC Dpc;
    BOOLEAN Inserted;
    PEXECUTIVE Executive;
} KTIMER, *PKTIMER;

void KeInitializeTimerEx(PEXECUTIVE Executive, PKTIMER Timer);
/* DueTime negative: relative, in 100 ns units. Returns TRUE if the timer was already set. */
BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc);
BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc);
BOOLEAN KeCancelTimer(PKTIMER Timer);

/* ---- Memory descriptor lists ------------------------------------------------------------- */

/* "Physical" addresses are host virtual addresses, so an MDL describes one virtual range. */
typedef struct _MDL {
    struct _MDL *Next;
    USHORT Size;
    USHORT MdlFlags;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
    PVOID MappedSystemVa;
} MDL, *PMDL;

#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MDL_PAGES_LOCKED        0x0002
#define MDL_PARTIAL             0x0010
#define MDL_ALLOCATED_FIXED     0x1000 /* storstack: embedded, not freed by IoFreeMdl */

#define PAGE_SIZE  4096u
#define PAGE_SHIFT 12

typedef enum _MM_PAGE_PRIORITY {
    LowPagePriority,
    NormalPagePriority = 16,
    HighPagePriority = 32
} MM_PAGE_PRIORITY;

void MmInitializeMdl(PMDL Mdl, PVOID BaseVa, SIZE_T Length);
static inline PVOID MmGetMdlVirtualAddress(PMDL Mdl)
{
    return (PUCHAR)Mdl->StartVa + Mdl->ByteOffset;
}
static inline ULONG MmGetMdlByteCount(PMDL Mdl)
{
    return Mdl->ByteCount;
}
static inline PVOID MmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    return MmGetMdlVirtualAddress(Mdl);
}
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)                                                   \
    ((ULONG)((((ULONG_PTR)(Va) & (PAGE_SIZE - 1)) + (Size) + (PAGE_SIZE - 1)) >> PAGE_SHIFT))

/* ---- Lookaside lists --------------------------------------------------------------------- */

typedef PVOID ALLOCATE_FUNCTION(ULONG PoolType, SIZE_T NumberOfBytes, ULONG Tag);
typedef void FREE_FUNCTION(PVOID Buffer);

typedef struct _NPAGED_LOOKASIDE_LIST {
    KSPIN_LOCK Lock;
    SINGLE_LIST_ENTRY ListHead;
    USHORT Depth;
    USHORT CurrentDepth;
    ULONG Size;
    ULONG Tag;
    ULONG TotalAllocates;
    ULONG AllocateMisses;
    ALLOCATE_FUNCTION *Allocate;
    FREE_FUNCTION *Free;
} NPAGED_LOOKASIDE_LIST, *PNPAGED_LOOKASIDE_LIST;

#define NonPagedPool 0

void ExInitializeNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, ALLOCATE_FUNCTION *Allocate,
                                     FREE_FUNCTION *Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                     USHORT Depth);
void ExDeleteNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside);
PVOID ExAllocateFromNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside);
void ExFreeToNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry);

PVOID ExAllocatePoolWithTag(ULONG PoolType, SIZE_T NumberOfBytes, ULONG Tag); /* zeroed */
void ExFreePool(PVOID P);
#define ExFreePoolWithTag(p, t) ExFreePool(p)

/* ---- Driver and device objects ----------------------------------------------------------- */

#define IRP_MJ_CREATE                  0x00
#define IRP_MJ_CLOSE                   0x02
#define IRP_MJ_READ                    0x03
#define IRP_MJ_WRITE                   0x04
#define IRP_MJ_FLUSH_BUFFERS           0x09
#define IRP_MJ_DEVICE_CONTROL          0x0e
#define IRP_MJ_INTERNAL_DEVICE_CONTROL 0x0f
#define IRP_MJ_SCSI                    IRP_MJ_INTERNAL_DEVICE_CONTROL
#define IRP_MJ_SHUTDOWN                0x10
#define IRP_MJ_CLEANUP                 0x12
#define IRP_MJ_POWER                   0x16
#define IRP_MJ_SYSTEM_CONTROL          0x17
#define IRP_MJ_PNP                     0x1b
#define IRP_MJ_MAXIMUM_FUNCTION        0x1b

#define FILE_DEVICE_CONTROLLER   0x00000004
#define FILE_DEVICE_DISK         0x00000007
#define FILE_DEVICE_MASS_STORAGE 0x0000002d
#define FILE_DEVICE_BUS_EXTENDER 0x0000002a
#define FILE_DEVICE_CD_ROM       0x00000002
#define FILE_DEVICE_TAPE         0x0000001f
#define FILE_DEVICE_CHANGER      0x00000030
#define FILE_DEVICE_UNKNOWN      0x00000022

#define FILE_REMOVABLE_MEDIA           0x00000001
#define FILE_DEVICE_SECURE_OPEN        0x00000100
#define FILE_AUTOGENERATED_DEVICE_NAME 0x00000080

#define DO_BUFFERED_IO         0x00000004
#define DO_EXCLUSIVE           0x00000008
#define DO_DIRECT_IO           0x00000010
#define DO_DEVICE_HAS_NAME     0x00000040
#define DO_DEVICE_INITIALIZING 0x00000080
#define DO_POWER_PAGABLE       0x00002000

struct _DEVICE_OBJECT;
struct _DRIVER_OBJECT;
struct _IRP;
struct _FILE_OBJECT;

typedef NTSTATUS DRIVER_DISPATCH(struct _DEVICE_OBJECT *DeviceObject, struct _IRP *Irp);
typedef DRIVER_DISPATCH *PDRIVER_DISPATCH;
typedef NTSTATUS DRIVER_ADD_DEVICE(struct _DRIVER_OBJECT *DriverObject,
                                   struct _DEVICE_OBJECT *PhysicalDeviceObject);
typedef DRIVER_ADD_DEVICE *PDRIVER_ADD_DEVICE;
typedef void DRIVER_UNLOAD(struct _DRIVER_OBJECT *DriverObject);
typedef DRIVER_UNLOAD *PDRIVER_UNLOAD;
typedef NTSTATUS DRIVER_INITIALIZE(struct _DRIVER_OBJECT *DriverObject, PCSTR RegistryPath);
typedef DRIVER_INITIALIZE *PDRIVER_INITIALIZE;

typedef void DRIVER_CANCEL(struct _DEVICE_OBJECT *DeviceObject, struct _IRP *Irp);
typedef DRIVER_CANCEL *PDRIVER_CANCEL;

typedef struct _DRIVER_EXTENSION {
    struct _DRIVER_OBJECT *DriverObject;
    PDRIVER_ADD_DEVICE AddDevice;
    PCSTR ServiceKeyName;
    /* Driver-private per-driver data, as IoAllocateDriverObjectExtension gives. */
    PVOID ClientDriverExtension;
} DRIVER_EXTENSION, *PDRIVER_EXTENSION;

typedef struct _DRIVER_OBJECT {
    USHORT Type;
    USHORT Size;
    struct _DEVICE_OBJECT *DeviceObject; /* list of devices this driver created */
    ULONG Flags;
    PDRIVER_EXTENSION DriverExtension;
    char DriverName[64]; /* "\Driver\disk" */
    PDRIVER_INITIALIZE DriverInit;
    PDRIVER_UNLOAD DriverUnload;
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
    PEXECUTIVE Executive; /* storstack: the executive this driver is loaded into */
    DRIVER_EXTENSION ExtensionStorage;
} DRIVER_OBJECT, *PDRIVER_OBJECT;

typedef struct _DEVOBJ_EXTENSION {
    PDEVICE_NODE DeviceNode; /* for a PDO: its devnode */
    struct _DEVICE_OBJECT *AttachedTo;
    atomic_int ReferenceCount;
    atomic_int PowerState; /* storstack: the DEVICE_POWER_STATE PoSetPowerState last recorded */
} DEVOBJ_EXTENSION, *PDEVOBJ_EXTENSION;

typedef struct _DEVICE_OBJECT {
    USHORT Type;
    USHORT Size;
    PDRIVER_OBJECT DriverObject;
    struct _DEVICE_OBJECT *NextDevice;     /* next device of the same driver */
    struct _DEVICE_OBJECT *AttachedDevice; /* the device attached above this one */
    ULONG Flags;
    ULONG Characteristics;
    PVOID DeviceExtension;
    ULONG DeviceType;
    CCHAR StackSize;
    ULONG AlignmentRequirement;
    ULONG SectorSize;
    DEVOBJ_EXTENSION DeviceObjectExtension;
    char Name[96]; /* "\Device\Harddisk0\DR0", or empty */
} DEVICE_OBJECT, *PDEVICE_OBJECT;

#define IO_TYPE_DRIVER 4
#define IO_TYPE_DEVICE 3
#define IO_TYPE_IRP    6
#define IO_TYPE_FILE   5

NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize, PCSTR DeviceName,
                        ULONG DeviceType, ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                        PDEVICE_OBJECT *DeviceObject);
void IoDeleteDevice(PDEVICE_OBJECT DeviceObject);
PDEVICE_OBJECT IoAttachDeviceToDeviceStack(PDEVICE_OBJECT SourceDevice,
                                           PDEVICE_OBJECT TargetDevice);
void IoDetachDevice(PDEVICE_OBJECT TargetDevice);
PDEVICE_OBJECT IoGetAttachedDeviceReference(PDEVICE_OBJECT DeviceObject);
PDEVICE_OBJECT IoGetAttachedDevice(PDEVICE_OBJECT DeviceObject);
void ObReferenceObject(PVOID Object);   /* device objects only */
void ObDereferenceObject(PVOID Object); /* device objects only */
/* storstack: the executive takes the place of Windows's global namespace. */
NTSTATUS IoCreateSymbolicLink(PEXECUTIVE Executive, PCSTR SymbolicLinkName, PCSTR DeviceName);
NTSTATUS IoDeleteSymbolicLink(PEXECUTIVE Executive, PCSTR SymbolicLinkName);
/* Resolves "\DosDevices\X", "\??\X", "\\.\X", "X" or "\Device\..." to a referenced device. */
NTSTATUS IoGetDeviceObjectPointer(PEXECUTIVE Executive, PCSTR ObjectName,
                                  PDEVICE_OBJECT *DeviceObject);
PVOID IoAllocateDriverObjectExtension(PDRIVER_OBJECT DriverObject, SIZE_T Size);
PVOID IoGetDriverObjectExtension(PDRIVER_OBJECT DriverObject);
static inline PEXECUTIVE IoGetExecutive(PDEVICE_OBJECT DeviceObject)
{
    return DeviceObject->DriverObject->Executive;
}

/* ---- IRPs -------------------------------------------------------------------------------- */

typedef struct _IO_STATUS_BLOCK {
    NTSTATUS Status;
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

/* storstack: who opened a handle, set by the user API at open (storstack_open_ex): the principal
 * a device's security descriptor is checked against and, for targets built on the stack (the
 * iSCSI target), the I_T nexus the SCSI device server keys unit attentions and reservations on.
 * Windows has one initiator per host; a target serving many initiators through the stack needs
 * this, and it stays in the handle, as a token would. */
#define IO_CALLER_PRINCIPAL_MAX    224
#define IO_CALLER_TRANSPORT_ID_MAX 256
typedef struct _IO_CALLER_IDENTITY {
    ULONGLONG Nexus;                              /* 0 = this host's own I_T nexus */
    char Principal[IO_CALLER_PRINCIPAL_MAX];      /* "uid:N", or an iSCSI initiator name */
    char TransportId[IO_CALLER_TRANSPORT_ID_MAX]; /* SPC-4 TransportID text; "" = none */
} IO_CALLER_IDENTITY, *PIO_CALLER_IDENTITY;

typedef struct _FILE_OBJECT {
    USHORT Type;
    USHORT Size;
    PDEVICE_OBJECT DeviceObject;
    PVOID FsContext;
    PVOID FsContext2;
    ULONG Flags;
    BOOLEAN ReadAccess;
    BOOLEAN WriteAccess;
    LARGE_INTEGER CurrentByteOffset;
    /* storstack: the I/O manager's list of this handle's tracked IRPs (what CancelIoEx walks on
     * Windows, there kept per thread). Set up by IoInitializeFileObject. */
    pthread_mutex_t IrpListLock; /* recursive: a cancel routine may complete IRPs of the list */
    LIST_ENTRY IrpList;
    IO_CALLER_IDENTITY Caller; /* storstack: the opener */
} FILE_OBJECT, *PFILE_OBJECT;

typedef NTSTATUS IO_COMPLETION_ROUTINE(PDEVICE_OBJECT DeviceObject, struct _IRP *Irp,
                                       PVOID Context);
typedef IO_COMPLETION_ROUTINE *PIO_COMPLETION_ROUTINE;
typedef void IO_APC_ROUTINE(PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, ULONG Reserved);
typedef IO_APC_ROUTINE *PIO_APC_ROUTINE;

typedef enum _DEVICE_RELATION_TYPE {
    BusRelations,
    EjectionRelations,
    PowerRelations,
    RemovalRelations,
    TargetDeviceRelation,
    SingleBusRelations,
    TransportRelations
} DEVICE_RELATION_TYPE;

typedef enum _BUS_QUERY_ID_TYPE {
    BusQueryDeviceID = 0,
    BusQueryHardwareIDs = 1,
    BusQueryCompatibleIDs = 2,
    BusQueryInstanceID = 3,
    BusQueryDeviceSerialNumber = 4,
    BusQueryContainerID = 5
} BUS_QUERY_ID_TYPE;

typedef enum _DEVICE_TEXT_TYPE {
    DeviceTextDescription = 0,
    DeviceTextLocationInformation = 1
} DEVICE_TEXT_TYPE;

/* The power model's minimum (wdm.h): device power states, IRP_MJ_POWER's minor functions. */
typedef enum _SYSTEM_POWER_STATE {
    PowerSystemUnspecified = 0,
    PowerSystemWorking = 1,
    PowerSystemSleeping1 = 2,
    PowerSystemSleeping2 = 3,
    PowerSystemSleeping3 = 4,
    PowerSystemHibernate = 5,
    PowerSystemShutdown = 6,
    PowerSystemMaximum = 7
} SYSTEM_POWER_STATE;

typedef enum _DEVICE_POWER_STATE {
    PowerDeviceUnspecified = 0,
    PowerDeviceD0 = 1,
    PowerDeviceD1 = 2,
    PowerDeviceD2 = 3,
    PowerDeviceD3 = 4,
    PowerDeviceMaximum = 5
} DEVICE_POWER_STATE;

typedef union _POWER_STATE {
    SYSTEM_POWER_STATE SystemState;
    DEVICE_POWER_STATE DeviceState;
} POWER_STATE;

typedef enum _POWER_STATE_TYPE { SystemPowerState = 0, DevicePowerState = 1 } POWER_STATE_TYPE;

#define IRP_MN_WAIT_WAKE      0x00
#define IRP_MN_POWER_SEQUENCE 0x01
#define IRP_MN_SET_POWER      0x02
#define IRP_MN_QUERY_POWER    0x03

typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR Flags;
    UCHAR Control;
    union {
        struct {
            ULONG Length;
            ULONG Key;
            LARGE_INTEGER ByteOffset;
        } Read;
        struct {
            ULONG Length;
            ULONG Key;
            LARGE_INTEGER ByteOffset;
        } Write;
        struct {
            ULONG OutputBufferLength;
            ULONG InputBufferLength;
            ULONG IoControlCode;
            PVOID Type3InputBuffer;
        } DeviceIoControl;
        struct {
            struct _SCSI_REQUEST_BLOCK *Srb;
        } Scsi;
        struct {
            DEVICE_RELATION_TYPE Type;
        } QueryDeviceRelations;
        struct {
            BUS_QUERY_ID_TYPE IdType;
        } QueryId;
        struct {
            DEVICE_TEXT_TYPE DeviceTextType;
        } QueryDeviceText;
        struct {
            ULONG DesiredAccess;
        } Create;
        struct {
            ULONG SystemContext;
            POWER_STATE_TYPE Type;
            POWER_STATE State;
            ULONG ShutdownType;
        } Power;
        struct {
            PVOID Argument1;
            PVOID Argument2;
            PVOID Argument3;
            PVOID Argument4;
        } Others;
    } Parameters;
    PDEVICE_OBJECT DeviceObject;
    PFILE_OBJECT FileObject;
    PIO_COMPLETION_ROUTINE CompletionRoutine;
    PVOID Context;
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;

#define SL_PENDING_RETURNED  0x01
#define SL_INVOKE_ON_CANCEL  0x20
#define SL_INVOKE_ON_SUCCESS 0x40
#define SL_INVOKE_ON_ERROR   0x80

#define IRP_BUFFERED_IO       0x00000010
#define IRP_DEALLOCATE_BUFFER 0x00000020
#define IRP_INPUT_OPERATION   0x00000040
#define IRP_SYNCHRONOUS_API   0x00000004
#define IRP_ALLOCATED_FIXED   0x00000008 /* storstack: from the executive's IRP lookaside */
#define IRP_IO_MANAGER_OWNED  0x00010000 /* storstack: freed by the I/O manager on completion */
#define IRP_FREE_MDL          0x00020000 /* storstack: MdlAddress freed with the IRP */
#define IRP_TRACKED           0x00040000 /* storstack: on OriginalFileObject's IrpList */

typedef struct _IRP {
    USHORT Type;
    USHORT Size;
    PMDL MdlAddress;
    ULONG Flags;
    union {
        struct _IRP *MasterIrp;
        atomic_int IrpCount;
        PVOID SystemBuffer;
    } AssociatedIrp;
    IO_STATUS_BLOCK IoStatus;
    KPROCESSOR_MODE RequestorMode;
    BOOLEAN PendingReturned;
    CHAR StackCount;
    CHAR CurrentLocation;
    BOOLEAN Cancel; /* set by IoCancelIrp, under the cancel spin lock */
    KIRQL CancelIrql;
    _Atomic(PDRIVER_CANCEL) CancelRoutine;
    LIST_ENTRY ThreadListEntry; /* storstack: on its FILE_OBJECT's IrpList when tracked */
    PIO_STATUS_BLOCK UserIosb;
    PKEVENT UserEvent;
    union {
        struct {
            PIO_APC_ROUTINE UserApcRoutine;
            PVOID UserApcContext;
        } AsynchronousParameters;
    } Overlay;
    PVOID UserBuffer;
    ULONG UserBufferLength; /* storstack: the caller's output length, for the copy-back bound */
    PEXECUTIVE Executive;   /* storstack: whose lookaside it came from */
    /* storstack: the user API's completion callback (what an I/O completion port delivers),
     * run by the I/O manager after it completed an IRP it owns. */
    struct {
        void (*Routine)(PVOID Context[3], NTSTATUS Status, ULONG_PTR Information);
        PVOID Context[3];
    } UserCompletion;
    struct {
        struct {
            PVOID DriverContext[4];
            LIST_ENTRY ListEntry;
            PIO_STACK_LOCATION CurrentStackLocation;
            PFILE_OBJECT OriginalFileObject;
        } Overlay;
    } Tail;
    MDL EmbeddedMdl; /* storstack: the MDL of a user read/write, so none is allocated per I/O */
    IO_STACK_LOCATION Stack[];
} IRP, *PIRP;

#define IO_NO_INCREMENT   0
#define IO_DISK_INCREMENT 1

static inline PIO_STACK_LOCATION IoGetCurrentIrpStackLocation(PIRP Irp)
{
    return Irp->Tail.Overlay.CurrentStackLocation;
}
static inline PIO_STACK_LOCATION IoGetNextIrpStackLocation(PIRP Irp)
{
    return Irp->Tail.Overlay.CurrentStackLocation - 1;
}
static inline void IoSetNextIrpStackLocation(PIRP Irp)
{
    Irp->CurrentLocation--;
    Irp->Tail.Overlay.CurrentStackLocation--;
}
static inline void IoSkipCurrentIrpStackLocation(PIRP Irp)
{
    Irp->CurrentLocation++;
    Irp->Tail.Overlay.CurrentStackLocation++;
}
static inline void IoCopyCurrentIrpStackLocationToNext(PIRP Irp)
{
    PIO_STACK_LOCATION cur = IoGetCurrentIrpStackLocation(Irp);
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(Irp);
    memcpy(next, cur, offsetof(IO_STACK_LOCATION, CompletionRoutine));
    next->Control = 0;
}
static inline void IoMarkIrpPending(PIRP Irp)
{
    IoGetCurrentIrpStackLocation(Irp)->Control |= SL_PENDING_RETURNED;
}
static inline void IoSetCompletionRoutine(PIRP Irp, PIO_COMPLETION_ROUTINE CompletionRoutine,
                                          PVOID Context, BOOLEAN InvokeOnSuccess,
                                          BOOLEAN InvokeOnError, BOOLEAN InvokeOnCancel)
{
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(Irp);
    next->CompletionRoutine = CompletionRoutine;
    next->Context = Context;
    next->Control = 0;
    if (InvokeOnSuccess)
        next->Control |= SL_INVOKE_ON_SUCCESS;
    if (InvokeOnError)
        next->Control |= SL_INVOKE_ON_ERROR;
    if (InvokeOnCancel)
        next->Control |= SL_INVOKE_ON_CANCEL;
}

#define IO_MAX_FAST_STACK 8 /* IRPs up to this stack size come from the executive's lookaside */

/* Allocates an IRP of StackSize locations (from a lookaside when small). The executive is taken
 * from the device the IRP will be sent to in IoAllocateIrpForDevice; IoAllocateIrp needs it. */
PIRP IoAllocateIrpEx(PEXECUTIVE Executive, CCHAR StackSize, BOOLEAN ChargeQuota);
static inline PIRP IoAllocateIrpForDevice(PDEVICE_OBJECT Target)
{
    return IoAllocateIrpEx(IoGetExecutive(Target), Target->StackSize, FALSE);
}
void IoFreeIrp(PIRP Irp);
void IoReuseIrp(PIRP Irp, NTSTATUS Iostatus);
void IoInitializeIrp(PIRP Irp, USHORT PacketSize, CCHAR StackSize);
#define IoSizeOfIrp(StackSize) ((USHORT)(sizeof(IRP) + (StackSize) * sizeof(IO_STACK_LOCATION)))

NTSTATUS IoCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp);

/* ---- Power manager (kernel/power.c) -------------------------------------------------------------
 * PoRequestPowerIrp allocates an IRP_MJ_POWER IRP, sends it to the top of the device's stack and
 * calls CompletionFunction when it comes back (then frees it). PoSetPowerState records a device's
 * power state (what `storstack tree` shows). Power IRPs are dispatched like any other here:
 * PoCallDriver is IoCallDriver, and PoStartNextPowerIrp has no power queue to release. */
typedef void REQUEST_POWER_COMPLETE(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction,
                                    POWER_STATE PowerState, PVOID Context,
                                    PIO_STATUS_BLOCK IoStatus);
typedef REQUEST_POWER_COMPLETE *PREQUEST_POWER_COMPLETE;
NTSTATUS PoRequestPowerIrp(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction, POWER_STATE PowerState,
                           PREQUEST_POWER_COMPLETE CompletionFunction, PVOID Context,
                           struct _IRP **Irp);
POWER_STATE PoSetPowerState(PDEVICE_OBJECT DeviceObject, POWER_STATE_TYPE Type, POWER_STATE State);
DEVICE_POWER_STATE PoGetDevicePowerState(PDEVICE_OBJECT DeviceObject); /* storstack */
void PoStartNextPowerIrp(struct _IRP *Irp);
#define PoCallDriver IoCallDriver
void IoCompleteRequest(PIRP Irp, CCHAR PriorityBoost);

PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                   PIRP Irp);
void IoFreeMdl(PMDL Mdl);
/* storstack: describes Buffer with the IRP's own MDL (Irp->MdlAddress), so a read, write or
 * direct IOCTL the I/O manager builds allocates no MDL. */
void IoInitializeIrpMdl(PIRP Irp, PVOID Buffer, ULONG Length);
void IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length);

/* IRPs freed by the I/O manager when they complete; Event is signalled, IoStatusBlock filled. */
PIRP IoBuildDeviceIoControlRequest(ULONG IoControlCode, PDEVICE_OBJECT DeviceObject,
                                   PVOID InputBuffer, ULONG InputBufferLength, PVOID OutputBuffer,
                                   ULONG OutputBufferLength, BOOLEAN InternalDeviceIoControl,
                                   PKEVENT Event, PIO_STATUS_BLOCK IoStatusBlock);
PIRP IoBuildSynchronousFsdRequest(ULONG MajorFunction, PDEVICE_OBJECT DeviceObject, PVOID Buffer,
                                  ULONG Length, PLARGE_INTEGER StartingOffset, PKEVENT Event,
                                  PIO_STATUS_BLOCK IoStatusBlock);
/* ---- Cancellation ------------------------------------------------------------------------ */

/* Sets (or, with NULL, clears) the IRP's cancel routine; returns the previous one. Atomic, as on
 * Windows: a driver that gets NULL back when clearing knows IoCancelIrp has taken the routine and
 * will call it, so the driver must leave the IRP to the cancel routine. */
static inline PDRIVER_CANCEL IoSetCancelRoutine(PIRP Irp, PDRIVER_CANCEL CancelRoutine)
{
    return atomic_exchange(&Irp->CancelRoutine, CancelRoutine);
}
/* The system-wide cancel spin lock. A cancel routine is called holding it and must release it
 * with IoReleaseCancelSpinLock(Irp->CancelIrql). */
void IoAcquireCancelSpinLock(PKIRQL Irql);
void IoReleaseCancelSpinLock(KIRQL Irql);
/* Marks the IRP cancelled and calls its cancel routine, if it has one; TRUE when it had. */
BOOLEAN IoCancelIrp(PIRP Irp);

/* storstack: a FILE_OBJECT's tracked-IRP list (CancelIoEx). IoInitializeFileObject sets the list
 * up; IoTrackIrp puts an IRP the I/O manager owns on its OriginalFileObject's list before it is
 * sent (completion takes it off); IoCancelFileIrps cancels every tracked IRP for which Match
 * (NULL = all) says TRUE, and returns how many it asked to cancel. */
void IoInitializeFileObject(PFILE_OBJECT FileObject, PDEVICE_OBJECT DeviceObject);
void IoDeleteFileObject(PFILE_OBJECT FileObject);
void IoTrackIrp(PIRP Irp);
ULONG IoCancelFileIrps(PFILE_OBJECT FileObject, BOOLEAN (*Match)(PIRP Irp, PVOID Context),
                       PVOID Context);

/* Sends an IRP and waits for it (the common "forward and wait" of PnP handling). */
NTSTATUS IoForwardIrpSynchronously(PDEVICE_OBJECT DeviceObject, PIRP Irp);

/* ---- IOCTL codes ------------------------------------------------------------------------- */

#define CTL_CODE(DeviceType, Function, Method, Access)                                             \
    (((ULONG)(DeviceType) << 16) | ((ULONG)(Access) << 14) | ((ULONG)(Function) << 2) |            \
     (ULONG)(Method))
#define DEVICE_TYPE_FROM_CTL_CODE(c) (((ULONG)(c)&0xffff0000) >> 16)
#define METHOD_FROM_CTL_CODE(c)      ((ULONG)(c)&3)
#define METHOD_BUFFERED              0
#define METHOD_IN_DIRECT             1
#define METHOD_OUT_DIRECT            2
#define METHOD_NEITHER               3
#define FILE_ANY_ACCESS              0
#define FILE_READ_ACCESS             0x0001
#define FILE_WRITE_ACCESS            0x0002

/* ---- Work items -------------------------------------------------------------------------- */

typedef struct _IO_WORKITEM IO_WORKITEM, *PIO_WORKITEM;
typedef void IO_WORKITEM_ROUTINE(PDEVICE_OBJECT DeviceObject, PVOID Context);
typedef IO_WORKITEM_ROUTINE *PIO_WORKITEM_ROUTINE;
typedef enum _WORK_QUEUE_TYPE { CriticalWorkQueue, DelayedWorkQueue } WORK_QUEUE_TYPE;

PIO_WORKITEM IoAllocateWorkItem(PDEVICE_OBJECT DeviceObject);
void IoFreeWorkItem(PIO_WORKITEM IoWorkItem);
void IoQueueWorkItem(PIO_WORKITEM IoWorkItem, PIO_WORKITEM_ROUTINE WorkerRoutine,
                     WORK_QUEUE_TYPE QueueType, PVOID Context);

/* ---- Shutdown notification --------------------------------------------------------------- */
NTSTATUS IoRegisterShutdownNotification(PDEVICE_OBJECT DeviceObject);
void IoUnregisterShutdownNotification(PDEVICE_OBJECT DeviceObject);

/* ---- Debug output ------------------------------------------------------------------------ */
void DbgPrint(PCSTR Format, ...) __attribute__((format(printf, 1, 2)));
/* storstack: DbgPrint with a va_list, for drivers' own debug print routines. */
void vDbgPrint(PCSTR Format, va_list Arguments) __attribute__((format(printf, 1, 0)));

#endif
