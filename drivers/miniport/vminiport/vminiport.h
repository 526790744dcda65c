/* The vminiport driver package: its DriverEntry and manifest. */
#ifndef STORSTACK_VMINIPORT_H
#define STORSTACK_VMINIPORT_H

#include <storstack/wdm/io.h>
#include <storstack/wdm/registry.h>

DRIVER_INITIALIZE VminiportDriverEntry;
extern const char VminiportInf[];

#endif
