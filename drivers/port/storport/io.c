/*
 * Storport's I/O path (Storport I/O Model): an SRB arriving in IRP_MJ_SCSI at a unit's PDO takes
 * a queue slot (per-unit queue depth, adapter-wide MaxNumberOfIO) or waits in the unit's pending
 * queue; then HwStorBuildIo runs with no lock held (a miniport that completes the request there
 * returns FALSE and HwStorStartIo is skipped), then HwStorStartIo under the StartIo lock.
 * RequestComplete may come from any thread. When it comes from inside a Storport lock (StartIo or
 * interrupt lock), the completion is deferred until that lock is released on this thread, which
 * is what Storport's completion DPC achieves; otherwise the IRP completes right there, in the
 * completing thread. A one-second tick finds requests past TimeOutValue and resets the bus.
 */
#include <stdlib.h>

#include "drivers/port/storport/storport_p.h"

static _Thread_local int StorpLockDepth;
static _Thread_local PSTORP_REQUEST StorpDeferred; /* chained through NextDeferred */
static _Thread_local PSTORP_UNIT StorpDispatching;

static void StorpFinishRequest(PSTORP_REQUEST req);
static void StorpCancelIrp(PDEVICE_OBJECT DeviceObject, PIRP Irp);

void StorpEnterLock(void)
{
    StorpLockDepth++;
}

void StorpLeaveLock(void)
{
    if (--StorpLockDepth > 0)
        return;
    while (StorpDeferred) {
        PSTORP_REQUEST req = StorpDeferred;
        StorpDeferred = req->NextDeferred;
        StorpFinishRequest(req);
    }
}

NTSTATUS StorpSrbStatusToNtStatus(PSCSI_REQUEST_BLOCK Srb)
{
    switch (SRB_STATUS(Srb->SrbStatus)) {
    case SRB_STATUS_SUCCESS:
        return STATUS_SUCCESS;
    case SRB_STATUS_DATA_OVERRUN:
        /* an underrun: DataTransferLength says how much moved; the class driver decides */
        return Srb->ScsiStatus == SCSISTAT_GOOD ? STATUS_SUCCESS : STATUS_IO_DEVICE_ERROR;
    case SRB_STATUS_PENDING:
        return STATUS_PENDING;
    case SRB_STATUS_INVALID_LUN:
    case SRB_STATUS_INVALID_TARGET_ID:
    case SRB_STATUS_NO_DEVICE:
    case SRB_STATUS_SELECTION_TIMEOUT:
    case SRB_STATUS_NO_HBA:
        return STATUS_DEVICE_DOES_NOT_EXIST;
    case SRB_STATUS_TIMEOUT:
    case SRB_STATUS_COMMAND_TIMEOUT:
        return STATUS_IO_TIMEOUT;
    case SRB_STATUS_BUSY:
        return STATUS_DEVICE_BUSY;
    case SRB_STATUS_INVALID_REQUEST:
    case SRB_STATUS_BAD_FUNCTION:
    case SRB_STATUS_BAD_SRB_BLOCK_LENGTH:
        return STATUS_INVALID_DEVICE_REQUEST;
    case SRB_STATUS_ABORTED:
    case SRB_STATUS_REQUEST_FLUSHED:
        return STATUS_CANCELLED;
    case SRB_STATUS_ERROR:
        if (Srb->ScsiStatus == SCSISTAT_BUSY || Srb->ScsiStatus == SCSISTAT_QUEUE_FULL)
            return STATUS_DEVICE_BUSY;
        return STATUS_IO_DEVICE_ERROR;
    default:
        return STATUS_IO_DEVICE_ERROR;
    }
}

static void StorpCompleteIrpWithSrbStatus(PIRP Irp, PSCSI_REQUEST_BLOCK Srb, UCHAR SrbStatus)
{
    Srb->SrbStatus = SrbStatus;
    Irp->IoStatus.Status = StorpSrbStatusToNtStatus(Srb);
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
}

/* Hands a request that holds its queue slot to the miniport. No lock held on entry. */
static void StorpStartRequest(PSTORP_REQUEST req)
{
    PSTORP_ADAPTER adapter = req->Unit->Adapter;
    PSCSI_REQUEST_BLOCK srb = req->Srb;
    PHW_INITIALIZATION_DATA init = &adapter->Driver->Init;

    STORP_CONTEXT previous;
    BOOLEAN more = TRUE;

    atomic_store(&req->State, StorpRequestAtMiniport);
    /* Unsynchronized HwStorBuildIo: no Storport lock. FALSE means the miniport completed it.
     * The verifier holds its completions until it returns, to see writes after them. */
    if (init->HwBuildIo) {
        if (adapter->Verifier)
            StorpEnterLock();
        previous = StorpEnterContext(StorpContextBuildIo);
        more = init->HwBuildIo(adapter->HwDeviceExtension, srb);
        StorpLeaveContext(previous);
        if (adapter->Verifier)
            StorpLeaveLock();
    }
    if (!more)
        return;
    StorpEnterLock();
    /* with concurrent channels (StorPortInitializePerfOpts) the miniport synchronizes itself */
    if (adapter->ConcurrentChannels <= 1)
        KeAcquireSpinLock(&adapter->StartIoLock, NULL);
    previous = StorpEnterContext(StorpContextStartIo);
    init->HwStartIo(adapter->HwDeviceExtension, srb);
    StorpLeaveContext(previous);
    if (adapter->ConcurrentChannels <= 1)
        KeReleaseSpinLock(&adapter->StartIoLock, 0);
    StorpLeaveLock();
}

/* Whether the unit's queue state lets this request start now (unit lock held): not frozen or
 * locked unless the SRB bypasses that, not paused, not waiting out a busy condition. */
static BOOLEAN StorpMayStart(PSTORP_UNIT unit, PSCSI_REQUEST_BLOCK srb, ULONGLONG now)
{
    PSTORP_ADAPTER adapter = unit->Adapter;
    if (unit->PowerLocked && srb != &unit->Power.Srb)
        return FALSE; /* held while the unit is powered down (power.c) */
    if (unit->Frozen && !(srb->SrbFlags & SRB_FLAGS_BYPASS_FROZEN_QUEUE))
        return FALSE;
    if (unit->Locked && !(srb->SrbFlags & SRB_FLAGS_BYPASS_LOCKED_QUEUE))
        return FALSE;
    if (unit->BusyCount || atomic_load(&adapter->BusyCount))
        return FALSE;
    if (unit->PausedUntil > now || atomic_load(&adapter->PausedUntil) > now)
        return FALSE;
    return TRUE;
}

/* Takes a queue slot if one is free. Unit lock held. */
static BOOLEAN StorpTakeSlot(PSTORP_UNIT unit, PSTORP_REQUEST req)
{
    PSTORP_ADAPTER adapter = unit->Adapter;
    if (unit->Outstanding >= unit->QueueDepth)
        return FALSE;
    if (atomic_fetch_add(&adapter->Outstanding, 1) >= adapter->Config.MaxNumberOfIO) {
        atomic_fetch_sub(&adapter->Outstanding, 1);
        return FALSE;
    }
    unit->Outstanding++;
    req->Counted = TRUE;
    /* At least TimeOutValue: the interrupt time is tick-granular and may lag by up to a tick
     * (a few ms), so the deadline gets 10 ms more. The one-second tick then catches it. */
    req->Deadline =
        KeQueryInterruptTime() + (ULONGLONG)req->Srb->TimeOutValue * 10000000ull + 100000ull;
    InsertTailList(&unit->OutstandingList, &req->Link);
    return TRUE;
}

/* Starts pending requests while slots are free. Not re-entered for the same unit on a thread:
 * a request that completes inside the loop leaves the next one to the loop. */
void StorpStartPending(PSTORP_UNIT unit)
{
    PSTORP_UNIT previous = StorpDispatching;
    if (previous == unit)
        return;
    StorpDispatching = unit;
    for (;;) {
        PSTORP_REQUEST req = NULL;
        ULONGLONG now = KeQueryInterruptTime();
        KeAcquireSpinLock(&unit->Lock, NULL);
        /* In order; while frozen or locked, a request that bypasses it may pass the others. */
        for (PLIST_ENTRY e = unit->Pending.Flink; e != &unit->Pending; e = e->Flink) {
            PIRP irp = CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry);
            PSTORP_REQUEST candidate = irp->Tail.Overlay.DriverContext[0];
            if (!StorpMayStart(unit, candidate->Srb, now)) {
                if (!unit->Frozen && !unit->Locked)
                    break; /* paused or busy: nothing starts */
                continue;
            }
            if (StorpTakeSlot(unit, candidate)) {
                RemoveEntryList(&irp->Tail.Overlay.ListEntry);
                atomic_store(&candidate->State, StorpRequestAtMiniport);
                req = candidate;
            }
            break;
        }
        KeReleaseSpinLock(&unit->Lock, 0);
        if (!req)
            break;
        StorpStartRequest(req);
    }
    StorpDispatching = previous;
}

void StorpStartAllPending(PSTORP_ADAPTER adapter)
{
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (unit)
            StorpStartPending(unit); /* it looks at the queue under the unit lock */
    }
}

/* Drops a reference; the last completes the IRP with the SRB's status and frees the request. */
void StorpReleaseRequest(PSTORP_REQUEST req)
{
    PIRP irp = req->Irp;
    PSCSI_REQUEST_BLOCK srb = req->Srb;

    if (atomic_fetch_sub(&req->Refs, 1) != 1)
        return;
    irp->IoStatus.Status = StorpSrbStatusToNtStatus(srb);
    irp->IoStatus.Information = NT_SUCCESS(irp->IoStatus.Status) ? srb->DataTransferLength : 0;
    irp->Tail.Overlay.DriverContext[0] = NULL;
    ExFreeToNPagedLookasideList(&req->Unit->Adapter->RequestLookaside, req);
    IoCompleteRequest(irp, IO_NO_INCREMENT);
}

/* Clears the IRP's cancel routine. When IoCancelIrp has already taken it, the cancel routine
 * runs (or is running) with its own reference and drops it when done; otherwise the reference
 * the armed routine held is dropped here (never the last: the caller holds one). */
static void StorpDisarmCancel(PSTORP_REQUEST req)
{
    if (req->Cancelable && IoSetCancelRoutine(req->Irp, NULL))
        atomic_fetch_sub(&req->Refs, 1);
}

/* Finishes a request Storport took off its pending queue without sending it (state already
 * StorpRequestCompleted, under the unit lock). */
static void StorpCompleteQueued(PSTORP_REQUEST req, UCHAR SrbStatus)
{
    req->Srb->SrbStatus = SrbStatus;
    StorpDisarmCancel(req);
    StorpReleaseRequest(req);
}

/* Whether a completed SRB freezes its unit's queue: an error, unless the sender said
 * SRB_FLAGS_NO_QUEUE_FREEZE. Aborts and flushes are Storport's own doing and do not freeze. */
static BOOLEAN StorpFreezes(PSCSI_REQUEST_BLOCK srb)
{
    if (srb->SrbFlags & SRB_FLAGS_NO_QUEUE_FREEZE)
        return FALSE;
    switch (SRB_STATUS(srb->SrbStatus)) {
    case SRB_STATUS_SUCCESS:
    case SRB_STATUS_PENDING:
    case SRB_STATUS_ABORTED:
    case SRB_STATUS_REQUEST_FLUSHED:
        return FALSE;
    case SRB_STATUS_DATA_OVERRUN:
        return srb->ScsiStatus != SCSISTAT_GOOD;
    default:
        return TRUE;
    }
}

/* SRB_STATUS_BUSY, or QUEUE FULL from the device: Storport sends it again itself, a few times,
 * once the unit has completed another request (or after a short pause when it holds none). */
static BOOLEAN StorpShouldRequeue(PSTORP_REQUEST req)
{
    PSCSI_REQUEST_BLOCK srb = req->Srb;
    UCHAR status = SRB_STATUS(srb->SrbStatus);
    /* (a request cancelled meanwhile is requeued too: its cancel routine takes it off the queue,
     * or its abort finds it already gone and it runs again) */
    if (!req->Counted || req->BusyRetries >= STORP_BUSY_RETRIES)
        return FALSE;
    return status == SRB_STATUS_BUSY ||
           (status == SRB_STATUS_ERROR && srb->ScsiStatus == SCSISTAT_QUEUE_FULL);
}

/* Gives up the request's slot and puts it back at the head of the unit's queue. */
static void StorpRequeue(PSTORP_REQUEST req)
{
    PSTORP_UNIT unit = req->Unit;
    PSTORP_ADAPTER adapter = unit->Adapter;
    PSCSI_REQUEST_BLOCK srb = req->Srb;
    ULONGLONG until = 0;

    srb->SrbStatus = SRB_STATUS_PENDING;
    srb->ScsiStatus = SCSISTAT_GOOD;
    srb->DataTransferLength = req->DataLength;
    srb->SenseInfoBufferLength = req->SenseLength;
    KeAcquireSpinLock(&unit->Lock, NULL);
    RemoveEntryList(&req->Link);
    unit->Outstanding--;
    atomic_fetch_sub(&adapter->Outstanding, 1);
    req->Counted = FALSE;
    req->TimedOut = FALSE;
    req->BusyRetries++;
    atomic_store(&req->State, StorpRequestQueued);
    InsertHeadList(&unit->Pending, &req->Irp->Tail.Overlay.ListEntry);
    if (unit->Outstanding > 0) {
        if (unit->BusyCount == 0)
            unit->BusyCount = 1;
    } else {
        until = KeQueryInterruptTime() + STORP_BUSY_DELAY;
        if (unit->PausedUntil < until)
            unit->PausedUntil = until;
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    if (until)
        StorpArmResume(adapter, until);
}

/* Completes the IRP of a request the miniport finished (or Storport finished for it). */
static void StorpFinishRequest(PSTORP_REQUEST req)
{
    PSTORP_UNIT unit = req->Unit;
    PSTORP_ADAPTER adapter = unit->Adapter;
    PSCSI_REQUEST_BLOCK srb = req->Srb;
    BOOLEAN adapter_was_full = FALSE, pending = TRUE;

    if (StorpShouldRequeue(req)) {
        StorpRequeue(req);
        StorpStartPending(unit);
        return;
    }
    if (adapter->Verifier &&
        (srb->SrbStatus != req->DoneSrbStatus || srb->ScsiStatus != req->DoneScsiStatus ||
         srb->DataTransferLength != req->DoneLength))
        StorpVerifierReport(adapter, StorpRuleTouchedAfterCompletion, srb,
                            "status 0x%02X->0x%02X length %u->%u", req->DoneSrbStatus,
                            srb->SrbStatus, req->DoneLength, srb->DataTransferLength);
    if (SRB_STATUS(srb->SrbStatus) == SRB_STATUS_PENDING) {
        /* A miniport must set a final status before completing. */
        StorpVerifierReport(adapter, StorpRulePendingStatus, srb, "made SRB_STATUS_ERROR");
        srb->SrbStatus = SRB_STATUS_ERROR;
    }
    if (req->TimedOut && (SRB_STATUS(srb->SrbStatus) == SRB_STATUS_ABORTED ||
                          SRB_STATUS(srb->SrbStatus) == SRB_STATUS_BUS_RESET)) {
        /* ended by error recovery after its timeout: the sender learns it timed out */
        srb->SrbStatus =
            (UCHAR)(SRB_STATUS_TIMEOUT | (srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID));
    }
    if (req->Counted) {
        unsigned busy = atomic_load(&adapter->BusyCount);
        while (busy && !atomic_compare_exchange_weak(&adapter->BusyCount, &busy, busy - 1))
            ;
        KeAcquireSpinLock(&unit->Lock, NULL);
        RemoveEntryList(&req->Link);
        unit->Outstanding--;
        unit->Completions++; /* the idle timer's activity count */
        if (unit->BusyCount)
            unit->BusyCount--;
        if (StorpFreezes(srb)) {
            /* the class driver sees SRB_STATUS_QUEUE_FROZEN and sends RELEASE_QUEUE */
            unit->Frozen = TRUE;
            unit->Freezes++;
            srb->SrbStatus |= SRB_STATUS_QUEUE_FROZEN;
        }
        adapter_was_full =
            atomic_fetch_sub(&adapter->Outstanding, 1) >= adapter->Config.MaxNumberOfIO || busy;
        pending = !IsListEmpty(&unit->Pending);
        KeReleaseSpinLock(&unit->Lock, 0);
    }
    StorpDisarmCancel(req);
    StorpReleaseRequest(req);
    if (adapter_was_full)
        StorpStartAllPending(adapter);
    else if (pending)
        StorpStartPending(unit);
}

/* StorPortNotification(RequestComplete): exactly once per request. */
void StorpCompleteSrb(PSTORP_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    PSTORP_REQUEST req = Srb ? StorpRequestFromSrb(Srb) : NULL;
    int expected = StorpRequestAtMiniport;
    STORP_CONTEXT context = StorpCurrentContext();

    if (context == StorpContextFindAdapter || context == StorpContextInitialize) {
        StorpVerifierReport(Adapter, StorpRuleWrongContext, NULL,
                            "RequestComplete of SRB %p in HwStor%s", (void *)Srb,
                            context == StorpContextFindAdapter ? "FindAdapter" : "Initialize");
        return;
    }
    if (!req || req->Srb != Srb || req->Unit->Adapter != Adapter) {
        StorpVerifierReport(Adapter, StorpRuleForeignSrb, NULL, "SRB %p ignored", (void *)Srb);
        return;
    }
    if (!atomic_compare_exchange_strong(&req->State, &expected, StorpRequestCompleted)) {
        StorpVerifierReport(Adapter, StorpRuleDoubleCompletion, NULL,
                            "SRB %p, the second RequestComplete ignored", (void *)Srb);
        return;
    }
    if (Srb->DataTransferLength > req->DataLength ||
        ((Srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID) &&
         Srb->SenseInfoBufferLength > req->SenseLength)) {
        StorpVerifierReport(Adapter, StorpRuleLimits, Srb,
                            "data %u of %u bytes, sense %u of %u: clamped", Srb->DataTransferLength,
                            req->DataLength, Srb->SenseInfoBufferLength, req->SenseLength);
        if (Srb->DataTransferLength > req->DataLength)
            Srb->DataTransferLength = req->DataLength;
        if (Srb->SenseInfoBufferLength > req->SenseLength)
            Srb->SenseInfoBufferLength = req->SenseLength;
    }
    req->DoneSrbStatus = Srb->SrbStatus;
    req->DoneScsiStatus = Srb->ScsiStatus;
    req->DoneLength = Srb->DataTransferLength;
    if (StorpLockDepth > 0) {
        /* Inside StartIo or the interrupt lock: complete once this thread releases it. */
        req->NextDeferred = StorpDeferred;
        StorpDeferred = req;
        return;
    }
    StorpFinishRequest(req);
}

/* ---- Cancellation ------------------------------------------------------------------------------
 * An IRP_MJ_SCSI IRP for a queued function (EXECUTE_SCSI, IO_CONTROL) is cancelable while
 * Storport has it. Waiting in the unit's queue, it is taken off and completed with
 * SRB_STATUS_ABORTED (STATUS_CANCELLED). At the miniport, Storport sends it an
 * SRB_FUNCTION_ABORT_COMMAND whose NextSrb is the victim; the miniport completes the victim
 * (SRB_STATUS_ABORTED) and then the abort. The victim's IRP completes once its SRB is completed
 * and the abort is back, so NextSrb stays valid while the miniport looks at it. A cancel racing
 * the request's completion is settled by the references: whichever side drops the last one
 * completes the IRP, once. */

typedef struct _STORP_ABORT {
    SCSI_REQUEST_BLOCK Srb;
    PSTORP_REQUEST Victim;
} STORP_ABORT, *PSTORP_ABORT;

static NTSTATUS StorpAbortDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PSTORP_ABORT abort = Context;
    PSTORP_REQUEST victim = abort->Victim;
    IoFreeIrp(Irp);
    free(abort);
    StorpReleaseRequest(victim);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Sends SRB_FUNCTION_ABORT_COMMAND for a request at the miniport; holds a reference on it until
 * the abort completes. Cancellation is rare: the abort's SRB and IRP are allocated here. */
void StorpSendAbort(PSTORP_REQUEST victim)
{
    PSTORP_UNIT unit = victim->Unit;
    PSTORP_ADAPTER adapter = unit->Adapter;
    PSTORP_ABORT abort = calloc(1, sizeof(*abort));
    PIRP irp = abort ? IoAllocateIrpEx(adapter->Executive, 2, FALSE) : NULL;
    PIO_STACK_LOCATION next;

    if (!irp) {
        /* the request's timeout still ends it */
        free(abort);
        return;
    }
    atomic_fetch_add(&victim->Refs, 1);
    abort->Victim = victim;
    abort->Srb.Length = sizeof(SCSI_REQUEST_BLOCK);
    abort->Srb.Function = SRB_FUNCTION_ABORT_COMMAND;
    abort->Srb.NextSrb = victim->Srb;
    abort->Srb.QueueTag = victim->Srb->QueueTag;
    IoSetNextIrpStackLocation(irp);
    IoSetCompletionRoutine(irp, StorpAbortDone, abort, TRUE, TRUE, TRUE);
    next = IoGetNextIrpStackLocation(irp);
    next->MajorFunction = IRP_MJ_SCSI;
    next->Parameters.Scsi.Srb = &abort->Srb;
    IoSetNextIrpStackLocation(irp);
    next->DeviceObject = unit->DeviceObject ? unit->DeviceObject : adapter->DeviceObject;
    StorpExecuteSrb(unit, irp, &abort->Srb);
}

/* Runs with the armed routine's reference, which it drops at the end. */
static void StorpCancelRequest(PSTORP_REQUEST req)
{
    PSTORP_UNIT unit = req->Unit;
    int state;

    KeAcquireSpinLock(&unit->Lock, NULL);
    state = atomic_load(&req->State);
    if (state == StorpRequestQueued) {
        RemoveEntryList(&req->Irp->Tail.Overlay.ListEntry);
        atomic_store(&req->State, StorpRequestCompleted);
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    if (state == StorpRequestQueued) {
        req->Srb->SrbStatus = SRB_STATUS_ABORTED;
        StorpReleaseRequest(req); /* the queued request's own reference */
    } else if (state == StorpRequestAtMiniport) {
        StorpSendAbort(req);
    }
    StorpReleaseRequest(req);
}

/* The cancel routine (DRIVER_CANCEL): called by IoCancelIrp with the cancel spin lock held. */
static void StorpCancelIrp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PSTORP_REQUEST req = Irp->Tail.Overlay.DriverContext[0];
    IoReleaseCancelSpinLock(Irp->CancelIrql);
    StorpCancelRequest(req);
}

static BOOLEAN StorpCountedFunction(UCHAR Function)
{
    return Function == SRB_FUNCTION_EXECUTE_SCSI || Function == SRB_FUNCTION_IO_CONTROL;
}

/* Runs an SRB for a unit. The IRP's current stack location belongs to Storport. */
NTSTATUS StorpExecuteSrb(PSTORP_UNIT Unit, PIRP Irp, PSCSI_REQUEST_BLOCK Srb)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PSTORP_REQUEST req;
    BOOLEAN start = FALSE, cancelled = FALSE, wake = FALSE;

    if (Srb->Length != sizeof(SCSI_REQUEST_BLOCK)) {
        StorpCompleteIrpWithSrbStatus(Irp, Srb, SRB_STATUS_BAD_SRB_BLOCK_LENGTH);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (Srb->Function == SRB_FUNCTION_EXECUTE_SCSI &&
        (Srb->CdbLength == 0 || Srb->CdbLength > 16 ||
         Srb->DataTransferLength > adapter->Config.MaximumTransferLength ||
         (Srb->DataTransferLength && !Srb->DataBuffer) ||
         (Srb->SenseInfoBufferLength && !Srb->SenseInfoBuffer))) {
        StorpCompleteIrpWithSrbStatus(Irp, Srb, SRB_STATUS_INVALID_REQUEST);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (!adapter->Started || adapter->Removed) {
        StorpCompleteIrpWithSrbStatus(Irp, Srb, SRB_STATUS_NO_HBA);
        return STATUS_DEVICE_DOES_NOT_EXIST;
    }
    req = ExAllocateFromNPagedLookasideList(&adapter->RequestLookaside);
    if (!req) {
        StorpCompleteIrpWithSrbStatus(Irp, Srb, SRB_STATUS_INTERNAL_ERROR);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    /* The SRB extension is the miniport's to initialize, as on Windows: not zeroed per I/O. */
    memset(req, 0, sizeof(*req));
    req->Irp = Irp;
    req->Srb = Srb;
    req->Unit = Unit;
    Srb->PathId = Unit->PathId;
    Srb->TargetId = Unit->TargetId;
    Srb->Lun = Unit->Lun;
    Srb->OriginalRequest = Irp;
    Srb->SrbExtension = adapter->Config.SrbExtensionSize ? req->SrbExtension : NULL;
    Srb->SrbStatus = SRB_STATUS_PENDING;
    Srb->ScsiStatus = SCSISTAT_GOOD;
    if (Srb->TimeOutValue == 0)
        Srb->TimeOutValue = STORP_DEFAULT_TIMEOUT;
    if (Srb->TimeOutValue > STORP_MAX_TIMEOUT)
        Srb->TimeOutValue = STORP_MAX_TIMEOUT;
    req->DataLength = Srb->DataTransferLength;
    req->SenseLength = Srb->SenseInfoBufferLength;
    req->Sg.NumberOfElements = Srb->DataTransferLength ? 1 : 0;
    req->Sg.List[0].PhysicalAddress.QuadPart = (LONGLONG)(ULONG_PTR)Srb->DataBuffer;
    req->Sg.List[0].Length = Srb->DataTransferLength;
    atomic_init(&req->Refs, 1);
    Irp->Tail.Overlay.DriverContext[0] = req;
    IoMarkIrpPending(Irp);

    if (!StorpCountedFunction(Srb->Function)) {
        /* management functions (flush, shutdown, resets) do not wait behind queued I/O */
        StorpStartRequest(req);
        return STATUS_PENDING;
    }
    /* The IRP is cancelable from here on (see StorpCancelIrp). The routine is armed under the
     * unit lock, which the cancel routine takes first, so it sees the request queued or sent. */
    KeAcquireSpinLock(&Unit->Lock, NULL);
    req->Cancelable = TRUE;
    atomic_store(&req->Refs, 2);
    IoSetCancelRoutine(Irp, StorpCancelIrp);
    if (Irp->Cancel && IoSetCancelRoutine(Irp, NULL)) {
        /* cancelled before it got here: IoCancelIrp found no routine to call */
        req->Cancelable = FALSE;
        atomic_store(&req->Refs, 1);
        atomic_store(&req->State, StorpRequestCompleted);
        cancelled = TRUE;
    } else if ((IsListEmpty(&Unit->Pending) || Srb == &Unit->Power.Srb ||
                (Srb->SrbFlags &
                 (SRB_FLAGS_BYPASS_FROZEN_QUEUE | SRB_FLAGS_BYPASS_LOCKED_QUEUE))) &&
               StorpMayStart(Unit, Srb, KeQueryInterruptTime()) && StorpTakeSlot(Unit, req)) {
        atomic_store(&req->State, StorpRequestAtMiniport);
        start = TRUE;
    } else {
        atomic_store(&req->State, StorpRequestQueued);
        InsertTailList(&Unit->Pending, &Irp->Tail.Overlay.ListEntry);
        /* held by a powered-down unit: ask for D0 unless a transition is under way (its end
         * looks at the queue and powers up) */
        if (Unit->PowerLocked && !Unit->PowerBusy) {
            Unit->PowerBusy = TRUE;
            wake = TRUE;
        }
    }
    KeReleaseSpinLock(&Unit->Lock, 0);
    if (wake)
        StorpWake(Unit);
    if (cancelled)
        StorpCompleteQueued(req, SRB_STATUS_ABORTED);
    else if (start)
        StorpStartRequest(req);
    return STATUS_PENDING;
}

/* An IRP for an SRB Storport sends itself, owned by the I/O manager (freed at completion), with
 * Storport's stack location set up for IRP_MJ_SCSI at the unit. The caller says how it learns of
 * the completion (UserEvent/UserIosb or UserCompletion), then calls StorpExecuteSrb. */
PIRP StorpAllocateSrbIrp(PSTORP_UNIT Unit, PSCSI_REQUEST_BLOCK Srb)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PIRP irp = IoAllocateIrpEx(adapter->Executive, 1, FALSE);
    if (!irp)
        return NULL;
    irp->Flags |= IRP_IO_MANAGER_OWNED;
    IoSetNextIrpStackLocation(irp);
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = Srb;
    sp->DeviceObject = Unit->DeviceObject ? Unit->DeviceObject : adapter->DeviceObject;
    return irp;
}

/* Sends an SRB built by Storport itself (bus scan, property queries) and waits for it. */
NTSTATUS StorpSendSrbSynchronous(PSTORP_UNIT Unit, PSCSI_REQUEST_BLOCK Srb)
{
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    PIRP irp = StorpAllocateSrbIrp(Unit, Srb);

    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp->UserEvent = &event;
    irp->UserIosb = &iosb;
    StorpExecuteSrb(Unit, irp, Srb);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    KeDeleteEvent(&event);
    return iosb.Status;
}

/* ---- Queue functions and dispatch ------------------------------------------------------------ */

static void StorpFlushPending(PSTORP_UNIT unit)
{
    LIST_ENTRY flushed;
    InitializeListHead(&flushed);
    KeAcquireSpinLock(&unit->Lock, NULL);
    while (!IsListEmpty(&unit->Pending)) {
        PLIST_ENTRY e = RemoveHeadList(&unit->Pending);
        PIRP irp = CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry);
        PSTORP_REQUEST req = irp->Tail.Overlay.DriverContext[0];
        atomic_store(&req->State, StorpRequestCompleted);
        InsertTailList(&flushed, e);
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    while (!IsListEmpty(&flushed)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(&flushed), IRP, Tail.Overlay.ListEntry);
        StorpCompleteQueued(irp->Tail.Overlay.DriverContext[0], SRB_STATUS_REQUEST_FLUSHED);
    }
}

/* IRP_MJ_SCSI at a unit's PDO: the SRB interface with class drivers. */
NTSTATUS StorpDispatchScsi(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PSCSI_REQUEST_BLOCK srb = sp->Parameters.Scsi.Srb;
    STORP_COMMON *common = DeviceObject->DeviceExtension;
    PSTORP_UNIT unit;
    NTSTATUS status = STATUS_SUCCESS;

    if (common->Signature != STORP_UNIT_SIGNATURE || !srb) {
        /* SRBs go to logical units; the adapter FDO takes none. */
        Irp->IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    unit = ((PSTORP_PDO_EXTENSION)DeviceObject->DeviceExtension)->Unit;
    if (unit->Removed || !unit->Present) {
        StorpCompleteIrpWithSrbStatus(Irp, srb, SRB_STATUS_NO_DEVICE);
        return STATUS_DEVICE_DOES_NOT_EXIST;
    }

    switch (srb->Function) {
    case SRB_FUNCTION_EXECUTE_SCSI:
    case SRB_FUNCTION_IO_CONTROL:
    case SRB_FUNCTION_FLUSH:
    case SRB_FUNCTION_SHUTDOWN:
    case SRB_FUNCTION_RESET_LOGICAL_UNIT:
    case SRB_FUNCTION_RESET_DEVICE:
    case SRB_FUNCTION_ABORT_COMMAND:
        return StorpExecuteSrb(unit, Irp, srb);

    case SRB_FUNCTION_CLAIM_DEVICE:
        /* Negotiating claim and release: one claimant at a time; the PDO comes back in
         * DataBuffer, as class drivers expect. */
        KeAcquireSpinLock(&unit->Lock, NULL);
        if (unit->ClaimedBy) {
            srb->SrbStatus = SRB_STATUS_BUSY;
            status = STATUS_DEVICE_BUSY;
        } else {
            unit->ClaimedBy = srb->DataBuffer ? (PDEVICE_OBJECT)srb->DataBuffer : DeviceObject;
            srb->DataBuffer = DeviceObject;
            srb->SrbStatus = SRB_STATUS_SUCCESS;
        }
        KeReleaseSpinLock(&unit->Lock, 0);
        break;
    case SRB_FUNCTION_RELEASE_DEVICE:
        KeAcquireSpinLock(&unit->Lock, NULL);
        unit->ClaimedBy = NULL;
        KeReleaseSpinLock(&unit->Lock, 0);
        srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    case SRB_FUNCTION_RELEASE_QUEUE:
        /* Unfreezes the queue (a queue that is not frozen is simply restarted). */
        KeAcquireSpinLock(&unit->Lock, NULL);
        unit->Frozen = FALSE;
        KeReleaseSpinLock(&unit->Lock, 0);
        srb->SrbStatus = SRB_STATUS_SUCCESS;
        StorpStartPending(unit);
        break;
    case SRB_FUNCTION_FLUSH_QUEUE:
        /* Completes what waits with SRB_STATUS_REQUEST_FLUSHED and unfreezes the queue. */
        StorpFlushPending(unit);
        KeAcquireSpinLock(&unit->Lock, NULL);
        unit->Frozen = FALSE;
        KeReleaseSpinLock(&unit->Lock, 0);
        srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    case SRB_FUNCTION_LOCK_QUEUE:
    case SRB_FUNCTION_UNLOCK_QUEUE:
        /* While locked (power transitions), only SRB_FLAGS_BYPASS_LOCKED_QUEUE requests start. */
        KeAcquireSpinLock(&unit->Lock, NULL);
        unit->Locked = srb->Function == SRB_FUNCTION_LOCK_QUEUE;
        KeReleaseSpinLock(&unit->Lock, 0);
        srb->SrbStatus = SRB_STATUS_SUCCESS;
        if (srb->Function == SRB_FUNCTION_UNLOCK_QUEUE)
            StorpStartPending(unit);
        break;
    default:
        srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

/* ---- Timeouts ----------------------------------------------------------------------------------
 */

static void StorpTick(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PSTORP_ADAPTER adapter = Context;
    ULONGLONG now = KeQueryInterruptTime();
    BOOLEAN recover = FALSE, idle = FALSE;

    KeAcquireSpinLock(&adapter->UnitLock, NULL);
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (!unit)
            continue;
        KeAcquireSpinLock(&unit->Lock, NULL);
        for (PLIST_ENTRY e = unit->OutstandingList.Flink; e != &unit->OutstandingList;
             e = e->Flink) {
            PSTORP_REQUEST req = CONTAINING_RECORD(e, STORP_REQUEST, Link);
            if (atomic_load(&req->State) != StorpRequestAtMiniport)
                continue;
            if (!req->TimedOut && req->Deadline <= now) {
                req->TimedOut = TRUE;
                StorpLogEvent(adapter, unit->PathId, unit->TargetId, unit->Lun, SP_REQUEST_TIMEOUT,
                              req->Srb->TimeOutValue, req->Srb, "storport",
                              "request timed out after %u s", req->Srb->TimeOutValue);
            }
            recover |= req->TimedOut;
        }
        idle |= StorpIdleTick(unit);
        KeReleaseSpinLock(&unit->Lock, 0);
    }
    KeReleaseSpinLock(&adapter->UnitLock, 0);
    if (idle)
        StorpIdlePowerDown(adapter);
    /* Error recovery (recovery.c) runs on a worker thread: its tiers wait for the miniport. */
    if (recover)
        StorpStartRecovery(adapter);
}

/* The resume timer's DPC: a pause or busy delay has ended somewhere; restart the queues and
 * re-arm for the next pause still running. */
static void StorpResumeDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PSTORP_ADAPTER adapter = Context;
    ULONGLONG now = KeQueryInterruptTime(), next = 0;
    ULONGLONG until = atomic_load(&adapter->PausedUntil);

    if (until && until <= now)
        atomic_compare_exchange_strong(&adapter->PausedUntil, &until, 0);
    else if (until)
        next = until;
    KeAcquireSpinLock(&adapter->UnitLock, NULL);
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (!unit)
            continue;
        KeAcquireSpinLock(&unit->Lock, NULL);
        if (unit->PausedUntil && unit->PausedUntil <= now)
            unit->PausedUntil = 0;
        else if (unit->PausedUntil && (!next || unit->PausedUntil < next))
            next = unit->PausedUntil;
        KeReleaseSpinLock(&unit->Lock, 0);
    }
    KeReleaseSpinLock(&adapter->UnitLock, 0);
    if (next)
        StorpArmResume(adapter, next);
    StorpStartAllPending(adapter);
}

/* Restarts the queues from a DPC: for miniport services (StorPortResume, StorPortReady...) that
 * may be called under a Storport lock, where starting requests inline would deadlock. */
static void StorpRestartDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    StorpStartAllPending(Context);
}

void StorpRestartQueues(PSTORP_ADAPTER Adapter)
{
    if (StorpLockDepth > 0)
        KeInsertQueueDpc(&Adapter->RestartDpc, NULL, NULL);
    else
        StorpStartAllPending(Adapter);
}

/* Arms the resume timer for an interrupt time (the earliest pause end wins the next DPC, which
 * re-arms for later ones). */
void StorpArmResume(PSTORP_ADAPTER Adapter, ULONGLONG Until)
{
    ULONGLONG now = KeQueryInterruptTime();
    LARGE_INTEGER due = {.QuadPart = -(LONGLONG)(Until > now ? Until - now : 1)};
    KeSetTimerEx(&Adapter->ResumeTimer, due, 0, &Adapter->ResumeDpc);
}

void StorpStartTick(PSTORP_ADAPTER Adapter)
{
    LARGE_INTEGER due = {.QuadPart = -10000000LL};
    KeInitializeDpcEx(Adapter->Executive, &Adapter->ResumeDpc, StorpResumeDpc, Adapter);
    KeInitializeDpcEx(Adapter->Executive, &Adapter->RestartDpc, StorpRestartDpc, Adapter);
    KeInitializeTimerEx(Adapter->Executive, &Adapter->ResumeTimer);
    KeInitializeDpcEx(Adapter->Executive, &Adapter->TickDpc, StorpTick, Adapter);
    KeInitializeTimerEx(Adapter->Executive, &Adapter->TickTimer);
    KeSetTimerEx(&Adapter->TickTimer, due, 1000, &Adapter->TickDpc);
}

void StorpStopTick(PSTORP_ADAPTER Adapter)
{
    KeCancelTimer(&Adapter->TickTimer);
    KeRemoveQueueDpc(&Adapter->TickDpc);
    KeCancelTimer(&Adapter->ResumeTimer);
    KeRemoveQueueDpc(&Adapter->ResumeDpc);
    KeRemoveQueueDpc(&Adapter->RestartDpc);
    if (Adapter->HwTimer.Executive) { /* only once the miniport asked for RequestTimerCall */
        KeCancelTimer(&Adapter->HwTimer);
        KeRemoveQueueDpc(&Adapter->HwTimerDpc);
    }
    /* a tick or timer DPC already running finishes before the adapter's state goes away */
    KeFlushQueuedDpcsEx(Adapter->Executive);
}

/* StorPortCompleteRequest: the miniport completes every outstanding request of an address
 * (SP_UNTAGGED, 0xFF, as a wildcard) with one status, typically after a reset. */
void StorPortCompleteRequest(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                             UCHAR SrbStatus)
{
    StorpCompleteOutstanding(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun,
                             SrbStatus);
}

/* Completes every request of an address (0xFF: any) still at the miniport with one status. */
void StorpCompleteOutstanding(PSTORP_ADAPTER adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                              UCHAR SrbStatus)
{
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        KeAcquireSpinLock(&adapter->UnitLock, NULL);
        PSTORP_UNIT unit = adapter->UnitTable[i];
        KeReleaseSpinLock(&adapter->UnitLock, 0);
        if (!unit || (PathId != 0xFF && unit->PathId != PathId) ||
            (TargetId != 0xFF && unit->TargetId != TargetId) || (Lun != 0xFF && unit->Lun != Lun))
            continue;
        for (;;) {
            PSCSI_REQUEST_BLOCK srb = NULL;
            KeAcquireSpinLock(&unit->Lock, NULL);
            for (PLIST_ENTRY e = unit->OutstandingList.Flink; e != &unit->OutstandingList;
                 e = e->Flink) {
                PSTORP_REQUEST req = CONTAINING_RECORD(e, STORP_REQUEST, Link);
                if (atomic_load(&req->State) == StorpRequestAtMiniport) {
                    srb = req->Srb;
                    break;
                }
            }
            KeReleaseSpinLock(&unit->Lock, 0);
            if (!srb)
                break;
            srb->SrbStatus = SrbStatus;
            StorpCompleteSrb(adapter, srb);
        }
    }
}

/* ---- Resets from above --------------------------------------------------------------------------
 * IOCTL_STORAGE_RESET_DEVICE, IOCTL_STORAGE_RESET_BUS and error recovery (recovery.c). After the
 * miniport acknowledges a reset, whatever it still holds for the reset scope is completed with
 * SRB_STATUS_BUS_RESET: a request the miniport already completed is skipped (the state check in
 * StorpCompleteSrb), so every request in flight completes exactly once and the class driver
 * retries it. */

/* StorpResetUnit (LUN and target reset SRBs, with their own time limit) is in recovery.c. */

/* HwStorResetBus for one path, under the StartIo lock. */
NTSTATUS StorpResetBus(PSTORP_ADAPTER Adapter, UCHAR PathId)
{
    PHW_RESET_BUS reset = Adapter->Driver->Init.HwResetBus;
    BOOLEAN ok;

    if (!reset)
        return STATUS_NOT_SUPPORTED;
    if (PathId >= Adapter->Config.NumberOfBuses)
        return STATUS_INVALID_PARAMETER;
    StorpEnterLock();
    KeAcquireSpinLock(&Adapter->StartIoLock, NULL);
    ok = reset(Adapter->HwDeviceExtension, PathId);
    KeReleaseSpinLock(&Adapter->StartIoLock, 0);
    StorpLeaveLock();
    StorpLogEvent(Adapter, PathId, 0xFF, 0xFF, STORP_EVENT_BUS_RESET, ok, NULL, "storport",
                  "bus reset: %s", ok ? "done" : "failed");
    if (!ok)
        return STATUS_IO_DEVICE_ERROR;
    StorpCompleteOutstanding(Adapter, PathId, 0xFF, 0xFF, SRB_STATUS_BUS_RESET);
    return STATUS_SUCCESS;
}
