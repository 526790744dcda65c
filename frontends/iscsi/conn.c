/*
 * An iSCSI connection (RFC 7143 6, 7) on one of the portal's event loops (one per CPU). The loop
 * waits in epoll on its connections' sockets (non-blocking) and completion eventfds. A readable
 * socket gives one recv of whatever has arrived into rxbuf, and every whole PDU in it is taken in
 * order (header checked by iscsi_pdu_parse and, when negotiated, its CRC32C header digest before
 * anything after it is trusted; then the data digest), dispatched with its data segment where it
 * lies: Login Requests to login.c until full feature phase, then NOP-Out, Text (SendTargets),
 * Logout here or to session.c for SCSI Command, Data-Out and Task Management. Pass-throughs the
 * stack completes inline (within storstack_ioctl_async) are on local_head; those completed on
 * other threads on cq_head, with the eventfd signalled. Both are answered after the PDUs of the
 * turn, and every response of the turn is queued (tx) and goes out in one sendmsg: header,
 * digests and padding from the queue, Data-In straight from the task's buffer.
 *
 * Back-pressure: what the socket does not take stays queued and the loop waits for the socket to
 * be writable; meanwhile it reads no PDU of that connection (a new command could reuse a task
 * whose Data-In is still queued), and answers completions only while the queue has room
 * (ISCSI_TXQ_HIGH; a long Data-In sequence goes on where it stopped). A stalled initiator holds
 * only its own session: the loop serves its other connections, and a queue that makes no
 * progress for ISCSI_RECV_TIMEOUT seconds ends the connection.
 *
 * Target pings (11.19): after NopInterval seconds without a PDU from the initiator the target
 * sends a NOP-In with a Target Transfer Tag; no NOP-Out answering it within NopTimeout drops the
 * connection. Error recovery level 0 (7.1.5): a protocol error the target cannot resynchronise
 * from (an oversize data segment, a header digest error, Data-Out for a burst that is not open)
 * closes the connection, after a Reject when one helps the initiator. Closing shuts the socket
 * down, cancels what is down the stack and waits, in the loop, for it to come back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frontends/iscsi/iscsi_p.h"

_Thread_local struct iscsi_loop *iscsi_loop_self;

static void iscsi_tx_release(struct iscsi_tx *e)
{
    free(e->own);
    e->own = NULL;
}

/* Drops what is queued (the connection is closing). */
static void iscsi_conn_drop_tx(struct iscsi_conn *c)
{
    for (unsigned i = 0; i < c->ntx; i++)
        iscsi_tx_release(&c->tx[i]);
    c->ntx = 0;
    c->tx_off = 0;
}

int iscsi_conn_flush(struct iscsi_conn *c)
{
    bool progress = false;

    while (c->ntx) {
        struct msghdr msg = {.msg_iov = c->txiov};
        size_t want = 0, skip = c->tx_off;

        /* The iovecs of every queued PDU, less what has gone of the first. */
        for (unsigned i = 0; i < c->ntx; i++) {
            struct iscsi_tx *e = &c->tx[i];
            struct iovec part[3] = {
                {e->head, e->hlen}, {(void *)e->data, e->dlen}, {e->tail, e->tlen}};
            for (unsigned k = 0; k < 3; k++) {
                if (skip >= part[k].iov_len) {
                    skip -= part[k].iov_len;
                    continue;
                }
                part[k].iov_base = (uint8_t *)part[k].iov_base + skip;
                part[k].iov_len -= skip;
                skip = 0;
                c->txiov[msg.msg_iovlen++] = part[k];
                want += part[k].iov_len;
            }
        }
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -EPIPE;
        progress = true;
        /* Take off the PDUs that went whole. */
        size_t left = (size_t)n + c->tx_off;
        unsigned done = 0;
        while (done < c->ntx) {
            struct iscsi_tx *e = &c->tx[done];
            size_t len = (size_t)e->hlen + e->dlen + e->tlen;
            if (left < len)
                break;
            left -= len;
            iscsi_tx_release(e);
            done++;
        }
        if (done) {
            memmove(c->tx, c->tx + done, (c->ntx - done) * sizeof(c->tx[0]));
            c->ntx -= done;
        }
        c->tx_off = (uint32_t)left;
        if ((size_t)n < want)
            break; /* the socket's buffer is full */
    }
    /* The queue is stuck since the last send that moved it (the loop's timer ends the
     * connection after ISCSI_RECV_TIMEOUT s of that). */
    if (!c->ntx)
        c->tx_stuck = false;
    else if (progress || !c->tx_stuck) {
        c->tx_stuck = true;
        clock_gettime(CLOCK_MONOTONIC, &c->tx_since);
    }
    return 0;
}

/*
 * Queues one PDU: the header (and its digest) in the queue entry; a data segment of at most
 * ISCSI_TX_INLINE bytes is copied after it, a larger one is referenced (ref: the caller keeps it
 * until the queue drains) or copied to the heap (a NOP-In echo, a Text or Login response: rare,
 * never a command's data). The queue keeps the order of the calls.
 */
static int iscsi_conn_queue(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                            uint32_t len, bool ref)
{
    static const uint8_t zeros[4];
    uint32_t pad = iscsi_pad4(len), hlen = ISCSI_BHS_LEN, crc;

    if (c->ntx == ISCSI_TXQ)
        return -ENOBUFS; /* cannot be: producers stop at ISCSI_TXQ_HIGH, one step past it fits */
    struct iscsi_tx *e = &c->tx[c->ntx];
    e->own = NULL;
    e->data = NULL;
    e->dlen = 0;
    e->tlen = 0;
    memcpy(e->head, bhs, ISCSI_BHS_LEN);
    if (c->params.header_digest) {
        crc = iscsi_crc32c(0, bhs, ISCSI_BHS_LEN);
        memcpy(e->head + hlen, &crc, 4);
        hlen += 4;
    }
    if (len <= ISCSI_TX_INLINE) {
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
        e->hlen = (uint16_t)hlen;
        c->ntx++;
        return 0;
    }
    if (!ref) {
        if (!(e->own = malloc(len)))
            return -ENOMEM;
        memcpy(e->own, data, len);
        data = e->own;
    }
    uint32_t tlen = pad;
    memset(e->tail, 0, sizeof(e->tail));
    if (c->params.data_digest) {
        crc = iscsi_crc32c(iscsi_crc32c(0, data, len), zeros, pad);
        memcpy(e->tail + pad, &crc, 4);
        tlen += 4;
    }
    e->hlen = (uint16_t)hlen;
    e->data = data;
    e->dlen = len;
    e->tlen = (uint8_t)tlen;
    c->ntx++;
    return 0;
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

/* One Login Request (6.3), its data segment in c->rx: the response is queued. 0 (still in login,
 * or now in full feature phase), or negative to close once the response has gone. */
static int iscsi_conn_login(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    struct iscsi_login *l = c->login;
    struct iscsi_text_out out = {.buf = c->txt, .cap = sizeof(c->txt)};
    uint8_t rsp[ISCSI_BHS_LEN];

    /* 6.3: anything but a Login Request before full feature phase ends the connection. */
    if (p->opcode != ISCSI_OP_LOGIN_REQ)
        return -EPROTO;
    if (!l->started) {
        /* The first response's StatSN is ours to choose; take the one expected. */
        c->statsn = iscsi_get32(p->bhs + ISCSI_OFF_EXPSTATSN);
        c->exp_cmdsn = iscsi_get32(p->bhs + ISCSI_OFF_CMDSN);
    }
    enum iscsi_login_result r = iscsi_login_step(l, p, c->rx, &out, rsp);
    if (r == ISCSI_LOGIN_DONE) {
        c->params = l->params;
        c->params.header_digest = c->params.data_digest = false; /* after this response */
        memcpy(c->isid, l->isid, 6);                             /* for the session's TransportID */
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
    if (iscsi_conn_send_status(c, rsp, c->txt, (uint32_t)out.len))
        return -EPIPE;
    if (r == ISCSI_LOGIN_FAIL)
        return -EACCES;
    if (r == ISCSI_LOGIN_DONE) {
        /* 13.1: digests start with the first PDU after the last Login Response. */
        c->params.header_digest = l->params.header_digest;
        c->params.data_digest = l->params.data_digest;
        free(c->login);
        c->login = NULL;
        c->phase = ISCSI_CONN_FULL;
    }
    return 0;
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

void iscsi_conn_local_done(struct iscsi_conn *c, struct iscsi_task *t)
{
    t->next_done = c->local_head;
    c->local_head = t;
    if (!c->ready) {
        c->ready = true;
        c->ready_next = c->loop->ready;
        c->loop->ready = c;
    }
}

/* Takes a list of completed tasks, queued newest first, in completion order: each goes on the
 * answer queue, unless nothing is to be said (aborted, or the next piece went down). */
static int iscsi_conn_take(struct iscsi_conn *c, struct iscsi_task *list)
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
        if (c->phase == ISCSI_CONN_CLOSING) {
            c->running--; /* cancelled or done: nobody waits for the answer */
            continue;
        }
        int r = iscsi_session_complete(c, t);
        if (r == 1) {
            t->next_done = NULL;
            if (c->answer_tail)
                c->answer_tail->next_done = t;
            else
                c->answer_head = t;
            c->answer_tail = t;
        } else if (r && !rc) {
            rc = r; /* the rest are still taken: their slots must come back */
        }
    }
    return rc;
}

/* What completed on this loop, and (efd) on other threads since the last look. */
static int iscsi_conn_collect(struct iscsi_conn *c, bool efd)
{
    int rc = 0;

    if (efd) {
        uint64_t v;
        if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            return -EIO;
        pthread_mutex_lock(&c->cq_lock);
        struct iscsi_task *list = c->cq_head;
        c->cq_head = NULL;
        pthread_mutex_unlock(&c->cq_lock);
        rc = iscsi_conn_take(c, list);
    }
    while (c->local_head) { /* taking may issue the next piece, which may complete inline */
        struct iscsi_task *list = c->local_head;
        c->local_head = NULL;
        int r = iscsi_conn_take(c, list);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

/* Answers completed tasks while the send queue has room. */
static int iscsi_conn_answer(struct iscsi_conn *c)
{
    while (c->answer_head && iscsi_conn_room(c)) {
        struct iscsi_task *t = c->answer_head;
        int rc = iscsi_session_answer(c, t);
        if (rc == ISCSI_AGAIN)
            return 0;
        c->answer_head = t->next_done;
        if (!c->answer_head)
            c->answer_tail = NULL;
        if (rc)
            return rc;
    }
    return 0;
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
    bool login = c->phase == ISCSI_CONN_LOGIN;
    struct iscsi_pdu p;
    int rc;

    *used = 0;
    if (avail < ISCSI_BHS_LEN)
        return 0;
    rc = iscsi_pdu_parse(bhs, login ? ISCSI_LOGIN_MAX_DSL : c->params.max_recv_dsl, &p);
    if (login && rc)
        return -EPROTO; /* 6.3: a malformed or oversize login ends the connection */
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
    c->rx = (uint8_t *)data;
    if (login)
        return iscsi_conn_login(c, &p);
    if (rc == -EOPNOTSUPP)
        return iscsi_conn_reject(c, bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
    return iscsi_conn_dispatch(c, &p);
}

/* Every whole PDU in rxbuf while the send queue has room; *took says whether any was. A PDU a
 * login answers is the last of its turn: the response goes before the next is read. */
static int iscsi_conn_parse(struct iscsi_conn *c, bool *took)
{
    int rc = 0;

    *took = false;
    while (!rc && iscsi_conn_room(c) && c->phase != ISCSI_CONN_CLOSING) {
        uint32_t used;
        bool login = c->phase == ISCSI_CONN_LOGIN;
        rc = iscsi_conn_pdu(c, &used);
        if (!used)
            break;
        c->rx_start += used;
        *took = true;
        if (login)
            break;
    }
    /* A PDU begun must end within ISCSI_RECV_TIMEOUT s (the loop's timer checks). */
    if (c->rx_start == c->rx_end)
        c->rx_partial = false;
    else if (*took || !c->rx_partial) {
        c->rx_partial = true;
        c->rx_partial_since = c->last_rx;
    }
    return rc;
}

/* One recv of whatever has arrived, after what is still in rxbuf (a PDU cut by the end of the last
 * recv is moved to the front first, so it is moved at most once). *got: bytes came. 0, or
 * negative to close. */
static int iscsi_conn_recv(struct iscsi_conn *c, bool *got)
{
    *got = false;
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
    *got = true;
    return 0;
}

/*
 * One turn of a connection: what completed is answered while the queue has room; PDUs are read
 * and taken only with the queue empty (a new command may reuse a task whose Data-In is queued);
 * then the queue goes out. readable: the socket has something (one recv a turn, so that the
 * loop's other connections get theirs).
 */
static int iscsi_conn_turn(struct iscsi_conn *c, bool readable, bool efd)
{
    int rc = iscsi_conn_collect(c, efd);

    while (!rc) {
        bool took, got;
        if ((rc = iscsi_conn_answer(c)))
            break;
        if (c->ntx && (rc = iscsi_conn_flush(c)))
            break;
        if (c->ntx)
            break; /* the socket is full: the rest when it drains */
        if (c->answer_head)
            continue; /* it drained: more answers */
        if ((rc = iscsi_conn_parse(c, &took)))
            break;
        if ((rc = iscsi_conn_collect(c, false)))
            break;
        if (took)
            continue;
        if (!readable || c->phase == ISCSI_CONN_CLOSING)
            break;
        readable = false;
        if ((rc = iscsi_conn_recv(c, &got)) || !got)
            break;
    }
    if (!rc && c->ntx)
        rc = iscsi_conn_flush(c);
    return rc;
}

static int64_t iscsi_ms_since(const struct timespec *t, const struct timespec *now)
{
    return (int64_t)(now->tv_sec - t->tv_sec) * 1000 + (now->tv_nsec - t->tv_nsec) / 1000000;
}

/* The connection's timers, at each tick of its loop: a PDU begun, a login, a send queue that do
 * not move on; pings; giving task buffers back when idle. 0, or negative to close. */
static int iscsi_conn_timers(struct iscsi_conn *c, const struct timespec *now)
{
    const struct iscsi_target_config *cfg = &c->target->cfg;

    if (c->phase == ISCSI_CONN_CLOSING)
        return 0;
    if (c->rx_partial && iscsi_ms_since(&c->rx_partial_since, now) >= ISCSI_RECV_TIMEOUT * 1000)
        return -ETIMEDOUT;
    if (c->ntx && c->tx_stuck && iscsi_ms_since(&c->tx_since, now) >= ISCSI_RECV_TIMEOUT * 1000)
        return -ETIMEDOUT; /* an initiator that stopped reading */
    if (c->phase == ISCSI_CONN_LOGIN) {
        /* A login request must come within ISCSI_RECV_TIMEOUT s of the last. */
        return iscsi_ms_since(&c->last_rx, now) >= ISCSI_RECV_TIMEOUT * 1000 ? -ETIMEDOUT : 0;
    }
    if (cfg->nop_interval) {
        if (c->ntx) {
            /* Stalled: the initiator is not reading, and nothing is read from it until it does,
             * so a ping could be neither seen nor answered; the send queue's timer above judges
             * the connection instead, and a ping outstanding waits from the end of the stall. */
            if (c->ping_out)
                c->ping_sent = *now;
        } else if (c->ping_out) {
            if (iscsi_ms_since(&c->ping_sent, now) >= (int64_t)cfg->nop_timeout * 1000)
                return -ETIMEDOUT; /* 11.19: no answer, the connection is gone */
        } else if (iscsi_ms_since(&c->last_rx, now) >= (int64_t)cfg->nop_interval * 1000) {
            int rc = iscsi_conn_ping(c);
            if (!rc)
                rc = iscsi_conn_flush(c);
            if (rc)
                return rc;
        }
    }
    if (!c->used && !c->trimmed && !c->ntx && iscsi_ms_since(&c->last_rx, now) >= ISCSI_TRIM_MS) {
        /* Idle for ISCSI_TRIM_MS: give the task buffers back. Not at once: a session at full
         * queue depth whose commands complete inline is idle between batches, and would
         * allocate its buffers again for every one. */
        iscsi_session_trim(c);
        c->trimmed = true;
    }
    return 0;
}

/* Waits on the socket for what the connection can use: to write while anything is queued (and
 * then not to read: back-pressure), else to read. */
static void iscsi_conn_interest(struct iscsi_conn *c)
{
    uint32_t want = c->ntx ? EPOLLOUT : EPOLLIN;

    if (c->phase == ISCSI_CONN_CLOSING || want == c->ev_mask)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = &c->ev_sock};
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->ev_mask = want;
}

/* Ends the connection's socket and session work: what is queued goes if the socket takes it at
 * once (a Logout Response, a Reject), the socket shuts down, and every command down the stack is
 * cancelled; the connection stays until they have all come back. */
static void iscsi_conn_close(struct iscsi_conn *c)
{
    if (c->phase == ISCSI_CONN_CLOSING)
        return;
    iscsi_conn_flush(c);
    iscsi_conn_drop_tx(c);
    shutdown(c->fd, SHUT_RDWR);
    epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->phase = ISCSI_CONN_CLOSING;
    c->answer_head = c->answer_tail = NULL; /* never answered: their slots go with the session */
    if (c->running)
        iscsi_session_cancel(c);
}

/* A closing connection with nothing down the stack any more: the session ends, and the
 * connection goes on the loop's ended list, let go of (for the portal to free) once the loop is
 * done with the events in hand. */
static void iscsi_conn_end(struct iscsi_conn *c)
{
    struct iscsi_loop *lp = c->loop;

    epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->efd, NULL);
    if (c->ready) {
        for (struct iscsi_conn **pp = &lp->ready; *pp; pp = &(*pp)->ready_next)
            if (*pp == c) {
                *pp = c->ready_next;
                break;
            }
        c->ready = false;
    }
    for (struct iscsi_conn **pp = &lp->conns; *pp; pp = &(*pp)->loop_next)
        if (*pp == c) {
            *pp = c->loop_next;
            break;
        }
    iscsi_session_close(c);
    free(c->login);
    c->login = NULL;
    free(c->rxbuf);
    c->rxbuf = c->rx = NULL;
    c->phase = ISCSI_CONN_ENDED;
    c->loop_next = lp->ended;
    lp->ended = c;
}

/* Lets go of the connections that ended: from here on the portal may free them. */
static void iscsi_loop_release(struct iscsi_loop *lp)
{
    if (!lp->ended)
        return;
    pthread_mutex_lock(&lp->target->lock);
    while (lp->ended) {
        struct iscsi_conn *c = lp->ended;
        lp->ended = c->loop_next;
        lp->nconns--;
        c->done = true;
    }
    pthread_mutex_unlock(&lp->target->lock);
}

/* After a turn or a timer: closes on an error, ends a closed connection once all is back, else
 * waits on the socket for what it can use. */
static void iscsi_conn_settle(struct iscsi_conn *c, int rc)
{
    if (c->phase == ISCSI_CONN_ENDED)
        return;
    if (rc)
        iscsi_conn_close(c);
    if (c->phase == ISCSI_CONN_CLOSING) {
        iscsi_conn_collect(c, true);
        if (!c->running)
            iscsi_conn_end(c);
        return;
    }
    iscsi_conn_interest(c);
}

/* A new connection on this loop: login state, receive buffer, and its descriptors in epoll. */
static void iscsi_loop_adopt(struct iscsi_loop *lp, struct iscsi_conn *c)
{
    struct iscsi_target *t = lp->target;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->ev_sock};
    struct epoll_event eev = {.events = EPOLLIN, .data.ptr = &c->ev_efd};
    uint16_t tsih;

    c->ev_sock = (struct iscsi_ev){.c = c};
    c->ev_efd = (struct iscsi_ev){.c = c, .efd = true};
    c->loop_next = lp->conns;
    lp->conns = c;
    clock_gettime(CLOCK_MONOTONIC, &c->last_rx);
    c->tx_since = c->last_rx;
    c->rxbuf = malloc(ISCSI_RX_CAP);
    c->login = malloc(sizeof(*c->login));
    c->rx = c->rxbuf;
    c->phase = ISCSI_CONN_LOGIN;
    c->ev_mask = EPOLLIN;
    if (!c->rxbuf || !c->login || epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->efd, &eev) ||
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
        c->phase = ISCSI_CONN_CLOSING;
        shutdown(c->fd, SHUT_RDWR);
        iscsi_conn_end(c); /* EPOLL_CTL_DEL of what was not added fails harmlessly */
        return;
    }
    pthread_mutex_lock(&t->lock);
    tsih = ++t->next_tsih ? t->next_tsih : ++t->next_tsih; /* 0 is not a TSIH */
    pthread_mutex_unlock(&t->lock);
    iscsi_login_init(c->login, &t->login_cfg, tsih);
}

/* The wake eventfd: new connections to adopt; true when the loop is to stop. */
static bool iscsi_loop_wake(struct iscsi_loop *lp)
{
    uint64_t v;
    bool stop;

    if (read(lp->wake, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing new */
    }
    pthread_mutex_lock(&lp->lock);
    struct iscsi_conn *in = lp->incoming;
    lp->incoming = NULL;
    stop = lp->stop;
    pthread_mutex_unlock(&lp->lock);
    while (in) {
        struct iscsi_conn *c = in;
        in = c->loop_next;
        iscsi_loop_adopt(lp, c);
    }
    return stop;
}

/* Connections with inline completions from another connection's turn (or a timer's cancel). */
static void iscsi_loop_ready(struct iscsi_loop *lp)
{
    while (lp->ready) {
        struct iscsi_conn *c = lp->ready;
        lp->ready = c->ready_next;
        c->ready = false;
        bool live = c->phase == ISCSI_CONN_LOGIN || c->phase == ISCSI_CONN_FULL;
        iscsi_conn_settle(c, live ? iscsi_conn_turn(c, false, false) : 0);
    }
}

static void iscsi_loop_tick(struct iscsi_loop *lp, const struct timespec *now)
{
    for (struct iscsi_conn *c = lp->conns, *next; c; c = next) {
        next = c->loop_next;
        iscsi_conn_settle(c, iscsi_conn_timers(c, now));
    }
    lp->next_tick = *now;
    lp->next_tick.tv_nsec += ISCSI_TICK_MS * 1000000L;
    if (lp->next_tick.tv_nsec >= 1000000000L) {
        lp->next_tick.tv_sec++;
        lp->next_tick.tv_nsec -= 1000000000L;
    }
}

void *iscsi_loop_main(void *arg)
{
    struct iscsi_loop *lp = arg;
    struct epoll_event evs[64];
    bool stopping = false;

    struct timespec now;

    iscsi_loop_self = lp;
    clock_gettime(CLOCK_MONOTONIC, &now);
    lp->next_tick = now;
    while (!stopping || lp->conns) {
        int timeout = -1;
        if (lp->conns) { /* until the next tick, from the end of the last turn */
            int64_t left = -iscsi_ms_since(&lp->next_tick, &now);
            timeout = left < 0 ? 0 : (int)left + 1;
        }
        int n = epoll_wait(lp->epfd, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            struct iscsi_ev *e = evs[i].data.ptr;
            if (!e) {
                stopping |= iscsi_loop_wake(lp);
                continue;
            }
            struct iscsi_conn *c = e->c;
            if (c->phase == ISCSI_CONN_CLOSING || c->phase == ISCSI_CONN_ENDED) {
                iscsi_conn_settle(c, 0); /* its commands coming back */
                continue;
            }
            uint32_t ev = evs[i].events;
            bool readable = !e->efd && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR));
            iscsi_conn_settle(c, iscsi_conn_turn(c, readable, e->efd));
        }
        iscsi_loop_ready(lp);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (lp->conns && iscsi_ms_since(&lp->next_tick, &now) >= 0)
            iscsi_loop_tick(lp, &now);
        if (stopping) /* every connection closes; the loop ends once all have come back */
            for (struct iscsi_conn *c = lp->conns, *next; c; c = next) {
                next = c->loop_next;
                if (c->phase != ISCSI_CONN_CLOSING) {
                    iscsi_conn_close(c);
                    iscsi_conn_settle(c, 0);
                }
            }
        iscsi_loop_release(lp);
    }
    iscsi_loop_self = NULL;
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
