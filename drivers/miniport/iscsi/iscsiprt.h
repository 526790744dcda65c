/* The iscsiprt driver package (the iSCSI initiator virtual miniport): DriverEntry and manifest. */
#ifndef STORSTACK_ISCSIPRT_H
#define STORSTACK_ISCSIPRT_H

#include <storstack/wdm/io.h>
#include <storstack/wdm/registry.h>

DRIVER_INITIALIZE IscsiPrtDriverEntry;
extern const char IscsiPrtInf[];

#endif
