/* The disk IOCTL interface (ntdddisk.h): geometry and length, with Windows layouts and codes. */
#ifndef STORSTACK_STORAGE_NTDDDISK_H
#define STORSTACK_STORAGE_NTDDDISK_H

#include <storstack/wdm/io.h>

#define IOCTL_DISK_BASE FILE_DEVICE_DISK
#define IOCTL_DISK_GET_DRIVE_GEOMETRY                                                              \
    CTL_CODE(IOCTL_DISK_BASE, 0x0000, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_DISK_GET_LENGTH_INFO                                                                 \
    CTL_CODE(IOCTL_DISK_BASE, 0x0017, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_DISK_GET_DRIVE_GEOMETRY_EX                                                           \
    CTL_CODE(IOCTL_DISK_BASE, 0x0028, METHOD_BUFFERED, FILE_ANY_ACCESS)

_Static_assert(IOCTL_DISK_GET_DRIVE_GEOMETRY_EX == 0x700A0, "IOCTL_DISK_GET_DRIVE_GEOMETRY_EX");
_Static_assert(IOCTL_DISK_GET_LENGTH_INFO == 0x7405C, "IOCTL_DISK_GET_LENGTH_INFO");

typedef enum _MEDIA_TYPE { Unknown = 0, RemovableMedia = 0x0b, FixedMedia = 0x0c } MEDIA_TYPE;

typedef struct _DISK_GEOMETRY {
    LARGE_INTEGER Cylinders;
    ULONG MediaType; /* MEDIA_TYPE */
    ULONG TracksPerCylinder;
    ULONG SectorsPerTrack;
    ULONG BytesPerSector;
} DISK_GEOMETRY, *PDISK_GEOMETRY;

typedef struct _DISK_GEOMETRY_EX {
    DISK_GEOMETRY Geometry;
    LARGE_INTEGER DiskSize;
    UCHAR Data[1];
} DISK_GEOMETRY_EX, *PDISK_GEOMETRY_EX;

typedef struct _GET_LENGTH_INFORMATION {
    LARGE_INTEGER Length;
} GET_LENGTH_INFORMATION, *PGET_LENGTH_INFORMATION;

_Static_assert(sizeof(DISK_GEOMETRY) == 24, "DISK_GEOMETRY");
_Static_assert(offsetof(DISK_GEOMETRY_EX, DiskSize) == 24, "DISK_GEOMETRY_EX.DiskSize");

#endif
