/*
 * The DVD class IOCTL interface (ntddcdvd.h): IOCTL_DVD_READ_STRUCTURE with the Windows x64
 * codes, layouts and names.
 */
#ifndef STORSTACK_STORAGE_NTDDCDVD_H
#define STORSTACK_STORAGE_NTDDCDVD_H

#include <storstack/wdm/io.h>

#define FILE_DEVICE_DVD 0x00000033
#define IOCTL_DVD_BASE  FILE_DEVICE_DVD

#define IOCTL_DVD_READ_STRUCTURE CTL_CODE(IOCTL_DVD_BASE, 0x0450, METHOD_BUFFERED, FILE_READ_ACCESS)

_Static_assert(IOCTL_DVD_READ_STRUCTURE == 0x335140, "IOCTL_DVD_READ_STRUCTURE");

typedef enum DVD_STRUCTURE_FORMAT {
    DvdPhysicalDescriptor,
    DvdCopyrightDescriptor,
    DvdDiskKeyDescriptor,
    DvdBCADescriptor,
    DvdManufacturerDescriptor,
    DvdMaxDescriptor,
} DVD_STRUCTURE_FORMAT;

typedef ULONG DVD_SESSION_ID;

typedef struct _DVD_READ_STRUCTURE {
    LARGE_INTEGER BlockByteOffset;
    ULONG Format; /* DVD_STRUCTURE_FORMAT */
    DVD_SESSION_ID SessionId;
    UCHAR LayerNumber;
} DVD_READ_STRUCTURE, *PDVD_READ_STRUCTURE;

_Static_assert(sizeof(DVD_READ_STRUCTURE) == 24, "DVD_READ_STRUCTURE");

typedef struct _DVD_DESCRIPTOR_HEADER {
    USHORT Length; /* big-endian on the wire, as READ DVD STRUCTURE returns it */
    UCHAR Reserved[2];
} DVD_DESCRIPTOR_HEADER, *PDVD_DESCRIPTOR_HEADER;

#endif
