/*
 * vminiport's backend fault hooks (vmpfault.h). Values in the adapter's Device Parameters key:
 *   FaultDropRate      commands dropped per 10000 READ/WRITE commands (0..10000)
 *   FaultDropNth       drop the Nth READ/WRITE command (1-based), once
 *   FaultFailResets    the next N aborts and resets (LUN, target, bus, restart) fail
 *   FaultDisconnectNth the Nth READ/WRITE command loses the connection: for FaultDisconnectMs
 *                      (default 2000) every command is dropped and every abort and reset fails
 *   FaultSeed          seed of the rate's random sequence (default 1)
 * Dropped commands wait in a fixed table (VMP_FAULT_HELD) until an abort or a successful reset
 * completes them; when the table is full a command runs normally. The table's lock is a plain
 * spin lock of the miniport's own (the hooks run in BuildIo, unsynchronized, and in StartIo).
 */
#include <stdlib.h>
#include <time.h>

#include <storstack/wdm/registry.h>

#include "drivers/miniport/vminiport/vmpfault.h"

#define VMP_FAULT_HELD 256

struct _VMP_FAULTS {
    PVOID Adapter;
    KSPIN_LOCK Lock;
    ULONG DropRate, DropNth, DisconnectNth, DisconnectMs;
    LONG FailResets;
    ULONGLONG Random;            /* xorshift64 state */
    ULONG Commands;              /* READ/WRITE commands seen */
    ULONGLONG DisconnectedUntil; /* monotonic ns */
    PSCSI_REQUEST_BLOCK Held[VMP_FAULT_HELD];
};

static ULONGLONG VmpNowNs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ULONGLONG)ts.tv_sec * 1000000000ull + (ULONGLONG)ts.tv_nsec;
}

static BOOLEAN VmpFaultRead(PVOID ext, PCSTR name, ULONG max, ULONG *value, BOOLEAN *ok)
{
    char buf[32];
    PVOID data = buf;
    USHORT len = sizeof(buf);
    ULONGLONG v;
    if (StorPortRegistryReadAdapterKey(ext, NULL, name, MINIPORT_REG_SZ, &data, &len) !=
        STOR_STATUS_SUCCESS)
        return FALSE;
    if (!RtlStringToUlonglong(buf, FALSE, &v) || v > max) {
        StorPortLogErrorText(ext, "%s: '%s' is not a number from 0 to %u", name, buf, max);
        *ok = FALSE;
        return FALSE;
    }
    *value = (ULONG)v;
    return TRUE;
}

PVMP_FAULTS VmpFaultCreate(PVOID DeviceExtension, BOOLEAN *ok)
{
    ULONG rate = 0, nth = 0, fail = 0, disc = 0, disc_ms = 2000, seed = 1;
    BOOLEAN any = FALSE;
    PVMP_FAULTS f;

    any |= VmpFaultRead(DeviceExtension, "FaultDropRate", 10000, &rate, ok);
    any |= VmpFaultRead(DeviceExtension, "FaultDropNth", 0x7FFFFFFF, &nth, ok);
    any |= VmpFaultRead(DeviceExtension, "FaultFailResets", 1000000, &fail, ok);
    any |= VmpFaultRead(DeviceExtension, "FaultDisconnectNth", 0x7FFFFFFF, &disc, ok);
    VmpFaultRead(DeviceExtension, "FaultDisconnectMs", 600000, &disc_ms, ok);
    VmpFaultRead(DeviceExtension, "FaultSeed", 0xFFFFFFFF, &seed, ok);
    if (!*ok || !any)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (!f) {
        *ok = FALSE;
        return NULL;
    }
    f->Adapter = DeviceExtension;
    KeInitializeSpinLock(&f->Lock);
    f->DropRate = rate;
    f->DropNth = nth;
    f->FailResets = (LONG)fail;
    f->DisconnectNth = disc;
    f->DisconnectMs = disc_ms;
    f->Random = seed ? seed : 1;
    return f;
}

void VmpFaultDestroy(PVMP_FAULTS Faults)
{
    free(Faults);
}

static BOOLEAN VmpIsReadWrite(PSCSI_REQUEST_BLOCK srb)
{
    switch (srb->Cdb[0]) {
    case SCSIOP_READ:
    case SCSIOP_WRITE:
    case SCSIOP_READ16:
    case SCSIOP_WRITE16:
        return TRUE;
    default:
        return FALSE;
    }
}

BOOLEAN VmpFaultDrop(PVMP_FAULTS f, PSCSI_REQUEST_BLOCK Srb)
{
    BOOLEAN drop = FALSE;
    ULONGLONG now;
    if (!f)
        return FALSE;
    now = VmpNowNs();
    KeAcquireSpinLock(&f->Lock, NULL);
    if (VmpIsReadWrite(Srb)) {
        ULONG n = ++f->Commands;
        if (f->DisconnectNth && n == f->DisconnectNth) {
            f->DisconnectedUntil = now + (ULONGLONG)f->DisconnectMs * 1000000ull;
            StorPortLogError(f->Adapter, Srb, Srb->PathId, Srb->TargetId, Srb->Lun,
                             SP_UNEXPECTED_DISCONNECT, f->DisconnectMs);
        }
        if (f->DropNth && n == f->DropNth)
            drop = TRUE;
        if (f->DropRate) {
            f->Random ^= f->Random << 13;
            f->Random ^= f->Random >> 7;
            f->Random ^= f->Random << 17;
            drop |= f->Random % 10000u < f->DropRate;
        }
    }
    if (f->DisconnectedUntil > now)
        drop = TRUE;
    if (drop) {
        drop = FALSE;
        for (int i = 0; i < VMP_FAULT_HELD && !drop; i++)
            if (!f->Held[i]) {
                f->Held[i] = Srb;
                drop = TRUE;
            }
    }
    KeReleaseSpinLock(&f->Lock, 0);
    return drop;
}

static BOOLEAN VmpDisconnected(PVMP_FAULTS f)
{
    return f->DisconnectedUntil > VmpNowNs();
}

BOOLEAN VmpFaultAbort(PVMP_FAULTS f, PSCSI_REQUEST_BLOCK Victim)
{
    BOOLEAN found = FALSE;
    if (!f)
        return FALSE;
    KeAcquireSpinLock(&f->Lock, NULL);
    if (f->FailResets > 0)
        f->FailResets--;
    else if (!VmpDisconnected(f))
        for (int i = 0; i < VMP_FAULT_HELD && !found; i++)
            if (f->Held[i] == Victim) {
                f->Held[i] = NULL;
                found = TRUE;
            }
    KeReleaseSpinLock(&f->Lock, 0);
    if (found) {
        Victim->SrbStatus = SRB_STATUS_ABORTED;
        Victim->DataTransferLength = 0;
        StorPortNotification(RequestComplete, f->Adapter, Victim);
    }
    return found;
}

BOOLEAN VmpFaultReset(PVMP_FAULTS f, LONG TargetId, LONG Lun)
{
    PSCSI_REQUEST_BLOCK done[VMP_FAULT_HELD];
    int n = 0;
    if (!f)
        return TRUE;
    KeAcquireSpinLock(&f->Lock, NULL);
    if (VmpDisconnected(f) || f->FailResets > 0) {
        if (f->FailResets > 0)
            f->FailResets--;
        KeReleaseSpinLock(&f->Lock, 0);
        return FALSE;
    }
    for (int i = 0; i < VMP_FAULT_HELD; i++) {
        PSCSI_REQUEST_BLOCK s = f->Held[i];
        if (s && (TargetId < 0 || s->TargetId == TargetId) && (Lun < 0 || s->Lun == Lun)) {
            f->Held[i] = NULL;
            done[n++] = s;
        }
    }
    KeReleaseSpinLock(&f->Lock, 0);
    for (int i = 0; i < n; i++) {
        done[i]->SrbStatus = SRB_STATUS_BUS_RESET;
        done[i]->DataTransferLength = 0;
        StorPortNotification(RequestComplete, f->Adapter, done[i]);
    }
    return TRUE;
}
