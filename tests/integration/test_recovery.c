/*
 * Storport's error recovery through a whole stack: a request the testport miniport holds past
 * its TimeOutValue (1 s) is recovered by the first tier the miniport accepts — abort, LUN reset,
 * target reset, bus reset, adapter restart — each test refusing the tiers before it. The request
 * completes once, SRB_STATUS_TIMEOUT (STATUS_IO_TIMEOUT for the pass-through caller); other
 * requests in the reset's scope complete SRB_STATUS_BUS_RESET and a class read among them is
 * retried and succeeds. With every tier refused the request stays with the miniport and the
 * event log says so. The steps are read back from the event log (IOCTL_STORSTACK_GET_EVENTS on
 * Scsi0:, as `storstack events` reads them).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>
#include <storstack/wdm/io.h>

#include "integ.h"
#include "drivers/port/storport/storport_p.h" /* STORP_RESET_WAIT_MS */
#include "kernel/executive.h"
#include "testport.h"

static const char rc_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n";

struct rc_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    storstack_handle_t *adapter;
    PEXECUTIVE exec;
    PDEVICE_OBJECT top;
};

static int setup(void **state)
{
    struct rc_fixture *f = calloc(1, sizeof(*f));
    PDEVICE_OBJECT dev;
    testport_reset_faults();
    f->stack = integ_boot_ex(rc_config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->adapter = integ_open(f->stack, "Scsi0:", INTEG_RW);
    f->exec = storstack_local_executive(f->stack);
    assert_status(IoGetDeviceObjectPointer(f->exec, "PhysicalDrive0", &dev), STATUS_SUCCESS);
    f->top = IoGetAttachedDeviceReference(dev);
    ObDereferenceObject(dev);
    integ_write_pattern(f->disk, 0, 256 * KIB, 13);
    testport_reset_faults();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct rc_fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    atomic_store(&testport_faults.hold_ios, 0);
    testport_release_held();
    testport_reset_faults();
    ExQueryCounters(f->exec, &c);
    assert_int_equal(c.Violations, 0);
    ObDereferenceObject(f->top);
    storstack_close(f->adapter);
    storstack_close(f->disk);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rc_wait(atomic_int *counter, int want, double seconds, const char *what)
{
    double end = now_seconds() + seconds;
    while (atomic_load(counter) < want) {
        if (now_seconds() > end)
            fail_msg("timed out waiting for %s", what);
        usleep(1000);
    }
}

/* Reads the adapter's event log (the caller frees it). */
static PSTORSTACK_EVENTS rc_read_events(struct rc_fixture *f)
{
    STORSTACK_GET_EVENTS in = {0};
    size_t len = sizeof(STORSTACK_EVENTS) + 64 * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS out = calloc(1, len);
    uint32_t returned = 0;
    assert_status(storstack_ioctl(f->adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), out,
                                  (uint32_t)len, &returned),
                  STATUS_SUCCESS);
    assert_int_equal(returned, sizeof(STORSTACK_EVENTS) + out->Count * sizeof(STORSTACK_EVENT));
    return out;
}

/* Reads the adapter's event log and returns the error codes in order (up to max). */
static int rc_event_codes(struct rc_fixture *f, ULONG *codes, int max, STORSTACK_EVENT *timeout)
{
    PSTORSTACK_EVENTS out = rc_read_events(f);
    int n = 0;
    for (ULONG i = 0; i < out->Count && n < max; i++) {
        assert_int_equal(out->Events[i].Sequence, i + 1);
        codes[n++] = out->Events[i].ErrorCode;
        if (out->Events[i].ErrorCode == SP_REQUEST_TIMEOUT && timeout && !timeout->Sequence)
            *timeout = out->Events[i]; /* the first: the request's, not an abandoned reset's */
    }
    free(out);
    return n;
}

static BOOLEAN rc_has(const ULONG *codes, int n, ULONG code)
{
    for (int i = 0; i < n; i++)
        if (codes[i] == code)
            return TRUE;
    return FALSE;
}

struct rc_async {
    atomic_int done;
    storstack_status_t status;
};

static void rc_async_done(void *context, storstack_status_t status, uint64_t information)
{
    struct rc_async *a = context;
    a->status = status;
    atomic_fetch_add(&a->done, 1);
}

/* Refuses the tiers below `tier` (0 abort .. 4 restart), holds a 1 s pass-through, a 60 s one
 * and a class read, and checks the outcome. With hang_lun, the LUN reset (tier 1) is not
 * refused but never completed by the miniport: Storport abandons it after STORP_RESET_WAIT_MS. */
static void rc_recover_at_ex(struct rc_fixture *f, int tier, ULONG event, BOOLEAN hang_lun)
{
    struct integ_irp *t = calloc(2, sizeof(*t));
    struct rc_async a = {0};
    uint8_t *buf = integ_alloc(4096, 0);
    ULONG codes[64];
    STORSTACK_EVENT timeout_event = {0};
    atomic_int *const counters[] = {&testport_faults.aborts_seen, &testport_faults.lun_resets,
                                    &testport_faults.target_resets, &testport_faults.resets,
                                    &testport_faults.adapter_restarts};
    atomic_int *const refusals[] = {
        &testport_faults.refuse_abort, &testport_faults.refuse_lun_reset,
        &testport_faults.refuse_target_reset, &testport_faults.refuse_bus_reset,
        &testport_faults.refuse_restart};

    for (int i = 0; i < tier; i++)
        atomic_store(refusals[i], 1);
    if (hang_lun) {
        atomic_store(&testport_faults.refuse_lun_reset, 0);
        atomic_store(&testport_faults.hang_lun_reset, 1);
    }
    atomic_store(&testport_faults.hold_ios, 1);
    integ_irp_read(f->exec, f->top, &t[0], 8, 1);
    integ_irp_read(f->exec, f->top, &t[1], 16, 60);
    assert_status(storstack_read_async(f->disk, buf, 4096, 64 * KIB, rc_async_done, &a),
                  STATUS_PENDING);
    rc_wait(&testport_faults.held, 3, 5.0, "three held requests");
    atomic_store(&testport_faults.hold_ios, 0);
    double start = now_seconds();

    rc_wait(&t[0].completions, 1, 10.0, "the timed-out request");
    double took = now_seconds() - start;
    assert_status(t[0].status, STATUS_IO_TIMEOUT);
    if (took < 0.9 || took > (hang_lun ? 6.0 + STORP_RESET_WAIT_MS / 1000.0 : 6.0))
        fail_msg("recovery at tier %d ended the request after %.2f s", tier, took);
    for (int i = 0; i <= tier; i++)
        if (atomic_load(counters[i]) < 1)
            fail_msg("tier %d was not tried before tier %d recovered", i, tier);
    for (int i = tier + 1; i < 5; i++)
        assert_int_equal(atomic_load(counters[i]), 0);
    if (tier == 0) {
        /* an abort touches only its victim: the others are still held */
        assert_int_equal(atomic_load(&testport_faults.aborts_found), 1);
        assert_int_equal(atomic_load(&testport_faults.held), 2);
        assert_int_equal(testport_release_held(), 2);
        rc_wait(&t[1].completions, 1, 5.0, "the released pass-through");
        assert_status(t[1].status, STATUS_SUCCESS);
    } else {
        /* a reset ends the rest of its scope with SRB_STATUS_BUS_RESET, once */
        rc_wait(&t[1].completions, 1, 5.0, "the pass-through in the reset's scope");
        assert_status(t[1].status, STATUS_IO_DEVICE_ERROR);
    }
    /* the class read is retried (or released) and succeeds */
    rc_wait(&a.done, 1, 10.0, "the class read");
    assert_status(a.status, STATUS_SUCCESS);
    assert_int_equal(integ_find_mismatch(buf, 64 * KIB, 4096, 13), -1);
    usleep(20000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&t[i].completions), 1);
        integ_irp_free(&t[i]);
    }
    assert_int_equal(atomic_load(&a.done), 1);

    int n = rc_event_codes(f, codes, 64, &timeout_event);
    assert_true(rc_has(codes, n, SP_REQUEST_TIMEOUT));
    assert_true(rc_has(codes, n, STORP_EVENT_ABORT));
    assert_true(rc_has(codes, n, event));
    assert_false(rc_has(codes, n, STORP_EVENT_RECOVERY_FAILED));
    assert_int_equal(timeout_event.HasSrb, 1);
    assert_int_equal(timeout_event.Cdb[0], SCSIOP_READ);
    assert_int_equal(timeout_event.UniqueId, 1); /* the TimeOutValue */
    assert_string_equal(timeout_event.Source, "storport");
    integ_free(buf);
    free(t);
}

static void rc_recover_at(struct rc_fixture *f, int tier, ULONG event)
{
    rc_recover_at_ex(f, tier, event, FALSE);
}

static void test_timeout_is_recovered_by_an_abort(void **state)
{
    rc_recover_at(*state, 0, STORP_EVENT_ABORT);
}

static void test_a_refused_abort_escalates_to_a_lun_reset(void **state)
{
    rc_recover_at(*state, 1, STORP_EVENT_LUN_RESET);
}

static void test_a_failed_lun_reset_escalates_to_a_target_reset(void **state)
{
    rc_recover_at(*state, 2, STORP_EVENT_TARGET_RESET);
}

static void test_a_failed_target_reset_escalates_to_a_bus_reset(void **state)
{
    rc_recover_at(*state, 3, STORP_EVENT_BUS_RESET);
}

static void test_a_failed_bus_reset_escalates_to_an_adapter_restart(void **state)
{
    rc_recover_at(*state, 4, STORP_EVENT_ADAPTER_RESTART);
}

/* Counts the events whose text contains `what`. */
static int rc_count_text(struct rc_fixture *f, const char *what)
{
    PSTORSTACK_EVENTS out = rc_read_events(f);
    int n = 0;
    for (ULONG i = 0; i < out->Count; i++)
        n += strstr(out->Events[i].Text, what) != NULL;
    free(out);
    return n;
}

/* A LUN reset the miniport never completes does not stall recovery: after STORP_RESET_WAIT_MS
 * it counts as failed, the target reset recovers, and the hung reset SRB is completed once, by
 * the miniport's target reset (ASan would see its context leak otherwise). */
static void test_a_hung_lun_reset_is_abandoned_and_a_target_reset_recovers(void **state)
{
    struct rc_fixture *f = *state;
    rc_recover_at_ex(f, 2, STORP_EVENT_TARGET_RESET, TRUE);
    assert_int_equal(atomic_load(&testport_faults.lun_resets), 1);
    assert_int_equal(atomic_load(&testport_faults.hung_reset_completed), 1);
    assert_int_equal(rc_count_text(f, "abandoned"), 1);
}

/* The same hung LUN reset with the target and bus resets refused: the adapter restart forgets
 * it and Storport ends it; every unit gets HwStorUnitControl ScsiUnitStart again. */
static void test_a_hung_lun_reset_is_ended_by_the_adapter_restart_which_restarts_units(void **state)
{
    struct rc_fixture *f = *state;
    int starts = atomic_load(&testport_faults.unit_starts);
    rc_recover_at_ex(f, 4, STORP_EVENT_ADAPTER_RESTART, TRUE);
    assert_int_equal(atomic_load(&testport_faults.hung_reset_completed), 0);
    assert_int_equal(rc_count_text(f, "abandoned"), 1);
    assert_int_equal(atomic_load(&testport_faults.unit_starts), starts + 1);
    assert_int_equal(rc_count_text(f, "ScsiUnitStart after the adapter restart"), 1);
    assert_int_equal(atomic_load(&testport_faults.unit_address_bad), 0);
    /* the unit works after its restart */
    integ_verify_pattern(f->disk, 0, 64 * KIB, 13);
}

static void test_recovery_failing_everywhere_is_logged_and_leaves_the_request(void **state)
{
    struct rc_fixture *f = *state;
    struct integ_irp *t = calloc(1, sizeof(*t));
    ULONG codes[64];
    atomic_store(&testport_faults.refuse_abort, 1);
    atomic_store(&testport_faults.refuse_lun_reset, 1);
    atomic_store(&testport_faults.refuse_target_reset, 1);
    atomic_store(&testport_faults.refuse_bus_reset, 1);
    atomic_store(&testport_faults.refuse_restart, 1);
    atomic_store(&testport_faults.hold_ios, 1);
    integ_irp_read(f->exec, f->top, t, 8, 1);
    rc_wait(&testport_faults.held, 1, 5.0, "the held request");
    rc_wait(&testport_faults.adapter_restarts, 1, 10.0, "the last tier");
    double end = now_seconds() + 5.0;
    int n;
    while (!rc_has(codes, n = rc_event_codes(f, codes, 64, NULL), STORP_EVENT_RECOVERY_FAILED) &&
           now_seconds() < end)
        usleep(10000);
    assert_true(rc_has(codes, n, STORP_EVENT_RECOVERY_FAILED));
    /* nothing completed it: the miniport still owns it, and its late completion is the one */
    assert_int_equal(atomic_load(&t->completions), 0);
    atomic_store(&testport_faults.hold_ios, 0);
    assert_int_equal(testport_release_held(), 1);
    rc_wait(&t->completions, 1, 5.0, "the released request");
    assert_status(t->status, STATUS_SUCCESS);
    integ_irp_free(t);
    free(t);
}

static void test_get_events_checks_its_buffers(void **state)
{
    struct rc_fixture *f = *state;
    STORSTACK_GET_EVENTS in = {0};
    STORSTACK_EVENTS out;
    uint32_t returned;
    assert_status(storstack_ioctl(f->adapter, IOCTL_STORSTACK_GET_EVENTS, NULL, 0, &out,
                                  sizeof(out), &returned),
                  STATUS_INVALID_PARAMETER);
    assert_status(storstack_ioctl(f->adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), &out,
                                  sizeof(out) - 1, &returned),
                  STATUS_INVALID_PARAMETER);
    /* room for no event: the header says how many there are */
    assert_status(storstack_ioctl(f->adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), &out,
                                  sizeof(out), &returned),
                  STATUS_SUCCESS);
    assert_int_equal(out.Count, 0);
    assert_int_equal(returned, sizeof(out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timeout_is_recovered_by_an_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_abort_escalates_to_a_lun_reset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_lun_reset_escalates_to_a_target_reset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_target_reset_escalates_to_a_bus_reset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_bus_reset_escalates_to_an_adapter_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_recovery_failing_everywhere_is_logged_and_leaves_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_hung_lun_reset_is_abandoned_and_a_target_reset_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_hung_lun_reset_is_ended_by_the_adapter_restart_which_restarts_units, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_get_events_checks_its_buffers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
