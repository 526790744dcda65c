/*
 * Storport's error recovery (the error-handling escalation of the Storport I/O model): the
 * one-second tick marks requests past their TimeOutValue and starts this worker, which escalates
 * tier by tier until no timed-out request is left at the miniport:
 *   1. SRB_FUNCTION_ABORT_COMMAND for each timed-out request, then up to STORP_RECOVERY_WAIT_MS;
 *   2. SRB_FUNCTION_RESET_LOGICAL_UNIT for each unit still holding one;
 *   3. SRB_FUNCTION_RESET_DEVICE (target reset) for each target still holding one
 *      (a reset SRB the miniport does not complete in STORP_RESET_WAIT_MS counts as failed);
 *   4. HwStorResetBus for each path still holding one;
 *   5. adapter restart: HwStorAdapterControl ScsiStopAdapter, ScsiSetRunningConfig (when
 *      supported), ScsiRestartAdapter; then HwStorUnitControl ScsiUnitStart for each unit, when
 *      the miniport handles it.
 * A tier that succeeds completes what is left in its scope (StorpCompleteOutstanding: the state
 * check makes each completion happen once); timed-out requests end SRB_STATUS_TIMEOUT, the
 * others SRB_STATUS_BUS_RESET, and the class driver retries both. A tier that fails, or leaves a
 * timed-out request behind, hands over to the next. Each step goes to the event log. The worker
 * runs on a system worker thread (it waits for the miniport), one per adapter at a time.
 */
#include <stdlib.h>
#include <unistd.h>

#include "drivers/port/storport/storport_p.h"

/* ---- Reset SRBs with a time limit -------------------------------------------------------------
 * Storport's own LUN and target reset SRBs (recovery tiers 2 and 3, IOCTL_STORAGE_RESET_DEVICE,
 * a task-management LUN RESET) wait at most STORP_RESET_WAIT_MS for the miniport. A reset the
 * miniport does not complete in time fails (STATUS_IO_TIMEOUT: recovery goes on to the next
 * tier) and is abandoned: its SRB, IRP and this context stay alive, on the adapter's
 * AbandonedResets list, until the miniport completes it late or Storport ends it with
 * SRB_STATUS_BUS_RESET when the adapter is restarted or stopped (the miniport has then forgotten
 * it). The context is freed by whichever of the waiter and the completion lets go last. */
typedef struct _STORP_RESET_CONTEXT {
    SCSI_REQUEST_BLOCK Srb;
    KEVENT Event;
    PSTORP_ADAPTER Adapter;
    NTSTATUS Status;
    BOOLEAN Done;      /* the IRP completed (under AbandonedLock) */
    BOOLEAN Abandoned; /* on AbandonedResets (under AbandonedLock) */
    BOOLEAN Ending;    /* Storport is ending it (StorpEndAbandonedResets) */
    LIST_ENTRY Link;
    atomic_int Refs; /* the waiter's and the completion's */
} STORP_RESET_CONTEXT, *PSTORP_RESET_CONTEXT;

static void StorpReleaseReset(PSTORP_RESET_CONTEXT ctx)
{
    if (atomic_fetch_sub(&ctx->Refs, 1) == 1) {
        KeDeleteEvent(&ctx->Event);
        free(ctx);
    }
}

/* The I/O manager's completion callback of the reset IRP (after the IRP is freed). */
static void StorpResetDone(PVOID *Context, NTSTATUS Status, ULONG_PTR Information)
{
    PSTORP_RESET_CONTEXT ctx = Context[0];
    PSTORP_ADAPTER adapter = ctx->Adapter;

    KeAcquireSpinLock(&adapter->AbandonedLock, NULL);
    ctx->Status = Status;
    ctx->Done = TRUE;
    if (ctx->Abandoned) {
        RemoveEntryList(&ctx->Link);
        ctx->Abandoned = FALSE;
    }
    KeReleaseSpinLock(&adapter->AbandonedLock, 0);
    KeSetEvent(&ctx->Event, 0, FALSE);
    StorpReleaseReset(ctx);
}

/* Sends a LUN or target reset SRB to the unit and waits at most STORP_RESET_WAIT_MS. */
static NTSTATUS StorpSendReset(PSTORP_UNIT Unit, UCHAR Function)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PSTORP_RESET_CONTEXT ctx = calloc(1, sizeof(*ctx));
    LARGE_INTEGER wait = {.QuadPart = -(LONGLONG)STORP_RESET_WAIT_MS * 10000};
    NTSTATUS status;
    PIRP irp = ctx ? StorpAllocateSrbIrp(Unit, &ctx->Srb) : NULL;

    if (!irp) {
        free(ctx);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    KeInitializeEvent(&ctx->Event, NotificationEvent, FALSE);
    ctx->Adapter = adapter;
    atomic_init(&ctx->Refs, 2);
    ctx->Srb.Length = sizeof(ctx->Srb);
    ctx->Srb.Function = Function;
    ctx->Srb.TimeOutValue = STORP_RESET_WAIT_MS / 1000;
    irp->UserCompletion.Routine = StorpResetDone;
    irp->UserCompletion.Context[0] = ctx;
    StorpExecuteSrb(Unit, irp, &ctx->Srb);

    BOOLEAN abandoned = FALSE;
    if (KeWaitForSingleObject(&ctx->Event, Executive, KernelMode, FALSE, &wait) == STATUS_TIMEOUT) {
        KeAcquireSpinLock(&adapter->AbandonedLock, NULL);
        if (!ctx->Done) {
            ctx->Abandoned = TRUE;
            InsertTailList(&adapter->AbandonedResets, &ctx->Link);
            abandoned = TRUE;
        }
        KeReleaseSpinLock(&adapter->AbandonedLock, 0);
    }
    status = abandoned ? STATUS_IO_TIMEOUT : ctx->Status;
    if (abandoned)
        StorpLogEvent(adapter, Unit->PathId, Unit->TargetId,
                      Function == SRB_FUNCTION_RESET_LOGICAL_UNIT ? Unit->Lun : 0xFF,
                      SP_REQUEST_TIMEOUT, STORP_RESET_WAIT_MS, &ctx->Srb, "storport",
                      "%s reset not completed by the miniport in %u ms: abandoned",
                      Function == SRB_FUNCTION_RESET_LOGICAL_UNIT ? "LUN" : "target",
                      STORP_RESET_WAIT_MS);
    StorpReleaseReset(ctx);
    return status;
}

void StorpEndAbandonedResets(PSTORP_ADAPTER Adapter)
{
    for (;;) {
        PSTORP_RESET_CONTEXT ctx = NULL;
        KeAcquireSpinLock(&Adapter->AbandonedLock, NULL);
        for (PLIST_ENTRY e = Adapter->AbandonedResets.Flink; e != &Adapter->AbandonedResets;
             e = e->Flink) {
            PSTORP_RESET_CONTEXT c = CONTAINING_RECORD(e, STORP_RESET_CONTEXT, Link);
            if (!c->Ending) {
                c->Ending = TRUE;
                atomic_fetch_add(&c->Refs, 1); /* alive even if the miniport completes it now */
                ctx = c;
                break;
            }
        }
        KeReleaseSpinLock(&Adapter->AbandonedLock, 0);
        if (!ctx)
            return;
        PSTORP_REQUEST req = StorpRequestFromSrb(&ctx->Srb);
        if (atomic_load(&req->State) == StorpRequestAtMiniport) {
            ctx->Srb.SrbStatus = SRB_STATUS_BUS_RESET;
            StorpCompleteSrb(Adapter, &ctx->Srb);
        }
        StorpReleaseReset(ctx);
    }
}

/* SRB_FUNCTION_RESET_LOGICAL_UNIT for the unit, or SRB_FUNCTION_RESET_DEVICE for its target;
 * waits for the miniport (at most STORP_RESET_WAIT_MS), then ends what is left in the scope. */
NTSTATUS StorpResetUnit(PSTORP_UNIT Unit, UCHAR Function)
{
    BOOLEAN lun = Function == SRB_FUNCTION_RESET_LOGICAL_UNIT;
    NTSTATUS status = StorpSendReset(Unit, Function);

    StorpLogEvent(Unit->Adapter, Unit->PathId, Unit->TargetId, lun ? Unit->Lun : 0xFF,
                  lun ? STORP_EVENT_LUN_RESET : STORP_EVENT_TARGET_RESET, (ULONG)status, NULL,
                  "storport", "%s reset: 0x%08X", lun ? "LUN" : "target", (unsigned)status);
    if (NT_SUCCESS(status))
        StorpCompleteOutstanding(Unit->Adapter, Unit->PathId, Unit->TargetId,
                                 lun ? Unit->Lun : 0xFF, SRB_STATUS_BUS_RESET);
    return status;
}

typedef struct _STORP_SCOPE {
    int PathId, TargetId, Lun; /* -1: any */
} STORP_SCOPE;

static BOOLEAN StorpInScope(PSTORP_UNIT unit, const STORP_SCOPE *s)
{
    return (s->PathId < 0 || unit->PathId == s->PathId) &&
           (s->TargetId < 0 || unit->TargetId == s->TargetId) &&
           (s->Lun < 0 || unit->Lun == s->Lun);
}

/* The first unit (in table order) holding a timed-out request in the scope, or NULL. */
static PSTORP_UNIT StorpTimedOutUnit(PSTORP_ADAPTER adapter, const STORP_SCOPE *scope)
{
    PSTORP_UNIT found = NULL;
    KeAcquireSpinLock(&adapter->UnitLock, NULL);
    for (ULONG i = 0; i < adapter->UnitTableSize && !found; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (!unit || !StorpInScope(unit, scope))
            continue;
        KeAcquireSpinLock(&unit->Lock, NULL);
        for (PLIST_ENTRY e = unit->OutstandingList.Flink; e != &unit->OutstandingList;
             e = e->Flink) {
            PSTORP_REQUEST req = CONTAINING_RECORD(e, STORP_REQUEST, Link);
            if (req->TimedOut && atomic_load(&req->State) == StorpRequestAtMiniport) {
                found = unit;
                break;
            }
        }
        KeReleaseSpinLock(&unit->Lock, 0);
    }
    KeReleaseSpinLock(&adapter->UnitLock, 0);
    return found;
}

/* Waits up to ms for the timed-out requests of the scope to leave the miniport. */
static BOOLEAN StorpWaitRecovered(PSTORP_ADAPTER adapter, const STORP_SCOPE *scope, ULONG ms)
{
    for (ULONG i = 0; i < ms; i++) {
        if (!StorpTimedOutUnit(adapter, scope))
            return TRUE;
        usleep(1000);
    }
    return StorpTimedOutUnit(adapter, scope) == NULL;
}

/* Tier 1: aborts every timed-out request not yet aborted. */
static void StorpAbortTimedOut(PSTORP_ADAPTER adapter)
{
    enum { BATCH = 64 };
    PSTORP_REQUEST victims[BATCH];
    ULONG n = 0;

    KeAcquireSpinLock(&adapter->UnitLock, NULL);
    for (ULONG i = 0; i < adapter->UnitTableSize && n < BATCH; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (!unit)
            continue;
        KeAcquireSpinLock(&unit->Lock, NULL);
        for (PLIST_ENTRY e = unit->OutstandingList.Flink; e != &unit->OutstandingList && n < BATCH;
             e = e->Flink) {
            PSTORP_REQUEST req = CONTAINING_RECORD(e, STORP_REQUEST, Link);
            if (req->TimedOut && !req->AbortSent &&
                atomic_load(&req->State) == StorpRequestAtMiniport) {
                req->AbortSent = TRUE;
                atomic_fetch_add(&req->Refs, 1); /* kept alive until the abort is sent */
                victims[n++] = req;
            }
        }
        KeReleaseSpinLock(&unit->Lock, 0);
    }
    KeReleaseSpinLock(&adapter->UnitLock, 0);
    for (ULONG i = 0; i < n; i++) {
        PSTORP_UNIT unit = victims[i]->Unit;
        StorpLogEvent(adapter, unit->PathId, unit->TargetId, unit->Lun, STORP_EVENT_ABORT, 0,
                      victims[i]->Srb, "storport", "recovery: abort the timed-out request");
        StorpSendAbort(victims[i]);
        StorpReleaseRequest(victims[i]);
    }
}

/* Tier 5, and HwStorAdapterControl's restart sequence: stop, running configuration, restart.
 * What the miniport held is gone with its state: Storport completes it. */
NTSTATUS StorpRestartAdapter(PSTORP_ADAPTER Adapter)
{
    PHW_ADAPTER_CONTROL control = Adapter->Driver->Init.HwAdapterControl;
    SCSI_SUPPORTED_CONTROL_TYPE_LIST list = {.MaxControlType = ScsiAdapterControlMax};
    SCSI_ADAPTER_CONTROL_STATUS st = ScsiAdapterControlUnsuccessful;
    NTSTATUS status;

    if (control)
        control(Adapter->HwDeviceExtension, ScsiQuerySupportedControlTypes, &list);
    if (!control || !list.SupportedTypeList[ScsiStopAdapter] ||
        !list.SupportedTypeList[ScsiRestartAdapter]) {
        status = STATUS_NOT_SUPPORTED;
    } else {
        StorpEnterLock();
        KeAcquireSpinLock(&Adapter->InterruptLock, NULL);
        st = control(Adapter->HwDeviceExtension, ScsiStopAdapter, NULL);
        if (st == ScsiAdapterControlSuccess && list.SupportedTypeList[ScsiSetRunningConfig])
            st = control(Adapter->HwDeviceExtension, ScsiSetRunningConfig, NULL);
        if (st == ScsiAdapterControlSuccess)
            st = control(Adapter->HwDeviceExtension, ScsiRestartAdapter, NULL);
        KeReleaseSpinLock(&Adapter->InterruptLock, 0);
        StorpLeaveLock();
        status = st == ScsiAdapterControlSuccess ? STATUS_SUCCESS : STATUS_IO_DEVICE_ERROR;
    }
    StorpLogEvent(Adapter, 0xFF, 0xFF, 0xFF, STORP_EVENT_ADAPTER_RESTART, (ULONG)status, NULL,
                  "storport", "adapter restart: 0x%08X", (unsigned)status);
    if (NT_SUCCESS(status)) {
        StorpCompleteOutstanding(Adapter, 0xFF, 0xFF, 0xFF, SRB_STATUS_BUS_RESET);
        StorpEndAbandonedResets(Adapter);
        /* the restarted adapter has lost its per-unit state: start each unit again */
        StorpRestartUnits(Adapter);
    }
    return status;
}

static void StorpRecover(PSTORP_ADAPTER adapter)
{
    const STORP_SCOPE all = {-1, -1, -1};
    PSTORP_UNIT unit;

    /* 1. abort */
    atomic_fetch_add(&adapter->Recoveries[0], 1);
    StorpAbortTimedOut(adapter);
    if (StorpWaitRecovered(adapter, &all, STORP_RECOVERY_WAIT_MS))
        return;
    /* 2. LUN reset, per unit still holding a timed-out request; a unit whose reset fails is
     * left for the next tier */
    atomic_fetch_add(&adapter->Recoveries[1], 1);
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        STORP_SCOPE one;
        KeAcquireSpinLock(&adapter->UnitLock, NULL);
        unit = adapter->UnitTable[i];
        KeReleaseSpinLock(&adapter->UnitLock, 0);
        if (!unit)
            continue;
        one = (STORP_SCOPE){unit->PathId, unit->TargetId, unit->Lun};
        if (StorpTimedOutUnit(adapter, &one))
            StorpResetUnit(unit, SRB_FUNCTION_RESET_LOGICAL_UNIT);
    }
    if (StorpWaitRecovered(adapter, &all, 10))
        return;
    /* 3. target reset */
    atomic_fetch_add(&adapter->Recoveries[2], 1);
    for (int tries = 0; (unit = StorpTimedOutUnit(adapter, &all)) && tries < 256; tries++) {
        STORP_SCOPE target = {unit->PathId, unit->TargetId, -1};
        if (!NT_SUCCESS(StorpResetUnit(unit, SRB_FUNCTION_RESET_DEVICE)) ||
            StorpTimedOutUnit(adapter, &target))
            break;
    }
    if (StorpWaitRecovered(adapter, &all, 10))
        return;
    /* 4. bus reset */
    atomic_fetch_add(&adapter->Recoveries[3], 1);
    for (int tries = 0; (unit = StorpTimedOutUnit(adapter, &all)) && tries < SCSI_MAXIMUM_BUSES;
         tries++) {
        STORP_SCOPE path = {unit->PathId, -1, -1};
        if (!NT_SUCCESS(StorpResetBus(adapter, unit->PathId)) || StorpTimedOutUnit(adapter, &path))
            break;
    }
    if (StorpWaitRecovered(adapter, &all, 10))
        return;
    /* 5. adapter restart */
    atomic_fetch_add(&adapter->Recoveries[4], 1);
    if (NT_SUCCESS(StorpRestartAdapter(adapter)) && StorpWaitRecovered(adapter, &all, 10))
        return;
    StorpLogEvent(adapter, 0xFF, 0xFF, 0xFF, STORP_EVENT_RECOVERY_FAILED, 0, NULL, "storport",
                  "recovery failed at every tier; timed-out requests stay with the miniport");
}

static void StorpRecoveryWorker(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    PSTORP_ADAPTER adapter = Context;
    StorpRecover(adapter);
    atomic_store(&adapter->RecoveryActive, 0); /* the last touch of the adapter */
}

void StorpInitializeRecovery(PSTORP_ADAPTER Adapter)
{
    Adapter->RecoveryItem = IoAllocateWorkItem(Adapter->DeviceObject);
}

/* From the tick: starts the worker unless one runs (the next tick tries again). */
void StorpStartRecovery(PSTORP_ADAPTER Adapter)
{
    int idle = 0;
    if (!Adapter->RecoveryItem ||
        !atomic_compare_exchange_strong(&Adapter->RecoveryActive, &idle, 1))
        return;
    IoQueueWorkItem(Adapter->RecoveryItem, StorpRecoveryWorker, DelayedWorkQueue, Adapter);
}

/* At stop, once the tick is stopped (nothing starts a worker any more): waits for a running
 * worker, then frees the work item. */
void StorpStopRecovery(PSTORP_ADAPTER Adapter)
{
    if (!Adapter->RecoveryItem)
        return;
    while (atomic_load(&Adapter->RecoveryActive))
        usleep(1000);
    IoFreeWorkItem(Adapter->RecoveryItem);
    Adapter->RecoveryItem = NULL;
}
