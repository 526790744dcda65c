/*
 * Storport's services for a miniport's deferred work: DPCs (StorPortInitializeDpc,
 * StorPortIssueDpc and the DpcLock of StorPortAcquireSpinLock), timers (StorPortInitializeTimer,
 * StorPortRequestTimer, StorPortFreeTimer), work items (StorPortInitializeWorkItem,
 * StorPortQueueWorkItem, StorPortFreeWorkItem), passive initialization, performance options
 * (StorPortInitializePerfOpts: concurrent channels) and StorPortStateChangeDetected. They sit on
 * the kernel's DPCs, timers and work items (kernel/ke.c). A completion from a DPC, timer or work
 * item routine is delivered when the routine returns (the routines run inside Storport's lock
 * scope, as a DPC does on Windows). Timers and work items belong to the miniport: it frees them,
 * typically in HwStorFreeAdapterResources.
 */
#include <stdlib.h>

#include "drivers/port/storport/storport_p.h"

typedef struct _STORP_TIMER {
    PSTORP_ADAPTER Adapter;
    KTIMER Timer;
    KDPC Dpc;
    PHW_TIMER_EX Callback;
    PVOID Context;
} STORP_TIMER, *PSTORP_TIMER;

typedef struct _STORP_WORKER {
    PSTORP_ADAPTER Adapter;
    PIO_WORKITEM Item;
    atomic_int Queued;  /* queued, not yet running: a second queue is STOR_STATUS_BUSY */
    atomic_int Running; /* the callback runs: the work item cannot be freed */
    PHW_WORKITEM Callback;
    PVOID Context;
} STORP_WORKER, *PSTORP_WORKER;

/* ---- DPCs and spin locks ----------------------------------------------------------------------
 */

static void StorpMiniportDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PSTOR_DPC dpc = Context;
    STORP_CONTEXT previous = StorpEnterContext(StorpContextOther);
    StorpEnterLock();
    dpc->Routine(dpc, dpc->HwDeviceExtension, A1, A2);
    StorpLeaveLock();
    StorpLeaveContext(previous);
}

void StorPortInitializeDpc(PVOID HwDeviceExtension, PSTOR_DPC Dpc, PHW_DPC_ROUTINE HwDpcRoutine)
{
    StorPortNotification(InitializeDpc, HwDeviceExtension, Dpc, HwDpcRoutine);
}

BOOLEAN StorPortIssueDpc(PVOID HwDeviceExtension, PSTOR_DPC Dpc, PVOID SystemArgument1,
                         PVOID SystemArgument2)
{
    BOOLEAN queued = FALSE;
    StorPortNotification(IssueDpc, HwDeviceExtension, Dpc, SystemArgument1, SystemArgument2,
                         &queued);
    return queued;
}

/* The InitializeDpc notification. */
void StorpInitializeDpc(PSTORP_ADAPTER Adapter, PSTOR_DPC Dpc, PHW_DPC_ROUTINE Routine)
{
    Dpc->HwDeviceExtension = Adapter->HwDeviceExtension;
    Dpc->Routine = Routine;
    KeInitializeSpinLock(&Dpc->Lock);
    KeInitializeDpcEx(Adapter->Executive, &Dpc->Dpc, StorpMiniportDpc, Dpc);
}

/* The IssueDpc notification: FALSE when it was already queued. */
BOOLEAN StorpIssueDpc(PSTORP_ADAPTER Adapter, PSTOR_DPC Dpc, PVOID A1, PVOID A2)
{
    if (!Dpc->Routine)
        return FALSE;
    return KeInsertQueueDpc(&Dpc->Dpc, A1, A2);
}

void StorPortAcquireSpinLock(PVOID HwDeviceExtension, STOR_SPINLOCK SpinLock, PVOID LockContext,
                             PSTOR_LOCK_HANDLE LockHandle)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    PKSPIN_LOCK lock = NULL;
    switch (SpinLock) {
    case DpcLock:
    case ThreadedDpcLock:
    case DpcLevelLock:
        lock = LockContext ? &((PSTOR_DPC)LockContext)->Lock : NULL;
        break;
    case StartIoLock:
        lock = &adapter->StartIoLock;
        break;
    case InterruptLock:
        lock = &adapter->InterruptLock;
        break;
    }
    LockHandle->Lock = SpinLock;
    LockHandle->Context = lock;
    if (!lock) {
        StorpVerifierReport(adapter, StorpRuleWrongContext, NULL,
                            "StorPortAcquireSpinLock of lock %d without its DPC", (int)SpinLock);
        return;
    }
    /* a completion while a Storport lock is held is delivered at release */
    StorpEnterLock();
    KeAcquireSpinLock(lock, NULL);
}

void StorPortReleaseSpinLock(PVOID HwDeviceExtension, PSTOR_LOCK_HANDLE LockHandle)
{
    if (!LockHandle->Context)
        return;
    KeReleaseSpinLock(LockHandle->Context, 0);
    LockHandle->Context = NULL;
    StorpLeaveLock();
}

BOOLEAN
StorPortEnablePassiveInitialization(PVOID HwDeviceExtension,
                                    PHW_PASSIVE_INITIALIZE_ROUTINE HwPassiveInitializeRoutine)
{
    BOOLEAN enabled = FALSE;
    StorPortNotification(EnablePassiveInitialization, HwDeviceExtension, HwPassiveInitializeRoutine,
                         &enabled);
    return enabled;
}

/* ---- Timers -----------------------------------------------------------------------------------
 */

static void StorpTimerDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PSTORP_TIMER t = Context;
    PHW_TIMER_EX callback = t->Callback;
    STORP_CONTEXT previous;
    if (!callback)
        return;
    previous = StorpEnterContext(StorpContextOther);
    StorpEnterLock();
    callback(t->Adapter->HwDeviceExtension, t->Context);
    StorpLeaveLock();
    StorpLeaveContext(previous);
}

ULONG StorPortInitializeTimer(PVOID HwDeviceExtension, PVOID *TimerHandle)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    PSTORP_TIMER t;
    if (!TimerHandle)
        return STOR_STATUS_INVALID_PARAMETER;
    t = calloc(1, sizeof(*t));
    if (!t)
        return STOR_STATUS_INSUFFICIENT_RESOURCES;
    t->Adapter = adapter;
    KeInitializeTimerEx(adapter->Executive, &t->Timer);
    KeInitializeDpcEx(adapter->Executive, &t->Dpc, StorpTimerDpc, t);
    *TimerHandle = t;
    return STOR_STATUS_SUCCESS;
}

ULONG StorPortRequestTimer(PVOID HwDeviceExtension, PVOID TimerHandle, PHW_TIMER_EX TimerCallback,
                           PVOID CallbackContext, ULONGLONG TimerValue, ULONGLONG TolerableDelay)
{
    PSTORP_TIMER t = TimerHandle;
    if (!t)
        return STOR_STATUS_INVALID_PARAMETER;
    if (TimerValue == 0 || !TimerCallback) {
        KeCancelTimer(&t->Timer);
        return STOR_STATUS_SUCCESS;
    }
    if (TimerValue > 0x7FFFFFFFFFFFFFFFull / 10u)
        return STOR_STATUS_INVALID_PARAMETER;
    t->Callback = TimerCallback;
    t->Context = CallbackContext;
    LARGE_INTEGER due = {.QuadPart = -(LONGLONG)(TimerValue * 10u)};
    KeSetTimer(&t->Timer, due, &t->Dpc);
    return STOR_STATUS_SUCCESS;
}

ULONG StorPortFreeTimer(PVOID HwDeviceExtension, PVOID TimerHandle)
{
    PSTORP_TIMER t = TimerHandle;
    if (!t)
        return STOR_STATUS_INVALID_PARAMETER;
    KeCancelTimer(&t->Timer);
    KeRemoveQueueDpc(&t->Dpc);
    KeFlushQueuedDpcsEx(t->Adapter->Executive);
    free(t);
    return STOR_STATUS_SUCCESS;
}

/* ---- Work items -------------------------------------------------------------------------------
 */

static void StorpWorkItemRoutine(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    PSTORP_WORKER w = Context;
    PHW_WORKITEM callback = w->Callback;
    PVOID context = w->Context;
    STORP_CONTEXT previous = StorpEnterContext(StorpContextOther);
    atomic_fetch_add(&w->Running, 1);
    atomic_store(&w->Queued, 0); /* the callback may queue it again */
    callback(w->Adapter->HwDeviceExtension, context, w);
    StorpLeaveContext(previous);
    atomic_fetch_sub(&w->Running, 1);
}

ULONG StorPortInitializeWorkItem(PVOID HwDeviceExtension, PVOID *Worker)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    PSTORP_WORKER w;
    if (!Worker)
        return STOR_STATUS_INVALID_PARAMETER;
    w = calloc(1, sizeof(*w));
    if (!w)
        return STOR_STATUS_INSUFFICIENT_RESOURCES;
    w->Adapter = adapter;
    w->Item = IoAllocateWorkItem(adapter->DeviceObject);
    if (!w->Item) {
        free(w);
        return STOR_STATUS_INSUFFICIENT_RESOURCES;
    }
    *Worker = w;
    return STOR_STATUS_SUCCESS;
}

ULONG StorPortQueueWorkItem(PVOID HwDeviceExtension, PHW_WORKITEM WorkItemCallback, PVOID Worker,
                            PVOID Context)
{
    PSTORP_WORKER w = Worker;
    int idle = 0;
    if (!w || !WorkItemCallback)
        return STOR_STATUS_INVALID_PARAMETER;
    if (!atomic_compare_exchange_strong(&w->Queued, &idle, 1))
        return STOR_STATUS_BUSY;
    w->Callback = WorkItemCallback;
    w->Context = Context;
    IoQueueWorkItem(w->Item, StorpWorkItemRoutine, DelayedWorkQueue, w);
    return STOR_STATUS_SUCCESS;
}

ULONG StorPortFreeWorkItem(PVOID HwDeviceExtension, PVOID Worker)
{
    PSTORP_WORKER w = Worker;
    if (!w)
        return STOR_STATUS_INVALID_PARAMETER;
    if (atomic_load(&w->Queued) || atomic_load(&w->Running))
        return STOR_STATUS_BUSY; /* freeing a queued or running work item is the miniport's bug */
    IoFreeWorkItem(w->Item);
    free(w);
    return STOR_STATUS_SUCCESS;
}

/* ---- Performance options and state changes ----------------------------------------------------
 */

ULONG StorPortInitializePerfOpts(PVOID HwDeviceExtension, BOOLEAN Query,
                                 PPERF_CONFIGURATION_DATA PerfConfigData)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    if (!PerfConfigData || PerfConfigData->Version < 1 ||
        PerfConfigData->Size < offsetof(PERF_CONFIGURATION_DATA, FirstRedirectionMessageNumber))
        return STOR_STATUS_INVALID_PARAMETER;
    if (Query) {
        PerfConfigData->Flags = STOR_PERF_CONCURRENT_CHANNELS;
        return STOR_STATUS_SUCCESS;
    }
    if (PerfConfigData->Flags & ~(ULONG)STOR_PERF_CONCURRENT_CHANNELS)
        return STOR_STATUS_NOT_IMPLEMENTED;
    if (PerfConfigData->Flags & STOR_PERF_CONCURRENT_CHANNELS) {
        if (PerfConfigData->ConcurrentChannels == 0)
            return STOR_STATUS_INVALID_PARAMETER;
        adapter->ConcurrentChannels = PerfConfigData->ConcurrentChannels;
    }
    return STOR_STATUS_SUCCESS;
}

BOOLEAN StorPortStateChangeDetected(PVOID HwDeviceExtension, ULONG ChangedEntity,
                                    PSTOR_ADDR_BTL8 Address, ULONG Attributes,
                                    PVOID HwStateChangeDetectedCallback, PVOID CallbackContext)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    UCHAR path = 0xFF, target = 0xFF, lun = 0xFF;
    if (!ChangedEntity ||
        (ChangedEntity & ~(ULONG)(STATE_CHANGE_LUN | STATE_CHANGE_TARGET | STATE_CHANGE_BUS)))
        return FALSE;
    if (Address) {
        path = Address->Path;
        target = ChangedEntity & (STATE_CHANGE_TARGET | STATE_CHANGE_LUN) ? Address->Target : 0xFF;
        lun = ChangedEntity & STATE_CHANGE_LUN ? Address->Lun : 0xFF;
    }
    StorpLogEvent(adapter, path, target, lun, STORP_EVENT_STATE_CHANGE, ChangedEntity, NULL,
                  "miniport", "%s: device state change (attributes 0x%X)",
                  adapter->Driver->ServiceName, Attributes);
    if (adapter->Started)
        IoInvalidateDeviceRelations(adapter->PhysicalDeviceObject, BusRelations);
    return TRUE;
}
