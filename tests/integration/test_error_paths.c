/*
 * Error paths through a whole stack, with a fault-injecting Storport miniport of our own
 * (testport.c, ROOT\TESTPORT, registered as an extra driver package): BUSY completions and a
 * UNIT ATTENTION are retried by the class driver and the read succeeds; a MEDIUM ERROR fails the
 * read with STATUS_DEVICE_DATA_ERROR at once (not retried, as Windows classpnp decides); a
 * dropped request is noticed by Storport's one-second tick after its TimeOutValue, error
 * recovery (an abort, then a LUN reset) completes it with SRB_STATUS_TIMEOUT and the class
 * driver's retry succeeds (the `slow` test,
 * run as test_integ_error_timeout); MaximumTransferLength 64K with NumberOfPhysicalBreaks 5 keeps
 * every SRB within 16K while a 1 MiB transfer arrives intact; and a request completed twice by
 * the miniport completes once.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <storstack/storage/classpnp.h>

#include "integ.h"
#include "testport.h"

static const char testport_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                      "HardwareID = multi:ROOT\\TESTPORT\n"
                                      "DeviceDesc = fault-injecting test adapter\n";

static const char testport_small_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                            "HardwareID = multi:ROOT\\TESTPORT\n"
                                            "[Enum\\Root\\TESTPORT\\0000\\Device Parameters]\n"
                                            "MaximumTransferLength = dword:65536\n"
                                            "NumberOfPhysicalBreaks = dword:5\n";

struct ep_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
};

static int boot(void **state, const char *config)
{
    struct ep_fixture *f = calloc(1, sizeof(*f));
    testport_reset_faults();
    f->stack = integ_boot_ex(config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    /* known data to read back */
    integ_write_pattern(f->disk, 0, 1 * MIB, 11);
    testport_reset_faults();
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return boot(state, testport_config);
}

static int setup_small(void **state)
{
    return boot(state, testport_small_config);
}

static int teardown(void **state)
{
    struct ep_fixture *f = *state;
    testport_reset_faults();
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

/* Reads 4K at 64K (one SRB) and returns the status; the data is checked on success. */
static storstack_status_t read_one(struct ep_fixture *f)
{
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n = 0;
    memset(buf, 0, 4096);
    storstack_status_t st = storstack_read(f->disk, buf, 4096, 64 * KIB, &n);
    if (st == STATUS_SUCCESS) {
        assert_int_equal(n, 4096);
        assert_int_equal(integ_find_mismatch(buf, 64 * KIB, 4096, 11), -1);
    }
    integ_free(buf);
    return st;
}

static void test_busy_is_retried_and_the_read_succeeds(void **state)
{
    struct ep_fixture *f = *state;
    atomic_store(&testport_faults.busy_reads, 3);
    assert_status(read_one(f), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 4);
    assert_int_equal(atomic_load(&testport_faults.busy_reads), 0);
}

static void test_unit_attention_is_retried_and_the_read_succeeds(void **state)
{
    struct ep_fixture *f = *state;
    atomic_store(&testport_faults.attention_reads, 1);
    assert_status(read_one(f), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 2);
    atomic_store(&testport_faults.reads_seen, 0);
    atomic_store(&testport_faults.attention_reads, 2);
    assert_status(read_one(f), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 3);
}

static void test_medium_error_fails_the_read_without_retries(void **state)
{
    struct ep_fixture *f = *state;
    atomic_store(&testport_faults.medium_error, 1);
    assert_status(read_one(f), STATUS_DEVICE_DATA_ERROR);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 1);
    /* the device is fine once the fault is gone */
    atomic_store(&testport_faults.medium_error, 0);
    assert_status(read_one(f), STATUS_SUCCESS);
}

/* Storport sends a BUSY SRB again itself 3 times (STORP_BUSY_RETRIES) before the class driver
 * sees it; the class driver then retries MAXIMUM_RETRIES times, each with Storport's requeues. */
#define STORPORT_BUSY_TRIES 4

static void test_busy_more_often_than_the_retries_fails_with_device_busy(void **state)
{
    struct ep_fixture *f = *state;
    const int tries = (MAXIMUM_RETRIES + 1) * STORPORT_BUSY_TRIES;
    atomic_store(&testport_faults.busy_reads, tries);
    assert_status(read_one(f), STATUS_DEVICE_BUSY);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), tries);
    assert_status(read_one(f), STATUS_SUCCESS);
}

static void test_small_transfer_limits_split_every_srb_and_keep_data_intact(void **state)
{
    struct ep_fixture *f = *state;
    const uint32_t len = 1 * MIB;
    /* (NumberOfPhysicalBreaks - 1) pages */
    const unsigned limit = (5 - 1) * 4096;
    integ_write_pattern(f->disk, 8 * MIB, len, 21);
    integ_verify_pattern(f->disk, 8 * MIB, len, 21);
    integ_verify_pattern(f->disk, 0, len, 11);
    unsigned seen = atomic_load(&testport_faults.max_transfer);
    if (seen > limit)
        fail_msg("the miniport saw an SRB of %u bytes, over %u", seen, limit);
    assert_true(atomic_load(&testport_faults.srbs_seen) >= 3 * (int)(len / limit));
    /* unaligned user buffer: still split within the limit */
    uint8_t *buf = integ_alloc(len, 100);
    uint32_t n;
    assert_status(storstack_read(f->disk, buf, len, 8 * MIB, &n), STATUS_SUCCESS);
    assert_int_equal(integ_find_mismatch(buf, 8 * MIB, len, 21), -1);
    integ_free(buf);
    assert_true(atomic_load(&testport_faults.max_transfer) <= limit);
}

static void test_request_completed_twice_completes_once(void **state)
{
    struct ep_fixture *f = *state;
    atomic_store(&testport_faults.double_complete, 1);
    assert_status(read_one(f), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.double_complete), 0);
    /* and the stack goes on working, with many requests reusing the same resources */
    atomic_store(&testport_faults.double_complete, 50);
    for (int i = 0; i < 50; i++)
        assert_status(read_one(f), STATUS_SUCCESS);
    integ_write_pattern(f->disk, 2 * MIB, 256 * KIB, 31);
    integ_verify_pattern(f->disk, 2 * MIB, 256 * KIB, 31);
}

/* slow: about TimeOutValue (10 s) plus a tick */
static void test_dropped_request_times_out_resets_the_bus_and_is_retried(void **state)
{
    struct ep_fixture *f = *state;
    atomic_store(&testport_faults.drop_reads, 1);
    double start = now_seconds();
    assert_status(read_one(f), STATUS_SUCCESS);
    double took = now_seconds() - start;
    /* recovery: the abort finds nothing to abort (the request was dropped), the LUN reset
     * succeeds and Storport completes the request SRB_STATUS_TIMEOUT; the bus is not reset */
    assert_int_equal(atomic_load(&testport_faults.aborts_seen), 1);
    assert_int_equal(atomic_load(&testport_faults.lun_resets), 1);
    assert_int_equal(atomic_load(&testport_faults.resets), 0);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 2);
    if (took < 10.0 || took >= 30.0)
        fail_msg("the dropped read took %.1f s; expected the 10 s timeout plus at most a few",
                 took);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_busy_is_retried_and_the_read_succeeds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unit_attention_is_retried_and_the_read_succeeds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_medium_error_fails_the_read_without_retries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_busy_more_often_than_the_retries_fails_with_device_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_small_transfer_limits_split_every_srb_and_keep_data_intact, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_request_completed_twice_completes_once, setup,
                                        teardown),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test_setup_teardown(
            test_dropped_request_times_out_resets_the_bus_and_is_retried, setup, teardown),
    };
    if (argc > 1 && !strcmp(argv[1], "timeout"))
        return cmocka_run_group_tests_name("timeout", slow, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
