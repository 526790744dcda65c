/*
 * Storport's private structures. An adapter is an FDO (RAID_ADAPTER in Windows' raidport,
 * STORP_ADAPTER here) stacked on the adapter's PDO; each logical unit the bus scan finds is a
 * PDO (STORP_UNIT) that class drivers stack on. Every request at the miniport is tracked by a
 * STORP_REQUEST taken from the adapter's lookaside list: it carries the SRB extension the
 * miniport asked for, the scatter/gather list, the deadline and the state the verifier checks.
 */
#ifndef STORSTACK_STORPORT_P_H
#define STORSTACK_STORPORT_P_H

#include <storstack/storage/ntddscsi.h>
#include <storstack/storage/ntddstor.h>
#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>
#include <storstack/wdm/io.h>
#include <storstack/wdm/pnp.h>
#include <storstack/wdm/registry.h>

#define STORP_ADAPTER_SIGNATURE 0x41525453u /* 'STRA' */
#define STORP_UNIT_SIGNATURE    0x55525453u /* 'STRU' */

#define STORP_DEFAULT_TIMEOUT     10u /* seconds, when an SRB says 0 */
#define STORP_MAX_TIMEOUT         108000u
#define STORP_DEFAULT_QUEUE_DEPTH 32u
#define STORP_SENSE_LENGTH        255u
#define STORP_EVENT_RING          256u    /* events kept per adapter */
#define STORP_RECOVERY_WAIT_MS    1000u   /* how long a recovery tier waits before the next */
#define STORP_RESET_WAIT_MS       2000u   /* how long a reset SRB may take before it is abandoned */
#define STORP_BUSY_RETRIES        3u      /* Storport's own requeues of a BUSY / QUEUE FULL SRB */
#define STORP_BUSY_DELAY          100000u /* 10 ms (100 ns units) before a requeued SRB goes again */

/* The verifier's rules (verifier.c) and the miniport routine a thread is in. */
typedef enum _STORP_RULE {
    StorpRuleDoubleCompletion = 1,
    StorpRuleForeignSrb = 2,
    StorpRuleTouchedAfterCompletion = 3,
    StorpRulePendingStatus = 4,
    StorpRuleNextRequest = 5,
    StorpRuleScatterGather = 6,
    StorpRuleWrongContext = 7,
    StorpRuleLimits = 8,
} STORP_RULE;

typedef enum _STORP_CONTEXT {
    StorpContextNone = 0,
    StorpContextFindAdapter,
    StorpContextInitialize,
    StorpContextBuildIo,
    StorpContextStartIo,
    StorpContextOther, /* ResetBus, AdapterControl, timer, synchronized routines */
} STORP_CONTEXT;

/* What StorPortInitialize kept of the miniport's initialization data. */
typedef struct _STORP_DRIVER {
    BOOLEAN Virtual;
    HW_INITIALIZATION_DATA Init;                 /* the virtual form's fields, in the same places */
    PVIRTUAL_HW_FIND_ADAPTER VirtualFindAdapter; /* HwFindAdapter of a virtual miniport */
    PVOID HwContext;
    char ServiceName[64];
} STORP_DRIVER, *PSTORP_DRIVER;

typedef struct _STORP_COMMON {
    ULONG Signature;
} STORP_COMMON;

struct _STORP_UNIT;

typedef enum _STORP_REQUEST_STATE {
    StorpRequestFree = 0,
    StorpRequestAtMiniport = 1,
    StorpRequestCompleted = 2,
    StorpRequestQueued = 3, /* on the unit's Pending queue (unit lock) */
} STORP_REQUEST_STATE;

typedef struct _STORP_REQUEST {
    LIST_ENTRY Link;                     /* unit's outstanding list */
    struct _STORP_REQUEST *NextDeferred; /* completions held until a Storport lock is released */
    PIRP Irp;
    PSCSI_REQUEST_BLOCK Srb;
    struct _STORP_UNIT *Unit;
    ULONGLONG Deadline; /* interrupt time */
    atomic_int State;
    /* References: one for the request's path through Storport, one while a cancel routine is
     * armed on the IRP, one while an ABORT_COMMAND for it is at the miniport. The IRP completes
     * when the last goes (StorpReleaseRequest). */
    atomic_int Refs;
    BOOLEAN Cancelable;                  /* a cancel routine was armed (and holds a reference) */
    BOOLEAN Counted;                     /* holds a queue-depth slot */
    UCHAR BusyRetries;                   /* requeues after SRB_STATUS_BUSY or QUEUE FULL */
    UCHAR DoneSrbStatus, DoneScsiStatus; /* the SRB at RequestComplete (verifier rule 3) */
    ULONG DoneLength;
    UCHAR SenseLength; /* the SRB's SenseInfoBufferLength and DataTransferLength as sent, */
    ULONG DataLength;  /* restored when Storport requeues it */
    BOOLEAN TimedOut;
    BOOLEAN AbortSent; /* error recovery's first tier was tried (recovery.c) */
    struct {           /* a STOR_SCATTER_GATHER_LIST with room for one element */
        ULONG NumberOfElements;
        ULONG_PTR Reserved;
        STOR_SCATTER_GATHER_ELEMENT List[1];
    } Sg;
    /* the miniport's SRB extension follows, 16-byte aligned */
    __attribute__((aligned(16))) UCHAR SrbExtension[];
} STORP_REQUEST, *PSTORP_REQUEST;

typedef struct _STORP_ADAPTER {
    STORP_COMMON Common;
    PDEVICE_OBJECT DeviceObject;
    PDEVICE_OBJECT LowerDevice;
    PDEVICE_OBJECT PhysicalDeviceObject;
    PSTORP_DRIVER Driver;
    PEXECUTIVE Executive;
    ULONG PortNumber;
    char DeviceName[64]; /* \Device\RaidPort<N> */
    char LinkName[32];   /* Scsi<N>: */
    PVOID HwDeviceExtension;
    PVOID UncachedExtension; /* StorPortGetUncachedExtension's, freed with the adapter */
    PORT_CONFIGURATION_INFORMATION Config;
    ULONG BusType;
    BOOLEAN Started;
    BOOLEAN Removed;

    /* Storport's locks: StartIo lock (held around HwStorStartIo and HwStorResetBus) and the
     * interrupt lock (StorPortSynchronizeAccess, HwStorInitialize). */
    KSPIN_LOCK StartIoLock;
    KSPIN_LOCK InterruptLock;

    /* Units: a table indexed by path/target/lun, sized from the configuration. */
    KSPIN_LOCK UnitLock;
    struct _STORP_UNIT **UnitTable;
    ULONG UnitTableSize;

    atomic_uint Outstanding; /* adapter-wide requests at the miniport */
    NPAGED_LOOKASIDE_LIST RequestLookaside;
    NPAGED_LOOKASIDE_LIST PassThroughLookaside; /* STORP_PASSTHROUGH contexts */
    ULONG RequestSize;

    /* The one-second tick: timeouts and RequestTimerCall. */
    KTIMER TickTimer;
    KDPC TickDpc;
    KTIMER HwTimer;
    KDPC HwTimerDpc;
    PHW_TIMER HwTimerRoutine;
    BOOLEAN PassiveInitEnabled;
    PHW_PASSIVE_INITIALIZE_ROUTINE HwPassiveInitialize;
    KEVENT ResetDone;
    atomic_int ResetInProgress;

    /* Queue management (StorPortPause/Resume, StorPortBusy/Ready): adapter-wide holds on
     * starting requests. The resume timer restarts the queues when a pause or busy delay ends;
     * the restart DPC restarts them when a miniport resumes from inside a Storport lock. */
    _Atomic ULONGLONG PausedUntil; /* interrupt time; 0 = not paused */
    atomic_uint BusyCount;         /* completions to wait for before starting requests */
    KTIMER ResumeTimer;
    KDPC ResumeDpc;
    KDPC RestartDpc;

    /* Error recovery (recovery.c): one worker at a time. */
    PIO_WORKITEM RecoveryItem;
    atomic_int RecoveryActive;
    atomic_uint Recoveries[5]; /* tiers used: abort, LUN, target, bus, adapter (statistics) */

    /* Storport's own reset SRBs the miniport did not complete within STORP_RESET_WAIT_MS
     * (recovery.c): ended by an adapter restart or stop, or by the miniport's late completion. */
    KSPIN_LOCK AbandonedLock;
    LIST_ENTRY AbandonedResets;

    /* HwStorUnitControl types the miniport handles (ScsiQuerySupportedUnitControlTypes). */
    BOOLEAN UnitControl[STOR_MAX_CONTROL_TYPES];

    ULONG ConcurrentChannels; /* StorPortInitializePerfOpts: >1, StartIo without its lock */
    BOOLEAN Verifier;         /* Control\Storport\Verifier (verifier.c) */
    atomic_uint Violations;   /* rule breaks the verifier caught */

    /* The event log (events.c): a ring of the last STORP_EVENT_RING events. */
    KSPIN_LOCK EventLock;
    ULONGLONG EventSequence; /* the last one written */
    STORSTACK_EVENT Events[STORP_EVENT_RING];
} STORP_ADAPTER, *PSTORP_ADAPTER;

typedef struct _STORP_UNIT {
    STORP_COMMON Common;
    PSTORP_ADAPTER Adapter;
    PDEVICE_OBJECT DeviceObject; /* the PDO, once the unit is present */
    UCHAR PathId, TargetId, Lun;
    PVOID LuExtension;
    UCHAR InquiryData[96];
    ULONG InquiryLength;
    char SerialNumber[64];
    char VendorId[9], ProductId[17], Revision[5];
    UCHAR DeviceType;
    BOOLEAN Present;  /* found by the last scan */
    BOOLEAN Seen;     /* found by the scan running now (StorpScanBus) */
    BOOLEAN Reported; /* PDO handed to PnP */
    BOOLEAN Started;
    BOOLEAN Removed; /* PDO got REMOVE_DEVICE */
    PDEVICE_OBJECT ClaimedBy;

    KSPIN_LOCK Lock; /* the unit queue */
    ULONG QueueDepth;
    ULONG Outstanding;
    LIST_ENTRY Pending; /* IRPs waiting for a slot (Tail.Overlay.ListEntry) */
    LIST_ENTRY OutstandingList;
    /* Queue state (unit lock): frozen after an error (SRB_STATUS_QUEUE_FROZEN) until
     * SRB_FUNCTION_RELEASE_QUEUE or FLUSH_QUEUE; locked by SRB_FUNCTION_LOCK_QUEUE; paused by
     * StorPortPauseDevice until PausedUntil; busy for BusyCount completions (StorPortDeviceBusy,
     * SRB_STATUS_BUSY, QUEUE FULL). Only requests with the matching bypass flag start while
     * frozen or locked. */
    BOOLEAN Frozen;
    BOOLEAN Locked;
    ULONGLONG PausedUntil;
    ULONG BusyCount;
    ULONG Freezes; /* times the queue froze (statistics) */

    /* Idle power management (power.c), under the unit lock. PowerLocked holds every request but
     * the power SRB in the queue while the unit is in D3 or on its way there or back. */
    ULONG IdleTimeout;             /* seconds; 0 = off (IdleTimeoutSeconds) */
    ULONG IdleSeconds;             /* ticks with nothing done */
    ULONG Completions, IdleMark;   /* requests completed; the count at the last tick */
    DEVICE_POWER_STATE PowerState; /* D0 or D3, as the last START STOP UNIT left it */
    BOOLEAN PowerLocked;
    BOOLEAN PowerBusy; /* a set-power IRP is in flight */
    BOOLEAN PowerDue;  /* the tick found it idle: power down after the tick */
    struct {
        SCSI_REQUEST_BLOCK Srb; /* START STOP UNIT */
        UCHAR Sense[18];
        PIRP PowerIrp;
        DEVICE_POWER_STATE Target;
    } Power;
} STORP_UNIT, *PSTORP_UNIT;

/* The PDO's device extension points at its unit, which can outlive the PDO during scans. */
typedef struct _STORP_PDO_EXTENSION {
    STORP_COMMON Common;
    PSTORP_UNIT Unit;
} STORP_PDO_EXTENSION, *PSTORP_PDO_EXTENSION;

/* Recovering the adapter from the miniport's device extension. */
typedef struct _STORP_HW_HEADER {
    PSTORP_ADAPTER Adapter;
    ULONG Pad[2];
} __attribute__((aligned(16))) STORP_HW_HEADER;

_Static_assert(offsetof(STOR_SCATTER_GATHER_LIST, List) == 16,
               "the embedded S/G list has Storport's layout");

static inline PSTORP_ADAPTER StorpAdapterFromHw(PVOID HwDeviceExtension)
{
    return ((STORP_HW_HEADER *)HwDeviceExtension - 1)->Adapter;
}

static inline PSTORP_REQUEST StorpRequestFromSrb(PSCSI_REQUEST_BLOCK Srb)
{
    PIRP irp = Srb->OriginalRequest;
    return irp ? (PSTORP_REQUEST)irp->Tail.Overlay.DriverContext[0] : NULL;
}

/* init.c */
NTSTATUS StorpDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp);
PSTORP_UNIT StorpFindUnit(PSTORP_ADAPTER Adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun);
ULONG StorpInquiry(PSTORP_UNIT Unit, BOOLEAN Evpd, UCHAR Page, PUCHAR Buffer, ULONG Length,
                   PUCHAR SrbStatus);
/* unit.c */
NTSTATUS StorpUnitDispatchPnp(PSTORP_UNIT Unit, PIRP Irp);
NTSTATUS StorpCreateUnitPdo(PSTORP_UNIT Unit);
void StorpDeleteUnit(PSTORP_UNIT Unit);
/* power.c */
void StorpInitializeUnitPower(PSTORP_UNIT Unit);
NTSTATUS StorpDispatchPower(PDEVICE_OBJECT DeviceObject, PIRP Irp);
BOOLEAN StorpIdleTick(PSTORP_UNIT Unit);
void StorpIdlePowerDown(PSTORP_ADAPTER Adapter);
void StorpWake(PSTORP_UNIT Unit);
/* io.c */
void StorpStartPending(PSTORP_UNIT Unit);
NTSTATUS StorpDispatchScsi(PDEVICE_OBJECT DeviceObject, PIRP Irp);
NTSTATUS StorpExecuteSrb(PSTORP_UNIT Unit, PIRP Irp, PSCSI_REQUEST_BLOCK Srb);
PIRP StorpAllocateSrbIrp(PSTORP_UNIT Unit, PSCSI_REQUEST_BLOCK Srb);
NTSTATUS StorpSendSrbSynchronous(PSTORP_UNIT Unit, PSCSI_REQUEST_BLOCK Srb);
void StorpCompleteSrb(PSTORP_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb);
void StorpStartTick(PSTORP_ADAPTER Adapter);
void StorpStartAllPending(PSTORP_ADAPTER Adapter);
void StorpRestartQueues(PSTORP_ADAPTER Adapter);
void StorpArmResume(PSTORP_ADAPTER Adapter, ULONGLONG Until);
void StorpStopTick(PSTORP_ADAPTER Adapter);
NTSTATUS StorpSrbStatusToNtStatus(PSCSI_REQUEST_BLOCK Srb);
NTSTATUS StorpResetUnit(PSTORP_UNIT Unit, UCHAR Function);
NTSTATUS StorpResetBus(PSTORP_ADAPTER Adapter, UCHAR PathId);
void StorpEnterLock(void);
void StorpLeaveLock(void);
void StorpReleaseRequest(PSTORP_REQUEST req);
void StorpSendAbort(PSTORP_REQUEST victim);
void StorpCompleteOutstanding(PSTORP_ADAPTER Adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                              UCHAR SrbStatus);
/* recovery.c */
void StorpInitializeRecovery(PSTORP_ADAPTER Adapter);
void StorpStartRecovery(PSTORP_ADAPTER Adapter);
void StorpStopRecovery(PSTORP_ADAPTER Adapter);
NTSTATUS StorpRestartAdapter(PSTORP_ADAPTER Adapter);
/* Ends the reset SRBs the miniport never completed (adapter restart, stop): SRB_STATUS_BUS_RESET.
 */
void StorpEndAbandonedResets(PSTORP_ADAPTER Adapter);
/* HwStorUnitControl (unit.c): asks once which types the miniport handles; sends one to a unit
 * when the miniport handles it (no Storport lock held). */
void StorpQueryUnitControl(PSTORP_ADAPTER Adapter);
SCSI_UNIT_CONTROL_STATUS StorpUnitControl(PSTORP_UNIT Unit, STOR_UNIT_CONTROL_TYPE Type,
                                          PVOID Parameters);
/* ScsiUnitStart for every present, started unit (after an adapter restart). */
void StorpRestartUnits(PSTORP_ADAPTER Adapter);
/* deferred.c */
void StorpInitializeDpc(PSTORP_ADAPTER Adapter, PSTOR_DPC Dpc, PHW_DPC_ROUTINE Routine);
BOOLEAN StorpIssueDpc(PSTORP_ADAPTER Adapter, PSTOR_DPC Dpc, PVOID A1, PVOID A2);
/* verifier.c */
STORP_CONTEXT StorpEnterContext(STORP_CONTEXT Context);
void StorpLeaveContext(STORP_CONTEXT Previous);
STORP_CONTEXT StorpCurrentContext(void);
void StorpVerifierReport(PSTORP_ADAPTER Adapter, STORP_RULE Rule, PSCSI_REQUEST_BLOCK Srb,
                         PCSTR Format, ...) __attribute__((format(printf, 4, 5)));
/* events.c */
void StorpLogEvent(PSTORP_ADAPTER Adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun, ULONG ErrorCode,
                   ULONG UniqueId, PSCSI_REQUEST_BLOCK Srb, PCSTR Source, PCSTR Format, ...)
    __attribute__((format(printf, 9, 10)));
NTSTATUS StorpGetEvents(PSTORP_ADAPTER Adapter, PIRP Irp);
/* ioctl.c */
NTSTATUS StorpDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp);
NTSTATUS StorpQueryProperty(PSTORP_ADAPTER Adapter, PSTORP_UNIT Unit, PIRP Irp);
ULONG StorpPassThroughContextSize(void);

#endif
