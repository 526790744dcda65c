/*
 * An iSCSI connection (RFC 7143 6, 7): its thread runs the login (login.c), then an event loop
 * that polls the socket and an eventfd. A readable socket gives one recv of whatever has arrived
 * into rxbuf, and every whole PDU in it is taken in order (header checked by iscsi_pdu_parse and,
 * when negotiated, its CRC32C header digest before anything after it is trusted; then the data
 * digest), dispatched with its data segment where it lies to NOP-Out, Text (SendTargets),
 * Logout here or to session.c for SCSI Command, Data-Out and Task Management. Pass-throughs the
 * stack completes inline (within storstack_ioctl_async) are on local_head; those completed on
 * other threads on cq_head, with the eventfd signalled. Both are answered after the PDUs of the
 * turn, and every response of the turn is queued (tx) and goes out in one sendmsg before the loop
 * polls again: header, digests and padding from the queue, Data-In straight from the task's
 * buffer. Only this thread touches the socket, the queue and the tasks.
 *
 * Target pings (11.19): after NopInterval seconds without a PDU from the initiator the target
 * sends a NOP-In with a Target Transfer Tag; no NOP-Out answering it within NopTimeout drops the
 * connection. Error recovery level 0 (7.1.5): a protocol error the target cannot resynchronise
 * from (an oversize data segment, a header digest error, Data-Out for a burst that is not open)
 * closes the connection, after a Reject when one helps the initiator.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frontends/iscsi/iscsi_p.h"

static int iscsi_recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = recv(fd, p, len, MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE; /* closed, or ISCSI_RECV_TIMEOUT with a PDU half sent */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes every iovec whole (a short send moves on past what went); 0 or -EPIPE. */
static int iscsi_sendv(int fd, struct iovec *iov, size_t iovcnt)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iovcnt};
    size_t left = 0;

    for (size_t i = 0; i < iovcnt; i++)
        left += iov[i].iov_len;
    while (left) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE; /* closed, or no progress for ISCSI_RECV_TIMEOUT (SO_SNDTIMEO) */
        left -= (size_t)n;
        while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen) {
            msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int iscsi_conn_flush(struct iscsi_conn *c)
{
    int rc = c->niov ? iscsi_sendv(c->fd, c->txiov, c->niov) : 0;

    c->ntx = c->niov = 0;
    return rc;
}

/*
 * Queues one PDU: the header (and its digest) in the queue entry; a data segment of at most
 * ISCSI_TX_INLINE bytes is copied after it (one iovec for the whole PDU), a larger one is
 * referenced (ref: the caller keeps it until the flush) or, when it may not be, referenced and
 * flushed at once. The queue is flushed when full, so order is always the order of the calls.
 */
static int iscsi_conn_queue(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                            uint32_t len, bool ref)
{
    static const uint8_t zeros[4];
    uint32_t pad = iscsi_pad4(len), hlen = ISCSI_BHS_LEN, crc;
    bool copy = len <= ISCSI_TX_INLINE;

    /* A large segment the caller does not keep (NOP-In echo, Text): queued by pointer and sent
     * at once, after what was queued before it. */
    bool now = !copy && !ref;
    if (now && iscsi_conn_flush(c))
        return -EPIPE;
    if (c->ntx == ISCSI_TXQ && iscsi_conn_flush(c))
        return -EPIPE;
    struct iscsi_tx *e = &c->tx[c->ntx++];
    memcpy(e->head, bhs, ISCSI_BHS_LEN);
    if (c->params.header_digest) {
        crc = iscsi_crc32c(0, bhs, ISCSI_BHS_LEN);
        memcpy(e->head + hlen, &crc, 4);
        hlen += 4;
    }
    if (copy) {
        if (len) {
            memcpy(e->head + hlen, data, len);
            memset(e->head + hlen + len, 0, pad);
            if (c->params.data_digest) {
                crc = iscsi_crc32c(0, e->head + hlen, len + pad);
                memcpy(e->head + hlen + len + pad, &crc, 4);
                hlen += 4;
            }
            hlen += len + pad;
        }
        c->txiov[c->niov++] = (struct iovec){e->head, hlen};
        return 0;
    }
    uint32_t tlen = pad;
    memset(e->tail, 0, sizeof(e->tail));
    if (c->params.data_digest) {
        crc = iscsi_crc32c(iscsi_crc32c(0, data, len), zeros, pad);
        memcpy(e->tail + pad, &crc, 4);
        tlen += 4;
    }
    c->txiov[c->niov++] = (struct iovec){e->head, hlen};
    c->txiov[c->niov++] = (struct iovec){(void *)data, len};
    if (tlen)
        c->txiov[c->niov++] = (struct iovec){e->tail, tlen};
    return now ? iscsi_conn_flush(c) : 0;
}

int iscsi_conn_send(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                    uint32_t len)
{
    return iscsi_conn_queue(c, bhs, data, len, false);
}

int iscsi_conn_send_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                        uint32_t len)
{
    return iscsi_conn_queue(c, bhs, data, len, true);
}

uint32_t iscsi_conn_max_cmdsn(const struct iscsi_conn *c)
{
    /* 4.2.2.1: the window never offers more commands than there are free task slots, so every
     * command in it finds one. */
    return c->exp_cmdsn + (ISCSI_TASKS - c->used) - 1;
}

/* Sends a response that carries status: StatSN is this PDU's and advances (4.2.2.2). */
int iscsi_conn_send_status(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                           uint32_t len)
{
    iscsi_bhs_set_sn(bhs, c->statsn++, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
    return iscsi_conn_queue(c, bhs, data, len, false);
}

int iscsi_conn_send_status_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                               uint32_t len)
{
    iscsi_bhs_set_sn(bhs, c->statsn++, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
    return iscsi_conn_queue(c, bhs, data, len, true);
}

int iscsi_conn_reject(struct iscsi_conn *c, const uint8_t *bad_bhs, uint8_t reason)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    /* 11.17.1: StatSN advances after a Reject; the data is the rejected header. */
    iscsi_build_reject(bhs, reason);
    return iscsi_conn_send_status(c, bhs, bad_bhs, ISCSI_BHS_LEN);
}

/* Reads the rest of a Login Request whose header is in bhs: its AHS, and its data segment with
 * padding into c->rx (digests start after the login, 13.1). 0, or negative to close. */
static int iscsi_conn_read_login_tail(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    uint32_t dlen = p->data_len + iscsi_pad4(p->data_len);

    if (p->ahs_len > sizeof(c->ahs))
        return -EPROTO; /* TotalAHSLength is 8 bits of words: never over 1020 */
    if (p->ahs_len && iscsi_recv_all(c->fd, c->ahs, p->ahs_len))
        return -EPIPE;
    if (dlen && iscsi_recv_all(c->fd, c->rx, dlen))
        return -EPIPE;
    return 0;
}

/* Login phase: returns 0 in full feature phase, negative to close. */
static int iscsi_conn_login(struct iscsi_conn *c)
{
    struct iscsi_target *t = c->target;
    struct iscsi_login *l = malloc(sizeof(*l));
    uint8_t bhs[ISCSI_BHS_LEN], rsp[ISCSI_BHS_LEN];
    struct iscsi_text_out out = {.buf = c->txt, .cap = sizeof(c->txt)};
    struct iscsi_pdu p;
    uint16_t tsih;
    int rc = -EPROTO;

    if (!l)
        return -ENOMEM;
    pthread_mutex_lock(&t->lock);
    tsih = ++t->next_tsih ? t->next_tsih : ++t->next_tsih; /* 0 is not a TSIH */
    pthread_mutex_unlock(&t->lock);
    iscsi_login_init(l, &t->login_cfg, tsih);
    for (;;) {
        if (iscsi_recv_all(c->fd, bhs, sizeof(bhs)))
            break;
        /* 6.3: anything but a Login Request before full feature phase ends the connection. */
        if (iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p) || p.opcode != ISCSI_OP_LOGIN_REQ)
            break;
        if (iscsi_conn_read_login_tail(c, &p))
            break;
        if (!l->started) {
            /* The first response's StatSN is ours to choose; take the one expected. */
            c->statsn = iscsi_get32(bhs + ISCSI_OFF_EXPSTATSN);
            c->exp_cmdsn = iscsi_get32(bhs + ISCSI_OFF_CMDSN);
        }
        out.len = 0;
        out.overflow = false;
        enum iscsi_login_result r = iscsi_login_step(l, &p, c->rx, &out, rsp);
        if (r == ISCSI_LOGIN_DONE) {
            c->params = l->params;
            c->params.header_digest = c->params.data_digest = false; /* after this response */
            memcpy(c->isid, l->isid, 6); /* for the session's TransportID */
            if (!c->params.discovery && iscsi_session_open(c)) {
                /* 11.13.5: service unavailable */
                rsp[1] &= (uint8_t) ~(ISCSI_LOGIN_TRANSIT | 3);
                rsp[36] = 0x03;
                rsp[37] = 0x01;
                iscsi_put24(rsp + ISCSI_OFF_DSL, 0);
                iscsi_put16(rsp + 14, 0);
                out.len = 0;
                r = ISCSI_LOGIN_FAIL;
            }
        }
        if (iscsi_conn_send_status(c, rsp, c->txt, (uint32_t)out.len) || iscsi_conn_flush(c))
            break;
        if (r == ISCSI_LOGIN_FAIL)
            break;
        if (r == ISCSI_LOGIN_DONE) {
            /* 13.1: digests start with the first PDU after the last Login Response. */
            c->params.header_digest = l->params.header_digest;
            c->params.data_digest = l->params.data_digest;
            rc = 0;
            break;
        }
    }
    free(l);
    return rc;
}

/*
 * CmdSN ordering (4.2.2.1): an immediate PDU is taken as it comes; a non-immediate one must be
 * the next expected, and one outside the window is dropped without a word. One connection keeps
 * TCP's order, so anything else is a duplicate or a broken initiator.
 */
static bool iscsi_conn_take_cmdsn(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    uint32_t cmdsn = iscsi_get32(p->bhs + ISCSI_OFF_CMDSN);

    if (p->immediate)
        return true;
    if (cmdsn != c->exp_cmdsn)
        return false;
    c->exp_cmdsn++;
    return true;
}

static int iscsi_conn_nop(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data)
{
    uint8_t bhs[ISCSI_BHS_LEN];
    uint32_t len = p->data_len, ttt = iscsi_get32(p->bhs + ISCSI_OFF_TTT);

    /* 11.18: ITT 0xffffffff answers our ping (its TTT is the ping's) and asks for nothing. */
    if (p->itt == ISCSI_RESERVED_TAG) {
        if (c->ping_out && ttt == c->ping_ttt)
            c->ping_out = false;
        return 0;
    }
    if (ttt != ISCSI_RESERVED_TAG) /* 11.18.5: a ping of its own carries TTT 0xffffffff */
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_INVALID_PDU_FIELD);
    if (len > c->params.max_xmit_dsl)
        len = c->params.max_xmit_dsl;
    iscsi_bhs_init(bhs, ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL, len, p->itt);
    memcpy(bhs + ISCSI_OFF_LUN, p->bhs + ISCSI_OFF_LUN, 8);
    iscsi_put32(bhs + ISCSI_OFF_TTT, ISCSI_RESERVED_TAG);
    return iscsi_conn_send_status(c, bhs, data, len); /* 11.19: echoes the ping data */
}

/* A target ping (11.19): NOP-In with a TTT, ITT reserved, StatSN not advanced. */
static int iscsi_conn_ping(struct iscsi_conn *c)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    if (++c->ping_ttt == ISCSI_RESERVED_TAG)
        c->ping_ttt = 1;
    iscsi_bhs_init(bhs, ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL, 0, ISCSI_RESERVED_TAG);
    iscsi_put32(bhs + ISCSI_OFF_TTT, c->ping_ttt);
    iscsi_bhs_set_sn(bhs, c->statsn, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
    c->ping_out = true;
    clock_gettime(CLOCK_MONOTONIC, &c->ping_sent);
    return iscsi_conn_send(c, bhs, NULL, 0);
}

static int iscsi_conn_text(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data)
{
    struct iscsi_text_out out = {.buf = c->txt, .cap = sizeof(c->txt)};
    uint8_t bhs[ISCSI_BHS_LEN];
    bool sent = true;

    if ((p->bhs[1] & 0x40) || iscsi_get32(p->bhs + ISCSI_OFF_TTT) != ISCSI_RESERVED_TAG)
        /* a C bit or a continuation: texts this target answers fit in one PDU */
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
    if (iscsi_negotiate(&c->params, &c->target->login_cfg, false, data, p->data_len, &out, &sent,
                        NULL) != ISCSI_LOGIN_OK)
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    if (out.len > c->params.max_xmit_dsl || out.overflow)
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_OUT_OF_RESOURCES);
    /* 11.11: one final response, TTT reserved since nothing more follows. */
    iscsi_bhs_init(bhs, ISCSI_OP_TEXT_RSP, ISCSI_FLAG_FINAL, (uint32_t)out.len, p->itt);
    memcpy(bhs + ISCSI_OFF_LUN, p->bhs + ISCSI_OFF_LUN, 8);
    iscsi_put32(bhs + ISCSI_OFF_TTT, ISCSI_RESERVED_TAG);
    return iscsi_conn_send_status(c, bhs, c->txt, (uint32_t)out.len);
}

static int iscsi_conn_logout(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    uint8_t bhs[ISCSI_BHS_LEN], reason = p->bhs[1] & 0x7f;

    /* 11.15.1: close the session or this connection (the same here); recovery is ERL 2. */
    iscsi_bhs_init(bhs, ISCSI_OP_LOGOUT_RSP, ISCSI_FLAG_FINAL, 0, p->itt);
    bhs[2] = reason <= 1 ? 0 : 2;
    iscsi_conn_send_status(c, bhs, NULL, 0);
    return -ECONNRESET;
}

/* One PDU of the full feature phase, its data segment read into c->rx. */
static int iscsi_conn_dispatch(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    switch (p->opcode) {
    case ISCSI_OP_NOP_OUT:
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        return iscsi_conn_nop(c, p, c->rx);
    case ISCSI_OP_SCSI_CMD:
        if (c->params.discovery) /* 4.3: a discovery session carries no SCSI commands */
            return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
        if (!p->immediate &&
            !iscsi_sn_lt(iscsi_get32(p->bhs + ISCSI_OFF_CMDSN), iscsi_conn_max_cmdsn(c) + 1))
            return 0; /* beyond MaxCmdSN: dropped (4.2.2.1) */
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        return iscsi_session_scsi_cmd(c, p, c->rx);
    case ISCSI_OP_TMF_REQ:
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        if (c->params.discovery)
            return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
        return iscsi_session_tmf(c, p);
    case ISCSI_OP_TEXT_REQ:
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        return iscsi_conn_text(c, p, c->rx);
    case ISCSI_OP_DATA_OUT:
        if (c->params.discovery)
            return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
        return iscsi_session_data_out(c, p, c->rx);
    case ISCSI_OP_LOGOUT_REQ:
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        return iscsi_conn_logout(c, p);
    case ISCSI_OP_LOGIN_REQ: /* 6.3: no second login on a connection in full feature phase */
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    default: /* SNACK needs ERL > 0 */
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
    }
}

_Thread_local struct iscsi_conn *iscsi_conn_self;

/* Answers a list of completed tasks, queued newest first, in completion order. */
static int iscsi_conn_answer(struct iscsi_conn *c, struct iscsi_task *list)
{
    struct iscsi_task *rev = NULL;
    int rc = 0;

    while (list) {
        struct iscsi_task *t = list;
        list = t->next_done;
        t->next_done = rev;
        rev = t;
    }
    while (rev) {
        struct iscsi_task *t = rev;
        rev = t->next_done;
        int r = iscsi_session_complete(c, t);
        if (r && !rc)
            rc = r; /* the rest are still taken off: their slots must come back */
    }
    return rc;
}

/* Answers what completed on this thread (answering may issue the next piece of a split command,
 * which may complete inline again). */
static int iscsi_conn_local_completions(struct iscsi_conn *c)
{
    int rc = 0;

    while (c->local_head) {
        struct iscsi_task *list = c->local_head;
        c->local_head = NULL;
        int r = iscsi_conn_answer(c, list);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

/* Answers the pass-throughs other threads completed since the last look. */
static int iscsi_conn_completions(struct iscsi_conn *c)
{
    struct iscsi_task *list;
    uint64_t v;

    if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return -EIO;
    pthread_mutex_lock(&c->cq_lock);
    list = c->cq_head;
    c->cq_head = NULL;
    pthread_mutex_unlock(&c->cq_lock);
    return iscsi_conn_answer(c, list);
}

/*
 * One whole PDU at the front of rxbuf, of *used bytes: header digest checked, data digest checked,
 * then dispatched with its data segment where it lies in rxbuf. Returns 0 with *used 0 when the
 * PDU has not all arrived yet; negative to close.
 */
static int iscsi_conn_pdu(struct iscsi_conn *c, uint32_t *used)
{
    const uint8_t *bhs = c->rxbuf + c->rx_start;
    uint32_t avail = c->rx_end - c->rx_start, hd = c->params.header_digest ? 4 : 0, total;
    struct iscsi_pdu p;
    int rc;

    *used = 0;
    if (avail < ISCSI_BHS_LEN)
        return 0;
    rc = iscsi_pdu_parse(bhs, c->params.max_recv_dsl, &p);
    if (rc == -EMSGSIZE) {
        /* 13.12: over our MaxRecvDataSegmentLength; skipping it would read an
         * initiator-chosen 16 MiB, so reject and close instead. */
        iscsi_conn_reject(c, bhs, ISCSI_REJECT_PROTOCOL_ERROR);
        return -EMSGSIZE;
    }
    /* max_recv_dsl is at most ISCSI_OUR_MRDSL and TotalAHSLength at most 1020, so a whole PDU
     * always fits in ISCSI_RX_CAP. */
    uint32_t dlen = p.data_len + iscsi_pad4(p.data_len);
    uint32_t dd = c->params.data_digest && p.data_len ? 4 : 0;
    total = ISCSI_BHS_LEN + p.ahs_len + hd + dlen + dd;
    if (avail < total)
        return 0;
    *used = total;
    const uint8_t *data = bhs + ISCSI_BHS_LEN + p.ahs_len + hd;
    uint32_t got;
    if (hd) {
        memcpy(&got, bhs + ISCSI_BHS_LEN + p.ahs_len, 4);
        if (got != iscsi_crc32c(0, bhs, ISCSI_BHS_LEN + p.ahs_len))
            return -EPROTO; /* 7.8: a header digest error at ERL 0 closes the connection */
    }
    if (dd) {
        memcpy(&got, data + dlen, 4);
        if (got != iscsi_crc32c(0, data, dlen)) {
            /* 7.8: a data digest error; Reject 02h. The PDU's data is lost: a command or its
             * data cannot go on at ERL 0, anything else is simply dropped. */
            iscsi_conn_reject(c, bhs, 0x02);
            return p.opcode == ISCSI_OP_SCSI_CMD || p.opcode == ISCSI_OP_DATA_OUT ? -EBADMSG : 0;
        }
    }
    if (rc == -EOPNOTSUPP)
        return iscsi_conn_reject(c, bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
    c->rx = (uint8_t *)data;
    return iscsi_conn_dispatch(c, &p);
}

/*
 * The socket is readable: one recv of whatever has arrived (up to the room in rxbuf), then every
 * whole PDU in it, in order. A PDU cut by the end of the buffer is moved to its front first, so
 * it is moved at most once. 0, or negative to close.
 */
static int iscsi_conn_read(struct iscsi_conn *c)
{
    bool progress = false;
    int rc = 0;

    if (c->rx_start == c->rx_end) {
        c->rx_start = c->rx_end = 0;
    } else if (c->rx_start) {
        memmove(c->rxbuf, c->rxbuf + c->rx_start, c->rx_end - c->rx_start);
        c->rx_end -= c->rx_start;
        c->rx_start = 0;
    }
    if (c->rx_end == ISCSI_RX_CAP)
        return -EPROTO; /* cannot be: a whole PDU always fits (iscsi_conn_pdu) */
    ssize_t n = recv(c->fd, c->rxbuf + c->rx_end, ISCSI_RX_CAP - c->rx_end, MSG_DONTWAIT);
    if (n == 0)
        return -EPIPE;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -EPIPE;
    c->rx_end += (uint32_t)n;
    clock_gettime(CLOCK_MONOTONIC, &c->last_rx);
    while (!rc) {
        uint32_t used;
        rc = iscsi_conn_pdu(c, &used);
        if (!used)
            break;
        c->rx_start += used;
        progress = true;
    }
    /* A PDU begun must end within ISCSI_RECV_TIMEOUT s (the timer in the loop checks). */
    if (c->rx_start == c->rx_end)
        c->rx_partial = false;
    else if (progress || !c->rx_partial) {
        c->rx_partial = true;
        c->rx_partial_since = c->last_rx;
    }
    return rc;
}

static int64_t iscsi_ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* The poll timeout until the next ping event (or -1), sending or timing out pings due now. */
static int iscsi_conn_ping_timer(struct iscsi_conn *c, int *timeout)
{
    const struct iscsi_target_config *cfg = &c->target->cfg;
    int64_t wait;

    *timeout = -1;
    if (c->rx_partial) {
        /* A PDU begun must arrive whole within ISCSI_RECV_TIMEOUT s. */
        wait = (int64_t)ISCSI_RECV_TIMEOUT * 1000 - iscsi_ms_since(&c->rx_partial_since);
        if (wait <= 0)
            return -ETIMEDOUT;
        *timeout = (int)wait;
    }
    if (!cfg->nop_interval)
        return 0;
    if (c->ping_out) {
        wait = (int64_t)cfg->nop_timeout * 1000 - iscsi_ms_since(&c->ping_sent);
        if (wait <= 0)
            return -ETIMEDOUT; /* 11.19: no answer, the connection is gone */
    } else {
        wait = (int64_t)cfg->nop_interval * 1000 - iscsi_ms_since(&c->last_rx);
        if (wait <= 0) {
            if (iscsi_conn_ping(c))
                return -EPIPE;
            wait = (int64_t)cfg->nop_timeout * 1000;
        }
    }
    if (wait > 60000)
        wait = 60000;
    if (*timeout < 0 || wait < *timeout)
        *timeout = (int)wait;
    return 0;
}

static void iscsi_conn_run(struct iscsi_conn *c)
{
    struct timeval tv = {.tv_sec = ISCSI_RECV_TIMEOUT};
    int rc = 0;

    /* During login a PDU half received, and always a send that makes no progress (an initiator
     * that stops reading), for ISCSI_RECV_TIMEOUT seconds ends the connection: a hostile peer
     * holds only its own. In full feature phase the loop times a PDU half received. */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->rxbuf = malloc(ISCSI_RX_CAP);
    c->rx = c->rxbuf; /* the login reads each data segment here */
    if (!c->rxbuf || iscsi_conn_login(c))
        return;
    clock_gettime(CLOCK_MONOTONIC, &c->last_rx);
    while (!rc) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->efd, .events = POLLIN}};
        int timeout;
        if ((rc = iscsi_conn_ping_timer(c, &timeout)))
            break;
        /* Everything answered so far goes out in one gathered write before the loop waits (or
         * gives buffers back: queued Data-In points into them). */
        if ((rc = iscsi_conn_flush(c)))
            break;
        if (!c->used && !c->trimmed) {
            /* Idle for ISCSI_TRIM_MS: give the task buffers back. Not at once: a session at
             * full queue depth whose commands complete inline is idle between batches, and
             * would allocate its buffers again for every one. */
            int64_t left = ISCSI_TRIM_MS - iscsi_ms_since(&c->last_rx);
            if (left <= 0) {
                iscsi_session_trim(c);
                c->trimmed = true;
            } else if (timeout < 0 || left < timeout) {
                timeout = (int)left;
            }
        }
        int n = poll(pfd, 2, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        /* Every whole PDU that has arrived, then every completion: commands the stack completes
         * inline are answered together, and a TMF behind a batch of commands is read before
         * the data of those still down the stack goes out. */
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
            rc = iscsi_conn_read(c);
        int r = iscsi_conn_local_completions(c);
        if (!rc)
            rc = r;
        if (!rc && pfd[1].revents)
            rc = iscsi_conn_completions(c);
        r = iscsi_conn_local_completions(c);
        if (!rc)
            rc = r;
    }
    iscsi_conn_flush(c); /* a Logout Response or a Reject before the close */
}

void *iscsi_conn_main(void *arg)
{
    struct iscsi_conn *c = arg;

    iscsi_conn_self = c;
    iscsi_conn_run(c);
    shutdown(c->fd, SHUT_RDWR);
    iscsi_session_close(c); /* cancels and waits for what is in flight */
    iscsi_conn_self = NULL;
    free(c->rxbuf);
    c->rxbuf = c->rx = NULL;
    pthread_mutex_lock(&c->target->lock);
    c->done = true;
    pthread_mutex_unlock(&c->target->lock);
    return NULL;
}

void iscsi_conn_drop_target(struct iscsi_conn *c)
{
    struct iscsi_target *t = c->target;

    pthread_mutex_lock(&t->lock);
    for (struct iscsi_conn *o = t->conns; o; o = o->next)
        if (o != c && !o->done && o->tdef == c->tdef)
            shutdown(o->fd, SHUT_RDWR);
    pthread_mutex_unlock(&t->lock);
}
