/*
 * Storport queue management through a whole stack with the testport miniport: an error freezes
 * the unit's queue (SRB_STATUS_QUEUE_FROZEN) until SRB_FUNCTION_RELEASE_QUEUE or FLUSH_QUEUE,
 * with SRB_FLAGS_BYPASS_FROZEN_QUEUE passing and SRB_FLAGS_NO_QUEUE_FREEZE not freezing; the
 * class driver releases the queues its errors froze; LOCK_QUEUE holds everything but
 * SRB_FLAGS_BYPASS_LOCKED_QUEUE until UNLOCK_QUEUE; SRB_STATUS_BUSY and QUEUE FULL are sent again
 * by Storport itself (a pass-through, which nobody above retries, succeeds); and the miniport's
 * StorPortPauseDevice/ResumeDevice, StorPortPause/Resume and StorPortDeviceBusy hold requests
 * back. SRBs are sent by the test straight to the unit's PDO, as a class driver does.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/wdm/io.h>

#include "integ.h"
#include "kernel/executive.h"
#include "testport.h"

static const char qm_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n";

struct qm_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    PEXECUTIVE exec;
    PDEVICE_OBJECT pdo; /* the unit's PDO, \Device\RaidPort0\P0T0L0 */
};

struct qm_srb {
    PIRP irp;
    atomic_int completions;
    SCSI_REQUEST_BLOCK srb;
    UCHAR sense[32];
    uint8_t data[4096];
};

static int setup(void **state)
{
    struct qm_fixture *f = calloc(1, sizeof(*f));
    testport_reset_faults();
    f->stack = integ_boot_ex(qm_config, &testport_package, 1);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->exec = storstack_local_executive(f->stack);
    assert_status(IoGetDeviceObjectPointer(f->exec, "\\Device\\RaidPort0\\P0T0L0", &f->pdo),
                  STATUS_SUCCESS);
    integ_write_pattern(f->disk, 0, 256 * KIB, 9);
    testport_reset_faults();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct qm_fixture *f = *state;
    EXECUTIVE_COUNTERS c;
    testport_resume_device();
    testport_resume_adapter();
    atomic_store(&testport_faults.hold_ios, 0);
    testport_release_held();
    testport_reset_faults();
    ExQueryCounters(f->exec, &c);
    assert_int_equal(c.Violations, 0);
    ObDereferenceObject(f->pdo);
    storstack_close(f->disk);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

static NTSTATUS qm_done(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    struct qm_srb *q = Context;
    atomic_fetch_add(&q->completions, 1);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Sends an SRB of `function` (for EXECUTE_SCSI: READ(10) of 8 blocks at lba) to the unit. */
static struct qm_srb *qm_send(struct qm_fixture *f, UCHAR function, uint32_t lba, ULONG flags)
{
    struct qm_srb *q = calloc(1, sizeof(*q));
    PIO_STACK_LOCATION sp;
    q->srb.Length = sizeof(q->srb);
    q->srb.Function = function;
    q->srb.SrbFlags = flags;
    q->srb.TimeOutValue = 30;
    if (function == SRB_FUNCTION_EXECUTE_SCSI) {
        q->srb.CdbLength = 10;
        q->srb.Cdb[0] = SCSIOP_READ;
        integ_put_be32(&q->srb.Cdb[2], lba);
        q->srb.Cdb[8] = 8;
        q->srb.DataBuffer = q->data;
        q->srb.DataTransferLength = sizeof(q->data);
        q->srb.SrbFlags |= SRB_FLAGS_DATA_IN;
        q->srb.SenseInfoBuffer = q->sense;
        q->srb.SenseInfoBufferLength = sizeof(q->sense);
    }
    q->irp = IoAllocateIrpEx(f->exec, f->pdo->StackSize, FALSE);
    assert_non_null(q->irp);
    sp = IoGetNextIrpStackLocation(q->irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = &q->srb;
    IoSetCompletionRoutine(q->irp, qm_done, q, TRUE, TRUE, TRUE);
    IoCallDriver(f->pdo, q->irp);
    return q;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void qm_wait(struct qm_srb *q, const char *what)
{
    double end = now_seconds() + 10.0;
    while (!atomic_load(&q->completions)) {
        if (now_seconds() > end)
            fail_msg("timed out waiting for %s", what);
        usleep(500);
    }
}

/* Asserts the SRB has not completed, after giving it 50 ms. */
static void qm_assert_waiting(struct qm_srb *q, const char *what)
{
    usleep(50000);
    if (atomic_load(&q->completions))
        fail_msg("%s completed (SRB status 0x%02x); it should wait", what, q->srb.SrbStatus);
}

static void qm_assert_read_ok(struct qm_srb *q, uint32_t lba)
{
    qm_wait(q, "a read");
    assert_int_equal(atomic_load(&q->completions), 1);
    assert_int_equal(q->srb.SrbStatus, SRB_STATUS_SUCCESS);
    assert_int_equal(integ_find_mismatch(q->data, (uint64_t)lba * 512, 4096, 9), -1);
}

static void qm_free(struct qm_srb *q)
{
    IoFreeIrp(q->irp);
    free(q);
}

/* A read that fails with MEDIUM ERROR and freezes the queue. */
static void qm_freeze(struct qm_fixture *f)
{
    atomic_store(&testport_faults.medium_error, 1);
    struct qm_srb *bad = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 0, 0);
    qm_wait(bad, "the failing read");
    atomic_store(&testport_faults.medium_error, 0);
    assert_int_equal(SRB_STATUS(bad->srb.SrbStatus), SRB_STATUS_ERROR);
    assert_true(bad->srb.SrbStatus & SRB_STATUS_QUEUE_FROZEN);
    assert_true(bad->srb.SrbStatus & SRB_STATUS_AUTOSENSE_VALID);
    assert_int_equal(bad->sense[2] & 0x0F, SCSI_SENSE_MEDIUM_ERROR);
    qm_free(bad);
}

static void test_error_freezes_the_queue_until_release_queue(void **state)
{
    struct qm_fixture *f = *state;
    qm_freeze(f);
    int seen = atomic_load(&testport_faults.srbs_seen);
    struct qm_srb *waiting = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_waiting(waiting, "a read behind a frozen queue");
    assert_int_equal(atomic_load(&testport_faults.srbs_seen), seen);

    struct qm_srb *bypass =
        qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 16, SRB_FLAGS_BYPASS_FROZEN_QUEUE);
    qm_assert_read_ok(bypass, 16);
    qm_assert_waiting(waiting, "a read behind a frozen queue");

    struct qm_srb *release = qm_send(f, SRB_FUNCTION_RELEASE_QUEUE, 0, 0);
    qm_wait(release, "RELEASE_QUEUE");
    assert_int_equal(release->srb.SrbStatus, SRB_STATUS_SUCCESS);
    qm_assert_read_ok(waiting, 8);
    qm_free(release);
    qm_free(bypass);
    qm_free(waiting);
}

static void test_flush_queue_completes_waiting_requests_and_unfreezes(void **state)
{
    struct qm_fixture *f = *state;
    qm_freeze(f);
    struct qm_srb *w1 = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    struct qm_srb *w2 = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 16, 0);
    qm_assert_waiting(w2, "a read behind a frozen queue");
    struct qm_srb *flush = qm_send(f, SRB_FUNCTION_FLUSH_QUEUE, 0, 0);
    qm_wait(flush, "FLUSH_QUEUE");
    assert_int_equal(flush->srb.SrbStatus, SRB_STATUS_SUCCESS);
    qm_wait(w1, "a flushed read");
    qm_wait(w2, "a flushed read");
    assert_int_equal(w1->srb.SrbStatus, SRB_STATUS_REQUEST_FLUSHED);
    assert_int_equal(w2->srb.SrbStatus, SRB_STATUS_REQUEST_FLUSHED);
    assert_status(w1->irp->IoStatus.Status, STATUS_CANCELLED);
    struct qm_srb *after = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 24, 0);
    qm_assert_read_ok(after, 24);
    qm_free(flush);
    qm_free(w1);
    qm_free(w2);
    qm_free(after);
}

static void test_no_queue_freeze_flag_leaves_the_queue_running(void **state)
{
    struct qm_fixture *f = *state;
    atomic_store(&testport_faults.medium_error, 1);
    struct qm_srb *bad = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 0, SRB_FLAGS_NO_QUEUE_FREEZE);
    qm_wait(bad, "the failing read");
    atomic_store(&testport_faults.medium_error, 0);
    assert_int_equal(SRB_STATUS(bad->srb.SrbStatus), SRB_STATUS_ERROR);
    assert_false(bad->srb.SrbStatus & SRB_STATUS_QUEUE_FROZEN);
    struct qm_srb *next = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_read_ok(next, 8);
    qm_free(bad);
    qm_free(next);
}

struct qm_async {
    atomic_int done;
    storstack_status_t status;
};

static void qm_async_done(void *context, storstack_status_t status, uint64_t information)
{
    struct qm_async *a = context;
    a->status = status;
    atomic_fetch_add(&a->done, 1);
}

static void test_class_driver_releases_the_queues_its_errors_froze(void **state)
{
    struct qm_fixture *f = *state;
    enum { N = 8 };
    struct qm_async a[N];
    uint8_t *buf = integ_alloc(N * 4096, 0);
    memset(a, 0, sizeof(a));
    atomic_store(&testport_faults.medium_error, 1);
    for (int i = 0; i < N; i++)
        assert_status(storstack_read_async(f->disk, buf + i * 4096, 4096, (uint64_t)i * 4096,
                                           qm_async_done, &a[i]),
                      STATUS_PENDING);
    for (int i = 0; i < N; i++) {
        double end = now_seconds() + 10.0;
        while (!atomic_load(&a[i].done))
            if (now_seconds() > end)
                fail_msg("read %d never completed: a frozen queue was not released", i);
        assert_status(a[i].status, STATUS_DEVICE_DATA_ERROR);
    }
    atomic_store(&testport_faults.medium_error, 0);
    integ_verify_pattern(f->disk, 0, 64 * KIB, 9);
    integ_free(buf);
}

static void test_lock_queue_holds_all_but_bypass_requests_until_unlock(void **state)
{
    struct qm_fixture *f = *state;
    struct qm_srb *lock = qm_send(f, SRB_FUNCTION_LOCK_QUEUE, 0, 0);
    qm_wait(lock, "LOCK_QUEUE");
    assert_int_equal(lock->srb.SrbStatus, SRB_STATUS_SUCCESS);
    struct qm_srb *waiting = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_waiting(waiting, "a read behind a locked queue");
    struct qm_srb *frozen_bypass =
        qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 24, SRB_FLAGS_BYPASS_FROZEN_QUEUE);
    qm_assert_waiting(frozen_bypass, "a frozen-queue bypass behind a locked queue");
    struct qm_srb *bypass =
        qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 16, SRB_FLAGS_BYPASS_LOCKED_QUEUE);
    qm_assert_read_ok(bypass, 16);
    struct qm_srb *unlock = qm_send(f, SRB_FUNCTION_UNLOCK_QUEUE, 0, 0);
    qm_wait(unlock, "UNLOCK_QUEUE");
    qm_assert_read_ok(waiting, 8);
    qm_assert_read_ok(frozen_bypass, 24);
    qm_free(lock);
    qm_free(waiting);
    qm_free(frozen_bypass);
    qm_free(bypass);
    qm_free(unlock);
}

static void test_busy_and_queue_full_are_sent_again_by_storport(void **state)
{
    struct qm_fixture *f = *state;
    static const uint8_t read10[10] = {0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0};
    uint8_t *buf = integ_alloc(4096, 0);
    struct integ_spt r;

    /* a pass-through is not retried above Storport: only Storport's requeue makes it succeed */
    atomic_store(&testport_faults.busy_reads, 2);
    integ_pass_through(f->disk, 1, 0, 0, read10, 10, INTEG_DATA_IN, buf, 4096, &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 3);
    assert_int_equal(integ_find_mismatch(buf, 8 * 512, 4096, 9), -1);

    atomic_store(&testport_faults.reads_seen, 0);
    atomic_store(&testport_faults.queue_full_reads, 3);
    memset(buf, 0, 4096);
    integ_pass_through(f->disk, 1, 0, 0, read10, 10, INTEG_DATA_IN, buf, 4096, &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), 4);
    assert_int_equal(integ_find_mismatch(buf, 8 * 512, 4096, 9), -1);

    /* past Storport's requeues the status goes up: TASK SET FULL for the pass-through caller */
    atomic_store(&testport_faults.queue_full_reads, 4);
    integ_pass_through(f->disk, 1, 0, 0, read10, 10, INTEG_DATA_IN, buf, 4096, &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, SCSISTAT_QUEUE_FULL);
    integ_free(buf);
}

static void test_pause_device_holds_requests_for_its_timeout(void **state)
{
    struct qm_fixture *f = *state;
    atomic_store(&testport_faults.pause_device_on_read, 1);
    struct qm_srb *first = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 0, 0);
    qm_assert_read_ok(first, 0); /* the read that paused the LU still completes */
    double start = now_seconds();
    struct qm_srb *second = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_read_ok(second, 8);
    double took = now_seconds() - start;
    if (took < 0.8 || took > 3.0)
        fail_msg("a read during a 1 s device pause took %.2f s", took);
    qm_free(first);
    qm_free(second);
}

static void test_resume_device_and_resume_end_a_pause_early(void **state)
{
    struct qm_fixture *f = *state;
    atomic_store(&testport_faults.pause_device_on_read, 30);
    struct qm_srb *first = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 0, 0);
    qm_assert_read_ok(first, 0);
    struct qm_srb *second = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_waiting(second, "a read during a device pause");
    assert_true(testport_resume_device());
    qm_assert_read_ok(second, 8);

    assert_true(testport_pause_adapter(30));
    struct qm_srb *third = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 16, 0);
    qm_assert_waiting(third, "a read during an adapter pause");
    assert_true(testport_resume_adapter());
    qm_assert_read_ok(third, 16);
    qm_free(first);
    qm_free(second);
    qm_free(third);
}

static void test_device_busy_waits_for_completions(void **state)
{
    struct qm_fixture *f = *state;
    atomic_store(&testport_faults.hold_ios, 1);
    struct qm_srb *held = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 0, 0);
    double end = now_seconds() + 5.0;
    while (atomic_load(&testport_faults.held) < 1 && now_seconds() < end)
        usleep(500);
    assert_int_equal(atomic_load(&testport_faults.held), 1);
    atomic_store(&testport_faults.hold_ios, 0);
    assert_true(testport_device_busy(1));
    struct qm_srb *next = qm_send(f, SRB_FUNCTION_EXECUTE_SCSI, 8, 0);
    qm_assert_waiting(next, "a read while the device is busy");
    assert_int_equal(testport_release_held(), 1);
    qm_assert_read_ok(held, 0);
    qm_assert_read_ok(next, 8);
    qm_free(held);
    qm_free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_error_freezes_the_queue_until_release_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_queue_completes_waiting_requests_and_unfreezes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_queue_freeze_flag_leaves_the_queue_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_class_driver_releases_the_queues_its_errors_froze,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_queue_holds_all_but_bypass_requests_until_unlock,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_and_queue_full_are_sent_again_by_storport, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pause_device_holds_requests_for_its_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resume_device_and_resume_end_a_pause_early, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_busy_waits_for_completions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
