/*
 * faultinject: a lower filter of storage class devices (between the class driver's FDO and the
 * port's unit PDO) that injects faults into the SRBs passing down, the way a test filter under
 * classpnp does on Windows. What it injects comes from Services\faultinject\Parameters
 * (README.md, docs/config.md): CHECK CONDITION with a chosen sense key/ASC/ASCQ, SRB_STATUS_BUSY,
 * TASK SET FULL, or added latency; at a rate (per 10000 eligible SRBs), on the Nth one, for at
 * most Count of them, for reads, writes or both. An injected status completes the IRP here, as
 * the port would have, with the SRB filled in (autosense included); latency holds the IRP on a
 * list ordered by due time and a timer DPC sends it on. Everything else passes down untouched.
 * Faults that only a port's error recovery can end (dropped requests, failed resets, lost
 * connections) are vminiport's hooks (drivers/miniport/vminiport/vmpfault.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/scsi.h>
#include <storstack/storage/srb.h>
#include <storstack/wdm/registry.h>

#include "drivers/filter/faultinject/faultinject.h"

#define FI_PARAMETERS "Services\\faultinject\\Parameters"

typedef enum _FI_KIND {
    FiKindNone,
    FiKindCheckCondition,
    FiKindBusy,
    FiKindQueueFull,
    FiKindLatency,
} FI_KIND;

typedef struct _FI_CONFIG {
    FI_KIND Kind;
    ULONG Rate;  /* per 10000 eligible SRBs */
    ULONG Nth;   /* the Nth eligible SRB (1-based), 0: not used */
    ULONG Count; /* at most this many injections, 0: no limit */
    BOOLEAN Reads, Writes;
    UCHAR SenseKey, Asc, Ascq;
    ULONG LatencyMs;
    ULONG Seed;
} FI_CONFIG;

typedef struct _FI_EXTENSION {
    PDEVICE_OBJECT Self;
    PDEVICE_OBJECT Lower;
    FI_CONFIG Config;
    KSPIN_LOCK Lock; /* Random, Seen, Injected and the delayed list */
    ULONGLONG Random;
    ULONG Seen;
    ULONG Injected;
    LIST_ENTRY Delayed; /* IRPs held for latency, by due time (Tail.Overlay.ListEntry) */
    KTIMER Timer;
    KDPC Dpc;
    BOOLEAN TimerReady;
} FI_EXTENSION, *PFI_EXTENSION;

/* ---- Configuration ----------------------------------------------------------------------------
 */

static BOOLEAN FipReadNumber(PEXECUTIVE ex, PCSTR name, ULONG max, ULONG *value)
{
    ULONGLONG v;
    if (!NT_SUCCESS(RtlQueryRegistryUlonglong(ex, FI_PARAMETERS, name, &v)))
        return TRUE; /* absent: keep the default */
    if (v > max) {
        DbgPrint("faultinject: %s %llu is over %u\n", name, (unsigned long long)v, max);
        return FALSE;
    }
    *value = (ULONG)v;
    return TRUE;
}

/* Reads and checks the parameters; STATUS_INVALID_PARAMETER (the device does not start, the
 * reason in the debug output) for a bad one, so a misspelled fault never runs silently. */
static NTSTATUS FipReadConfig(PEXECUTIVE ex, FI_CONFIG *c)
{
    char kind[32] = "", ops[16] = "all", sense[32] = "";
    unsigned key, asc, ascq;
    BOOLEAN ok = TRUE;

    memset(c, 0, sizeof(*c));
    c->Seed = 1;
    c->SenseKey = SCSI_SENSE_MEDIUM_ERROR;
    c->Asc = 0x11; /* UNRECOVERED READ ERROR */
    RtlQueryRegistryString(ex, FI_PARAMETERS, "Kind", kind, sizeof(kind));
    RtlQueryRegistryString(ex, FI_PARAMETERS, "Operations", ops, sizeof(ops));
    RtlQueryRegistryString(ex, FI_PARAMETERS, "Sense", sense, sizeof(sense));
    if (!kind[0] || !strcmp(kind, "none"))
        c->Kind = FiKindNone;
    else if (!strcmp(kind, "check"))
        c->Kind = FiKindCheckCondition;
    else if (!strcmp(kind, "busy"))
        c->Kind = FiKindBusy;
    else if (!strcmp(kind, "queuefull"))
        c->Kind = FiKindQueueFull;
    else if (!strcmp(kind, "latency"))
        c->Kind = FiKindLatency;
    else {
        DbgPrint("faultinject: Kind '%s' is not none, check, busy, queuefull or latency\n", kind);
        return STATUS_INVALID_PARAMETER;
    }
    if (!strcmp(ops, "read") || !strcmp(ops, "all"))
        c->Reads = TRUE;
    if (!strcmp(ops, "write") || !strcmp(ops, "all"))
        c->Writes = TRUE;
    if (!c->Reads && !c->Writes) {
        DbgPrint("faultinject: Operations '%s' is not read, write or all\n", ops);
        return STATUS_INVALID_PARAMETER;
    }
    if (sense[0]) {
        if (sscanf(sense, "%x/%x/%x", &key, &asc, &ascq) != 3 || key > 0xF || asc > 0xFF ||
            ascq > 0xFF) {
            DbgPrint("faultinject: Sense '%s' is not KEY/ASC/ASCQ in hex (3/11/00)\n", sense);
            return STATUS_INVALID_PARAMETER;
        }
        c->SenseKey = (UCHAR)key;
        c->Asc = (UCHAR)asc;
        c->Ascq = (UCHAR)ascq;
    }
    ok &= FipReadNumber(ex, "Rate", 10000, &c->Rate);
    ok &= FipReadNumber(ex, "Nth", 0x7FFFFFFF, &c->Nth);
    ok &= FipReadNumber(ex, "Count", 0x7FFFFFFF, &c->Count);
    ok &= FipReadNumber(ex, "LatencyMs", 60000, &c->LatencyMs);
    ok &= FipReadNumber(ex, "Seed", 0xFFFFFFFF, &c->Seed);
    if (!ok)
        return STATUS_INVALID_PARAMETER;
    if (c->Kind != FiKindNone && !c->Rate && !c->Nth) {
        DbgPrint("faultinject: Kind is set but neither Rate nor Nth is\n");
        return STATUS_INVALID_PARAMETER;
    }
    return STATUS_SUCCESS;
}

/* ---- Injection --------------------------------------------------------------------------------
 */

static BOOLEAN FipEligible(PFI_EXTENSION fi, PSCSI_REQUEST_BLOCK srb)
{
    if (srb->Function != SRB_FUNCTION_EXECUTE_SCSI)
        return FALSE;
    switch (srb->Cdb[0]) {
    case SCSIOP_READ:
    case SCSIOP_READ16:
        return fi->Config.Reads;
    case SCSIOP_WRITE:
    case SCSIOP_WRITE16:
        return fi->Config.Writes;
    default:
        return FALSE;
    }
}

/* Decides, under the lock, whether this eligible SRB gets the fault. */
static BOOLEAN FipDecide(PFI_EXTENSION fi)
{
    BOOLEAN hit = FALSE;
    KeAcquireSpinLock(&fi->Lock, NULL);
    ULONG n = ++fi->Seen;
    if (fi->Config.Nth && n == fi->Config.Nth)
        hit = TRUE;
    if (fi->Config.Rate) {
        fi->Random ^= fi->Random << 13;
        fi->Random ^= fi->Random >> 7;
        fi->Random ^= fi->Random << 17;
        hit |= fi->Random % 10000u < fi->Config.Rate;
    }
    if (hit && fi->Config.Count && fi->Injected >= fi->Config.Count)
        hit = FALSE;
    if (hit)
        fi->Injected++;
    KeReleaseSpinLock(&fi->Lock, 0);
    return hit;
}

/* Completes the IRP as the port would for the status, SRB filled in. */
static NTSTATUS FipCompleteWith(PIRP Irp, PSCSI_REQUEST_BLOCK srb, const FI_CONFIG *c)
{
    NTSTATUS status;
    srb->DataTransferLength = 0;
    switch (c->Kind) {
    case FiKindBusy:
        srb->SrbStatus = SRB_STATUS_BUSY;
        status = STATUS_DEVICE_BUSY;
        break;
    case FiKindQueueFull:
        srb->SrbStatus = SRB_STATUS_ERROR;
        srb->ScsiStatus = SCSISTAT_QUEUE_FULL;
        status = STATUS_DEVICE_BUSY;
        break;
    default: {
        /* fixed-format sense (SPC-4 4.5.3) */
        UCHAR sense[18] = {0x70, 0, c->SenseKey, 0, 0, 0, 0, 10, 0, 0, 0, 0, c->Asc, c->Ascq};
        srb->SrbStatus = SRB_STATUS_ERROR;
        srb->ScsiStatus = SCSISTAT_CHECK_CONDITION;
        if (srb->SenseInfoBuffer && srb->SenseInfoBufferLength &&
            !(srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE)) {
            UCHAR n = srb->SenseInfoBufferLength < sizeof(sense) ? srb->SenseInfoBufferLength
                                                                 : (UCHAR)sizeof(sense);
            memcpy(srb->SenseInfoBuffer, sense, n);
            srb->SenseInfoBufferLength = n;
            srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
        }
        status = STATUS_IO_DEVICE_ERROR;
        break;
    }
    }
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

static NTSTATUS FipPassDown(PFI_EXTENSION fi, PIRP Irp)
{
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(fi->Lower, Irp);
}

/* Arms the timer for the first delayed IRP's due time. Lock held. */
static void FipArmTimer(PFI_EXTENSION fi)
{
    if (IsListEmpty(&fi->Delayed))
        return;
    PIRP first = CONTAINING_RECORD(fi->Delayed.Flink, IRP, Tail.Overlay.ListEntry);
    ULONGLONG due = (ULONGLONG)(ULONG_PTR)first->Tail.Overlay.DriverContext[0];
    ULONGLONG now = KeQueryInterruptTime();
    LARGE_INTEGER rel = {.QuadPart = -(LONGLONG)(due > now ? due - now : 1)};
    KeSetTimerEx(&fi->Timer, rel, 0, &fi->Dpc);
}

static void FipDelayDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PFI_EXTENSION fi = Context;
    LIST_ENTRY due;
    ULONGLONG now = KeQueryInterruptTime();

    InitializeListHead(&due);
    KeAcquireSpinLock(&fi->Lock, NULL);
    while (!IsListEmpty(&fi->Delayed)) {
        PIRP irp = CONTAINING_RECORD(fi->Delayed.Flink, IRP, Tail.Overlay.ListEntry);
        if ((ULONGLONG)(ULONG_PTR)irp->Tail.Overlay.DriverContext[0] > now)
            break;
        InsertTailList(&due, RemoveHeadList(&fi->Delayed));
    }
    FipArmTimer(fi);
    KeReleaseSpinLock(&fi->Lock, 0);
    while (!IsListEmpty(&due)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(&due), IRP, Tail.Overlay.ListEntry);
        irp->Tail.Overlay.DriverContext[0] = NULL;
        FipPassDown(fi, irp);
    }
}

/* Holds the IRP for LatencyMs: appended in due order (every delay is the same length, so the
 * tail is always the latest). */
static NTSTATUS FipDelay(PFI_EXTENSION fi, PIRP Irp)
{
    ULONGLONG due = KeQueryInterruptTime() + (ULONGLONG)fi->Config.LatencyMs * 10000ull;
    BOOLEAN first;
    IoMarkIrpPending(Irp);
    Irp->Tail.Overlay.DriverContext[0] = (PVOID)(ULONG_PTR)due;
    KeAcquireSpinLock(&fi->Lock, NULL);
    first = IsListEmpty(&fi->Delayed);
    InsertTailList(&fi->Delayed, &Irp->Tail.Overlay.ListEntry);
    if (first)
        FipArmTimer(fi);
    KeReleaseSpinLock(&fi->Lock, 0);
    return STATUS_PENDING;
}

static NTSTATUS FiDispatchScsi(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFI_EXTENSION fi = DeviceObject->DeviceExtension;
    PSCSI_REQUEST_BLOCK srb = IoGetCurrentIrpStackLocation(Irp)->Parameters.Scsi.Srb;

    if (fi->Config.Kind == FiKindNone || !srb || !FipEligible(fi, srb) || !FipDecide(fi))
        return FipPassDown(fi, Irp);
    if (fi->Config.Kind == FiKindLatency)
        return FipDelay(fi, Irp);
    return FipCompleteWith(Irp, srb, &fi->Config);
}

static NTSTATUS FiDispatchPass(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    return FipPassDown(DeviceObject->DeviceExtension, Irp);
}

static NTSTATUS FiDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFI_EXTENSION fi = DeviceObject->DeviceExtension;
    PDEVICE_OBJECT lower = fi->Lower;
    NTSTATUS status;

    if (IoGetCurrentIrpStackLocation(Irp)->MinorFunction != IRP_MN_REMOVE_DEVICE)
        return FipPassDown(fi, Irp);
    /* nothing is delayed any more once the class driver above has gone (it waits for its I/O) */
    if (fi->TimerReady) {
        KeCancelTimer(&fi->Timer);
        KeRemoveQueueDpc(&fi->Dpc);
        KeFlushQueuedDpcsEx(IoGetExecutive(DeviceObject));
    }
    ObReferenceObject(lower);
    status = FipPassDown(fi, Irp);
    IoDetachDevice(lower);
    ObDereferenceObject(lower);
    IoDeleteDevice(DeviceObject);
    return status;
}

static NTSTATUS FiAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    PDEVICE_OBJECT dev;
    PFI_EXTENSION fi;
    FI_CONFIG config;
    NTSTATUS status = FipReadConfig(DriverObject->Executive, &config);

    if (!NT_SUCCESS(status))
        return status;
    status = IoCreateDevice(DriverObject, sizeof(FI_EXTENSION), NULL, Pdo->DeviceType,
                            Pdo->Characteristics, FALSE, &dev);
    if (!NT_SUCCESS(status))
        return status;
    fi = dev->DeviceExtension;
    memset(fi, 0, sizeof(*fi));
    fi->Self = dev;
    fi->Config = config;
    fi->Random = config.Seed ? config.Seed : 1;
    KeInitializeSpinLock(&fi->Lock);
    InitializeListHead(&fi->Delayed);
    KeInitializeDpcEx(DriverObject->Executive, &fi->Dpc, FipDelayDpc, fi);
    KeInitializeTimerEx(DriverObject->Executive, &fi->Timer);
    fi->TimerReady = TRUE;
    fi->Lower = IoAttachDeviceToDeviceStack(dev, Pdo);
    dev->Flags |= fi->Lower->Flags & (DO_DIRECT_IO | DO_BUFFERED_IO);
    dev->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

NTSTATUS FaultInjectDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        DriverObject->MajorFunction[i] = FiDispatchPass;
    DriverObject->MajorFunction[IRP_MJ_SCSI] = FiDispatchScsi;
    DriverObject->MajorFunction[IRP_MJ_PNP] = FiDispatchPnp;
    DriverObject->DriverExtension->AddDevice = FiAddDevice;
    return STATUS_SUCCESS;
}

/* A filter service: no [Models], installed by name in LowerFilters. */
const char FaultInjectInf[] = "[Version]\n"
                              "Signature = \"$Windows NT$\"\n"
                              "Class = DiskDrive\n"
                              "ClassGuid = {4d36e967-e325-11ce-bfc1-08002be10318}\n"
                              "Provider = storstack\n"
                              "[faultinject_Service_Inst]\n"
                              "ServiceType = 1\n"
                              "StartType = 3\n";
