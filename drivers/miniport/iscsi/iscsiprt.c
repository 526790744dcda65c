/*
 * iscsiprt: an iSCSI initiator as a Storport virtual miniport (Storage Virtual Miniport Drivers),
 * the role of the Windows iSCSI initiator's miniport: no hardware, the logical units live on a
 * remote iSCSI target reached through libiscsi's asynchronous API. HwStorFindAdapter logs in to
 * the configured portal and target (CHAP when configured); Storport's bus scan sends INQUIRY and
 * REPORT LUNS to target 0 like any other command, so the remote LUNs appear as they are. Every
 * EXECUTE_SCSI SRB's CDB goes to the target unchanged, data through the SRB's scatter/gather list
 * (no copy), and the SCSI status, sense (SRB_STATUS_AUTOSENSE_VALID) and residual come back
 * exactly as the target returned them.
 *
 * Threads: one event-loop thread per adapter owns the libiscsi context; HwStorBuildIo only puts
 * the SRB on the adapter's queue (a short mutex, modelling the StartIo lock's role of handing a
 * request to the hardware) and wakes the loop through an eventfd, then returns FALSE. The loop
 * issues, services the socket and completes SRBs (StorPortNotification RequestComplete) from its
 * own thread, with no Storport lock held.
 *
 * Connection loss: the SRBs the connection carried are kept, the loop reconnects with a doubling
 * delay (a new session: login again), re-issues them, then the queue; new SRBs wait meanwhile, so
 * the adapter is in effect paused. After ReconnectTimeoutMs without a session every waiting SRB,
 * and every new one until the session is back, completes with SRB_STATUS_SELECTION_TIMEOUT (the
 * class driver's STATUS_DEVICE_NOT_CONNECTED). A bus reset drops the session: what was in flight
 * completes with SRB_STATUS_BUS_RESET once libiscsi has let go of its buffers, then it logs in
 * again.
 */
#include <errno.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/storport.h>

#include <storstack/wdm/pnp.h>

#include "drivers/miniport/iscsi/iscsiprt.h"

#define IMP_MAX_SG            65
#define IMP_FIRST_BACKOFF_MS  20u
#define IMP_MAX_BACKOFF_MS    1000u
#define IMP_DEFAULT_INITIATOR "iqn.2026-01.org.storstack:initiator"
#define IMP_DETACH_WAIT_S     10

typedef struct _IMP_ADAPTER IMP_ADAPTER, *PIMP_ADAPTER;

/* The SRB extension: the request while the miniport owns it. */
typedef struct _IMP_REQUEST {
    struct _IMP_REQUEST *Next;
    PIMP_ADAPTER Adapter;
    PSCSI_REQUEST_BLOCK Srb;
    struct scsi_task *Task;
    int IovCount;
    struct scsi_iovec Iov[IMP_MAX_SG];
} IMP_REQUEST, *PIMP_REQUEST;

typedef struct _IMP_LIST {
    PIMP_REQUEST Head, Tail;
} IMP_LIST;

struct _IMP_ADAPTER {
    char Portal[256];
    char Target[224];
    char Initiator[224];
    char ChapUser[128];
    char ChapSecret[128];
    ULONG ReconnectMs;
    ULONG ConnectMs;
    int Efd;
    pthread_t Thread;
    BOOLEAN ThreadStarted;

    pthread_mutex_t Lock;    /* Queue, Stopping, DetachRequested, DetachSeq */
    pthread_cond_t Detached; /* DetachSeq moved */
    IMP_LIST Queue;          /* SRBs from HwStorBuildIo not yet issued */
    BOOLEAN Stopping;
    BOOLEAN DetachRequested;
    ULONG DetachSeq;

    /* loop thread only (and HwStorFindAdapter before the loop starts) */
    struct iscsi_context *Ctx;
    IMP_LIST Retry;    /* carried by a session that died; re-issued first */
    ULONG OnWire;      /* SRBs handed to libiscsi */
    BOOLEAN Detaching; /* a reset: cancelled tasks are let go, Storport completes their SRBs */
    BOOLEAN Idle;      /* no session since a reset or stop: log in again when work comes */
    BOOLEAN GaveUp;
    int LoginState; /* 0 in progress, 1 logged in, -1 failed */
    ULONG Reconnects;
};

static void ImpPush(IMP_LIST *l, PIMP_REQUEST r)
{
    r->Next = NULL;
    if (l->Tail)
        l->Tail->Next = r;
    else
        l->Head = r;
    l->Tail = r;
}

static PIMP_REQUEST ImpTakeAll(IMP_LIST *l)
{
    PIMP_REQUEST h = l->Head;
    l->Head = l->Tail = NULL;
    return h;
}

static ULONGLONG ImpNowMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ULONGLONG)ts.tv_sec * 1000 + (ULONGLONG)ts.tv_nsec / 1000000;
}

static void ImpWake(PIMP_ADAPTER a)
{
    uint64_t one = 1;
    while (write(a->Efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Reads one adapter value as text; FALSE when absent. Too long a value clears *Ok. */
static BOOLEAN ImpReadText(PIMP_ADAPTER a, PCSTR Name, char *Buf, USHORT Len, BOOLEAN *Ok)
{
    PVOID data = Buf;
    USHORT n = Len;
    ULONG st = StorPortRegistryReadAdapterKey(a, NULL, Name, MINIPORT_REG_SZ, &data, &n);
    if (st == STOR_STATUS_BUFFER_TOO_SMALL) {
        StorPortLogErrorText(a, "%s is longer than %u characters", Name, (unsigned)Len - 1);
        *Ok = FALSE;
    }
    return st == STOR_STATUS_SUCCESS;
}

static ULONGLONG ImpReadNumber(PIMP_ADAPTER a, PCSTR Name, ULONGLONG Fallback, BOOLEAN *Ok)
{
    char buf[64];
    ULONGLONG v;
    if (!ImpReadText(a, Name, buf, sizeof(buf), Ok))
        return Fallback;
    if (!RtlStringToUlonglong(buf, TRUE, &v)) {
        StorPortLogErrorText(a, "%s: '%s' is not a number", Name, buf);
        *Ok = FALSE;
        return Fallback;
    }
    return v;
}

static void ImpComplete(PIMP_ADAPTER a, PIMP_REQUEST r, UCHAR SrbStatus)
{
    r->Srb->SrbStatus = SrbStatus;
    if (SrbStatus != SRB_STATUS_SUCCESS)
        r->Srb->DataTransferLength = 0;
    StorPortNotification(RequestComplete, a, r->Srb);
}

static void ImpCompleteList(PIMP_ADAPTER a, PIMP_REQUEST r, UCHAR SrbStatus)
{
    while (r) {
        PIMP_REQUEST next = r->Next;
        ImpComplete(a, r, SrbStatus);
        r = next;
    }
}

/* The target answered: status, sense and residual into the SRB exactly as they came. */
static void ImpFinish(PIMP_ADAPTER a, PIMP_REQUEST r, int Status, struct scsi_task *Task)
{
    PSCSI_REQUEST_BLOCK srb = r->Srb;
    ULONG len = srb->DataTransferLength;
    ULONG residual = 0;

    if (Task->residual_status == SCSI_RESIDUAL_UNDERFLOW)
        residual = Task->residual < len ? (ULONG)Task->residual : len;
    srb->ScsiStatus = (UCHAR)Status;
    if (Status == SCSI_STATUS_GOOD || Status == SCSI_STATUS_CONDITION_MET) {
        srb->DataTransferLength = len - residual;
        /* an underrun, as Storport reports it; an overrun filled the whole buffer */
        srb->SrbStatus = residual ? SRB_STATUS_DATA_OVERRUN : SRB_STATUS_SUCCESS;
    } else {
        srb->SrbStatus = SRB_STATUS_ERROR;
        srb->DataTransferLength = residual ? len - residual : 0;
        /* the sense data segment: a two-byte length, then the sense bytes (RFC 7143 11.4.7) */
        if (Status == SCSI_STATUS_CHECK_CONDITION && Task->datain.data && Task->datain.size > 2 &&
            !(srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE) && srb->SenseInfoBuffer &&
            srb->SenseInfoBufferLength) {
            ULONG n = ((ULONG)Task->datain.data[0] << 8) | Task->datain.data[1];
            if (n > (ULONG)Task->datain.size - 2)
                n = (ULONG)Task->datain.size - 2;
            if (n > srb->SenseInfoBufferLength)
                n = srb->SenseInfoBufferLength;
            if (n) {
                memcpy(srb->SenseInfoBuffer, Task->datain.data + 2, n);
                srb->SenseInfoBufferLength = (UCHAR)n;
                srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
            }
        }
    }
    StorPortNotification(RequestComplete, a, srb);
}

/* libiscsi's completion, on the loop thread. */
static void ImpCommandDone(struct iscsi_context *Ctx, int Status, void *CommandData, void *Private)
{
    PIMP_REQUEST r = Private;
    PIMP_ADAPTER a = r->Adapter;
    struct scsi_task *task = r->Task;

    a->OnWire--;
    r->Task = NULL;
    if (Status == SCSI_STATUS_CANCELLED || Status == SCSI_STATUS_ERROR ||
        Status == SCSI_STATUS_TIMEOUT) {
        /* the transport failed, not the command: keep it for the next session */
        scsi_free_scsi_task(task);
        if (!a->Detaching)
            ImpPush(&a->Retry, r);
        return;
    }
    ImpFinish(a, r, Status, task);
    scsi_free_scsi_task(task);
}

static void ImpIssue(PIMP_ADAPTER a, PIMP_REQUEST r)
{
    PSCSI_REQUEST_BLOCK srb = r->Srb;
    ULONG dir = srb->SrbFlags & SRB_FLAGS_UNSPECIFIED_DIRECTION;
    int xfer = !srb->DataTransferLength    ? SCSI_XFER_NONE
               : dir == SRB_FLAGS_DATA_IN  ? SCSI_XFER_READ
               : dir == SRB_FLAGS_DATA_OUT ? SCSI_XFER_WRITE
                                           : -1;
    if (xfer < 0) {
        /* iSCSI needs the direction in the PDU (RFC 7143 11.3.1): the SRB must say it */
        ImpComplete(a, r, SRB_STATUS_INVALID_REQUEST);
        return;
    }
    r->Task = scsi_create_task(srb->CdbLength, srb->Cdb, xfer, (int)srb->DataTransferLength);
    if (!r->Task) {
        ImpComplete(a, r, SRB_STATUS_ERROR);
        return;
    }
    if (xfer == SCSI_XFER_READ)
        scsi_task_set_iov_in(r->Task, r->Iov, r->IovCount);
    else if (xfer == SCSI_XFER_WRITE)
        scsi_task_set_iov_out(r->Task, r->Iov, r->IovCount);
    a->OnWire++;
    if (iscsi_scsi_command_async(a->Ctx, srb->Lun, r->Task, ImpCommandDone, NULL, r) < 0) {
        a->OnWire--;
        scsi_free_scsi_task(r->Task);
        r->Task = NULL;
        if (!iscsi_is_logged_in(a->Ctx))
            ImpPush(&a->Retry, r); /* the session is going: the next one carries it */
        else
            ImpComplete(a, r, SRB_STATUS_ERROR);
    }
}

static void ImpLoggedIn(struct iscsi_context *Ctx, int Status, void *CommandData, void *Private)
{
    PIMP_ADAPTER a = Private;
    if (a->LoginState == 0)
        a->LoginState = Status == SCSI_STATUS_GOOD ? 1 : -1;
}

static void ImpConnected(struct iscsi_context *Ctx, int Status, void *CommandData, void *Private)
{
    PIMP_ADAPTER a = Private;
    if (a->LoginState != 0)
        return; /* libiscsi calls again when an established connection fails */
    if (Status != SCSI_STATUS_GOOD || iscsi_login_async(Ctx, ImpLoggedIn, a) < 0)
        a->LoginState = -1;
}

/* One connection and login attempt, bounded by ConnectMs. Loop thread (or FindAdapter). */
static struct iscsi_context *ImpConnect(PIMP_ADAPTER a, char *Why, size_t WhyLen)
{
    struct iscsi_context *ctx = iscsi_create_context(a->Initiator);
    ULONGLONG deadline = ImpNowMs() + a->ConnectMs;

    if (!ctx) {
        snprintf(Why, WhyLen, "cannot create an iSCSI context");
        return NULL;
    }
    iscsi_set_noautoreconnect(ctx, 1); /* reconnection is ours: it knows the SRBs */
    iscsi_set_targetname(ctx, a->Target);
    iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    if (a->ChapUser[0])
        iscsi_set_initiator_username_pwd(ctx, a->ChapUser, a->ChapSecret);
    a->LoginState = 0;
    if (iscsi_connect_async(ctx, a->Portal, ImpConnected, a) < 0) {
        snprintf(Why, WhyLen, "%s", iscsi_get_error(ctx));
        iscsi_destroy_context(ctx);
        return NULL;
    }
    while (a->LoginState == 0) {
        LONGLONG left = (LONGLONG)(deadline - ImpNowMs());
        struct pollfd p = {.fd = iscsi_get_fd(ctx), .events = (short)iscsi_which_events(ctx)};
        int n;
        if (left <= 0) {
            snprintf(Why, WhyLen, "no login within %u ms", a->ConnectMs);
            iscsi_destroy_context(ctx);
            return NULL;
        }
        n = poll(&p, 1, (int)(left < 1000 ? left : 1000));
        if (n < 0 && errno != EINTR)
            break;
        if (iscsi_service(ctx, n > 0 ? p.revents : 0) < 0)
            break;
    }
    if (a->LoginState != 1) {
        snprintf(Why, WhyLen, "%s", iscsi_get_error(ctx));
        iscsi_destroy_context(ctx);
        return NULL;
    }
    return ctx;
}

/* Ends the session. Tasks libiscsi still holds are cancelled (destroying the context calls
 * their callbacks) and kept for re-issue. */
static void ImpDrop(PIMP_ADAPTER a)
{
    iscsi_destroy_context(a->Ctx);
    a->Ctx = NULL;
    if (a->OnWire) {
        fprintf(stderr, "storstack: iscsiprt %s: %u requests not returned by libiscsi\n", a->Target,
                a->OnWire);
        a->OnWire = 0;
    }
}

/* A reset (HwStorResetBus, ScsiStopAdapter) asked for every SRB to be let go: once the port's
 * reset routine returns TRUE, Storport completes each SRB still at the miniport itself, so none
 * may stay in libiscsi (which would write into its buffers) or on a list here (whose link lives
 * in the SRB extension). Drops the session and forgets every request, then tells the waiter.
 * Loop thread. */
static void ImpDetachAll(PIMP_ADAPTER a)
{
    if (a->Ctx) {
        a->Detaching = TRUE;
        ImpDrop(a);
        a->Detaching = FALSE;
    }
    a->Retry.Head = a->Retry.Tail = NULL;
    a->Idle = TRUE;
    a->GaveUp = FALSE;
    pthread_mutex_lock(&a->Lock);
    a->Queue.Head = a->Queue.Tail = NULL;
    a->DetachRequested = FALSE;
    a->DetachSeq++;
    pthread_cond_broadcast(&a->Detached);
    pthread_mutex_unlock(&a->Lock);
}

/* Asks the loop to detach every request and waits (bounded) until it has. Any thread but the
 * loop's; the caller may hold a Storport lock, which the loop never needs to detach. */
static BOOLEAN ImpDetachFromLoop(PIMP_ADAPTER a)
{
    struct timespec deadline;
    BOOLEAN done;
    ULONG seq;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += IMP_DETACH_WAIT_S;
    pthread_mutex_lock(&a->Lock);
    seq = a->DetachSeq;
    a->DetachRequested = TRUE;
    pthread_mutex_unlock(&a->Lock);
    ImpWake(a);
    pthread_mutex_lock(&a->Lock);
    while (a->DetachSeq == seq && rc == 0)
        rc = pthread_cond_timedwait(&a->Detached, &a->Lock, &deadline);
    done = a->DetachSeq != seq;
    pthread_mutex_unlock(&a->Lock);
    return done;
}

/* Reconnects with backoff. FALSE when the adapter is stopping (everything has completed). */
static BOOLEAN ImpReconnect(PIMP_ADAPTER a)
{
    ULONGLONG lost = ImpNowMs();
    ULONG backoff = IMP_FIRST_BACKOFF_MS;
    char why[256] = "";

    if (a->Idle)
        a->Idle = FALSE; /* a reset ended the session on purpose: nothing to announce */
    else
        fprintf(stderr, "storstack: iscsiprt %s at %s: session lost, reconnecting\n", a->Target,
                a->Portal);
    for (;;) {
        PIMP_REQUEST waiting;
        BOOLEAN stopping;
        struct pollfd p = {.fd = a->Efd, .events = POLLIN};
        uint64_t v;

        pthread_mutex_lock(&a->Lock);
        stopping = a->Stopping;
        if (a->DetachRequested) {
            pthread_mutex_unlock(&a->Lock);
            ImpDetachAll(a);
            continue;
        }
        waiting = a->GaveUp || stopping ? ImpTakeAll(&a->Queue) : NULL;
        pthread_mutex_unlock(&a->Lock);
        if (stopping) {
            ImpCompleteList(a, ImpTakeAll(&a->Retry), SRB_STATUS_SELECTION_TIMEOUT);
            ImpCompleteList(a, waiting, SRB_STATUS_SELECTION_TIMEOUT);
            return FALSE;
        }
        ImpCompleteList(a, waiting, SRB_STATUS_SELECTION_TIMEOUT);
        a->Ctx = ImpConnect(a, why, sizeof(why));
        if (a->Ctx) {
            a->Reconnects++;
            fprintf(stderr, "storstack: iscsiprt %s: session re-established, re-issuing %s\n",
                    a->Target, a->Retry.Head ? "what was in flight" : "nothing");
            a->GaveUp = FALSE;
            pthread_mutex_lock(&a->Lock);
            if (a->Retry.Head) {
                a->Retry.Tail->Next = a->Queue.Head;
                if (!a->Queue.Tail)
                    a->Queue.Tail = a->Retry.Tail;
                a->Queue.Head = a->Retry.Head;
                a->Retry.Head = a->Retry.Tail = NULL;
            }
            pthread_mutex_unlock(&a->Lock);
            return TRUE;
        }
        if (!a->GaveUp && ImpNowMs() - lost >= a->ReconnectMs) {
            fprintf(stderr,
                    "storstack: iscsiprt %s at %s: no session for %u ms (%s): failing requests "
                    "until it is back\n",
                    a->Target, a->Portal, a->ReconnectMs, why);
            a->GaveUp = TRUE;
            ImpCompleteList(a, ImpTakeAll(&a->Retry), SRB_STATUS_SELECTION_TIMEOUT);
            continue;
        }
        if (poll(&p, 1, (int)backoff) > 0 && read(a->Efd, &v, sizeof(v)) < 0)
            (void)v;
        backoff = backoff * 2 > IMP_MAX_BACKOFF_MS ? IMP_MAX_BACKOFF_MS : backoff * 2;
    }
}

static void *ImpLoop(void *Context)
{
    PIMP_ADAPTER a = Context;
    for (;;) {
        PIMP_REQUEST r;
        BOOLEAN stopping, detach;
        struct pollfd p[2];

        if (!a->Ctx && a->Idle) {
            BOOLEAN work;
            pthread_mutex_lock(&a->Lock);
            work = a->Queue.Head || a->DetachRequested;
            stopping = a->Stopping;
            pthread_mutex_unlock(&a->Lock);
            if (stopping && !work)
                return NULL;
            if (!work) {
                struct pollfd e = {.fd = a->Efd, .events = POLLIN};
                uint64_t v;
                if (poll(&e, 1, -1) > 0 && read(a->Efd, &v, sizeof(v)) < 0)
                    (void)v;
                continue;
            }
        }
        if (!a->Ctx && !ImpReconnect(a))
            return NULL;
        pthread_mutex_lock(&a->Lock);
        detach = a->DetachRequested;
        r = detach ? NULL : ImpTakeAll(&a->Queue);
        stopping = a->Stopping;
        pthread_mutex_unlock(&a->Lock);
        if (detach) {
            ImpDetachAll(a); /* the next turn logs in again */
            continue;
        }
        while (r) {
            PIMP_REQUEST next = r->Next;
            ImpIssue(a, r);
            r = next;
        }
        if (stopping && !a->OnWire && !a->Retry.Head) {
            pthread_mutex_lock(&a->Lock);
            BOOLEAN empty = !a->Queue.Head;
            pthread_mutex_unlock(&a->Lock);
            if (empty)
                break;
            continue;
        }
        p[0].fd = iscsi_get_fd(a->Ctx);
        p[0].events = (short)iscsi_which_events(a->Ctx);
        p[0].revents = 0;
        p[1].fd = a->Efd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            p[0].revents = POLLERR;
        if (p[1].revents & POLLIN) {
            uint64_t v;
            if (read(a->Efd, &v, sizeof(v)) < 0)
                (void)v;
        }
        if (iscsi_service(a->Ctx, p[0].revents) < 0 || !iscsi_is_logged_in(a->Ctx)) {
            ImpDrop(a);
            continue;
        }
        if (a->Retry.Head) /* transport errors on a session that lives on: theirs to keep */
            ImpCompleteList(a, ImpTakeAll(&a->Retry), SRB_STATUS_ERROR);
    }
    iscsi_logout_async(a->Ctx, NULL, NULL);
    iscsi_destroy_context(a->Ctx);
    a->Ctx = NULL;
    return NULL;
}

static void ImpFreeResources(PVOID DeviceExtension)
{
    PIMP_ADAPTER a = DeviceExtension;
    if (a->ThreadStarted) {
        pthread_mutex_lock(&a->Lock);
        a->Stopping = TRUE;
        pthread_mutex_unlock(&a->Lock);
        ImpWake(a);
        pthread_join(a->Thread, NULL);
        a->ThreadStarted = FALSE;
    }
    if (a->Ctx) {
        iscsi_destroy_context(a->Ctx);
        a->Ctx = NULL;
    }
    if (a->Efd >= 0) {
        close(a->Efd);
        a->Efd = -1;
        pthread_cond_destroy(&a->Detached);
        pthread_mutex_destroy(&a->Lock);
    }
}

/* HwStorFindAdapter (virtual form): reads the configuration, logs in, fills
 * PORT_CONFIGURATION_INFORMATION. One target (id 0): the remote IQN; its LUNs are the remote's. */
static ULONG ImpHwFindAdapter(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                              PVOID LowerDevice, PCSTR ArgumentString,
                              PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Again)
{
    PIMP_ADAPTER a = DeviceExtension;
    BOOLEAN ok = TRUE;
    ULONGLONG depth, max_transfer, luns, reconnect, connect;
    char why[256] = "";
    pthread_condattr_t cattr;

    memset(a, 0, sizeof(*a));
    a->Efd = -1;
    snprintf(a->Initiator, sizeof(a->Initiator), "%s", IMP_DEFAULT_INITIATOR);
    ImpReadText(a, "Portal", a->Portal, sizeof(a->Portal), &ok);
    ImpReadText(a, "TargetName", a->Target, sizeof(a->Target), &ok);
    ImpReadText(a, "InitiatorName", a->Initiator, sizeof(a->Initiator), &ok);
    ImpReadText(a, "ChapUser", a->ChapUser, sizeof(a->ChapUser), &ok);
    ImpReadText(a, "ChapSecret", a->ChapSecret, sizeof(a->ChapSecret), &ok);
    depth = ImpReadNumber(a, "QueueDepth", 32, &ok);
    max_transfer = ImpReadNumber(a, "MaximumTransferLength", 256 * 1024, &ok);
    luns = ImpReadNumber(a, "MaximumLuns", 16, &ok);
    reconnect = ImpReadNumber(a, "ReconnectTimeoutMs", 30000, &ok);
    connect = ImpReadNumber(a, "ConnectTimeoutMs", 5000, &ok);
    if (!ok)
        return SP_RETURN_BAD_CONFIG;
    if (!a->Portal[0] || !a->Target[0]) {
        StorPortLogErrorText(a, "Portal (HOST[:PORT]) and TargetName (the IQN) are required");
        return SP_RETURN_BAD_CONFIG;
    }
    if (a->ChapUser[0] && !a->ChapSecret[0]) {
        StorPortLogErrorText(a, "ChapUser needs a ChapSecret");
        return SP_RETURN_BAD_CONFIG;
    }
    if (depth == 0 || depth > 254 || luns == 0 || luns > 255 || max_transfer < 4096 ||
        max_transfer > 16u * 1024 * 1024 || max_transfer % 512 || connect == 0 ||
        connect > 600000 || reconnect > 86400000) {
        StorPortLogErrorText(a, "QueueDepth must be 1..254, MaximumLuns 1..255, "
                                "MaximumTransferLength a multiple of 512 from 4K to 16M, "
                                "ConnectTimeoutMs 1..600000, ReconnectTimeoutMs at most 86400000");
        return SP_RETURN_BAD_CONFIG;
    }
    a->ReconnectMs = (ULONG)reconnect;
    a->ConnectMs = (ULONG)connect;
    a->Ctx = ImpConnect(a, why, sizeof(why));
    if (!a->Ctx) {
        StorPortLogErrorText(a, "cannot log in to %s at %s: %s", a->Target, a->Portal, why);
        return SP_RETURN_NOT_FOUND;
    }
    a->Efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->Efd < 0) {
        ImpFreeResources(a);
        return SP_RETURN_ERROR;
    }
    pthread_mutex_init(&a->Lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->Detached, &cattr);
    pthread_condattr_destroy(&cattr);
    if (pthread_create(&a->Thread, NULL, ImpLoop, a) != 0) {
        ImpFreeResources(a);
        return SP_RETURN_ERROR;
    }
    a->ThreadStarted = TRUE;

    ConfigInfo->MaximumTransferLength = (ULONG)max_transfer;
    ConfigInfo->NumberOfPhysicalBreaks = IMP_MAX_SG;
    ConfigInfo->AlignmentMask = 0;
    ConfigInfo->NumberOfBuses = 1;
    ConfigInfo->MaximumNumberOfTargets = 1;
    ConfigInfo->MaximumNumberOfLogicalUnits = (UCHAR)luns;
    ConfigInfo->ScatterGather = TRUE;
    ConfigInfo->CachesData = FALSE;
    ConfigInfo->TaggedQueuing = TRUE;
    ConfigInfo->MultipleRequestPerLu = TRUE;
    ConfigInfo->AutoRequestSense = TRUE;
    ConfigInfo->SynchronizationModel = StorSynchronizeFullDuplex;
    ConfigInfo->InitialLunQueueDepth = (ULONG)depth;
    ConfigInfo->MaxNumberOfIO = (ULONG)depth; /* one session: the depth is the adapter's */
    ConfigInfo->VirtualDevice = TRUE;
    *Again = FALSE;
    return SP_RETURN_FOUND;
}

static BOOLEAN ImpHwInitialize(PVOID DeviceExtension)
{
    return TRUE;
}

/* HwStorBuildIo: unsynchronized; a SCSI command goes on the loop's queue and never reaches
 * StartIo. */
static BOOLEAN ImpHwBuildIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    PIMP_ADAPTER a = DeviceExtension;
    PIMP_REQUEST r = Srb->SrbExtension;
    PSTOR_SCATTER_GATHER_LIST sg;
    BOOLEAN stopping;

    if (Srb->Function != SRB_FUNCTION_EXECUTE_SCSI)
        return TRUE;
    r->Adapter = a;
    r->Srb = Srb;
    r->Task = NULL;
    r->IovCount = 0;
    if (Srb->PathId != 0 || Srb->TargetId != 0) {
        ImpComplete(a, r, SRB_STATUS_SELECTION_TIMEOUT);
        return FALSE;
    }
    if (Srb->DataTransferLength) {
        sg = StorPortGetScatterGatherList(a, Srb);
        if (!sg || sg->NumberOfElements == 0 || sg->NumberOfElements > IMP_MAX_SG) {
            ImpComplete(a, r, SRB_STATUS_INVALID_REQUEST);
            return FALSE;
        }
        /* physical addresses are host addresses: the S/G list is libiscsi's iovec */
        for (ULONG i = 0; i < sg->NumberOfElements; i++) {
            r->Iov[i].iov_base = (void *)(ULONG_PTR)sg->List[i].PhysicalAddress.QuadPart;
            r->Iov[i].iov_len = sg->List[i].Length;
        }
        r->IovCount = (int)sg->NumberOfElements;
    }
    pthread_mutex_lock(&a->Lock);
    stopping = a->Stopping;
    if (!stopping)
        ImpPush(&a->Queue, r);
    pthread_mutex_unlock(&a->Lock);
    if (stopping)
        ImpComplete(a, r, SRB_STATUS_SELECTION_TIMEOUT);
    else
        ImpWake(a);
    return FALSE;
}

/* HwStorStartIo: the management SRBs. Called with the StartIo lock held. */
static BOOLEAN ImpHwStartIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    switch (Srb->Function) {
    case SRB_FUNCTION_EXECUTE_SCSI:
        return ImpHwBuildIo(DeviceExtension, Srb), TRUE;
    case SRB_FUNCTION_FLUSH:
    case SRB_FUNCTION_SHUTDOWN:
        /* no adapter cache: SYNCHRONIZE CACHE from the class driver goes to the target */
        Srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    case SRB_FUNCTION_ABORT_COMMAND:
        Srb->SrbStatus = SRB_STATUS_ABORT_FAILED; /* commands run to completion or reset */
        break;
    default:
        Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        break;
    }
    StorPortNotification(RequestComplete, DeviceExtension, Srb);
    return TRUE;
}

/* HwStorResetBus (from Storport's error recovery, under the StartIo lock): the session is
 * dropped and every request let go, so that on TRUE Storport completes them all with
 * SRB_STATUS_BUS_RESET while libiscsi holds none of their buffers. The loop logs in again. */
static BOOLEAN ImpHwResetBus(PVOID DeviceExtension, ULONG PathId)
{
    PIMP_ADAPTER a = DeviceExtension;
    if (!ImpDetachFromLoop(a)) {
        StorPortLogErrorText(a, "bus reset: the event loop did not let go of its requests in %u s",
                             IMP_DETACH_WAIT_S);
        return FALSE;
    }
    StorPortNotification(ResetDetected, a, 0);
    return TRUE;
}

static SCSI_ADAPTER_CONTROL_STATUS
ImpHwAdapterControl(PVOID DeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = Parameters;
    switch (ControlType) {
    case ScsiQuerySupportedControlTypes:
        for (ULONG i = 0; i < list->MaxControlType && i < ScsiAdapterControlMax; i++)
            list->SupportedTypeList[i] = i == ScsiQuerySupportedControlTypes ||
                                         i == ScsiStopAdapter || i == ScsiRestartAdapter;
        return ScsiAdapterControlSuccess;
    case ScsiStopAdapter:
        /* the same contract as a bus reset: what is still here, Storport completes */
        return ImpDetachFromLoop(DeviceExtension) ? ScsiAdapterControlSuccess
                                                  : ScsiAdapterControlUnsuccessful;
    case ScsiRestartAdapter:
        return ScsiAdapterControlSuccess; /* the loop has been logging in again already */
    default:
        return ScsiAdapterControlUnsuccessful;
    }
}

NTSTATUS IscsiPrtDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    VIRTUAL_HW_INITIALIZATION_DATA init;
    memset(&init, 0, sizeof(init));
    init.HwInitializationDataSize = sizeof(init);
    init.AdapterInterfaceType = Internal;
    init.HwInitialize = ImpHwInitialize;
    init.HwStartIo = ImpHwStartIo;
    init.HwFindAdapter = ImpHwFindAdapter;
    init.HwResetBus = ImpHwResetBus;
    init.HwAdapterControl = ImpHwAdapterControl;
    init.HwBuildIo = ImpHwBuildIo;
    init.HwFreeAdapterResources = ImpFreeResources;
    init.DeviceExtensionSize = sizeof(IMP_ADAPTER);
    init.SpecificLuExtensionSize = 0;
    init.SrbExtensionSize = sizeof(IMP_REQUEST);
    init.TaggedQueuing = TRUE;
    init.AutoRequestSense = TRUE;
    init.MultipleRequestPerLu = TRUE;
    return (NTSTATUS)StorPortInitialize(DriverObject, (PVOID)RegistryPath, &init, NULL);
}

const char IscsiPrtInf[] = "[Version]\n"
                           "Signature = \"$Windows NT$\"\n"
                           "Class = SCSIAdapter\n"
                           "ClassGuid = {4d36e97b-e325-11ce-bfc1-08002be10318}\n"
                           "Provider = storstack\n"
                           "[Models]\n"
                           "storstack iSCSI initiator = iscsiprt_Install, ROOT\\ISCSIPRT\n"
                           "[iscsiprt_Install.Services]\n"
                           "AddService = iscsiprt, 0x00000002, iscsiprt_Service_Inst\n"
                           "[iscsiprt_Service_Inst]\n"
                           "ServiceType = 1\n"
                           "StartType = 0\n";
