/* The disk driver package: its DriverEntry and manifest. */
#ifndef STORSTACK_DISK_H
#define STORSTACK_DISK_H

#include <storstack/wdm/io.h>

DRIVER_INITIALIZE DiskDriverEntry;
extern const char DiskInf[];

#endif
