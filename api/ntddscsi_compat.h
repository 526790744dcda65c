/*
 * SCSI pass-through definitions the management socket and the storstack command need, with their
 * Windows names, values and x64 layouts. When the lead's <storstack/storage/ntddscsi.h> exists it
 * is used instead and this file only checks the layout; the private copy below goes away then.
 */
#ifndef STORSTACK_API_NTDDSCSI_COMPAT_H
#define STORSTACK_API_NTDDSCSI_COMPAT_H

#include <stddef.h>

#include <storstack/nt/ntdef.h>

#if __has_include(<storstack/storage/ntddscsi.h>)
#include <storstack/storage/ntddscsi.h>
#else
#define IOCTL_SCSI_PASS_THROUGH        0x0004D004u
#define IOCTL_SCSI_PASS_THROUGH_DIRECT 0x0004D014u
#define SCSI_IOCTL_DATA_OUT            0
#define SCSI_IOCTL_DATA_IN             1
#define SCSI_IOCTL_DATA_UNSPECIFIED    2

typedef struct _SCSI_PASS_THROUGH {
    USHORT Length;
    UCHAR ScsiStatus;
    UCHAR PathId;
    UCHAR TargetId;
    UCHAR Lun;
    UCHAR CdbLength;
    UCHAR SenseInfoLength;
    UCHAR DataIn;
    ULONG DataTransferLength;
    ULONG TimeOutValue;
    ULONG_PTR DataBufferOffset;
    ULONG SenseInfoOffset;
    UCHAR Cdb[16];
} SCSI_PASS_THROUGH, *PSCSI_PASS_THROUGH;

typedef struct _SCSI_PASS_THROUGH_DIRECT {
    USHORT Length;
    UCHAR ScsiStatus;
    UCHAR PathId;
    UCHAR TargetId;
    UCHAR Lun;
    UCHAR CdbLength;
    UCHAR SenseInfoLength;
    UCHAR DataIn;
    ULONG DataTransferLength;
    ULONG TimeOutValue;
    PVOID DataBuffer;
    ULONG SenseInfoOffset;
    UCHAR Cdb[16];
} SCSI_PASS_THROUGH_DIRECT, *PSCSI_PASS_THROUGH_DIRECT;
#endif

_Static_assert(sizeof(SCSI_PASS_THROUGH) == 56, "SCSI_PASS_THROUGH is 56 bytes on x64");
_Static_assert(sizeof(SCSI_PASS_THROUGH_DIRECT) == 56, "SCSI_PASS_THROUGH_DIRECT is 56 bytes");
_Static_assert(offsetof(SCSI_PASS_THROUGH, DataBufferOffset) == 24, "DataBufferOffset at 24");
_Static_assert(offsetof(SCSI_PASS_THROUGH, SenseInfoOffset) == 32, "SenseInfoOffset at 32");
_Static_assert(offsetof(SCSI_PASS_THROUGH, Cdb) == 36, "Cdb at 36");
_Static_assert(offsetof(SCSI_PASS_THROUGH_DIRECT, DataBuffer) == 24, "DataBuffer at 24");

#endif
