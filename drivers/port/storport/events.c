/*
 * Storport's event log (storevents.h): StorPortLogError, Storport's error recovery, device state
 * changes and the verifier write structured events into a per-adapter ring of STORP_EVENT_RING
 * entries under the event lock (a spin lock of its own: callers may hold the StartIo or a unit
 * lock). IOCTL_STORSTACK_GET_EVENTS on the adapter FDO reads them by sequence number. Each event
 * also goes to the debug output (STORSTACK_DEBUG).
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "drivers/port/storport/storport_p.h"

void StorpLogEvent(PSTORP_ADAPTER Adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun, ULONG ErrorCode,
                   ULONG UniqueId, PSCSI_REQUEST_BLOCK Srb, PCSTR Source, PCSTR Format, ...)
{
    STORSTACK_EVENT ev;
    struct timespec ts;
    va_list ap;

    memset(&ev, 0, sizeof(ev));
    clock_gettime(CLOCK_REALTIME, &ts);
    ev.TimeStamp = (ULONGLONG)ts.tv_sec * 10000000ull + (ULONGLONG)ts.tv_nsec / 100u;
    ev.ErrorCode = ErrorCode;
    ev.UniqueId = UniqueId;
    ev.PathId = PathId;
    ev.TargetId = TargetId;
    ev.Lun = Lun;
    if (Srb) {
        ev.HasSrb = 1;
        ev.Function = Srb->Function;
        ev.SrbStatus = Srb->SrbStatus;
        ev.ScsiStatus = Srb->ScsiStatus;
        ev.CdbLength = Srb->CdbLength <= sizeof(ev.Cdb) ? Srb->CdbLength : sizeof(ev.Cdb);
        memcpy(ev.Cdb, Srb->Cdb, ev.CdbLength);
        if ((Srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID) && Srb->SenseInfoBuffer &&
            Srb->SenseInfoBufferLength >= 14) {
            const UCHAR *sense = Srb->SenseInfoBuffer;
            ev.HasSense = 1;
            if ((sense[0] & 0x7F) >= 0x72) { /* descriptor format (SPC-4 4.5.2) */
                ev.SenseKey = sense[1] & 0x0F;
                ev.Asc = sense[2];
                ev.Ascq = sense[3];
            } else {
                ev.SenseKey = sense[2] & 0x0F;
                ev.Asc = sense[12];
                ev.Ascq = sense[13];
            }
        }
    }
    snprintf(ev.Source, sizeof(ev.Source), "%s", Source);
    va_start(ap, Format);
    vsnprintf(ev.Text, sizeof(ev.Text), Format, ap);
    va_end(ap);

    KeAcquireSpinLock(&Adapter->EventLock, NULL);
    ev.Sequence = ++Adapter->EventSequence;
    Adapter->Events[ev.Sequence % STORP_EVENT_RING] = ev;
    KeReleaseSpinLock(&Adapter->EventLock, 0);
    DbgPrint("storport: %s: event %llu 0x%04x %s at %u:%u:%u unique 0x%x: %s\n", Adapter->LinkName,
             (unsigned long long)ev.Sequence, ErrorCode, Source, PathId, TargetId, Lun, UniqueId,
             ev.Text);
}

/* IOCTL_STORSTACK_GET_EVENTS: the events after AfterSequence, oldest first, as many as fit. */
NTSTATUS StorpGetEvents(PSTORP_ADAPTER Adapter, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG in_len = sp->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    PSTORSTACK_EVENTS out = Irp->AssociatedIrp.SystemBuffer;
    ULONGLONG after, first, last;
    ULONG room, n = 0;

    if (!out || in_len < sizeof(STORSTACK_GET_EVENTS) || out_len < sizeof(STORSTACK_EVENTS))
        return STATUS_INVALID_PARAMETER;
    after = ((PSTORSTACK_GET_EVENTS)Irp->AssociatedIrp.SystemBuffer)->AfterSequence;
    room = (out_len - (ULONG)sizeof(STORSTACK_EVENTS)) / (ULONG)sizeof(STORSTACK_EVENT);
    KeAcquireSpinLock(&Adapter->EventLock, NULL);
    last = Adapter->EventSequence;
    first = last >= STORP_EVENT_RING ? last - STORP_EVENT_RING + 1 : 1;
    out->Lost = 0;
    if (after + 1 < first) {
        out->Lost = (ULONG)(first - after - 1);
        after = first - 1;
    }
    for (ULONGLONG seq = after + 1; seq <= last && n < room; seq++)
        out->Events[n++] = Adapter->Events[seq % STORP_EVENT_RING];
    KeReleaseSpinLock(&Adapter->EventLock, 0);
    out->Count = n;
    out->LastSequence = last;
    Irp->IoStatus.Information = sizeof(STORSTACK_EVENTS) + (ULONG_PTR)n * sizeof(STORSTACK_EVENT);
    return STATUS_SUCCESS;
}
