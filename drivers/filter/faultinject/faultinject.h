/* faultinject: the SRB-level fault-injection lower filter (faultinject.c, README.md). */
#ifndef STORSTACK_DRIVERS_FILTER_FAULTINJECT_H
#define STORSTACK_DRIVERS_FILTER_FAULTINJECT_H

#include <storstack/wdm/pnp.h>

NTSTATUS FaultInjectDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath);
extern const char FaultInjectInf[];

#endif
