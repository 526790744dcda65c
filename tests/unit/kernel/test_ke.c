/*
 * Unit tests of the kernel's dispatcher services (kernel/ke.c): notification and synchronization
 * events (who is released, auto-reset, timeouts returning STATUS_TIMEOUT), DPCs (run on the DPC
 * threads with their arguments, not queued twice, removable while queued), timers (one-shot and
 * periodic firing within generous bounds, KeCancelTimer preventing expiry) and work items (run on
 * a worker thread that may wait, the device kept referenced while the item is queued) and spin
 * locks (mutual exclusion under contention, sleeping waiters woken by the release). These run
 * threads against each other and are meant to be clean under TSan (-DSS_SANITIZE=thread).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kernel/executive.h"

#define MS(n) ((LONGLONG)(n)*10000) /* 100 ns units */

static LARGE_INTEGER relative_ms(LONGLONG ms)
{
    LARGE_INTEGER t = {.QuadPart = -MS(ms)};
    return t;
}

static NTSTATUS wait_ms(PKEVENT event, LONGLONG ms)
{
    LARGE_INTEGER t = relative_ms(ms);
    return KeWaitForSingleObject(event, Executive, KernelMode, FALSE, &t);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    PEXECUTIVE ex = NULL;
    if (!NT_SUCCESS(ExCreateExecutive(&ex)))
        return -1;
    *state = ex;
    return 0;
}

static int teardown(void **state)
{
    ExDestroyExecutive(*state);
    return 0;
}

/* ---- Events -------------------------------------------------------------------------------- */

struct waiter {
    pthread_t thread;
    PKEVENT event;
    LONGLONG timeout_ms;
    atomic_int done;
    NTSTATUS status;
};

static void *waiter_thread(void *arg)
{
    struct waiter *w = arg;
    w->status = wait_ms(w->event, w->timeout_ms);
    atomic_store(&w->done, 1);
    return NULL;
}

static void start_waiter(struct waiter *w, PKEVENT event, LONGLONG timeout_ms)
{
    w->event = event;
    w->timeout_ms = timeout_ms;
    atomic_init(&w->done, 0);
    assert_int_equal(pthread_create(&w->thread, NULL, waiter_thread, w), 0);
}

static void test_notification_event_releases_every_waiter_and_stays_set(void **state)
{
    KEVENT event;
    struct waiter w[3];
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    for (int i = 0; i < 3; i++)
        start_waiter(&w[i], &event, 10000);
    sleep_ms(20);
    assert_int_equal(KeSetEvent(&event, 0, FALSE), 0); /* previous state */
    for (int i = 0; i < 3; i++) {
        pthread_join(w[i].thread, NULL);
        assert_int_equal(w[i].status, STATUS_SUCCESS);
    }
    assert_int_equal(KeReadStateEvent(&event), 1);
    assert_int_equal(wait_ms(&event, 0), STATUS_SUCCESS); /* still signalled */
    assert_int_equal(KeSetEvent(&event, 0, FALSE), 1);
    KeClearEvent(&event);
    assert_int_equal(KeReadStateEvent(&event), 0);
    assert_int_equal(wait_ms(&event, 0), STATUS_TIMEOUT);
    KeDeleteEvent(&event);
}

static void test_synchronization_event_releases_one_waiter_and_resets(void **state)
{
    KEVENT event;
    struct waiter w[2];
    KeInitializeEvent(&event, SynchronizationEvent, FALSE);
    start_waiter(&w[0], &event, 3000);
    start_waiter(&w[1], &event, 3000);
    sleep_ms(20);
    KeSetEvent(&event, 0, FALSE);
    /* exactly one is released; the other times out */
    pthread_join(w[0].thread, NULL);
    pthread_join(w[1].thread, NULL);
    int released = (w[0].status == STATUS_SUCCESS) + (w[1].status == STATUS_SUCCESS);
    int timed_out = (w[0].status == STATUS_TIMEOUT) + (w[1].status == STATUS_TIMEOUT);
    assert_int_equal(released, 1);
    assert_int_equal(timed_out, 1);
    assert_int_equal(KeReadStateEvent(&event), 0);

    /* a set with no waiter is consumed by the next wait only */
    KeSetEvent(&event, 0, FALSE);
    assert_int_equal(wait_ms(&event, 0), STATUS_SUCCESS);
    assert_int_equal(wait_ms(&event, 0), STATUS_TIMEOUT);
    KeDeleteEvent(&event);
}

static void test_wait_timeouts_return_status_timeout_after_the_delay(void **state)
{
    KEVENT event;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    ULONGLONG start = KeQueryInterruptTimePrecise(NULL);
    assert_int_equal(wait_ms(&event, 50), STATUS_TIMEOUT);
    ULONGLONG elapsed = KeQueryInterruptTimePrecise(NULL) - start;
    assert_true(elapsed >= (ULONGLONG)MS(45));
    assert_true(elapsed < (ULONGLONG)MS(5000));
    /* a zero timeout polls */
    assert_int_equal(wait_ms(&event, 0), STATUS_TIMEOUT);
    /* an absolute deadline in the past times out at once */
    LARGE_INTEGER past = {.QuadPart = (LONGLONG)KeQueryInterruptTimePrecise(NULL) - MS(10)};
    assert_int_equal(KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, &past),
                     STATUS_TIMEOUT);
    /* an initially signalled event does not wait */
    KeDeleteEvent(&event);
    KeInitializeEvent(&event, NotificationEvent, TRUE);
    assert_int_equal(wait_ms(&event, 1000), STATUS_SUCCESS);
    KeDeleteEvent(&event);
}

static void test_interrupt_time_is_monotonic(void **state)
{
    ULONGLONG a = KeQueryInterruptTimePrecise(NULL);
    sleep_ms(5);
    ULONGLONG b = KeQueryInterruptTimePrecise(NULL);
    assert_true(b > a);
    assert_true(KeQueryInterruptTime() <= KeQueryInterruptTimePrecise(NULL));
}

/* ---- DPCs ---------------------------------------------------------------------------------- */

struct dpc_probe {
    atomic_int runs;
    pthread_t thread;
    PVOID arg1, arg2;
    KEVENT ran;
    KEVENT release; /* blocker DPCs wait for it */
    KEVENT started;
};

static void probe_dpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    struct dpc_probe *p = Context;
    p->thread = pthread_self();
    p->arg1 = A1;
    p->arg2 = A2;
    atomic_fetch_add(&p->runs, 1);
    KeSetEvent(&p->ran, 0, FALSE);
}

static void blocker_dpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    struct dpc_probe *p = Context;
    KeSetEvent(&p->started, 0, FALSE);
    KeWaitForSingleObject(&p->release, Executive, KernelMode, FALSE, NULL);
}

static void probe_init(struct dpc_probe *p)
{
    memset(p, 0, sizeof(*p));
    KeInitializeEvent(&p->ran, NotificationEvent, FALSE);
    KeInitializeEvent(&p->release, NotificationEvent, FALSE);
    KeInitializeEvent(&p->started, NotificationEvent, FALSE);
}

static void probe_delete(struct dpc_probe *p)
{
    KeDeleteEvent(&p->ran);
    KeDeleteEvent(&p->release);
    KeDeleteEvent(&p->started);
}

static void test_dpc_runs_on_a_dpc_thread_with_its_arguments(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe p;
    KDPC dpc;
    probe_init(&p);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    assert_true(KeInsertQueueDpc(&dpc, (PVOID)0x11, (PVOID)0x22));
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&p.runs), 1);
    assert_false(pthread_equal(p.thread, pthread_self()));
    assert_ptr_equal(p.arg1, (PVOID)0x11);
    assert_ptr_equal(p.arg2, (PVOID)0x22);
    /* once it ran it can be queued again */
    KeClearEvent(&p.ran);
    sleep_ms(10);
    assert_true(KeInsertQueueDpc(&dpc, (PVOID)0x33, NULL));
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    assert_ptr_equal(p.arg1, (PVOID)0x33);
    ExDestroyExecutive(ex); /* drains the DPC threads before the probe goes */
    *state = NULL;
    assert_int_equal(atomic_load(&p.runs), 2);
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

/* Occupies every DPC thread with a blocker so queued DPCs stay queued. */
#define DPC_BLOCKERS 8
static void block_dpc_threads(PEXECUTIVE ex, struct dpc_probe *b, KDPC *dpcs, int *started)
{
    /* more blockers than threads: the ones that start tell how many threads there are */
    for (int i = 0; i < DPC_BLOCKERS; i++) {
        probe_init(&b[i]);
        KeInitializeDpcEx(ex, &dpcs[i], blocker_dpc, &b[i]);
        KeInsertQueueDpc(&dpcs[i], NULL, NULL);
    }
    sleep_ms(100);
    *started = 0;
    for (int i = 0; i < DPC_BLOCKERS; i++)
        *started += KeReadStateEvent(&b[i].started);
    assert_true(*started >= 1);
    assert_true(*started < DPC_BLOCKERS);
}

static void unblock_dpc_threads(struct dpc_probe *b)
{
    for (int i = 0; i < DPC_BLOCKERS; i++)
        KeSetEvent(&b[i].release, 0, FALSE);
}

static void test_queued_dpc_is_not_queued_twice(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe b[DPC_BLOCKERS], p;
    KDPC blockers[DPC_BLOCKERS], dpc;
    int started;
    block_dpc_threads(ex, b, blockers, &started);
    probe_init(&p);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    assert_true(KeInsertQueueDpc(&dpc, (PVOID)1, NULL));
    assert_false(KeInsertQueueDpc(&dpc, (PVOID)2, NULL)); /* already queued: not again */
    assert_false(KeInsertQueueDpc(&dpc, (PVOID)3, NULL));
    unblock_dpc_threads(b);
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    sleep_ms(50);
    assert_int_equal(atomic_load(&p.runs), 1);
    assert_ptr_equal(p.arg1, (PVOID)1); /* the arguments of the insert that queued it */
    ExDestroyExecutive(ex);
    *state = NULL;
    for (int i = 0; i < DPC_BLOCKERS; i++)
        probe_delete(&b[i]);
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

static void test_removed_dpc_does_not_run(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe b[DPC_BLOCKERS], p;
    KDPC blockers[DPC_BLOCKERS], dpc;
    int started;
    block_dpc_threads(ex, b, blockers, &started);
    probe_init(&p);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    assert_true(KeInsertQueueDpc(&dpc, NULL, NULL));
    assert_true(KeRemoveQueueDpc(&dpc));
    assert_false(KeRemoveQueueDpc(&dpc));
    unblock_dpc_threads(b);
    sleep_ms(100);
    assert_int_equal(atomic_load(&p.runs), 0);
    /* and it can be queued again afterwards */
    assert_true(KeInsertQueueDpc(&dpc, NULL, NULL));
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    ExDestroyExecutive(ex);
    *state = NULL;
    for (int i = 0; i < DPC_BLOCKERS; i++)
        probe_delete(&b[i]);
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

/* ---- Timers -------------------------------------------------------------------------------- */

static void test_one_shot_timer_fires_once_with_its_dpc_and_signals(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe p;
    KTIMER timer;
    KDPC dpc;
    probe_init(&p);
    KeInitializeTimerEx(ex, &timer);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    ULONGLONG start = KeQueryInterruptTimePrecise(NULL);
    assert_false(KeSetTimer(&timer, relative_ms(30), &dpc));
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    ULONGLONG elapsed = KeQueryInterruptTimePrecise(NULL) - start;
    assert_true(elapsed >= (ULONGLONG)MS(25));
    assert_true(elapsed < (ULONGLONG)MS(5000));
    assert_int_equal(wait_ms(&timer.Signal, 1000), STATUS_SUCCESS);
    sleep_ms(100);
    assert_int_equal(atomic_load(&p.runs), 1);
    assert_false(KeCancelTimer(&timer)); /* already expired */
    ExDestroyExecutive(ex);
    *state = NULL;
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

static void test_periodic_timer_fires_repeatedly_until_cancelled(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe p;
    KTIMER timer;
    KDPC dpc;
    probe_init(&p);
    KeInitializeTimerEx(ex, &timer);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    KeSetTimerEx(&timer, relative_ms(10), 10, &dpc);
    for (int i = 0; i < 500 && atomic_load(&p.runs) < 3; i++)
        sleep_ms(10);
    assert_true(atomic_load(&p.runs) >= 3);
    assert_true(KeCancelTimer(&timer)); /* a periodic timer stays set between expiries */
    sleep_ms(50);                       /* a DPC queued just before the cancel may still run */
    int after_cancel = atomic_load(&p.runs);
    sleep_ms(150);
    assert_int_equal(atomic_load(&p.runs), after_cancel);
    ExDestroyExecutive(ex);
    *state = NULL;
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

static void test_cancelled_timer_does_not_fire(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe p;
    KTIMER timer;
    KDPC dpc;
    probe_init(&p);
    KeInitializeTimerEx(ex, &timer);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    assert_false(KeCancelTimer(&timer)); /* never set */
    KeSetTimer(&timer, relative_ms(100), &dpc);
    assert_true(KeCancelTimer(&timer));
    assert_false(KeCancelTimer(&timer));
    sleep_ms(250);
    assert_int_equal(atomic_load(&p.runs), 0);
    assert_int_equal(KeReadStateEvent(&timer.Signal), 0);
    ExDestroyExecutive(ex);
    *state = NULL;
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

static void test_setting_a_set_timer_again_replaces_its_due_time(void **state)
{
    PEXECUTIVE ex = *state;
    struct dpc_probe p;
    KTIMER timer;
    KDPC dpc;
    probe_init(&p);
    KeInitializeTimerEx(ex, &timer);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    assert_false(KeSetTimer(&timer, relative_ms(10000), &dpc));
    assert_true(KeSetTimer(&timer, relative_ms(20), &dpc)); /* was set: TRUE */
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    sleep_ms(50);
    assert_int_equal(atomic_load(&p.runs), 1);
    ExDestroyExecutive(ex);
    *state = NULL;
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

static void test_timer_without_dpc_signals_its_event(void **state)
{
    PEXECUTIVE ex = *state;
    KTIMER t[3];
    LONGLONG due[3] = {60, 20, 40};
    for (int i = 0; i < 3; i++) {
        KeInitializeTimerEx(ex, &t[i]);
        KeSetTimer(&t[i], relative_ms(due[i]), NULL);
    }
    /* without a DPC a timer only signals */
    assert_int_equal(wait_ms(&t[1].Signal, 5000), STATUS_SUCCESS);
    assert_int_equal(wait_ms(&t[2].Signal, 5000), STATUS_SUCCESS);
    assert_int_equal(wait_ms(&t[0].Signal, 5000), STATUS_SUCCESS);
    ExDestroyExecutive(ex);
    *state = NULL;
    for (int i = 0; i < 3; i++)
        KeDeleteEvent(&t[i].Signal);
    assert_int_equal(setup(state), 0);
}

/* ---- Work items ---------------------------------------------------------------------------- */

static NTSTATUS no_dispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    Irp->IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_INVALID_DEVICE_REQUEST;
}

static void init_driver(PDRIVER_OBJECT drv, PEXECUTIVE ex)
{
    memset(drv, 0, sizeof(*drv));
    drv->Type = IO_TYPE_DRIVER;
    drv->Executive = ex;
    drv->DriverExtension = &drv->ExtensionStorage;
    drv->ExtensionStorage.DriverObject = drv;
    snprintf(drv->DriverName, sizeof(drv->DriverName), "\\Driver\\ketest");
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        drv->MajorFunction[i] = no_dispatch;
}

struct work_probe {
    PIO_WORKITEM item;
    PDEVICE_OBJECT expected_device;
    atomic_int runs;
    pthread_t thread;
    PDEVICE_OBJECT device;
    char device_name[96];
    PVOID context;
    NTSTATUS wait_status;
    KEVENT gate; /* the routine waits on it: work items may block */
    KEVENT started;
    KEVENT done;
    BOOLEAN free_item;
};

static void work_routine(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    struct work_probe *w = Context;
    w->thread = pthread_self();
    w->device = DeviceObject;
    snprintf(w->device_name, sizeof(w->device_name), "%s", DeviceObject->Name);
    w->context = Context;
    KeSetEvent(&w->started, 0, FALSE);
    w->wait_status = KeWaitForSingleObject(&w->gate, Executive, KernelMode, FALSE, NULL);
    atomic_fetch_add(&w->runs, 1);
    if (w->free_item)
        IoFreeWorkItem(w->item);
    KeSetEvent(&w->done, 0, FALSE);
}

static void work_init(struct work_probe *w, PDEVICE_OBJECT dev, BOOLEAN gate_open)
{
    memset(w, 0, sizeof(*w));
    KeInitializeEvent(&w->gate, NotificationEvent, gate_open);
    KeInitializeEvent(&w->started, NotificationEvent, FALSE);
    KeInitializeEvent(&w->done, NotificationEvent, FALSE);
    w->item = IoAllocateWorkItem(dev);
    assert_non_null(w->item);
    w->expected_device = dev;
    w->free_item = TRUE;
}

static void work_delete(struct work_probe *w)
{
    KeDeleteEvent(&w->gate);
    KeDeleteEvent(&w->started);
    KeDeleteEvent(&w->done);
}

static void test_work_item_runs_on_a_worker_thread_that_may_wait(void **state)
{
    PEXECUTIVE ex = *state;
    DRIVER_OBJECT drv;
    PDEVICE_OBJECT dev;
    struct work_probe w;
    init_driver(&drv, ex);
    assert_int_equal(
        IoCreateDevice(&drv, 0, "\\Device\\KeWork", FILE_DEVICE_UNKNOWN, 0, FALSE, &dev),
        STATUS_SUCCESS);
    work_init(&w, dev, FALSE);
    IoQueueWorkItem(w.item, work_routine, DelayedWorkQueue, &w);
    assert_int_equal(wait_ms(&w.started, 5000), STATUS_SUCCESS);
    /* the routine is blocked in a wait (PASSIVE_LEVEL work); a DPC still runs meanwhile */
    struct dpc_probe p;
    KDPC dpc;
    probe_init(&p);
    KeInitializeDpcEx(ex, &dpc, probe_dpc, &p);
    KeInsertQueueDpc(&dpc, NULL, NULL);
    assert_int_equal(wait_ms(&p.ran, 5000), STATUS_SUCCESS);
    KeSetEvent(&w.gate, 0, FALSE);
    assert_int_equal(wait_ms(&w.done, 5000), STATUS_SUCCESS);
    assert_int_equal(w.wait_status, STATUS_SUCCESS);
    assert_false(pthread_equal(w.thread, pthread_self()));
    assert_false(pthread_equal(w.thread, p.thread)); /* not a DPC thread */
    assert_ptr_equal(w.device, dev);
    assert_ptr_equal(w.context, &w);
    assert_int_equal(atomic_load(&w.runs), 1);
    IoDeleteDevice(dev);
    ExDestroyExecutive(ex);
    *state = NULL;
    work_delete(&w);
    probe_delete(&p);
    assert_int_equal(setup(state), 0);
}

/* The executive's device count once it reaches `want` (or after 5 s, whatever it is then). */
static int wait_devices(PEXECUTIVE ex, int want)
{
    EXECUTIVE_COUNTERS c;
    for (int i = 0; i < 500; i++) {
        ExQueryCounters(ex, &c);
        if (c.Devices == want)
            break;
        sleep_ms(10);
    }
    return (int)c.Devices;
}

static void test_device_stays_referenced_while_its_work_item_is_queued(void **state)
{
    PEXECUTIVE ex = *state;
    DRIVER_OBJECT drv;
    PDEVICE_OBJECT busy_dev, dev;
    struct work_probe blockers[4], w;
    EXECUTIVE_COUNTERS c;
    init_driver(&drv, ex);
    assert_int_equal(IoCreateDevice(&drv, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &busy_dev),
                     STATUS_SUCCESS);
    assert_int_equal(
        IoCreateDevice(&drv, 0, "\\Device\\Queued", FILE_DEVICE_UNKNOWN, 0, FALSE, &dev),
        STATUS_SUCCESS);
    /* occupy every worker thread */
    for (int i = 0; i < 4; i++) {
        work_init(&blockers[i], busy_dev, FALSE);
        IoQueueWorkItem(blockers[i].item, work_routine, DelayedWorkQueue, &blockers[i]);
    }
    assert_int_equal(wait_ms(&blockers[0].started, 5000), STATUS_SUCCESS);
    sleep_ms(50);
    int busy = 0;
    for (int i = 0; i < 4; i++)
        busy += KeReadStateEvent(&blockers[i].started);
    assert_true(busy < 4); /* some blockers are still queued: all workers are busy */

    work_init(&w, dev, TRUE);
    IoQueueWorkItem(w.item, work_routine, CriticalWorkQueue, &w);
    /* the driver deletes its device while the item is queued */
    IoDeleteDevice(dev);
    ExQueryCounters(ex, &c);
    assert_int_equal(c.Devices, 2); /* not freed: the queued item holds it */
    for (int i = 0; i < 4; i++)
        KeSetEvent(&blockers[i].gate, 0, FALSE);
    assert_int_equal(wait_ms(&w.done, 5000), STATUS_SUCCESS);
    assert_string_equal(w.device_name, "\\Device\\Queued");
    for (int i = 0; i < 4; i++)
        assert_int_equal(wait_ms(&blockers[i].done, 5000), STATUS_SUCCESS);
    /* once the routine returned, the last reference goes (the worker drops it after the
     * routine signalled `done`, so wait for it) */
    assert_int_equal(wait_devices(ex, 1), 1);
    IoDeleteDevice(busy_dev); /* likewise the blockers' references to busy_dev */
    assert_int_equal(wait_devices(ex, 0), 0);
    ExDestroyExecutive(ex);
    *state = NULL;
    for (int i = 0; i < 4; i++)
        work_delete(&blockers[i]);
    work_delete(&w);
    assert_int_equal(setup(state), 0);
}

/* ---- spin locks ---- */

struct spin_shared {
    KSPIN_LOCK lock;
    uint64_t counter; /* plain: only the lock orders the increments */
    atomic_int inside;
    atomic_int violations;
    int iterations;
};

static void *spin_worker(void *arg)
{
    struct spin_shared *s = arg;
    for (int i = 0; i < s->iterations; i++) {
        KeAcquireSpinLock(&s->lock, NULL);
        if (atomic_fetch_add(&s->inside, 1) != 0)
            atomic_fetch_add(&s->violations, 1);
        s->counter++;
        atomic_fetch_sub(&s->inside, 1);
        KeReleaseSpinLock(&s->lock, 0);
    }
    return NULL;
}

static void test_spin_lock_excludes_under_contention(void **state)
{
    (void)state;
    static struct spin_shared s;
    memset(&s, 0, sizeof(s));
    KeInitializeSpinLock(&s.lock);
    s.iterations = 200000;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, spin_worker, &s);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&s.violations), 0);
    assert_int_equal(s.counter, 4ull * 200000);
    KeDeleteSpinLock(&s.lock);
}

/* Waiters that outlast the spin go to sleep in the kernel; the release must wake each of them. */
static void test_spin_lock_held_long_wakes_its_sleeping_waiters(void **state)
{
    (void)state;
    static struct spin_shared s;
    memset(&s, 0, sizeof(s));
    KeInitializeSpinLock(&s.lock);
    s.iterations = 1000;
    KeAcquireSpinLock(&s.lock, NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, spin_worker, &s);
    sleep_ms(100); /* far beyond the spin: they sleep on the futex now */
    assert_int_equal(s.counter, 0);
    KeReleaseSpinLock(&s.lock, 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&s.violations), 0);
    assert_int_equal(s.counter, 3ull * 1000);
    /* and the lock is free again */
    KeAcquireSpinLock(&s.lock, NULL);
    KeReleaseSpinLock(&s.lock, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_notification_event_releases_every_waiter_and_stays_set),
        T(test_synchronization_event_releases_one_waiter_and_resets),
        T(test_wait_timeouts_return_status_timeout_after_the_delay),
        T(test_interrupt_time_is_monotonic),
        T(test_dpc_runs_on_a_dpc_thread_with_its_arguments),
        T(test_queued_dpc_is_not_queued_twice),
        T(test_removed_dpc_does_not_run),
        T(test_one_shot_timer_fires_once_with_its_dpc_and_signals),
        T(test_periodic_timer_fires_repeatedly_until_cancelled),
        T(test_cancelled_timer_does_not_fire),
        T(test_setting_a_set_timer_again_replaces_its_due_time),
        T(test_timer_without_dpc_signals_its_event),
        T(test_work_item_runs_on_a_worker_thread_that_may_wait),
        T(test_device_stays_referenced_while_its_work_item_is_queued),
        T(test_spin_lock_excludes_under_contention),
        T(test_spin_lock_held_long_wakes_its_sleeping_waiters),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
