/*
 * SCSI pass-through through the whole stack, on the disk (PhysicalDrive0, forwarded by the class
 * driver to the unit's PDO) and on the adapter (Scsi0:, addressed by PathId/TargetId/Lun), with
 * IOCTL_SCSI_PASS_THROUGH (data and sense in the caller's one buffer) and
 * IOCTL_SCSI_PASS_THROUGH_DIRECT (data in the caller's own buffer): INQUIRY, READ CAPACITY and a
 * WRITE/READ(10) data round trip; every unsupported opcode and a set of bad CDB fields come back
 * as CHECK CONDITION with the exact sense key, ASC/ASCQ and field pointer (devices/README.md) in
 * the caller's sense buffer while the IOCTL itself succeeds; malformed requests (short input,
 * wrong Length, bad CdbLength or DataIn, data or sense outside the buffers or overlapping,
 * transfers over the adapter's maximum, DIRECT with no buffer) fail with an error status and
 * never touch memory they do not own (ASan runs these); and an address with no device is
 * STATUS_DEVICE_DOES_NOT_EXIST. Requests that could reach wild memory run in a child process so
 * a crash is reported as a failure, not as the end of the test program.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

#define CAPACITY_BLOCKS (1024ull * MIB / 512)
#define MAX_TRANSFER    (256u * KIB)

struct pt_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    storstack_handle_t *port;
};

static int setup(void **state)
{
    struct pt_fixture *f = calloc(1, sizeof(*f));
    f->stack = integ_boot(NULL);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->port = integ_open(f->stack, "Scsi0:", INTEG_RW);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct pt_fixture *f = *state;
    storstack_close(f->disk);
    storstack_close(f->port);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

/* The four ways in: disk or port handle, buffered or direct. */
struct way {
    const char *name;
    int port;
    int direct;
};
static const struct way ways[] = {
    {"PhysicalDrive0 buffered", 0, 0},
    {"PhysicalDrive0 direct", 0, 1},
    {"Scsi0: buffered", 1, 0},
    {"Scsi0: direct", 1, 1},
};

static storstack_handle_t *way_handle(struct pt_fixture *f, const struct way *w)
{
    return w->port ? f->port : f->disk;
}

static void expect_good(const struct integ_spt *r, const char *what)
{
    if (r->status != STATUS_SUCCESS || r->scsi_status != 0)
        fail_msg("%s: IOCTL %s, ScsiStatus %02Xh, sense %Xh/%02Xh/%02Xh", what,
                 storstack_status_name(r->status), r->scsi_status, r->sense[2] & 0x0F, r->sense[12],
                 r->sense[13]);
}

static void test_inquiry_and_read_capacity_through_every_path(void **state)
{
    struct pt_fixture *f = *state;
    for (size_t i = 0; i < 4; i++) {
        const struct way *w = &ways[i];
        uint8_t cdb[6] = {0x12, 0, 0, 0, 96, 0}, inq[96];
        struct integ_spt r;
        memset(inq, 0xCC, sizeof(inq));
        integ_pass_through(way_handle(f, w), w->direct, 0, 0, cdb, 6, INTEG_DATA_IN, inq,
                           sizeof(inq), &r);
        expect_good(&r, w->name);
        assert_int_equal(inq[0] & 0x1F, 0); /* direct-access block device */
        assert_memory_equal(inq + 8, "STORSTAK", 8);
        assert_memory_equal(inq + 16, "VIRTUAL DISK", 12);
        assert_true(r.transferred >= 36 && r.transferred <= 96);
        assert_int_equal(r.sense_len, 0);

        uint8_t rc10[10] = {0x25}, cap[8];
        integ_pass_through(way_handle(f, w), w->direct, 0, 0, rc10, 10, INTEG_DATA_IN, cap, 8, &r);
        expect_good(&r, w->name);
        assert_int_equal(r.transferred, 8);
        assert_int_equal(integ_get_be32(cap), CAPACITY_BLOCKS - 1);
        assert_int_equal(integ_get_be32(cap + 4), 512);

        uint8_t rc16[16] = {0x9E, 0x10}, cap16[32];
        rc16[13] = 32;
        integ_pass_through(way_handle(f, w), w->direct, 0, 0, rc16, 16, INTEG_DATA_IN, cap16, 32,
                           &r);
        expect_good(&r, w->name);
        assert_int_equal(integ_get_be32(cap16 + 4), CAPACITY_BLOCKS - 1);
        assert_int_equal(integ_get_be32(cap16), 0);
    }
}

static void test_write10_read10_round_trip_through_every_path(void **state)
{
    struct pt_fixture *f = *state;
    for (size_t i = 0; i < 4; i++) {
        const struct way *w = &ways[i];
        const uint32_t lba = 1000 + 64 * (uint32_t)i, blocks = 16, len = blocks * 512;
        uint8_t *out = integ_alloc(len, 0), *in = integ_alloc(len, 0);
        uint8_t cdb[10] = {0x2A};
        struct integ_spt r;
        integ_fill(out, (uint64_t)lba * 512, len, 40 + i);
        integ_put_be32(cdb + 2, lba);
        cdb[8] = blocks;
        integ_pass_through(way_handle(f, w), w->direct, 0, 0, cdb, 10, INTEG_DATA_OUT, out, len,
                           &r);
        expect_good(&r, w->name);
        assert_int_equal(r.transferred, len);
        cdb[0] = 0x28;
        memset(in, 0, len);
        integ_pass_through(way_handle(f, w), w->direct, 0, 0, cdb, 10, INTEG_DATA_IN, in, len, &r);
        expect_good(&r, w->name);
        assert_int_equal(r.transferred, len);
        assert_int_equal(integ_find_mismatch(in, (uint64_t)lba * 512, len, 40 + i), -1);
        /* the disk class path sees the same bytes */
        integ_verify_pattern(f->disk, (uint64_t)lba * 512, len, 40 + i);
        integ_free(out);
        integ_free(in);
    }
}

static int supported_opcode(int op)
{
    static const uint8_t ops[] = {0x00, 0x03, 0x04, 0x08, 0x0A, 0x12, 0x15, 0x1A, 0x1B, 0x1E, 0x25,
                                  0x28, 0x2A, 0x2E, 0x2F, 0x34, 0x35, 0x37, 0x41, 0x42, 0x48, 0x55,
                                  0x5A, 0x88, 0x89, 0x8A, 0x8B, 0x8E, 0x8F, 0x90, 0x91, 0x93, 0x9E,
                                  0xA0, 0xA3, 0xA8, 0xAA, 0xAE, 0xAF, 0xB7,
                                  /* reservations, third-party copy */
                                  0x16, 0x17, 0x56, 0x57, 0x5E, 0x5F, 0x83, 0x84};
    for (size_t i = 0; i < sizeof(ops); i++)
        if (ops[i] == op)
            return 1;
    return 0;
}

static void test_every_unsupported_opcode_is_invalid_command_operation_code(void **state)
{
    struct pt_fixture *f = *state;
    for (int op = 0; op < 256; op++) {
        if (supported_opcode(op))
            continue;
        uint8_t cdb[16] = {(uint8_t)op};
        uint8_t data[512];
        char what[64];
        struct integ_spt r;
        snprintf(what, sizeof(what), "opcode %02Xh", op);
        integ_pass_through(f->disk, 0, 0, 0, cdb, 16, INTEG_DATA_IN, data, sizeof(data), &r);
        integ_assert_sense(&r, 0x5, 0x20, 0x00, 0, what);
        snprintf(what, sizeof(what), "opcode %02Xh on Scsi0:", op);
        integ_pass_through(f->port, 1, 0, 0, cdb, 16, INTEG_DATA_NONE, NULL, 0, &r);
        integ_assert_sense(&r, 0x5, 0x20, 0x00, 0, what);
    }
}

struct bad_cdb {
    const char *what;
    uint8_t cdb[16];
    uint8_t cdb_len;
    int dir;
    uint32_t length;
    uint8_t key, asc, ascq;
    long sks; /* bytes 15..17 of fixed sense, or -1 */
};

/* SKSV=80h, C/D=40h, BPV=08h | bit; the field pointer follows in bytes 16-17. */
#define SKS_CDB(byte)          (0xC00000L | (byte))
#define SKS_CDB_BIT(byte, bit) (0xC80000L | ((long)(bit) << 16) | (byte))
#define LAST_LBA               ((uint32_t)(CAPACITY_BLOCKS - 1))

static const struct bad_cdb bad_cdbs[] = {
    {"TEST UNIT READY reserved bit in byte 4",
     {0x00, 0, 0, 0, 0x20, 0},
     6,
     INTEG_DATA_NONE,
     0,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(4, 7)}, /* the reserved field's most significant bit */
    {"TEST UNIT READY reserved byte 1 all ones",
     {0x00, 0xFF, 0, 0, 0, 0},
     6,
     INTEG_DATA_NONE,
     0,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(1, 7)},
    {"TEST UNIT READY NACA in CONTROL",
     {0x00, 0, 0, 0, 0, 0x04},
     6,
     INTEG_DATA_NONE,
     0,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(5, 2)},
    {"INQUIRY EVPD=0 with a page code",
     {0x12, 0, 0x80, 0, 96, 0},
     6,
     INTEG_DATA_IN,
     96,
     0x5,
     0x24,
     0x00,
     SKS_CDB(2)},
    {"INQUIRY unsupported VPD page 99h",
     {0x12, 1, 0x99, 0, 96, 0},
     6,
     INTEG_DATA_IN,
     96,
     0x5,
     0x24,
     0x00,
     SKS_CDB(2)},
    {"READ(10) RDPROTECT=1",
     {0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0},
     10,
     INTEG_DATA_IN,
     512,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(1, 7)}, /* RDPROTECT is bits 7..5 */
    {"READ(10) LBA = capacity",
     {0x28, 0, (LAST_LBA + 1) >> 24, (LAST_LBA + 1) >> 16 & 0xFF, (LAST_LBA + 1) >> 8 & 0xFF,
      (LAST_LBA + 1) & 0xFF, 0, 0, 1, 0},
     10,
     INTEG_DATA_IN,
     512,
     0x5,
     0x21,
     0x00,
     0},
    {"READ(10) crossing the last LBA",
     {0x28, 0, LAST_LBA >> 24, LAST_LBA >> 16 & 0xFF, LAST_LBA >> 8 & 0xFF, LAST_LBA & 0xFF, 0, 0,
      2, 0},
     10,
     INTEG_DATA_IN,
     1024,
     0x5,
     0x21,
     0x00,
     0},
    {"READ(16) LBA far beyond capacity",
     {0x88, 0, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0},
     16,
     INTEG_DATA_IN,
     512,
     0x5,
     0x21,
     0x00,
     0},
    {"WRITE(10) LBA = capacity",
     {0x2A, 0, (LAST_LBA + 1) >> 24, (LAST_LBA + 1) >> 16 & 0xFF, (LAST_LBA + 1) >> 8 & 0xFF,
      (LAST_LBA + 1) & 0xFF, 0, 0, 1, 0},
     10,
     INTEG_DATA_OUT,
     512,
     0x5,
     0x21,
     0x00,
     0},
    {"WRITE(10) data-out shorter than the transfer length",
     {0x2A, 0, 0, 0, 0x10, 0, 0, 0, 8, 0},
     10,
     INTEG_DATA_OUT,
     512,
     0x5,
     0x24,
     0x00,
     SKS_CDB(7)},
    {"REPORT LUNS allocation length 15",
     {0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0},
     12,
     INTEG_DATA_IN,
     15,
     0x5,
     0x24,
     0x00,
     SKS_CDB(6)},
    {"REPORT LUNS SELECT REPORT 3",
     {0xA0, 0, 3, 0, 0, 0, 0, 0, 0, 64, 0, 0},
     12,
     INTEG_DATA_IN,
     64,
     0x5,
     0x24,
     0x00,
     SKS_CDB(2)},
    {"MODE SENSE(6) saved values",
     {0x1A, 0, 0xC8, 0, 64, 0},
     6,
     INTEG_DATA_IN,
     64,
     0x5,
     0x39,
     0x00,
     -1},
    {"MODE SENSE(6) unsupported page 19h",
     {0x1A, 0, 0x19, 0, 64, 0},
     6,
     INTEG_DATA_IN,
     64,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(2, 5)},
    {"MODE SELECT(6) SP=1",
     {0x15, 0x11, 0, 0, 0, 0},
     6,
     INTEG_DATA_OUT,
     0,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(1, 0)},
    {"SERVICE ACTION IN(16) unsupported service action",
     {0x9E, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0},
     16,
     INTEG_DATA_IN,
     32,
     0x5,
     0x24,
     0x00,
     SKS_CDB_BIT(1, 4)},
    {"START STOP UNIT LOEJ", {0x1B, 0, 0, 0, 0x02, 0}, 6, INTEG_DATA_NONE, 0, 0x5, 0x24, 0x00, -1},
    {"READ(10) with a CDB of 6 bytes",
     {0x28, 0, 0, 0, 0, 0},
     6,
     INTEG_DATA_IN,
     512,
     0x5,
     0x24,
     0x00,
     0},
};

static void test_bad_cdb_fields_return_exact_sense_in_the_callers_buffer(void **state)
{
    struct pt_fixture *f = *state;
    for (size_t i = 0; i < sizeof(bad_cdbs) / sizeof(bad_cdbs[0]); i++) {
        const struct bad_cdb *b = &bad_cdbs[i];
        for (size_t k = 0; k < 4; k++) {
            char what[160];
            uint8_t *data = integ_alloc(b->length ? b->length : 1, 0);
            struct integ_spt r;
            memset(data, 0, b->length ? b->length : 1);
            snprintf(what, sizeof(what), "%s (%s)", b->what, ways[k].name);
            integ_pass_through(way_handle(f, &ways[k]), ways[k].direct, 0, 0, b->cdb, b->cdb_len,
                               b->dir, data, b->length, &r);
            integ_assert_sense(&r, b->key, b->asc, b->ascq, b->sks, what);
            integ_free(data);
        }
    }
    /* the failed WRITE(10) of data shorter than the CDB did not touch the medium */
    uint8_t zero[4096], got[4096];
    uint32_t n;
    memset(zero, 0, sizeof(zero));
    assert_status(storstack_read(f->disk, got, sizeof(got), 0x1000 * 512, &n), STATUS_SUCCESS);
    assert_memory_equal(got, zero, sizeof(zero));
}

static void test_check_condition_without_sense_buffer_still_reports_scsi_status(void **state)
{
    struct pt_fixture *f = *state;
    uint8_t buf[sizeof(SCSI_PASS_THROUGH)];
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    uint32_t ret;
    memset(buf, 0, sizeof(buf));
    spt->Length = sizeof(SCSI_PASS_THROUGH);
    spt->CdbLength = 6;
    spt->DataIn = SCSI_IOCTL_DATA_UNSPECIFIED;
    spt->TimeOutValue = 5;
    spt->Cdb[0] = 0x07; /* REASSIGN BLOCKS: not supported */
    assert_status(
        storstack_ioctl(f->disk, IOCTL_SCSI_PASS_THROUGH, buf, sizeof(buf), buf, sizeof(buf), &ret),
        STATUS_SUCCESS);
    assert_int_equal(spt->ScsiStatus, 0x02);
    assert_int_equal(spt->SenseInfoLength, 0);
}

/* ---- malformed requests ---------------------------------------------------------------------- */

/* Sends a raw buffered or direct request; returns the IOCTL status. */
static storstack_status_t raw(storstack_handle_t *h, int direct, void *in, uint32_t in_len,
                              void *out, uint32_t out_len)
{
    uint32_t ret;
    return storstack_ioctl(h, direct ? IOCTL_SCSI_PASS_THROUGH_DIRECT : IOCTL_SCSI_PASS_THROUGH, in,
                           in_len, out, out_len, &ret);
}

/* A valid buffered READ(10) of one block: header, sense at 56 (32 bytes), data at 96. */
static void good_header(SCSI_PASS_THROUGH *spt)
{
    memset(spt, 0, sizeof(*spt));
    spt->Length = sizeof(SCSI_PASS_THROUGH);
    spt->CdbLength = 10;
    spt->SenseInfoLength = 32;
    spt->SenseInfoOffset = 56;
    spt->DataIn = SCSI_IOCTL_DATA_IN;
    spt->DataTransferLength = 512;
    spt->DataBufferOffset = 96;
    spt->TimeOutValue = 5;
    spt->Cdb[0] = 0x28;
    spt->Cdb[8] = 1;
}

static void test_malformed_buffered_requests_fail_with_an_error_status(void **state)
{
    struct pt_fixture *f = *state;
    const uint32_t size = 96 + 512;
    uint8_t *buf = calloc(1, size + 4096);
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    storstack_handle_t *hs[2] = {f->disk, f->port};

    for (int k = 0; k < 2; k++) {
        storstack_handle_t *h = hs[k];
        good_header(spt);
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_SUCCESS);
        assert_int_equal(spt->ScsiStatus, 0);

        good_header(spt);
        assert_status(raw(h, 0, buf, sizeof(SCSI_PASS_THROUGH) - 1, buf, size),
                      STATUS_INVALID_PARAMETER);
        assert_status(raw(h, 0, buf, 0, buf, size), STATUS_INVALID_PARAMETER);
        assert_status(raw(h, 0, NULL, 0, NULL, 0), STATUS_INVALID_PARAMETER);

        good_header(spt);
        spt->Length = sizeof(SCSI_PASS_THROUGH) - 8;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_REVISION_MISMATCH);
        spt->Length = 44; /* a 32-bit caller's header */
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_REVISION_MISMATCH);

        good_header(spt);
        spt->CdbLength = 0;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        spt->CdbLength = 17;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        spt->CdbLength = 255;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);

        good_header(spt);
        spt->DataIn = 3;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);

        /* data in beyond the output buffer */
        good_header(spt);
        assert_status(raw(h, 0, buf, size, buf, size - 1), STATUS_INVALID_PARAMETER);
        spt->DataBufferOffset = size;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        /* data out beyond the input buffer (a larger output buffer does not help) */
        good_header(spt);
        spt->DataIn = SCSI_IOCTL_DATA_OUT;
        spt->Cdb[0] = 0x2A;
        spt->Cdb[5] = 0x40;
        assert_status(raw(h, 0, buf, size - 1, buf, size), STATUS_INVALID_PARAMETER);
        /* data inside the header */
        good_header(spt);
        spt->DataBufferOffset = 8;
        spt->SenseInfoLength = 0;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);

        /* sense inside the header, beyond the output buffer, overlapping the data */
        good_header(spt);
        spt->SenseInfoOffset = 40;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        good_header(spt);
        spt->SenseInfoOffset = size - 16;
        spt->DataTransferLength = 0;
        spt->DataBufferOffset = 0;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        good_header(spt);
        spt->SenseInfoOffset = 100;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        good_header(spt);
        spt->SenseInfoOffset = 80; /* ends at 112, data starts at 96 */
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);
        good_header(spt);
        spt->SenseInfoOffset = 0xFFFFFFF0u;
        assert_status(raw(h, 0, buf, size, buf, size), STATUS_INVALID_PARAMETER);

        /* over the adapter's maximum transfer */
        uint8_t *big = calloc(1, 96 + MAX_TRANSFER + 512);
        SCSI_PASS_THROUGH *bspt = (SCSI_PASS_THROUGH *)big;
        good_header(bspt);
        bspt->DataTransferLength = MAX_TRANSFER + 512;
        bspt->Cdb[7] = (MAX_TRANSFER / 512 + 1) >> 8;
        bspt->Cdb[8] = (MAX_TRANSFER / 512 + 1) & 0xFF;
        assert_status(raw(h, 0, big, 96 + MAX_TRANSFER + 512, big, 96 + MAX_TRANSFER + 512),
                      STATUS_INVALID_PARAMETER);
        /* exactly the maximum is fine */
        good_header(bspt);
        bspt->DataTransferLength = MAX_TRANSFER;
        bspt->Cdb[7] = (MAX_TRANSFER / 512) >> 8;
        bspt->Cdb[8] = (MAX_TRANSFER / 512) & 0xFF;
        assert_status(raw(h, 0, big, 96 + MAX_TRANSFER, big, 96 + MAX_TRANSFER), STATUS_SUCCESS);
        assert_int_equal(bspt->ScsiStatus, 0);
        assert_int_equal(bspt->DataTransferLength, MAX_TRANSFER);
        free(big);
    }
    free(buf);
}

/* Runs `fn` in a child process: a crash there fails the test instead of ending the program. */
static void in_child(void (*fn)(struct pt_fixture *), struct pt_fixture *f, const char *what)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(f);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status))
        fail_msg("%s: the process died with signal %d", what, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s: the request was accepted or the check failed (exit %d)", what,
                 WEXITSTATUS(status));
}

/* DataBufferOffset so large that offset + length wraps around 2^64 to a small number. */
static void wrapping_data_offset(struct pt_fixture *f)
{
    uint8_t buf[96 + 512];
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    good_header(spt);
    spt->DataBufferOffset = (ULONG_PTR)0 - 256; /* + 512 wraps to 256 */
    storstack_status_t st = raw(f->disk, 0, buf, sizeof(buf), buf, sizeof(buf));
    _exit(st >= 0 ? 1 : 0);
}

static void huge_data_offset_out(struct pt_fixture *f)
{
    uint8_t buf[96 + 512];
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    good_header(spt);
    spt->DataIn = SCSI_IOCTL_DATA_OUT;
    spt->Cdb[0] = 0x2A;
    spt->DataBufferOffset = (ULONG_PTR)0 - 100;
    storstack_status_t st = raw(f->port, 0, buf, sizeof(buf), buf, sizeof(buf));
    _exit(st >= 0 ? 1 : 0);
}

static void test_data_offset_that_wraps_around_is_rejected_without_a_crash(void **state)
{
    struct pt_fixture *f = *state;
    in_child(wrapping_data_offset, f, "DataBufferOffset + length wrapping (data in)");
    in_child(huge_data_offset_out, f, "DataBufferOffset + length wrapping (data out)");
}

static void test_malformed_direct_requests_fail_with_an_error_status(void **state)
{
    struct pt_fixture *f = *state;
    uint8_t buf[96];
    SCSI_PASS_THROUGH_DIRECT *sptd = (SCSI_PASS_THROUGH_DIRECT *)buf;
    uint8_t *data = integ_alloc(MAX_TRANSFER + 4096, 0);
    storstack_handle_t *hs[2] = {f->disk, f->port};

    for (int k = 0; k < 2; k++) {
        storstack_handle_t *h = hs[k];
#define DIRECT_RESET()                                                                             \
    do {                                                                                           \
        memset(buf, 0, sizeof(buf));                                                               \
        sptd->Length = sizeof(SCSI_PASS_THROUGH_DIRECT);                                           \
        sptd->CdbLength = 10;                                                                      \
        sptd->SenseInfoLength = 32;                                                                \
        sptd->SenseInfoOffset = 56;                                                                \
        sptd->DataIn = SCSI_IOCTL_DATA_IN;                                                         \
        sptd->DataTransferLength = 512;                                                            \
        sptd->DataBuffer = data;                                                                   \
        sptd->TimeOutValue = 5;                                                                    \
        sptd->Cdb[0] = 0x28;                                                                       \
        sptd->Cdb[8] = 1;                                                                          \
    } while (0)
        DIRECT_RESET();
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_SUCCESS);
        assert_int_equal(sptd->ScsiStatus, 0);

        DIRECT_RESET();
        sptd->DataBuffer = NULL;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        assert_status(raw(h, 1, buf, sizeof(SCSI_PASS_THROUGH_DIRECT) - 1, buf, 88),
                      STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->Length = sizeof(SCSI_PASS_THROUGH_DIRECT) + 4;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_REVISION_MISMATCH);
        DIRECT_RESET();
        sptd->CdbLength = 17;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->CdbLength = 0;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->DataIn = 3;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->SenseInfoOffset = 8;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->SenseInfoOffset = 60; /* 60 + 32 > 88 */
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        sptd->DataTransferLength = MAX_TRANSFER + 512;
        assert_status(raw(h, 1, buf, 88, buf, 88), STATUS_INVALID_PARAMETER);
        DIRECT_RESET();
        /* the sense does not fit an output buffer shorter than the header */
        assert_status(raw(h, 1, buf, 88, buf, 40), STATUS_INVALID_PARAMETER);
#undef DIRECT_RESET
    }
    integ_free(data);
}

/* Each handle opened with an identity is its own I_T nexus down to the device: a MODE SELECT
 * through one raises MODE PARAMETERS CHANGED (2Ah/01h) for every other nexus, not its own. */
static void test_handle_identity_reaches_the_device_as_its_i_t_nexus(void **state)
{
    struct pt_fixture *f = *state;
    struct storstack_identity a = {.principal = "iqn.2026-11.org.example:a",
                                   .transport_id = "iqn.2026-11.org.example:a,i,0x230000000001",
                                   .nexus = 0x11};
    struct storstack_identity b = {.principal = "iqn.2026-11.org.example:b", .nexus = 0x22};
    storstack_handle_t *ha, *hb;
    uint8_t ms[6] = {0x1A, 0x08, 0x08, 0, 64, 0}, page[64], tur[6] = {0};
    struct integ_spt r;

    assert_int_equal(storstack_open_ex(f->stack, "PhysicalDrive0", INTEG_RW, &a, &ha),
                     STATUS_SUCCESS);
    assert_int_equal(storstack_open_ex(f->stack, "PhysicalDrive0", INTEG_RW, &b, &hb),
                     STATUS_SUCCESS);
    /* a nexus the device has not seen before first reports POWER ON OR RESET (29h/00h) */
    integ_pass_through(ha, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    integ_assert_sense(&r, 0x6, 0x29, 0x00, -1, "first command of nexus a");
    integ_pass_through(hb, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    integ_assert_sense(&r, 0x6, 0x29, 0x00, -1, "first command of nexus b");
    memset(page, 0, sizeof(page));
    integ_pass_through(ha, 0, 0, 0, ms, 6, INTEG_DATA_IN, page, sizeof(page), &r);
    expect_good(&r, "MODE SENSE caching");
    uint32_t len = page[0] + 1u;
    uint8_t *p = page + 4 + page[3];
    p[0] &= 0x3F;
    p[2] ^= 0x04; /* flip WCE */
    page[0] = 0;
    page[2] &= (uint8_t)~0x80;
    uint8_t sel[6] = {0x15, 0x10, 0, 0, (uint8_t)len, 0};
    integ_pass_through(ha, 1, 0, 0, sel, 6, INTEG_DATA_OUT, page, len, &r);
    expect_good(&r, "MODE SELECT from nexus a");

    integ_pass_through(hb, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    integ_assert_sense(&r, 0x6, 0x2A, 0x01, -1, "TEST UNIT READY from nexus b");
    integ_pass_through(hb, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    expect_good(&r, "nexus b: reported once");
    integ_pass_through(ha, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    expect_good(&r, "nexus a caused it");
    /* the host's own handle is a third nexus (0) */
    integ_pass_through(f->disk, 0, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
    integ_assert_sense(&r, 0x6, 0x2A, 0x01, -1, "TEST UNIT READY from the host");
    storstack_close(ha);
    storstack_close(hb);
}

static void test_pass_through_on_a_read_only_handle_is_access_denied(void **state)
{
    struct pt_fixture *f = *state;
    storstack_handle_t *ro = integ_open(f->stack, "PhysicalDrive0", STORSTACK_GENERIC_READ);
    uint8_t cdb[6] = {0x12, 0, 0, 0, 36, 0}, inq[36];
    struct integ_spt r;
    integ_pass_through(ro, 0, 0, 0, cdb, 6, INTEG_DATA_IN, inq, 36, &r);
    assert_status(r.status, STATUS_ACCESS_DENIED);
    storstack_close(ro);
}

static void test_scsi0_address_with_no_device_is_device_does_not_exist(void **state)
{
    struct pt_fixture *f = *state;
    const uint8_t addrs[][2] = {{0, 1}, {0, 7}, {1, 0}, {7, 7}, {200, 0}, {0, 255}};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        for (int direct = 0; direct < 2; direct++) {
            uint8_t cdb[6] = {0x12, 0, 0, 0, 36, 0}, inq[36];
            struct integ_spt r;
            integ_pass_through(f->port, direct, addrs[i][0], addrs[i][1], cdb, 6, INTEG_DATA_IN,
                               inq, 36, &r);
            if (r.status != STATUS_DEVICE_DOES_NOT_EXIST)
                fail_msg("target %u lun %u: %s, expected STATUS_DEVICE_DOES_NOT_EXIST", addrs[i][0],
                         addrs[i][1], storstack_status_name(r.status));
        }
    }
    /* PathId 1 too */
    uint8_t buf[96 + 36];
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    memset(buf, 0, sizeof(buf));
    spt->Length = sizeof(*spt);
    spt->PathId = 1;
    spt->CdbLength = 6;
    spt->DataIn = SCSI_IOCTL_DATA_IN;
    spt->DataTransferLength = 36;
    spt->DataBufferOffset = 96;
    spt->Cdb[0] = 0x12;
    spt->Cdb[4] = 36;
    assert_status(raw(f->port, 0, buf, sizeof(buf), buf, sizeof(buf)),
                  STATUS_DEVICE_DOES_NOT_EXIST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inquiry_and_read_capacity_through_every_path),
        cmocka_unit_test(test_write10_read10_round_trip_through_every_path),
        cmocka_unit_test(test_every_unsupported_opcode_is_invalid_command_operation_code),
        cmocka_unit_test(test_bad_cdb_fields_return_exact_sense_in_the_callers_buffer),
        cmocka_unit_test(test_check_condition_without_sense_buffer_still_reports_scsi_status),
        cmocka_unit_test(test_malformed_buffered_requests_fail_with_an_error_status),
        cmocka_unit_test(test_data_offset_that_wraps_around_is_rejected_without_a_crash),
        cmocka_unit_test(test_malformed_direct_requests_fail_with_an_error_status),
        cmocka_unit_test(test_handle_identity_reaches_the_device_as_its_i_t_nexus),
        cmocka_unit_test(test_pass_through_on_a_read_only_handle_is_access_denied),
        cmocka_unit_test(test_scsi0_address_with_no_device_is_device_does_not_exist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
