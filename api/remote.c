/*
 * The management-socket client: a storstack_t whose ops send each user-API call as a request to
 * a running `storstack serve` (api/wire.h) and complete it when the response with its tag comes
 * back. Any number of threads may call in at once: each request takes a slot in a pending table
 * (its tag is the slot index and a generation), frames go out whole under the send lock, and one
 * receiver thread reads responses, copies each payload straight into the caller's buffer and runs
 * the callback. Async read/write callbacks therefore run on the receiver thread. The receiver
 * never sends: a request issued from inside a callback is queued for a small sender thread, so a
 * callback-driven pipeline (the bench's trampoline) cannot deadlock with a server whose own socket
 * buffers are full. Synchronous calls must not be made from a callback (they fail with
 * STATUS_INVALID_DEVICE_STATE). When the connection is lost, every outstanding request completes
 * with STATUS_CONNECTION_DISCONNECTED and every later one fails with it at once.
 * IOCTL_SCSI_PASS_THROUGH_DIRECT is converted to IOCTL_SCSI_PASS_THROUGH and back here, since its
 * DataBuffer pointer cannot cross the process boundary.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <storstack/nt/ntstatus.h>

#include "api/api_p.h"
#include <storstack/storage/ntddscsi.h>
#include "api/wire.h"

#define REMOTE_CHUNK 256         /* pending slots are allocated in chunks that never move */
#define REMOTE_RBUF  (64u << 10) /* responses are read in batches through this buffer */
#define REMOTE_BATCH 32          /* queued frames per sendmsg in the sender thread */

struct remote_pending {
    struct remote_pending *next; /* free list or send queue */
    uint32_t index;              /* in the table: the low half of the tag */
    uint32_t generation;
    int in_use;
    uint16_t op;
    /* where the response goes */
    void *buf;
    uint32_t cap;
    uint64_t *handle_out;
    char **json_out;
    storstack_io_callback *callback;
    void *context;
    /* whose request it is, for storstack_cancel (READ/WRITE/IOCTL) */
    uint64_t handle_id;
    const void *user;
    /* a frame queued for the sender thread */
    uint8_t hdr[WIRE_REQUEST_HEADER_SIZE];
    const void *payload;
    uint32_t payload_length;
    int queued;
};

struct remote_handle {
    storstack_handle_t base;
    uint64_t id;
    struct remote_handle *next, *prev;
};

struct remote_stack {
    storstack_t base;
    int fd;
    pthread_t receiver;
    pthread_t sender;
    pthread_mutex_t send_lock; /* taken before lock */
    pthread_mutex_t lock;      /* pending table, send queue, handles, dead */
    pthread_cond_t send_cond;
    int dead;
    int stopping;
    struct remote_pending **chunks;
    uint32_t nchunks;
    struct remote_pending *free_list;
    struct remote_pending *queue_head, *queue_tail;
    struct remote_handle *handles;
    struct wire_reader reader; /* receiver thread only */
    uint8_t rbuf[REMOTE_RBUF];
};

static struct remote_stack *remote_of(storstack_t *stack)
{
    return (struct remote_stack *)stack;
}

/* Under lock: a free slot, growing the table by a chunk when needed. */
static struct remote_pending *remote_alloc_slot(struct remote_stack *rs, uint32_t *index)
{
    struct remote_pending *p = rs->free_list;
    if (!p) {
        struct remote_pending **chunks =
            realloc(rs->chunks, (rs->nchunks + 1) * sizeof(*rs->chunks));
        if (!chunks)
            return NULL;
        rs->chunks = chunks;
        struct remote_pending *c = calloc(REMOTE_CHUNK, sizeof(*c));
        if (!c)
            return NULL;
        rs->chunks[rs->nchunks++] = c;
        for (int i = REMOTE_CHUNK - 1; i >= 0; i--) {
            c[i].index = (rs->nchunks - 1) * REMOTE_CHUNK + (uint32_t)i;
            c[i].next = rs->free_list;
            rs->free_list = &c[i];
        }
        p = rs->free_list;
    }
    rs->free_list = p->next;
    p->next = NULL;
    p->in_use = 1;
    p->generation++;
    *index = p->index;
    return p;
}

static void remote_free_slot(struct remote_stack *rs, struct remote_pending *p)
{
    p->in_use = 0;
    p->queued = 0;
    p->next = rs->free_list;
    rs->free_list = p;
}

static struct remote_pending *remote_find(struct remote_stack *rs, uint64_t tag)
{
    uint32_t index = (uint32_t)tag, c = index / REMOTE_CHUNK;
    struct remote_pending *p;
    if (c >= rs->nchunks)
        return NULL;
    p = &rs->chunks[c][index % REMOTE_CHUNK];
    if (!p->in_use || p->generation != (uint32_t)(tag >> 32))
        return NULL;
    return p;
}

/* The connection is gone: fail everything outstanding (receiver thread, or connect's cleanup). */
static void remote_fail_all(struct remote_stack *rs)
{
    shutdown(rs->fd, SHUT_RDWR);
    pthread_mutex_lock(&rs->send_lock); /* no send is reading a caller's buffer after this */
    pthread_mutex_lock(&rs->lock);
    rs->dead = 1;
    rs->queue_head = rs->queue_tail = NULL;
    pthread_mutex_unlock(&rs->lock);
    pthread_mutex_unlock(&rs->send_lock);

    for (;;) {
        struct remote_pending *found = NULL;
        storstack_io_callback *cb = NULL;
        void *ctx = NULL;
        pthread_mutex_lock(&rs->lock);
        for (uint32_t c = 0; c < rs->nchunks && !found; c++)
            for (uint32_t i = 0; i < REMOTE_CHUNK && !found; i++)
                if (rs->chunks[c][i].in_use)
                    found = &rs->chunks[c][i];
        if (found) {
            cb = found->callback;
            ctx = found->context;
            remote_free_slot(rs, found);
        }
        pthread_mutex_unlock(&rs->lock);
        if (!found)
            break;
        cb(ctx, STATUS_CONNECTION_DISCONNECTED, 0);
    }
}

/* Reads len bytes of the response stream (receiver thread), batching small frames. */
static int remote_read(struct remote_stack *rs, void *dst, size_t len)
{
    return wire_reader_read(&rs->reader, dst, len, NULL, NULL);
}

static void *remote_receiver(void *arg)
{
    struct remote_stack *rs = arg;
    uint8_t hdr[WIRE_RESPONSE_HEADER_SIZE];
    struct wire_response rsp;
    const char *reason = NULL;

    for (;;) {
        struct remote_pending *p, copy;
        if (remote_read(rs, hdr, sizeof(hdr)) || wire_decode_response(hdr, &rsp, &reason))
            break;
        pthread_mutex_lock(&rs->lock);
        p = remote_find(rs, rsp.tag);
        if (p) {
            copy = *p;
            remote_free_slot(rs, p);
        }
        pthread_mutex_unlock(&rs->lock);
        if (!p)
            break; /* a tag we never sent: the stream cannot be trusted */
        if (rsp.payload_length) {
            int rc;
            if (copy.op == WIRE_OP_GET_TREE) {
                char *json = malloc((size_t)rsp.payload_length + 1);
                rc = json ? remote_read(rs, json, rsp.payload_length) : -ENOMEM;
                if (json && !rc) {
                    json[rsp.payload_length] = 0;
                    *copy.json_out = json;
                } else {
                    free(json);
                }
            } else if (rsp.payload_length <= copy.cap) {
                rc = remote_read(rs, copy.buf, rsp.payload_length);
            } else {
                rc = -EPROTO; /* more data than asked for */
            }
            if (rc) {
                copy.callback(copy.context, STATUS_CONNECTION_DISCONNECTED, 0);
                break;
            }
        }
        if (copy.op == WIRE_OP_OPEN)
            *copy.handle_out = rsp.handle;
        copy.callback(copy.context, rsp.status, rsp.information);
    }
    remote_fail_all(rs);
    return NULL;
}

/* Sends frames queued by callbacks (which run on the receiver, which must never block on send). */
static void *remote_sender(void *arg)
{
    struct remote_stack *rs = arg;
    pthread_mutex_lock(&rs->send_lock);
    for (;;) {
        struct remote_pending *p;
        pthread_mutex_lock(&rs->lock);
        while (!rs->queue_head && !rs->stopping) {
            pthread_mutex_unlock(&rs->send_lock);
            pthread_cond_wait(&rs->send_cond, &rs->lock);
            pthread_mutex_unlock(&rs->lock);
            pthread_mutex_lock(&rs->send_lock);
            pthread_mutex_lock(&rs->lock);
        }
        if (rs->stopping) {
            pthread_mutex_unlock(&rs->lock);
            break;
        }
        /* up to REMOTE_BATCH frames in one sendmsg */
        uint8_t hdrs[REMOTE_BATCH][WIRE_REQUEST_HEADER_SIZE];
        struct iovec iov[2 * REMOTE_BATCH];
        int n = 0, frames = 0;
        while ((p = rs->queue_head) && frames < REMOTE_BATCH) {
            rs->queue_head = p->next;
            p->next = NULL;
            p->queued = 0;
            memcpy(hdrs[frames], p->hdr, sizeof(hdrs[frames]));
            iov[n++] = (struct iovec){hdrs[frames], sizeof(hdrs[frames])};
            if (p->payload_length)
                iov[n++] = (struct iovec){(void *)p->payload, p->payload_length};
            frames++;
        }
        if (!rs->queue_head)
            rs->queue_tail = NULL;
        pthread_mutex_unlock(&rs->lock);
        if (wire_send_all(rs->fd, iov, n))
            shutdown(rs->fd, SHUT_RDWR); /* the receiver fails everything */
    }
    pthread_mutex_unlock(&rs->send_lock);
    return NULL;
}

/*
 * Issues one request. STATUS_PENDING: the callback will run exactly once (on the receiver
 * thread). Anything else: it was not issued and the callback will not run.
 */
static storstack_status_t remote_submit(struct remote_stack *rs, struct wire_request *req,
                                        const void *payload, struct remote_pending *tmpl)
{
    struct remote_pending *p;
    uint32_t index = 0, generation;
    uint8_t hdr[WIRE_REQUEST_HEADER_SIZE];
    int on_receiver = pthread_equal(pthread_self(), rs->receiver);
    int rc;

    req->magic = WIRE_MAGIC_REQUEST;
    pthread_mutex_lock(&rs->lock);
    if (rs->dead) {
        pthread_mutex_unlock(&rs->lock);
        return STATUS_CONNECTION_DISCONNECTED;
    }
    p = remote_alloc_slot(rs, &index);
    if (!p) {
        pthread_mutex_unlock(&rs->lock);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    generation = p->generation;
    p->op = req->op;
    p->buf = tmpl->buf;
    p->cap = tmpl->cap;
    p->handle_out = tmpl->handle_out;
    p->json_out = tmpl->json_out;
    p->callback = tmpl->callback;
    p->context = tmpl->context;
    p->user = tmpl->user;
    p->handle_id = req->handle;
    req->tag = (uint64_t)generation << 32 | index;
    wire_encode_request(req, hdr);
    if (on_receiver) {
        memcpy(p->hdr, hdr, sizeof(hdr));
        p->payload = payload;
        p->payload_length = req->payload_length;
        p->queued = 1;
        if (rs->queue_tail)
            rs->queue_tail->next = p;
        else
            rs->queue_head = p;
        rs->queue_tail = p;
        pthread_cond_signal(&rs->send_cond);
        pthread_mutex_unlock(&rs->lock);
        return STATUS_PENDING;
    }
    pthread_mutex_unlock(&rs->lock);

    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, req->payload_length}};
    pthread_mutex_lock(&rs->send_lock);
    if (rs->dead) { /* dead is only set under send_lock: the request was failed already */
        pthread_mutex_unlock(&rs->send_lock);
        return STATUS_PENDING;
    }
    rc = wire_send_all(rs->fd, iov, req->payload_length ? 2 : 1);
    pthread_mutex_unlock(&rs->send_lock);
    if (rc) {
        shutdown(rs->fd, SHUT_RDWR);
        pthread_mutex_lock(&rs->lock);
        p = remote_find(rs, req->tag);
        if (p)
            remote_free_slot(rs, p); /* still ours: not issued, no callback */
        pthread_mutex_unlock(&rs->lock);
        return p ? STATUS_CONNECTION_DISCONNECTED : STATUS_PENDING;
    }
    return STATUS_PENDING;
}

/* A synchronous request: *information gets IoStatus.Information. */
static storstack_status_t remote_call(struct remote_stack *rs, struct wire_request *req,
                                      const void *payload, struct remote_pending *tmpl,
                                      uint64_t *information)
{
    struct storstack_wait w;

    if (information)
        *information = 0;
    if (pthread_equal(pthread_self(), rs->receiver))
        return STATUS_INVALID_DEVICE_STATE; /* would wait on ourselves */
    storstack_wait_init(&w);
    tmpl->callback = storstack_wait_done;
    tmpl->context = &w;
    return storstack_wait_finish(&w, remote_submit(rs, req, payload, tmpl), information);
}

static storstack_status_t remote_open(storstack_t *stack, const char *name, uint32_t access,
                                      const struct storstack_identity *who,
                                      storstack_handle_t **out)
{
    struct remote_stack *rs = remote_of(stack);
    size_t len = strlen(name);
    uint64_t id = 0;
    struct remote_pending t = {.handle_out = &id};
    struct wire_request req = {.op = WIRE_OP_OPEN, .arg0 = access, .payload_length = (uint32_t)len};
    struct remote_handle *h;
    storstack_status_t st;
    char payload[WIRE_MAX_NAME + WIRE_MAX_IDENTITY];
    const char *send = name;

    if (len == 0 || len > WIRE_MAX_NAME)
        return STATUS_OBJECT_NAME_INVALID;
    if (who) { /* lengths bounded by storstack_open_ex; the server takes it from root only */
        size_t plen = strlen(who->principal);
        size_t tlen = who->transport_id ? strlen(who->transport_id) : 0;
        memcpy(payload, name, len);
        memcpy(payload + len, who->principal, plen);
        memcpy(payload + len + plen, who->transport_id ? who->transport_id : "", tlen);
        req.arg1 = (uint32_t)len;
        req.handle = plen;
        req.offset = who->nexus;
        req.payload_length = (uint32_t)(len + plen + tlen);
        send = payload;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        return STATUS_INSUFFICIENT_RESOURCES;
    st = remote_call(rs, &req, send, &t, NULL);
    if (!NT_SUCCESS(st)) {
        free(h);
        return st;
    }
    h->base.stack = stack;
    h->id = id;
    pthread_mutex_lock(&rs->lock);
    h->next = rs->handles;
    if (rs->handles)
        rs->handles->prev = h;
    rs->handles = h;
    pthread_mutex_unlock(&rs->lock);
    *out = &h->base;
    return st;
}

static storstack_status_t remote_close(storstack_handle_t *handle)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    struct remote_stack *rs = remote_of(handle->stack);
    struct remote_pending t = {0};
    struct wire_request req = {.op = WIRE_OP_CLOSE, .handle = h->id};
    storstack_status_t st = remote_call(rs, &req, NULL, &t, NULL);

    /* the handle is gone either way, as with CloseHandle */
    pthread_mutex_lock(&rs->lock);
    if (h->prev)
        h->prev->next = h->next;
    else
        rs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&rs->lock);
    free(h);
    return st == STATUS_CONNECTION_DISCONNECTED ? STATUS_SUCCESS : st;
}

static storstack_status_t remote_rw_async(storstack_handle_t *handle, int write, void *buf,
                                          uint32_t length, uint64_t offset,
                                          storstack_io_callback *callback, void *context)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    struct remote_pending t = {.callback = callback, .context = context, .user = context};
    struct wire_request req = {.handle = h->id, .offset = offset};

    if (length > WIRE_MAX_PAYLOAD)
        return STATUS_INVALID_PARAMETER;
    if (write) {
        req.op = WIRE_OP_WRITE;
        req.payload_length = length;
    } else {
        req.op = WIRE_OP_READ;
        req.arg0 = length;
        t.buf = buf;
        t.cap = length;
    }
    return remote_submit(remote_of(handle->stack), &req, write ? buf : NULL, &t);
}

static storstack_status_t remote_flush(storstack_handle_t *handle)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    struct remote_pending t = {0};
    struct wire_request req = {.op = WIRE_OP_FLUSH, .handle = h->id};
    return remote_call(remote_of(handle->stack), &req, NULL, &t, NULL);
}

static storstack_status_t remote_ioctl_raw(storstack_handle_t *handle, uint32_t code,
                                           const void *in, uint32_t in_length, void *out,
                                           uint32_t out_length, uint32_t *returned)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    struct remote_pending t = {.buf = out, .cap = out_length};
    struct wire_request req = {.op = WIRE_OP_IOCTL,
                               .handle = h->id,
                               .arg0 = code,
                               .arg1 = out_length,
                               .payload_length = in_length};
    uint64_t info = 0;
    storstack_status_t st;

    void *copy = NULL;

    if (in_length > WIRE_MAX_PAYLOAD || out_length > WIRE_MAX_PAYLOAD)
        return STATUS_INVALID_PARAMETER;
    /* METHOD_BUFFERED callers often pass one buffer as both; the response cannot arrive before
     * the request has left, but keep the sender's and receiver's bytes apart all the same */
    if (in_length && out_length && (const uint8_t *)in < (uint8_t *)out + out_length &&
        (uint8_t *)out < (const uint8_t *)in + in_length) {
        copy = malloc(in_length);
        if (!copy)
            return STATUS_INSUFFICIENT_RESOURCES;
        memcpy(copy, in, in_length);
        in = copy;
    }
    st = remote_call(remote_of(handle->stack), &req, in, &t, &info);
    free(copy);
    *returned = info > out_length ? out_length : (uint32_t)info;
    return st;
}

/*
 * IOCTL_SCSI_PASS_THROUGH_DIRECT as IOCTL_SCSI_PASS_THROUGH: one buffer holding the header, the
 * sense area right after it and the data (8-byte aligned) after that; data-out travels in the
 * input, data-in comes back in the output; then status, sense and data are put back where the
 * caller's SCSI_PASS_THROUGH_DIRECT points. The conversion lives in one allocation from issue to
 * callback, so the synchronous and the overlapped call share it.
 */
struct remote_sptd {
    /* two owners, the caller in remote_submit (the request may still be in sendmsg when the
     * response arrives) and the callback; the last to let go frees. buf holds the response
     * (total bytes), then the request (send_length bytes) in a region of its own, so the
     * receiver never writes where sendmsg reads. */
    atomic_int refs;
    SCSI_PASS_THROUGH_DIRECT d;
    void *out;
    uint32_t out_length, data_at, total;
    storstack_io_callback *callback;
    void *context;
    uint8_t buf[];
};

static void remote_sptd_done(void *context, storstack_status_t st, uint64_t information)
{
    struct remote_sptd *x = context;
    SCSI_PASS_THROUGH_DIRECT d = x->d;
    SCSI_PASS_THROUGH s;
    uint32_t sense_at = sizeof(SCSI_PASS_THROUGH), returned = 0;
    uint32_t got = information > x->total ? x->total : (uint32_t)information;

    if (!NT_ERROR(st) && got >= sizeof(s)) {
        memcpy(&s, x->buf, sizeof(s));
        d.ScsiStatus = s.ScsiStatus;
        if (s.SenseInfoLength > d.SenseInfoLength)
            s.SenseInfoLength = d.SenseInfoLength;
        d.SenseInfoLength = s.SenseInfoLength;
        if (s.DataTransferLength > d.DataTransferLength)
            s.DataTransferLength = d.DataTransferLength;
        if (d.DataIn == SCSI_IOCTL_DATA_IN && s.DataTransferLength) {
            uint32_t avail = got > x->data_at ? got - x->data_at : 0;
            memcpy(d.DataBuffer, x->buf + x->data_at,
                   s.DataTransferLength < avail ? s.DataTransferLength : avail);
        }
        d.DataTransferLength = s.DataTransferLength;
        memcpy(x->out, &d, sizeof(d));
        if (d.SenseInfoLength)
            memcpy((uint8_t *)x->out + d.SenseInfoOffset, x->buf + sense_at, d.SenseInfoLength);
        returned = d.SenseInfoLength ? d.SenseInfoOffset + d.SenseInfoLength : sizeof(d);
    }
    storstack_io_callback *callback = x->callback;
    void *user = x->context;
    if (atomic_fetch_sub(&x->refs, 1) == 1)
        free(x);
    callback(user, st, NT_ERROR(st) ? 0 : returned);
}

static storstack_status_t remote_ioctl_sptd_async(storstack_handle_t *handle, const void *in,
                                                  uint32_t in_length, void *out,
                                                  uint32_t out_length,
                                                  storstack_io_callback *callback, void *context)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    SCSI_PASS_THROUGH_DIRECT d;
    SCSI_PASS_THROUGH s;
    uint32_t sense_at = sizeof(SCSI_PASS_THROUGH), data_at, total, send_length;
    struct remote_sptd *x;
    storstack_status_t st;

    if (in_length < sizeof(d) || out_length < sizeof(d))
        return STATUS_INVALID_PARAMETER;
    memcpy(&d, in, sizeof(d));
    if (d.DataTransferLength && !d.DataBuffer)
        return STATUS_INVALID_PARAMETER;
    if (d.SenseInfoLength && ((uint64_t)d.SenseInfoOffset + d.SenseInfoLength > out_length))
        return STATUS_INVALID_PARAMETER;
    data_at = (sense_at + d.SenseInfoLength + 7u) & ~7u;
    if (d.DataTransferLength > WIRE_MAX_PAYLOAD - data_at)
        return STATUS_INVALID_PARAMETER;
    total = data_at + d.DataTransferLength;
    send_length = data_at;
    if (d.DataIn != SCSI_IOCTL_DATA_IN && d.DataTransferLength)
        send_length = total;
    x = calloc(1, sizeof(*x) + (size_t)total + send_length);
    if (!x)
        return STATUS_INSUFFICIENT_RESOURCES;
    x->d = d;
    x->out = out;
    x->out_length = out_length;
    x->data_at = data_at;
    x->total = total;
    x->callback = callback;
    x->context = context;

    memset(&s, 0, sizeof(s));
    s.Length = sizeof(s);
    s.PathId = d.PathId;
    s.TargetId = d.TargetId;
    s.Lun = d.Lun;
    s.CdbLength = d.CdbLength;
    s.SenseInfoLength = d.SenseInfoLength;
    s.DataIn = d.DataIn;
    s.DataTransferLength = d.DataTransferLength;
    s.TimeOutValue = d.TimeOutValue;
    s.DataBufferOffset = data_at;
    s.SenseInfoOffset = sense_at;
    memcpy(s.Cdb, d.Cdb, sizeof(s.Cdb));
    uint8_t *request = x->buf + total;
    memcpy(request, &s, sizeof(s));
    if (d.DataIn != SCSI_IOCTL_DATA_IN && d.DataTransferLength)
        memcpy(request + data_at, d.DataBuffer, d.DataTransferLength);
    struct remote_pending t = {
        .buf = x->buf, .cap = total, .callback = remote_sptd_done, .context = x, .user = context};
    struct wire_request req = {.op = WIRE_OP_IOCTL,
                               .handle = h->id,
                               .arg0 = IOCTL_SCSI_PASS_THROUGH,
                               .arg1 = total,
                               .payload_length = send_length};
    atomic_init(&x->refs, 2);
    st = remote_submit(remote_of(handle->stack), &req, request, &t);
    if (st != STATUS_PENDING || atomic_fetch_sub(&x->refs, 1) == 1)
        free(x); /* not issued (no callback), or the callback has let go already */
    return st;
}

static storstack_status_t remote_ioctl_async(storstack_handle_t *handle, uint32_t code,
                                             const void *in, uint32_t in_length, void *out,
                                             uint32_t out_length, storstack_io_callback *callback,
                                             void *context)
{
    struct remote_handle *h = (struct remote_handle *)handle;

    if (code == IOCTL_SCSI_PASS_THROUGH_DIRECT)
        return remote_ioctl_sptd_async(handle, in, in_length, out, out_length, callback, context);
    if (in_length > WIRE_MAX_PAYLOAD || out_length > WIRE_MAX_PAYLOAD)
        return STATUS_INVALID_PARAMETER;
    /* The input is sent before any response can land in the output, even when they overlap. */
    struct remote_pending t = {
        .buf = out, .cap = out_length, .callback = callback, .context = context, .user = context};
    struct wire_request req = {.op = WIRE_OP_IOCTL,
                               .handle = h->id,
                               .arg0 = code,
                               .arg1 = out_length,
                               .payload_length = in_length};
    return remote_submit(remote_of(handle->stack), &req, in, &t);
}

static storstack_status_t remote_ioctl(storstack_handle_t *handle, uint32_t code, const void *in,
                                       uint32_t in_length, void *out, uint32_t out_length,
                                       uint32_t *returned)
{
    *returned = 0;
    if (code == IOCTL_SCSI_PASS_THROUGH_DIRECT) {
        struct storstack_wait w;
        uint64_t info = 0;
        storstack_status_t st;
        if (pthread_equal(pthread_self(), remote_of(handle->stack)->receiver))
            return STATUS_INVALID_DEVICE_STATE;
        storstack_wait_init(&w);
        st = remote_ioctl_sptd_async(handle, in, in_length, out, out_length, storstack_wait_done,
                                     &w);
        st = storstack_wait_finish(&w, st, &info);
        *returned = (uint32_t)info;
        return st;
    }
    return remote_ioctl_raw(handle, code, in, in_length, out, out_length, returned);
}

/*
 * CancelIoEx over the socket: one CANCEL per outstanding request of the handle with the caller's
 * context, naming it by tag. The server cancels a READ/WRITE it still has in flight; an IOCTL
 * runs to completion on the server's connection thread before the CANCEL is read, so it counts 0.
 */
static storstack_status_t remote_cancel(storstack_handle_t *handle, int all, const void *context,
                                        uint32_t *cancelled)
{
    struct remote_handle *h = (struct remote_handle *)handle;
    struct remote_stack *rs = remote_of(handle->stack);
    uint64_t tags[64];
    uint32_t n, total = 0;
    uint64_t after = 0; /* tags are collected in batches, each past the last one sent */
    storstack_status_t st = STATUS_SUCCESS;

    *cancelled = 0;
    for (;;) {
        n = 0;
        pthread_mutex_lock(&rs->lock);
        for (uint32_t c = 0; c < rs->nchunks && n < 64; c++)
            for (uint32_t i = 0; i < REMOTE_CHUNK && n < 64; i++) {
                struct remote_pending *p = &rs->chunks[c][i];
                uint64_t tag = (uint64_t)p->generation << 32 | p->index;
                if (p->in_use && p->handle_id == h->id && p->index >= after &&
                    (p->op == WIRE_OP_READ || p->op == WIRE_OP_WRITE || p->op == WIRE_OP_IOCTL) &&
                    (all || p->user == context))
                    tags[n++] = tag;
            }
        pthread_mutex_unlock(&rs->lock);
        for (uint32_t i = 0; i < n; i++) {
            struct remote_pending t = {0};
            struct wire_request req = {.op = WIRE_OP_CANCEL, .handle = h->id, .offset = tags[i]};
            uint64_t info = 0;
            st = remote_call(rs, &req, NULL, &t, &info);
            if (!NT_SUCCESS(st))
                return st;
            total += (uint32_t)info;
            after = (uint32_t)tags[i] + 1;
        }
        if (n < 64)
            break;
    }
    *cancelled = total;
    return st;
}

static storstack_status_t remote_get_tree(storstack_t *stack, char **json)
{
    struct remote_pending t = {.json_out = json};
    struct wire_request req = {.op = WIRE_OP_GET_TREE};
    storstack_status_t st = remote_call(remote_of(stack), &req, NULL, &t, NULL);
    if (!NT_SUCCESS(st)) {
        free(*json);
        *json = NULL;
    } else if (!*json) {
        *json = calloc(1, 1);
        if (!*json)
            st = STATUS_INSUFFICIENT_RESOURCES;
    }
    return st;
}

static storstack_status_t remote_reg_get_string(storstack_t *stack, const char *key,
                                                const char *name, char *out, size_t out_length)
{
    size_t klen = strlen(key), nlen = strlen(name);
    uint32_t cap = out_length > WIRE_MAX_REG_OUT ? WIRE_MAX_REG_OUT : (uint32_t)out_length;
    struct remote_pending t = {.buf = out, .cap = cap - 1};
    struct wire_request req = {.op = WIRE_OP_REG_GET_STRING,
                               .arg0 = (uint32_t)klen,
                               .arg1 = cap,
                               .payload_length = (uint32_t)(klen + nlen)};
    uint64_t info = 0;
    char *payload;
    storstack_status_t st;

    if (!klen || klen > WIRE_MAX_NAME || nlen > WIRE_MAX_NAME)
        return STATUS_OBJECT_NAME_INVALID;
    payload = malloc(klen + nlen + 1);
    if (!payload)
        return STATUS_INSUFFICIENT_RESOURCES;
    memcpy(payload, key, klen);
    memcpy(payload + klen, name, nlen);
    st = remote_call(remote_of(stack), &req, payload, &t, &info);
    free(payload);
    if (NT_SUCCESS(st))
        out[info < cap ? info : cap - 1] = 0;
    return st;
}

static void remote_destroy(storstack_t *stack)
{
    struct remote_stack *rs = remote_of(stack);

    shutdown(rs->fd, SHUT_RDWR);
    pthread_join(rs->receiver, NULL); /* fails whatever is outstanding */
    pthread_mutex_lock(&rs->lock);
    rs->stopping = 1;
    pthread_cond_signal(&rs->send_cond);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->sender, NULL);
    close(rs->fd);
    while (rs->handles) {
        struct remote_handle *h = rs->handles;
        rs->handles = h->next;
        free(h);
    }
    for (uint32_t c = 0; c < rs->nchunks; c++)
        free(rs->chunks[c]);
    free(rs->chunks);
    pthread_mutex_destroy(&rs->send_lock);
    pthread_mutex_destroy(&rs->lock);
    pthread_cond_destroy(&rs->send_cond);
    free(rs);
}

static const struct storstack_ops remote_ops = {
    .destroy = remote_destroy,
    .open = remote_open,
    .close = remote_close,
    .rw_async = remote_rw_async,
    .ioctl_async = remote_ioctl_async,
    .cancel = remote_cancel,
    .flush = remote_flush,
    .ioctl = remote_ioctl,
    .get_tree = remote_get_tree,
    .reg_get_string = remote_reg_get_string,
};

static int remote_hello(int fd, char *err, size_t errlen)
{
    struct wire_request req = {
        .magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_HELLO, .arg0 = WIRE_VERSION};
    uint8_t out[WIRE_REQUEST_HEADER_SIZE], in[WIRE_RESPONSE_HEADER_SIZE];
    struct iovec iov = {out, sizeof(out)};
    struct wire_response rsp;
    const char *reason = "";
    int rc;

    wire_encode_request(&req, out);
    rc = wire_send_all(fd, &iov, 1);
    if (!rc)
        rc = wire_recv_all(fd, in, sizeof(in));
    if (rc) {
        snprintf(err, errlen, "no HELLO from the server: %s", strerror(-rc));
        return rc;
    }
    if (wire_decode_response(in, &rsp, &reason) || rsp.payload_length) {
        snprintf(err, errlen, "not a storstack server: %s", reason);
        return -EPROTO;
    }
    if (rsp.status != STATUS_SUCCESS) {
        snprintf(err, errlen, "server speaks protocol version %u, we speak %u",
                 (unsigned)rsp.information, WIRE_VERSION);
        return -EPROTO;
    }
    return 0;
}

storstack_t *storstack_connect(const char *socket_path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct remote_stack *rs;
    char dummy[1];
    int fd;

    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!socket_path || !*socket_path || strlen(socket_path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "bad socket path");
        return NULL;
    }
    memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        snprintf(err, errlen, "cannot connect to %s: %s", socket_path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (remote_hello(fd, err, errlen)) {
        close(fd);
        return NULL;
    }
    rs = calloc(1, sizeof(*rs));
    if (!rs) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    rs->base.ops = &remote_ops;
    rs->base.remote = 1;
    rs->fd = fd;
    rs->reader = (struct wire_reader){.fd = fd, .capacity = REMOTE_RBUF, .buf = rs->rbuf};
    pthread_mutex_init(&rs->send_lock, NULL);
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->send_cond, NULL);
    if (pthread_create(&rs->sender, NULL, remote_sender, rs)) {
        snprintf(err, errlen, "cannot start the sender thread");
        close(fd);
        free(rs);
        return NULL;
    }
    if (pthread_create(&rs->receiver, NULL, remote_receiver, rs)) {
        snprintf(err, errlen, "cannot start the receiver thread");
        pthread_mutex_lock(&rs->lock);
        rs->stopping = 1;
        pthread_cond_signal(&rs->send_cond);
        pthread_mutex_unlock(&rs->lock);
        pthread_join(rs->sender, NULL);
        close(fd);
        free(rs);
        return NULL;
    }
    return &rs->base;
}
