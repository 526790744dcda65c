/*
 * testport: a Storport virtual miniport written against storport.h for the integration tests
 * (testport.h). HwStorFindAdapter creates a RAM-backed disk from devices/; HwStorBuildIo runs
 * every SCSI command unsynchronized, injecting the armed fault or handing the command to the
 * device, whose completion calls StorPortNotification(RequestComplete); HwStorStartIo answers the
 * management SRBs; HwStorResetBus completes a dropped request with SRB_STATUS_BUS_RESET through
 * StorPortCompleteRequest. Adapter parameters come from the adapter's Device Parameters key:
 * MaximumTransferLength and NumberOfPhysicalBreaks (REG_DWORD).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/storport.h>

#include "devices/scsi_lu.h"
#include "testport.h"

struct testport_faults testport_faults;

/* The SRBs hold mode keeps, with their adapter. A test miniport may use a process-wide table:
 * one testport adapter exists at a time. */
#define TP_MAX_HELD 256
static pthread_mutex_t TpHeldLock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    PVOID Adapter;
    PSCSI_REQUEST_BLOCK Srb;
} TpHeld[TP_MAX_HELD];

typedef struct _TP_ADAPTER {
    struct backend *Backend;
    struct scsi_lu *Lu;
    struct scsi_target *Target;
    STOR_DPC Dpc;
    PVOID Timer;
    PVOID Worker;
    PSCSI_REQUEST_BLOCK Deferred; /* the read the timer or work item runs */
} TP_ADAPTER, *PTP_ADAPTER;

typedef struct _TP_SRB_EXTENSION {
    struct scsi_cmd Cmd;
    struct iovec Iov[1];
    PTP_ADAPTER Adapter;
    PSCSI_REQUEST_BLOCK Srb;
    BOOLEAN Overrun; /* report more data than the SRB had room for (verifier rule 8) */
} TP_SRB_EXTENSION, *PTP_SRB_EXTENSION;

void testport_reset_faults(void)
{
    atomic_store(&testport_faults.busy_reads, 0);
    atomic_store(&testport_faults.attention_reads, 0);
    atomic_store(&testport_faults.medium_error, 0);
    atomic_store(&testport_faults.drop_reads, 0);
    atomic_store(&testport_faults.double_complete, 0);
    atomic_store(&testport_faults.reads_seen, 0);
    atomic_store(&testport_faults.resets, 0);
    atomic_store(&testport_faults.reset_completed, 0);
    atomic_store(&testport_faults.max_transfer, 0);
    atomic_store(&testport_faults.srbs_seen, 0);
    atomic_store(&testport_faults.stops_seen, 0);
    atomic_store(&testport_faults.starts_seen, 0);
    atomic_store(&testport_faults.hold_ios, 0);
    atomic_store(&testport_faults.aborts_seen, 0);
    atomic_store(&testport_faults.aborts_found, 0);
    atomic_store(&testport_faults.lun_resets, 0);
    atomic_store(&testport_faults.target_resets, 0);
    atomic_store(&testport_faults.reset_victims, 0);
    atomic_store(&testport_faults.attention_on_reset, 0);
    atomic_store(&testport_faults.queue_full_reads, 0);
    atomic_store(&testport_faults.pause_device_on_read, 0);
    atomic_store(&testport_faults.refuse_abort, 0);
    atomic_store(&testport_faults.refuse_lun_reset, 0);
    atomic_store(&testport_faults.refuse_target_reset, 0);
    atomic_store(&testport_faults.refuse_bus_reset, 0);
    atomic_store(&testport_faults.refuse_restart, 0);
    atomic_store(&testport_faults.adapter_restarts, 0);
    atomic_store(&testport_faults.hang_lun_reset, 0);
    atomic_store(&testport_faults.hung_reset_completed, 0);
    atomic_store(&testport_faults.break_rule, 0);
}

static void TpTimer(PVOID DeviceExtension) {}

/* The adapter the queue-management calls act on: the last one found. */
static _Atomic(PVOID) TpLastAdapter;

BOOLEAN testport_resume_device(void)
{
    return StorPortResumeDevice(atomic_load(&TpLastAdapter), 0, 0, 0);
}

BOOLEAN testport_pause_adapter(ULONG seconds)
{
    return StorPortPause(atomic_load(&TpLastAdapter), seconds);
}

BOOLEAN testport_resume_adapter(void)
{
    return StorPortResume(atomic_load(&TpLastAdapter));
}

BOOLEAN testport_state_change(ULONG changed_entity)
{
    STOR_ADDR_BTL8 addr = {.Path = 0, .Target = 0, .Lun = 0};
    return StorPortStateChangeDetected(atomic_load(&TpLastAdapter), changed_entity, &addr, 0, NULL,
                                       NULL);
}

BOOLEAN testport_device_busy(ULONG requests_to_complete)
{
    return StorPortDeviceBusy(atomic_load(&TpLastAdapter), 0, 0, 0, requests_to_complete);
}

static BOOLEAN TpHold(PVOID a, PSCSI_REQUEST_BLOCK srb)
{
    BOOLEAN held = FALSE;
    pthread_mutex_lock(&TpHeldLock);
    for (int i = 0; i < TP_MAX_HELD && !held; i++)
        if (!TpHeld[i].Srb) {
            TpHeld[i].Adapter = a;
            TpHeld[i].Srb = srb;
            held = TRUE;
        }
    pthread_mutex_unlock(&TpHeldLock);
    if (held)
        atomic_fetch_add(&testport_faults.held, 1);
    return held;
}

/* Takes the first held SRB that matches (victim, or any of target/lun; -1 = any). */
static PSCSI_REQUEST_BLOCK TpUnhold(PSCSI_REQUEST_BLOCK victim, int target, int lun, PVOID *a)
{
    PSCSI_REQUEST_BLOCK srb = NULL;
    pthread_mutex_lock(&TpHeldLock);
    for (int i = 0; i < TP_MAX_HELD && !srb; i++) {
        PSCSI_REQUEST_BLOCK s = TpHeld[i].Srb;
        if (!s || (victim && s != victim) || (target >= 0 && s->TargetId != target) ||
            (lun >= 0 && s->Lun != lun))
            continue;
        srb = s;
        if (a)
            *a = TpHeld[i].Adapter;
        TpHeld[i].Srb = NULL;
    }
    pthread_mutex_unlock(&TpHeldLock);
    if (srb)
        atomic_fetch_sub(&testport_faults.held, 1);
    return srb;
}

/* Takes one from a counter of armed faults; TRUE when one was armed. */
static BOOLEAN TpTake(atomic_int *armed)
{
    int n = atomic_load(armed);
    while (n > 0)
        if (atomic_compare_exchange_weak(armed, &n, n - 1))
            return TRUE;
    return FALSE;
}

static ULONG TpReadDword(PVOID ext, PCSTR name, ULONG fallback)
{
    ULONG v = 0;
    PVOID data = &v;
    USHORT len = sizeof(v);
    if (StorPortRegistryReadAdapterKey(ext, NULL, name, MINIPORT_REG_DWORD, &data, &len) !=
        STOR_STATUS_SUCCESS)
        return fallback;
    return v;
}

static void TpFreeResources(PVOID DeviceExtension)
{
    PTP_ADAPTER a = DeviceExtension;
    if (a->Timer)
        StorPortFreeTimer(a, a->Timer);
    if (a->Worker)
        StorPortFreeWorkItem(a, a->Worker);
    a->Timer = a->Worker = NULL;
    if (a->Target)
        scsi_target_destroy(a->Target);
    if (a->Backend)
        be_destroy(a->Backend);
    if (a->Lu)
        scsi_lu_destroy(a->Lu);
    a->Target = NULL;
    a->Backend = NULL;
    a->Lu = NULL;
}

static ULONG TpHwFindAdapter(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                             PVOID LowerDevice, PCSTR ArgumentString,
                             PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Again)
{
    PTP_ADAPTER a = DeviceExtension;
    struct scsi_disk_config cfg = {.device_id = 0x7E57, .block_size = 512, .write_cache = true};

    memset(a, 0, sizeof(*a));
    if (be_ram_create(TESTPORT_DISK_SIZE, &a->Backend) < 0 ||
        scsi_disk_create(&cfg, a->Backend, &a->Lu) < 0 || !(a->Target = scsi_target_create()) ||
        scsi_target_add_lu(a->Target, 0, a->Lu) < 0) {
        TpFreeResources(a);
        return SP_RETURN_ERROR;
    }
    ConfigInfo->MaximumTransferLength = TpReadDword(a, "MaximumTransferLength", 256 * 1024);
    ConfigInfo->NumberOfPhysicalBreaks = TpReadDword(a, "NumberOfPhysicalBreaks", 65);
    ConfigInfo->AlignmentMask = 0;
    ConfigInfo->NumberOfBuses = 1;
    ConfigInfo->MaximumNumberOfTargets = 1;
    ConfigInfo->MaximumNumberOfLogicalUnits = 1;
    ConfigInfo->ScatterGather = TRUE;
    ConfigInfo->TaggedQueuing = TRUE;
    ConfigInfo->MultipleRequestPerLu = TRUE;
    ConfigInfo->AutoRequestSense = TRUE;
    ConfigInfo->SynchronizationModel = StorSynchronizeFullDuplex;
    ConfigInfo->InitialLunQueueDepth = 32;
    ConfigInfo->MaxNumberOfIO = 256;
    ConfigInfo->VirtualDevice = TRUE;
    *Again = FALSE;
    atomic_store(&TpLastAdapter, a);
    if (atomic_exchange(&testport_faults.timer_in_find_adapter, 0))
        StorPortNotification(RequestTimerCall, a, TpTimer, (ULONG)1000);
    return SP_RETURN_FOUND;
}

static void TpExecute(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb);

static void TpDpcRoutine(PSTOR_DPC Dpc, PVOID DeviceExtension, PVOID Arg1, PVOID Arg2)
{
    STOR_LOCK_HANDLE lock;
    StorPortAcquireSpinLock(DeviceExtension, DpcLock, Dpc, &lock);
    atomic_store(&testport_faults.dpc_lock_held, lock.Context != NULL);
    atomic_fetch_add(&testport_faults.deferred_runs, 1);
    TpExecute(DeviceExtension, Arg1);
    StorPortReleaseSpinLock(DeviceExtension, &lock);
}

static void TpTimerRoutine(PVOID DeviceExtension, PVOID Context)
{
    atomic_fetch_add(&testport_faults.deferred_runs, 1);
    TpExecute(DeviceExtension, Context);
}

static void TpWorkRoutine(PVOID DeviceExtension, PVOID Context, PVOID Worker)
{
    atomic_fetch_add(&testport_faults.deferred_runs, 1);
    TpExecute(DeviceExtension, Context);
}

/* Hands a read to the deferred-work service the test chose; FALSE when it could not. */
static BOOLEAN TpDefer(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb, int via)
{
    switch (via) {
    case 1:
        return StorPortIssueDpc(a, &a->Dpc, Srb, NULL);
    case 2:
        return StorPortRequestTimer(a, a->Timer, TpTimerRoutine, Srb, 2000, 0) ==
               STOR_STATUS_SUCCESS;
    case 3:
        return StorPortQueueWorkItem(a, TpWorkRoutine, a->Worker, Srb) == STOR_STATUS_SUCCESS;
    default:
        return FALSE;
    }
}

static BOOLEAN TpHwInitialize(PVOID DeviceExtension)
{
    PTP_ADAPTER a = DeviceExtension;
    StorPortInitializeDpc(a, &a->Dpc, TpDpcRoutine);
    if (StorPortInitializeTimer(a, &a->Timer) != STOR_STATUS_SUCCESS ||
        StorPortInitializeWorkItem(a, &a->Worker) != STOR_STATUS_SUCCESS)
        return FALSE;
    if (atomic_load(&testport_faults.concurrent_channels)) {
        PERF_CONFIGURATION_DATA perf = {.Version = STOR_PERF_VERSION, .Size = sizeof(perf)};
        StorPortInitializePerfOpts(a, TRUE, &perf);
        atomic_store(&testport_faults.perf_query_flags, perf.Flags);
        perf.Flags = STOR_PERF_CONCURRENT_CHANNELS;
        perf.ConcurrentChannels = 2;
        atomic_store(&testport_faults.perf_set_status, StorPortInitializePerfOpts(a, FALSE, &perf));
    }
    return TRUE;
}

static void TpComplete(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK srb)
{
    StorPortNotification(RequestComplete, a, srb);
}

/* Fixed-format sense (SPC-4 4.5.3) into the SRB's sense buffer, CHECK CONDITION. */
static void TpCheckCondition(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK srb, UCHAR key, UCHAR asc,
                             UCHAR ascq)
{
    UCHAR sense[18] = {0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq};
    srb->ScsiStatus = SCSISTAT_CHECK_CONDITION;
    srb->SrbStatus = SRB_STATUS_ERROR;
    srb->DataTransferLength = 0;
    if (srb->SenseInfoBuffer && srb->SenseInfoBufferLength &&
        !(srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE)) {
        UCHAR n = srb->SenseInfoBufferLength < sizeof(sense) ? srb->SenseInfoBufferLength
                                                             : (UCHAR)sizeof(sense);
        memcpy(srb->SenseInfoBuffer, sense, n);
        srb->SenseInfoBufferLength = n;
        srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
    }
    TpComplete(a, srb);
}

static void TpCommandDone(struct scsi_cmd *cmd)
{
    PTP_SRB_EXTENSION x = CONTAINING_RECORD(cmd, TP_SRB_EXTENSION, Cmd);
    PSCSI_REQUEST_BLOCK srb = x->Srb;
    PTP_ADAPTER a = x->Adapter;
    BOOLEAN twice = cmd->context != NULL;

    srb->ScsiStatus = cmd->status;
    if (cmd->status == SAM_STAT_GOOD) {
        srb->SrbStatus = cmd->transferred < srb->DataTransferLength ? SRB_STATUS_DATA_OVERRUN
                                                                    : SRB_STATUS_SUCCESS;
        srb->DataTransferLength = cmd->transferred + (x->Overrun ? 512 : 0);
    } else {
        srb->SrbStatus = SRB_STATUS_ERROR;
        srb->DataTransferLength = cmd->transferred;
        if (cmd->status == SAM_STAT_CHECK_CONDITION && cmd->sense_len && srb->SenseInfoBuffer &&
            srb->SenseInfoBufferLength && !(srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE)) {
            UCHAR n = cmd->sense_len < srb->SenseInfoBufferLength ? cmd->sense_len
                                                                  : srb->SenseInfoBufferLength;
            memcpy(srb->SenseInfoBuffer, cmd->sense, n);
            srb->SenseInfoBufferLength = n;
            srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
        }
    }
    TpComplete(a, srb);
    if (twice)
        TpComplete(a, srb); /* a miniport bug Storport must shrug off */
}

static BOOLEAN TpIsRead(PSCSI_REQUEST_BLOCK srb)
{
    return srb->Cdb[0] == SCSIOP_READ || srb->Cdb[0] == SCSIOP_READ16;
}

static void TpExecute(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb);

static BOOLEAN TpPassiveInit(PVOID DeviceExtension)
{
    return TRUE;
}

/* Breaks one Storport rule on purpose (the verifier's test), then handles the read. */
static BOOLEAN TpBreakRule(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb, int rule)
{
    static SCSI_REQUEST_BLOCK never_given; /* an SRB Storport never sent */
    BOOLEAN enabled;
    switch (rule) {
    case 1: /* completed twice */
        ((PTP_SRB_EXTENSION)Srb->SrbExtension)->Cmd.context = Srb;
        break;
    case 2:
        StorPortNotification(RequestComplete, a, &never_given);
        break;
    case 3: /* written after RequestComplete (the device completes inline) */
        TpExecute(a, Srb);
        Srb->SrbStatus = SRB_STATUS_ERROR;
        return FALSE;
    case 4:
        Srb->SrbStatus = SRB_STATUS_PENDING;
        TpComplete(a, Srb);
        return FALSE;
    case 5:
        StorPortNotification(NextRequest, a);
        break;
    case 6:
        StorPortGetScatterGatherList(a, &never_given);
        break;
    case 7:
        StorPortNotification(EnablePassiveInitialization, a, TpPassiveInit, &enabled);
        break;
    case 8:
        ((PTP_SRB_EXTENSION)Srb->SrbExtension)->Overrun = TRUE;
        break;
    case 9:
        StorPortNotification(NextLuRequest, a, 0, 5, 5);
        break;
    default:
        break;
    }
    TpExecute(a, Srb);
    return FALSE;
}

/* HwStorBuildIo: unsynchronized; every SCSI command is handled (or dropped) here. */
static BOOLEAN TpHwBuildIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    PTP_ADAPTER a = DeviceExtension;
    PTP_SRB_EXTENSION x = Srb->SrbExtension;
    struct scsi_cmd *cmd = &x->Cmd;
    unsigned len = Srb->DataTransferLength, seen;

    if (Srb->Function != SRB_FUNCTION_EXECUTE_SCSI)
        return TRUE;
    atomic_fetch_add(&testport_faults.srbs_seen, 1);
    seen = atomic_load(&testport_faults.max_transfer);
    while (len > seen && !atomic_compare_exchange_weak(&testport_faults.max_transfer, &seen, len))
        ;
    if (Srb->PathId != 0 || Srb->TargetId != 0) {
        Srb->SrbStatus = SRB_STATUS_SELECTION_TIMEOUT;
        TpComplete(a, Srb);
        return FALSE;
    }
    memset(cmd, 0, offsetof(struct scsi_cmd, status));
    x->Overrun = FALSE;
    if (Srb->Cdb[0] == SCSIOP_START_STOP_UNIT)
        atomic_fetch_add(
            (Srb->Cdb[4] & 1) ? &testport_faults.starts_seen : &testport_faults.stops_seen, 1);
    if (TpIsRead(Srb)) {
        atomic_fetch_add(&testport_faults.reads_seen, 1);
        if (TpTake(&testport_faults.drop_reads))
            return FALSE; /* never completed: Storport's timer must notice */
        if (TpTake(&testport_faults.busy_reads)) {
            Srb->SrbStatus = SRB_STATUS_BUSY;
            TpComplete(a, Srb);
            return FALSE;
        }
        if (TpTake(&testport_faults.queue_full_reads)) {
            Srb->ScsiStatus = SCSISTAT_QUEUE_FULL;
            Srb->SrbStatus = SRB_STATUS_ERROR;
            Srb->DataTransferLength = 0;
            TpComplete(a, Srb);
            return FALSE;
        }
        int pause = atomic_exchange(&testport_faults.pause_device_on_read, 0);
        if (pause > 0)
            StorPortPauseDevice(a, 0, 0, 0, (ULONG)pause);
        if (TpTake(&testport_faults.attention_reads)) {
            TpCheckCondition(a, Srb, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00);
            return FALSE;
        }
        if (atomic_load(&testport_faults.medium_error)) {
            TpCheckCondition(a, Srb, SCSI_SENSE_MEDIUM_ERROR, 0x11, 0x00);
            return FALSE;
        }
        if (TpTake(&testport_faults.double_complete))
            cmd->context = cmd; /* marks it for TpCommandDone */
    }
    if (atomic_load(&testport_faults.hold_ios) && TpHold(a, Srb))
        return FALSE; /* until released, aborted or reset */
    if (TpIsRead(Srb) && atomic_load(&testport_faults.complete_via) &&
        TpDefer(a, Srb, atomic_exchange(&testport_faults.complete_via, 0)))
        return FALSE; /* executed by the DPC, timer or work item */
    if (TpIsRead(Srb) && atomic_load(&testport_faults.break_rule))
        return TpBreakRule(a, Srb, atomic_exchange(&testport_faults.break_rule, 0));
    TpExecute(a, Srb);
    return FALSE;
}

/* Hands a command to the device; its completion completes the SRB. */
static void TpExecute(PTP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb)
{
    PTP_SRB_EXTENSION x = Srb->SrbExtension;
    struct scsi_cmd *cmd = &x->Cmd;

    x->Adapter = a;
    x->Srb = Srb;
    cmd->cdb = Srb->Cdb;
    cmd->cdb_len = Srb->CdbLength;
    switch (Srb->SrbFlags & SRB_FLAGS_UNSPECIFIED_DIRECTION) {
    case SRB_FLAGS_DATA_IN:
        cmd->dir = SCSI_DIR_IN;
        break;
    case SRB_FLAGS_DATA_OUT:
        cmd->dir = SCSI_DIR_OUT;
        break;
    default:
        cmd->dir = Srb->DataTransferLength ? SCSI_DIR_UNSPECIFIED : SCSI_DIR_NONE;
        break;
    }
    cmd->xfer_len = Srb->DataTransferLength;
    cmd->done = TpCommandDone;
    if (Srb->DataTransferLength) {
        PSTOR_SCATTER_GATHER_LIST sg = StorPortGetScatterGatherList(a, Srb);
        if (!sg || sg->NumberOfElements != 1) {
            /* this miniport takes one element; Storport describes a buffer with one */
            Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
            TpComplete(a, Srb);
            return;
        }
        x->Iov[0].iov_base = (void *)(ULONG_PTR)sg->List[0].PhysicalAddress.QuadPart;
        x->Iov[0].iov_len = sg->List[0].Length;
        cmd->iov = x->Iov;
        cmd->iovcnt = 1;
    }
    scsi_target_execute(a->Target, Srb->Lun, cmd);
}

int testport_release_held(void)
{
    int n = 0;
    PVOID a;
    PSCSI_REQUEST_BLOCK srb;
    while ((srb = TpUnhold(NULL, -1, -1, &a))) {
        TpExecute(a, srb);
        n++;
    }
    return n;
}

/* The LUN reset kept by hang_lun_reset, until a larger reset completes it or a restart forgets
 * it. */
static _Atomic(PSCSI_REQUEST_BLOCK) TpHungReset;

static void TpCompleteHungReset(PVOID a)
{
    PSCSI_REQUEST_BLOCK hung = atomic_exchange(&TpHungReset, NULL);
    if (hung) {
        hung->SrbStatus = SRB_STATUS_BUS_RESET;
        atomic_fetch_add(&testport_faults.hung_reset_completed, 1);
        TpComplete(a, hung);
    }
}

/* Completes the held SRBs of a reset's scope with SRB_STATUS_BUS_RESET. */
static void TpResetHeld(int target, int lun)
{
    PVOID a;
    PSCSI_REQUEST_BLOCK srb;
    while ((srb = TpUnhold(NULL, target, lun, &a))) {
        srb->SrbStatus = SRB_STATUS_BUS_RESET;
        srb->DataTransferLength = 0;
        atomic_fetch_add(&testport_faults.reset_victims, 1);
        TpComplete(a, srb);
    }
}

/* HwStorStartIo: management SRBs, under the StartIo lock. */
static BOOLEAN TpHwStartIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    PTP_ADAPTER a = DeviceExtension;
    switch (Srb->Function) {
    case SRB_FUNCTION_FLUSH:
    case SRB_FUNCTION_SHUTDOWN:
        Srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    case SRB_FUNCTION_ABORT_COMMAND: {
        /* the victim first, then the abort (SRB_FUNCTION_ABORT_COMMAND's order) */
        PSCSI_REQUEST_BLOCK victim = NULL;
        atomic_fetch_add(&testport_faults.aborts_seen, 1);
        if (!atomic_load(&testport_faults.refuse_abort))
            victim = TpUnhold(Srb->NextSrb, -1, -1, NULL);
        if (victim) {
            atomic_fetch_add(&testport_faults.aborts_found, 1);
            victim->SrbStatus = SRB_STATUS_ABORTED;
            victim->DataTransferLength = 0;
            TpComplete(a, victim);
            Srb->SrbStatus = SRB_STATUS_SUCCESS;
        } else {
            Srb->SrbStatus = SRB_STATUS_ABORT_FAILED;
        }
        break;
    }
    case SRB_FUNCTION_RESET_LOGICAL_UNIT:
    case SRB_FUNCTION_RESET_DEVICE: {
        BOOLEAN lu = Srb->Function == SRB_FUNCTION_RESET_LOGICAL_UNIT;
        atomic_fetch_add(lu ? &testport_faults.lun_resets : &testport_faults.target_resets, 1);
        if (lu && atomic_exchange(&testport_faults.hang_lun_reset, 0)) {
            atomic_store(&TpHungReset, Srb);
            return TRUE; /* never completed by this call */
        }
        if (atomic_load(lu ? &testport_faults.refuse_lun_reset
                           : &testport_faults.refuse_target_reset)) {
            Srb->SrbStatus = SRB_STATUS_ERROR;
            break;
        }
        TpResetHeld(Srb->TargetId, lu ? Srb->Lun : -1);
        if (!lu)
            TpCompleteHungReset(a); /* the target reset covers the hung LUN reset */
        if (atomic_load(&testport_faults.attention_on_reset))
            scsi_lu_set_unit_attention(a->Lu, 0x29, 0x03); /* BUS DEVICE RESET FUNCTION OCCURRED */
        Srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    }
    default:
        Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        break;
    }
    TpComplete(DeviceExtension, Srb);
    return TRUE;
}

/* HwStorResetBus: whatever was dropped is given back, as aborted by the reset. */
static BOOLEAN TpHwResetBus(PVOID DeviceExtension, ULONG PathId)
{
    PTP_ADAPTER a = DeviceExtension;
    atomic_fetch_add(&testport_faults.resets, 1);
    if (atomic_load(&testport_faults.refuse_bus_reset))
        return FALSE;
    TpResetHeld(-1, -1);
    TpCompleteHungReset(a);
    if (atomic_load(&testport_faults.attention_on_reset))
        scsi_lu_set_unit_attention(a->Lu, 0x29, 0x02); /* SCSI BUS RESET OCCURRED */
    StorPortCompleteRequest(DeviceExtension, (UCHAR)PathId, 0xFF, 0xFF, SRB_STATUS_BUS_RESET);
    atomic_fetch_add(&testport_faults.reset_completed, 1);
    StorPortNotification(ResetDetected, DeviceExtension, 0);
    return TRUE;
}

static SCSI_ADAPTER_CONTROL_STATUS
TpHwAdapterControl(PVOID DeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = Parameters;
    switch (ControlType) {
    case ScsiQuerySupportedControlTypes:
        for (ULONG i = 0; i < list->MaxControlType && i < ScsiAdapterControlMax; i++)
            list->SupportedTypeList[i] = i == ScsiQuerySupportedControlTypes ||
                                         i == ScsiStopAdapter || i == ScsiRestartAdapter;
        return ScsiAdapterControlSuccess;
    case ScsiStopAdapter:
        return ScsiAdapterControlSuccess;
    case ScsiRestartAdapter: {
        /* a restarted adapter has forgotten its requests: Storport completes them */
        PVOID held_by;
        atomic_fetch_add(&testport_faults.adapter_restarts, 1);
        if (atomic_load(&testport_faults.refuse_restart))
            return ScsiAdapterControlUnsuccessful;
        while (TpUnhold(NULL, -1, -1, &held_by))
            ;
        atomic_store(&TpHungReset, NULL);
        return ScsiAdapterControlSuccess;
    }
    default:
        return ScsiAdapterControlUnsuccessful;
    }
}

/* HwStorUnitControl: counts unit start, power and removal; the one unit is 0/0/0. */
static SCSI_UNIT_CONTROL_STATUS
TpHwUnitControl(PVOID DeviceExtension, STOR_UNIT_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = Parameters;
    PSTOR_ADDRESS address = Parameters;
    PSTOR_UNIT_CONTROL_POWER power = Parameters;
    switch (ControlType) {
    case ScsiQuerySupportedUnitControlTypes:
        for (ULONG i = 0; i < list->MaxControlType && i < STOR_MAX_CONTROL_TYPES; i++)
            list->SupportedTypeList[i] = i == ScsiQuerySupportedUnitControlTypes ||
                                         i == ScsiUnitStart || i == ScsiUnitPower ||
                                         i == ScsiUnitRemove;
        return ScsiUnitControlSuccess;
    case ScsiUnitStart:
    case ScsiUnitRemove:
        if (!address || address->Type != STOR_ADDRESS_TYPE_BTL8 || address->Path != 0 ||
            address->Target != 0 || address->Lun != 0)
            atomic_fetch_add(&testport_faults.unit_address_bad, 1);
        atomic_fetch_add(ControlType == ScsiUnitStart ? &testport_faults.unit_starts
                                                      : &testport_faults.unit_removes,
                         1);
        return ScsiUnitControlSuccess;
    case ScsiUnitPower:
        if (!power || !power->Address || power->Address->Lun != 0)
            atomic_fetch_add(&testport_faults.unit_address_bad, 1);
        atomic_store(&testport_faults.unit_power_state, power ? (int)power->PowerState : -1);
        atomic_fetch_add(&testport_faults.unit_powers, 1);
        return ScsiUnitControlSuccess;
    default:
        return ScsiUnitControlUnsuccessful;
    }
}

static NTSTATUS TestportDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    VIRTUAL_HW_INITIALIZATION_DATA init;
    memset(&init, 0, sizeof(init));
    init.HwInitializationDataSize = sizeof(init);
    init.AdapterInterfaceType = Internal;
    init.HwInitialize = TpHwInitialize;
    init.HwStartIo = TpHwStartIo;
    init.HwFindAdapter = TpHwFindAdapter;
    init.HwResetBus = TpHwResetBus;
    init.HwAdapterControl = TpHwAdapterControl;
    init.HwUnitControl = TpHwUnitControl;
    init.HwBuildIo = TpHwBuildIo;
    init.HwFreeAdapterResources = TpFreeResources;
    init.DeviceExtensionSize = sizeof(TP_ADAPTER);
    init.SrbExtensionSize = sizeof(TP_SRB_EXTENSION);
    init.TaggedQueuing = TRUE;
    init.AutoRequestSense = TRUE;
    init.MultipleRequestPerLu = TRUE;
    return (NTSTATUS)StorPortInitialize(DriverObject, (PVOID)RegistryPath, &init, NULL);
}

static const char TestportInf[] =
    "[Version]\n"
    "Signature = \"$Windows NT$\"\n"
    "Class = SCSIAdapter\n"
    "ClassGuid = {4d36e97b-e325-11ce-bfc1-08002be10318}\n"
    "Provider = storstack tests\n"
    "[Models]\n"
    "storstack fault-injecting test adapter = testport_Install, ROOT\\TESTPORT\n"
    "[testport_Install.Services]\n"
    "AddService = testport, 0x00000002, testport_Service_Inst\n"
    "[testport_Service_Inst]\n"
    "ServiceType = 1\n"
    "StartType = 0\n";

const DRIVER_PACKAGE testport_package = {"testport", TestportDriverEntry, TestportInf};
