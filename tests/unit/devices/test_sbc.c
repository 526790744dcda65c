/*
 * Block commands of the disk device server (SBC-4): READ/WRITE 6/10/12/16, VERIFY, SYNCHRONIZE
 * CACHE, READ CAPACITY 10/16, START STOP UNIT, FUA handling, backend errors as sense, deferred
 * (asynchronous) completion and initiator buffers with many segments, over the mock backend.
 */
#include <errno.h>
#include <pthread.h>

#include "devices_test.h"

#define DISK_BYTES (1024 * 512) /* 1024 blocks of 512 */

static const struct be_caps caps_none = {0};
static const struct be_caps caps_flush = {.can_flush = true};
static const struct be_caps caps_fua = {.can_flush = true, .can_fua = true};

static void fill_pattern(uint8_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* ---- READ / WRITE ------------------------------------------------------------------------ */

static void test_write10_then_read10_returns_the_data_byte_for_byte(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t w[4 * 512], r[4 * 512], c[10];
    fill_pattern(w, sizeof(w), 3);
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 10, 4);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(w));
    assert_memory_equal(f.mb->data + 10 * 512, w, sizeof(w));

    cdb10(c, SCSIOP_READ, 10, 4);
    memset(r, 0, sizeof(r));
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(r));
    assert_memory_equal(r, w, sizeof(w));
    const struct mock_req *req = mock_backend_last(f.mb, BE_OP_READ);
    assert_non_null(req);
    assert_int_equal(req->offset, 10 * 512);
    assert_int_equal(req->length, 4 * 512);
    fx_close(&f);
}

static void test_read6_transfer_length_zero_means_256_blocks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    static uint8_t r[256 * 512];
    fill_pattern(f.mb->data, DISK_BYTES, 9);
    uint8_t c[6] = {SCSIOP_READ6, 0x00, 0x01, 0x00, 0x00, 0}; /* LBA 256, 0 = 256 blocks */
    struct tcmd t;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(r));
    assert_memory_equal(r, f.mb->data + 256 * 512, sizeof(r));
    fx_close(&f);
}

static void test_write6_uses_21_bit_lba(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t w[512];
    fill_pattern(w, sizeof(w), 1);
    /* Byte 1 bits 7..5 are reserved in WRITE(6) (old LUN field): 0xE0 must be rejected. */
    uint8_t bad[6] = {SCSIOP_WRITE6, 0x20, 0, 5, 1, 0};
    struct tcmd t;
    run_cmd(f.lu, &t, bad, 6, SCSI_DIR_OUT, w, sizeof(w));
    assert_invalid_cdb_field(&t, 1, 7); /* the reserved field's most significant bit */
    uint8_t c[6] = {SCSIOP_WRITE6, 0x00, 0x02, 0x05, 1, 0}; /* LBA 0x205 */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_memory_equal(f.mb->data + 0x205 * 512, w, sizeof(w));
    fx_close(&f);
}

static void test_read12_write12_read16_write16_roundtrip(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t w[2 * 512], r[2 * 512], c[16];
    struct tcmd t;
    fill_pattern(w, sizeof(w), 5);
    cdb12(c, SCSIOP_WRITE12, 100, 2);
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    cdb16(c, SCSIOP_READ16, 100, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_memory_equal(r, w, sizeof(w));

    fill_pattern(w, sizeof(w), 77);
    cdb16(c, SCSIOP_WRITE16, 1022, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    cdb12(c, SCSIOP_READ12, 1022, 2);
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_memory_equal(r, w, sizeof(w));
    fx_close(&f);
}

static void test_read10_past_capacity_returns_lba_out_of_range(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t r[2 * 512], c[16];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 1023, 2);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    assert_int_equal(t.cmd.transferred, 0);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_READ), 0);

    /* Zero blocks at the capacity is not an error; past it is. */
    cdb10(c, SCSIOP_READ, 1024, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    cdb10(c, SCSIOP_READ, 1025, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    fx_close(&f);
}

static void test_read16_lba_near_2_to_64_does_not_wrap_and_returns_lba_out_of_range(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t r[2 * 512], c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_READ16, UINT64_MAX, 2);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    cdb16(c, SCSIOP_WRITE16, 2, UINT32_MAX);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    fx_close(&f);
}

static void test_read10_longer_than_max_transfer_returns_invalid_field_in_cdb(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.block_size = 512, .max_transfer_blocks = 8};
    fx_open(&f, DISK_BYTES, &cfg, &caps_none, false);
    uint8_t r[9 * 512], c[16];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 0, 9);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_invalid_cdb_field(&t, 7, -1);
    cdb16(c, SCSIOP_WRITE16, 0, 9);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, r, sizeof(r));
    assert_invalid_cdb_field(&t, 10, -1);
    cdb10(c, SCSIOP_READ, 0, 8);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    fx_close(&f);
}

static void test_read10_rdprotect_and_reserved_bits_return_field_pointer(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t r[512], c[16];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 0, 1);
    c[1] = 0x60; /* RDPROTECT 011b: no protection information here */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_invalid_cdb_field(&t, 1, 7); /* RDPROTECT's most significant bit (SPC-4 4.5.2.4.2) */
    cdb10(c, SCSIOP_WRITE, 0, 1);
    c[1] = 0x04; /* reserved in WRITE(10) */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, r, sizeof(r));
    assert_invalid_cdb_field(&t, 1, 2);
    cdb10(c, SCSIOP_READ, 0, 1);
    c[6] = 0x20; /* GROUP NUMBER is bits 4..0; 7..5 are one reserved field */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_invalid_cdb_field(&t, 6, 7);
    cdb10(c, SCSIOP_READ, 0, 1);
    c[1] = 0x18; /* DPO and FUA are accepted */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    fx_close(&f);
}

static void test_write10_with_short_data_out_returns_invalid_field_in_cdb(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t w[3 * 512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 0, 4);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_invalid_cdb_field(&t, 7, -1);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 0);
    /* Data in the wrong direction is no data at all. */
    cdb10(c, SCSIOP_WRITE, 0, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, w, sizeof(w));
    assert_invalid_cdb_field(&t, 7, -1);
    fx_close(&f);
}

static void test_unspecified_direction_lets_the_cdb_decide(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t w[512], r[512], c[10];
    fill_pattern(w, sizeof(w), 21);
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 8, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_UNSPECIFIED, w, sizeof(w));
    assert_good(&t);
    cdb10(c, SCSIOP_READ, 8, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_UNSPECIFIED, r, sizeof(r));
    assert_good(&t);
    assert_memory_equal(r, w, sizeof(w));
    fx_close(&f);
}

static void test_read10_with_short_data_in_transfers_what_fits(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    fill_pattern(f.mb->data, DISK_BYTES, 4);
    uint8_t r[700], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 2, 4);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 700);
    assert_memory_equal(r, f.mb->data + 1024, 700);
    fx_close(&f);
}

static void test_write_to_read_only_lu_returns_data_protect(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.read_only = true};
    fx_open(&f, DISK_BYTES, &cfg, &caps_none, false);
    uint8_t w[512], c[16];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 0, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    uint8_t c6[6] = {SCSIOP_WRITE6, 0, 0, 0, 1, 0};
    run_cmd(f.lu, &t, c6, 6, SCSI_DIR_OUT, w, sizeof(w));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 0);
    /* A backend that is read-only makes the LU write-protected too. */
    fx_close(&f);
    struct be_caps ro = {.read_only = true};
    fx_open(&f, DISK_BYTES, NULL, &ro, false);
    cdb16(c, SCSIOP_WRITE16, 0, 1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, w, sizeof(w));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    fx_close(&f);
}

/* ---- FUA and the write cache -------------------------------------------------------------- */

static void test_write10_fua_is_passed_to_the_backend(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t w[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 0, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags & BE_IO_FUA, 0);
    c[1] = 0x08; /* FUA */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags & BE_IO_FUA, BE_IO_FUA);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 0);
    fx_close(&f);
}

static void test_write_fua_without_backend_fua_flushes_after_the_write(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    uint8_t w[512], c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_WRITE16, 0, 1);
    c[1] = 0x08;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 512);
    assert_int_equal(f.mb->nreq, 2);
    assert_int_equal(f.mb->log[0].op, BE_OP_WRITE);
    assert_int_equal(f.mb->log[0].flags, 0);
    assert_int_equal(f.mb->log[1].op, BE_OP_FLUSH);
    fx_close(&f);
}

static void test_write_cache_disabled_in_config_makes_every_write_fua(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.write_cache = false};
    fx_open(&f, DISK_BYTES, &cfg, &caps_fua, false);
    uint8_t w[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 0, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags & BE_IO_FUA, BE_IO_FUA);
    fx_close(&f);
}

/* ---- backend errors ----------------------------------------------------------------------- */

static void test_read_backend_eio_returns_medium_error_unrecovered_read_error(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_READ, -EIO);
    uint8_t r[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 77, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_UNRECOVERED_ERROR, 0);
    assert_true(t.cmd.sense[0] & 0x80); /* VALID: INFORMATION holds the LBA */
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 77);
    assert_int_equal(t.cmd.transferred, 0);
    fx_close(&f);
}

static void test_write_backend_eio_returns_medium_error_write_error(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_WRITE, -EIO);
    uint8_t w[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 5, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_WRITE_ERROR, 0);
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 5);
    fx_close(&f);
}

static void test_write_backend_enospc_returns_space_allocation_failed(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_WRITE, -ENOSPC);
    uint8_t w[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 5, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT,
                 SCSI_SENSEQ_SPACE_ALLOC_FAILED_WRITE_PROTECT);
    fx_close(&f);
}

static void test_backend_ebusy_returns_busy_status_without_sense(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_READ, -EAGAIN);
    uint8_t r[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 5, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_int_equal(t.ndone, 1);
    assert_int_equal(t.cmd.status, SAM_STAT_BUSY);
    assert_int_equal(t.cmd.sense_len, 0);
    fx_close(&f);
}

static void test_flush_error_returns_write_error_without_information(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    mock_backend_fail(f.mb, BE_OP_FLUSH, -EIO);
    uint8_t c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_SYNCHRONIZE_CACHE, 0, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_WRITE_ERROR, 0);
    assert_int_equal(t.cmd.sense[0] & 0x80, 0);
    fx_close(&f);
}

/* ---- asynchronous completion -------------------------------------------------------------- */

static void test_deferred_backend_completion_completes_the_command_later(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    fill_pattern(f.mb->data, DISK_BYTES, 8);
    f.mb->deferred = true;
    uint8_t r[2 * 512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 3, 2);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_int_equal(t.ndone, 0);
    assert_int_equal(mock_backend_release(f.mb), 1);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(r));
    assert_memory_equal(r, f.mb->data + 3 * 512, sizeof(r));

    /* A FUA write on a flush-only backend: write, then flush, each completed later. */
    cdb10(c, SCSIOP_WRITE, 3, 2);
    c[1] = 0x08;
    mock_backend_clear_log(f.mb);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, r, sizeof(r));
    assert_int_equal(t.ndone, 0);
    assert_int_equal(mock_backend_release(f.mb), 2);
    assert_good(&t);
    assert_int_equal(f.mb->log[1].op, BE_OP_FLUSH);
    fx_close(&f);
}

static void *release_thread(void *arg)
{
    struct mock_backend *m = arg;
    int n = 0;
    while (n < 1) {
        n += mock_backend_release(m);
        sched_yield();
    }
    return NULL;
}

static void test_completion_on_another_thread_runs_done_once(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    f.mb->deferred = true;
    uint8_t w[512], c[10];
    fill_pattern(w, sizeof(w), 2);
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 9, 1);
    pthread_t th;
    pthread_create(&th, NULL, release_thread, f.mb);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    pthread_join(th, NULL);
    assert_good(&t);
    assert_memory_equal(f.mb->data + 9 * 512, w, sizeof(w));
    fx_close(&f);
}

/* ---- initiator buffers with many segments ------------------------------------------------- */

static void run_iov(struct scsi_lu *lu, struct tcmd *t, const uint8_t *cdb, uint8_t len,
                    enum scsi_dir dir, const struct iovec *iov, int cnt, uint32_t xfer)
{
    tcmd_prepare(t, cdb, len, dir, NULL, 0);
    t->cmd.iov = iov;
    t->cmd.iovcnt = cnt;
    t->cmd.xfer_len = xfer;
    scsi_lu_execute(lu, &t->cmd);
}

static void test_read_into_six_segments_passes_them_whole_in_one_request(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    fill_pattern(f.mb->data, DISK_BYTES, 6);
    static uint8_t buf[3072];
    static const size_t lens[6] = {512, 512, 512, 1000, 24, 512};
    struct iovec iov[6];
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        iov[i].iov_base = buf + off;
        iov[i].iov_len = lens[i];
        off += lens[i];
    }
    uint8_t c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_READ, 1, 6);
    run_iov(f.lu, &t, c, 10, SCSI_DIR_IN, iov, 6, 3072);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 3072);
    assert_memory_equal(buf, f.mb->data + 512, 3072);
    assert_int_equal(f.mb->nreq, 1);
    assert_int_equal(f.mb->log[0].iovcnt, 6);
    fx_close(&f);
}

static void test_write_from_forty_small_segments_ending_mid_segment_is_split_in_two(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    static uint8_t buf[4000];
    fill_pattern(buf, sizeof(buf), 33);
    struct iovec iov[40];
    for (int i = 0; i < 40; i++) {
        iov[i].iov_base = buf + i * 100;
        iov[i].iov_len = 100;
    }
    uint8_t c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 7, 6); /* 3072 bytes: 30 whole segments and 72 bytes of the 31st */
    run_iov(f.lu, &t, c, 10, SCSI_DIR_OUT, iov, 40, 4000);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 3072);
    assert_memory_equal(f.mb->data + 7 * 512, buf, 3072);
    assert_int_equal(f.mb->nreq, 2);
    assert_int_equal(f.mb->log[0].iovcnt, 30);
    assert_int_equal(f.mb->log[0].length, 3000);
    assert_int_equal(f.mb->log[1].offset, 7 * 512 + 3000);
    assert_int_equal(f.mb->log[1].length, 72);
    fx_close(&f);
}

/* ---- VERIFY ------------------------------------------------------------------------------- */

static void test_verify10_bytchk0_checks_the_range_only(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_VERIFY, 0, 1024);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(f.mb->nreq, 0);
    cdb10(c, SCSIOP_VERIFY, 1, 1024);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    fx_close(&f);
}

static void test_verify10_bytchk1_matching_data_returns_good(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    fill_pattern(f.mb->data, DISK_BYTES, 12);
    uint8_t d[4 * 512], c[10];
    memcpy(d, f.mb->data + 20 * 512, sizeof(d));
    struct tcmd t;
    cdb10(c, SCSIOP_VERIFY, 20, 4);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(d));
    fx_close(&f);
}

static void test_verify10_bytchk1_miscompare_reports_offset_of_first_difference(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    fill_pattern(f.mb->data, DISK_BYTES, 12);
    uint8_t d[4 * 512], c[10];
    memcpy(d, f.mb->data + 20 * 512, sizeof(d));
    d[1000] ^= 0x40;
    d[1500] ^= 0x01;
    struct tcmd t;
    cdb10(c, SCSIOP_VERIFY, 20, 4);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_MISCOMPARE, SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION, 0);
    assert_true(t.cmd.sense[0] & 0x80);
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 1000);
    fx_close(&f);
}

static void test_verify16_bytchk1_larger_than_a_bounce_slot_compares_every_chunk(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    fill_pattern(f.mb->data, DISK_BYTES, 99);
    static uint8_t d[200 * 512];
    memcpy(d, f.mb->data + 300 * 512, sizeof(d));
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_VERIFY16, 300, 200);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_READ), 2);
    d[70000] ^= 0xFF;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_MISCOMPARE, SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION, 0);
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 70000);
    fx_close(&f);
}

static void test_verify_bytchk_10b_returns_invalid_field(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t d[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_VERIFY, 0, 1);
    c[1] = 0x04;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_invalid_cdb_field(&t, 1, 2);
    fx_close(&f);
}

static void test_verify_read_error_returns_unrecovered_read_error(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    mock_backend_fail(f.mb, BE_OP_READ, -EIO);
    uint8_t d[512], c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_VERIFY, 4, 1);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_UNRECOVERED_ERROR, 0);
    /* The bounce slot was given back: four more verifies still get one each. */
    mock_backend_fail(f.mb, BE_OP_READ, 0);
    for (int i = 0; i < 5; i++) {
        run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
        assert_int_equal(t.cmd.status == SAM_STAT_BUSY, 0);
    }
    fx_close(&f);
}

/* ---- SYNCHRONIZE CACHE -------------------------------------------------------------------- */

static void test_synchronize_cache10_flushes_the_backend(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    uint8_t c[16];
    struct tcmd t;
    cdb10(c, SCSIOP_SYNCHRONIZE_CACHE, 0, 0);
    c[1] = 0x02; /* IMMED accepted */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 1);
    cdb16(c, SCSIOP_SYNCHRONIZE_CACHE16, 1000, 24);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 2);
    cdb16(c, SCSIOP_SYNCHRONIZE_CACHE16, 1000, 25);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK, 0);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 2);
    fx_close(&f);
}

static void test_synchronize_cache_without_can_flush_returns_good_without_flush(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[10];
    struct tcmd t;
    cdb10(c, SCSIOP_SYNCHRONIZE_CACHE, 0, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(f.mb->nreq, 0);
    fx_close(&f);
}

/* ---- READ CAPACITY ------------------------------------------------------------------------ */

static void test_read_capacity10_returns_last_lba_and_block_length(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[10] = {SCSIOP_READ_CAPACITY};
    uint8_t r[8];
    struct tcmd t;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    static const uint8_t want[8] = {0, 0, 0x03, 0xFF, 0, 0, 0x02, 0x00};
    assert_memory_equal(r, want, 8);
    assert_int_equal(t.cmd.transferred, 8);
    c[5] = 1; /* LBA without PMI */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_invalid_cdb_field(&t, 2, -1);
    fx_close(&f);
}

static void test_read_capacity10_beyond_32_bits_returns_ffffffff(void **state)
{
    struct fx f;
    uint64_t size = ((1ull << 32) + 10) * 512;
    fx_open(&f, size, NULL, &caps_none, false);
    uint8_t c[16] = {SCSIOP_READ_CAPACITY};
    uint8_t r[32];
    struct tcmd t;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, 8);
    assert_good(&t);
    assert_int_equal(scsi_get_be32(r), 0xFFFFFFFFu);
    assert_int_equal(scsi_get_be32(r + 4), 512);

    memset(c, 0, sizeof(c));
    c[0] = SCSIOP_SERVICE_ACTION_IN16;
    c[1] = SERVICE_ACTION_READ_CAPACITY16;
    scsi_put_be32(c + 10, 32);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(scsi_get_be64(r), (1ull << 32) + 9);
    fx_close(&f);
}

static void test_read_capacity16_returns_32_bytes_cut_to_allocation_length(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.block_size = 4096};
    fx_open(&f, DISK_BYTES, &cfg, &caps_none, false);
    uint8_t c[16] = {SCSIOP_SERVICE_ACTION_IN16, SERVICE_ACTION_READ_CAPACITY16};
    uint8_t r[64];
    memset(r, 0xAA, sizeof(r));
    scsi_put_be32(c + 10, 64);
    struct tcmd t;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 32);
    uint8_t want[32] = {0};
    scsi_put_be64(want, DISK_BYTES / 4096 - 1);
    scsi_put_be32(want + 8, 4096);
    assert_memory_equal(r, want, 32);

    scsi_put_be32(c + 10, 12);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 12);
    fx_close(&f);
}

static void test_service_action_in16_unknown_action_returns_invalid_field_byte1_bit4(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    uint8_t c[16] = {SCSIOP_SERVICE_ACTION_IN16, 0x11};
    uint8_t r[32];
    struct tcmd t;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, r, sizeof(r));
    assert_invalid_cdb_field(&t, 1, 4);
    fx_close(&f);
}

/* ---- START STOP UNIT ---------------------------------------------------------------------- */

static void test_stopped_unit_fails_media_access_with_not_ready_until_started(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    uint8_t stop[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x00, 0};
    uint8_t start[6] = {SCSIOP_START_STOP_UNIT, 0x01, 0, 0, 0x01, 0};
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    uint8_t inq[6] = {SCSIOP_INQUIRY, 0, 0, 0, 36, 0};
    uint8_t r[512], c[10];
    struct tcmd t;
    run_cmd(f.lu, &t, stop, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 1); /* NO_FLUSH=0 */
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_LUN_NOT_READY,
                 SCSI_SENSEQ_INIT_COMMAND_REQUIRED);
    cdb10(c, SCSIOP_READ, 0, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_check(&t, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_LUN_NOT_READY,
                 SCSI_SENSEQ_INIT_COMMAND_REQUIRED);
    run_cmd(f.lu, &t, inq, 6, SCSI_DIR_IN, r, 36);
    assert_good(&t);
    run_cmd(f.lu, &t, start, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    fx_close(&f);
}

static void test_start_stop_bad_fields_return_invalid_field(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    struct tcmd t;
    uint8_t loej[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x02, 0};
    run_cmd(f.lu, &t, loej, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 1);
    uint8_t pc[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x30, 0};
    run_cmd(f.lu, &t, pc, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 7);
    uint8_t rsv[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x08, 0};
    run_cmd(f.lu, &t, rsv, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 4, 3);
    fx_close(&f);
}

/* ---- concurrency -------------------------------------------------------------------------- */

struct worker {
    struct scsi_lu *lu;
    struct mock_backend *mb;
    int id;
    int bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t buf[512], rd[512], c[10];
    for (int i = 0; i < 500; i++) {
        uint32_t lba = (uint32_t)(w->id * 100 + i % 100);
        memset(buf, (uint8_t)(w->id + i), sizeof(buf));
        struct tcmd t;
        cdb10(c, SCSIOP_WRITE, lba, 1);
        run_cmd(w->lu, &t, c, 10, SCSI_DIR_OUT, buf, sizeof(buf));
        w->bad += t.ndone != 1 || t.cmd.status != SAM_STAT_GOOD;
        cdb10(c, SCSIOP_READ, lba, 1);
        run_cmd(w->lu, &t, c, 10, SCSI_DIR_IN, rd, sizeof(rd));
        w->bad += t.ndone != 1 || t.cmd.status != SAM_STAT_GOOD || memcmp(rd, buf, 512) != 0;
    }
    return NULL;
}

static void test_concurrent_commands_from_four_threads_all_complete_correctly(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_none, false);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.lu = f.lu, .mb = f.mb, .id = i};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    fx_close(&f);
}

static void test_create_rejects_bad_block_size_and_tiny_backend(void **state)
{
    struct mock_backend *mb = mock_backend_create(4096, NULL);
    struct scsi_lu *lu = NULL;
    struct scsi_disk_config cfg = {.block_size = 520};
    assert_int_equal(scsi_disk_create(&cfg, &mb->be, &lu), -EINVAL);
    cfg.block_size = 8192;
    assert_int_equal(scsi_disk_create(&cfg, &mb->be, &lu), -EINVAL);
    cfg.block_size = 512;
    cfg.vendor = "TOO LONG VENDOR";
    assert_int_equal(scsi_disk_create(&cfg, &mb->be, &lu), -EINVAL);
    assert_null(lu);
    be_destroy(&mb->be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write10_then_read10_returns_the_data_byte_for_byte),
        cmocka_unit_test(test_read6_transfer_length_zero_means_256_blocks),
        cmocka_unit_test(test_write6_uses_21_bit_lba),
        cmocka_unit_test(test_read12_write12_read16_write16_roundtrip),
        cmocka_unit_test(test_read10_past_capacity_returns_lba_out_of_range),
        cmocka_unit_test(test_read16_lba_near_2_to_64_does_not_wrap_and_returns_lba_out_of_range),
        cmocka_unit_test(test_read10_longer_than_max_transfer_returns_invalid_field_in_cdb),
        cmocka_unit_test(test_read10_rdprotect_and_reserved_bits_return_field_pointer),
        cmocka_unit_test(test_write10_with_short_data_out_returns_invalid_field_in_cdb),
        cmocka_unit_test(test_read10_with_short_data_in_transfers_what_fits),
        cmocka_unit_test(test_unspecified_direction_lets_the_cdb_decide),
        cmocka_unit_test(test_write_to_read_only_lu_returns_data_protect),
        cmocka_unit_test(test_write10_fua_is_passed_to_the_backend),
        cmocka_unit_test(test_write_fua_without_backend_fua_flushes_after_the_write),
        cmocka_unit_test(test_write_cache_disabled_in_config_makes_every_write_fua),
        cmocka_unit_test(test_read_backend_eio_returns_medium_error_unrecovered_read_error),
        cmocka_unit_test(test_write_backend_eio_returns_medium_error_write_error),
        cmocka_unit_test(test_write_backend_enospc_returns_space_allocation_failed),
        cmocka_unit_test(test_backend_ebusy_returns_busy_status_without_sense),
        cmocka_unit_test(test_flush_error_returns_write_error_without_information),
        cmocka_unit_test(test_deferred_backend_completion_completes_the_command_later),
        cmocka_unit_test(test_completion_on_another_thread_runs_done_once),
        cmocka_unit_test(test_read_into_six_segments_passes_them_whole_in_one_request),
        cmocka_unit_test(test_write_from_forty_small_segments_ending_mid_segment_is_split_in_two),
        cmocka_unit_test(test_verify10_bytchk0_checks_the_range_only),
        cmocka_unit_test(test_verify10_bytchk1_matching_data_returns_good),
        cmocka_unit_test(test_verify10_bytchk1_miscompare_reports_offset_of_first_difference),
        cmocka_unit_test(test_verify16_bytchk1_larger_than_a_bounce_slot_compares_every_chunk),
        cmocka_unit_test(test_verify_bytchk_10b_returns_invalid_field),
        cmocka_unit_test(test_verify_read_error_returns_unrecovered_read_error),
        cmocka_unit_test(test_synchronize_cache10_flushes_the_backend),
        cmocka_unit_test(test_synchronize_cache_without_can_flush_returns_good_without_flush),
        cmocka_unit_test(test_read_capacity10_returns_last_lba_and_block_length),
        cmocka_unit_test(test_read_capacity10_beyond_32_bits_returns_ffffffff),
        cmocka_unit_test(test_read_capacity16_returns_32_bytes_cut_to_allocation_length),
        cmocka_unit_test(test_service_action_in16_unknown_action_returns_invalid_field_byte1_bit4),
        cmocka_unit_test(test_stopped_unit_fails_media_access_with_not_ready_until_started),
        cmocka_unit_test(test_start_stop_bad_fields_return_invalid_field),
        cmocka_unit_test(test_concurrent_commands_from_four_threads_all_complete_correctly),
        cmocka_unit_test(test_create_rejects_bad_block_size_and_tiny_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
