/*
 * The iSCSI target in process (frontends/iscsi) on an ephemeral loopback port, against the
 * built-in default stack (a 1 GiB RAM disk as PhysicalDrive0), driven by a small initiator written
 * here: login, INQUIRY, a WRITE(10)/READ(10) round trip larger than FirstBurstLength (so R2Ts),
 * residuals, sense, task management, discovery, logout, malformed PDUs that must end in a
 * Reject or a closed connection without disturbing another session, and PDUs pipelined in one
 * send or arriving in pieces.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "frontends/iscsi/iscsi.h"
#include "frontends/iscsi/pdu.h"
#include <storstack/nt/ntstatus.h>
#include <storstack/wdm/io.h>

#define IQN        "iqn.2026-11.org.storstack:default"
#define INIT_MRDSL 8192

struct cli {
    int fd;
    uint32_t cmdsn, expstatsn, itt;
};

static storstack_t *stack;
static struct iscsi_target *target;
static uint16_t port;

static int cli_connect(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void cli_send(int fd, const uint8_t bhs[ISCSI_BHS_LEN], const void *data, uint32_t len)
{
    static const uint8_t zeros[4];
    assert_int_equal(send(fd, bhs, ISCSI_BHS_LEN, MSG_NOSIGNAL), ISCSI_BHS_LEN);
    if (len)
        assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    if (iscsi_pad4(len))
        send(fd, zeros, iscsi_pad4(len), MSG_NOSIGNAL);
}

static int recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One PDU: its data length, or -1 when the connection closed. */
static int cli_recv(struct cli *c, uint8_t bhs[ISCSI_BHS_LEN], void *data, uint32_t cap)
{
    uint8_t pad[4];
    if (recv_all(c->fd, bhs, ISCSI_BHS_LEN))
        return -1;
    uint32_t len = iscsi_get24(bhs + 5);
    assert_true(len <= cap);
    if (len && recv_all(c->fd, data, len))
        return -1;
    if (iscsi_pad4(len) && recv_all(c->fd, pad, iscsi_pad4(len)))
        return -1;
    uint8_t op = bhs[0] & 0x3f;
    /* StatSN advances on status-bearing PDUs */
    if (op == ISCSI_OP_SCSI_RSP || op == ISCSI_OP_NOP_IN || op == ISCSI_OP_TMF_RSP ||
        op == ISCSI_OP_TEXT_RSP || op == ISCSI_OP_LOGOUT_RSP || op == ISCSI_OP_LOGIN_RSP ||
        op == ISCSI_OP_REJECT || (op == ISCSI_OP_DATA_IN && (bhs[1] & ISCSI_DATA_IN_STATUS)))
        c->expstatsn = iscsi_get32(bhs + 24) + 1;
    return (int)len;
}

static bool cli_closed(struct cli *c)
{
    uint8_t b;
    return recv(c->fd, &b, 1, 0) == 0;
}

static void cli_hdr(struct cli *c, uint8_t bhs[ISCSI_BHS_LEN], uint8_t op, uint8_t flags,
                    uint32_t len)
{
    iscsi_bhs_init(bhs, op, flags, len, c->itt++);
    iscsi_put32(bhs + 24, c->cmdsn);
    iscsi_put32(bhs + 28, c->expstatsn);
}

/* Logs in with the given text in one PDU (operational stage to full feature); the status. */
static uint16_t cli_login_text(struct cli *c, const char *text, size_t len)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[8192];

    c->fd = cli_connect();
    c->cmdsn = 1;
    c->itt = 1;
    cli_hdr(c, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3,
            (uint32_t)len);
    bhs[8] = 0x80;
    bhs[13] = (uint8_t)c->fd;
    cli_send(c->fd, bhs, text, (uint32_t)len);
    assert_true(cli_recv(c, bhs, data, sizeof(data)) >= 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_LOGIN_RSP);
    return (uint16_t)iscsi_get16(bhs + 36);
}

static void cli_login(struct cli *c)
{
    static const char text[] = "InitiatorName=iqn.2026-11.org.storstack:test\0TargetName=" IQN
                               "\0SessionType=Normal\0HeaderDigest=None\0DataDigest=None\0"
                               "MaxRecvDataSegmentLength=8192\0FirstBurstLength=16384\0"
                               "MaxBurstLength=65536\0ImmediateData=Yes\0InitialR2T=No\0"
                               "ErrorRecoveryLevel=0\0MaxConnections=1\0";
    assert_int_equal(cli_login_text(c, text, sizeof(text) - 1), 0);
}

struct result;
static void cli_cmd(struct cli *c, const uint8_t *cdb, bool read, bool write, uint32_t edtl,
                    uint8_t *in, const uint8_t *out, struct result *r);

struct result {
    uint8_t status, response, flags;
    uint32_t residual, moved;
    uint8_t sense[64];
    uint32_t sense_len;
    unsigned r2ts, data_ins;
};

/* Runs one SCSI command: data-in into in (up to edtl), data-out from out (edtl bytes). */
static void cli_cmd(struct cli *c, const uint8_t *cdb, bool read, bool write, uint32_t edtl,
                    uint8_t *in, const uint8_t *out, struct result *r)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[INIT_MRDSL + 64];
    uint32_t imm = write ? (edtl < 8192 ? edtl : 8192) : 0, itt = c->itt, datasn = 0;
    uint32_t first = !write ? 0 : edtl < 16384 ? edtl : 16384;

    memset(r, 0, sizeof(*r));
    cli_hdr(c, bhs, ISCSI_OP_SCSI_CMD,
            (read ? ISCSI_CMD_READ : 0) | (write ? ISCSI_CMD_WRITE : 0) |
                (imm < first ? 0 : ISCSI_FLAG_FINAL) | 1,
            imm);
    iscsi_put32(bhs + 20, edtl);
    memcpy(bhs + 32, cdb, 16);
    c->cmdsn++;
    cli_send(c->fd, bhs, out, imm);
    if (imm < first) { /* unsolicited Data-Out up to FirstBurstLength (InitialR2T=No) */
        iscsi_bhs_init(bhs, ISCSI_OP_DATA_OUT, ISCSI_FLAG_FINAL, first - imm, itt);
        iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
        iscsi_put32(bhs + 40, imm);
        cli_send(c->fd, bhs, out + imm, first - imm);
    }
    for (;;) {
        int n = cli_recv(c, bhs, data, sizeof(data));
        assert_true(n >= 0);
        uint8_t op = bhs[0] & 0x3f;
        assert_int_equal(iscsi_get32(bhs + 16), itt);
        if (op == ISCSI_OP_R2T) {
            uint32_t off = iscsi_get32(bhs + 40), len = iscsi_get32(bhs + 44), sent = 0;
            uint32_t ttt = iscsi_get32(bhs + 20);
            assert_true(len <= 65536 && off + len <= edtl);
            r->r2ts++;
            for (uint32_t sn = 0; sent < len; sn++) {
                uint32_t k = len - sent < 8192 ? len - sent : 8192;
                iscsi_bhs_init(bhs, ISCSI_OP_DATA_OUT, sent + k == len ? ISCSI_FLAG_FINAL : 0, k,
                               itt);
                iscsi_put32(bhs + 20, ttt);
                iscsi_put32(bhs + 36, sn);
                iscsi_put32(bhs + 40, off + sent);
                cli_send(c->fd, bhs, out + off + sent, k);
                sent += k;
            }
        } else if (op == ISCSI_OP_DATA_IN) {
            uint32_t off = iscsi_get32(bhs + 40);
            assert_true((uint32_t)n <= INIT_MRDSL);
            assert_int_equal(iscsi_get32(bhs + 36), datasn++);
            assert_int_equal(off, r->moved);
            memcpy(in + off, data, (size_t)n);
            r->moved += (uint32_t)n;
            r->data_ins++;
            if (bhs[1] & ISCSI_DATA_IN_STATUS) {
                r->status = bhs[3];
                r->flags = bhs[1];
                r->residual = iscsi_get32(bhs + 44);
                return;
            }
        } else {
            assert_int_equal(op, ISCSI_OP_SCSI_RSP);
            r->response = bhs[2];
            r->status = bhs[3];
            r->flags = bhs[1];
            r->residual = iscsi_get32(bhs + 44);
            if (n >= 2) {
                r->sense_len = iscsi_get16(data);
                memcpy(r->sense, data + 2, r->sense_len < 64 ? r->sense_len : 64);
            }
            return;
        }
    }
}

/* Logs in, then takes the power-on unit attention a nexus id gets the first time (29h/00h: each
 * session opens its own handles, with its own identity) off with TEST UNIT READY. */
static void cli_login_ready(struct cli *c)
{
    static const uint8_t tur[16] = {0};
    struct result r;

    cli_login(c);
    cli_cmd(c, tur, false, false, 0, NULL, NULL, &r);
    if (r.status == 2) { /* a nexus id not used before: its power-on unit attention */
        assert_int_equal(r.sense[2] & 0x0f, 0x06);
        assert_int_equal(r.sense[12], 0x29);
        cli_cmd(c, tur, false, false, 0, NULL, NULL, &r);
    }
    assert_int_equal(r.status, 0);
}

static void cli_logout(struct cli *c)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[64];

    cli_hdr(c, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGOUT_REQ, ISCSI_FLAG_FINAL, 0);
    cli_send(c->fd, bhs, NULL, 0);
    assert_int_equal(cli_recv(c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_LOGOUT_RSP);
    assert_int_equal(bhs[2], 0);
    assert_true(cli_closed(c));
    close(c->fd);
}

static void cli_inquiry(struct cli *c)
{
    static const uint8_t cdb[16] = {0x12, 0, 0, 0, 96, 0};
    uint8_t in[96];
    struct result r;

    cli_cmd(c, cdb, true, false, 96, in, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.moved >= 36);
    assert_int_equal(in[0] & 0x1f, 0); /* direct access */
    assert_memory_equal(in + 8, "STORSTAK", 8);
}

static int setup(void **state)
{
    char err[256];
    struct iscsi_target_config cfg = {.portal = "127.0.0.1:0"};

    stack = storstack_create(NULL, err, sizeof(err));
    if (!stack) {
        fprintf(stderr, "cannot boot: %s\n", err);
        return -1;
    }
    if (iscsi_target_start(stack, &cfg, &target, err, sizeof(err))) {
        fprintf(stderr, "cannot start the target: %s\n", err);
        return -1;
    }
    port = iscsi_target_port(target);
    return port ? 0 : -1;
}

static int teardown(void **state)
{
    iscsi_target_stop(target);
    storstack_destroy(stack);
    return 0;
}

static void test_login_inquiry_write_read_round_trip_with_r2t_and_logout(void **state)
{
    enum { LEN = 160 * 1024 };
    uint8_t *out = malloc(LEN), *in = malloc(LEN);
    uint8_t cdb[16] = {0x2a, 0, 0, 0, 0, 100, 0, (LEN / 512) >> 8, (LEN / 512) & 0xff};
    struct result r;
    struct cli c;

    for (uint32_t i = 0; i < LEN; i++)
        out[i] = (uint8_t)(i * 7 + i / 512);
    cli_login_ready(&c);
    cli_inquiry(&c);
    cli_cmd(&c, cdb, false, true, LEN, NULL, out, &r);
    assert_int_equal(r.response, 0);
    assert_int_equal(r.status, 0);
    /* 16 KiB went unsolicited; the other 144 KiB needed R2Ts of at most 64 KiB */
    assert_int_equal(r.r2ts, 3);
    cdb[0] = 0x28;
    memset(in, 0, LEN);
    cli_cmd(&c, cdb, true, false, LEN, in, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.moved, LEN);
    assert_int_equal(r.data_ins, LEN / INIT_MRDSL);
    assert_int_equal(r.flags & (ISCSI_RSP_UNDERFLOW | ISCSI_RSP_OVERFLOW), 0);
    assert_memory_equal(in, out, LEN);
    cli_logout(&c);
    free(out);
    free(in);
}

static void test_large_io_split_below_the_adapter_limit_and_block_limits_say_so(void **state)
{
    enum { LEN = 1024 * 1024 }; /* four times the virtual miniport's 256 KiB */
    uint8_t *out = malloc(LEN), *in = malloc(LEN), vpd[64];
    uint8_t cdb[16] = {0x8a, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, (LEN / 512) >> 8, 0};
    static const uint8_t b0[16] = {0x12, 1, 0xb0, 0, 64, 0};
    struct result r;
    struct cli c;

    for (uint32_t i = 0; i < LEN; i++)
        out[i] = (uint8_t)(i * 13 + i / 4096);
    cli_login_ready(&c);
    cli_cmd(&c, cdb, false, true, LEN, NULL, out, &r);
    assert_int_equal(r.response, 0);
    assert_int_equal(r.status, 0);
    cdb[0] = 0x88;
    cli_cmd(&c, cdb, true, false, LEN, in, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.moved, LEN);
    assert_memory_equal(in, out, LEN);
    /* MAXIMUM TRANSFER LENGTH: the smaller of the adapter's limit (vminiport's 256 KiB, which
     * the disk advertises) and the target's 64 MiB command limit, in 512-byte blocks */
    cli_cmd(&c, b0, true, false, 64, vpd, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(vpd[1], 0xb0);
    assert_int_equal(iscsi_get32(vpd + 8), (256u << 10) / 512);
    cli_logout(&c);
    free(out);
    free(in);
}

static void test_residuals_and_sense(void **state)
{
    uint8_t cdb[16] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1}, in[2048];
    struct result r;
    struct cli c;

    cli_login_ready(&c);
    /* one block asked, 1024 expected: underflow 512 */
    cli_cmd(&c, cdb, true, false, 1024, in, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.flags & ISCSI_RSP_UNDERFLOW);
    assert_int_equal(r.residual, 512);
    /* two blocks asked, 512 expected: overflow 512 */
    cdb[8] = 2;
    cli_cmd(&c, cdb, true, false, 512, in, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.flags & ISCSI_RSP_OVERFLOW);
    assert_int_equal(r.residual, 512);
    /* beyond the end of a 1 GiB disk: CHECK CONDITION, LBA OUT OF RANGE in the response */
    uint8_t eol[16] = {0x28, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 1};
    cli_cmd(&c, eol, true, false, 512, in, NULL, &r);
    assert_int_equal(r.status, 2);
    assert_true(r.sense_len >= 14);
    assert_int_equal(r.sense[2] & 0x0f, 5);
    assert_int_equal(r.sense[12], 0x21);
    /* a write given one block of a two-block CDB writes that block only: overflow 512 */
    uint8_t wr[16] = {0x2a, 0, 0, 0, 0x10, 0, 0, 0, 2}, rd[16] = {0x28, 0, 0, 0, 0x10, 0, 0, 0, 2};
    uint8_t a[1024], b[512];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    cli_cmd(&c, wr, false, true, 1024, NULL, a, &r);
    assert_int_equal(r.status, 0);
    cli_cmd(&c, wr, false, true, 512, NULL, b, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.flags & ISCSI_RSP_OVERFLOW);
    assert_int_equal(r.residual, 512);
    cli_cmd(&c, rd, true, false, 1024, in, NULL, &r);
    assert_memory_equal(in, b, 512);
    assert_memory_equal(in + 512, a, 512);
    /* more data than the CDB asks for: only the CDB's blocks are written, underflow */
    wr[8] = 1;
    cli_cmd(&c, wr, false, true, 1024, NULL, a, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.flags & ISCSI_RSP_UNDERFLOW);
    assert_int_equal(r.residual, 512);
    cli_logout(&c);
}

static uint8_t stack_reset_answer(void)
{
    storstack_handle_t *h;
    assert_int_equal(storstack_open(stack, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h), 0);
    storstack_status_t st =
        storstack_ioctl(h, CTL_CODE(0x2d, 0x0401, 0, 1), NULL, 0, NULL, 0, NULL);
    storstack_close(h);
    return NT_SUCCESS(st) ? 0 : 5;
}

static void test_task_management_answers_honestly(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[64];
    struct cli c;

    cli_login_ready(&c);
    cli_hdr(&c, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_TMF_REQ, ISCSI_FLAG_FINAL | 1, 0);
    iscsi_put32(bhs + 20, 0x5555); /* no such task */
    cli_send(c.fd, bhs, NULL, 0);
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_TMF_RSP);
    assert_int_equal(bhs[2], 1);
    cli_hdr(&c, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_TMF_REQ, ISCSI_FLAG_FINAL | 5, 0);
    cli_send(c.fd, bhs, NULL, 0);
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    /* LUN RESET is IOCTL_STORAGE_RESET_DEVICE down the stack: the answer is what the stack
     * says to the same request (complete, or not supported while Storport lacks it) */
    assert_int_equal(bhs[2], stack_reset_answer());
    cli_logout(&c);
}

static void test_discovery_send_targets_and_chap_refused(void **state)
{
    static const char disc[] = "InitiatorName=iqn.2026-11.org.storstack:test\0"
                               "SessionType=Discovery\0AuthMethod=None\0";
    static const char chap[] =
        "InitiatorName=iqn.2026-11.org.storstack:test\0TargetName=" IQN "\0AuthMethod=CHAP\0";
    static const char st[] = "SendTargets=All";
    uint8_t bhs[ISCSI_BHS_LEN], data[1024];
    char want[128];
    struct cli c;
    int n;

    assert_int_equal(cli_login_text(&c, disc, sizeof(disc) - 1), 0);
    cli_hdr(&c, bhs, ISCSI_OP_TEXT_REQ, ISCSI_FLAG_FINAL, sizeof(st));
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    cli_send(c.fd, bhs, st, sizeof(st));
    c.cmdsn++;
    n = cli_recv(&c, bhs, data, sizeof(data) - 1);
    assert_true(n > 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_TEXT_RSP);
    data[n] = 0;
    assert_string_equal((char *)data, "TargetName=" IQN);
    snprintf(want, sizeof(want), "TargetAddress=127.0.0.1:%u,1", port);
    assert_string_equal((char *)data + strlen((char *)data) + 1, want);
    cli_logout(&c);

    /* CHAP is not configured: authentication failure, then the connection closes */
    c.fd = -1;
    assert_int_equal(cli_login_text(&c, chap, sizeof(chap) - 1), ISCSI_LOGIN_AUTH_FAILED);
    assert_true(cli_closed(&c));
    close(c.fd);
}

static void test_malformed_pdus_reject_or_close_without_hurting_another_session(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[INIT_MRDSL];
    struct cli good, bad;

    cli_login(&good);

    /* a truncated header, then the initiator goes quiet: the target closes */
    bad.fd = cli_connect();
    memset(bhs, 0, sizeof(bhs));
    bhs[0] = ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
    assert_int_equal(send(bad.fd, bhs, 20, 0), 20);
    shutdown(bad.fd, SHUT_WR);
    assert_true(cli_closed(&bad));
    close(bad.fd);

    /* a SCSI command before login: closed */
    bad.fd = cli_connect();
    bad.cmdsn = bad.itt = 1;
    cli_hdr(&bad, bhs, ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 0);
    bhs[32] = 0x12;
    cli_send(bad.fd, bhs, NULL, 0);
    assert_true(cli_closed(&bad));
    close(bad.fd);

    /* a data segment over our MaxRecvDataSegmentLength: Reject, then closed */
    cli_login(&bad);
    cli_hdr(&bad, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 0);
    iscsi_put24(bhs + 5, 1u << 20);
    assert_int_equal(send(bad.fd, bhs, sizeof(bhs), 0), (ssize_t)sizeof(bhs));
    assert_int_equal(cli_recv(&bad, bhs, data, sizeof(data)), ISCSI_BHS_LEN);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_REJECT);
    assert_int_equal(bhs[2], ISCSI_REJECT_PROTOCOL_ERROR);
    assert_true(cli_closed(&bad));
    close(bad.fd);

    /* an opcode no initiator sends: Reject, and the session goes on */
    cli_hdr(&good, bhs, 0x1e, ISCSI_FLAG_FINAL, 5);
    cli_send(good.fd, bhs, "hello", 5);
    assert_int_equal(cli_recv(&good, bhs, data, sizeof(data)), ISCSI_BHS_LEN);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_REJECT);
    assert_int_equal(bhs[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
    assert_int_equal(data[0], 0x1e);
    cli_hdr(&good, bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 4);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    cli_send(good.fd, bhs, "ping", 4);
    assert_int_equal(cli_recv(&good, bhs, data, sizeof(data)), 4);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_NOP_IN);
    assert_memory_equal(data, "ping", 4);
    cli_inquiry(&good);
    cli_logout(&good);
}

/*
 * The receive side reads whatever has arrived and takes every whole PDU in it; the send side
 * answers a turn's commands in one gathered write. Here: 32 READ(10) and a NOP-Out with 1000
 * bytes of ping data (sent outside the queue, after what is queued) in one TCP send, each answer
 * checked by its tag and data, StatSN advancing by one for each status; then a WRITE(10) with
 * immediate data arriving 7 bytes at a time, and a READ(10) whose header arrives in two pieces
 * a moment apart, both answered once whole.
 */
static void test_pipelined_pdus_in_one_send_and_a_pdu_in_pieces(void **state)
{
    enum { N = 32, BLK = 4096, LBA = 2000, PING = 1000 };
    uint8_t *out = malloc(N * BLK), *in = malloc(BLK), *batch = malloc((N + 1) * 48 + PING + BLK);
    uint8_t cdb[16] = {
        0x2a, 0, 0, 0, LBA >> 8, LBA & 0xff, 0, (N * BLK / 512) >> 8, (N * BLK / 512) & 0xff};
    uint8_t bhs[ISCSI_BHS_LEN], data[INIT_MRDSL], ping[PING];
    bool seen[N + 1] = {false};
    struct result r;
    struct cli c;
    size_t len = 0;

    for (uint32_t i = 0; i < N * BLK; i++)
        out[i] = (uint8_t)(i * 13 + i / 4096);
    for (uint32_t i = 0; i < PING; i++)
        ping[i] = (uint8_t)(i ^ 0x5a);
    cli_login_ready(&c);
    cli_cmd(&c, cdb, false, true, N * BLK, NULL, out, &r);
    assert_int_equal(r.status, 0);

    uint32_t itt0 = c.itt;
    for (int i = 0; i < N; i++) {
        cli_hdr(&c, batch + len, ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | ISCSI_CMD_READ | 1, 0);
        iscsi_put32(batch + len + 20, BLK);
        uint8_t rd[16] = {0x28, 0, 0, 0, (LBA + i * 8) >> 8, (LBA + i * 8) & 0xff, 0, 0, 8};
        memcpy(batch + len + 32, rd, 16);
        c.cmdsn++;
        len += 48;
        if (i == N / 2) { /* the ping in the middle */
            cli_hdr(&c, batch + len, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL,
                    PING);
            iscsi_put32(batch + len + 20, ISCSI_RESERVED_TAG);
            memcpy(batch + len + 48, ping, PING);
            len += 48 + PING;
        }
    }
    assert_int_equal(send(c.fd, batch, len, MSG_NOSIGNAL), (ssize_t)len);
    uint32_t statsn = c.expstatsn;
    for (int k = 0; k < N + 1; k++) {
        int n = cli_recv(&c, bhs, data, sizeof(data));
        uint32_t itt = iscsi_get32(bhs + 16) - itt0;
        assert_true(itt <= N && !seen[itt]);
        seen[itt] = true;
        assert_int_equal(iscsi_get32(bhs + 24), statsn++);
        if (itt == N / 2 + 1) {
            assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_NOP_IN);
            assert_int_equal(n, PING);
            assert_memory_equal(data, ping, PING);
            continue;
        }
        int i = itt <= N / 2 ? (int)itt : (int)itt - 1;
        assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_DATA_IN);
        assert_true(bhs[1] & ISCSI_DATA_IN_STATUS);
        assert_int_equal(bhs[3], 0);
        assert_int_equal(n, BLK);
        assert_memory_equal(data, out + (size_t)i * BLK, BLK);
    }

    /* a WRITE(10) with its 4 KiB of immediate data, 7 bytes at a time */
    uint8_t wr[16] = {0x2a, 0, 0, 0, LBA >> 8, LBA & 0xff, 0, 0, 8};
    memset(out, 0xc3, BLK);
    cli_hdr(&c, batch, ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1, BLK);
    iscsi_put32(batch + 20, BLK);
    memcpy(batch + 32, wr, 16);
    memcpy(batch + 48, out, BLK);
    c.cmdsn++;
    for (size_t off = 0; off < 48 + BLK; off += 7) {
        size_t k = 48 + BLK - off < 7 ? 48 + BLK - off : 7;
        assert_int_equal(send(c.fd, batch + off, k, MSG_NOSIGNAL), (ssize_t)k);
    }
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_SCSI_RSP);
    assert_int_equal(bhs[3], 0);

    /* a READ(10) header in two pieces, 50 ms apart */
    cli_hdr(&c, batch, ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | ISCSI_CMD_READ | 1, 0);
    iscsi_put32(batch + 20, BLK);
    wr[0] = 0x28;
    memcpy(batch + 32, wr, 16);
    c.cmdsn++;
    assert_int_equal(send(c.fd, batch, 20, MSG_NOSIGNAL), 20);
    usleep(50000);
    assert_int_equal(send(c.fd, batch + 20, 28, MSG_NOSIGNAL), 28);
    assert_int_equal(cli_recv(&c, bhs, in, BLK), BLK);
    assert_true(bhs[1] & ISCSI_DATA_IN_STATUS);
    assert_memory_equal(in, out, BLK);
    cli_logout(&c);
    free(out);
    free(in);
    free(batch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_inquiry_write_read_round_trip_with_r2t_and_logout),
        cmocka_unit_test(test_large_io_split_below_the_adapter_limit_and_block_limits_say_so),
        cmocka_unit_test(test_residuals_and_sense),
        cmocka_unit_test(test_task_management_answers_honestly),
        cmocka_unit_test(test_discovery_send_targets_and_chap_refused),
        cmocka_unit_test(test_malformed_pdus_reject_or_close_without_hurting_another_session),
        cmocka_unit_test(test_pipelined_pdus_in_one_send_and_a_pdu_in_pieces),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
