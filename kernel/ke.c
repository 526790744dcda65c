/*
 * The kernel's dispatcher services: spin locks, events, interrupt time, DPCs, timers and work
 * items. DPCs run on the executive's DPC threads (the DISPATCH_LEVEL context completion paths
 * use), timers fire on one timer thread that queues their DPCs or signals them, and work items
 * run on system worker threads (PASSIVE_LEVEL). Thread counts are fixed at executive creation.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kernel/executive_p.h"

/*
 * Spin locks: a three-state futex lock (free, held, held with sleepers). Uncontended, acquire is
 * one compare-and-swap and release one atomic decrement, with no call into the C library; a
 * waiter spins a little (the holder is usually on another CPU and about to release) and then
 * sleeps in the kernel, because a user-space holder can be descheduled mid-hold. A zeroed lock
 * is a free one.
 */
#define KIP_SPIN_TRIES 100

static void KipFutex(atomic_uint *word, int op, unsigned value)
{
    syscall(SYS_futex, (unsigned *)word, op | FUTEX_PRIVATE_FLAG, value, NULL, NULL, 0);
}

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
    atomic_init(&SpinLock->State, 0);
}

static void KipAcquireSpinLockContended(PKSPIN_LOCK SpinLock)
{
    unsigned expected;
    for (int i = 0; i < KIP_SPIN_TRIES; i++) {
        expected = 0;
        if (atomic_load_explicit(&SpinLock->State, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&SpinLock->State, &expected, 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    /* Mark sleepers present (2) and sleep until a release; whoever takes it from here leaves 2
     * behind, so its release wakes the next sleeper. */
    while (atomic_exchange_explicit(&SpinLock->State, 2, memory_order_acquire) != 0)
        KipFutex(&SpinLock->State, FUTEX_WAIT, 2);
}

void KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql)
{
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&SpinLock->State, &expected, 1,
                                                 memory_order_acquire, memory_order_relaxed))
        KipAcquireSpinLockContended(SpinLock);
    if (OldIrql)
        *OldIrql = PASSIVE_LEVEL;
}

void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    (void)NewIrql;
    if (atomic_fetch_sub_explicit(&SpinLock->State, 1, memory_order_release) != 1) {
        atomic_store_explicit(&SpinLock->State, 0, memory_order_release);
        KipFutex(&SpinLock->State, FUTEX_WAKE, 1);
    }
}

void KeDeleteSpinLock(PKSPIN_LOCK SpinLock)
{
    (void)SpinLock;
}

void KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&Event->Mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&Event->Cond, &attr);
    pthread_condattr_destroy(&attr);
    Event->Type = Type;
    Event->SignalState = State ? 1 : 0;
}

void KeDeleteEvent(PKEVENT Event)
{
    pthread_mutex_destroy(&Event->Mutex);
    pthread_cond_destroy(&Event->Cond);
}

LONG KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait)
{
    LONG previous;
    pthread_mutex_lock(&Event->Mutex);
    previous = Event->SignalState;
    Event->SignalState = 1;
    if (Event->Type == NotificationEvent)
        pthread_cond_broadcast(&Event->Cond);
    else
        pthread_cond_signal(&Event->Cond);
    pthread_mutex_unlock(&Event->Mutex);
    return previous;
}

void KeClearEvent(PKEVENT Event)
{
    pthread_mutex_lock(&Event->Mutex);
    Event->SignalState = 0;
    pthread_mutex_unlock(&Event->Mutex);
}

LONG KeReadStateEvent(PKEVENT Event)
{
    LONG state;
    pthread_mutex_lock(&Event->Mutex);
    state = Event->SignalState;
    pthread_mutex_unlock(&Event->Mutex);
    return state;
}

static void KipAbsTimespec(ULONGLONG interrupt_time, struct timespec *ts)
{
    ts->tv_sec = (time_t)(interrupt_time / 10000000ull);
    ts->tv_nsec = (long)((interrupt_time % 10000000ull) * 100);
}

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout)
{
    PKEVENT event = Object;
    NTSTATUS status = STATUS_SUCCESS;
    struct timespec deadline;

    if (Timeout) {
        ULONGLONG due = Timeout->QuadPart < 0
                            ? KeQueryInterruptTimePrecise(NULL) + (ULONGLONG)(-Timeout->QuadPart)
                            : (ULONGLONG)Timeout->QuadPart;
        KipAbsTimespec(due, &deadline);
    }
    pthread_mutex_lock(&event->Mutex);
    while (!event->SignalState) {
        if (Timeout) {
            if (Timeout->QuadPart == 0 ||
                pthread_cond_timedwait(&event->Cond, &event->Mutex, &deadline) == ETIMEDOUT) {
                if (!event->SignalState)
                    status = STATUS_TIMEOUT;
                break;
            }
        } else {
            pthread_cond_wait(&event->Cond, &event->Mutex);
        }
    }
    if (status == STATUS_SUCCESS && event->Type == SynchronizationEvent)
        event->SignalState = 0;
    pthread_mutex_unlock(&event->Mutex);
    return status;
}

/* As on Windows, the interrupt time advances at clock-tick granularity (a few ms here, from the
 * coarse clock, which costs no system call); KeQueryInterruptTimePrecise is exact. */
ULONGLONG KeQueryInterruptTime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (ULONGLONG)ts.tv_sec * 10000000ull + (ULONGLONG)ts.tv_nsec / 100;
}

ULONGLONG KeQueryInterruptTimePrecise(PULONGLONG QpcTimeStamp)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (QpcTimeStamp)
        *QpcTimeStamp = (ULONGLONG)ts.tv_sec * 1000000000ull + (ULONGLONG)ts.tv_nsec;
    return (ULONGLONG)ts.tv_sec * 10000000ull + (ULONGLONG)ts.tv_nsec / 100;
}

void KeStallExecutionProcessor(ULONG MicroSeconds)
{
    usleep(MicroSeconds);
}

void vDbgPrint(PCSTR Format, va_list Arguments)
{
    if (getenv("STORSTACK_DEBUG"))
        vfprintf(stderr, Format, Arguments);
}

void DbgPrint(PCSTR Format, ...)
{
    va_list ap;
    va_start(ap, Format);
    vDbgPrint(Format, ap);
    va_end(ap);
}

/* ---- DPCs ---------------------------------------------------------------------------------- */

void KeInitializeDpcEx(PEXECUTIVE Executive, PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine,
                       PVOID DeferredContext)
{
    memset(Dpc, 0, sizeof(*Dpc));
    Dpc->DeferredRoutine = DeferredRoutine;
    Dpc->DeferredContext = DeferredContext;
    Dpc->Executive = Executive;
}

void KeInitializeDpc(PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext)
{
    KeInitializeDpcEx(NULL, Dpc, DeferredRoutine, DeferredContext);
}

BOOLEAN KeInsertQueueDpc(PKDPC Dpc, PVOID SystemArgument1, PVOID SystemArgument2)
{
    PEXECUTIVE ex = Dpc->Executive;
    int expected = 0;
    if (!ex) {
        /* KeInitializeDpc cannot know the executive: use KeInitializeDpcEx, or a timer's DPC */
        DbgPrint("ke: DPC %p has no executive; not queued\n", (void *)Dpc);
        return FALSE;
    }
    /* under the lock, so a concurrent KeRemoveQueueDpc never sees it half inserted */
    pthread_mutex_lock(&ex->DpcLock);
    if (!atomic_compare_exchange_strong(&Dpc->Inserted, &expected, 1)) {
        pthread_mutex_unlock(&ex->DpcLock);
        return FALSE;
    }
    Dpc->SystemArgument1 = SystemArgument1;
    Dpc->SystemArgument2 = SystemArgument2;
    InsertTailList(&ex->DpcQueue, &Dpc->DpcListEntry);
    pthread_cond_signal(&ex->DpcCond);
    pthread_mutex_unlock(&ex->DpcLock);
    return TRUE;
}

void KeFlushQueuedDpcsEx(PEXECUTIVE Executive)
{
    pthread_mutex_lock(&Executive->DpcLock);
    while (Executive->DpcRunning || !IsListEmpty(&Executive->DpcQueue))
        pthread_cond_wait(&Executive->DpcIdle, &Executive->DpcLock);
    pthread_mutex_unlock(&Executive->DpcLock);
}

BOOLEAN KeRemoveQueueDpc(PKDPC Dpc)
{
    PEXECUTIVE ex = Dpc->Executive;
    BOOLEAN removed = FALSE;
    if (!ex)
        return FALSE; /* never queued */
    pthread_mutex_lock(&ex->DpcLock);
    if (atomic_load(&Dpc->Inserted)) {
        RemoveEntryList(&Dpc->DpcListEntry);
        atomic_store(&Dpc->Inserted, 0);
        removed = TRUE;
    }
    pthread_mutex_unlock(&ex->DpcLock);
    return removed;
}

static void *KipDpcThread(void *arg)
{
    PEXECUTIVE ex = arg;
    pthread_mutex_lock(&ex->DpcLock);
    for (;;) {
        while (IsListEmpty(&ex->DpcQueue) && !ex->Stopping)
            pthread_cond_wait(&ex->DpcCond, &ex->DpcLock);
        if (IsListEmpty(&ex->DpcQueue) && ex->Stopping)
            break;
        PKDPC dpc = CONTAINING_RECORD(RemoveHeadList(&ex->DpcQueue), KDPC, DpcListEntry);
        PVOID a1 = dpc->SystemArgument1, a2 = dpc->SystemArgument2;
        atomic_store(&dpc->Inserted, 0);
        ex->DpcRunning++;
        pthread_mutex_unlock(&ex->DpcLock);
        dpc->DeferredRoutine(dpc, dpc->DeferredContext, a1, a2);
        pthread_mutex_lock(&ex->DpcLock);
        if (--ex->DpcRunning == 0 && IsListEmpty(&ex->DpcQueue))
            pthread_cond_broadcast(&ex->DpcIdle);
    }
    pthread_mutex_unlock(&ex->DpcLock);
    return NULL;
}

/* ---- Timers -------------------------------------------------------------------------------- */

void KeInitializeTimerEx(PEXECUTIVE Executive, PKTIMER Timer)
{
    memset(Timer, 0, sizeof(*Timer));
    Timer->Executive = Executive;
    KeInitializeEvent(&Timer->Signal, NotificationEvent, FALSE);
}

static void KipInsertTimer(PEXECUTIVE ex, PKTIMER Timer)
{
    PLIST_ENTRY e;
    for (e = ex->TimerList.Flink; e != &ex->TimerList; e = e->Flink) {
        PKTIMER t = CONTAINING_RECORD(e, KTIMER, TimerListEntry);
        if (t->DueTime > Timer->DueTime)
            break;
    }
    InsertTailList(e, &Timer->TimerListEntry); /* inserts before e */
    Timer->Inserted = TRUE;
}

BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc)
{
    PEXECUTIVE ex = Timer->Executive;
    BOOLEAN was;
    pthread_mutex_lock(&ex->TimerLock);
    was = Timer->Inserted;
    if (was)
        RemoveEntryList(&Timer->TimerListEntry);
    KeClearEvent(&Timer->Signal);
    Timer->DueTime = DueTime.QuadPart < 0
                         ? KeQueryInterruptTimePrecise(NULL) + (ULONGLONG)(-DueTime.QuadPart)
                         : (ULONGLONG)DueTime.QuadPart;
    Timer->Period = Period;
    Timer->Dpc = Dpc;
    if (Dpc && !Dpc->Executive)
        Dpc->Executive = ex;
    KipInsertTimer(ex, Timer);
    pthread_cond_signal(&ex->TimerCond);
    pthread_mutex_unlock(&ex->TimerLock);
    return was;
}

BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc)
{
    return KeSetTimerEx(Timer, DueTime, 0, Dpc);
}

BOOLEAN KeCancelTimer(PKTIMER Timer)
{
    PEXECUTIVE ex = Timer->Executive;
    BOOLEAN was;
    pthread_mutex_lock(&ex->TimerLock);
    was = Timer->Inserted;
    if (was) {
        RemoveEntryList(&Timer->TimerListEntry);
        Timer->Inserted = FALSE;
    }
    pthread_mutex_unlock(&ex->TimerLock);
    return was;
}

static void *KipTimerThread(void *arg)
{
    PEXECUTIVE ex = arg;
    pthread_mutex_lock(&ex->TimerLock);
    while (!ex->Stopping) {
        if (IsListEmpty(&ex->TimerList)) {
            pthread_cond_wait(&ex->TimerCond, &ex->TimerLock);
            continue;
        }
        PKTIMER t = CONTAINING_RECORD(ex->TimerList.Flink, KTIMER, TimerListEntry);
        ULONGLONG now = KeQueryInterruptTimePrecise(NULL);
        if (t->DueTime > now) {
            struct timespec ts;
            KipAbsTimespec(t->DueTime, &ts);
            pthread_cond_timedwait(&ex->TimerCond, &ex->TimerLock, &ts);
            continue;
        }
        RemoveEntryList(&t->TimerListEntry);
        t->Inserted = FALSE;
        if (t->Period > 0) {
            t->DueTime = now + (ULONGLONG)t->Period * 10000ull;
            KipInsertTimer(ex, t);
        }
        KeSetEvent(&t->Signal, 0, FALSE);
        if (t->Dpc)
            KeInsertQueueDpc(t->Dpc, NULL, NULL);
    }
    pthread_mutex_unlock(&ex->TimerLock);
    return NULL;
}

/* ---- Work items ---------------------------------------------------------------------------- */

PIO_WORKITEM IoAllocateWorkItem(PDEVICE_OBJECT DeviceObject)
{
    PIO_WORKITEM item = calloc(1, sizeof(*item));
    if (!item)
        return NULL;
    item->DeviceObject = DeviceObject;
    item->Executive = IoGetExecutive(DeviceObject);
    return item;
}

void IoFreeWorkItem(PIO_WORKITEM IoWorkItem)
{
    free(IoWorkItem);
}

void IoQueueWorkItem(PIO_WORKITEM IoWorkItem, PIO_WORKITEM_ROUTINE WorkerRoutine,
                     WORK_QUEUE_TYPE QueueType, PVOID Context)
{
    PEXECUTIVE ex = IoWorkItem->Executive;
    /* The device may not go away while its work item is queued (as Windows guarantees). */
    ObReferenceObject(IoWorkItem->DeviceObject);
    pthread_mutex_lock(&ex->WorkLock);
    IoWorkItem->Routine = WorkerRoutine;
    IoWorkItem->Context = Context;
    IoWorkItem->Queued = TRUE;
    InsertTailList(&ex->WorkQueue, &IoWorkItem->List);
    pthread_cond_signal(&ex->WorkCond);
    pthread_mutex_unlock(&ex->WorkLock);
}

static void *KipWorkerThread(void *arg)
{
    PEXECUTIVE ex = arg;
    pthread_mutex_lock(&ex->WorkLock);
    for (;;) {
        while (IsListEmpty(&ex->WorkQueue) && !ex->Stopping)
            pthread_cond_wait(&ex->WorkCond, &ex->WorkLock);
        if (IsListEmpty(&ex->WorkQueue) && ex->Stopping)
            break;
        PIO_WORKITEM item = CONTAINING_RECORD(RemoveHeadList(&ex->WorkQueue), IO_WORKITEM, List);
        PDEVICE_OBJECT dev = item->DeviceObject;
        PIO_WORKITEM_ROUTINE routine = item->Routine;
        PVOID context = item->Context;
        item->Queued = FALSE;
        ex->WorkBusy++;
        pthread_mutex_unlock(&ex->WorkLock);
        routine(dev, context); /* may free the item */
        ObDereferenceObject(dev);
        pthread_mutex_lock(&ex->WorkLock);
        ex->WorkBusy--;
        pthread_cond_broadcast(&ex->WorkCond);
    }
    pthread_mutex_unlock(&ex->WorkLock);
    return NULL;
}

/* ---- Threads ------------------------------------------------------------------------------- */

void KipStartThreads(PEXECUTIVE ex)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&ex->DpcLock, NULL);
    pthread_cond_init(&ex->DpcCond, NULL);
    pthread_cond_init(&ex->DpcIdle, NULL);
    InitializeListHead(&ex->DpcQueue);
    pthread_mutex_init(&ex->TimerLock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ex->TimerCond, &attr);
    pthread_condattr_destroy(&attr);
    InitializeListHead(&ex->TimerList);
    pthread_mutex_init(&ex->WorkLock, NULL);
    pthread_cond_init(&ex->WorkCond, NULL);
    InitializeListHead(&ex->WorkQueue);

    ex->DpcThreadCount = RTL_NUMBER_OF(ex->DpcThreads);
    for (ULONG i = 0; i < ex->DpcThreadCount; i++)
        pthread_create(&ex->DpcThreads[i], NULL, KipDpcThread, ex);
    pthread_create(&ex->TimerThread, NULL, KipTimerThread, ex);
    ex->WorkThreadCount = RTL_NUMBER_OF(ex->WorkThreads);
    for (ULONG i = 0; i < ex->WorkThreadCount; i++)
        pthread_create(&ex->WorkThreads[i], NULL, KipWorkerThread, ex);
}

/* Drains DPCs and work items still queued, then stops the threads. */
void KipStopThreads(PEXECUTIVE ex)
{
    pthread_mutex_lock(&ex->TimerLock);
    ex->Stopping = TRUE;
    pthread_cond_broadcast(&ex->TimerCond);
    pthread_mutex_unlock(&ex->TimerLock);
    pthread_join(ex->TimerThread, NULL);

    pthread_mutex_lock(&ex->WorkLock);
    pthread_cond_broadcast(&ex->WorkCond);
    pthread_mutex_unlock(&ex->WorkLock);
    for (ULONG i = 0; i < ex->WorkThreadCount; i++)
        pthread_join(ex->WorkThreads[i], NULL);

    pthread_mutex_lock(&ex->DpcLock);
    pthread_cond_broadcast(&ex->DpcCond);
    pthread_mutex_unlock(&ex->DpcLock);
    for (ULONG i = 0; i < ex->DpcThreadCount; i++)
        pthread_join(ex->DpcThreads[i], NULL);
}
