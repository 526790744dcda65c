/*
 * The executive as a value: everything Windows keeps in global kernel state (the object
 * namespace, the registry, the driver store, the devnode tree, the DPC, timer and worker
 * threads, the IRP lookaside) lives in one EXECUTIVE, so a process can boot several stacks.
 * This header is what the user API (api/local.c) and tests use to boot and shut one down.
 */
#ifndef STORSTACK_KERNEL_EXECUTIVE_H
#define STORSTACK_KERNEL_EXECUTIVE_H

#include <stdio.h>

#include <storstack/wdm/io.h>
#include <storstack/wdm/pnp.h>
#include <storstack/wdm/registry.h>

/* Creates an executive with its threads running and an empty registry. */
NTSTATUS ExCreateExecutive(PEXECUTIVE *Executive);
/* Loads registry keys from INI text (Name names the source in error messages). */
NTSTATUS CmLoadIniText(PEXECUTIVE Executive, PCSTR Text, PCSTR Name, char *Error,
                       size_t ErrorLength);
NTSTATUS CmLoadIniFile(PEXECUTIVE Executive, PCSTR Path, char *Error, size_t ErrorLength);
/* Creates the root devnode and enumerates root devices (Enum\Root\*), building every stack. */
NTSTATUS PnpStartSystem(PEXECUTIVE Executive, char *Error, size_t ErrorLength);
/* Sends IRP_MJ_SHUTDOWN to registered devices, removes the devnode tree, stops the threads and
 * frees everything. */
void ExDestroyExecutive(PEXECUTIVE Executive);

/* The devnode tree as JSON (the schema of storstack_get_tree). The caller frees the result. */
char *PnpTreeToJson(PEXECUTIVE Executive);

/* Counts of live kernel objects, for leak checks in tests. */
typedef struct _EXECUTIVE_COUNTERS {
    LONG Devices;
    LONG Irps;
    LONG DevNodes;
    LONG Violations; /* driver contract breaks caught (and survived) by the I/O manager */
} EXECUTIVE_COUNTERS;
void ExQueryCounters(PEXECUTIVE Executive, EXECUTIVE_COUNTERS *Counters);

#endif
