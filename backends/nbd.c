/*
 * The NBD byte store (be_nbd_create): an export of a remote NBD server through libnbd's
 * asynchronous API, the storage behind vminiport's `Backend = nbd` units (the NBD virtual
 * miniport of docs/remote.md). One event-loop thread per backend owns the libnbd handle: every
 * nbd_* call happens on it, so no libnbd callback ever races a submitter. Submitters put the
 * request on a queue under a short mutex (the model is Storport's StartIo lock: held only while
 * handing the request over) and wake the loop through an eventfd; the loop issues it (READ ->
 * pread per iov element, WRITE -> pwrite with FUA, FLUSH -> flush, DISCARD -> trim,
 * WRITE_ZEROES -> zero), polls the socket, and runs the completions after libnbd has returned,
 * never inside libnbd's own callback (which holds the handle's lock).
 *
 * Reconnection: when the connection dies (libnbd retires every command in flight with ENOTCONN),
 * the requests it carried are kept, not failed. The loop reconnects with a doubling delay, checks
 * the export is still at least as large, and re-issues them, then the queue. Requests keep
 * queueing meanwhile. After reconnect_ms without a connection, every request waiting and every
 * one submitted afterwards completes with -ENOTCONN, while the loop keeps trying; once it is back,
 * requests flow again. Re-issuing is safe because a request that was not acknowledged may be
 * applied twice: READ, WRITE, TRIM, ZERO and FLUSH are idempotent.
 *
 * Contract (backend.h): each request completes exactly once, on the loop thread (requests
 * refused before they are queued complete inline); be_destroy() waits for every request.
 */
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/nbd.h"

/* libnbd refuses larger trims and zeroes; longer ones are split. */
#define BE_NBD_MAX_RANGE        (1ull << 30)
#define BE_NBD_FIRST_BACKOFF_MS 20u

/* io->priv[] use: [0] the queue link; [1] sub-commands outstanding (low 32 bits) and the first
 * error as a positive errno (high 32 bits). Both are touched only by the loop thread once the
 * request is queued. */
#define BE_NBD_NEXT(io) (*(struct be_io **)&(io)->priv[0])

struct be_nbd_list {
    struct be_io *head, *tail;
};

/* A synchronous allocation-map query (be_extents) handed to the loop: NBD_CMD_BLOCK_STATUS with
 * the base:allocation context. The caller waits on `answered`. */
struct be_nbd_query {
    struct be_nbd_query *next;
    uint64_t offset, length;
    struct be_extent *ext;
    uint32_t max, count;
    int err; /* positive errno of the command */
    int result;
    bool done;
};

struct be_nbd_qlist {
    struct be_nbd_query *head, *tail;
};

struct be_nbd {
    struct backend be;
    char *uri;
    uint32_t reconnect_ms, connect_ms, max_backoff_ms;
    int efd; /* wakes the loop: new requests, destroy */
    pthread_t thread;

    pthread_mutex_t lock;     /* queue, queries, stopping, every query's done */
    pthread_cond_t answered;  /* a query is done */
    struct be_nbd_list queue; /* submitted, not yet issued */
    struct be_nbd_qlist queries;
    bool stopping;

    /* loop thread only */
    struct nbd_handle *h;
    struct be_nbd_list retry; /* carried by a connection that died; re-issued first */
    struct be_nbd_list done;  /* finished, callbacks to run */
    struct be_nbd_qlist qretry, qdone;
    uint32_t on_wire; /* requests with sub-commands at the server */
    bool gave_up;     /* past reconnect_ms: requests fail at once */
    atomic_uint_fast64_t reconnects;
};

static void be_nbd_push(struct be_nbd_list *l, struct be_io *io)
{
    BE_NBD_NEXT(io) = NULL;
    if (l->tail)
        BE_NBD_NEXT(l->tail) = io;
    else
        l->head = io;
    l->tail = io;
}

static struct be_io *be_nbd_take_all(struct be_nbd_list *l)
{
    struct be_io *head = l->head;
    l->head = l->tail = NULL;
    return head;
}

/* Puts list `front` ahead of `l`. */
static void be_nbd_prepend(struct be_nbd_list *l, struct be_nbd_list *front)
{
    if (!front->head)
        return;
    BE_NBD_NEXT(front->tail) = l->head;
    if (!l->tail)
        l->tail = front->tail;
    l->head = front->head;
    front->head = front->tail = NULL;
}

static uint64_t be_nbd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool be_nbd_connection_error(int err)
{
    return err == ENOTCONN || err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
}

static void be_nbd_wake(struct be_nbd *b)
{
    uint64_t one = 1;
    while (write(b->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void be_nbd_fail_list(struct be_io *io, int err)
{
    while (io) {
        struct be_io *next = BE_NBD_NEXT(io);
        io->complete(io, err);
        io = next;
    }
}

/* One sub-command of `io` is over: when it was the last, the request is done or, if the
 * connection carried it away, kept for re-issue. Loop thread. */
static void be_nbd_sub_done(struct be_nbd *b, struct be_io *io, int err)
{
    uint32_t pending = (uint32_t)io->priv[1];
    uint32_t first = (uint32_t)(io->priv[1] >> 32);
    if (err && !first)
        first = (uint32_t)err;
    pending--;
    io->priv[1] = ((uint64_t)first << 32) | pending;
    if (pending)
        return;
    b->on_wire--;
    if (first && be_nbd_connection_error((int)first))
        be_nbd_push(&b->retry, io);
    else
        be_nbd_push(&b->done, io);
}

/* libnbd's completion callback: runs on the loop thread with the handle locked, so it only
 * records the outcome. The request pointer is the user_data; the backend is found through the
 * thread-local current backend set around every libnbd call. */
static _Thread_local struct be_nbd *be_nbd_current;

static int be_nbd_completed(void *user_data, int *error)
{
    be_nbd_sub_done(be_nbd_current, user_data, *error);
    return 1; /* retire the command */
}

/* Issues every sub-command of one request. Loop thread, connected. */
static void be_nbd_issue(struct be_nbd *b, struct be_io *io)
{
    nbd_completion_callback cb = {.callback = be_nbd_completed, .user_data = io};
    uint32_t subs = 0, issued = 0;
    int err = 0;

    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE:
        for (int i = 0; i < io->iovcnt; i++)
            subs += io->iov[i].iov_len != 0;
        break;
    case BE_OP_FLUSH:
        subs = 1;
        break;
    case BE_OP_DISCARD:
    case BE_OP_WRITE_ZEROES:
        subs = (uint32_t)((io->length + BE_NBD_MAX_RANGE - 1) / BE_NBD_MAX_RANGE);
        break;
    }
    /* one extra hold while issuing, so a sub-command finishing inside an nbd_aio_* call cannot
     * finish the whole request before the others are issued */
    io->priv[1] = (uint64_t)subs + 1;
    b->on_wire++;

    uint64_t off = io->offset;
    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE:
        for (int i = 0; i < io->iovcnt && !err; i++) {
            size_t n = io->iov[i].iov_len;
            int64_t r;
            if (!n)
                continue;
            r = io->op == BE_OP_READ
                    ? nbd_aio_pread(b->h, io->iov[i].iov_base, n, off, cb, 0)
                    : nbd_aio_pwrite(
                          b->h, io->iov[i].iov_base, n, off, cb,
                          (io->flags & BE_IO_FUA) && b->be.caps.can_fua ? LIBNBD_CMD_FLAG_FUA : 0);
            if (r < 0)
                err = nbd_get_errno() ? nbd_get_errno() : EIO;
            else
                issued++;
            off += n;
        }
        break;
    case BE_OP_FLUSH:
        if (nbd_aio_flush(b->h, cb, 0) < 0)
            err = nbd_get_errno() ? nbd_get_errno() : EIO;
        else
            issued++;
        break;
    case BE_OP_DISCARD:
    case BE_OP_WRITE_ZEROES:
        for (uint64_t left = io->length; left && !err;) {
            uint64_t n = left < BE_NBD_MAX_RANGE ? left : BE_NBD_MAX_RANGE;
            int64_t r = io->op == BE_OP_DISCARD ? nbd_aio_trim(b->h, n, off, cb, 0)
                                                : nbd_aio_zero(b->h, n, off, cb, 0);
            if (r < 0)
                err = nbd_get_errno() ? nbd_get_errno() : EIO;
            else
                issued++;
            off += n;
            left -= n;
        }
        break;
    }
    /* a refused sub-command (the handle died under us, or libnbd rejected the arguments) counts
     * as finished with its error, and so do the ones never tried */
    if (err && nbd_aio_is_dead(b->h))
        err = ENOTCONN;
    for (uint32_t i = issued; i < subs; i++)
        be_nbd_sub_done(b, io, err);
    be_nbd_sub_done(b, io, 0); /* the issuing hold */
}

static void be_nbd_qpush(struct be_nbd_qlist *l, struct be_nbd_query *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static struct be_nbd_query *be_nbd_qtake_all(struct be_nbd_qlist *l)
{
    struct be_nbd_query *h = l->head;
    l->head = l->tail = NULL;
    return h;
}

/* Answers queries: under the lock, so a waiter sees `done` with its result. Any thread. */
static void be_nbd_answer(struct be_nbd *b, struct be_nbd_query *q, int result)
{
    pthread_mutex_lock(&b->lock);
    while (q) {
        struct be_nbd_query *next = q->next;
        q->result = result ? result : q->err ? -q->err : (int)q->count;
        q->done = true;
        q = next;
    }
    pthread_cond_broadcast(&b->answered);
    pthread_mutex_unlock(&b->lock);
}

/* base:allocation entries are (length, flags) pairs from `offset`; NBD_STATE_HOLE is a hole. */
static int be_nbd_extent_cb(void *user_data, const char *metacontext, uint64_t offset,
                            uint32_t *entries, size_t nr_entries, int *error)
{
    struct be_nbd_query *q = user_data;
    uint64_t end = q->offset + q->length;
    if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || *error)
        return 0;
    for (size_t i = 0; i + 1 < nr_entries && offset < end; i += 2) {
        uint64_t n = entries[i];
        uint32_t flags = (entries[i + 1] & LIBNBD_STATE_HOLE) ? BE_EXTENT_HOLE : 0;
        if (offset < q->offset) { /* a server may start before the offset asked */
            uint64_t skip = q->offset - offset < n ? q->offset - offset : n;
            offset += skip;
            n -= skip;
        }
        if (n > end - offset)
            n = end - offset;
        if (n && !be_extent_append(q->ext, &q->count, q->max, offset, n, flags))
            break;
        offset += n;
    }
    return 0;
}

static int be_nbd_query_done(void *user_data, int *error)
{
    struct be_nbd_query *q = user_data;
    struct be_nbd *b = be_nbd_current;
    q->err = *error;
    if (*error && be_nbd_connection_error(*error))
        be_nbd_qpush(&b->qretry, q);
    else
        be_nbd_qpush(&b->qdone, q);
    return 1;
}

static void be_nbd_issue_query(struct be_nbd *b, struct be_nbd_query *q)
{
    uint64_t len = q->length < BE_NBD_MAX_RANGE ? q->length : BE_NBD_MAX_RANGE;
    nbd_extent_callback ecb = {.callback = be_nbd_extent_cb, .user_data = q};
    nbd_completion_callback ccb = {.callback = be_nbd_query_done, .user_data = q};
    q->count = 0;
    q->err = 0;
    if (nbd_aio_block_status(b->h, len, q->offset, ecb, ccb, 0) < 0) {
        q->err = nbd_aio_is_dead(b->h) ? ENOTCONN : nbd_get_errno() ? nbd_get_errno() : EIO;
        be_nbd_qpush(q->err == ENOTCONN ? &b->qretry : &b->qdone, q);
    }
}

static void be_nbd_run_done(struct be_nbd *b)
{
    struct be_io *io = be_nbd_take_all(&b->done);
    if (b->qdone.head)
        be_nbd_answer(b, be_nbd_qtake_all(&b->qdone), 0);
    while (io) {
        struct be_io *next = BE_NBD_NEXT(io);
        uint32_t err = (uint32_t)(io->priv[1] >> 32);
        io->complete(io, err ? -(int)err : 0);
        io = next;
    }
}

/* One connection attempt, bounded by connect_ms. Returns the ready handle or NULL. */
static struct nbd_handle *be_nbd_connect(struct be_nbd *b, const char **detail, int *errnum)
{
    struct nbd_handle *h = nbd_create();
    uint64_t deadline = be_nbd_now_ms() + b->connect_ms;

    *errnum = EIO;
    if (!h) {
        *detail = nbd_get_error();
        *errnum = ENOMEM;
        return NULL;
    }
    nbd_set_handle_name(h, "storstack");
    nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
    if (nbd_aio_connect_uri(h, b->uri) < 0)
        goto fail;
    while (!nbd_aio_is_ready(h)) {
        struct pollfd p;
        unsigned dir;
        int64_t left = (int64_t)(deadline - be_nbd_now_ms());
        int r;
        if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
            goto fail;
        if (left <= 0) {
            *detail = "connection timed out";
            *errnum = ETIMEDOUT;
            nbd_close(h);
            return NULL;
        }
        p.fd = nbd_aio_get_fd(h);
        dir = nbd_aio_get_direction(h);
        p.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                   ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno != EINTR)
            goto fail;
        if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) && nbd_aio_notify_read(h) < 0 &&
            !nbd_aio_is_ready(h))
            goto fail;
        if (r > 0 && (p.revents & POLLOUT) && nbd_aio_notify_write(h) < 0 && !nbd_aio_is_ready(h))
            goto fail;
    }
    return h;
fail:
    *detail = nbd_get_error() ? nbd_get_error() : "connection failed";
    if (nbd_get_errno())
        *errnum = nbd_get_errno();
    nbd_close(h);
    return NULL;
}

static struct be_caps be_nbd_caps(struct nbd_handle *h)
{
    struct be_caps c = {
        .read_only = nbd_is_read_only(h) == 1,
        .can_flush = nbd_can_flush(h) == 1,
        .can_fua = nbd_can_fua(h) == 1,
        .can_trim = nbd_can_trim(h) == 1,
        .trim_zeroes = false, /* NBD_CMD_TRIM promises nothing about what reads return */
        .can_zero = nbd_can_zero(h) == 1,
        .can_extents = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1,
    };
    return c;
}

/* Waits on the eventfd for up to ms milliseconds (or until woken). */
static void be_nbd_sleep(struct be_nbd *b, uint32_t ms)
{
    struct pollfd p = {.fd = b->efd, .events = POLLIN};
    uint64_t v;
    if (poll(&p, 1, (int)ms) > 0 && read(b->efd, &v, sizeof(v)) < 0)
        return;
}

/* The connection is gone: reconnect with backoff, then put the carried requests back in front.
 * Returns false when the backend is stopping (everything has been failed). */
static bool be_nbd_reconnect(struct be_nbd *b)
{
    uint64_t lost_at = be_nbd_now_ms();
    uint32_t backoff = BE_NBD_FIRST_BACKOFF_MS;
    const char *detail = "";
    int errnum;

    fprintf(stderr, "storstack: nbd %s: connection lost, reconnecting\n", b->uri);
    for (;;) {
        struct nbd_handle *h;
        struct be_io *waiting;
        struct be_nbd_query *asking = NULL;
        bool stopping;

        pthread_mutex_lock(&b->lock);
        stopping = b->stopping;
        if (b->gave_up || stopping) {
            waiting = be_nbd_take_all(&b->queue);
            asking = be_nbd_qtake_all(&b->queries);
        } else {
            waiting = NULL;
        }
        pthread_mutex_unlock(&b->lock);
        if (stopping) {
            be_nbd_fail_list(be_nbd_take_all(&b->retry), -ESHUTDOWN);
            be_nbd_fail_list(waiting, -ESHUTDOWN);
            be_nbd_answer(b, be_nbd_qtake_all(&b->qretry), -ESHUTDOWN);
            be_nbd_answer(b, asking, -ESHUTDOWN);
            return false;
        }
        /* after giving up: at once */
        be_nbd_fail_list(waiting, -ENOTCONN);
        be_nbd_answer(b, asking, -ENOTCONN);

        h = be_nbd_connect(b, &detail, &errnum);
        if (h) {
            int64_t size = nbd_get_size(h);
            if (size >= 0 && (uint64_t)size >= b->be.size) {
                struct be_caps caps = be_nbd_caps(h);
                b->h = h;
                /* the caps are the disk's VPD pages, read by other threads without a lock: they
                 * stay as the first server offered them */
                if (memcmp(&caps, &b->be.caps, sizeof(caps)) != 0)
                    fprintf(stderr,
                            "storstack: nbd %s: the server came back with other capabilities; "
                            "requests it no longer supports will fail\n",
                            b->uri);
                atomic_fetch_add(&b->reconnects, 1);
                if (b->gave_up)
                    fprintf(stderr, "storstack: nbd %s: reconnected, requests flow again\n",
                            b->uri);
                b->gave_up = false;
                pthread_mutex_lock(&b->lock);
                be_nbd_prepend(&b->queue, &b->retry);
                if (b->qretry.head) {
                    b->qretry.tail->next = b->queries.head;
                    if (!b->queries.tail)
                        b->queries.tail = b->qretry.tail;
                    b->queries.head = b->qretry.head;
                    b->qretry.head = b->qretry.tail = NULL;
                }
                pthread_mutex_unlock(&b->lock);
                return true;
            }
            fprintf(stderr, "storstack: nbd %s: the export shrank to %lld bytes; not using it\n",
                    b->uri, (long long)size);
            nbd_close(h);
        }
        if (!b->gave_up && be_nbd_now_ms() - lost_at >= b->reconnect_ms) {
            fprintf(stderr,
                    "storstack: nbd %s: no connection for %u ms (%s): failing requests with "
                    "ENOTCONN until it is back\n",
                    b->uri, b->reconnect_ms, detail);
            b->gave_up = true;
            be_nbd_fail_list(be_nbd_take_all(&b->retry), -ENOTCONN);
            be_nbd_answer(b, be_nbd_qtake_all(&b->qretry), -ENOTCONN);
            continue;
        }
        be_nbd_sleep(b, backoff);
        backoff = backoff * 2 > b->max_backoff_ms ? b->max_backoff_ms : backoff * 2;
    }
}

static void *be_nbd_loop(void *arg)
{
    struct be_nbd *b = arg;
    be_nbd_current = b;
    for (;;) {
        struct pollfd p[2];
        struct be_io *io;
        struct be_nbd_query *q;
        bool stopping;
        unsigned dir;

        if (!b->h && !be_nbd_reconnect(b))
            return NULL;

        pthread_mutex_lock(&b->lock);
        io = be_nbd_take_all(&b->queue);
        q = be_nbd_qtake_all(&b->queries);
        stopping = b->stopping;
        pthread_mutex_unlock(&b->lock);
        while (q) {
            struct be_nbd_query *next = q->next;
            be_nbd_issue_query(b, q);
            q = next;
        }
        while (io) {
            struct be_io *next = BE_NBD_NEXT(io);
            be_nbd_issue(b, io);
            io = next;
        }
        be_nbd_run_done(b);
        if (stopping && b->on_wire == 0 && !b->retry.head && !nbd_aio_in_flight(b->h)) {
            pthread_mutex_lock(&b->lock);
            bool empty = !b->queue.head && !b->queries.head;
            pthread_mutex_unlock(&b->lock);
            if (empty)
                break;
            continue;
        }

        if (!nbd_aio_is_dead(b->h) && !nbd_aio_is_closed(b->h)) {
            p[0].fd = nbd_aio_get_fd(b->h);
            dir = nbd_aio_get_direction(b->h);
            p[0].events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                          ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
            p[0].revents = 0;
            p[1].fd = b->efd;
            p[1].events = POLLIN;
            p[1].revents = 0;
            if (poll(p, 2, -1) < 0 && errno != EINTR)
                p[0].revents = POLLERR;
            if (p[1].revents & POLLIN) {
                uint64_t v;
                if (read(b->efd, &v, sizeof(v)) < 0)
                    (void)v;
            }
            if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
                nbd_aio_notify_read(b->h);
            else if (p[0].revents & POLLOUT)
                nbd_aio_notify_write(b->h);
            be_nbd_run_done(b);
        }
        if ((b->retry.head || b->qretry.head) && !nbd_aio_is_dead(b->h) &&
            !nbd_aio_is_closed(b->h)) {
            /* a connection error reported by a server that is still talking: its answer */
            b->done = b->retry;
            b->retry.head = b->retry.tail = NULL;
            b->qdone = b->qretry;
            b->qretry.head = b->qretry.tail = NULL;
            be_nbd_run_done(b);
        }
        if (nbd_aio_is_dead(b->h) || nbd_aio_is_closed(b->h)) {
            /* libnbd has retired every command with ENOTCONN: they sit in b->retry */
            nbd_close(b->h);
            b->h = NULL;
            be_nbd_run_done(b);
            if (b->on_wire)
                fprintf(stderr, "storstack: nbd %s: %u requests lost by libnbd\n", b->uri,
                        b->on_wire);
        }
    }
    nbd_shutdown(b->h, 0);
    nbd_close(b->h);
    b->h = NULL;
    return NULL;
}

static void be_nbd_submit(struct backend *be, struct be_io *io)
{
    struct be_nbd *b = (struct be_nbd *)be;
    uint64_t total = 0;
    bool stopping;

    if (io->offset > be->size || io->length > be->size - io->offset) {
        io->complete(io, -EINVAL);
        return;
    }
    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE:
        if (io->iovcnt < 0 || (io->iovcnt && !io->iov)) {
            io->complete(io, -EINVAL);
            return;
        }
        for (int i = 0; i < io->iovcnt; i++)
            total += io->iov[i].iov_len;
        if (total != io->length) {
            io->complete(io, -EINVAL);
            return;
        }
        if (io->op == BE_OP_WRITE && be->caps.read_only) {
            io->complete(io, -EROFS);
            return;
        }
        if (!io->length) {
            io->complete(io, 0);
            return;
        }
        break;
    case BE_OP_FLUSH:
        if (!be->caps.can_flush) {
            io->complete(io, 0); /* nothing the server could make more durable */
            return;
        }
        break;
    case BE_OP_DISCARD:
    case BE_OP_WRITE_ZEROES:
        if (be->caps.read_only) {
            io->complete(io, -EROFS);
            return;
        }
        if ((io->op == BE_OP_DISCARD && !be->caps.can_trim) ||
            (io->op == BE_OP_WRITE_ZEROES && !be->caps.can_zero)) {
            io->complete(io, -EOPNOTSUPP);
            return;
        }
        if (!io->length) {
            io->complete(io, 0);
            return;
        }
        break;
    default:
        io->complete(io, -EINVAL);
        return;
    }
    pthread_mutex_lock(&b->lock);
    stopping = b->stopping;
    if (!stopping)
        be_nbd_push(&b->queue, io);
    pthread_mutex_unlock(&b->lock);
    if (stopping) {
        io->complete(io, -ESHUTDOWN);
        return;
    }
    be_nbd_wake(b);
}

/* be_extents: a BLOCK_STATUS round trip through the loop, waited for here. */
static int be_nbd_extents(struct backend *be, uint64_t offset, uint64_t length,
                          struct be_extent *ext, uint32_t max)
{
    struct be_nbd *b = (struct be_nbd *)be;
    struct be_nbd_query q = {.offset = offset, .length = length, .ext = ext, .max = max};
    if (be_nbd_current == b) {
        /* asked from a completion on the loop itself (Storport starting the unit's next
         * request): waiting for the loop would wait forever, so ask libnbd synchronously */
        nbd_extent_callback ecb = {.callback = be_nbd_extent_cb, .user_data = &q};
        if (!b->h || nbd_aio_is_dead(b->h) || nbd_aio_is_closed(b->h))
            return -ENOTCONN;
        if (nbd_block_status(b->h, length < BE_NBD_MAX_RANGE ? length : BE_NBD_MAX_RANGE, offset,
                             ecb, 0) < 0)
            return nbd_get_errno() ? -nbd_get_errno() : -EIO;
        return q.count ? (int)q.count : -EIO;
    }
    pthread_mutex_lock(&b->lock);
    if (b->stopping) {
        pthread_mutex_unlock(&b->lock);
        return -ESHUTDOWN;
    }
    be_nbd_qpush(&b->queries, &q);
    pthread_mutex_unlock(&b->lock);
    be_nbd_wake(b);
    pthread_mutex_lock(&b->lock);
    while (!q.done)
        pthread_cond_wait(&b->answered, &b->lock);
    pthread_mutex_unlock(&b->lock);
    /* a server that described nothing at the offset asked answered nothing usable */
    if (q.result == 0)
        return -EIO;
    return q.result;
}

static void be_nbd_destroy(struct backend *be)
{
    struct be_nbd *b = (struct be_nbd *)be;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_mutex_unlock(&b->lock);
    be_nbd_wake(b);
    pthread_join(b->thread, NULL);
    close(b->efd);
    pthread_cond_destroy(&b->answered);
    pthread_mutex_destroy(&b->lock);
    free(b->uri);
    free(b);
}

static const struct backend_ops be_nbd_ops = {
    .name = "nbd",
    .submit = be_nbd_submit,
    .extents = be_nbd_extents,
    .destroy = be_nbd_destroy,
};

int be_nbd_create(const struct be_nbd_config *cfg, struct backend **out, const char **err_detail)
{
    struct be_nbd *b;
    const char *detail = NULL;
    int errnum, rc;
    int64_t size;

    *out = NULL;
    if (err_detail)
        *err_detail = NULL;
    if (!cfg || !cfg->uri || !cfg->uri[0]) {
        if (err_detail)
            *err_detail = "no URI";
        return -EINVAL;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->be.ops = &be_nbd_ops;
    b->reconnect_ms = cfg->reconnect_ms;
    b->connect_ms = cfg->connect_ms ? cfg->connect_ms : 5000;
    b->max_backoff_ms = cfg->max_backoff_ms ? cfg->max_backoff_ms : 1000;
    b->uri = strdup(cfg->uri);
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!b->uri || b->efd < 0) {
        rc = b->uri ? -errno : -ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->answered, NULL);
    b->h = be_nbd_connect(b, &detail, &errnum);
    if (!b->h) {
        if (err_detail)
            *err_detail = detail;
        rc = -errnum;
        goto fail_lock;
    }
    size = nbd_get_size(b->h);
    if (size <= 0) {
        if (err_detail)
            *err_detail = size < 0 ? nbd_get_error() : "the export is empty";
        rc = size < 0 ? -EIO : -EINVAL;
        goto fail_h;
    }
    b->be.size = (uint64_t)size;
    b->be.caps = be_nbd_caps(b->h);
    rc = pthread_create(&b->thread, NULL, be_nbd_loop, b);
    if (rc) {
        rc = -rc;
        goto fail_h;
    }
    *out = &b->be;
    return 0;
fail_h:
    nbd_close(b->h);
fail_lock:
    pthread_cond_destroy(&b->answered);
    pthread_mutex_destroy(&b->lock);
fail:
    if (b->efd >= 0)
        close(b->efd);
    free(b->uri);
    free(b);
    return rc;
}

uint64_t be_nbd_reconnects(const struct backend *be)
{
    if (!be || be->ops != &be_nbd_ops)
        return 0;
    return atomic_load(&((const struct be_nbd *)be)->reconnects);
}
