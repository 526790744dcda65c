/*
 * The iSCSI target with a configuration of its own, in process, against a stack with two RAM
 * disks: two targets (one with a LUN map of LUN 0 and LUN 3, one demanding mutual CHAP), REPORT
 * LUNS from the map, several sessions with many commands in flight at once, ABORT TASK of a
 * command down the stack, a Data-Out DataSN error ending in CHECK CONDITION, CRC32C digests on
 * the wire (and a bad header digest closing only its connection), target NOP-In pings; and, each
 * against a target of its own, back-pressure: initiators that stop reading hold only their own
 * sessions, lose nothing queued for them and get no other command's data, and the target stops
 * promptly while they are stalled.
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
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include <storstack/nt/ntstatus.h>

#include "api/local.h"
#include "frontends/iscsi/auth.h"
#include "frontends/iscsi/iscsi.h"
#include "frontends/iscsi/pdu.h"

#define IQN_A "iqn.2026-11.org.storstack:a"
#define IQN_B "iqn.2026-11.org.storstack:chap"

static const char config[] = "[Enum\\Root\\VMINIPORT\\0000]\n"
                             "HardwareID = multi:ROOT\\VMINIPORT\n"
                             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
                             "Type = disk\nBackend = ram\nSize = 64M\n"
                             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun1]\n"
                             "Type = disk\nBackend = ram\nSize = 64M\n"
                             "[Control\\Storstack\\iSCSI]\nNopInterval = 1\nNopTimeout = 1\n"
                             "[Control\\Storstack\\iSCSI\\Target0]\n"
                             "Name = " IQN_A "\nLun0 = PhysicalDrive0\nLun3 = PhysicalDrive1\n"
                             "[Control\\Storstack\\iSCSI\\Target1]\n"
                             "Name = " IQN_B "\nLun0 = PhysicalDrive1\n"
                             "ChapUser = alice\nChapSecret = 0123456789ab\n"
                             "MutualChapUser = bob\nMutualChapSecret = the other one\n";

static storstack_t *stack;
static struct iscsi_target *target;
static uint16_t port;

struct cli {
    int fd;
    uint32_t cmdsn, expstatsn, itt, maxcmdsn;
    bool hdig, ddig;
};

static void cli_send(struct cli *c, const uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                     uint32_t len)
{
    uint8_t buf[ISCSI_BHS_LEN + 4 + 65536 + 8];
    uint32_t n = 0, pad = iscsi_pad4(len), crc;

    memcpy(buf, bhs, ISCSI_BHS_LEN);
    n = ISCSI_BHS_LEN;
    if (c->hdig) {
        crc = iscsi_crc32c(0, bhs, ISCSI_BHS_LEN);
        memcpy(buf + n, &crc, 4);
        n += 4;
    }
    if (len) {
        memcpy(buf + n, data, len);
        memset(buf + n + len, 0, pad);
        if (c->ddig) {
            crc = iscsi_crc32c(0, buf + n, len + pad);
            memcpy(buf + n + len + pad, &crc, 4);
            n += 4;
        }
        n += len + pad;
    }
    assert_int_equal(send(c->fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
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

/* One PDU (digests checked): its data length, or -1 when the connection closed. */
static int cli_recv(struct cli *c, uint8_t bhs[ISCSI_BHS_LEN], uint8_t *data, uint32_t cap)
{
    uint8_t dig[4];
    uint32_t crc;

    if (recv_all(c->fd, bhs, ISCSI_BHS_LEN))
        return -1;
    if (c->hdig) {
        if (recv_all(c->fd, dig, 4))
            return -1;
        crc = iscsi_crc32c(0, bhs, ISCSI_BHS_LEN);
        assert_memory_equal(dig, &crc, 4);
    }
    uint32_t len = iscsi_get24(bhs + 5), all = len + iscsi_pad4(len);
    assert_true(all <= cap);
    if (all && recv_all(c->fd, data, all))
        return -1;
    if (c->ddig && len) {
        if (recv_all(c->fd, dig, 4))
            return -1;
        crc = iscsi_crc32c(0, data, all);
        assert_memory_equal(dig, &crc, 4);
    }
    uint8_t op = bhs[0] & 0x3f;
    if (op == ISCSI_OP_SCSI_RSP || op == ISCSI_OP_TMF_RSP || op == ISCSI_OP_LOGIN_RSP ||
        op == ISCSI_OP_LOGOUT_RSP || op == ISCSI_OP_REJECT || op == ISCSI_OP_TEXT_RSP ||
        (op == ISCSI_OP_DATA_IN && (bhs[1] & 1)) ||
        (op == ISCSI_OP_NOP_IN && iscsi_get32(bhs + 16) != ISCSI_RESERVED_TAG))
        c->expstatsn = iscsi_get32(bhs + 24) + 1;
    if (op != ISCSI_OP_LOGIN_RSP)
        c->maxcmdsn = iscsi_get32(bhs + 32);
    return (int)len;
}

/* rcvbuf nonzero: SO_RCVBUF before connect (the window the target sees stays that small). */
static int cli_connect_ex(int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (rcvbuf)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int cli_connect(void)
{
    return cli_connect_ex(0);
}

static uint16_t cli_login_step(struct cli *c, uint8_t flags, const char *text, size_t len,
                               char *reply, size_t cap)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {0}, data[8192];

    bhs[0] = ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
    bhs[1] = flags;
    iscsi_put24(bhs + 5, (uint32_t)len);
    bhs[8] = 0x80;
    bhs[13] = (uint8_t)c->fd;
    iscsi_put32(bhs + 16, c->itt);
    iscsi_put32(bhs + 24, c->cmdsn);
    iscsi_put32(bhs + 28, c->expstatsn);
    bool h = c->hdig, d = c->ddig;
    c->hdig = c->ddig = false; /* digests start after the login */
    cli_send(c, bhs, text, (uint32_t)len);
    int n = cli_recv(c, bhs, data, sizeof(data));
    c->hdig = h;
    c->ddig = d;
    assert_true(n >= 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_LOGIN_RSP);
    if (reply) {
        memcpy(reply, data, (size_t)n < cap ? (size_t)n : cap);
        reply[(size_t)n < cap ? (size_t)n : cap - 1] = 0;
    }
    c->maxcmdsn = iscsi_get32(bhs + 32);
    return (uint16_t)iscsi_get16(bhs + 36);
}

static void cli_login_ex(struct cli *c, const char *iqn, const char *extra, size_t extra_len,
                         int rcvbuf)
{
    char text[1024];
    int n = snprintf(text, sizeof(text),
                     "InitiatorName=iqn.2026-11.org.storstack:test%cTargetName=%s%c"
                     "SessionType=Normal%cMaxRecvDataSegmentLength=65536%c",
                     0, iqn, 0, 0, 0);
    memcpy(text + n, extra, extra_len);
    memset(c, 0, sizeof(*c));
    c->fd = cli_connect_ex(rcvbuf);
    c->cmdsn = c->itt = 1;
    assert_int_equal(
        cli_login_step(c, ISCSI_LOGIN_TRANSIT | 1 << 2 | 3, text, (size_t)n + extra_len, NULL, 0),
        0);
}

static void cli_login(struct cli *c, const char *iqn, const char *extra, size_t extra_len)
{
    cli_login_ex(c, iqn, extra, extra_len, 0);
}

/* Sends a SCSI command without waiting; returns its ITT. */
static uint32_t cli_cmd_send(struct cli *c, const uint8_t cdb[16], uint32_t lun, bool read,
                             bool write, uint32_t edtl, const void *imm, uint32_t imm_len)
{
    uint8_t bhs[ISCSI_BHS_LEN];
    uint32_t itt = c->itt++;

    iscsi_bhs_init(bhs, ISCSI_OP_SCSI_CMD,
                   ISCSI_FLAG_FINAL | (read ? ISCSI_CMD_READ : 0) | (write ? ISCSI_CMD_WRITE : 0) |
                       1,
                   imm_len, itt);
    iscsi_lun_encode(bhs + 8, lun);
    iscsi_put32(bhs + 20, edtl);
    iscsi_put32(bhs + 24, c->cmdsn++);
    iscsi_put32(bhs + 28, c->expstatsn);
    memcpy(bhs + 32, cdb, 16);
    cli_send(c, bhs, imm, imm_len);
    return itt;
}

/* Waits for the response of a command; data-in into in. The SCSI status. */
static int cli_cmd_wait(struct cli *c, uint32_t itt, uint8_t *in, uint8_t *sense)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[65536 + 8];
    for (;;) {
        int n = cli_recv(c, bhs, data, sizeof(data));
        assert_true(n >= 0);
        uint8_t op = bhs[0] & 0x3f;
        if (op == ISCSI_OP_NOP_IN)
            continue; /* a ping; these tests answer pings only where they test them */
        assert_int_equal(iscsi_get32(bhs + 16), itt);
        if (op == ISCSI_OP_DATA_IN) {
            memcpy(in + iscsi_get32(bhs + 40), data, (size_t)n);
            if (bhs[1] & 1)
                return bhs[3];
            continue;
        }
        assert_int_equal(op, ISCSI_OP_SCSI_RSP);
        if (sense && n >= 2)
            memcpy(sense, data + 2, 18);
        return bhs[3];
    }
}

static int cli_cmd(struct cli *c, const uint8_t cdb[16], uint32_t lun, bool read, bool write,
                   uint32_t edtl, uint8_t *in, const void *out, uint8_t *sense)
{
    uint32_t itt = cli_cmd_send(c, cdb, lun, read, write, edtl, out, write ? edtl : 0);
    return cli_cmd_wait(c, itt, in, sense);
}

/* TEST UNIT READY until the power-on unit attention of the new nexus is gone. */
static void cli_ready(struct cli *c, uint32_t lun)
{
    static const uint8_t tur[16] = {0};
    uint8_t sense[18];
    if (cli_cmd(c, tur, lun, false, false, 0, NULL, NULL, sense) == 2) {
        assert_int_equal(sense[2] & 0xf, 6);
        assert_int_equal(cli_cmd(c, tur, lun, false, false, 0, NULL, NULL, NULL), 0);
    }
}

static bool cli_closed(struct cli *c)
{
    uint8_t b[64];
    for (;;) {
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return false; /* timed out: still open */
    }
}

/* The mutual CHAP login of the test initiator, over the wire. */
static uint16_t cli_login_chap(struct cli *c, const char *secret)
{
    char text[1024], reply[1024], hex[40];
    uint8_t challenge[16], md[16];
    static const uint8_t mine[16] = "initiator-chal!";
    int n = snprintf(text, sizeof(text),
                     "InitiatorName=iqn.2026-11.org.storstack:test%cTargetName=" IQN_B
                     "%cSessionType=Normal%cAuthMethod=CHAP,None%c",
                     0, 0, 0, 0);
    memset(c, 0, sizeof(*c));
    c->fd = cli_connect();
    c->cmdsn = c->itt = 1;
    assert_int_equal(cli_login_step(c, 0, text, (size_t)n, reply, sizeof(reply)), 0);
    n = snprintf(text, sizeof(text), "CHAP_A=5%c", 0);
    assert_int_equal(cli_login_step(c, 0, text, (size_t)n, reply, sizeof(reply)), 0);
    /* reply: CHAP_A=5, CHAP_I=..., CHAP_C=0x... */
    const char *p = reply;
    unsigned id = 0;
    while (*p) {
        if (!strncmp(p, "CHAP_I=", 7))
            id = (unsigned)atoi(p + 7);
        if (!strncmp(p, "CHAP_C=", 7))
            assert_int_equal(iscsi_chap_decode(p + 7, strlen(p + 7), challenge, 16), 16);
        p += strlen(p) + 1;
    }
    iscsi_chap_response((uint8_t)id, secret, strlen(secret), challenge, 16, md);
    iscsi_chap_encode(md, 16, hex);
    n = snprintf(text, sizeof(text), "CHAP_N=alice%cCHAP_R=%s%cCHAP_I=9%cCHAP_C=", 0, hex, 0, 0);
    iscsi_chap_encode(mine, 16, text + n);
    n += (int)strlen(text + n) + 1;
    uint16_t st = cli_login_step(c, ISCSI_LOGIN_TRANSIT | 1, text, (size_t)n, reply, sizeof(reply));
    if (st)
        return st;
    /* the target proves itself: CHAP_N=bob, CHAP_R=MD5(9, mutual secret, our challenge) */
    iscsi_chap_response(9, "the other one", 13, mine, 16, md);
    iscsi_chap_encode(md, 16, hex);
    assert_string_equal(reply, "CHAP_N=bob");
    assert_string_equal(reply + strlen(reply) + 1 + 7, hex);
    n = snprintf(text, sizeof(text), "MaxRecvDataSegmentLength=65536%c", 0);
    return cli_login_step(c, ISCSI_LOGIN_TRANSIT | 1 << 2 | 3, text, (size_t)n, NULL, 0);
}

static void test_report_luns_map_and_chap_target_reaches_the_same_disk(void **state)
{
    static const uint8_t rl[16] = {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64};
    static const uint8_t rl_short[16] = {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8};
    uint8_t in[4096], pattern[4096], sense[18];
    uint8_t wr[16] = {0x2a, 0, 0, 0, 0, 5, 0, 0, 8}, rd[16] = {0x28, 0, 0, 0, 0, 5, 0, 0, 8};
    struct cli a, b;

    cli_login(&a, IQN_A, "", 0);
    assert_int_equal(cli_cmd(&a, rl, 7, true, false, 64, in, NULL, NULL), 0);
    assert_int_equal(iscsi_get32(in), 16); /* two LUNs: 0 and 3 */
    assert_int_equal(iscsi_lun_decode(in + 8), 0);
    assert_int_equal(iscsi_lun_decode(in + 16), 3);
    assert_int_equal(cli_cmd(&a, rl_short, 0, true, false, 8, in, NULL, sense), 2);
    assert_int_equal(sense[2], 0x05); /* ALLOCATION LENGTH under 16: INVALID FIELD IN CDB */
    assert_int_equal(sense[12], 0x24);
    assert_int_equal(iscsi_get16(sense + 16), 6);
    /* LUN 1 is not mapped */
    static const uint8_t tur[16] = {0};
    assert_int_equal(cli_cmd(&a, tur, 1, false, false, 0, NULL, NULL, sense), 2);
    assert_int_equal(sense[12], 0x25);
    cli_ready(&a, 3);
    for (int i = 0; i < 4096; i++)
        pattern[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(cli_cmd(&a, wr, 3, false, true, 4096, NULL, pattern, NULL), 0);

    /* a wrong secret fails authentication; the right one logs in, mutual */
    assert_int_equal(cli_login_chap(&b, "0123456789ac"), 0x0201);
    assert_true(cli_closed(&b));
    close(b.fd);
    assert_int_equal(cli_login_chap(&b, "0123456789ab"), 0);
    cli_ready(&b, 0);
    memset(in, 0, sizeof(in));
    assert_int_equal(cli_cmd(&b, rd, 0, true, false, 4096, in, NULL, NULL), 0);
    assert_memory_equal(in, pattern, 4096); /* target B LUN 0 is target A LUN 3 */
    /* without CHAP, target B refuses */
    struct cli n;
    memset(&n, 0, sizeof(n));
    n.fd = cli_connect();
    char text[256];
    int len = snprintf(text, sizeof(text),
                       "InitiatorName=iqn.x%cTargetName=" IQN_B "%cAuthMethod=None%c", 0, 0, 0);
    assert_int_equal(cli_login_step(&n, ISCSI_LOGIN_TRANSIT | 1, text, (size_t)len, NULL, 0),
                     0x0201);
    close(n.fd);
    close(a.fd);
    close(b.fd);
}

/* 32 READs of 256 KiB in flight on one session while another session writes and reads; then
 * ABORT TASK of a command that may still be down the stack. */
static void test_commands_in_flight_across_sessions_and_abort_task(void **state)
{
    enum { N = 32, LEN = 256 * 1024 };
    uint8_t *big = malloc(LEN), small[4096], pattern[4096];
    uint8_t rd[16] = {0x28, 0, 0, 0, 0, 0, 0, 0x02, 0}; /* 512 blocks */
    uint32_t itts[N];
    struct cli a, b;

    cli_login(&a, IQN_A, "", 0);
    cli_login(&b, IQN_A, "", 0);
    cli_ready(&a, 0);
    cli_ready(&b, 0);
    /* the window offers far more than one command */
    assert_true(a.maxcmdsn - a.cmdsn + 1 >= N);
    for (int i = 0; i < N; i++)
        itts[i] = cli_cmd_send(&a, rd, 0, true, false, LEN, NULL, 0);
    /* meanwhile another session's I/O goes through */
    uint8_t wr[16] = {0x2a, 0, 0, 0, 0x10, 0, 0, 0, 8}, rd2[16] = {0x28, 0, 0, 0, 0x10, 0, 0, 0, 8};
    for (int i = 0; i < 4096; i++)
        pattern[i] = (uint8_t)(i ^ 0x5a);
    assert_int_equal(cli_cmd(&b, wr, 0, false, true, 4096, NULL, pattern, NULL), 0);
    assert_int_equal(cli_cmd(&b, rd2, 0, true, false, 4096, small, NULL, NULL), 0);
    assert_memory_equal(small, pattern, 4096);

    /* ABORT TASK of the last READ, sent behind the others */
    uint8_t bhs[ISCSI_BHS_LEN], data[65536 + 8];
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_TMF_REQ, ISCSI_FLAG_FINAL | 1, 0, 0x7777);
    iscsi_put32(bhs + 20, itts[N - 1]);
    iscsi_put32(bhs + 24, a.cmdsn);
    iscsi_put32(bhs + 28, a.expstatsn);
    iscsi_put32(bhs + 32, a.cmdsn - 1); /* RefCmdSN */
    cli_send(&a, bhs, NULL, 0);
    /* Every READ answers once, except an aborted one; the TMF answer says which it was:
     * complete = aborted (no status for it, and it comes after), task does not exist = it
     * had finished (its status came first). */
    bool done[N] = {false}, last_answered = false;
    int tmf = -1, answered = 0;
    while (tmf < 0 || answered + (tmf == 0) < N) {
        int n = cli_recv(&a, bhs, data, sizeof(data));
        assert_true(n >= 0);
        uint8_t op = bhs[0] & 0x3f;
        if (op == ISCSI_OP_NOP_IN)
            continue;
        uint32_t itt = iscsi_get32(bhs + 16);
        if (op == ISCSI_OP_TMF_RSP) {
            assert_int_equal(itt, 0x7777);
            tmf = bhs[2];
            assert_true(tmf == 0 || tmf == 1);
            assert_int_equal(tmf == 1, last_answered);
            continue;
        }
        if (op == ISCSI_OP_DATA_IN && !(bhs[1] & 1))
            continue;
        assert_true(op == ISCSI_OP_DATA_IN || op == ISCSI_OP_SCSI_RSP);
        int k = (int)(itt - itts[0]);
        assert_true(k >= 0 && k < N && !done[k]);
        assert_int_equal(bhs[3], 0);
        done[k] = true;
        answered++;
        if (k == N - 1) {
            assert_int_equal(tmf, -1); /* never a status after "function complete" */
            last_answered = true;
        }
    }
    print_message("ABORT TASK: %s\n", tmf == 0 ? "aborted in flight" : "had completed");
    /* the session goes on */
    assert_int_equal(cli_cmd(&a, rd2, 0, true, false, 4096, small, NULL, NULL), 0);
    close(a.fd);
    close(b.fd);
    free(big);
}

/* LUN RESET with READs in flight: IOCTL_STORAGE_RESET_DEVICE down the stack; every READ is
 * answered before the TMF response or not at all, and the other session on the LU gets the
 * reset's unit attention (29h/03h) on its next command. */
static void test_lun_reset_with_commands_in_flight(void **state)
{
    enum { N = 16, LEN = 256 * 1024 };
    uint8_t rd[16] = {0x28, 0, 0, 0, 0, 0, 0, 0x02, 0}, bhs[ISCSI_BHS_LEN], data[65536 + 8];
    static const uint8_t tur[16] = {0};
    uint8_t sense[18];
    struct cli a, b;

    cli_login(&a, IQN_A, "", 0);
    cli_login(&b, IQN_A, "", 0);
    cli_ready(&a, 0);
    cli_ready(&b, 0);
    for (int i = 0; i < N; i++)
        cli_cmd_send(&a, rd, 0, true, false, LEN, NULL, 0);
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_TMF_REQ, ISCSI_FLAG_FINAL | 5, 0, 0x5151);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    iscsi_put32(bhs + 24, a.cmdsn);
    cli_send(&a, bhs, NULL, 0);
    int answered = 0;
    for (;;) {
        int n = cli_recv(&a, bhs, data, sizeof(data));
        assert_true(n >= 0);
        uint8_t op = bhs[0] & 0x3f;
        if (op == ISCSI_OP_TMF_RSP) {
            assert_int_equal(iscsi_get32(bhs + 16), 0x5151);
            assert_int_equal(bhs[2], 0); /* function complete */
            break;
        }
        if ((op == ISCSI_OP_DATA_IN && (bhs[1] & 1)) || op == ISCSI_OP_SCSI_RSP)
            answered++;
    }
    print_message("LUN RESET: %d of %d READs had completed\n", answered, N);
    /* nothing of the aborted READs follows: the next answer is the next command's (the
     * virtual miniport raises the reset's unit attention for the requester too) */
    if (cli_cmd(&a, tur, 0, false, false, 0, NULL, NULL, sense) == 2) {
        assert_int_equal(sense[12], 0x29);
        assert_int_equal(cli_cmd(&a, tur, 0, false, false, 0, NULL, NULL, NULL), 0);
    }
    assert_int_equal(cli_cmd(&b, tur, 0, false, false, 0, NULL, NULL, sense), 2);
    assert_int_equal(sense[2] & 0xf, 6);
    assert_int_equal(sense[12], 0x29);
    assert_int_equal(sense[13], 0x03);
    close(a.fd);
    close(b.fd);
}

/* WRITE with its Data-Out PDUs' DataSN swapped: CHECK CONDITION, ABORTED COMMAND, DATA PHASE
 * ERROR, and the connection stays. */
static void test_datasn_error_ends_the_command_not_the_connection(void **state)
{
    uint8_t wr[16] = {0x2a, 0, 0, 0, 0, 9, 0, 0, 2}, bhs[ISCSI_BHS_LEN], data[1024], sense[18];
    struct cli c;
    static const char no_imm[] = "ImmediateData=No\0InitialR2T=Yes\0";

    cli_login(&c, IQN_A, no_imm, sizeof(no_imm) - 1);
    cli_ready(&c, 0);
    uint32_t itt = cli_cmd_send(&c, wr, 0, false, true, 1024, NULL, 0);
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_R2T);
    uint32_t ttt = iscsi_get32(bhs + 20);
    for (int i = 0; i < 2; i++) {
        iscsi_bhs_init(bhs, ISCSI_OP_DATA_OUT, i ? ISCSI_FLAG_FINAL : 0, 512, itt);
        iscsi_put32(bhs + 20, ttt);
        iscsi_put32(bhs + 36, 1 - i); /* DataSN 1, 0 */
        iscsi_put32(bhs + 40, 512 * i);
        cli_send(&c, bhs, data, 512);
    }
    assert_int_equal(cli_cmd_wait(&c, itt, NULL, sense), 2);
    assert_int_equal(sense[2], 0x0b);
    assert_int_equal(sense[12], 0x4b);
    static const uint8_t tur[16] = {0};
    assert_int_equal(cli_cmd(&c, tur, 0, false, false, 0, NULL, NULL, NULL), 0);

    /* ABORT TASK of a write waiting for its data: function complete, no status for it, and
     * its late Data-Out is dropped without harm */
    itt = cli_cmd_send(&c, wr, 0, false, true, 1024, NULL, 0);
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_R2T);
    ttt = iscsi_get32(bhs + 20);
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_TMF_REQ, ISCSI_FLAG_FINAL | 1, 0, 0x99);
    iscsi_put32(bhs + 20, itt);
    iscsi_put32(bhs + 24, c.cmdsn);
    iscsi_put32(bhs + 32, c.cmdsn - 1);
    cli_send(&c, bhs, NULL, 0);
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_TMF_RSP);
    assert_int_equal(bhs[2], 0);
    iscsi_bhs_init(bhs, ISCSI_OP_DATA_OUT, ISCSI_FLAG_FINAL, 512, itt);
    iscsi_put32(bhs + 20, ttt);
    cli_send(&c, bhs, data, 512);
    assert_int_equal(cli_cmd(&c, tur, 0, false, false, 0, NULL, NULL, NULL), 0);
    close(c.fd);
}

static void test_crc32c_digests_on_the_wire(void **state)
{
    static const char dig[] = "HeaderDigest=CRC32C\0DataDigest=CRC32C\0";
    uint8_t bhs[ISCSI_BHS_LEN], data[256], in[4096];
    uint8_t rd[16] = {0x28, 0, 0, 0, 0, 0, 0, 0, 8};
    struct cli c, d;

    cli_login(&c, IQN_A, dig, sizeof(dig) - 1);
    c.hdig = c.ddig = true;
    cli_ready(&c, 0);
    assert_int_equal(cli_cmd(&c, rd, 0, true, false, 4096, in, NULL, NULL), 0);
    /* a NOP-Out with ping data comes back with both digests right (cli_recv checks them) */
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 5, 0x42);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    iscsi_put32(bhs + 24, c.cmdsn);
    cli_send(&c, bhs, "hello", 5);
    int n;
    while ((n = cli_recv(&c, bhs, data, sizeof(data))) >= 0 && iscsi_get32(bhs + 16) != 0x42)
        ;
    assert_int_equal(n, 5);
    assert_memory_equal(data, "hello", 5);
    /* a bad data digest: Reject 02h, the NOP is dropped, the connection stays */
    c.ddig = false;
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 4, 0x43);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    uint8_t bad[8] = {'p', 'i', 'n', 'g', 0xde, 0xad, 0xbe, 0xef};
    uint32_t crc = iscsi_crc32c(0, bhs, ISCSI_BHS_LEN);
    uint8_t raw[ISCSI_BHS_LEN + 12];
    memcpy(raw, bhs, ISCSI_BHS_LEN);
    memcpy(raw + ISCSI_BHS_LEN, &crc, 4);
    memcpy(raw + ISCSI_BHS_LEN + 4, bad, 8);
    assert_int_equal(send(c.fd, raw, sizeof(raw), MSG_NOSIGNAL), (ssize_t)sizeof(raw));
    c.ddig = true;
    while ((n = cli_recv(&c, bhs, data, sizeof(data))) >= 0 && (bhs[0] & 0x3f) == ISCSI_OP_NOP_IN)
        ;
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_REJECT);
    assert_int_equal(bhs[2], 0x02);
    assert_int_equal(cli_cmd(&c, rd, 0, true, false, 4096, in, NULL, NULL), 0);

    /* a bad header digest closes that connection only */
    cli_login(&d, IQN_A, dig, sizeof(dig) - 1);
    d.hdig = d.ddig = true;
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 0, 0x44);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    memcpy(raw, bhs, ISCSI_BHS_LEN);
    memset(raw + ISCSI_BHS_LEN, 0, 4);
    assert_int_equal(send(d.fd, raw, ISCSI_BHS_LEN + 4, MSG_NOSIGNAL), ISCSI_BHS_LEN + 4);
    assert_true(cli_closed(&d));
    close(d.fd);
    assert_int_equal(cli_cmd(&c, rd, 0, true, false, 4096, in, NULL, NULL), 0);
    close(c.fd);
}

/* NopInterval=1, NopTimeout=1: an idle connection gets a NOP-In with a TTT; answered, it stays;
 * unanswered, it is dropped. */
static void test_target_pings_and_drops_a_silent_initiator(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN], data[64];
    struct cli c;

    cli_login(&c, IQN_A, "", 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
        assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_NOP_IN);
        assert_int_equal(iscsi_get32(bhs + 16), ISCSI_RESERVED_TAG);
        uint32_t ttt = iscsi_get32(bhs + 20);
        assert_int_not_equal(ttt, ISCSI_RESERVED_TAG);
        iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL, 0,
                       ISCSI_RESERVED_TAG);
        iscsi_put32(bhs + 20, ttt);
        iscsi_put32(bhs + 24, c.cmdsn);
        cli_send(&c, bhs, NULL, 0);
    }
    /* now silent: one more ping, then the connection goes */
    assert_int_equal(cli_recv(&c, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_NOP_IN);
    assert_true(cli_closed(&c));
    close(c.fd);
}

static long rss_kib(void)
{
    char line[128];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* Discovery lists both targets; 100 logged-in idle sessions cost under 1 MiB each (issue 6). */
static void test_discovery_lists_targets_and_idle_sessions_are_small(void **state)
{
    enum { N = 100 };
    static struct cli s[N];
    uint8_t bhs[ISCSI_BHS_LEN], data[1024];
    static const char st[] = "SendTargets=All";
    struct cli d;
    char text[256];

    memset(&d, 0, sizeof(d));
    d.fd = cli_connect();
    d.cmdsn = d.itt = 1;
    int n = snprintf(text, sizeof(text), "InitiatorName=iqn.x%cSessionType=Discovery%c", 0, 0);
    assert_int_equal(cli_login_step(&d, ISCSI_LOGIN_TRANSIT | 1 << 2 | 3, text, (size_t)n, NULL, 0),
                     0);
    iscsi_bhs_init(bhs, ISCSI_OP_TEXT_REQ, ISCSI_FLAG_FINAL, sizeof(st), 7);
    iscsi_put32(bhs + 20, ISCSI_RESERVED_TAG);
    iscsi_put32(bhs + 24, d.cmdsn);
    cli_send(&d, bhs, st, sizeof(st));
    n = cli_recv(&d, bhs, data, sizeof(data) - 1);
    assert_true(n > 0);
    data[n] = 0;
    int names = 0;
    for (char *p = (char *)data; p < (char *)data + n; p += strlen(p) + 1)
        names += !strcmp(p, "TargetName=" IQN_A) || !strcmp(p, "TargetName=" IQN_B);
    assert_int_equal(names, 2);
    close(d.fd);

    long before = rss_kib();
    for (int i = 0; i < N; i++)
        cli_login(&s[i], IQN_A, "", 0);
    long after = rss_kib();
    print_message("%d idle sessions: RSS %ld -> %ld KiB (%ld KiB each, target and test)\n", N,
                  before, after, (after - before) / N);
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer's shadow memory grows with every page touched: the bound is for real builds
     */
    print_message("ThreadSanitizer build: the 1 MiB per session bound is not checked\n");
#else
    assert_true(before > 0 && (after - before) / N < 1024);
#endif
    for (int i = 0; i < N; i++)
        close(s[i].fd);
}

/* Bad registry values stop the configuration with a reason naming the key. */
static void test_registry_values_are_checked(void **state)
{
    static const struct {
        const char *text, *reason;
    } cases[] = {
        {"[Control\\Storstack\\iSCSI\\Target0]\nName = iqn.x:a\nLun0 = PhysicalDrive0\n"
         "ChapUser = u\nChapSecret = short\n",
         "at least 12"},
        {"[Control\\Storstack\\iSCSI\\Target0]\nName = iqn.x:a\n", "LUNs"},
        {"[Control\\Storstack\\iSCSI\\Target0]\nName = target-a\nLun0 = PhysicalDrive0\n",
         "not an iqn"},
        {"[Control\\Storstack\\iSCSI]\nNopInterval = 99999\n", "NopInterval"},
        {"[Control\\Storstack\\iSCSI]\nNopInterval = 5\nNopTimeout = 0\n", "NopTimeout"},
    };
    static struct iscsi_target_config cfg;
    char err[256], portal[64], text[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text),
                 "[Enum\\Root\\VMINIPORT\\0000]\nHardwareID = "
                 "multi:ROOT\\VMINIPORT\n%s",
                 cases[i].text);
        storstack_t *s = storstack_create_ex(NULL, text, NULL, 0, err, sizeof(err));
        assert_non_null(s);
        iscsi_config_default(&cfg);
        err[0] = 0;
        assert_int_equal(
            iscsi_config_from_registry(s, &cfg, portal, sizeof(portal), err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].reason))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].reason);
        storstack_destroy(s);
    }
}

/* ---- Back-pressure: initiators that stop reading ---------------------------------------------
 *
 * These tests run against a stack and a target of their own (bp_setup, per test): NopInterval 0,
 * so that no ping of the target's falls due while an initiator does not read; LUN 0 a 64 MiB RAM
 * disk whose first 32 MiB hold a pattern written through the stack before the target starts;
 * LUN 1 a small RAM disk on a second adapter that drops every READ/WRITE (the miniport holds it
 * until an abort completes it), for commands that stay down the stack. Every 32-bit word of a
 * pattern depends on its byte offset on the disk (and a seed), so a Data-In that carries another
 * region's bytes, or stale bytes of a reused buffer, does not match.
 *
 * A stalled initiator sets a small SO_RCVBUF before it connects and then stops reading: the
 * target's Data-In for it overflows the socket buffers and stays queued in the target.
 */
#define BP_IQN    "iqn.2026-11.org.storstack:bp"
#define BP_RCVBUF 4096
#define BP_FILLED (32u << 20) /* LUN 0 bytes holding the seed 0 pattern */
#define BP_BIG    (256u * 1024)
#define BP_MIB    (1024u * 1024)

static const char bp_config[] = "[Enum\\Root\\VMINIPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\VMINIPORT\n"
                                "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
                                "Type = disk\nBackend = ram\nSize = 64M\n"
                                "[Enum\\Root\\VMINIPORT\\0001]\n"
                                "HardwareID = multi:ROOT\\VMINIPORT\n"
                                "[Enum\\Root\\VMINIPORT\\0001\\Device Parameters]\n"
                                "FaultDropRate = 10000\n"
                                "[Enum\\Root\\VMINIPORT\\0001\\Device Parameters\\Target0\\Lun0]\n"
                                "Type = disk\nBackend = ram\nSize = 1M\n"
                                "[Control\\Storstack\\iSCSI]\nNopInterval = 0\n"
                                "[Control\\Storstack\\iSCSI\\Target0]\n"
                                "Name = " BP_IQN "\nLun0 = PhysicalDrive0\nLun1 = PhysicalDrive1\n";

static storstack_t *bp_stack;
static struct iscsi_target *bp_target;
static uint16_t bp_saved_port;

static uint32_t bp_word(uint64_t off, uint32_t seed)
{
    uint64_t x = (off / 4 + (uint64_t)seed * 0x100000001b3ull) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 29);
}

static void bp_fill(uint8_t *buf, uint64_t off, uint32_t len, uint32_t seed)
{
    for (uint32_t i = 0; i < len; i += 4) {
        uint32_t w = bp_word(off + i, seed);
        memcpy(buf + i, &w, 4);
    }
}

/* The first byte of buf (len bytes from off on the disk) that is not the pattern, or -1. */
static long bp_mismatch(const uint8_t *buf, uint64_t off, uint32_t len, uint32_t seed)
{
    for (uint32_t i = 0; i < len; i += 4) {
        uint32_t w = bp_word(off + i, seed);
        if (memcmp(buf + i, &w, len - i < 4 ? len - i : 4))
            return (long)i;
    }
    return -1;
}

static double bp_seconds(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void bp_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* A READ(10) or WRITE(10) of LUN 0 as the initiator tracks it. */
struct bp_cmd {
    uint32_t itt;
    bool read;
    uint64_t off; /* bytes on the disk */
    uint32_t len;
    uint32_t seed;   /* the pattern read, or written */
    uint32_t got;    /* Data-In bytes so far */
    uint32_t datasn; /* the next Data-In's */
    bool done;
};

/* Sends a READ(10) of len bytes at off, or a WRITE(10) of the seed's pattern there (immediate
 * data, len at most FirstBurstLength), without waiting. */
static void bp_send(struct cli *c, struct bp_cmd *k, uint32_t lun, bool write, uint64_t off,
                    uint32_t len, uint32_t seed)
{
    static uint8_t out[65536];
    uint8_t cdb[16] = {write ? 0x2a : 0x28};

    iscsi_put32(cdb + 2, (uint32_t)(off / 512));
    iscsi_put16(cdb + 7, len / 512);
    memset(k, 0, sizeof(*k));
    k->read = !write;
    k->off = off;
    k->len = len;
    k->seed = seed;
    if (write) {
        assert_true(len <= sizeof(out));
        bp_fill(out, off, len, seed);
    }
    k->itt = cli_cmd_send(c, cdb, lun, !write, write, len, write ? out : NULL, write ? len : 0);
}

/*
 * Reads until each of the n commands has its status, checking every PDU: only Data-In and SCSI
 * Responses, each for a command still open; a command's Data-In in order (DataSN 0, 1, ..., each
 * buffer offset where the last one ended, none past the command's length) and carrying exactly
 * its region's pattern; GOOD status with no residual, after all of its data, F set on a Data-In
 * with status; StatSN one more at each status; ExpCmdSN never past the commands sent, and at the
 * last PDU (which comes after every command has arrived) the next CmdSN.
 */
static void bp_drain(struct cli *c, struct bp_cmd *cmds, unsigned n, const char *who)
{
    static uint8_t data[65536 + 8];
    uint8_t bhs[ISCSI_BHS_LEN];
    unsigned left = n;
    uint32_t expcmdsn = 0;

    while (left) {
        uint32_t statsn = c->expstatsn;
        int len = cli_recv(c, bhs, data, sizeof(data));
        if (len < 0)
            fail_msg("%s: connection closed, or nothing for 5-10 s, with %u of %u commands "
                     "unanswered",
                     who, left, n);
        uint8_t op = bhs[0] & 0x3f;
        uint32_t itt = iscsi_get32(bhs + 16);
        expcmdsn = iscsi_get32(bhs + 28);
        if (iscsi_sn_lt(c->cmdsn, expcmdsn))
            fail_msg("%s: ExpCmdSN %u, past the next CmdSN %u", who, expcmdsn, c->cmdsn);
        struct bp_cmd *k = NULL;
        for (unsigned i = 0; i < n && !k; i++)
            if (cmds[i].itt == itt)
                k = &cmds[i];
        if (!k || k->done)
            fail_msg("%s: PDU %02x for ITT %u, which is not open", who, op, itt);
        bool status = true;
        if (op == ISCSI_OP_DATA_IN) {
            uint32_t datasn = iscsi_get32(bhs + 36), off = iscsi_get32(bhs + 40);
            if (!k->read)
                fail_msg("%s: Data-In for the WRITE ITT %u", who, itt);
            if (datasn != k->datasn || off != k->got || (uint32_t)len > k->len - k->got)
                fail_msg("%s: ITT %u: Data-In DataSN %u offset %u length %d after %u bytes in %u "
                         "PDUs (of %u bytes)",
                         who, itt, datasn, off, len, k->got, k->datasn, k->len);
            long bad = bp_mismatch(data, k->off + off, (uint32_t)len, k->seed);
            if (bad >= 0)
                fail_msg("%s: ITT %u: Data-In at offset %u: byte %ld is not its region's "
                         "(disk offset %llu)",
                         who, itt, off, bad, (unsigned long long)(k->off + off + (uint64_t)bad));
            k->got += (uint32_t)len;
            k->datasn++;
            status = bhs[1] & 1;
            if (status && !(bhs[1] & ISCSI_FLAG_FINAL))
                fail_msg("%s: ITT %u: a Data-In with status lacks F", who, itt);
        } else if (op == ISCSI_OP_SCSI_RSP) {
            if (bhs[2] != 0)
                fail_msg("%s: ITT %u: response %02x", who, itt, bhs[2]);
        } else {
            fail_msg("%s: unexpected PDU, opcode %02x", who, op);
        }
        if (!status)
            continue;
        if (iscsi_get32(bhs + 24) != statsn)
            fail_msg("%s: ITT %u: StatSN %u, expected %u", who, itt, iscsi_get32(bhs + 24), statsn);
        if (bhs[3] != 0 || (bhs[1] & 0x06))
            fail_msg("%s: ITT %u: status %02x, flags %02x", who, itt, bhs[3], bhs[1]);
        if (k->read && k->got != k->len)
            fail_msg("%s: ITT %u: status after %u of %u bytes", who, itt, k->got, k->len);
        k->done = true;
        left--;
    }
    if (expcmdsn != c->cmdsn)
        fail_msg("%s: ExpCmdSN %u at the end, expected %u", who, expcmdsn, c->cmdsn);
}

/* One command, sent and answered (checked as bp_drain checks). */
static void bp_do(struct cli *c, uint32_t lun, bool write, uint64_t off, uint32_t len,
                  uint32_t seed, const char *who)
{
    struct bp_cmd k;
    bp_send(c, &k, lun, write, off, len, seed);
    bp_drain(c, &k, 1, who);
}

/* TEST UNIT READY until GOOD (after the unit attention of a new nexus), failing with a reason. */
static void bp_ready(struct cli *c, uint32_t lun, const char *who)
{
    static const uint8_t tur[16] = {0};
    uint8_t bhs[ISCSI_BHS_LEN], data[256];

    for (int i = 0; i < 2; i++) {
        uint32_t itt = cli_cmd_send(c, tur, lun, false, false, 0, NULL, 0);
        int n = cli_recv(c, bhs, data, sizeof(data));
        if (n < 0)
            fail_msg("%s: no answer to TEST UNIT READY", who);
        if ((bhs[0] & 0x3f) != ISCSI_OP_SCSI_RSP || iscsi_get32(bhs + 16) != itt)
            fail_msg("%s: PDU %02x for ITT %u, not the TEST UNIT READY's", who, bhs[0] & 0x3f,
                     iscsi_get32(bhs + 16));
        if (bhs[3] == 0)
            return;
        if (bhs[3] != 2 || n < 2 + 3 || (data[2 + 2] & 0xf) != 6)
            fail_msg("%s: TEST UNIT READY: status %02x", who, bhs[3]);
    }
    fail_msg("%s: TEST UNIT READY: a unit attention again", who);
}

/* A note when the kernel lets the target's send buffer grow past what a test queues for an
 * initiator that does not read: then the target may never have to hold anything back. */
static void bp_note_wmem(uint64_t queued)
{
    long lo, def, max;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");

    if (f && fscanf(f, "%ld %ld %ld", &lo, &def, &max) == 3 && (uint64_t)max + BP_MIB > queued)
        print_message("note: net.ipv4.tcp_wmem lets a send buffer reach %ld bytes, near the %llu "
                      "queued here: the target may not have to hold anything back\n",
                      max, (unsigned long long)queued);
    if (f)
        fclose(f);
}

/* Waits (2 s at most) until the target has sent fd something and no more comes: what it has for
 * fd fills the socket buffers. */
static void bp_wait_stalled(int fd)
{
    int last = -1, now = 0;
    for (int i = 0; i < 200; i++) {
        usleep(10000);
        assert_int_equal(ioctl(fd, FIONREAD, &now), 0);
        if (now > 0 && now == last)
            return;
        last = now;
    }
    fail_msg("the target sent nothing, or kept sending, to an initiator that does not read");
}

/*
 * Several sessions fill their CmdSN window with READs of 256 KiB and stop reading; at least as
 * many as this machine has CPUs (4 to 8), so that a target with one event loop per CPU has one of
 * them on the loop of the session that comes next. That session logs in and does 200 WRITE+READ
 * round trips of 4 KiB, data checked, within a few seconds (a 5 s receive timeout fails it rather
 * than hanging). Then the stalled sessions read: each gets every Data-In and GOOD status of its
 * READs, in order and with the data on the disk, and goes on working.
 */
static void test_stalled_initiator_holds_only_its_own_session(void **state)
{
    enum { MAXS = 8, WINDOW = 64, ROUNDS = 200 };
    static struct cli st[MAXS];
    static struct bp_cmd cmds[MAXS][WINDOW];
    unsigned window[MAXS];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned ns = ncpu < 4 ? 4 : ncpu > MAXS ? MAXS : (unsigned)ncpu;
    char who[64];
    struct cli a;
    struct timespec t0;

    for (unsigned s = 0; s < ns; s++) {
        cli_login_ex(&st[s], BP_IQN, "", 0, BP_RCVBUF);
        bp_timeouts(st[s].fd, 10);
        snprintf(who, sizeof(who), "session %u (%u stalled before it)", s, s);
        bp_ready(&st[s], 0, who);
        /* the window is the target's free task slots: 64 today */
        uint32_t w = st[s].maxcmdsn - st[s].cmdsn + 1;
        assert_true(w >= 16 && w < 0x80000000u);
        window[s] = w < WINDOW ? w : WINDOW;
        for (unsigned i = 0; i < window[s]; i++)
            bp_send(&st[s], &cmds[s][i], 0, false, (uint64_t)((i + 5 * s) % 64) * BP_BIG, BP_BIG,
                    0);
    }
    bp_note_wmem((uint64_t)window[0] * BP_BIG);
    for (unsigned s = 0; s < ns; s++)
        bp_wait_stalled(st[s].fd);

    cli_login(&a, BP_IQN, "", 0);
    bp_timeouts(a.fd, 5);
    bp_ready(&a, 0, "the active session");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned r = 0; r < ROUNDS; r++) {
        uint64_t off = 40 * BP_MIB + (uint64_t)(r % 64) * 4096;
        bp_do(&a, 0, true, off, 4096, r + 1, "the active session's WRITE");
        bp_do(&a, 0, false, off, 4096, r + 1, "the active session's READ");
    }
    double secs = bp_seconds(&t0);
    print_message("%u sessions stalled with %u READs of 256 KiB each: %d round trips of 4 KiB on "
                  "another in %.3f s\n",
                  ns, window[0], ROUNDS, secs);
    assert_true(secs < 5.0);

    for (unsigned s = 0; s < ns; s++) {
        snprintf(who, sizeof(who), "stalled session %u", s);
        bp_drain(&st[s], cmds[s], window[s], who);
        bp_do(&st[s], 0, false, 32768, 4096, 0, who); /* the session goes on */
        close(st[s].fd);
    }
    close(a.fd);
}

/*
 * One session stops reading with more than the socket buffers hold answered (31 READs of 256 KiB)
 * and a READ of 64 KiB behind them, then sends more commands without reading: READs of other
 * regions and WRITEs with data of their own. A target that gave a task slot whose buffer still
 * backs queued Data-In to one of these would send the new command's bytes in the old one's
 * Data-In. Each Data-In must carry exactly its own region, and each WRITE's data must be on the
 * disk afterwards.
 */
static void test_backpressure_keeps_each_data_in_its_own_buffer(void **state)
{
    enum { BIG = 31, LATER = 24, N = 1 + BIG + LATER };
    static struct bp_cmd cmds[N];
    unsigned n = 0, reads = 0, writes = 0;
    struct cli c;

    cli_login_ex(&c, BP_IQN, "", 0, BP_RCVBUF);
    bp_timeouts(c.fd, 10);
    bp_ready(&c, 0, "the session");
    assert_true(c.maxcmdsn - c.cmdsn + 1 >= N);
    /* 7.75 MiB of READs, then the one of 64 KiB, whose Data-In is queued last */
    for (unsigned i = 0; i < BIG; i++)
        bp_send(&c, &cmds[n++], 0, false, 17 * BP_MIB + (uint64_t)i * BP_BIG, BP_BIG, 0);
    bp_send(&c, &cmds[n++], 0, false, 16 * BP_MIB, 65536, 0);
    bp_note_wmem((uint64_t)BIG * BP_BIG);
    bp_wait_stalled(c.fd);
    /* every third a WRITE of 4 KiB at 48 MiB (seeds 0x100...), the others READs of 64 KiB of
     * [25 MiB, 26 MiB) */
    for (unsigned i = 0; i < LATER; i++) {
        if (i % 3 == 1)
            bp_send(&c, &cmds[n++], 0, true, 48 * BP_MIB + writes * 4096, 4096, 0x100 + writes),
                writes++;
        else
            bp_send(&c, &cmds[n++], 0, false, 25 * BP_MIB + reads++ * 65536, 65536, 0);
    }
    bp_drain(&c, cmds, n, "the stalled session");
    for (unsigned i = 0; i < writes; i++)
        bp_do(&c, 0, false, 48 * BP_MIB + i * 4096, 4096, 0x100 + i, "reading back a WRITE");
    close(c.fd);
}

/* Closed by the peer within 5 s (end of file or reset), reading whatever was still queued. */
static bool bp_closed(int fd)
{
    static uint8_t sink[65536];
    bp_timeouts(fd, 5);
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/*
 * iscsi_target_stop returns within 10 s, and closes every connection, while one session is
 * stalled with 8 MiB of Data-In queued, another has READs down the stack (held by the miniport
 * of LUN 1), a WRITE waiting for the data its R2T asked for and half a Data-Out received, a third
 * connection has sent half a Login Request, and a fourth nothing at all; storstack_destroy then
 * returns within 10 s as well.
 */
static void test_target_stops_with_a_stalled_session_and_commands_in_flight(void **state)
{
    enum { BIG = 32, HELD = 4 };
    static struct bp_cmd cmds[BIG], held[HELD], w;
    uint8_t bhs[ISCSI_BHS_LEN], data[256];
    struct cli s, t;
    struct timespec t0;

    cli_login_ex(&s, BP_IQN, "", 0, BP_RCVBUF);
    bp_ready(&s, 0, "the session about to stall");
    for (unsigned i = 0; i < BIG; i++)
        bp_send(&s, &cmds[i], 0, false, (uint64_t)i * BP_BIG, BP_BIG, 0);
    bp_wait_stalled(s.fd);

    cli_login(&t, BP_IQN, "", 0);
    bp_ready(&t, 0, "the busy session");
    bp_ready(&t, 1, "the busy session");
    for (unsigned i = 0; i < HELD; i++)
        bp_send(&t, &held[i], 1, false, (uint64_t)i * 4096, 4096, 0);
    /* a WRITE of 64 KiB with 4 KiB of immediate data: an R2T asks for the rest */
    uint8_t wr[16] = {0x2a, 0, 0, 0, 0x10, 0, 0, 0, 128};
    static uint8_t imm[4096];
    w.itt = cli_cmd_send(&t, wr, 0, false, true, 65536, imm, sizeof(imm));
    bp_timeouts(t.fd, 1);
    assert_int_equal(cli_recv(&t, bhs, data, sizeof(data)), 0);
    assert_int_equal(bhs[0] & 0x3f, ISCSI_OP_R2T);
    assert_int_equal(iscsi_get32(bhs + 16), w.itt);
    uint32_t ttt = iscsi_get32(bhs + 20);
    /* nothing else comes: the READs of LUN 1 are down the stack */
    struct timeval short_wait = {.tv_usec = 300000};
    setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof(short_wait));
    ssize_t got = recv(t.fd, bhs, sizeof(bhs), 0);
    if (got >= 0)
        fail_msg("LUN 1 answered (%zd bytes): its READs should be held down the stack", got);
    /* half of the Data-Out the R2T asked for */
    iscsi_bhs_init(bhs, ISCSI_OP_DATA_OUT, ISCSI_FLAG_FINAL, 65536 - 4096, w.itt);
    iscsi_put32(bhs + 20, ttt);
    iscsi_put32(bhs + 40, 4096);
    assert_int_equal(send(t.fd, bhs, 24, MSG_NOSIGNAL), 24);

    int login = cli_connect(), idle = cli_connect();
    iscsi_bhs_init(bhs, ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ, 0, 0, 1);
    assert_int_equal(send(login, bhs, 20, MSG_NOSIGNAL), 20);
    usleep(100000); /* the target has taken both connections */

    clock_gettime(CLOCK_MONOTONIC, &t0);
    iscsi_target_stop(bp_target);
    bp_target = NULL;
    double stop = bp_seconds(&t0);
    print_message("iscsi_target_stop: %.3f s\n", stop);
    assert_true(stop < 10.0);
    assert_true(bp_closed(t.fd));
    assert_true(bp_closed(login));
    assert_true(bp_closed(idle));
    assert_true(bp_closed(s.fd));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    storstack_destroy(bp_stack);
    bp_stack = NULL;
    double destroy = bp_seconds(&t0);
    print_message("storstack_destroy: %.3f s\n", destroy);
    assert_true(destroy < 10.0);
    close(s.fd);
    close(t.fd);
    close(login);
    close(idle);
}

/* The target the stack's registry configures, on an ephemeral port of 127.0.0.1: 0 or -1. */
static int start_target(storstack_t *s, struct iscsi_target **out)
{
    static struct iscsi_target_config cfg;
    char err[256], portal[64];

    iscsi_config_default(&cfg);
    if (iscsi_config_from_registry(s, &cfg, portal, sizeof(portal), err, sizeof(err))) {
        fprintf(stderr, "configuration: %s\n", err);
        return -1;
    }
    cfg.portal = "127.0.0.1:0";
    if (iscsi_target_start(s, &cfg, out, err, sizeof(err))) {
        fprintf(stderr, "cannot start the target: %s\n", err);
        return -1;
    }
    return 0;
}

static int bp_setup(void **state)
{
    char err[256];
    storstack_handle_t *h;
    uint32_t done = 0;

    bp_stack = storstack_create_ex(NULL, bp_config, NULL, 0, err, sizeof(err));
    if (!bp_stack) {
        fprintf(stderr, "cannot boot: %s\n", err);
        return -1;
    }
    /* the pattern, written through the stack rather than the target */
    if (storstack_open(bp_stack, "PhysicalDrive0", STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE,
                       &h) != STATUS_SUCCESS) {
        fprintf(stderr, "cannot open PhysicalDrive0\n");
        return -1;
    }
    uint8_t *buf = malloc(BP_BIG);
    storstack_status_t st = STATUS_SUCCESS;
    for (uint64_t off = 0; buf && off < BP_FILLED && st == STATUS_SUCCESS; off += BP_BIG) {
        bp_fill(buf, off, BP_BIG, 0);
        st = storstack_write(h, buf, BP_BIG, off, &done);
        if (st == STATUS_SUCCESS && done != BP_BIG)
            st = STATUS_UNSUCCESSFUL;
    }
    free(buf);
    storstack_close(h);
    if (!buf || st != STATUS_SUCCESS) {
        fprintf(stderr, "cannot write the pattern: %08x\n", (unsigned)st);
        return -1;
    }
    if (start_target(bp_stack, &bp_target))
        return -1;
    bp_saved_port = port;
    port = iscsi_target_port(bp_target);
    return 0;
}

static int bp_teardown(void **state)
{
    iscsi_target_stop(bp_target);
    bp_target = NULL;
    if (bp_stack)
        storstack_destroy(bp_stack);
    bp_stack = NULL;
    port = bp_saved_port;
    return 0;
}

static int setup(void **state)
{
    char err[256];

    stack = storstack_create_ex(NULL, config, NULL, 0, err, sizeof(err));
    if (!stack) {
        fprintf(stderr, "cannot boot: %s\n", err);
        return -1;
    }
    if (start_target(stack, &target))
        return -1;
    port = iscsi_target_port(target);
    return 0;
}

static int teardown(void **state)
{
    iscsi_target_stop(target);
    storstack_destroy(stack);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_luns_map_and_chap_target_reaches_the_same_disk),
        cmocka_unit_test(test_commands_in_flight_across_sessions_and_abort_task),
        cmocka_unit_test(test_lun_reset_with_commands_in_flight),
        cmocka_unit_test(test_datasn_error_ends_the_command_not_the_connection),
        cmocka_unit_test(test_crc32c_digests_on_the_wire),
        cmocka_unit_test(test_target_pings_and_drops_a_silent_initiator),
        cmocka_unit_test(test_discovery_lists_targets_and_idle_sessions_are_small),
        cmocka_unit_test(test_registry_values_are_checked),
        cmocka_unit_test_setup_teardown(test_stalled_initiator_holds_only_its_own_session, bp_setup,
                                        bp_teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_keeps_each_data_in_its_own_buffer,
                                        bp_setup, bp_teardown),
        cmocka_unit_test_setup_teardown(
            test_target_stops_with_a_stalled_session_and_commands_in_flight, bp_setup, bp_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
