/*
 * vminiport's backend fault hooks (vmpfault.c): faults below Storport, where only Storport's
 * error recovery can end them — dropped commands (never completed until an abort or a reset),
 * failed aborts and resets, and lost connections (every command dropped, every abort and reset
 * failing, for a while). Configured from the adapter's Device Parameters (docs/config.md).
 */
#ifndef STORSTACK_VMINIPORT_VMPFAULT_H
#define STORSTACK_VMINIPORT_VMPFAULT_H

#include <storstack/storage/storport.h>

typedef struct _VMP_FAULTS VMP_FAULTS, *PVMP_FAULTS;

/* Reads the fault values; NULL when none is set (no hooks, no cost), or on a bad value (*ok
 * cleared, the reason logged). */
PVMP_FAULTS VmpFaultCreate(PVOID DeviceExtension, BOOLEAN *ok);
void VmpFaultDestroy(PVMP_FAULTS Faults);
/* HwStorBuildIo: TRUE when the command is dropped (kept until an abort or a reset). */
BOOLEAN VmpFaultDrop(PVMP_FAULTS Faults, PSCSI_REQUEST_BLOCK Srb);
/* SRB_FUNCTION_ABORT_COMMAND: TRUE when the victim was a dropped command, now completed
 * SRB_STATUS_ABORTED. */
BOOLEAN VmpFaultAbort(PVMP_FAULTS Faults, PSCSI_REQUEST_BLOCK Victim);
/* A reset (LUN: target, lun; target: lun -1; bus: both -1): FALSE when it is to fail; else the
 * dropped commands of its scope complete SRB_STATUS_BUS_RESET. */
BOOLEAN VmpFaultReset(PVMP_FAULTS Faults, LONG TargetId, LONG Lun);

#endif
