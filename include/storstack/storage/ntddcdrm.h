/*
 * The CD-ROM class IOCTL interface (ntddcdrm.h): table of contents, raw reads, configuration,
 * exclusive access, speed and streaming, with the Windows x64 codes, layouts and names. The
 * storstack extensions at the end (IOCTL_STORSTACK_CDROM_*) are not in Windows: they let an
 * operator change the disc image of a virtual drive through the class driver, which passes them
 * to the miniport as SRB_FUNCTION_IO_CONTROL with the "STORSTAK" signature.
 */
#ifndef STORSTACK_STORAGE_NTDDCDRM_H
#define STORSTACK_STORAGE_NTDDCDRM_H

#include <storstack/storage/ntddstor.h>
#include <storstack/wdm/io.h>

#define IOCTL_CDROM_BASE FILE_DEVICE_CD_ROM

#define IOCTL_CDROM_READ_TOC CTL_CODE(IOCTL_CDROM_BASE, 0x0000, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_GET_LAST_SESSION                                                               \
    CTL_CODE(IOCTL_CDROM_BASE, 0x000E, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_RAW_READ CTL_CODE(IOCTL_CDROM_BASE, 0x000F, METHOD_OUT_DIRECT, FILE_READ_ACCESS)
#define IOCTL_CDROM_GET_DRIVE_GEOMETRY                                                             \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0013, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_READ_TOC_EX                                                                    \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0015, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_GET_CONFIGURATION                                                              \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0016, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_EXCLUSIVE_ACCESS                                                               \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0017, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS)
#define IOCTL_CDROM_SET_SPEED CTL_CODE(IOCTL_CDROM_BASE, 0x0018, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_CDROM_ENABLE_STREAMING                                                               \
    CTL_CODE(IOCTL_CDROM_BASE, 0x001A, METHOD_BUFFERED, FILE_READ_ACCESS)

_Static_assert(IOCTL_CDROM_READ_TOC == 0x24000, "IOCTL_CDROM_READ_TOC");
_Static_assert(IOCTL_CDROM_GET_LAST_SESSION == 0x24038, "IOCTL_CDROM_GET_LAST_SESSION");
_Static_assert(IOCTL_CDROM_RAW_READ == 0x2403E, "IOCTL_CDROM_RAW_READ");
_Static_assert(IOCTL_CDROM_READ_TOC_EX == 0x24054, "IOCTL_CDROM_READ_TOC_EX");
_Static_assert(IOCTL_CDROM_GET_CONFIGURATION == 0x24058, "IOCTL_CDROM_GET_CONFIGURATION");
_Static_assert(IOCTL_CDROM_EXCLUSIVE_ACCESS == 0x2C05C, "IOCTL_CDROM_EXCLUSIVE_ACCESS");
_Static_assert(IOCTL_CDROM_SET_SPEED == 0x24060, "IOCTL_CDROM_SET_SPEED");
_Static_assert(IOCTL_CDROM_ENABLE_STREAMING == 0x24068, "IOCTL_CDROM_ENABLE_STREAMING");

#define MAXIMUM_NUMBER_TRACKS 100
#define RAW_SECTOR_SIZE       2352
#define COOKED_SECTOR_SIZE    2048

typedef struct _TRACK_DATA {
    UCHAR Reserved;
    UCHAR Control : 4;
    UCHAR Adr : 4;
    UCHAR TrackNumber;
    UCHAR Reserved1;
    UCHAR Address[4];
} TRACK_DATA, *PTRACK_DATA;

typedef struct _CDROM_TOC {
    UCHAR Length[2];
    UCHAR FirstTrack;
    UCHAR LastTrack;
    TRACK_DATA TrackData[MAXIMUM_NUMBER_TRACKS];
} CDROM_TOC, *PCDROM_TOC;

_Static_assert(sizeof(CDROM_TOC) == 804, "CDROM_TOC");

/* IOCTL_CDROM_GET_LAST_SESSION */
typedef struct _CDROM_TOC_SESSION_DATA {
    UCHAR Length[2];
    UCHAR FirstCompleteSession;
    UCHAR LastCompleteSession;
    TRACK_DATA TrackData[1]; /* the first track of the last session */
} CDROM_TOC_SESSION_DATA, *PCDROM_TOC_SESSION_DATA;

#define CDROM_READ_TOC_EX_FORMAT_TOC      0x00
#define CDROM_READ_TOC_EX_FORMAT_SESSION  0x01
#define CDROM_READ_TOC_EX_FORMAT_FULL_TOC 0x02
#define CDROM_READ_TOC_EX_FORMAT_PMA      0x03
#define CDROM_READ_TOC_EX_FORMAT_ATIP     0x04
#define CDROM_READ_TOC_EX_FORMAT_CDTEXT   0x05

typedef struct _CDROM_READ_TOC_EX {
    UCHAR Format : 4;
    UCHAR Reserved1 : 3;
    UCHAR Msf : 1;
    UCHAR SessionTrack;
    UCHAR Reserved2;
    UCHAR Reserved3;
} CDROM_READ_TOC_EX, *PCDROM_READ_TOC_EX;

typedef enum _TRACK_MODE_TYPE {
    YellowMode2,
    XAForm2,
    CDDA,
    RawWithC2AndSubCode,
    RawWithC2,
    RawWithSubCode,
} TRACK_MODE_TYPE;

typedef struct _RAW_READ_INFO {
    LARGE_INTEGER DiskOffset; /* in COOKED_SECTOR_SIZE units of bytes: LBA * 2048 */
    ULONG SectorCount;
    ULONG TrackMode; /* TRACK_MODE_TYPE */
} RAW_READ_INFO, *PRAW_READ_INFO;

_Static_assert(sizeof(RAW_READ_INFO) == 16, "RAW_READ_INFO");

/* IOCTL_CDROM_GET_CONFIGURATION input */
#define SCSI_GET_CONFIGURATION_REQUEST_TYPE_ALL     0x0
#define SCSI_GET_CONFIGURATION_REQUEST_TYPE_CURRENT 0x1
#define SCSI_GET_CONFIGURATION_REQUEST_TYPE_ONE     0x2

typedef struct _GET_CONFIGURATION_IOCTL_INPUT {
    ULONG Feature; /* FEATURE_NUMBER */
    ULONG RequestType;
    PVOID Reserved[2];
} GET_CONFIGURATION_IOCTL_INPUT, *PGET_CONFIGURATION_IOCTL_INPUT;

_Static_assert(sizeof(GET_CONFIGURATION_IOCTL_INPUT) == 24, "GET_CONFIGURATION_IOCTL_INPUT");

/* IOCTL_CDROM_EXCLUSIVE_ACCESS (the guide's "Exclusive Access Mode" page) */
#define CDROM_EXCLUSIVE_CALLER_LENGTH 64
#define CDROM_LOCK_IGNORE_VOLUME      (1 << 0)
#define CDROM_NO_MEDIA_NOTIFICATIONS  (1 << 1)

typedef enum _EXCLUSIVE_ACCESS_REQUEST_TYPE {
    ExclusiveAccessQueryState,
    ExclusiveAccessLockDevice,
    ExclusiveAccessUnlockDevice,
} EXCLUSIVE_ACCESS_REQUEST_TYPE;

typedef struct _CDROM_EXCLUSIVE_ACCESS {
    ULONG RequestType; /* EXCLUSIVE_ACCESS_REQUEST_TYPE */
    ULONG Flags;
} CDROM_EXCLUSIVE_ACCESS, *PCDROM_EXCLUSIVE_ACCESS;

typedef struct _CDROM_EXCLUSIVE_LOCK {
    CDROM_EXCLUSIVE_ACCESS Access;
    UCHAR CallerName[CDROM_EXCLUSIVE_CALLER_LENGTH];
} CDROM_EXCLUSIVE_LOCK, *PCDROM_EXCLUSIVE_LOCK;

typedef struct _CDROM_EXCLUSIVE_LOCK_STATE {
    BOOLEAN LockState;
    UCHAR CallerName[CDROM_EXCLUSIVE_CALLER_LENGTH];
} CDROM_EXCLUSIVE_LOCK_STATE, *PCDROM_EXCLUSIVE_LOCK_STATE;

/* IOCTL_CDROM_SET_SPEED (the guide's "Set Speed" page) */
typedef enum _CDROM_SPEED_REQUEST {
    CdromSetSpeed,
    CdromSetStreaming,
} CDROM_SPEED_REQUEST;

typedef enum _WRITE_ROTATION {
    CdromDefaultRotation,
    CdromCAVRotation,
} WRITE_ROTATION;

typedef struct _CDROM_SET_SPEED {
    ULONG RequestType; /* CDROM_SPEED_REQUEST: CdromSetSpeed */
    USHORT ReadSpeed;  /* kB/s; 0xFFFF = the fastest */
    USHORT WriteSpeed;
    ULONG RotationControl; /* WRITE_ROTATION */
} CDROM_SET_SPEED, *PCDROM_SET_SPEED;

typedef struct _CDROM_SET_STREAMING {
    ULONG RequestType; /* CdromSetStreaming */
    ULONG ReadSize;    /* kB */
    ULONG ReadTime;    /* ms */
    ULONG WriteSize;
    ULONG WriteTime;
    ULONG StartLba;
    ULONG EndLba;
    ULONG RotationControl;
    BOOLEAN RestoreDefaults;
    BOOLEAN SetExact;
    BOOLEAN RandomAccess;
    BOOLEAN Persistent;
} CDROM_SET_STREAMING, *PCDROM_SET_STREAMING;

_Static_assert(sizeof(CDROM_SET_SPEED) == 12, "CDROM_SET_SPEED");
_Static_assert(sizeof(CDROM_SET_STREAMING) == 36, "CDROM_SET_STREAMING");

/* IOCTL_CDROM_ENABLE_STREAMING (the guide's "Real-time Streaming" page) */
typedef enum _STREAMING_CONTROL_REQUEST_TYPE {
    CdromStreamingDisable = 1,
    CdromStreamingEnableForReadOnly = 2,
    CdromStreamingEnableForWriteOnly = 3,
    CdromStreamingEnableForReadWrite = 4,
} STREAMING_CONTROL_REQUEST_TYPE;

typedef struct _CDROM_STREAMING_CONTROL {
    ULONG RequestType; /* STREAMING_CONTROL_REQUEST_TYPE */
} CDROM_STREAMING_CONTROL, *PCDROM_STREAMING_CONTROL;

/* ---- storstack extensions (not in Windows) ---------------------------------------------- */

/* Puts a disc image in the drive (Path non-empty) or takes the disc out (Path ""). Needs write
 * access to the handle; refused with STATUS_DEVICE_BUSY while medium removal is prevented. */
#define IOCTL_STORSTACK_CDROM_LOAD_IMAGE                                                           \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0F00, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS)
/* The drive's state as the virtual device sees it: STORSTACK_CDROM_STATUS. */
#define IOCTL_STORSTACK_CDROM_GET_STATUS                                                           \
    CTL_CODE(IOCTL_CDROM_BASE, 0x0F01, METHOD_BUFFERED, FILE_READ_ACCESS)

#define STORSTACK_CDROM_PATH_MAX 1024

typedef struct _STORSTACK_CDROM_LOAD_IMAGE {
    char Path[STORSTACK_CDROM_PATH_MAX]; /* NUL-terminated; "" = eject */
} STORSTACK_CDROM_LOAD_IMAGE, *PSTORSTACK_CDROM_LOAD_IMAGE;

typedef struct _STORSTACK_CDROM_STATUS {
    ULONG Loaded;   /* an image is in the drive */
    ULONG TrayOpen; /* the tray is open (ejected) */
    ULONG Prevented;
    ULONG Dvd;
    ULONG Sectors;
    ULONG Tracks;
    ULONG ReadSpeed; /* kB/s selected; 0 = the fastest */
    ULONG MediaChangeCount;
    ULONGLONG StreamingReads;
    char Image[STORSTACK_CDROM_PATH_MAX];
    char Message[256]; /* why the last load failed, when it did */
} STORSTACK_CDROM_STATUS, *PSTORSTACK_CDROM_STATUS;

/* The SRB_FUNCTION_IO_CONTROL contract between the cdrom class driver and vminiport: an
 * SRB_IO_CONTROL header with this signature, then the IOCTL's structure. ReturnCode is 0 or a
 * positive errno. */
#define STORSTACK_SRB_SIGNATURE        "STORSTAK"
#define STORSTACK_SRB_CDROM_LOAD_IMAGE 0x53430001u
#define STORSTACK_SRB_CDROM_GET_STATUS 0x53430002u

#endif
