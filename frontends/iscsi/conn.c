/*
 * An iSCSI connection (RFC 7143 6, 7): its thread reads one PDU at a time, checks its header with
 * iscsi_pdu_parse before reading anything after it, runs the login (login.c) and then the full
 * feature phase: NOP-Out/NOP-In, Text (SendTargets), Logout, and SCSI Command, Data-Out and Task
 * Management handed to session.c. One thread per connection because storstack_ioctl is
 * synchronous: a thread blocks in a pass-through while the others go on, with no event loop to
 * hand completions back to. Error recovery level 0 (7.1.5): a protocol error the target cannot
 * resynchronise from (an oversize data segment, Data-Out out of order) closes the connection,
 * after a Reject when one helps the initiator.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads and drops n bytes (an AHS this target does not use). */
static int iscsi_skip(int fd, uint64_t n)
{
    uint8_t scratch[1024];

    while (n) {
        size_t k = n < sizeof(scratch) ? (size_t)n : sizeof(scratch);
        if (iscsi_recv_all(fd, scratch, k))
            return -EPIPE;
        n -= k;
    }
    return 0;
}

int iscsi_conn_send(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                    uint32_t len)
{
    static const uint8_t zeros[4];
    struct iovec iov[3] = {{bhs, ISCSI_BHS_LEN}, {(void *)data, len}, {(void *)zeros, 0}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
    size_t left = ISCSI_BHS_LEN + len + iscsi_pad4(len);

    iov[2].iov_len = iscsi_pad4(len);
    while (left) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE;
        left -= (size_t)n;
        /* A short send: move the iovecs past what went. */
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

uint32_t iscsi_conn_max_cmdsn(const struct iscsi_conn *c)
{
    /* 4.2.2.1: the window never offers more commands than there are free task slots, so a
     * write that must wait for its data always finds one. */
    return c->exp_cmdsn + iscsi_session_free_tasks(c) - 1;
}

/* Sends a response that carries status: StatSN is this PDU's and advances (4.2.2.2). */
int iscsi_conn_send_status(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                           uint32_t len)
{
    iscsi_bhs_set_sn(bhs, c->statsn++, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
    return iscsi_conn_send(c, bhs, data, len);
}

int iscsi_conn_reject(struct iscsi_conn *c, const uint8_t *bad_bhs, uint8_t reason)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    /* 11.17.1: StatSN advances after a Reject; the data is the rejected header. */
    iscsi_build_reject(bhs, reason);
    return iscsi_conn_send_status(c, bhs, bad_bhs, ISCSI_BHS_LEN);
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
        if (iscsi_skip(c->fd, p.ahs_len) ||
            iscsi_recv_all(c->fd, c->rx, p.data_len + iscsi_pad4(p.data_len)))
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
            break;
        if (r == ISCSI_LOGIN_FAIL)
            break;
        if (r == ISCSI_LOGIN_DONE) {
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
    uint32_t len = p->data_len;

    /* 11.18: ITT 0xffffffff asks for no answer (it answers our own NOP-In, never sent). */
    if (p->itt == ISCSI_RESERVED_TAG)
        return 0;
    if (len > c->params.max_xmit_dsl)
        len = c->params.max_xmit_dsl;
    iscsi_bhs_init(bhs, ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL, len, p->itt);
    memcpy(bhs + ISCSI_OFF_LUN, p->bhs + ISCSI_OFF_LUN, 8);
    iscsi_put32(bhs + ISCSI_OFF_TTT, ISCSI_RESERVED_TAG);
    return iscsi_conn_send_status(c, bhs, data, len); /* 11.19: echoes the ping data */
}

static int iscsi_conn_text(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data)
{
    struct iscsi_text_out out = {.buf = c->txt, .cap = sizeof(c->txt)};
    uint8_t bhs[ISCSI_BHS_LEN];
    bool sent = true;

    if (iscsi_negotiate(&c->params, &c->target->login_cfg, false, data, p->data_len, &out, &sent) !=
        ISCSI_LOGIN_OK)
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    if (out.len > c->params.max_xmit_dsl)
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
        if (!iscsi_conn_take_cmdsn(c, p))
            return 0;
        if (c->params.discovery) /* 4.3: a discovery session carries no SCSI commands */
            return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
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

static void iscsi_conn_run(struct iscsi_conn *c)
{
    uint8_t bhs[ISCSI_BHS_LEN];
    struct iscsi_pdu p;
    int rc;

    c->rx = malloc(ISCSI_OUR_MRDSL + 4);
    if (!c->rx || iscsi_conn_login(c))
        return;
    for (;;) {
        if (iscsi_recv_all(c->fd, bhs, sizeof(bhs)))
            return;
        rc = iscsi_pdu_parse(bhs, c->params.max_recv_dsl, &p);
        if (rc == -EMSGSIZE) {
            /* 13.12: over our MaxRecvDataSegmentLength; skipping it would read an
             * initiator-chosen 16 MiB, so reject and close instead. */
            iscsi_conn_reject(c, bhs, ISCSI_REJECT_PROTOCOL_ERROR);
            return;
        }
        if (iscsi_skip(c->fd, p.ahs_len) ||
            iscsi_recv_all(c->fd, c->rx, p.data_len + iscsi_pad4(p.data_len)))
            return;
        if (rc == -EOPNOTSUPP)
            rc = iscsi_conn_reject(c, bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
        else
            rc = iscsi_conn_dispatch(c, &p);
        if (rc)
            return;
    }
}

void *iscsi_conn_main(void *arg)
{
    struct iscsi_conn *c = arg;

    iscsi_conn_run(c);
    iscsi_session_close(c);
    free(c->rx);
    c->rx = NULL;
    shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_lock(&c->target->lock);
    c->done = true;
    pthread_mutex_unlock(&c->target->lock);
    return NULL;
}
