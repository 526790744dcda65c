/*
 * The task-management contract of Storport (drivers/port/storport/README.md, "Cancellation and
 * resets"), through a whole stack with the testport miniport in hold mode:
 *  - ABORT TASK: IoCancelIrp on a SCSI pass-through IRP sent to PhysicalDrive0 (classpnp
 *    forwards it to the unit PDO). Waiting in Storport's queue it completes STATUS_CANCELLED
 *    without reaching the miniport; at the miniport Storport sends SRB_FUNCTION_ABORT_COMMAND
 *    naming it and it completes once, STATUS_CANCELLED. A cancel racing the normal completion
 *    completes the IRP once, either way.
 *  - LUN RESET: IOCTL_STORAGE_RESET_DEVICE on the disk handle: SRB_FUNCTION_RESET_LOGICAL_UNIT,
 *    every request in flight completes once (a class read is retried and succeeds), then UNIT
 *    ATTENTION 29h/03h.
 *  - TARGET RESET: IOCTL_STORAGE_RESET_BUS: HwStorResetBus, the same, then UNIT ATTENTION 29h/02h.
 * Every IRP here is built by the test with its own completion routine, so it stays allocated
 * until the test frees it and a late IoCancelIrp is safe; completions are counted.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/ntddstor.h>
#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/wdm/io.h>

#include "kernel/executive.h"

#include "integ.h"
#include "testport.h"

static const char tm_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n";

struct tm_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    PEXECUTIVE exec;
    PDEVICE_OBJECT top; /* the disk's top device (classpnp's FDO) */
};

static int setup(void **state)
{
    struct tm_fixture *f = calloc(1, sizeof(*f));
    PDEVICE_OBJECT dev;
    testport_reset_faults();
    f->stack = integ_boot_ex(tm_config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->exec = storstack_local_executive(f->stack);
    assert_non_null(f->exec);
    assert_status(IoGetDeviceObjectPointer(f->exec, "PhysicalDrive0", &dev), STATUS_SUCCESS);
    f->top = IoGetAttachedDeviceReference(dev);
    ObDereferenceObject(dev);
    integ_write_pattern(f->disk, 0, 256 * KIB, 5);
    testport_reset_faults();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct tm_fixture *f = *state;
    atomic_store(&testport_faults.hold_ios, 0);
    testport_release_held();
    testport_reset_faults();
    ObDereferenceObject(f->top);
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

/* Waits (at most 10 s) until *counter reaches want. */
static void tm_wait_for(atomic_int *counter, int want, const char *what)
{
    double end = now_seconds() + 10.0;
    while (atomic_load(counter) < want) {
        if (now_seconds() > end)
            fail_msg("timed out waiting for %s: %d of %d", what, atomic_load(counter), want);
        usleep(500);
    }
}

static void tm_wait_held(int want)
{
    double end = now_seconds() + 10.0;
    while (atomic_load(&testport_faults.held) != want) {
        if (now_seconds() > end)
            fail_msg("timed out waiting for %d held SRBs (%d held)", want,
                     atomic_load(&testport_faults.held));
        usleep(500);
    }
}

static void tm_assert_no_violations(struct tm_fixture *f)
{
    EXECUTIVE_COUNTERS c;
    ExQueryCounters(f->exec, &c);
    assert_int_equal(c.Violations, 0);
}

static void test_cancel_at_the_miniport_sends_abort_and_completes_the_irp_once(void **state)
{
    struct tm_fixture *f = *state;
    struct integ_irp *t = calloc(1, sizeof(*t));
    atomic_store(&testport_faults.hold_ios, 1);
    integ_irp_read(f->exec, f->top, t, 16, 60);
    tm_wait_held(1);
    assert_int_equal(atomic_load(&t->completions), 0);

    assert_true(IoCancelIrp(t->irp));
    tm_wait_for(&t->completions, 1, "the cancelled IRP");
    assert_status(t->status, STATUS_CANCELLED);
    assert_int_equal(atomic_load(&testport_faults.aborts_seen), 1);
    assert_int_equal(atomic_load(&testport_faults.aborts_found), 1);
    assert_int_equal(atomic_load(&testport_faults.held), 0);
    /* a second cancel finds nothing to do; nothing completes again */
    assert_false(IoCancelIrp(t->irp));
    usleep(20000);
    assert_int_equal(atomic_load(&t->completions), 1);
    integ_irp_free(t);

    /* the unit goes on working */
    atomic_store(&testport_faults.hold_ios, 0);
    integ_irp_read(f->exec, f->top, t, 16, 60);
    tm_wait_for(&t->completions, 1, "a read after the abort");
    assert_status(t->status, STATUS_SUCCESS);
    assert_int_equal(t->spt.sptd.ScsiStatus, SCSISTAT_GOOD);
    assert_int_equal(integ_find_mismatch(t->data, 16 * 512, 4096, 5), -1);
    integ_irp_free(t);
    tm_assert_no_violations(f);
    free(t);
}

static void test_cancel_in_the_queue_completes_cancelled_without_the_miniport(void **state)
{
    struct tm_fixture *f = *state;
    enum { DEPTH = 32 }; /* testport's InitialLunQueueDepth */
    struct integ_irp *t = calloc(DEPTH + 1, sizeof(*t));
    atomic_store(&testport_faults.hold_ios, 1);
    for (int i = 0; i < DEPTH; i++)
        integ_irp_read(f->exec, f->top, &t[i], (uint32_t)i * 8, 60);
    tm_wait_held(DEPTH);
    int seen = atomic_load(&testport_faults.srbs_seen);
    integ_irp_read(f->exec, f->top, &t[DEPTH], 0, 60); /* no slot: waits in the unit's queue */
    usleep(20000);
    assert_int_equal(atomic_load(&testport_faults.srbs_seen), seen);
    assert_int_equal(atomic_load(&t[DEPTH].completions), 0);

    assert_true(IoCancelIrp(t[DEPTH].irp));
    assert_int_equal(atomic_load(&t[DEPTH].completions), 1); /* at once, in the cancel routine */
    assert_status(t[DEPTH].status, STATUS_CANCELLED);
    assert_int_equal(atomic_load(&testport_faults.aborts_seen), 0);

    /* one held request aborted too; the rest released complete normally */
    assert_true(IoCancelIrp(t[3].irp));
    tm_wait_for(&t[3].completions, 1, "the aborted IRP");
    assert_status(t[3].status, STATUS_CANCELLED);
    atomic_store(&testport_faults.hold_ios, 0);
    assert_int_equal(testport_release_held(), DEPTH - 1);
    for (int i = 0; i < DEPTH; i++) {
        tm_wait_for(&t[i].completions, 1, "a released IRP");
        if (i != 3) {
            assert_status(t[i].status, STATUS_SUCCESS);
            assert_int_equal(integ_find_mismatch(t[i].data, (uint64_t)i * 8 * 512, 4096, 5), -1);
        }
    }
    /* the cancelled one never reached the miniport */
    assert_int_equal(atomic_load(&testport_faults.srbs_seen), seen);
    usleep(20000);
    for (int i = 0; i <= DEPTH; i++) {
        assert_int_equal(atomic_load(&t[i].completions), 1);
        integ_irp_free(&t[i]);
    }
    tm_assert_no_violations(f);
    free(t);
}

static atomic_int tm_releasing;

static void *tm_releaser(void *arg)
{
    while (atomic_load(&tm_releasing))
        if (!testport_release_held())
            sched_yield();
    return NULL;
}

static void test_cancel_racing_completion_completes_each_irp_once(void **state)
{
    struct tm_fixture *f = *state;
    enum { N = 300 };
    struct integ_irp *t = calloc(N, sizeof(*t));
    pthread_t thread;
    int cancelled = 0, succeeded = 0;

    atomic_store(&testport_faults.hold_ios, 1);
    atomic_store(&tm_releasing, 1);
    assert_int_equal(pthread_create(&thread, NULL, tm_releaser, NULL), 0);
    for (int i = 0; i < N; i++) {
        integ_irp_read(f->exec, f->top, &t[i], (uint32_t)(i % 64) * 8, 60);
        for (volatile int spin = 0; spin < (i * 37) % 3000; spin++)
            ;
        IoCancelIrp(t[i].irp);
    }
    for (int i = 0; i < N; i++)
        tm_wait_for(&t[i].completions, 1, "a raced IRP");
    atomic_store(&tm_releasing, 0);
    pthread_join(thread, NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&t[i].completions), 1);
        if (t[i].status == STATUS_CANCELLED) {
            cancelled++;
        } else {
            assert_status(t[i].status, STATUS_SUCCESS);
            assert_int_equal(integ_find_mismatch(t[i].data, (uint64_t)(i % 64) * 8 * 512, 4096, 5),
                             -1);
            succeeded++;
        }
        integ_irp_free(&t[i]);
    }
    print_message("raced %d: %d cancelled, %d completed normally\n", N, cancelled, succeeded);
    assert_int_equal(cancelled + succeeded, N);
    assert_int_equal(atomic_load(&testport_faults.held), 0);
    tm_assert_no_violations(f);
    free(t);
}

struct tm_async {
    atomic_int done;
    storstack_status_t status;
};

static void tm_async_done(void *context, storstack_status_t status, uint64_t information)
{
    struct tm_async *a = context;
    a->status = status;
    atomic_fetch_add(&a->done, 1);
}

static void tm_assert_unit_attention(struct tm_fixture *f, uint8_t ascq)
{
    static const uint8_t tur[6] = {0};
    struct integ_spt r;
    integ_pass_through(f->disk, 1, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    integ_assert_sense(&r, SCSI_SENSE_UNIT_ATTENTION, 0x29, ascq, -1, "after the reset");
    integ_pass_through(f->disk, 1, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
}

/* Holds four pass-through reads and one class read, runs the reset IOCTL, checks the outcome. */
static void tm_reset_with_requests_in_flight(struct tm_fixture *f, uint32_t code, const void *in,
                                             uint32_t in_len, atomic_int *counter, uint8_t ascq)
{
    struct integ_irp *t = calloc(4, sizeof(*t));
    struct tm_async a = {0};
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t returned;

    atomic_store(&testport_faults.attention_on_reset, 1);
    atomic_store(&testport_faults.hold_ios, 1);
    for (int i = 0; i < 4; i++)
        integ_irp_read(f->exec, f->top, &t[i], (uint32_t)i * 8, 60);
    assert_status(storstack_read_async(f->disk, buf, 4096, 128 * KIB, tm_async_done, &a),
                  STATUS_PENDING);
    tm_wait_held(5);
    /* the class driver's retry of the read must not be held again */
    atomic_store(&testport_faults.hold_ios, 0);

    assert_status(storstack_ioctl(f->disk, code, in, in_len, NULL, 0, &returned), STATUS_SUCCESS);
    assert_int_equal(atomic_load(counter), 1);
    assert_int_equal(atomic_load(&testport_faults.reset_victims), 5);
    assert_int_equal(atomic_load(&testport_faults.held), 0);
    for (int i = 0; i < 4; i++) {
        tm_wait_for(&t[i].completions, 1, "a pass-through ended by the reset");
        /* SRB_STATUS_BUS_RESET: the pass-through caller sees a failed request */
        assert_status(t[i].status, STATUS_IO_DEVICE_ERROR);
    }
    /* the class driver retries the read (its retry meets the unit attention, retried too) */
    tm_wait_for(&a.done, 1, "the class read");
    assert_status(a.status, STATUS_SUCCESS);
    assert_int_equal(integ_find_mismatch(buf, 128 * KIB, 4096, 5), -1);
    usleep(20000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&t[i].completions), 1);
        integ_irp_free(&t[i]);
    }
    assert_int_equal(atomic_load(&a.done), 1);
    integ_free(buf);
    free(t);
    /* the class read took the unit attention: raise a fresh one for the pass-through check */
    atomic_store(&testport_faults.reset_victims, 0);
    assert_status(storstack_ioctl(f->disk, code, in, in_len, NULL, 0, &returned), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.reset_victims), 0);
    tm_assert_unit_attention(f, ascq);
    tm_assert_no_violations(f);
}

static void test_reset_device_ioctl_resets_the_lun_and_ends_requests_once(void **state)
{
    struct tm_fixture *f = *state;
    tm_reset_with_requests_in_flight(f, IOCTL_STORAGE_RESET_DEVICE, NULL, 0,
                                     &testport_faults.lun_resets, 0x03);
}

static void test_reset_bus_ioctl_resets_the_bus_and_ends_requests_once(void **state)
{
    struct tm_fixture *f = *state;
    STORAGE_BUS_RESET_REQUEST req = {.PathId = 0};
    tm_reset_with_requests_in_flight(f, IOCTL_STORAGE_RESET_BUS, &req, sizeof(req),
                                     &testport_faults.resets, 0x02);
}

static void test_reset_bus_ioctl_rejects_a_bad_path_and_a_short_buffer(void **state)
{
    struct tm_fixture *f = *state;
    STORAGE_BUS_RESET_REQUEST req = {.PathId = 7};
    uint32_t returned;
    assert_status(
        storstack_ioctl(f->disk, IOCTL_STORAGE_RESET_BUS, &req, sizeof(req), NULL, 0, &returned),
        STATUS_INVALID_PARAMETER);
    assert_status(storstack_ioctl(f->disk, IOCTL_STORAGE_RESET_BUS, NULL, 0, NULL, 0, &returned),
                  STATUS_INVALID_PARAMETER);
    assert_int_equal(atomic_load(&testport_faults.resets), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cancel_at_the_miniport_sends_abort_and_completes_the_irp_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cancel_in_the_queue_completes_cancelled_without_the_miniport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_racing_completion_completes_each_irp_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_reset_device_ioctl_resets_the_lun_and_ends_requests_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_bus_ioctl_resets_the_bus_and_ends_requests_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_bus_ioctl_rejects_a_bad_path_and_a_short_buffer,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
