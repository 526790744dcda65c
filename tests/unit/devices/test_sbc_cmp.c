/*
 * Block commands that compare or read-modify-write (SBC-4): COMPARE AND WRITE (and its atomicity
 * against other writes through the write gate), ORWRITE, VERIFY with BYTCHK 11b, WRITE AND
 * VERIFY; and the small ones: PRE-FETCH, READ DEFECT DATA, PREVENT ALLOW MEDIUM REMOVAL, START
 * STOP UNIT with LOEJ. Over the mock backend, with deferred completion for the ordering tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "devices_test.h"

#define DISK_BYTES (1024 * 512)

static const struct be_caps caps_none = {0};
static const struct be_caps caps_fua = {.can_flush = true, .can_fua = true};

static void caw_cdb(uint8_t *c, uint64_t lba, uint8_t n)
{
    memset(c, 0, 16);
    c[0] = SCSIOP_COMPARE_AND_WRITE;
    scsi_put_be64(c + 2, lba);
    c[13] = n;
}

/* Fixed-format INFORMATION with VALID set. */
static void assert_miscompare_at(const struct tcmd *t, uint32_t offset)
{
    assert_check(t, SCSI_SENSE_MISCOMPARE, SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION, 0);
    assert_int_equal(t->cmd.sense[0] & 0x80, 0x80);
    assert_int_equal(scsi_get_be32(t->cmd.sense + 3), offset);
}

/* ---- COMPARE AND WRITE -------------------------------------------------------------------- */

static void test_compare_and_write_writes_when_the_medium_matches(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    memset(f.mb->data + 10 * 512, 'A', 4 * 512);
    static uint8_t d[8 * 512];
    memset(d, 'A', 4 * 512);
    memset(d + 4 * 512, 'B', 4 * 512);
    uint8_t c[16];
    struct tcmd t;
    caw_cdb(c, 10, 4);
    c[1] = 0x08; /* FUA */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(d));
    assert_memory_equal(f.mb->data + 10 * 512, d + 4 * 512, 4 * 512);
    assert_int_equal(f.mb->nreq, 2);
    assert_int_equal(f.mb->log[0].op, BE_OP_READ);
    assert_int_equal(f.mb->log[1].op, BE_OP_WRITE);
    assert_int_equal(f.mb->log[1].offset, 10 * 512);
    assert_int_equal(f.mb->log[1].length, 4 * 512);
    assert_int_equal(f.mb->log[1].flags, BE_IO_FUA);
    fx_close(&f);
}

static void test_compare_and_write_miscompare_reports_the_first_differing_byte(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    memset(f.mb->data, 'A', 3 * 512);
    f.mb->data[2 * 512 + 100] = 'C';
    static uint8_t d[6 * 512];
    memset(d, 'A', 3 * 512);
    memset(d + 3 * 512, 'B', 3 * 512);
    uint8_t c[16];
    struct tcmd t;
    caw_cdb(c, 0, 3);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_miscompare_at(&t, 2 * 512 + 100);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 0);
    assert_int_equal(f.mb->data[0], 'A');
    assert_int_equal(f.mb->data[3 * 512 - 1], 'A');
    fx_close(&f);
}

static void test_compare_and_write_field_checks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    static uint8_t d[2 * 129 * 512];
    uint8_t c[16];
    struct tcmd t;
    caw_cdb(c, 0, 129); /* one more than MAXIMUM COMPARE AND WRITE LENGTH */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 2 * 129 * 512);
    assert_invalid_cdb_field(&t, 13, -1);
    caw_cdb(c, 0, 2); /* data-out of 4 blocks for 1 + 1 expected, and of 3 for 2 + 2 */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 3 * 512);
    assert_invalid_cdb_field(&t, 13, -1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 5 * 512);
    assert_invalid_cdb_field(&t, 13, -1);
    caw_cdb(c, 0, 0); /* 256 truncated to the one-byte field: 0 blocks but data */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 512 * 512);
    assert_invalid_cdb_field(&t, 13, -1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0); /* 0 blocks, no data: nothing to do */
    assert_good(&t);
    caw_cdb(c, 1023, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 4 * 512);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    caw_cdb(c, 0, 1);
    c[12] = 1; /* reserved */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 2 * 512);
    assert_invalid_cdb_field(&t, 12, 7); /* a reserved byte is one field */
    caw_cdb(c, 0, 1);
    c[1] = 0x20; /* WRPROTECT */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 2 * 512);
    assert_invalid_cdb_field(&t, 1, 7);
    assert_int_equal(f.mb->nreq, 0);
    fx_close(&f);

    struct scsi_disk_config ro = {.read_only = true};
    fx_open(&f, DISK_BYTES, &ro, &caps_none, false);
    caw_cdb(c, 0, 1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 2 * 512);
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    fx_close(&f);
}

/*
 * Atomicity (SBC-4 5.3): a COMPARE AND WRITE waits for the writes in flight, and a write arriving
 * while it runs waits for it, so no write lands between its compare and its write.
 */
static void test_compare_and_write_is_atomic_against_other_writes(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    f.mb->deferred = true;
    static uint8_t w1[512], caw[1024], w2[512];
    memset(w1, 'A', sizeof(w1));
    memset(caw, 'A', 512);
    memset(caw + 512, 'B', 512);
    memset(w2, 'Z', sizeof(w2));
    uint8_t c1[10], c2[16], c3[10];
    struct tcmd t1, t2, t3;

    cdb10(c1, SCSIOP_WRITE, 5, 1);
    run_cmd(f.lu, &t1, c1, 10, SCSI_DIR_OUT, w1, sizeof(w1)); /* in flight */
    caw_cdb(c2, 5, 1);
    run_cmd(f.lu, &t2, c2, 16, SCSI_DIR_OUT, caw, sizeof(caw));
    assert_int_equal(f.mb->nreq, 1); /* the compare waits for the write */
    cdb10(c3, SCSIOP_WRITE, 5, 1);
    run_cmd(f.lu, &t3, c3, 10, SCSI_DIR_OUT, w2, sizeof(w2));
    assert_int_equal(f.mb->nreq, 1); /* and this write waits for the compare and write */
    assert_int_equal(t1.ndone + t2.ndone + t3.ndone, 0);

    /* Completing the first write lets the CAW read 'A' and write 'B'; only then the 'Z'. */
    mock_backend_release(f.mb);
    assert_good(&t1);
    assert_good(&t2);
    assert_good(&t3);
    assert_int_equal(f.mb->nreq, 4);
    assert_int_equal(f.mb->log[1].op, BE_OP_READ);
    assert_int_equal(f.mb->log[2].op, BE_OP_WRITE);
    assert_int_equal(f.mb->log[3].op, BE_OP_WRITE);
    assert_memory_equal(f.mb->data + 5 * 512, w2, 512);

    /* A read does not take the gate: it runs beside a compare and write. */
    mock_backend_clear_log(f.mb);
    memset(caw, 'Z', 512);
    run_cmd(f.lu, &t2, c2, 16, SCSI_DIR_OUT, caw, sizeof(caw));
    uint8_t r[512], rc[10];
    cdb10(rc, SCSIOP_READ, 0, 1);
    run_cmd(f.lu, &t1, rc, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_int_equal(f.mb->nreq, 2);
    mock_backend_release(f.mb);
    assert_good(&t1);
    assert_good(&t2);
    fx_close(&f);
}

static void test_compare_and_write_read_error_is_unrecovered_read_error(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_READ, -EIO);
    static uint8_t d[1024];
    uint8_t c[16];
    struct tcmd t;
    caw_cdb(c, 7, 1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_UNRECOVERED_ERROR, 0);
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 7);
    /* the gate was released: a write goes through */
    mock_backend_fail(f.mb, BE_OP_READ, 0);
    cdb10(c, SCSIOP_WRITE, 7, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, 512);
    assert_good(&t);
    fx_close(&f);
}

/* A command run to completion from a worker thread (completions arrive on the backend's thread). */
struct sync_cmd {
    struct scsi_cmd cmd;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
};

static void sync_done(struct scsi_cmd *cmd)
{
    struct sync_cmd *s = cmd->context;
    pthread_mutex_lock(&s->m);
    s->done = true;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
}

static uint8_t run_sync(struct scsi_lu *lu, const uint8_t *cdb, uint8_t len, enum scsi_dir dir,
                        void *buf, uint32_t xfer)
{
    struct sync_cmd s;
    struct iovec iov = {.iov_base = buf, .iov_len = xfer};
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.m, NULL);
    pthread_cond_init(&s.c, NULL);
    s.cmd.cdb = cdb;
    s.cmd.cdb_len = len;
    s.cmd.dir = dir;
    s.cmd.iov = &iov;
    s.cmd.iovcnt = 1;
    s.cmd.xfer_len = xfer;
    s.cmd.done = sync_done;
    s.cmd.context = &s;
    scsi_lu_execute(lu, &s.cmd);
    pthread_mutex_lock(&s.m);
    while (!s.done)
        pthread_cond_wait(&s.c, &s.m);
    pthread_mutex_unlock(&s.m);
    pthread_cond_destroy(&s.c);
    pthread_mutex_destroy(&s.m);
    if (s.cmd.status == SAM_STAT_CHECK_CONDITION && sense_key(&s.cmd) == SCSI_SENSE_MISCOMPARE)
        return 0xEE; /* tells a miscompare from other failures */
    return s.cmd.status;
}

#define CAW_THREADS    4
#define CAW_INCREMENTS 150

struct caw_worker {
    struct scsi_lu *lu;
    int id;
    int failures;
};

/* Increments the counter in block 0 with READ + COMPARE AND WRITE, retrying on a miscompare;
 * worker 0 instead hammers block 1 with plain writes, which share the gate. */
static void *caw_worker(void *arg)
{
    struct caw_worker *w = arg;
    uint8_t blk[1024], c[16];
    for (int i = 0; i < CAW_INCREMENTS; i++) {
        if (w->id == 0) {
            memset(blk, i, 512);
            cdb10(c, SCSIOP_WRITE, 1, 1);
            w->failures += run_sync(w->lu, c, 10, SCSI_DIR_OUT, blk, 512) != SAM_STAT_GOOD;
            continue;
        }
        for (;;) {
            cdb10(c, SCSIOP_READ, 0, 1);
            if (run_sync(w->lu, c, 10, SCSI_DIR_IN, blk, 512) != SAM_STAT_GOOD) {
                w->failures++;
                break;
            }
            memcpy(blk + 512, blk, 512);
            scsi_put_be32(blk + 512, scsi_get_be32(blk) + 1);
            caw_cdb(c, 0, 1);
            uint8_t st = run_sync(w->lu, c, 16, SCSI_DIR_OUT, blk, 1024);
            if (st == SAM_STAT_GOOD)
                break;
            if (st != 0xEE && st != SAM_STAT_BUSY) {
                w->failures++;
                break;
            }
        }
    }
    return NULL;
}

/* Threads racing COMPARE AND WRITE increments over the io_uring file backend, whose completions
 * run on its reaper: no increment is lost, so no write landed between a compare and its write. */
static void test_compare_and_write_increments_from_threads_lose_nothing(void **state)
{
    char path[] = "/tmp/storstack_caw_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct backend *be;
    assert_int_equal(be_file_create(path, 1 << 20, 0, &be, NULL), 0);
    unlink(path);
    struct scsi_lu *lu;
    assert_int_equal(scsi_disk_create(NULL, be, &lu), 0);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY}, junk[1];
    run_sync(lu, tur, 6, SCSI_DIR_NONE, junk, 0); /* the power-on unit attention */

    pthread_t th[CAW_THREADS];
    struct caw_worker w[CAW_THREADS];
    for (int i = 0; i < CAW_THREADS; i++) {
        w[i] = (struct caw_worker){.lu = lu, .id = i};
        pthread_create(&th[i], NULL, caw_worker, &w[i]);
    }
    for (int i = 0; i < CAW_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    uint8_t blk[512], c[10];
    cdb10(c, SCSIOP_READ, 0, 1);
    assert_int_equal(run_sync(lu, c, 10, SCSI_DIR_IN, blk, 512), SAM_STAT_GOOD);
    assert_int_equal(scsi_get_be32(blk), (CAW_THREADS - 1) * CAW_INCREMENTS);
    scsi_lu_destroy(lu);
    be_destroy(be);
}

/* ---- ORWRITE ------------------------------------------------------------------------------ */

static void test_orwrite_ors_the_data_into_the_medium_in_chunks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    const uint32_t n = 200; /* 100 KiB: two bounce-slot chunks */
    for (uint32_t i = 0; i < n * 512; i++)
        f.mb->data[512 * 50 + i] = (uint8_t)(i & 0x0F);
    static uint8_t d[200 * 512];
    for (uint32_t i = 0; i < n * 512; i++)
        d[i] = (uint8_t)((i * 7) & 0xF0);
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, 0x8B, 50, n);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(d));
    for (uint32_t i = 0; i < n * 512; i++) {
        uint8_t want = (uint8_t)((i & 0x0F) | ((i * 7) & 0xF0));
        if (f.mb->data[512 * 50 + i] != want)
            fail_msg("byte %u is %#x, want %#x", i, f.mb->data[512 * 50 + i], want);
    }
    assert_int_equal(mock_backend_count(f.mb, BE_OP_READ), 2);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 2);
    /* zero blocks, past the end, short data-out, ORPROTECT */
    cdb16(c, 0x8B, 0, 0);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, NULL, 0);
    assert_good(&t);
    cdb16(c, 0x8B, 1023, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 1024);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    cdb16(c, 0x8B, 0, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 512);
    assert_invalid_cdb_field(&t, 10, -1);
    c[1] = 0x20;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 1024);
    assert_invalid_cdb_field(&t, 1, 7); /* ORPROTECT's most significant bit */
    fx_close(&f);
}

/* ---- VERIFY BYTCHK 11b, WRITE AND VERIFY -------------------------------------------------- */

static void test_verify_bytchk_11b_compares_every_block_with_one(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t blk[512], c[16];
    for (int i = 0; i < 512; i++)
        blk[i] = (uint8_t)(i ^ 0x5A);
    for (int lba = 300; lba < 450; lba++)
        memcpy(f.mb->data + lba * 512, blk, 512);
    struct tcmd t;
    cdb16(c, SCSIOP_VERIFY16, 300, 150); /* 75 KiB: two chunks */
    c[1] = 0x06;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 512);
    f.mb->data[(300 + 140) * 512 + 17] ^= 1;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_miscompare_at(&t, 140 * 512 + 17);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, 100); /* less than the one block */
    assert_invalid_cdb_field(&t, 10, -1);
    fx_close(&f);
}

static void test_write_and_verify_writes_then_compares(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    static uint8_t d[3 * 512];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 13);
    uint8_t c[16];
    struct tcmd t;
    /* (10), BYTCHK=1: a write through to the medium, then a read compared */
    cdb10(c, SCSIOP_WRITE_VERIFY, 20, 3);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(d));
    assert_memory_equal(f.mb->data + 20 * 512, d, sizeof(d));
    assert_int_equal(f.mb->nreq, 2);
    assert_int_equal(f.mb->log[0].op, BE_OP_WRITE);
    assert_int_equal(f.mb->log[0].flags, BE_IO_FUA);
    assert_int_equal(f.mb->log[1].op, BE_OP_READ);
    /* (12) and (16), BYTCHK=0: the write alone */
    mock_backend_clear_log(f.mb);
    cdb12(c, SCSIOP_WRITE_VERIFY12, 40, 3);
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    cdb16(c, SCSIOP_WRITE_VERIFY16, 60, 3);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_READ), 0);
    assert_memory_equal(f.mb->data + 60 * 512, d, sizeof(d));
    /* a read-back that fails */
    mock_backend_fail(f.mb, BE_OP_READ, -EIO);
    cdb16(c, SCSIOP_WRITE_VERIFY16, 80, 3);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_UNRECOVERED_ERROR, 0);
    mock_backend_fail(f.mb, BE_OP_READ, 0);
    /* BYTCHK 10b reserved; short data-out; past the end */
    c[1] = 0x04;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_invalid_cdb_field(&t, 1, 2);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, 512);
    assert_invalid_cdb_field(&t, 10, -1);
    cdb16(c, SCSIOP_WRITE_VERIFY16, 1022, 3);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    fx_close(&f);
}

static void test_write_and_verify_bytchk_11b_writes_one_block_everywhere_then_compares(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t blk[512], c[16];
    for (int i = 0; i < 512; i++)
        blk[i] = (uint8_t)(i * 5 + 3);
    struct tcmd t;
    cdb16(c, SCSIOP_WRITE_VERIFY16, 100, 200); /* 100 KiB: two writes, two reads */
    c[1] = 0x06;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 512);
    for (int lba = 100; lba < 300; lba++)
        assert_memory_equal(f.mb->data + lba * 512, blk, 512);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 2);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_READ), 2);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags, BE_IO_FUA);
    assert_true(f.mb->data[99 * 512 + 511] == 0 && f.mb->data[300 * 512] == 0);
    /* a data-out shorter than the block; 0 blocks */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, 511);
    assert_invalid_cdb_field(&t, 10, -1);
    cdb16(c, SCSIOP_WRITE_VERIFY16, 100, 0);
    c[1] = 0x06;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    fx_close(&f);
}

/* ---- PRE-FETCH, READ DEFECT DATA, PREVENT ALLOW, START STOP ------------------------------ */

static void test_prefetch_checks_the_range_and_returns_good(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[16];
    struct tcmd t;
    cdb10(c, 0x34, 1000, 24);
    c[1] = 0x02; /* IMMED */
    c[6] = 3;    /* GROUP NUMBER */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    cdb10(c, 0x34, 1000, 25);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    cdb10(c, 0x34, 1025, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    cdb10(c, 0x34, 0, 1);
    c[1] = 0x01; /* obsolete RELADR */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 0);
    cdb16(c, SCSIOP_PREFETCH16, 0, 0); /* 0: to the end of the medium */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    cdb16(c, SCSIOP_PREFETCH16, UINT64_MAX, 1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    assert_int_equal(f.mb->nreq, 0);
    fx_close(&f);
}

static void test_read_defect_data_returns_an_empty_list_in_the_format_asked(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[12], b[32];
    struct tcmd t;
    memset(c, 0, sizeof(c));
    c[0] = 0x37;
    c[2] = 0x1B; /* PLIST, GLIST, long block format */
    c[8] = 32;
    memset(b, 0xEE, sizeof(b));
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 4);
    const uint8_t want10[4] = {0, 0x1B, 0, 0};
    assert_memory_equal(b, want10, 4);
    c[2] = 0x07; /* reserved format */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 2, 2);

    memset(c, 0, sizeof(c));
    c[0] = SCSIOP_READ_DEFECT_DATA;
    c[1] = 0x0C; /* GLIST, bytes from index */
    c[9] = 6;    /* allocation length cuts the 8-byte header */
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 6);
    assert_int_equal(b[1], 0x0C);
    c[1] = 0x20; /* reserved 7..5 */
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 1, 7);
    fx_close(&f);
}

static void test_prevent_allow_and_loej_on_a_non_removable_disk(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[6] = {SCSIOP_MEDIUM_REMOVAL, 0, 0, 0, 1, 0};
    struct tcmd t;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    c[4] = 0;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    c[4] = 2; /* obsolete (a medium changer's) */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 1);
    c[4] = 0x04; /* reserved 7..2 */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 7);
    /* START STOP UNIT LOEJ=1: nothing to eject or load */
    uint8_t s[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x02, 0};
    run_cmd(f.lu, &t, s, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 1);
    s[4] = 0x03;
    run_cmd(f.lu, &t, s, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_and_write_writes_when_the_medium_matches),
        cmocka_unit_test(test_compare_and_write_miscompare_reports_the_first_differing_byte),
        cmocka_unit_test(test_compare_and_write_field_checks),
        cmocka_unit_test(test_compare_and_write_is_atomic_against_other_writes),
        cmocka_unit_test(test_compare_and_write_read_error_is_unrecovered_read_error),
        cmocka_unit_test(test_compare_and_write_increments_from_threads_lose_nothing),
        cmocka_unit_test(test_orwrite_ors_the_data_into_the_medium_in_chunks),
        cmocka_unit_test(test_verify_bytchk_11b_compares_every_block_with_one),
        cmocka_unit_test(test_write_and_verify_writes_then_compares),
        cmocka_unit_test(
            test_write_and_verify_bytchk_11b_writes_one_block_everywhere_then_compares),
        cmocka_unit_test(test_prefetch_checks_the_range_and_returns_good),
        cmocka_unit_test(test_read_defect_data_returns_an_empty_list_in_the_format_asked),
        cmocka_unit_test(test_prevent_allow_and_loej_on_a_non_removable_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
