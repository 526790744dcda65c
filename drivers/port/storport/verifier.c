/*
 * Storport's verifier (in the spirit of Storport Verification in Driver Verifier and the
 * guide's miniport compliance rules): with Control\Storport\Verifier not 0 (the default), each
 * of these miniport rule breaks is caught where it happens, survived, and reported as a
 * STORP_EVENT_VERIFIER event (source "verifier", UniqueId the rule, Text the rule's name, the
 * miniport and the details, the SRB when it is safe to read) and in the debug output:
 *   1 an SRB completed twice                       (RequestComplete: the second is ignored)
 *   2 completion of an SRB the miniport never got  (ignored)
 *   3 an SRB written after RequestComplete         (status fields compared at the IRP's end)
 *   4 an SRB completed with SRB_STATUS_PENDING     (made SRB_STATUS_ERROR)
 *   5 NextRequest/NextLuRequest outside HwStorStartIo, or for an address with no unit
 *   6 StorPortGetScatterGatherList for an SRB the miniport does not hold (NULL returned)
 *   7 a notification from the wrong context (RequestComplete in HwStorFindAdapter or
 *     HwStorInitialize, EnablePassiveInitialization outside HwStorInitialize, RequestTimerCall
 *     in HwStorFindAdapter)
 *   8 a declared limit exceeded (more data or sense back than the SRB had room for: clamped)
 * Rule 3 sees what the miniport writes before the completion is delivered: completions inside
 * HwStorBuildIo, HwStorStartIo and the other Storport-called routines are delivered when the
 * routine returns (the verifier holds BuildIo's too), not those from the miniport's own threads.
 */
#include <stdarg.h>
#include <stdio.h>

#include "drivers/port/storport/storport_p.h"

static const char *const StorpRuleNames[] = {
    [StorpRuleDoubleCompletion] = "SRB completed twice",
    [StorpRuleForeignSrb] = "completion of an SRB the miniport was not given",
    [StorpRuleTouchedAfterCompletion] = "SRB written after RequestComplete",
    [StorpRulePendingStatus] = "SRB completed with SRB_STATUS_PENDING",
    [StorpRuleNextRequest] = "NextRequest/NextLuRequest misuse",
    [StorpRuleScatterGather] = "scatter/gather list of an SRB the miniport does not hold",
    [StorpRuleWrongContext] = "notification from the wrong context",
    [StorpRuleLimits] = "declared limit exceeded",
};

static _Thread_local STORP_CONTEXT StorpContext;

STORP_CONTEXT StorpEnterContext(STORP_CONTEXT Context)
{
    STORP_CONTEXT previous = StorpContext;
    StorpContext = Context;
    return previous;
}

void StorpLeaveContext(STORP_CONTEXT Previous)
{
    StorpContext = Previous;
}

STORP_CONTEXT StorpCurrentContext(void)
{
    return StorpContext;
}

void StorpVerifierReport(PSTORP_ADAPTER Adapter, STORP_RULE Rule, PSCSI_REQUEST_BLOCK Srb,
                         PCSTR Format, ...)
{
    char detail[64];
    va_list ap;
    va_start(ap, Format);
    vsnprintf(detail, sizeof(detail), Format, ap);
    va_end(ap);
    atomic_fetch_add(&Adapter->Violations, 1);
    StorpLogEvent(Adapter, Srb ? Srb->PathId : 0xFF, Srb ? Srb->TargetId : 0xFF,
                  Srb ? Srb->Lun : 0xFF, STORP_EVENT_VERIFIER, Rule, Srb, "verifier",
                  "rule %d, %s: miniport %s: %s", (int)Rule, StorpRuleNames[Rule],
                  Adapter->Driver->ServiceName, detail);
}
