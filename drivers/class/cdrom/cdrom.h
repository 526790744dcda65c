/* The cdrom driver package: its DriverEntry and manifest. */
#ifndef STORSTACK_CDROM_H
#define STORSTACK_CDROM_H

#include <storstack/wdm/io.h>

DRIVER_INITIALIZE CdRomDriverEntry;
extern const char CdRomInf[];

#endif
