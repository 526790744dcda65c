/*
 * Storport's event log (storstack's form of the Storport event log extensions): every
 * StorPortLogError from a miniport and every step of Storport's own error recovery (timeouts,
 * aborts, LUN/target/bus resets, adapter restarts), device state changes and verifier findings
 * become a structured STORSTACK_EVENT in a per-adapter ring. IOCTL_STORSTACK_GET_EVENTS on the
 * adapter (Scsi<N>:) reads the events after a sequence number; `storstack events` shows and
 * follows them. The layout is fixed (it crosses the management socket as bytes).
 */
#ifndef STORSTACK_STORAGE_STOREVENTS_H
#define STORSTACK_STORAGE_STOREVENTS_H

#include <storstack/storage/ntddscsi.h>

/* Function 0x800 and up: the customer range of the controller device type. */
#define IOCTL_STORSTACK_GET_EVENTS                                                                 \
    CTL_CODE(IOCTL_SCSI_BASE, 0x0800, METHOD_BUFFERED, FILE_ANY_ACCESS)

/* Error codes: a miniport's StorPortLogError codes are SP_* (0x0001..0x00FF, storport.h);
 * Storport's own events are these. */
#define STORP_EVENT_ABORT           0x0101 /* SRB_FUNCTION_ABORT_COMMAND sent; UniqueId: status */
#define STORP_EVENT_LUN_RESET       0x0102 /* UniqueId: the NTSTATUS of the reset */
#define STORP_EVENT_TARGET_RESET    0x0103
#define STORP_EVENT_BUS_RESET       0x0104 /* UniqueId: 1 done, 0 failed */
#define STORP_EVENT_ADAPTER_RESTART 0x0105 /* UniqueId: the NTSTATUS */
#define STORP_EVENT_RECOVERY_FAILED 0x0106 /* every tier failed; requests stay at the miniport */
#define STORP_EVENT_STATE_CHANGE    0x0107 /* StorPortStateChangeDetected; UniqueId: flags */
#define STORP_EVENT_POWER           0x0108 /* idle power transition; UniqueId: 1 D0, 4 D3 */
#define STORP_EVENT_VERIFIER        0x0110 /* a miniport broke a rule; Text names it */

typedef struct _STORSTACK_EVENT {
    ULONGLONG Sequence;  /* 1, 2, ... per adapter */
    ULONGLONG TimeStamp; /* Unix time, 100 ns units */
    ULONG ErrorCode;
    ULONG UniqueId;
    UCHAR PathId, TargetId, Lun; /* 0xFF: not one */
    UCHAR HasSrb;
    UCHAR Function, SrbStatus, ScsiStatus, CdbLength;
    UCHAR Cdb[16];
    UCHAR SenseKey, Asc, Ascq, HasSense;
    char Source[16]; /* "miniport <service>", "storport", "verifier" */
    char Text[112];
} STORSTACK_EVENT, *PSTORSTACK_EVENT;

_Static_assert(sizeof(STORSTACK_EVENT) == 184, "STORSTACK_EVENT has a fixed layout");

/* In: the last sequence number the caller has (0: from the oldest kept). */
typedef struct _STORSTACK_GET_EVENTS {
    ULONGLONG AfterSequence;
} STORSTACK_GET_EVENTS, *PSTORSTACK_GET_EVENTS;

/* Out: as many events as fit, oldest first; Lost counts those after AfterSequence that the ring
 * no longer holds. */
typedef struct _STORSTACK_EVENTS {
    ULONG Count;
    ULONG Lost;
    ULONGLONG LastSequence; /* the newest event's number (0: none yet) */
    STORSTACK_EVENT Events[];
} STORSTACK_EVENTS, *PSTORSTACK_EVENTS;

#endif
