/*
 * Storport's services for a miniport's deferred work, as the testport miniport uses them: a read
 * executed from a DPC (StorPortInitializeDpc, StorPortIssueDpc, the DpcLock of
 * StorPortAcquireSpinLock), from a StorPortRequestTimer timer, and from a work item
 * (StorPortQueueWorkItem) completes with the right data; StorPortInitializePerfOpts reports and
 * takes concurrent channels, with I/O still correct; StorPortStateChangeDetected is logged and
 * rejects a bad entity; I/O racing bus rescans never fails.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>

#include "integ.h"
#include "testport.h"

static const char ms_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n";

struct ms_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
};

static int ms_boot(void **state, int channels)
{
    struct ms_fixture *f = calloc(1, sizeof(*f));
    testport_reset_faults();
    atomic_store(&testport_faults.concurrent_channels, channels);
    f->stack = integ_boot_ex(ms_config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(f->disk, 0, 64 * KIB, 23);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return ms_boot(state, 0);
}

static int setup_channels(void **state)
{
    return ms_boot(state, 1);
}

static int teardown(void **state)
{
    struct ms_fixture *f = *state;
    storstack_close(f->disk);
    storstack_destroy(f->stack);
    testport_reset_faults();
    atomic_store(&testport_faults.concurrent_channels, 0);
    free(f);
    return 0;
}

static void ms_read_via(struct ms_fixture *f, int via)
{
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n = 0;
    int before = atomic_load(&testport_faults.deferred_runs);
    atomic_store(&testport_faults.complete_via, via);
    assert_status(storstack_read(f->disk, buf, 4096, 12 * KIB, &n), STATUS_SUCCESS);
    assert_int_equal(n, 4096);
    assert_int_equal(integ_find_mismatch(buf, 12 * KIB, 4096, 23), -1);
    assert_int_equal(atomic_load(&testport_faults.deferred_runs), before + 1);
    integ_free(buf);
}

static void test_a_read_completed_from_a_dpc(void **state)
{
    ms_read_via(*state, 1);
    assert_int_equal(atomic_load(&testport_faults.dpc_lock_held), 1);
}

static void test_a_read_completed_from_a_timer(void **state)
{
    ms_read_via(*state, 2);
    ms_read_via(*state, 2); /* the timer is reusable */
}

static void test_a_read_completed_from_a_work_item(void **state)
{
    ms_read_via(*state, 3);
    ms_read_via(*state, 3);
}

static void test_concurrent_channels_are_reported_and_taken(void **state)
{
    struct ms_fixture *f = *state;
    assert_int_equal(atomic_load(&testport_faults.perf_query_flags), STOR_PERF_CONCURRENT_CHANNELS);
    assert_int_equal(atomic_load(&testport_faults.perf_set_status), STOR_STATUS_SUCCESS);
    integ_write_pattern(f->disk, 1 * MIB, 1 * MIB, 29);
    integ_verify_pattern(f->disk, 1 * MIB, 1 * MIB, 29);
}

static void test_state_change_is_logged(void **state)
{
    struct ms_fixture *f = *state;
    storstack_handle_t *adapter = integ_open(f->stack, "Scsi0:", INTEG_RW);
    STORSTACK_GET_EVENTS in = {0};
    size_t len = sizeof(STORSTACK_EVENTS) + 16 * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS out = calloc(1, len);
    uint32_t returned;
    int found = 0;

    assert_false(testport_state_change(0));
    assert_false(testport_state_change(0x80));
    assert_true(testport_state_change(STATE_CHANGE_LUN));
    assert_status(storstack_ioctl(adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), out,
                                  (uint32_t)len, &returned),
                  STATUS_SUCCESS);
    for (ULONG i = 0; i < out->Count; i++)
        if (out->Events[i].ErrorCode == STORP_EVENT_STATE_CHANGE) {
            found++;
            assert_int_equal(out->Events[i].UniqueId, STATE_CHANGE_LUN);
            assert_int_equal(out->Events[i].Lun, 0);
        }
    assert_int_equal(found, 1);
    /* the rescan it starts leaves the disk in place */
    integ_verify_pattern(f->disk, 0, 64 * KIB, 23);
    free(out);
    storstack_close(adapter);
}

struct ms_reader {
    struct ms_fixture *f;
    atomic_int stop;
    atomic_int reads, failures;
    storstack_status_t last;
};

static void *ms_read_loop(void *arg)
{
    struct ms_reader *r = arg;
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n;
    while (!atomic_load(&r->stop)) {
        storstack_status_t st = storstack_read(r->f->disk, buf, 4096, 0, &n);
        atomic_fetch_add(&r->reads, 1);
        if (st != STATUS_SUCCESS) {
            r->last = st;
            atomic_fetch_add(&r->failures, 1);
        }
    }
    integ_free(buf);
    return NULL;
}

/* A bug this caught: the bus scan marked every unit absent while it ran, so I/O racing a
 * rescan failed STATUS_NO_SUCH_DEVICE. */
static void test_io_during_rescans_never_fails(void **state)
{
    struct ms_fixture *f = *state;
    storstack_handle_t *adapter = integ_open(f->stack, "Scsi0:", INTEG_RW);
    struct ms_reader r = {.f = f};
    pthread_t thread;
    uint32_t returned;
    assert_int_equal(pthread_create(&thread, NULL, ms_read_loop, &r), 0);
    for (int i = 0; i < 30; i++)
        assert_status(storstack_ioctl(adapter, IOCTL_SCSI_RESCAN_BUS, NULL, 0, NULL, 0, &returned),
                      STATUS_SUCCESS);
    atomic_store(&r.stop, 1);
    pthread_join(thread, NULL);
    if (atomic_load(&r.failures))
        fail_msg("%d of %d reads during rescans failed (%s)", atomic_load(&r.failures),
                 atomic_load(&r.reads), storstack_status_name(r.last));
    assert_true(atomic_load(&r.reads) > 0);
    storstack_close(adapter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_read_completed_from_a_dpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_completed_from_a_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_completed_from_a_work_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_channels_are_reported_and_taken,
                                        setup_channels, teardown),
        cmocka_unit_test_setup_teardown(test_state_change_is_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_during_rescans_never_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
