/*
 * testport: a Storport virtual miniport for the integration tests. It presents one 64 MiB disk
 * (devices/ over a RAM backend) at Target0\Lun0 of ROOT\TESTPORT and injects the faults the test
 * arms in testport_faults: BUSY, UNIT ATTENTION and MEDIUM ERROR completions, dropped requests
 * (completed later by HwStorResetBus with SRB_STATUS_BUS_RESET) and double completions. It counts
 * what it sees, so a test can check how the class driver and Storport reacted.
 */
#ifndef STORSTACK_TESTS_INTEGRATION_TESTPORT_H
#define STORSTACK_TESTS_INTEGRATION_TESTPORT_H

#include <stdatomic.h>
#include <stdint.h>

#include <storstack/wdm/pnp.h>

#define TESTPORT_DISK_SIZE (64ull * 1024 * 1024)

/* Faults apply to READ(10/16) commands only, so boot and writes are left alone. */
struct testport_faults {
    atomic_int busy_reads;      /* complete the next N reads with SRB_STATUS_BUSY */
    atomic_int attention_reads; /* the next N reads get CHECK CONDITION, UNIT ATTENTION 29h/00h */
    atomic_int medium_error;    /* while set, every read gets MEDIUM ERROR 11h/00h */
    atomic_int drop_reads;      /* never complete the next N reads */
    atomic_int double_complete; /* complete the next N reads twice */

    atomic_int reads_seen;      /* READ commands the miniport received */
    atomic_int resets;          /* HwStorResetBus calls */
    atomic_int reset_completed; /* dropped SRBs completed by the reset */
    atomic_uint max_transfer;   /* largest DataTransferLength of any SRB */
    atomic_int srbs_seen;
    atomic_int stops_seen;  /* START STOP UNIT with START=0 received (idle power-down) */
    atomic_int starts_seen; /* ... with START=1 */

    /* Hold mode: while hold_ios is set, every SCSI command is kept by the miniport (not
     * completed) until testport_release_held(), an ABORT_COMMAND naming it, or a LUN, target or
     * bus reset, which complete it with SRB_STATUS_ABORTED or SRB_STATUS_BUS_RESET. */
    atomic_int hold_ios;
    atomic_int held;               /* SRBs held right now */
    atomic_int aborts_seen;        /* SRB_FUNCTION_ABORT_COMMAND received */
    atomic_int aborts_found;       /* ... whose NextSrb was held (completed ABORTED) */
    atomic_int lun_resets;         /* SRB_FUNCTION_RESET_LOGICAL_UNIT received */
    atomic_int target_resets;      /* SRB_FUNCTION_RESET_DEVICE received */
    atomic_int reset_victims;      /* held SRBs completed by a reset */
    atomic_int attention_on_reset; /* resets raise a unit attention (29h/03h LU, 29h/02h bus) */

    /* Queue management. */
    atomic_int queue_full_reads;     /* the next N reads end with SCSI status TASK SET FULL */
    atomic_int pause_device_on_read; /* the next read pauses the LU for this many seconds */

    /* Error recovery: refuse a tier (abort: SRB_STATUS_ABORT_FAILED, LUN/target reset:
     * SRB_STATUS_ERROR, bus reset: FALSE, restart: ScsiAdapterControlUnsuccessful), leaving the
     * held SRBs held. ScsiRestartAdapter forgets what is held (Storport completes it). */
    atomic_int refuse_abort;
    atomic_int refuse_lun_reset;
    atomic_int refuse_target_reset;
    atomic_int refuse_bus_reset;
    atomic_int refuse_restart;
    atomic_int adapter_restarts; /* ScsiRestartAdapter received */
    /* hang_lun_reset: keep the next LUN reset SRB without completing it; a target or bus reset
     * completes it (SRB_STATUS_BUS_RESET), an adapter restart forgets it (Storport ends it). */
    atomic_int hang_lun_reset;
    atomic_int hung_reset_completed; /* ... the miniport completed the hung reset itself */

    /* HwStorUnitControl calls received (never cleared: they count from boot). */
    atomic_int unit_starts;
    atomic_int unit_powers;
    atomic_int unit_power_state; /* the last ScsiUnitPower's STOR_DEVICE_POWER_STATE */
    atomic_int unit_removes;
    atomic_int unit_address_bad; /* a unit control call with a wrong address */

    /* Verifier: the next read breaks this Storport rule (verifier.c numbering; 9 is
     * NextLuRequest for an address with no unit); timer_in_find_adapter makes
     * HwStorFindAdapter ask for RequestTimerCall. */
    atomic_int break_rule;
    atomic_int timer_in_find_adapter;

    /* Deferred work: the next read is executed from a DPC (1), a StorPortRequestTimer timer
     * (2) or a work item (3) instead of in HwStorBuildIo; deferred_runs counts them. With
     * concurrent_channels set before boot, HwStorInitialize asks for 2 concurrent channels. */
    atomic_int complete_via;
    atomic_int deferred_runs;
    atomic_int dpc_lock_held; /* the DPC routine ran holding its DpcLock */
    atomic_int concurrent_channels;
    atomic_uint perf_query_flags;
    atomic_uint perf_set_status;
};

extern struct testport_faults testport_faults;
extern const DRIVER_PACKAGE testport_package;

/* Clears every fault and counter (not the held SRBs). */
void testport_reset_faults(void);
/* The miniport's queue-management calls, made as the test says (the LU is 0:0:0). */
BOOLEAN testport_resume_device(void);
BOOLEAN testport_pause_adapter(ULONG seconds);
BOOLEAN testport_resume_adapter(void);
BOOLEAN testport_device_busy(ULONG requests_to_complete);
BOOLEAN testport_state_change(ULONG changed_entity);

/* Sends every held SRB on to the device (it then completes normally); returns how many. */
int testport_release_held(void);

#endif
