/*
 * Storport idle power management: a logical unit with no I/O for IdleTimeoutSeconds (the
 * adapter's or the unit's Device Parameters, 0 = off) is powered down. The one-second tick finds
 * it idle and Storport sends itself a D3 set-power IRP (PoRequestPowerIrp to the unit's PDO, so it
 * passes down the unit's stack); the PDO's power dispatch sends START STOP UNIT (START=0) through
 * the normal SRB path and records D3 with PoSetPowerState. From the moment the tick decides, the
 * unit's queue holds every request (PowerLocked). The first request held while in D3 asks for D0
 * (START STOP UNIT START=1); a request arriving during the power-down waits and the power-down's
 * end powers up again. Once in D0 the queue restarts and the held requests go in order. Each
 * transition is logged in the adapter's event log.
 */
#include <stdio.h>

#include "drivers/port/storport/storport_p.h"

static void StorpRequestPower(PSTORP_UNIT Unit, DEVICE_POWER_STATE State);

void StorpInitializeUnitPower(PSTORP_UNIT Unit)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    char key[300], unit_key[360];
    ULONGLONG value;

    Unit->PowerState = PowerDeviceD0;
    if (!NT_SUCCESS(IoGetDeviceRegistryKeyPath(adapter->PhysicalDeviceObject,
                                               PLUGPLAY_REGKEY_DEVICE, key, sizeof(key))))
        return;
    /* the unit's own key (Target<N>\Lun<N>) overrides the adapter's */
    if (NT_SUCCESS(
            RtlQueryRegistryUlonglong(adapter->Executive, key, "IdleTimeoutSeconds", &value)))
        Unit->IdleTimeout = value > 86400 ? 86400 : (ULONG)value;
    snprintf(unit_key, sizeof(unit_key), "%s\\Target%u\\Lun%u", key, Unit->TargetId, Unit->Lun);
    if (NT_SUCCESS(
            RtlQueryRegistryUlonglong(adapter->Executive, unit_key, "IdleTimeoutSeconds", &value)))
        Unit->IdleTimeout = value > 86400 ? 86400 : (ULONG)value;
}

/* The tick, unit lock held: counts idle seconds; at the timeout, locks the queue and marks the
 * unit for power-down (done by StorpIdlePowerDown once the tick has dropped its locks). */
BOOLEAN StorpIdleTick(PSTORP_UNIT Unit)
{
    if (!Unit->IdleTimeout || !Unit->Started || Unit->Removed || !Unit->Present ||
        !Unit->DeviceObject || Unit->PowerBusy || Unit->PowerState != PowerDeviceD0)
        return FALSE;
    if (Unit->Outstanding || !IsListEmpty(&Unit->Pending) || Unit->Completions != Unit->IdleMark) {
        Unit->IdleMark = Unit->Completions;
        Unit->IdleSeconds = 0;
        return FALSE;
    }
    if (++Unit->IdleSeconds < Unit->IdleTimeout)
        return FALSE;
    Unit->IdleSeconds = 0;
    Unit->PowerBusy = TRUE;
    Unit->PowerLocked = TRUE;
    Unit->PowerDue = TRUE;
    return TRUE;
}

void StorpIdlePowerDown(PSTORP_ADAPTER Adapter)
{
    for (ULONG i = 0; i < Adapter->UnitTableSize; i++) {
        BOOLEAN due = FALSE;
        KeAcquireSpinLock(&Adapter->UnitLock, NULL);
        PSTORP_UNIT unit = Adapter->UnitTable[i];
        if (unit) {
            KeAcquireSpinLock(&unit->Lock, NULL);
            due = unit->PowerDue;
            unit->PowerDue = FALSE;
            KeReleaseSpinLock(&unit->Lock, 0);
        }
        KeReleaseSpinLock(&Adapter->UnitLock, 0);
        if (due)
            StorpRequestPower(unit, PowerDeviceD3);
    }
}

/* A request was held by a unit in D3 (the caller set PowerBusy). */
void StorpWake(PSTORP_UNIT Unit)
{
    StorpRequestPower(Unit, PowerDeviceD0);
}

/* The set-power IRP is back: the transition is over. Powers up again when requests arrived
 * meanwhile, or restarts the queue in D0. */
static void StorpPowerIrpDone(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction,
                              POWER_STATE PowerState, PVOID Context, PIO_STATUS_BLOCK IoStatus)
{
    PSTORP_UNIT unit = Context;
    BOOLEAN again = FALSE, restart = FALSE;

    KeAcquireSpinLock(&unit->Lock, NULL);
    if (PowerState.DeviceState == PowerDeviceD0 && unit->PowerState != PowerDeviceD0) {
        /* the unit did not start: the held requests go to it anyway and fail or succeed there
         * (NOT READY to the class driver), rather than wait forever */
        unit->PowerBusy = FALSE;
        unit->PowerLocked = FALSE;
        restart = TRUE;
    } else if (unit->PowerState == PowerDeviceD3 && !IsListEmpty(&unit->Pending)) {
        again = TRUE; /* PowerBusy stays set */
    } else {
        unit->PowerBusy = FALSE;
        if (unit->PowerState == PowerDeviceD0) {
            unit->PowerLocked = FALSE;
            restart = TRUE;
        }
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    if (again)
        StorpRequestPower(unit, PowerDeviceD0);
    else if (restart)
        StorpStartPending(unit);
}

static void StorpRequestPower(PSTORP_UNIT Unit, DEVICE_POWER_STATE State)
{
    POWER_STATE ps = {.DeviceState = State};
    NTSTATUS status =
        PoRequestPowerIrp(Unit->DeviceObject, IRP_MN_SET_POWER, ps, StorpPowerIrpDone, Unit, NULL);
    if (!NT_SUCCESS(status)) {
        IO_STATUS_BLOCK iosb = {.Status = status};
        StorpLogEvent(Unit->Adapter, Unit->PathId, Unit->TargetId, Unit->Lun, STORP_EVENT_POWER,
                      (ULONG)State, NULL, "storport", "power IRP for D%u not sent: 0x%08X",
                      (unsigned)State - 1, (unsigned)status);
        /* the transition did not start: as if it had failed (the unit keeps its state) */
        StorpPowerIrpDone(Unit->DeviceObject, IRP_MN_SET_POWER, ps, Unit, &iosb);
    }
}

/* START STOP UNIT is back: records the new state and completes the power IRP. */
static NTSTATUS StorpPowerSrbDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PSTORP_UNIT unit = Context;
    PIRP power = unit->Power.PowerIrp;
    DEVICE_POWER_STATE target = unit->Power.Target;
    NTSTATUS status = Irp->IoStatus.Status;
    POWER_STATE ps = {.DeviceState = target};

    BOOLEAN restart = FALSE;

    IoFreeIrp(Irp);
    KeAcquireSpinLock(&unit->Lock, NULL);
    if (NT_SUCCESS(status))
        unit->PowerState = target;
    /* A transition someone else asked for (no Storport request in flight) ends here: the queue
     * opens again unless the unit is now in D3, where the first request held wakes it. */
    if (!unit->PowerBusy && unit->PowerState == PowerDeviceD0 && unit->PowerLocked) {
        unit->PowerLocked = FALSE;
        restart = TRUE;
    }
    KeReleaseSpinLock(&unit->Lock, 0);
    if (NT_SUCCESS(status)) {
        STOR_UNIT_CONTROL_POWER up = {.PowerAction = StorPowerActionNone,
                                      .PowerState = target == PowerDeviceD0 ? StorPowerDeviceD0
                                                                            : StorPowerDeviceD3};
        PoSetPowerState(unit->DeviceObject, DevicePowerState, ps);
        /* the miniport learns the unit's new device power state (HwStorUnitControl) */
        StorpUnitControl(unit, ScsiUnitPower, &up);
    }
    if (NT_SUCCESS(status))
        StorpLogEvent(unit->Adapter, unit->PathId, unit->TargetId, unit->Lun, STORP_EVENT_POWER,
                      (ULONG)target, NULL, "storport", "unit powered %s: D%u",
                      target == PowerDeviceD3 ? "down (idle)" : "up (I/O waiting)",
                      (unsigned)target - 1);
    else
        StorpLogEvent(unit->Adapter, unit->PathId, unit->TargetId, unit->Lun, STORP_EVENT_POWER,
                      (ULONG)target, &unit->Power.Srb, "storport",
                      "START STOP UNIT for D%u failed: 0x%08X", (unsigned)target - 1,
                      (unsigned)status);
    unit->Power.PowerIrp = NULL;
    PoStartNextPowerIrp(power);
    power->IoStatus.Status = status;
    power->IoStatus.Information = 0;
    IoCompleteRequest(power, IO_NO_INCREMENT);
    if (restart)
        StorpStartPending(unit);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* IRP_MN_SET_POWER (device state) at a unit's PDO: START STOP UNIT through the SRB path. */
static NTSTATUS StorpSetUnitPower(PSTORP_UNIT Unit, PIRP Irp, DEVICE_POWER_STATE State)
{
    PSTORP_ADAPTER adapter = Unit->Adapter;
    PSCSI_REQUEST_BLOCK srb = &Unit->Power.Srb;
    PIO_STACK_LOCATION next;
    PIRP irp;

    if (State != PowerDeviceD0 && State != PowerDeviceD3)
        return STATUS_INVALID_PARAMETER; /* a SCSI unit is either working or stopped */
    if (State == Unit->PowerState)
        return STATUS_SUCCESS;
    if (Unit->Power.PowerIrp)
        return STATUS_DEVICE_BUSY; /* one transition at a time */
    irp = IoAllocateIrpEx(adapter->Executive, 2, FALSE);
    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(srb, 0, sizeof(*srb));
    srb->Length = sizeof(*srb);
    srb->Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb->CdbLength = 6;
    srb->Cdb[0] = SCSIOP_START_STOP_UNIT;
    srb->Cdb[4] = State == PowerDeviceD0 ? 0x01 : 0x00; /* START */
    srb->SrbFlags = SRB_FLAGS_NO_DATA_TRANSFER | SRB_FLAGS_NO_QUEUE_FREEZE |
                    SRB_FLAGS_BYPASS_FROZEN_QUEUE | SRB_FLAGS_DISABLE_SYNCH_TRANSFER;
    srb->SenseInfoBuffer = Unit->Power.Sense;
    srb->SenseInfoBufferLength = sizeof(Unit->Power.Sense);
    srb->TimeOutValue = STORP_DEFAULT_TIMEOUT;
    Unit->Power.PowerIrp = Irp;
    Unit->Power.Target = State;
    if (State == PowerDeviceD3) {
        /* from now on requests wait (Storport's own power-down has locked already) */
        KeAcquireSpinLock(&Unit->Lock, NULL);
        Unit->PowerLocked = TRUE;
        KeReleaseSpinLock(&Unit->Lock, 0);
    }
    IoMarkIrpPending(Irp);
    IoSetNextIrpStackLocation(irp);
    IoSetCompletionRoutine(irp, StorpPowerSrbDone, Unit, TRUE, TRUE, TRUE);
    next = IoGetNextIrpStackLocation(irp);
    next->MajorFunction = IRP_MJ_SCSI;
    next->Parameters.Scsi.Srb = srb;
    IoSetNextIrpStackLocation(irp);
    next->DeviceObject = Unit->DeviceObject;
    StorpExecuteSrb(Unit, irp, srb);
    return STATUS_PENDING;
}

/* IRP_MJ_POWER: a unit's PDO handles device power; system power and the adapter FDO succeed
 * (nothing to save at this level). */
NTSTATUS StorpDispatchPower(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    STORP_COMMON *common = DeviceObject->DeviceExtension;
    NTSTATUS status = STATUS_SUCCESS;

    if (common->Signature == STORP_UNIT_SIGNATURE &&
        sp->Parameters.Power.Type == DevicePowerState) {
        PSTORP_UNIT unit = ((PSTORP_PDO_EXTENSION)common)->Unit;
        DEVICE_POWER_STATE state = sp->Parameters.Power.State.DeviceState;
        if (sp->MinorFunction == IRP_MN_SET_POWER) {
            status = StorpSetUnitPower(unit, Irp, state);
            if (status == STATUS_PENDING)
                return status;
        } else if (sp->MinorFunction == IRP_MN_QUERY_POWER) {
            status = state == PowerDeviceD0 || state == PowerDeviceD3 ? STATUS_SUCCESS
                                                                      : STATUS_INVALID_PARAMETER;
        } else {
            status = STATUS_NOT_SUPPORTED;
        }
    } else if (sp->MinorFunction != IRP_MN_SET_POWER && sp->MinorFunction != IRP_MN_QUERY_POWER) {
        status = STATUS_NOT_SUPPORTED;
    }
    PoStartNextPowerIrp(Irp);
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}
