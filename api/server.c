/*
 * Management socket server (api/server.h). One thread accepts; each connection gets its own
 * thread that reads and decodes requests and runs them on the stack. A thread per connection
 * rather than an epoll loop because the management socket has few clients and some of its calls
 * (open, close, flush, the tree) are synchronous in the user API: in a shared loop one slow
 * call would stall every client, while here it only delays its own connection. Queue depth
 * within a connection still comes for free: READ, WRITE and IOCTL are issued with the async
 * calls (storstack_read_async, storstack_write_async, storstack_ioctl_async), the
 * connection thread goes straight back to reading, and each completion (in whatever thread the
 * stack completes it) sends its response with one non-blocking sendmsg (header + data,
 * writev-style) when the socket is free, or queues it for the connection's sender thread, so a
 * client that stops reading stalls only itself, never the stack's completion threads. Syscalls
 * are batched: requests are read through a 64 KiB buffer, and responses of requests that
 * completed inline (a local stack often completes inside the submit call) are corked and sent
 * together, many frames per sendmsg, before the connection thread next blocks. Request slots
 * and their data buffers come from a per-connection pool (SERVER_SLOTS deep, buffers up to
 * SERVER_KEEP_BUFFER kept for reuse), so the read/write path allocates nothing in steady state;
 * when the pool or the in-flight byte budget is exhausted the connection thread waits, which
 * back-pressures the client through the socket. A frame that fails decoding closes that connection
 * only, with its reason logged on stderr. Handles opened by a connection are closed when it goes
 * away, after their I/O has drained.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <storstack/nt/ntstatus.h>

#include "api/server.h"
#include "api/wire.h"

#define SERVER_SLOTS        128
#define SERVER_KEEP_BUFFER  (1u << 20)
#define SERVER_BUDGET       (256u << 20) /* data bytes in flight per connection */
#define SERVER_SCRATCH_KEEP (4u << 20)
#define SERVER_RBUF         (64u << 10) /* requests are read in batches through this buffer */
#define SERVER_CORK_IOV     64          /* responses per sendmsg when flushing a batch */

struct server_conn;

/* One READ, WRITE or IOCTL in flight: its tag, its handle slot, its data buffer (reused; an
 * IOCTL's holds its input, then its output at payload_at). */
struct server_io {
    struct server_conn *conn;
    struct server_io *next_free; /* free list, or the send queue once completed */
    uint8_t hdr[WIRE_RESPONSE_HEADER_SIZE];
    uint32_t payload_length; /* of the response */
    uint32_t sent;           /* bytes of hdr + payload already on the socket */
    uint64_t tag;
    int active; /* issued and not yet released (lock), for CANCEL */
    uint32_t handle_index;
    uint32_t length;     /* of buf in use: the budget's count */
    uint32_t out_len;    /* IOCTL: the caller's output length */
    uint32_t payload_at; /* where the response's payload starts in buf */
    uint16_t op;
    int write;
    uint8_t *buf;
    size_t cap;
};

struct server_handle {
    storstack_handle_t *handle; /* NULL when the slot is free */
    uint32_t generation;
    uint32_t inflight;
};

struct server_conn {
    struct storstack_server *server;
    struct server_conn *next, *prev;
    int fd;
    uid_t peer_uid; /* SO_PEERCRED: who the opens of this connection are for */
    unsigned id;
    pthread_t thread;

    pthread_t sender;
    pthread_mutex_t lock; /* slots, handle in-flight counts, budget, the send queue */
    pthread_cond_t cond;  /* broadcast on every change of the above */
    int send_busy;        /* someone is writing a frame to the socket */
    /* responses of requests that completed inline on the connection thread, sent together
     * before it next blocks (connection thread only) */
    struct server_io *cork_head, *cork_tail;
    struct wire_reader reader;
    uint8_t rbuf[SERVER_RBUF];
    int sender_stop;
    struct server_io *send_head, *send_tail; /* completed, waiting for the socket */
    struct server_io slots[SERVER_SLOTS];
    struct server_io *free_slots;
    unsigned inflight;
    uint64_t inflight_bytes;

    struct server_handle *handles;
    uint32_t nhandles;

    uint8_t *scratch;
    size_t scratch_cap;
};

struct storstack_server {
    storstack_t *stack;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd;
    pthread_t accept_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct server_conn *conns;
    unsigned nconns;
    unsigned next_id;
    int stopping;
};

/* Under lock: gives a slot back (its response is on the socket, or the socket is dead). */
static void server_release(struct server_conn *conn, struct server_io *io)
{
    io->active = 0;
    conn->handles[io->handle_index].inflight--;
    conn->inflight--;
    conn->inflight_bytes -= io->length;
    if (io->cap > SERVER_KEEP_BUFFER) {
        free(io->buf);
        io->buf = NULL;
        io->cap = 0;
    }
    io->next_free = conn->free_slots;
    conn->free_slots = io;
    pthread_cond_broadcast(&conn->cond);
}

/*
 * Writes what remains of io's response. Returns 1 when it is all out (or the socket failed, which
 * shuts it down: the connection is over and the response moot), 0 when a non-blocking attempt
 * would block (io->sent records how far it got).
 */
static int server_send_io(struct server_conn *conn, struct server_io *io, int flags)
{
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (io->sent < sizeof(io->hdr)) {
            iov[n++] = (struct iovec){io->hdr + io->sent, sizeof(io->hdr) - io->sent};
            if (io->payload_length)
                iov[n++] = (struct iovec){io->buf + io->payload_at, io->payload_length};
        } else if (io->sent < sizeof(io->hdr) + io->payload_length) {
            uint32_t off = io->payload_at + io->sent - (uint32_t)sizeof(io->hdr);
            iov[n++] = (struct iovec){io->buf + off, io->payload_length - (off - io->payload_at)};
        } else {
            return 1;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t r = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | flags);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r < 0) {
            shutdown(conn->fd, SHUT_RDWR);
            return 1;
        }
        io->sent += (uint32_t)r;
    }
}

/*
 * Completion of an async READ/WRITE, in whichever thread the stack completed it (a DPC worker,
 * or the connection thread inside the submit call). It must not block on this client's socket,
 * or a client that stops reading would stall the stack for everyone: it tries one non-blocking
 * send when the socket is free, and otherwise queues the response for the connection's sender.
 */
static void server_io_done(void *context, storstack_status_t status, uint64_t information)
{
    struct server_io *io = context;
    struct server_conn *conn = io->conn;
    struct wire_response rsp = {
        .magic = WIRE_MAGIC_RESPONSE, .status = status, .tag = io->tag, .information = information};

    if (io->op == WIRE_OP_IOCTL) {
        /* warnings (BUFFER_OVERFLOW) still carry their output, as DeviceIoControl fills it */
        if (information > io->out_len)
            information = io->out_len;
        rsp.information = information;
        if (!NT_ERROR(status))
            rsp.payload_length = (uint32_t)information;
    } else if (!io->write && !NT_ERROR(status)) {
        rsp.payload_length = information < io->length ? (uint32_t)information : io->length;
    }
    wire_encode_response(&rsp, io->hdr);
    io->payload_length = rsp.payload_length;
    io->sent = 0;
    io->next_free = NULL;

    if (pthread_equal(pthread_self(), conn->thread)) {
        /* inline in the submit call: batch it with the other responses of this read batch */
        if (conn->cork_tail)
            conn->cork_tail->next_free = io;
        else
            conn->cork_head = io;
        conn->cork_tail = io;
        return;
    }
    pthread_mutex_lock(&conn->lock);
    if (!conn->send_busy && !conn->send_head) {
        conn->send_busy = 1;
        pthread_mutex_unlock(&conn->lock);
        int done = server_send_io(conn, io, MSG_DONTWAIT);
        pthread_mutex_lock(&conn->lock);
        conn->send_busy = 0;
        if (done) {
            server_release(conn, io);
        } else { /* partly sent: it goes first, the stream must stay whole */
            io->next_free = conn->send_head;
            conn->send_head = io;
            if (!conn->send_tail)
                conn->send_tail = io;
        }
    } else {
        if (conn->send_tail)
            conn->send_tail->next_free = io;
        else
            conn->send_head = io;
        conn->send_tail = io;
    }
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
}

/*
 * Sends the corked responses (connection thread, before it blocks): as many frames per
 * non-blocking sendmsg as fit, the rest (a partly sent frame first) handed to the sender thread.
 */
static void server_flush_cork(struct server_conn *conn)
{
    struct server_io *head = conn->cork_head, *tail = conn->cork_tail;

    if (!head)
        return;
    conn->cork_head = conn->cork_tail = NULL;
    pthread_mutex_lock(&conn->lock);
    if (conn->send_busy || conn->send_head) {
        if (conn->send_tail)
            conn->send_tail->next_free = head;
        else
            conn->send_head = head;
        conn->send_tail = tail;
        pthread_cond_broadcast(&conn->cond);
        pthread_mutex_unlock(&conn->lock);
        return;
    }
    conn->send_busy = 1;
    pthread_mutex_unlock(&conn->lock);

    struct server_io *done = NULL, **done_tail = &done;
    int blocked = 0;
    while (head && !blocked) {
        struct iovec iov[2 * SERVER_CORK_IOV];
        int n = 0;
        for (struct server_io *io = head; io && n + 2 <= 2 * SERVER_CORK_IOV; io = io->next_free) {
            iov[n++] = (struct iovec){io->hdr, sizeof(io->hdr)};
            if (io->payload_length)
                iov[n++] = (struct iovec){io->buf + io->payload_at, io->payload_length};
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t r = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = 1;
            break;
        }
        if (r < 0) {
            shutdown(conn->fd, SHUT_RDWR);
            r = SSIZE_MAX; /* the connection is over: every response is moot */
        }
        /* retire whole frames; a partial one records its progress */
        while (head && r > 0) {
            size_t frame = sizeof(head->hdr) + head->payload_length;
            if ((size_t)r >= frame) {
                r -= (ssize_t)frame;
                struct server_io *io = head;
                head = io->next_free;
                io->next_free = NULL;
                *done_tail = io;
                done_tail = &io->next_free;
            } else {
                head->sent = (uint32_t)r;
                blocked = 1;
                break;
            }
        }
    }

    pthread_mutex_lock(&conn->lock);
    conn->send_busy = 0;
    while (done) {
        struct server_io *io = done;
        done = io->next_free;
        server_release(conn, io);
    }
    if (head) { /* the sender finishes these, in order, the partial one first */
        for (tail = head; tail->next_free; tail = tail->next_free)
            ;
        conn->send_head = head;
        conn->send_tail = tail;
    }
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
}

/*
 * Reads len bytes of the request stream (connection thread): from the batch buffer, refilled
 * with one recv of up to SERVER_RBUF bytes; large payloads go straight to their destination.
 * Corked responses are flushed before any recv that may block.
 */
static void server_before_block(void *context)
{
    server_flush_cork(context);
}

static int server_read(struct server_conn *conn, void *dst, size_t len)
{
    return wire_reader_read(&conn->reader, dst, len, server_before_block, conn);
}

/* The connection's sender: writes queued responses, blocking, in order. */
static void *server_sender_thread(void *arg)
{
    struct server_conn *conn = arg;
    pthread_mutex_lock(&conn->lock);
    for (;;) {
        while (!conn->sender_stop && (conn->send_busy || !conn->send_head))
            pthread_cond_wait(&conn->cond, &conn->lock);
        if (conn->sender_stop)
            break;
        struct server_io *io = conn->send_head;
        conn->send_head = io->next_free;
        if (!conn->send_head)
            conn->send_tail = NULL;
        conn->send_busy = 1;
        pthread_mutex_unlock(&conn->lock);
        server_send_io(conn, io, 0);
        pthread_mutex_lock(&conn->lock);
        conn->send_busy = 0;
        server_release(conn, io);
    }
    pthread_mutex_unlock(&conn->lock);
    return NULL;
}

/*
 * Sends a response of a synchronous request (connection thread; blocking is fine here, it only
 * delays this client), after whatever completions are queued ahead of it.
 */
static void server_respond(struct server_conn *conn, uint64_t tag, storstack_status_t status,
                           uint64_t information, uint64_t handle, const void *payload,
                           uint32_t length)
{
    struct wire_response rsp = {.magic = WIRE_MAGIC_RESPONSE,
                                .status = status,
                                .tag = tag,
                                .information = information,
                                .handle = handle,
                                .payload_length = length};
    uint8_t hdr[WIRE_RESPONSE_HEADER_SIZE];
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, length}};

    wire_encode_response(&rsp, hdr);
    pthread_mutex_lock(&conn->lock);
    while (conn->send_busy || conn->send_head)
        pthread_cond_wait(&conn->cond, &conn->lock);
    conn->send_busy = 1;
    pthread_mutex_unlock(&conn->lock);
    if (wire_send_all(conn->fd, iov, length ? 2 : 1))
        shutdown(conn->fd, SHUT_RDWR);
    pthread_mutex_lock(&conn->lock);
    conn->send_busy = 0;
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
}

static storstack_handle_t *server_lookup(struct server_conn *conn, uint64_t id, uint32_t *index)
{
    uint32_t i = (uint32_t)id;
    if (i == 0 || i > conn->nhandles)
        return NULL;
    if (!conn->handles[i - 1].handle || conn->handles[i - 1].generation != (uint32_t)(id >> 32))
        return NULL;
    *index = i - 1;
    return conn->handles[i - 1].handle;
}

static int server_add_handle(struct server_conn *conn, storstack_handle_t *h, uint64_t *id)
{
    uint32_t i;
    for (i = 0; i < conn->nhandles; i++)
        if (!conn->handles[i].handle)
            break;
    if (i == conn->nhandles) {
        uint32_t n = conn->nhandles ? conn->nhandles * 2 : 8;
        pthread_mutex_lock(&conn->lock);
        struct server_handle *t = realloc(conn->handles, n * sizeof(*t));
        if (t) {
            memset(t + conn->nhandles, 0, (n - conn->nhandles) * sizeof(*t));
            conn->handles = t;
            conn->nhandles = n;
        }
        pthread_mutex_unlock(&conn->lock);
        if (!t)
            return -ENOMEM;
    }
    conn->handles[i].handle = h;
    conn->handles[i].generation++;
    *id = (uint64_t)conn->handles[i].generation << 32 | (i + 1);
    return 0;
}

/* Waits until no I/O is in flight on handle slot index, then closes it (connection thread). */
static storstack_status_t server_close_handle(struct server_conn *conn, uint32_t index)
{
    storstack_handle_t *h;
    server_flush_cork(conn);
    pthread_mutex_lock(&conn->lock);
    while (conn->handles[index].inflight)
        pthread_cond_wait(&conn->cond, &conn->lock);
    h = conn->handles[index].handle;
    conn->handles[index].handle = NULL;
    pthread_mutex_unlock(&conn->lock);
    return storstack_close(h);
}

static int server_scratch(struct server_conn *conn, size_t need)
{
    if (need > conn->scratch_cap) {
        uint8_t *p = realloc(conn->scratch, need);
        if (!p)
            return -ENOMEM;
        conn->scratch = p;
        conn->scratch_cap = need;
    }
    return 0;
}

/* Takes a slot with a buffer of at least length bytes, waiting for completions if needed. */
static struct server_io *server_get_slot(struct server_conn *conn, uint32_t length)
{
    struct server_io *io;
    pthread_mutex_lock(&conn->lock);
    while (!conn->free_slots || (conn->inflight && conn->inflight_bytes + length > SERVER_BUDGET)) {
        if (conn->cork_head) { /* corked slots come back only once sent */
            pthread_mutex_unlock(&conn->lock);
            server_flush_cork(conn);
            pthread_mutex_lock(&conn->lock);
            continue;
        }
        pthread_cond_wait(&conn->cond, &conn->lock);
    }
    io = conn->free_slots;
    conn->free_slots = io->next_free;
    pthread_mutex_unlock(&conn->lock);
    if (io->cap < length) {
        size_t cap = length < 4096 ? 4096 : length;
        uint8_t *p = realloc(io->buf, cap);
        if (!p) {
            pthread_mutex_lock(&conn->lock);
            io->next_free = conn->free_slots;
            conn->free_slots = io;
            pthread_mutex_unlock(&conn->lock);
            return NULL;
        }
        io->buf = p;
        io->cap = cap;
    }
    return io;
}

static void server_put_slot(struct server_conn *conn, struct server_io *io)
{
    pthread_mutex_lock(&conn->lock);
    io->next_free = conn->free_slots;
    conn->free_slots = io;
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
}

/* READ and WRITE: the payload of a WRITE is received straight into the slot's buffer. */
static int server_do_rw(struct server_conn *conn, const struct wire_request *req,
                        const char **reason)
{
    int write = req->op == WIRE_OP_WRITE;
    uint32_t length = write ? req->payload_length : req->arg0;
    struct server_io *io = server_get_slot(conn, length);
    storstack_handle_t *h;
    uint32_t index;
    storstack_status_t st;
    int rc;

    if (!io) {
        *reason = "out of memory for a data buffer";
        return -ENOMEM;
    }
    if (write && length) {
        rc = server_read(conn, io->buf, length);
        if (rc) {
            server_put_slot(conn, io);
            *reason = "connection lost inside a WRITE payload";
            return rc;
        }
    }
    h = server_lookup(conn, req->handle, &index);
    if (!h) {
        server_put_slot(conn, io);
        server_respond(conn, req->tag, STATUS_INVALID_HANDLE, 0, 0, NULL, 0);
        return 0;
    }
    io->conn = conn;
    io->tag = req->tag;
    io->handle_index = index;
    io->length = length;
    io->write = write;
    io->op = req->op;
    io->payload_at = 0;
    pthread_mutex_lock(&conn->lock);
    io->active = 1;
    conn->handles[index].inflight++;
    conn->inflight++;
    conn->inflight_bytes += length;
    pthread_mutex_unlock(&conn->lock);
    if (write)
        st = storstack_write_async(h, io->buf, length, req->offset, server_io_done, io);
    else
        st = storstack_read_async(h, io->buf, length, req->offset, server_io_done, io);
    if (st != STATUS_PENDING)
        server_io_done(io, st, 0); /* not issued: no callback will come */
    return 0;
}

/*
 * IOCTL, issued with storstack_ioctl_async like READ/WRITE: the slot's buffer holds the input
 * (the payload, received straight into it), then the output area (zeroed: only what the driver
 * reports in Information goes back, never stale bytes of an earlier request).
 */
static int server_do_ioctl(struct server_conn *conn, const struct wire_request *req,
                           const char **reason)
{
    uint32_t out_at = (req->payload_length + 15u) & ~15u;
    struct server_io *io;
    storstack_handle_t *h;
    uint32_t index;
    storstack_status_t st;
    int rc;

    /* both within WIRE_MAX_PAYLOAD (64 MiB, checked by wire_decode_request): no overflow */
    io = server_get_slot(conn, out_at + req->arg1);
    if (!io) {
        *reason = "out of memory for an IOCTL buffer";
        return -ENOMEM;
    }
    if (req->payload_length) {
        rc = server_read(conn, io->buf, req->payload_length);
        if (rc) {
            server_put_slot(conn, io);
            *reason = "connection lost inside an IOCTL payload";
            return rc;
        }
    }
    h = server_lookup(conn, req->handle, &index);
    if (!h) {
        server_put_slot(conn, io);
        server_respond(conn, req->tag, STATUS_INVALID_HANDLE, 0, 0, NULL, 0);
        return 0;
    }
    if (req->arg1) /* a slot of length 0 may have no buffer at all */
        memset(io->buf + out_at, 0, req->arg1);
    io->conn = conn;
    io->tag = req->tag;
    io->handle_index = index;
    io->length = out_at + req->arg1;
    io->out_len = req->arg1;
    io->payload_at = out_at;
    io->op = WIRE_OP_IOCTL;
    io->write = 0;
    pthread_mutex_lock(&conn->lock);
    io->active = 1;
    conn->handles[index].inflight++;
    conn->inflight++;
    conn->inflight_bytes += io->length;
    pthread_mutex_unlock(&conn->lock);
    st = storstack_ioctl_async(h, req->arg0, req->payload_length ? io->buf : NULL,
                               req->payload_length, req->arg1 ? io->buf + out_at : NULL, req->arg1,
                               server_io_done, io);
    if (st != STATUS_PENDING)
        server_io_done(io, st, 0); /* not issued: no callback will come */
    return 0;
}

/* OPEN: for the client's own uid, or (root clients only) for the identity the request names. */
static storstack_status_t server_open(struct server_conn *conn, const struct wire_request *req,
                                      storstack_handle_t **h)
{
    char *p = (char *)conn->scratch;
    char principal[STORSTACK_PRINCIPAL_MAX];
    char transport_id[STORSTACK_TRANSPORT_ID_MAX];
    struct storstack_identity who = {.principal = principal};

    if (req->arg1) { /* lengths checked by wire_decode_request */
        uint32_t plen = (uint32_t)req->handle;
        uint32_t tlen = req->payload_length - req->arg1 - plen;
        if (conn->peer_uid != 0)
            return STATUS_ACCESS_DENIED;
        if (plen >= sizeof(principal) || tlen >= sizeof(transport_id))
            return STATUS_INVALID_PARAMETER;
        memcpy(principal, p + req->arg1, plen);
        principal[plen] = 0;
        memcpy(transport_id, p + req->arg1 + plen, tlen);
        transport_id[tlen] = 0;
        who.transport_id = transport_id;
        who.nexus = req->offset;
        p[req->arg1] = 0; /* the name ends where the identity starts */
    } else {
        snprintf(principal, sizeof(principal), "uid:%u", (unsigned)conn->peer_uid);
    }
    return storstack_open_ex(conn->server->stack, p, req->arg0, &who, h);
}

/* The synchronous requests: payload (if any) is in conn->scratch, NUL-terminated. */
static void server_do_sync(struct server_conn *conn, const struct wire_request *req)
{
    storstack_t *stack = conn->server->stack;
    storstack_handle_t *h = NULL;
    storstack_status_t st;
    uint32_t index = 0;
    uint64_t id = 0;

    server_flush_cork(conn); /* a synchronous request may take a while */
    if (req->op == WIRE_OP_CLOSE || req->op == WIRE_OP_FLUSH || req->op == WIRE_OP_CANCEL) {
        h = server_lookup(conn, req->handle, &index);
        if (!h) {
            server_respond(conn, req->tag, STATUS_INVALID_HANDLE, 0, 0, NULL, 0);
            return;
        }
    }
    switch (req->op) {
    case WIRE_OP_OPEN:
        st = server_open(conn, req, &h);
        if (NT_SUCCESS(st) && server_add_handle(conn, h, &id)) {
            storstack_close(h);
            st = STATUS_INSUFFICIENT_RESOURCES;
        }
        server_respond(conn, req->tag, st, 0, id, NULL, 0);
        break;
    case WIRE_OP_CLOSE:
        st = server_close_handle(conn, index);
        server_respond(conn, req->tag, st, 0, 0, NULL, 0);
        break;
    case WIRE_OP_FLUSH:
        st = storstack_flush(h);
        server_respond(conn, req->tag, st, 0, 0, NULL, 0);
        break;
    case WIRE_OP_CANCEL: {
        /* READ, WRITE and IOCTL in flight hold slots. Slots are reissued only by this thread,
         * so the one found cannot become another request before storstack_cancel looks. */
        struct server_io *io = NULL;
        uint32_t n = 0;
        pthread_mutex_lock(&conn->lock);
        for (unsigned i = 0; i < SERVER_SLOTS && !io; i++)
            if (conn->slots[i].active && conn->slots[i].tag == req->offset &&
                conn->slots[i].handle_index == index)
                io = &conn->slots[i];
        pthread_mutex_unlock(&conn->lock);
        st = io ? storstack_cancel(h, io, &n) : STATUS_SUCCESS;
        server_respond(conn, req->tag, st, n, 0, NULL, 0);
        break;
    }
    case WIRE_OP_GET_TREE: {
        char *json = NULL;
        size_t len = 0;
        st = storstack_get_tree(stack, &json);
        if (NT_SUCCESS(st) && json) {
            len = strlen(json);
            if (len > WIRE_MAX_PAYLOAD) {
                st = STATUS_INSUFFICIENT_RESOURCES;
                len = 0;
            }
        }
        server_respond(conn, req->tag, st, len, 0, json, (uint32_t)len);
        free(json);
        break;
    }
    case WIRE_OP_REG_GET_STRING: {
        /* scratch: key (arg0 bytes) NUL name NUL, then the out buffer */
        size_t name_len = req->payload_length - req->arg0;
        size_t out_at = (size_t)req->payload_length + 2;
        size_t len = 0;
        if (server_scratch(conn, out_at + req->arg1)) {
            st = STATUS_INSUFFICIENT_RESOURCES;
        } else {
            char *key = (char *)conn->scratch;
            memmove(key + req->arg0 + 1, key + req->arg0, name_len + 1);
            key[req->arg0] = 0;
            char *out = (char *)conn->scratch + out_at;
            out[0] = 0;
            st = storstack_reg_get_string(stack, key, key + req->arg0 + 1, out, req->arg1);
            if (NT_SUCCESS(st))
                len = strnlen(out, req->arg1);
        }
        server_respond(conn, req->tag, st, len, 0, conn->scratch + out_at, (uint32_t)len);
        break;
    }
    default:
        break;
    }
}

static void server_log(struct server_conn *conn, const char *why, int rc)
{
    fprintf(stderr, "storstack: %s: connection %u closed: %s (%s)\n", conn->server->path, conn->id,
            why, strerror(rc < 0 ? -rc : rc));
}

static void server_conn_loop(struct server_conn *conn)
{
    uint8_t hdr[WIRE_REQUEST_HEADER_SIZE];
    struct wire_request req;
    const char *reason = NULL;
    int rc;

    rc = server_read(conn, hdr, sizeof(hdr));
    if (rc)
        return; /* went away before saying hello: nothing to log */
    rc = wire_decode_request(hdr, &req, &reason);
    if (!rc && req.op != WIRE_OP_HELLO) {
        reason = "first request is not HELLO";
        rc = -EPROTO;
    }
    if (rc) {
        server_log(conn, reason, rc);
        return;
    }
    if (req.arg0 != WIRE_VERSION) {
        server_respond(conn, req.tag, STATUS_NOT_SUPPORTED, WIRE_VERSION, 0, NULL, 0);
        server_log(conn, "unsupported protocol version", EPROTO);
        return;
    }
    server_respond(conn, req.tag, STATUS_SUCCESS, WIRE_VERSION, 0, NULL, 0);

    for (;;) {
        rc = server_read(conn, hdr, sizeof(hdr));
        if (rc)
            return; /* the client hung up (or stop shut the socket) */
        rc = wire_decode_request(hdr, &req, &reason);
        if (!rc && req.op == WIRE_OP_HELLO) {
            reason = "second HELLO";
            rc = -EPROTO;
        }
        if (rc)
            break;
        if (req.op == WIRE_OP_READ || req.op == WIRE_OP_WRITE || req.op == WIRE_OP_IOCTL) {
            rc = req.op == WIRE_OP_IOCTL ? server_do_ioctl(conn, &req, &reason)
                                         : server_do_rw(conn, &req, &reason);
            if (rc)
                break;
            continue;
        }
        /* room for the payload, a NUL, and REG_GET_STRING's second NUL */
        rc = server_scratch(conn, (size_t)req.payload_length + 2);
        if (rc) {
            reason = "out of memory for a request payload";
            break;
        }
        if (req.payload_length) {
            rc = server_read(conn, conn->scratch, req.payload_length);
            if (rc) {
                reason = "connection lost inside a payload";
                break;
            }
        }
        conn->scratch[req.payload_length] = 0;
        rc = wire_check_request_payload(&req, conn->scratch, &reason);
        if (rc)
            break;
        server_do_sync(conn, &req);
        if (conn->scratch_cap > SERVER_SCRATCH_KEEP) {
            free(conn->scratch);
            conn->scratch = NULL;
            conn->scratch_cap = 0;
        }
    }
    server_log(conn, reason ? reason : "receive failed", rc);
}

static void *server_conn_thread(void *arg)
{
    struct server_conn *conn = arg;
    struct storstack_server *server = conn->server;

    conn->thread = pthread_self();
    server_conn_loop(conn);
    shutdown(conn->fd, SHUT_RDWR);
    server_flush_cork(conn); /* fails fast now; gives the slots back */

    /* drain I/O in flight (the sender fails fast on the shut socket), stop the sender, then
     * close what the client left open */
    pthread_mutex_lock(&conn->lock);
    while (conn->inflight)
        pthread_cond_wait(&conn->cond, &conn->lock);
    conn->sender_stop = 1;
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
    pthread_join(conn->sender, NULL);
    for (uint32_t i = 0; i < conn->nhandles; i++)
        if (conn->handles[i].handle)
            server_close_handle(conn, i);

    pthread_mutex_lock(&server->lock);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        server->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    server->nconns--;
    pthread_cond_broadcast(&server->cond);
    pthread_mutex_unlock(&server->lock);

    close(conn->fd);
    for (unsigned i = 0; i < SERVER_SLOTS; i++)
        free(conn->slots[i].buf);
    free(conn->handles);
    free(conn->scratch);
    pthread_mutex_destroy(&conn->lock);
    pthread_cond_destroy(&conn->cond);
    free(conn);
    return NULL;
}

static void server_add_conn(struct storstack_server *server, int fd)
{
    struct server_conn *conn = calloc(1, sizeof(*conn));
    pthread_attr_t attr;

    if (!conn) {
        close(fd);
        return;
    }
    conn->server = server;
    conn->fd = fd;
    {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        /* Without credentials the client is nobody: it gets no identity of root's. */
        conn->peer_uid =
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.uid : (uid_t)-1;
    }
    conn->reader = (struct wire_reader){.fd = fd, .capacity = SERVER_RBUF, .buf = conn->rbuf};
    pthread_mutex_init(&conn->lock, NULL);
    pthread_cond_init(&conn->cond, NULL);
    for (int i = SERVER_SLOTS - 1; i >= 0; i--) {
        conn->slots[i].next_free = conn->free_slots;
        conn->free_slots = &conn->slots[i];
    }
    if (pthread_create(&conn->sender, NULL, server_sender_thread, conn)) {
        close(fd);
        pthread_mutex_destroy(&conn->lock);
        pthread_cond_destroy(&conn->cond);
        free(conn);
        return;
    }

    pthread_mutex_lock(&server->lock);
    conn->id = ++server->next_id;
    conn->next = server->conns;
    if (server->conns)
        server->conns->prev = conn;
    server->conns = conn;
    server->nconns++;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&conn->thread, &attr, server_conn_thread, conn)) {
        server->conns = conn->next;
        if (conn->next)
            conn->next->prev = NULL;
        server->nconns--;
        pthread_mutex_unlock(&server->lock);
        pthread_mutex_lock(&conn->lock);
        conn->sender_stop = 1;
        pthread_cond_broadcast(&conn->cond);
        pthread_mutex_unlock(&conn->lock);
        pthread_join(conn->sender, NULL);
        close(fd);
        pthread_mutex_destroy(&conn->lock);
        pthread_cond_destroy(&conn->cond);
        free(conn);
    } else {
        pthread_mutex_unlock(&server->lock);
    }
    pthread_attr_destroy(&attr);
}

static void *server_accept_thread(void *arg)
{
    struct storstack_server *server = arg;
    for (;;) {
        int fd = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            pthread_mutex_lock(&server->lock);
            int stopping = server->stopping;
            pthread_mutex_unlock(&server->lock);
            if (stopping)
                break;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                usleep(10000);
            continue;
        }
        server_add_conn(server, fd);
    }
    return NULL;
}

/* mkdir -p of path's parent, new components 0700. */
static int server_make_parent(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(dir, 0700) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0700) && errno != EEXIST)
        return -errno;
    return 0;
}

static int server_listen(struct storstack_server *server, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    memcpy(sa.sun_path, server->path, strlen(server->path) + 1);
    rc = server_make_parent(server->path);
    if (rc) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", server->path, strerror(-rc));
        return rc;
    }
    if (lstat(server->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", server->path);
            return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto sock_fail;
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0) {
            snprintf(err, errlen, "a storstack server is already listening on %s", server->path);
            return -EADDRINUSE;
        }
        unlink(server->path); /* stale: its server is gone */
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sock_fail;
    /* Nobody can connect between bind and listen, so tightening the mode with chmod before
     * listen leaves no window (and touches no process-wide umask). */
    fchmod(fd, 0600);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(server->path, 0600) ||
        listen(fd, 64)) {
        rc = -errno;
        snprintf(err, errlen, "cannot listen on %s: %s", server->path, strerror(errno));
        close(fd);
        unlink(server->path);
        return rc;
    }
    server->listen_fd = fd;
    return 0;

sock_fail:
    rc = -errno;
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return rc;
}

int storstack_server_start(storstack_t *stack, const char *socket_path,
                           struct storstack_server **out, char *err, size_t errlen)
{
    struct storstack_server *server;
    char dummy[1];
    int rc;

    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    *out = NULL;
    if (!stack || !socket_path || !*socket_path) {
        snprintf(err, errlen, "no stack or socket path");
        return -EINVAL;
    }
    if (strlen(socket_path) >= sizeof(server->path)) {
        snprintf(err, errlen, "socket path too long (max %zu bytes): %s", sizeof(server->path) - 1,
                 socket_path);
        return -ENAMETOOLONG;
    }
    server = calloc(1, sizeof(*server));
    if (!server) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    server->stack = stack;
    memcpy(server->path, socket_path, strlen(socket_path) + 1);
    pthread_mutex_init(&server->lock, NULL);
    pthread_cond_init(&server->cond, NULL);
    rc = server_listen(server, err, errlen);
    if (rc == 0 && pthread_create(&server->accept_thread, NULL, server_accept_thread, server)) {
        rc = -EAGAIN;
        snprintf(err, errlen, "cannot start the accept thread");
        close(server->listen_fd);
        unlink(server->path);
    }
    if (rc) {
        pthread_mutex_destroy(&server->lock);
        pthread_cond_destroy(&server->cond);
        free(server);
        return rc;
    }
    *out = server;
    return 0;
}

void storstack_server_stop(struct storstack_server *server)
{
    if (!server)
        return;
    pthread_mutex_lock(&server->lock);
    server->stopping = 1;
    pthread_mutex_unlock(&server->lock);
    shutdown(server->listen_fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(server->accept_thread, NULL);
    close(server->listen_fd);
    unlink(server->path);

    pthread_mutex_lock(&server->lock);
    for (struct server_conn *c = server->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (server->nconns)
        pthread_cond_wait(&server->cond, &server->lock);
    pthread_mutex_unlock(&server->lock);
    pthread_mutex_destroy(&server->lock);
    pthread_cond_destroy(&server->cond);
    free(server);
}
