/*
 * The power manager's minimum: PoRequestPowerIrp (a device power IRP sent to the top of a
 * device's stack, with a callback when it completes), PoSetPowerState (the state a device records
 * for itself, shown by `storstack tree`), PoStartNextPowerIrp. There is no system power policy:
 * drivers request device power changes themselves (Storport's idle power management).
 */
#include <stdlib.h>

#include <storstack/wdm/io.h>

typedef struct _POP_REQUEST {
    PDEVICE_OBJECT DeviceObject; /* the device the caller named (the PDO) */
    PDEVICE_OBJECT Top;          /* referenced until the IRP completes */
    UCHAR MinorFunction;
    POWER_STATE State;
    PREQUEST_POWER_COMPLETE Completion;
    PVOID Context;
} POP_REQUEST, *PPOP_REQUEST;

static NTSTATUS PopRequestDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PPOP_REQUEST req = Context;
    IO_STATUS_BLOCK iosb = Irp->IoStatus;
    IoFreeIrp(Irp);
    if (req->Completion)
        req->Completion(req->DeviceObject, req->MinorFunction, req->State, req->Context, &iosb);
    ObDereferenceObject(req->Top);
    free(req);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

NTSTATUS PoRequestPowerIrp(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction, POWER_STATE PowerState,
                           PREQUEST_POWER_COMPLETE CompletionFunction, PVOID Context, PIRP *Irp)
{
    PPOP_REQUEST req;
    PDEVICE_OBJECT top;
    PIO_STACK_LOCATION sp;
    PIRP irp;

    if (Irp)
        *Irp = NULL;
    if (!DeviceObject || (MinorFunction != IRP_MN_SET_POWER && MinorFunction != IRP_MN_QUERY_POWER))
        return STATUS_INVALID_PARAMETER;
    if (PowerState.DeviceState <= PowerDeviceUnspecified ||
        PowerState.DeviceState >= PowerDeviceMaximum)
        return STATUS_INVALID_PARAMETER;
    req = calloc(1, sizeof(*req)); /* power transitions are rare: not a hot path */
    if (!req)
        return STATUS_INSUFFICIENT_RESOURCES;
    top = IoGetAttachedDeviceReference(DeviceObject);
    /* one location more than the stack needs: the first is the power manager's own */
    irp =
        IoAllocateIrpEx(DeviceObject->DriverObject->Executive, (CCHAR)(top->StackSize + 1), FALSE);
    if (!irp) {
        ObDereferenceObject(top);
        free(req);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    req->DeviceObject = DeviceObject;
    req->Top = top;
    req->MinorFunction = MinorFunction;
    req->State = PowerState;
    req->Completion = CompletionFunction;
    req->Context = Context;
    irp->IoStatus.Status = STATUS_NOT_SUPPORTED; /* what a power IRP starts with */
    IoSetNextIrpStackLocation(irp);
    IoSetCompletionRoutine(irp, PopRequestDone, req, TRUE, TRUE, TRUE);
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_POWER;
    sp->MinorFunction = MinorFunction;
    sp->Parameters.Power.Type = DevicePowerState;
    sp->Parameters.Power.State = PowerState;
    if (Irp)
        *Irp = irp;
    PoCallDriver(top, irp);
    return STATUS_PENDING;
}

POWER_STATE PoSetPowerState(PDEVICE_OBJECT DeviceObject, POWER_STATE_TYPE Type, POWER_STATE State)
{
    POWER_STATE old = {.DeviceState = PowerDeviceUnspecified};
    if (Type != DevicePowerState || State.DeviceState <= PowerDeviceUnspecified ||
        State.DeviceState >= PowerDeviceMaximum)
        return old; /* system states are the power manager's, which keeps none */
    old.DeviceState = (DEVICE_POWER_STATE)atomic_exchange(
        &DeviceObject->DeviceObjectExtension.PowerState, (int)State.DeviceState);
    return old;
}

DEVICE_POWER_STATE PoGetDevicePowerState(PDEVICE_OBJECT DeviceObject)
{
    return (DEVICE_POWER_STATE)atomic_load(&DeviceObject->DeviceObjectExtension.PowerState);
}

/* Since Windows Vista the power manager no longer holds power IRPs per device until the driver
 * calls this, and the routine does nothing; drivers written for older systems still call it.
 * storstack follows Vista: power IRPs are dispatched like any other IRP (Storport itself keeps
 * one device-power transition per unit at a time, storport/power.c). */
void PoStartNextPowerIrp(PIRP Irp)
{
    (void)Irp;
}
