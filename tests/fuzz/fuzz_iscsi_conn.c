/*
 * libFuzzer target for the iSCSI target's whole connection path (frontends/iscsi conn.c,
 * session.c, portal.c): outside bytes over a real loopback TCP connection to a target running in
 * this process on its epoll loops, against a stack booted once: LUN 0 a 4 MiB RAM disk, LUN 1 a
 * 4 MiB file (io_uring, completions on another thread), unlinked once open.
 *
 * Input: one flag byte, then the bytes the "initiator" sends.
 *   bit 0  raw: every byte from the first Login Request on is the input's (fuzzes login); else
 *          the harness logs in first (Normal session to the default target, InitiatorName and
 *          MaxRecvDataSegmentLength=8192, CmdSN 1, ExpStatSN 1 after it) and the input follows
 *   bit 1  with the harness login: HeaderDigest=DataDigest=CRC32C negotiated
 *   bit 2  with digests: the harness frames the input as PDUs (by their headers' lengths) and
 *          puts correct digests after each, so inputs reach past the digest checks
 *   bit 3  with framing: the last PDU's data digest is wrong; without: a small receive buffer
 *          and a 1 ms pause before reading, so the target's sends stop short (back-pressure)
 *   bits 4-5  the input goes in 1 + n pieces ...
 *   bits 6-7  ... of 7, 20, 100 or 1000 bytes (the rest in the last), a pause between pieces so
 *          that the target sees PDUs cut where they were cut
 * Then the write side is shut down, and everything the target sends is read until it closes.
 * An idle second session stays logged in alongside (again after a TARGET COLD RESET).
 *
 * Findings (abort): a crash or sanitizer report in the target; no byte and no close from the
 * target for FUZZ_HANG_MS; a response that is not well-formed: an opcode a target does not send
 * (or anything but a Login Response before full feature phase), an AHS, a data segment over the
 * initiator's MaxRecvDataSegmentLength (8192 during login; after it the largest value the input
 * could have declared), non-zero padding, a header or data digest that does not match when
 * digests were negotiated (as the target's own Login Responses said), a StatSN that is not the
 * last one's successor on a PDU that carries status, a CmdSN window below empty. A PDU cut at the
 * very end is the target closing in the middle of a send, allowed at ERL 0. Sends in non-blocking
 * pieces while reading, so a large input and a large response never deadlock.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "api/local.h"
#include "frontends/iscsi/iscsi.h"
#include "frontends/iscsi/pdu.h"

#define FUZZ_HANG_MS    5000
#define FUZZ_PAUSE_NS   200000 /* between pieces: time for the target's loop to take one */
#define FUZZ_INIT_MRDSL 8192u
#define FUZZ_IQN        "iqn.2026-11.org.storstack:default"

enum {
    FLAG_RAW = 0x01,
    FLAG_DIGESTS = 0x02,
    FLAG_FRAME = 0x04,
    FLAG_BAD_DD = 0x08,    /* with FLAG_FRAME */
    FLAG_SLOW_READ = 0x08, /* without */
};

/* LUN 0: a RAM disk, completing inline on the connection's loop; LUN 1: a file (io_uring),
 * completing on another thread (the cross-thread completions, and teardown waiting for them). */
static const char fuzz_config[] =
    "[Enum\\Root\\VMINIPORT\\0000]\n"
    "HardwareID = multi:ROOT\\VMINIPORT\n"
    "DeviceDesc = fuzz adapter\n"
    "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
    "Type = disk\n"
    "Backend = ram\n"
    "Size = 4M\n"
    "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun1]\n"
    "Type = disk\n"
    "Backend = file\n"
    "Path = %s\n"
    "Size = 4M\n";

static uint16_t fuzz_port;
static bool fuzz_verbose; /* FUZZ_ISCSI_CONN_VERBOSE set: each PDU received goes to stderr */
static uint32_t crc_table[256];

/* CRC32C (Castagnoli, reflected), written here rather than taken from auth.c, so that a wrong
 * digest on the target's side is not agreed with by the same code. */
static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const uint8_t *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    while (len--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* The digest as it goes on the wire (RFC 7143 13.1: the CRC's low byte first). */
static void put_digest(uint8_t out[4], uint32_t crc)
{
    out[0] = (uint8_t)crc;
    out[1] = (uint8_t)(crc >> 8);
    out[2] = (uint8_t)(crc >> 16);
    out[3] = (uint8_t)(crc >> 24);
}

static bool digest_ok(const uint8_t *p, size_t len, const uint8_t want[4])
{
    uint8_t d[4];
    put_digest(d, crc32c(p, len));
    return memcmp(d, want, 4) == 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_iscsi_conn: %s\n", what);
    abort();
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void boot(void)
{
    static struct iscsi_target_config cfg = {.portal = "127.0.0.1:0"}; /* no pings, no CHAP */
    static char dir[] = "/tmp/fuzz_iscsi_conn.XXXXXX";
    struct iscsi_target *target;
    char err[512], path[64], config[sizeof(fuzz_config) + 64];

    fuzz_verbose = getenv("FUZZ_ISCSI_CONN_VERBOSE") != NULL;
    crc32c_init();
    if (crc32c((const uint8_t *)"123456789", 9) != 0xe3069283u)
        fail("CRC32C self-check");
    if (!mkdtemp(dir))
        fail("mkdtemp");
    snprintf(path, sizeof(path), "%s/lun1.img", dir);
    snprintf(config, sizeof(config), fuzz_config, path);
    storstack_t *stack = storstack_create_ex(NULL, config, NULL, 0, err, sizeof(err));
    if (!stack) {
        fprintf(stderr, "cannot boot: %s\n", err);
        abort();
    }
    /* The image stays open; its name and directory need not (a metadata blob beside it, as
     * PERSISTENT RESERVE OUT with APTPL stores, then fails: an error path worth reaching). */
    unlink(path);
    rmdir(dir);
    cfg.ntargets = 1;
    snprintf(cfg.targets[0].iqn, sizeof(cfg.targets[0].iqn), "%s", FUZZ_IQN);
    cfg.targets[0].nluns = 2;
    cfg.targets[0].luns[0] = (struct iscsi_lun_def){.lun = 0, .device = "PhysicalDrive0"};
    cfg.targets[0].luns[1] = (struct iscsi_lun_def){.lun = 1, .device = "PhysicalDrive1"};
    if (iscsi_target_start(stack, &cfg, &target, err, sizeof(err))) {
        fprintf(stderr, "cannot start the target: %s\n", err);
        abort();
    }
    fuzz_port = iscsi_target_port(target);
    /* The stack and the target live as long as the process. */
}

/* ---- the checks on what the target sends ------------------------------------------------ */

struct checker {
    uint8_t *buf;
    size_t len, cap;
    bool full;            /* past the last Login Response */
    bool hd, dd;          /* digests in force */
    bool ans_hd, ans_dd;  /* as the Login Responses so far answered them */
    uint32_t limit_after; /* MaxRecvDataSegmentLength bound for full feature phase */
    unsigned login_ok;    /* Login Responses that took the connection to full feature phase */
    bool have_statsn;
    uint32_t statsn; /* of the last PDU that carried status */
};

/* A PDU that carries status and so takes the next StatSN (RFC 7143 4.2.2.2): every response but
 * Data-In without status, R2T, Async Message and a target ping (NOP-In with the reserved ITT). */
static bool carries_status(const struct iscsi_pdu *p)
{
    switch (p->opcode) {
    case ISCSI_OP_DATA_IN:
        return (p->bhs[1] & ISCSI_DATA_IN_STATUS) != 0;
    case ISCSI_OP_NOP_IN:
        return p->itt != ISCSI_RESERVED_TAG;
    case ISCSI_OP_R2T:
    case ISCSI_OP_ASYNC_MSG:
        return false;
    default:
        return true;
    }
}

/* A digest key's answer in a Login Response's text. */
static void note_digest_answers(struct checker *k, const uint8_t *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *pair = text + pos;
        size_t n = strnlen((const char *)pair, len - pos);
        if (n == 19 && memcmp(pair, "HeaderDigest=CRC32C", 19) == 0)
            k->ans_hd = true;
        else if (n == 17 && memcmp(pair, "HeaderDigest=None", 17) == 0)
            k->ans_hd = false;
        else if (n == 17 && memcmp(pair, "DataDigest=CRC32C", 17) == 0)
            k->ans_dd = true;
        else if (n == 15 && memcmp(pair, "DataDigest=None", 15) == 0)
            k->ans_dd = false;
        pos += n + 1;
    }
}

/* Checks every whole PDU in k->buf and drops it; returns the PDUs checked. */
static unsigned check_pdus(struct checker *k)
{
    unsigned count = 0;
    size_t off = 0;

    while (k->len - off >= ISCSI_BHS_LEN) {
        const uint8_t *bhs = k->buf + off;
        uint32_t limit = k->full ? k->limit_after : ISCSI_LOGIN_MAX_DSL;
        struct iscsi_pdu p;
        int rc = iscsi_pdu_parse(bhs, limit, &p);
        char msg[160];

        if (rc == -EMSGSIZE) {
            snprintf(msg, sizeof(msg),
                     "opcode %02xh with a %u-byte data segment, over MaxRecvDataSegmentLength %u",
                     p.opcode, p.data_len, limit);
            fail(msg);
        }
        switch (p.opcode) {
        case ISCSI_OP_NOP_IN:
        case ISCSI_OP_SCSI_RSP:
        case ISCSI_OP_TMF_RSP:
        case ISCSI_OP_LOGIN_RSP:
        case ISCSI_OP_TEXT_RSP:
        case ISCSI_OP_DATA_IN:
        case ISCSI_OP_LOGOUT_RSP:
        case ISCSI_OP_R2T:
        case ISCSI_OP_ASYNC_MSG:
        case ISCSI_OP_REJECT:
            break;
        default:
            snprintf(msg, sizeof(msg), "byte 0 %02xh: not a target opcode", bhs[0]);
            fail(msg);
        }
        if (bhs[0] & 0xc0)
            fail("reserved bits of byte 0 set in a target PDU");
        if (!k->full && p.opcode != ISCSI_OP_LOGIN_RSP)
            fail("a PDU other than a Login Response before full feature phase");
        if (k->full && p.opcode == ISCSI_OP_LOGIN_RSP)
            fail("a Login Response in full feature phase");
        if (p.ahs_len)
            fail("an AHS in a target PDU");
        uint32_t hd = k->hd ? 4 : 0, pad = iscsi_pad4(p.data_len);
        uint32_t dd = k->dd && p.data_len ? 4 : 0;
        size_t total = ISCSI_BHS_LEN + hd + p.data_len + pad + dd;
        if (k->len - off < total)
            break;
        if (hd && !digest_ok(bhs, ISCSI_BHS_LEN, bhs + ISCSI_BHS_LEN)) {
            snprintf(msg, sizeof(msg), "opcode %02xh: wrong header digest", p.opcode);
            fail(msg);
        }
        const uint8_t *data = bhs + ISCSI_BHS_LEN + hd;
        for (uint32_t i = 0; i < pad; i++)
            if (data[p.data_len + i])
                fail("non-zero padding");
        if (dd && !digest_ok(data, p.data_len + pad, data + p.data_len + pad)) {
            snprintf(msg, sizeof(msg), "opcode %02xh: wrong data digest over %u bytes", p.opcode,
                     p.data_len);
            fail(msg);
        }
        if (fuzz_verbose)
            fprintf(stderr, "  <- %02x %02x %02x %02x itt %08x dsl %u sn %u\n", bhs[0], bhs[1],
                    bhs[2], bhs[3], p.itt, p.data_len, iscsi_get32(bhs + ISCSI_OFF_CMDSN));
        if (carries_status(&p)) {
            uint32_t sn = iscsi_get32(bhs + ISCSI_OFF_CMDSN);
            uint32_t exp = iscsi_get32(bhs + ISCSI_OFF_EXPSTATSN);
            uint32_t max = iscsi_get32(bhs + ISCSI_OFF_MAXCMDSN);
            if (k->have_statsn && sn != k->statsn + 1) {
                snprintf(msg, sizeof(msg), "opcode %02xh: StatSN %u after %u", p.opcode, sn,
                         k->statsn);
                fail(msg);
            }
            k->have_statsn = true;
            k->statsn = sn;
            /* 4.2.2.1: MaxCmdSN - ExpCmdSN + 1 is a window of 0 .. 2^31 - 1 commands */
            if (p.opcode != ISCSI_OP_LOGIN_RSP && (int32_t)(max - exp + 1) < 0) {
                snprintf(msg, sizeof(msg), "opcode %02xh: ExpCmdSN %u, MaxCmdSN %u", p.opcode, exp,
                         max);
                fail(msg);
            }
        }
        if (p.opcode == ISCSI_OP_LOGIN_RSP) {
            note_digest_answers(k, data, p.data_len);
            /* T=1, NSG=3 and Status-Class 0: full feature phase, digests from the next PDU */
            if ((bhs[1] & ISCSI_LOGIN_TRANSIT) && ISCSI_LOGIN_NSG(bhs[1]) == 3 && bhs[36] == 0) {
                k->full = true;
                k->hd = k->ans_hd;
                k->dd = k->ans_dd;
                k->login_ok++;
            }
        }
        off += total;
        count++;
    }
    memmove(k->buf, k->buf + off, k->len - off);
    k->len -= off;
    return count;
}

/* ---- the connection --------------------------------------------------------------------- */

static int connect_target(bool small_rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(fuzz_port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rcvbuf = 4096;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* before connect, so the window is small from the start */
    if (fd >= 0 && small_rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
        fail("cannot connect to the target");
    return fd;
}

/* Reads what has arrived into the checker: false when the target closed (or reset). */
static bool read_some(int fd, struct checker *k, int64_t *last)
{
    for (;;) {
        if (k->cap - k->len < 65536) {
            k->cap = k->cap * 2 + 65536;
            k->buf = realloc(k->buf, k->cap);
            if (!k->buf)
                fail("out of memory");
        }
        ssize_t n = recv(fd, k->buf + k->len, k->cap - k->len, MSG_DONTWAIT);
        if (n > 0) {
            k->len += (size_t)n;
            *last = now_ns();
            check_pdus(k);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        return false; /* 0: closed; ECONNRESET and the like: gone */
    }
}

/* Sends out[0..len) in pieces of piece bytes (npieces - 1 of them, the rest in the last) while
 * reading, then shuts the write side down and reads until the target closes. */
static void exchange(int fd, struct checker *k, const uint8_t *out, size_t len, unsigned npieces,
                     size_t piece, bool slow_read)
{
    size_t sent = 0, piece_end = npieces > 1 && piece < len ? piece : len;
    unsigned pieces_left = npieces;
    int64_t last = now_ns(), next_send = 0;
    bool wr_open = true, open = true;

    if (!len) {
        shutdown(fd, SHUT_WR);
        wr_open = false;
    }
    while (open) {
        int64_t now = now_ns();
        bool may_send = wr_open && now >= next_send;
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (may_send ? POLLOUT : 0)};
        int64_t wait = wr_open && !may_send ? next_send - now : (int64_t)FUZZ_HANG_MS * 1000000;
        struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};

        if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
            fail("poll");
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            open = read_some(fd, k, &last);
        if (open && (pfd.revents & POLLOUT) && wr_open) {
            ssize_t n = send(fd, out + sent, piece_end - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t)n;
                last = now_ns();
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                sent = len; /* the target is gone: read what it said */
                piece_end = len;
            }
            if (sent == piece_end) {
                if (--pieces_left > 1 && len - sent > piece)
                    piece_end = sent + piece;
                else
                    piece_end = len;
                next_send = now_ns() + FUZZ_PAUSE_NS;
            }
            if (sent == len) {
                shutdown(fd, SHUT_WR);
                wr_open = false;
                if (slow_read) /* let the target's sends fill the window and stop short */
                    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
            }
        }
        if (open && now_ns() - last > (int64_t)FUZZ_HANG_MS * 1000000)
            fail(wr_open ? "hang: the target takes no more bytes and sends none"
                         : "hang: the target neither answers nor closes the connection");
    }
}

/* The harness's login to full feature phase, as one Login Request (operational stage). */
static void harness_login(int fd, struct checker *k, bool digests, uint8_t isid)
{
    static const char text_none[] = "InitiatorName=iqn.2026-11.org.storstack:fuzz\0"
                                    "TargetName=" FUZZ_IQN "\0SessionType=Normal\0"
                                    "HeaderDigest=None\0DataDigest=None\0"
                                    "MaxRecvDataSegmentLength=8192\0FirstBurstLength=16384\0"
                                    "MaxBurstLength=65536\0ImmediateData=Yes\0InitialR2T=No\0"
                                    "ErrorRecoveryLevel=0\0MaxConnections=1\0";
    static const char text_crc[] = "InitiatorName=iqn.2026-11.org.storstack:fuzz\0"
                                   "TargetName=" FUZZ_IQN "\0SessionType=Normal\0"
                                   "HeaderDigest=CRC32C\0DataDigest=CRC32C\0"
                                   "MaxRecvDataSegmentLength=8192\0FirstBurstLength=16384\0"
                                   "MaxBurstLength=65536\0ImmediateData=Yes\0InitialR2T=No\0"
                                   "ErrorRecoveryLevel=0\0MaxConnections=1\0";
    const char *text = digests ? text_crc : text_none;
    size_t tlen = digests ? sizeof(text_crc) - 1 : sizeof(text_none) - 1;
    uint8_t pdu[ISCSI_BHS_LEN + 512];
    int64_t last = now_ns();

    iscsi_bhs_init(pdu, ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ, ISCSI_LOGIN_TRANSIT | 1 << 2 | 3,
                   (uint32_t)tlen, 1);
    pdu[8] = 0x80; /* ISID: random format */
    pdu[13] = isid;
    iscsi_put32(pdu + ISCSI_OFF_CMDSN, 1);
    iscsi_put32(pdu + ISCSI_OFF_EXPSTATSN, 0);
    memcpy(pdu + ISCSI_BHS_LEN, text, tlen);
    memset(pdu + ISCSI_BHS_LEN + tlen, 0, iscsi_pad4((uint32_t)tlen));
    size_t len = ISCSI_BHS_LEN + tlen + iscsi_pad4((uint32_t)tlen);
    if (send(fd, pdu, len, MSG_NOSIGNAL) != (ssize_t)len)
        fail("cannot send the harness's login");
    while (!k->login_ok) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, FUZZ_HANG_MS) == 0)
            fail("hang: no Login Response to the harness's login");
        if (!read_some(fd, k, &last) && !k->login_ok)
            fail("the target refused the harness's login");
    }
    if (k->len)
        fail("a PDU after the Login Response before any request");
    if (k->hd != digests || k->dd != digests)
        fail("the digests the harness asked for were not agreed");
}

/*
 * A second session, idle, kept across inputs and logged in again before an input once it has
 * ended: the input's session is never alone, so a TARGET COLD RESET has another connection to
 * close (iscsi_conn_drop_target, from another loop) and resets have another nexus to reach.
 */
static void background_session(void)
{
    static int bg_fd = -1;

    if (bg_fd >= 0) {
        struct pollfd pfd = {.fd = bg_fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) == 0)
            return;   /* up, and nothing said */
        close(bg_fd); /* closed (or it spoke, which an idle session never has reason to) */
    }
    struct checker k = {0};
    bg_fd = connect_target(false);
    harness_login(bg_fd, &k, false, 0x2b);
    free(k.buf);
}

/* ---- the input -------------------------------------------------------------------------- */

/* The largest MaxRecvDataSegmentLength=<n> in p[0..len) (decimal, or hex with 0x; within the
 * 24-bit range a target accepts), or best if none is larger. */
static uint32_t scan_mrdsl(const uint8_t *p, size_t len, uint32_t best)
{
    static const char key[] = "MaxRecvDataSegmentLength=";
    const size_t klen = sizeof(key) - 1;

    for (const uint8_t *q = p; len >= klen && (q = memmem(q, len - (size_t)(q - p), key, klen));
         q += klen) {
        const uint8_t *v = q + klen, *end = p + len;
        uint64_t n = 0;
        bool hex = end - v > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
        if (hex)
            v += 2;
        for (; v < end && n <= ISCSI_MAX_DSL; v++) {
            int d = *v >= '0' && *v <= '9'          ? *v - '0'
                    : hex && *v >= 'a' && *v <= 'f' ? *v - 'a' + 10
                    : hex && *v >= 'A' && *v <= 'F' ? *v - 'A' + 10
                                                    : -1;
            if (d < 0)
                break;
            n = n * (hex ? 16 : 10) + (uint64_t)d;
        }
        if (n <= ISCSI_MAX_DSL && n > best)
            best = (uint32_t)n;
    }
    return best;
}

/*
 * The largest MaxRecvDataSegmentLength the input could have declared (in a Login or a Text
 * Request), at least the harness's 8192: the bound for the target's data segments in full
 * feature phase. Anywhere in the input as it is, and in the text of its leading Login Requests
 * joined (login text under the C bit is gathered across PDUs, so a key may straddle a header).
 */
static uint32_t declared_mrdsl(const uint8_t *in, size_t len)
{
    uint32_t best = scan_mrdsl(in, len, FUZZ_INIT_MRDSL);
    uint8_t *text = malloc(len ? len : 1);
    size_t i = 0, tlen = 0;

    if (!text)
        fail("out of memory");
    while (len - i >= ISCSI_BHS_LEN && (in[i] & ISCSI_BHS_OPCODE) == ISCSI_OP_LOGIN_REQ) {
        size_t head = ISCSI_BHS_LEN + (size_t)in[i + ISCSI_OFF_AHS_LEN] * 4;
        uint32_t dlen = iscsi_get24(in + i + ISCSI_OFF_DSL);
        if (len - i < head)
            break;
        size_t take = len - i - head < dlen ? len - i - head : dlen;
        memcpy(text + tlen, in + i + head, take);
        tlen += take;
        i += head + dlen + iscsi_pad4(dlen);
        if (i > len)
            break;
    }
    best = scan_mrdsl(text, tlen, best);
    free(text);
    return best;
}

/* The input as PDUs by their headers' lengths, each followed by correct digests (the last one's
 * data digest wrong when bad_dd); a PDU the input cuts short goes as it is. */
static uint8_t *frame_with_digests(const uint8_t *in, size_t len, bool bad_dd, size_t *out_len)
{
    uint8_t *out = malloc(len + (len / ISCSI_BHS_LEN + 1) * 8 + 8);
    size_t o = 0, i = 0, last_dd = SIZE_MAX;

    if (!out)
        fail("out of memory");
    while (len - i >= ISCSI_BHS_LEN) {
        const uint8_t *bhs = in + i;
        size_t head = ISCSI_BHS_LEN + (size_t)bhs[ISCSI_OFF_AHS_LEN] * 4;
        uint32_t dlen = iscsi_get24(bhs + ISCSI_OFF_DSL);
        size_t data = (size_t)dlen + iscsi_pad4(dlen);
        if (len - i < head + data)
            break;
        memcpy(out + o, in + i, head);
        put_digest(out + o + head, crc32c(in + i, head));
        o += head + 4;
        i += head;
        memcpy(out + o, in + i, data);
        o += data;
        if (dlen) {
            put_digest(out + o, crc32c(in + i, data));
            last_dd = o;
            o += 4;
        }
        i += data;
    }
    memcpy(out + o, in + i, len - i);
    o += len - i;
    if (bad_dd && last_dd != SIZE_MAX)
        out[last_dd] ^= 0x5a;
    *out_len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t piece_sizes[4] = {7, 20, 100, 1000};
    static bool booted;
    struct checker k = {0};

    if (!booted) {
        boot();
        booted = true;
    }
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    const uint8_t *in = data + 1;
    size_t len = size - 1, out_len = len;
    bool raw = flags & FLAG_RAW, digests = !raw && (flags & FLAG_DIGESTS);
    bool frame = digests && (flags & FLAG_FRAME), slow_read = !frame && (flags & FLAG_SLOW_READ);
    uint8_t *framed = NULL;
    const uint8_t *out = in;

    background_session();
    k.limit_after = declared_mrdsl(in, len);
    int fd = connect_target(slow_read);
    if (!raw)
        harness_login(fd, &k, digests, 0x2a);
    if (frame)
        out = framed = frame_with_digests(in, len, flags & FLAG_BAD_DD, &out_len);
    exchange(fd, &k, out, out_len, 1 + ((flags >> 4) & 3), piece_sizes[flags >> 6], slow_read);
    close(fd);
    free(framed);
    free(k.buf);
    return 0;
}
