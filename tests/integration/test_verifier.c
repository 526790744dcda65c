/*
 * Storport's verifier (drivers/port/storport/verifier.c) against a miniport that breaks each
 * rule on purpose (testport's break_rule): every break is caught, reported in the adapter's event
 * log as a verifier event naming the rule, the miniport and (where it is safe) the SRB, and
 * survived — the read that carried it still completes with the right data, and the stack goes
 * on. A well-behaved run reports nothing.
 */
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/scsi.h>
#include <storstack/storage/storevents.h>

#include "integ.h"
#include "testport.h"

static const char vf_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n";

struct vf_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    storstack_handle_t *adapter;
};

static int vf_boot(void **state, int timer_in_find_adapter)
{
    struct vf_fixture *f = calloc(1, sizeof(*f));
    testport_reset_faults();
    atomic_store(&testport_faults.timer_in_find_adapter, timer_in_find_adapter);
    f->stack = integ_boot_ex(vf_config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->adapter = integ_open(f->stack, "Scsi0:", INTEG_RW);
    integ_write_pattern(f->disk, 0, 64 * KIB, 17);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return vf_boot(state, 0);
}

static int setup_timer_in_find_adapter(void **state)
{
    return vf_boot(state, 1);
}

static int teardown(void **state)
{
    struct vf_fixture *f = *state;
    testport_reset_faults();
    storstack_close(f->adapter);
    storstack_close(f->disk);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

/* The verifier events in the log; returns how many, the last in *last. */
static int vf_events(struct vf_fixture *f, STORSTACK_EVENT *last)
{
    STORSTACK_GET_EVENTS in = {0};
    size_t len = sizeof(STORSTACK_EVENTS) + 128 * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS out = calloc(1, len);
    uint32_t returned;
    int n = 0;
    assert_status(storstack_ioctl(f->adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), out,
                                  (uint32_t)len, &returned),
                  STATUS_SUCCESS);
    for (ULONG i = 0; i < out->Count; i++)
        if (out->Events[i].ErrorCode == STORP_EVENT_VERIFIER) {
            n++;
            if (last)
                *last = out->Events[i];
        }
    free(out);
    return n;
}

/* Arms the break, reads 4K (it must still succeed with the data), checks one new report. */
static void vf_break(struct vf_fixture *f, int rule, unsigned reported_rule, int with_srb)
{
    STORSTACK_EVENT e;
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n = 0;
    int before = vf_events(f, NULL);

    atomic_store(&testport_faults.break_rule, rule);
    assert_status(storstack_read(f->disk, buf, 4096, 8 * KIB, &n), STATUS_SUCCESS);
    assert_int_equal(n, 4096);
    assert_int_equal(integ_find_mismatch(buf, 8 * KIB, 4096, 17), -1);
    assert_int_equal(atomic_load(&testport_faults.break_rule), 0);
    if (vf_events(f, &e) != before + 1)
        fail_msg("rule %d: %d verifier reports, expected one more than %d", rule,
                 vf_events(f, NULL), before);
    assert_int_equal(e.UniqueId, reported_rule);
    assert_string_equal(e.Source, "verifier");
    if (!strstr(e.Text, "miniport testport"))
        fail_msg("the report does not name the miniport: %s", e.Text);
    assert_int_equal(e.HasSrb, with_srb);
    if (with_srb)
        assert_int_equal(e.Cdb[0], SCSIOP_READ);
    print_message("rule %d: %s\n", rule, e.Text);
    /* and the stack goes on */
    integ_verify_pattern(f->disk, 0, 64 * KIB, 17);
    integ_free(buf);
}

static void test_a_well_behaved_miniport_is_not_reported(void **state)
{
    struct vf_fixture *f = *state;
    integ_verify_pattern(f->disk, 0, 64 * KIB, 17);
    assert_int_equal(vf_events(f, NULL), 0);
}

static void test_completing_an_srb_twice_is_caught(void **state)
{
    vf_break(*state, 1, 1, 0);
}

static void test_completing_an_srb_never_given_is_caught(void **state)
{
    vf_break(*state, 2, 2, 0);
}

static void test_writing_an_srb_after_completing_it_is_caught(void **state)
{
    /* the late write turns the read into an error the class driver retries */
    vf_break(*state, 3, 3, 1);
}

static void test_completing_with_srb_status_pending_is_caught(void **state)
{
    vf_break(*state, 4, 4, 1);
}

static void test_next_request_outside_start_io_is_caught(void **state)
{
    vf_break(*state, 5, 5, 0);
}

static void test_scatter_gather_list_of_an_srb_not_held_is_caught(void **state)
{
    vf_break(*state, 6, 6, 0);
}

static void test_passive_initialization_outside_hw_initialize_is_caught(void **state)
{
    vf_break(*state, 7, 7, 0);
}

static void test_returning_more_data_than_the_srb_holds_is_caught(void **state)
{
    vf_break(*state, 8, 8, 1);
}

static void test_next_lu_request_for_an_address_without_a_unit_is_caught(void **state)
{
    struct vf_fixture *f = *state;
    STORSTACK_EVENT e;
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n;
    atomic_store(&testport_faults.break_rule, 9);
    assert_status(storstack_read(f->disk, buf, 4096, 0, &n), STATUS_SUCCESS);
    /* two breaks at once: outside HwStorStartIo, and an address with no unit */
    assert_int_equal(vf_events(f, &e), 2);
    assert_int_equal(e.UniqueId, 5);
    if (!strstr(e.Text, "0:5:5"))
        fail_msg("the report does not name the address: %s", e.Text);
    integ_free(buf);
}

static void test_timer_request_in_find_adapter_is_caught(void **state)
{
    struct vf_fixture *f = *state;
    STORSTACK_EVENT e;
    assert_int_equal(vf_events(f, &e), 1);
    assert_int_equal(e.UniqueId, 7);
    if (!strstr(e.Text, "RequestTimerCall in HwStorFindAdapter"))
        fail_msg("unexpected report: %s", e.Text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_well_behaved_miniport_is_not_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_completing_an_srb_twice_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completing_an_srb_never_given_is_caught, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writing_an_srb_after_completing_it_is_caught, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_completing_with_srb_status_pending_is_caught, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_next_request_outside_start_io_is_caught, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scatter_gather_list_of_an_srb_not_held_is_caught,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_passive_initialization_outside_hw_initialize_is_caught,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_returning_more_data_than_the_srb_holds_is_caught,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_next_lu_request_for_an_address_without_a_unit_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_request_in_find_adapter_is_caught,
                                        setup_timer_in_find_adapter, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
