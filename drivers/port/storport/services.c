/*
 * The StorPort* service routines a miniport calls: notifications, scatter/gather lists, unit
 * and SRB lookup, address translation, synchronization with the interrupt lock, queue depth,
 * registry access, pool and debug output. Each routine finds its adapter from the miniport's
 * device extension, so no global state is needed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "drivers/port/storport/storport_p.h"

static void StorpHwTimerDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PSTORP_ADAPTER adapter = Context;
    PHW_TIMER routine = adapter->HwTimerRoutine;
    if (!routine || !adapter->Started)
        return;
    /* HwStorTimer runs synchronized with HwStorStartIo. */
    StorpEnterLock();
    KeAcquireSpinLock(&adapter->StartIoLock, NULL);
    routine(adapter->HwDeviceExtension);
    KeReleaseSpinLock(&adapter->StartIoLock, 0);
    StorpLeaveLock();
}

void StorPortNotification(SCSI_NOTIFICATION_TYPE NotificationType, PVOID HwDeviceExtension, ...)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    va_list ap;
    va_start(ap, HwDeviceExtension);
    switch (NotificationType) {
    case RequestComplete:
        StorpCompleteSrb(adapter, va_arg(ap, PSCSI_REQUEST_BLOCK));
        break;
    case NextRequest:
    case NextLuRequest:
        /* Full-duplex Storport starts requests as slots free; these are accepted for
         * miniports ported from SCSI Port, where they belong in HwStorStartIo. */
        if (adapter->Verifier && StorpCurrentContext() != StorpContextStartIo)
            StorpVerifierReport(adapter, StorpRuleNextRequest, NULL, "%s outside HwStorStartIo",
                                NotificationType == NextRequest ? "NextRequest" : "NextLuRequest");
        if (NotificationType == NextLuRequest) {
            int path = va_arg(ap, int), target = va_arg(ap, int), lun = va_arg(ap, int);
            if (adapter->Verifier &&
                !StorpFindUnit(adapter, (UCHAR)path, (UCHAR)target, (UCHAR)lun))
                StorpVerifierReport(adapter, StorpRuleNextRequest, NULL,
                                    "NextLuRequest for %d:%d:%d, which has no unit", path, target,
                                    lun);
        }
        break;
    case ResetDetected:
        DbgPrint("storport: %s: miniport reports a bus reset\n", adapter->LinkName);
        break;
    case BusChangeDetected:
        if (adapter->Started)
            IoInvalidateDeviceRelations(adapter->PhysicalDeviceObject, BusRelations);
        break;
    case RequestTimerCall: {
        PHW_TIMER routine = va_arg(ap, PHW_TIMER);
        ULONG micro = va_arg(ap, ULONG);
        if (StorpCurrentContext() == StorpContextFindAdapter) {
            /* the timer needs the adapter initialized */
            StorpVerifierReport(adapter, StorpRuleWrongContext, NULL,
                                "RequestTimerCall in HwStorFindAdapter");
            break;
        }
        if (!adapter->HwTimer.Executive) {
            KeInitializeTimerEx(adapter->Executive, &adapter->HwTimer);
            KeInitializeDpcEx(adapter->Executive, &adapter->HwTimerDpc, StorpHwTimerDpc, adapter);
        }
        adapter->HwTimerRoutine = routine;
        if (micro == 0 || !routine) {
            KeCancelTimer(&adapter->HwTimer);
        } else {
            LARGE_INTEGER due = {.QuadPart = -(LONGLONG)micro * 10};
            KeSetTimer(&adapter->HwTimer, due, &adapter->HwTimerDpc);
        }
        break;
    }
    case EnablePassiveInitialization: {
        PHW_PASSIVE_INITIALIZE_ROUTINE routine = va_arg(ap, PHW_PASSIVE_INITIALIZE_ROUTINE);
        PBOOLEAN result = va_arg(ap, PBOOLEAN);
        if (StorpCurrentContext() != StorpContextInitialize) {
            StorpVerifierReport(adapter, StorpRuleWrongContext, NULL,
                                "EnablePassiveInitialization outside HwStorInitialize");
            if (result)
                *result = FALSE;
            break;
        }
        adapter->PassiveInitEnabled = TRUE;
        adapter->HwPassiveInitialize = routine;
        if (result)
            *result = TRUE;
        break;
    }
    case InitializeDpc: {
        PSTOR_DPC dpc = va_arg(ap, PSTOR_DPC);
        PHW_DPC_ROUTINE routine = va_arg(ap, PHW_DPC_ROUTINE);
        StorpInitializeDpc(adapter, dpc, routine);
        break;
    }
    case IssueDpc: {
        PSTOR_DPC dpc = va_arg(ap, PSTOR_DPC);
        PVOID a1 = va_arg(ap, PVOID), a2 = va_arg(ap, PVOID);
        PBOOLEAN queued = va_arg(ap, PBOOLEAN);
        BOOLEAN q = StorpIssueDpc(adapter, dpc, a1, a2);
        if (queued)
            *queued = q;
        break;
    }
    default:
        DbgPrint("storport: %s: notification %d is not supported\n", adapter->LinkName,
                 (int)NotificationType);
        break;
    }
    va_end(ap);
}

PSTOR_SCATTER_GATHER_LIST StorPortGetScatterGatherList(PVOID HwDeviceExtension,
                                                       PSCSI_REQUEST_BLOCK Srb)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    PSTORP_REQUEST req = Srb ? StorpRequestFromSrb(Srb) : NULL;
    if (!req || req->Srb != Srb || atomic_load(&req->State) != StorpRequestAtMiniport) {
        if (adapter->Verifier)
            StorpVerifierReport(adapter, StorpRuleScatterGather, NULL, "SRB %p", (void *)Srb);
        return NULL;
    }
    return (PSTOR_SCATTER_GATHER_LIST)&req->Sg;
}

PSCSI_REQUEST_BLOCK StorPortGetSrb(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                                   LONG QueueTag)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    PSTORP_UNIT unit = StorpFindUnit(adapter, PathId, TargetId, Lun);
    PSCSI_REQUEST_BLOCK found = NULL;
    if (!unit)
        return NULL;
    KeAcquireSpinLock(&unit->Lock, NULL);
    for (PLIST_ENTRY e = unit->OutstandingList.Flink; e != &unit->OutstandingList; e = e->Flink) {
        PSTORP_REQUEST req = CONTAINING_RECORD(e, STORP_REQUEST, Link);
        if (QueueTag == -1 || req->Srb->QueueTag == (UCHAR)QueueTag) {
            found = req->Srb;
            break;
        }
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    return found;
}

PVOID StorPortGetLogicalUnit(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    return unit ? unit->LuExtension : NULL;
}

STOR_PHYSICAL_ADDRESS StorPortGetPhysicalAddress(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                                                 PVOID VirtualAddress, ULONG *Length)
{
    STOR_PHYSICAL_ADDRESS pa;
    pa.QuadPart = (LONGLONG)(ULONG_PTR)VirtualAddress;
    if (Length && Srb && Srb->DataBuffer) {
        ULONG_PTR off = (ULONG_PTR)VirtualAddress - (ULONG_PTR)Srb->DataBuffer;
        *Length = off < Srb->DataTransferLength ? Srb->DataTransferLength - (ULONG)off : 0;
    }
    return pa;
}

PVOID StorPortGetVirtualAddress(PVOID HwDeviceExtension, STOR_PHYSICAL_ADDRESS PhysicalAddress)
{
    return (PVOID)(ULONG_PTR)PhysicalAddress.QuadPart;
}

PVOID StorPortGetUncachedExtension(PVOID HwDeviceExtension,
                                   PPORT_CONFIGURATION_INFORMATION ConfigInfo, ULONG NumberOfBytes)
{
    /* One per adapter, asked for in HwStorFindAdapter, as on Windows; freed with the adapter. */
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    if (adapter->UncachedExtension || NumberOfBytes == 0)
        return NULL;
    adapter->UncachedExtension =
        aligned_alloc(PAGE_SIZE, (NumberOfBytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
    if (adapter->UncachedExtension)
        memset(adapter->UncachedExtension, 0, NumberOfBytes);
    return adapter->UncachedExtension;
}

ULONG StorPortGetSystemAddress(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                               PVOID *SystemAddress)
{
    *SystemAddress = Srb->DataBuffer;
    return STOR_STATUS_SUCCESS;
}

BOOLEAN StorPortSynchronizeAccess(PVOID HwDeviceExtension,
                                  PSTOR_SYNCHRONIZED_ACCESS SynchronizedAccessRoutine,
                                  PVOID Context)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    BOOLEAN result;
    StorpEnterLock();
    KeAcquireSpinLock(&adapter->InterruptLock, NULL);
    result = SynchronizedAccessRoutine(HwDeviceExtension, Context);
    KeReleaseSpinLock(&adapter->InterruptLock, 0);
    StorpLeaveLock();
    return result;
}

BOOLEAN StorPortSetDeviceQueueDepth(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId,
                                    UCHAR Lun, ULONG Depth)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    if (!unit || Depth == 0 || Depth > 254)
        return FALSE;
    KeAcquireSpinLock(&unit->Lock, NULL);
    unit->QueueDepth = Depth;
    KeReleaseSpinLock(&unit->Lock, 0);
    StorpRestartQueues(unit->Adapter); /* a deeper queue may start what waits */
    return TRUE;
}

/* ---- Queue management: pause, resume, busy, ready ------------------------------------------- */

static ULONGLONG StorpSecondsFromNow(ULONG Seconds)
{
    return KeQueryInterruptTime() + (ULONGLONG)(Seconds ? Seconds : 1) * 10000000ull;
}

BOOLEAN StorPortPause(PVOID HwDeviceExtension, ULONG TimeOut)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    ULONGLONG until = StorpSecondsFromNow(TimeOut);
    atomic_store(&adapter->PausedUntil, until);
    StorpArmResume(adapter, until);
    return TRUE;
}

BOOLEAN StorPortResume(PVOID HwDeviceExtension)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    atomic_store(&adapter->PausedUntil, 0);
    StorpRestartQueues(adapter);
    return TRUE;
}

BOOLEAN StorPortPauseDevice(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                            ULONG TimeOut)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    ULONGLONG until = StorpSecondsFromNow(TimeOut);
    if (!unit)
        return FALSE;
    KeAcquireSpinLock(&unit->Lock, NULL);
    unit->PausedUntil = until;
    KeReleaseSpinLock(&unit->Lock, 0);
    StorpArmResume(unit->Adapter, until);
    return TRUE;
}

BOOLEAN StorPortResumeDevice(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    if (!unit)
        return FALSE;
    KeAcquireSpinLock(&unit->Lock, NULL);
    unit->PausedUntil = 0;
    KeReleaseSpinLock(&unit->Lock, 0);
    StorpRestartQueues(unit->Adapter);
    return TRUE;
}

BOOLEAN StorPortBusy(PVOID HwDeviceExtension, ULONG RequestsToComplete)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    unsigned outstanding = atomic_load(&adapter->Outstanding);
    /* waiting for more completions than there are requests would never end */
    if (RequestsToComplete > outstanding)
        RequestsToComplete = outstanding;
    atomic_store(&adapter->BusyCount, RequestsToComplete);
    if (!RequestsToComplete) {
        ULONGLONG until = KeQueryInterruptTime() + STORP_BUSY_DELAY;
        atomic_store(&adapter->PausedUntil, until);
        StorpArmResume(adapter, until);
    }
    return TRUE;
}

BOOLEAN StorPortReady(PVOID HwDeviceExtension)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    atomic_store(&adapter->BusyCount, 0);
    StorpRestartQueues(adapter);
    return TRUE;
}

BOOLEAN StorPortDeviceBusy(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun,
                           ULONG RequestsToComplete)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    ULONGLONG until = 0;
    if (!unit)
        return FALSE;
    KeAcquireSpinLock(&unit->Lock, NULL);
    unit->BusyCount =
        RequestsToComplete < unit->Outstanding ? RequestsToComplete : unit->Outstanding;
    if (!unit->BusyCount) {
        until = KeQueryInterruptTime() + STORP_BUSY_DELAY;
        if (unit->PausedUntil < until)
            unit->PausedUntil = until;
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    if (until)
        StorpArmResume(unit->Adapter, until);
    return TRUE;
}

BOOLEAN StorPortDeviceReady(PVOID HwDeviceExtension, UCHAR PathId, UCHAR TargetId, UCHAR Lun)
{
    PSTORP_UNIT unit = StorpFindUnit(StorpAdapterFromHw(HwDeviceExtension), PathId, TargetId, Lun);
    if (!unit)
        return FALSE;
    KeAcquireSpinLock(&unit->Lock, NULL);
    unit->BusyCount = 0;
    KeReleaseSpinLock(&unit->Lock, 0);
    StorpRestartQueues(unit->Adapter);
    return TRUE;
}

void StorPortMoveMemory(PVOID WriteBuffer, PVOID ReadBuffer, ULONG Length)
{
    memmove(WriteBuffer, ReadBuffer, Length);
}

void StorPortStallExecution(ULONG Delay)
{
    usleep(Delay);
}

void StorPortDebugPrint(ULONG DebugPrintLevel, PCSTR DebugMessage, ...)
{
    va_list ap;
    va_start(ap, DebugMessage);
    vDbgPrint(DebugMessage, ap);
    va_end(ap);
}

ULONG StorPortAllocatePool(PVOID HwDeviceExtension, ULONG NumberOfBytes, ULONG Tag,
                           PVOID *BufferPointer)
{
    *BufferPointer = calloc(1, NumberOfBytes ? NumberOfBytes : 1);
    return *BufferPointer ? STOR_STATUS_SUCCESS : STOR_STATUS_INSUFFICIENT_RESOURCES;
}

ULONG StorPortFreePool(PVOID HwDeviceExtension, PVOID BufferPointer)
{
    free(BufferPointer);
    return STOR_STATUS_SUCCESS;
}

/* Reads a registry value for a miniport: STOR_STATUS_SUCCESS, STOR_STATUS_BUFFER_TOO_SMALL when
 * it is there but longer than the buffer, STOR_STATUS_UNSUCCESSFUL when absent or malformed. */
static ULONG StorpReadValue(PEXECUTIVE ex, PCSTR key, PCSTR name, ULONG type, PUCHAR buffer,
                            PULONG length)
{
    NTSTATUS status;
    if (type == MINIPORT_REG_DWORD) {
        ULONGLONG v;
        if (*length < 4)
            return STOR_STATUS_BUFFER_TOO_SMALL;
        if (!NT_SUCCESS(RtlQueryRegistryUlonglong(ex, key, name, &v)) || v > 0xFFFFFFFFull)
            return STOR_STATUS_UNSUCCESSFUL;
        ULONG d = (ULONG)v;
        memcpy(buffer, &d, 4);
        *length = 4;
        return STOR_STATUS_SUCCESS;
    }
    if (type == MINIPORT_REG_SZ) {
        status = RtlQueryRegistryString(ex, key, name, (char *)buffer, *length);
        if (status == STATUS_BUFFER_TOO_SMALL)
            return STOR_STATUS_BUFFER_TOO_SMALL;
        if (!NT_SUCCESS(status))
            return STOR_STATUS_UNSUCCESSFUL;
        *length = (ULONG)strlen((char *)buffer) + 1;
        return STOR_STATUS_SUCCESS;
    }
    ULONG t, got;
    status = CmQueryValue(ex, key, name, &t, buffer, *length, &got);
    if (status == STATUS_BUFFER_TOO_SMALL)
        return STOR_STATUS_BUFFER_TOO_SMALL;
    if (!NT_SUCCESS(status))
        return STOR_STATUS_UNSUCCESSFUL;
    *length = got;
    return STOR_STATUS_SUCCESS;
}

BOOLEAN StorPortRegistryRead(PVOID HwDeviceExtension, PCSTR ValueName, ULONG Global, ULONG Type,
                             PUCHAR Buffer, PULONG BufferLength)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    char key[128];
    if (Global)
        snprintf(key, sizeof(key), "Services\\%s\\Parameters\\Device",
                 adapter->Driver->ServiceName);
    else
        snprintf(key, sizeof(key), "Services\\%s\\Parameters\\Device%u",
                 adapter->Driver->ServiceName, adapter->PortNumber);
    return StorpReadValue(adapter->Executive, key, ValueName, Type, Buffer, BufferLength) ==
           STOR_STATUS_SUCCESS;
}

ULONG StorPortRegistryReadAdapterKey(PVOID HwDeviceExtension, PCSTR SubKeyName, PCSTR ValueName,
                                     ULONG ValueType, PVOID *ValueData, PUSHORT ValueDataLength)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    char key[384], path[320];
    ULONG length;
    if (!ValueData || !*ValueData || !ValueDataLength || !*ValueDataLength)
        return STOR_STATUS_INVALID_PARAMETER;
    if (!NT_SUCCESS(IoGetDeviceRegistryKeyPath(adapter->PhysicalDeviceObject,
                                               PLUGPLAY_REGKEY_DEVICE, path, sizeof(path))))
        return STOR_STATUS_UNSUCCESSFUL;
    if (SubKeyName && SubKeyName[0])
        snprintf(key, sizeof(key), "%s\\%s", path, SubKeyName);
    else
        snprintf(key, sizeof(key), "%s", path);
    length = *ValueDataLength;
    ULONG status =
        StorpReadValue(adapter->Executive, key, ValueName, ValueType, *ValueData, &length);
    if (status != STOR_STATUS_SUCCESS)
        return status;
    *ValueDataLength = (USHORT)length;
    return STOR_STATUS_SUCCESS;
}

/* StorPortLogError: a structured event in the adapter's event log (events.c). */
void StorPortLogError(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb, UCHAR PathId,
                      UCHAR TargetId, UCHAR Lun, ULONG ErrorCode, ULONG UniqueId)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    StorpLogEvent(adapter, PathId, TargetId, Lun, ErrorCode, UniqueId, Srb, "miniport",
                  "%s: StorPortLogError", adapter->Driver->ServiceName);
}

BOOLEAN StorPortGetRequestInitiator(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb,
                                    PULONGLONG Nexus, PCSTR *TransportId, PCSTR *Principal)
{
    PIRP irp = Srb ? Srb->OriginalRequest : NULL;
    PFILE_OBJECT file = irp ? IoGetCurrentIrpStackLocation(irp)->FileObject : NULL;
    (void)HwDeviceExtension;
    *Nexus = file ? file->Caller.Nexus : 0;
    if (TransportId)
        *TransportId = file ? file->Caller.TransportId : "";
    if (Principal)
        *Principal = file ? file->Caller.Principal : "";
    return file && file->Caller.Nexus != 0;
}

void StorPortLogErrorText(PVOID HwDeviceExtension, PCSTR Format, ...)
{
    PSTORP_ADAPTER adapter = StorpAdapterFromHw(HwDeviceExtension);
    char text[256];
    va_list ap;
    va_start(ap, Format);
    vsnprintf(text, sizeof(text), Format, ap);
    va_end(ap);
    fprintf(stderr, "storstack: %s: %s\n", adapter->Driver->ServiceName, text);
    IoSetDeviceProblemText(adapter->DeviceObject, "%s", text);
}
