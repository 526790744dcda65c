/*
 * Creating and destroying an executive: its locks, threads, IRP lookaside and root driver at
 * creation; at destruction, the shutdown notifications (IRP_MJ_SHUTDOWN, so disks flush), the
 * removal of the whole devnode tree, then the threads and everything left.
 */
#include <stdlib.h>

#include "kernel/executive_p.h"

NTSTATUS ExCreateExecutive(PEXECUTIVE *Executive)
{
    PEXECUTIVE ex = calloc(1, sizeof(*ex));
    NTSTATUS status;
    if (!ex)
        return STATUS_INSUFFICIENT_RESOURCES;
    pthread_mutex_init(&ex->Lock, NULL);
    pthread_mutex_init(&ex->RegistryLock, NULL);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* PnP work re-enters: a driver's START may enumerate, which takes the lock on this thread */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ex->PnpLock, &attr);
    pthread_mutexattr_destroy(&attr);
    KeInitializeEvent(&ex->EnumerationIdle, NotificationEvent, TRUE);
    ExInitializeNPagedLookasideList(&ex->IrpLookaside, NULL, NULL, 0,
                                    IoSizeOfIrp(IO_MAX_FAST_STACK), 0x53497270 /* 'SIrp' */, 1024);
    ExInitializeNPagedLookasideList(&ex->SystemBufferSmall, NULL, NULL, 0,
                                    IOP_SYSTEM_BUFFER_HEADER + IOP_SYSTEM_BUFFER_SMALL,
                                    0x53427573 /* 'SBus' */, 256);
    ExInitializeNPagedLookasideList(&ex->SystemBufferLarge, NULL, NULL, 0,
                                    IOP_SYSTEM_BUFFER_HEADER + IOP_SYSTEM_BUFFER_LARGE,
                                    0x4C427573 /* 'LBus' */, 32);
    KipStartThreads(ex);
    status = PnpCreateRootDriver(ex);
    if (!NT_SUCCESS(status)) {
        ExDestroyExecutive(ex);
        return status;
    }
    *Executive = ex;
    return STATUS_SUCCESS;
}

static void ExpSendShutdown(PEXECUTIVE ex)
{
    PDEVICE_OBJECT *devices;
    ULONG count;
    pthread_mutex_lock(&ex->Lock);
    count = ex->ShutdownCount;
    devices = malloc((count ? count : 1) * sizeof(*devices));
    if (!devices) {
        pthread_mutex_unlock(&ex->Lock);
        return;
    }
    if (count)
        memcpy(devices, ex->ShutdownDevices, count * sizeof(devices[0]));
    for (ULONG i = 0; i < count; i++)
        ObReferenceObject(devices[i]);
    pthread_mutex_unlock(&ex->Lock);
    for (ULONG i = 0; i < count; i++) {
        KEVENT event;
        IO_STATUS_BLOCK iosb;
        PIRP irp;
        KeInitializeEvent(&event, NotificationEvent, FALSE);
        irp =
            IoBuildSynchronousFsdRequest(IRP_MJ_SHUTDOWN, devices[i], NULL, 0, NULL, &event, &iosb);
        if (irp) {
            IoCallDriver(devices[i], irp);
            KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
        }
        KeDeleteEvent(&event);
        ObDereferenceObject(devices[i]);
    }
    free(devices);
}

void ExDestroyExecutive(PEXECUTIVE ex)
{
    if (!ex)
        return;
    IoSynchronizeDeviceRelations(ex);
    ExpSendShutdown(ex);
    PnpRemoveTree(ex);
    KipStopThreads(ex);
    IopDeleteDriverObjects(ex);
    if (ex->PnpDriver) {
        free(ex->PnpDriver);
        ex->PnpDriver = NULL;
    }
    PnpFreePackages(ex);
    free(ex->ShutdownDevices);
    IopFreeNames(ex);
    CmpFreeRegistry(ex);
    ExDeleteNPagedLookasideList(&ex->IrpLookaside);
    ExDeleteNPagedLookasideList(&ex->SystemBufferSmall);
    ExDeleteNPagedLookasideList(&ex->SystemBufferLarge);
    KeDeleteEvent(&ex->EnumerationIdle);
    pthread_mutex_destroy(&ex->Lock);
    pthread_mutex_destroy(&ex->RegistryLock);
    pthread_mutex_destroy(&ex->PnpLock);
    free(ex);
}

void ExQueryCounters(PEXECUTIVE Executive, EXECUTIVE_COUNTERS *Counters)
{
    Counters->Devices = atomic_load(&Executive->DeviceCount);
    Counters->Irps = atomic_load(&Executive->IrpCount);
    Counters->DevNodes = atomic_load(&Executive->DevNodeCount);
    Counters->Violations = atomic_load(&Executive->Violations);
}
