/* The CD-ROM class driver's private structures: the FDO's driver data and the per-handle context
 * (exclusive lock owner, medium removal locks, streaming, the media change count it has seen). */
#ifndef STORSTACK_CDROMP_H
#define STORSTACK_CDROMP_H

#include <stdatomic.h>

#include <storstack/storage/classpnp.h>
#include <storstack/storage/ntddcdrm.h>
#include <storstack/storage/ntddcdvd.h>

#define CDROM_POLL_DEFAULT_MS 1000
#define CDROM_SECURITY_MAX    1024

/* Rights a security descriptor grants (CdRompCheckAccess) */
#define CDROM_RIGHT_READ       0x1 /* open with read access */
#define CDROM_RIGHT_WRITE      0x2 /* open with write access (load, eject) */
#define CDROM_RIGHT_PRIVILEGED 0x4 /* raw read, pass-through, exclusive lock */

typedef struct _CDROM_FILE_CONTEXT {
    PFILE_OBJECT FileObject;
    ULONG LockCount;       /* IOCTL_STORAGE_MEDIA_REMOVAL prevents held by this handle */
    BOOLEAN Streaming;     /* IOCTL_CDROM_ENABLE_STREAMING: reads are READ (12) STREAMING */
    ULONG SeenChangeCount; /* the media change count this handle last saw */
    ULONG Rights;          /* CDROM_RIGHT_* the security descriptor granted at open */
} CDROM_FILE_CONTEXT, *PCDROM_FILE_CONTEXT;

typedef struct _CDROM_DATA {
    ULONG CdRomNumber;
    char LinkName[32];
    BOOLEAN LinkCreated;
    KSPIN_LOCK Lock;             /* the fields below */
    PFILE_OBJECT ExclusiveOwner; /* NULL = not locked */
    UCHAR ExclusiveCaller[CDROM_EXCLUSIVE_CALLER_LENGTH];
    ULONG ExclusiveFlags;
    ULONG LockCount; /* the device's medium removal prevents, all handles */
    ULONG MediaChangeCount;
    atomic_ullong MediaBytes; /* the medium's length; 0 = no disc (read on the I/O path) */
    BOOLEAN MediaIsDvd;
    char LastLoadError[256];
    /* GESN polling: a periodic timer whose DPC queues the work item that polls */
    ULONG PollIntervalMs;
    KTIMER PollTimer;
    KDPC PollDpc;
    PIO_WORKITEM PollWorkItem;
    atomic_int PollQueued;
    atomic_bool Stopping;
    BOOLEAN TimerStarted;
    KEVENT MediaLock; /* serialises media updates (synchronization event used as a mutex) */
    /* The security descriptor text ("" = everyone may do everything) */
    char Security[CDROM_SECURITY_MAX];
} CDROM_DATA, *PCDROM_DATA;

static inline PCDROM_DATA CdRompData(PDEVICE_OBJECT Fdo)
{
    return ClassGetFdoExtension(Fdo)->DriverData;
}

/* The length of the disc in the drive, 0 when there is none, as the last media update saw it. */
static inline ULONGLONG CdRompMediaBytes(PDEVICE_OBJECT Fdo)
{
    return atomic_load_explicit(&CdRompData(Fdo)->MediaBytes, memory_order_acquire);
}

static inline PCDROM_FILE_CONTEXT CdRompFileContext(PIRP Irp)
{
    PFILE_OBJECT fo = IoGetCurrentIrpStackLocation(Irp)->FileObject;
    return fo ? fo->FsContext2 : NULL;
}

/* cdrom.c */
/* Completes the IRP with the status and information; returns the status. */
NTSTATUS CdRompComplete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information);
NTSTATUS CdRompSendSrb(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb, PVOID Buffer, ULONG Length,
                       BOOLEAN Write, PUCHAR Sense, ULONG SenseLength);
/* Re-reads the medium (TEST UNIT READY, capacity, profile); a change bumps the change count. */
void CdRompUpdateMedia(PDEVICE_OBJECT Fdo, BOOLEAN Changed);
/* Is the request from another handle while the drive is exclusively locked? */
BOOLEAN CdRompLockedOut(PDEVICE_OBJECT Fdo, PIRP Irp);
/* security.c */
/* The rights the descriptor grants principal; an empty descriptor grants everything. */
ULONG CdRompRightsFor(PCSTR Descriptor, PCSTR Principal);
BOOLEAN CdRompDescriptorValid(PCSTR Descriptor, char *Why, ULONG WhyLength);
/* ioctl.c */
NTSTATUS CdRomDeviceControl(PDEVICE_OBJECT Fdo, PIRP Irp);

#endif
