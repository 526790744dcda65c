/* classpnp's private structures: transfer packets and the per-FDO data behind them. */
#ifndef STORSTACK_CLASSP_H
#define STORSTACK_CLASSP_H

#include <storstack/storage/classpnp.h>

#define CLASSP_SENSE_LENGTH        64
#define CLASSP_MIN_PACKETS         32 /* preallocated per FDO */
#define CLASSP_MAX_PACKETS_PER_IRP 8  /* in flight for one original IRP */
#define CLASSP_DEFAULT_TIMEOUT     10 /* seconds */

/* One SRB's worth of an original read or write, with its own IRP and sense buffer, reused. */
typedef struct _TRANSFER_PACKET {
    LIST_ENTRY AllPktsLink;
    SINGLE_LIST_ENTRY FreeLink;
    PDEVICE_OBJECT Fdo;
    PIRP Irp;
    PIRP OriginalIrp;
    SCSI_REQUEST_BLOCK Srb;
    UCHAR SenseBuffer[CLASSP_SENSE_LENGTH];
    PUCHAR BufPtr;
    ULONG BufLen;
    ULONGLONG TargetLocation; /* byte offset */
    UCHAR MajorFunction;
    BOOLEAN Fua;
    ULONG NumRetries;
    KTIMER RetryTimer;
    KDPC RetryDpc;
} TRANSFER_PACKET, *PTRANSFER_PACKET;

typedef struct _CLASS_PRIVATE_FDO_DATA {
    KSPIN_LOCK PacketLock;
    SINGLE_LIST_ENTRY FreePackets;
    LIST_ENTRY AllPackets;
    ULONG NumTotalPackets;
    ULONG NumFreePackets;
    ULONG MaxTransferBytes;
} CLASS_PRIVATE_FDO_DATA, *PCLASS_PRIVATE_FDO_DATA;

/* The original IRP's progress, kept in its Tail.Overlay.DriverContext while the class owns it. */
typedef struct _CLASSP_RW_CONTEXT {
    atomic_uint References; /* the issuing thread's and one per packet; the last completes it */
    atomic_uint InFlight;   /* packets at the port */
    atomic_uint NextOffset; /* bytes handed to packets so far */
    atomic_int Submitting;  /* one thread issues packets at a time */
    atomic_int Status;      /* the first failure */
    atomic_uint Transferred;
} CLASSP_RW_CONTEXT, *PCLASSP_RW_CONTEXT;

_Static_assert(sizeof(CLASSP_RW_CONTEXT) <= sizeof(((IRP *)0)->Tail.Overlay.DriverContext),
               "the read/write context fits the IRP's driver context");

static inline PCLASSP_RW_CONTEXT ClasspRwContext(PIRP Irp)
{
    return (PCLASSP_RW_CONTEXT)Irp->Tail.Overlay.DriverContext;
}

/* class.c */
BOOLEAN ClasspAcquireRemoveLock(PFUNCTIONAL_DEVICE_EXTENSION Fdx);
void ClasspReleaseRemoveLock(PFUNCTIONAL_DEVICE_EXTENSION Fdx);
/* xferpkt.c */
NTSTATUS ClasspInitializePackets(PDEVICE_OBJECT Fdo);
void ClasspFreePackets(PDEVICE_OBJECT Fdo);
NTSTATUS ClasspServiceReadWrite(PDEVICE_OBJECT Fdo, PIRP Irp);
/* utils.c */
ULONG ClasspModeSense(PDEVICE_OBJECT Fdo, PUCHAR Buffer, ULONG Length, UCHAR PageMode,
                      UCHAR PageControl);
void ClasspReleaseQueueAsync(PDEVICE_OBJECT Fdo);
/* Fires SCSIOP_START_STOP_UNIT (start) without waiting. */
void ClassSendStartUnit(PDEVICE_OBJECT Fdo);
/* ioctl.c */
NTSTATUS ClasspDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp);

#endif
