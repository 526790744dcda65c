/*
 * Logical block provisioning of the disk device server (SBC-4 4.7): READ CAPACITY(16) LBPME and
 * LBPRZ, VPD B0h limits (each one checked against what the commands enforce) and B2h, UNMAP,
 * WRITE SAME (10)/(16) with UNMAP, NDOB and ANCHOR, GET LBA STATUS over the backend's allocation
 * map, and FORMAT UNIT, over the mock backend.
 */
#include <errno.h>

#include "devices_test.h"

#define DISK_BYTES (1024 * 512) /* 1024 blocks of 512, 128 allocation granules of 4 KiB */

static const struct be_caps caps_none = {0};
static const struct be_caps caps_thin = {.can_flush = true,
                                         .can_trim = true,
                                         .trim_zeroes = true,
                                         .can_zero = true,
                                         .can_extents = true};
static const struct be_caps caps_zero = {.can_flush = true, .can_zero = true};

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i])
            return false;
    }
    return true;
}

/* Writes blocks [lba, lba + n) with `v` through WRITE(16). */
static void write_blocks(struct fx *f, uint64_t lba, uint32_t n, uint8_t v)
{
    static uint8_t buf[256 * 512];
    assert_true(n <= 256);
    memset(buf, v, n * 512u);
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_WRITE16, lba, n);
    run_cmd(f->lu, &t, c, 16, SCSI_DIR_OUT, buf, n * 512u);
    assert_good(&t);
}

/* An UNMAP parameter list of `n` descriptors (lba, count) pairs. */
static uint32_t unmap_list(uint8_t *p, const uint64_t (*d)[2], uint32_t n)
{
    memset(p, 0, 8 + 16 * n);
    scsi_put_be16(p, (uint16_t)(6 + 16 * n));
    scsi_put_be16(p + 2, (uint16_t)(16 * n));
    for (uint32_t i = 0; i < n; i++) {
        scsi_put_be64(p + 8 + 16 * i, d[i][0]);
        scsi_put_be32(p + 8 + 16 * i + 8, (uint32_t)d[i][1]);
    }
    return 8 + 16 * n;
}

static void unmap(struct fx *f, struct tcmd *t, uint8_t *list, uint32_t len)
{
    uint8_t c[10];
    cdb10(c, SCSIOP_UNMAP, 0, 0);
    scsi_put_be16(c + 7, (uint16_t)len);
    run_cmd(f->lu, t, c, 10, SCSI_DIR_OUT, list, len);
}

static void inquiry_vpd(struct scsi_lu *lu, struct tcmd *t, uint8_t page, uint8_t *buf)
{
    uint8_t c[6] = {SCSIOP_INQUIRY, 1, page, 0, 64, 0};
    run_cmd(lu, t, c, 6, SCSI_DIR_IN, buf, 64);
}

struct lba_desc {
    uint64_t lba;
    uint32_t n;
    uint8_t status;
};

/* GET LBA STATUS from lba; returns the number of descriptors, filled into d. */
static uint32_t get_lba_status(struct fx *f, uint64_t lba, uint32_t alloc, struct lba_desc *d)
{
    static uint8_t buf[8 + 16 * 64];
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_SERVICE_ACTION_IN16, lba, alloc);
    c[1] = SERVICE_ACTION_GET_LBA_STATUS;
    memset(buf, 0xEE, sizeof(buf));
    run_cmd(f->lu, &t, c, 16, SCSI_DIR_IN, buf, alloc);
    assert_good(&t);
    uint32_t len = scsi_get_be32(buf) + 4;
    assert_int_equal((len - 8) % 16, 0);
    assert_int_equal(t.cmd.transferred, len < alloc ? len : alloc);
    uint32_t n = (len - 8) / 16;
    for (uint32_t i = 0; i < n; i++) {
        d[i].lba = scsi_get_be64(buf + 8 + 16 * i);
        d[i].n = scsi_get_be32(buf + 16 + 16 * i);
        d[i].status = buf[20 + 16 * i] & 0x0F;
    }
    return n;
}

/* ---- READ CAPACITY(16), VPD -------------------------------------------------------------- */

static void test_read_capacity16_lbpme_lbprz_follow_the_backend(void **state)
{
    const struct be_caps *caps[] = {&caps_thin, &caps_zero};
    const uint8_t want[] = {0xC0, 0x00};
    for (int i = 0; i < 2; i++) {
        struct fx f;
        fx_open(&f, DISK_BYTES, NULL, caps[i], false);
        uint8_t c[16], b[32];
        struct tcmd t;
        cdb16(c, SCSIOP_SERVICE_ACTION_IN16, 0, 32);
        c[1] = SERVICE_ACTION_READ_CAPACITY16;
        run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, b, sizeof(b));
        assert_good(&t);
        assert_int_equal(b[14], want[i]);
        assert_int_equal(b[13], 0); /* one logical block per physical block */
        fx_close(&f);
    }
}

static void test_vpd_b2_describes_a_thin_lu_and_a_full_one(void **state)
{
    struct fx f;
    uint8_t b[64];
    struct tcmd t;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    inquiry_vpd(f.lu, &t, 0xB2, b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 8);
    assert_int_equal(scsi_get_be16(b + 2), 4);
    assert_int_equal(b[5], 0xE4);        /* LBPU, LBPWS, LBPWS10, LBPRZ; ANC_SUP=0, DP=0 */
    assert_int_equal(b[6] & 0x07, 0x02); /* thin provisioned */
    fx_close(&f);

    fx_open(&f, DISK_BYTES, NULL, &caps_zero, false);
    inquiry_vpd(f.lu, &t, 0xB2, b);
    assert_good(&t);
    assert_int_equal(b[5], 0);
    assert_int_equal(b[6], 0);
    inquiry_vpd(f.lu, &t, 0xB0, b);
    assert_int_equal(scsi_get_be32(b + 20), 0); /* no UNMAP: no unmap limits */
    assert_int_equal(scsi_get_be32(b + 24), 0);
    fx_close(&f);
}

/* Every limit of B0h, and the command that enforces it one past the limit. */
static void test_vpd_b0_limits_are_the_ones_enforced(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {
        .block_size = 512, .write_cache = true, .max_transfer_blocks = 64};
    fx_open(&f, DISK_BYTES, &cfg, &caps_thin, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry_vpd(f.lu, &t, 0xB0, b);
    assert_good(&t);
    assert_int_equal(scsi_get_be16(b + 2), 0x3C);
    assert_int_equal(b[4] & 0x01, 0); /* WSNZ=0 */
    uint8_t max_caw = b[5];
    uint32_t mtl = scsi_get_be32(b + 8);
    uint32_t max_unmap = scsi_get_be32(b + 20);
    uint32_t max_desc = scsi_get_be32(b + 24);
    uint64_t max_ws = scsi_get_be64(b + 36);
    assert_int_equal(max_caw, 128);
    assert_int_equal(mtl, 64);
    assert_int_equal(max_unmap, 1u << 20);
    assert_int_equal(max_desc, 256);
    assert_int_equal(scsi_get_be32(b + 28), 8);           /* OPTIMAL UNMAP GRANULARITY */
    assert_int_equal(scsi_get_be32(b + 32), 0x80000000u); /* UGAVALID, alignment 0 */
    assert_int_equal(max_ws, 2u << 20);

    /* MAXIMUM TRANSFER LENGTH + 1 */
    static uint8_t data[2 * 129 * 512];
    uint8_t c[16];
    cdb10(c, SCSIOP_WRITE, 0, (uint16_t)(mtl + 1));
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, data, (mtl + 1) * 512);
    assert_invalid_cdb_field(&t, 7, -1);
    /* MAXIMUM COMPARE AND WRITE LENGTH + 1 */
    cdb16(c, SCSIOP_COMPARE_AND_WRITE, 0, 0);
    c[13] = (uint8_t)(max_caw + 1);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, data, 2 * (max_caw + 1) * 512u);
    assert_invalid_cdb_field(&t, 13, -1);
    /* MAXIMUM WRITE SAME LENGTH + 1 (checked before the range) */
    cdb16(c, SCSIOP_WRITE_SAME16, 0, (uint32_t)(max_ws + 1));
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, data, 512);
    assert_invalid_cdb_field(&t, 10, -1);
    /* MAXIMUM UNMAP LBA COUNT + 1 in one descriptor */
    static uint8_t list[8 + 16 * 260];
    uint64_t one[1][2] = {{0, max_unmap + 1ull}};
    unmap(&f, &t, list, unmap_list(list, one, 1));
    assert_invalid_param_field(&t, 16, -1);
    /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT + 1 */
    static uint64_t many[257][2];
    for (int i = 0; i < 257; i++) {
        many[i][0] = (uint64_t)i;
        many[i][1] = 1;
    }
    unmap(&f, &t, list, unmap_list(list, (const uint64_t(*)[2])many, 257));
    assert_invalid_param_field(&t, 2, -1);
    /* and exactly the maxima pass */
    unmap(&f, &t, list, unmap_list(list, (const uint64_t(*)[2])many, 256));
    assert_good(&t);
    assert_int_equal(f.mb->nreq, 256); /* one discard per descriptor, nothing before */
    fx_close(&f);
}

/* ---- UNMAP -------------------------------------------------------------------------------- */

static void test_unmap_deallocates_every_descriptor_and_reads_zero(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 64, 0xAB);
    mock_backend_clear_log(f.mb);
    uint8_t list[8 + 16 * 3];
    const uint64_t d[3][2] = {{8, 8}, {20, 0}, {40, 3}};
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, d, 3));
    assert_good(&t);
    /* the zero-length descriptor asks for nothing */
    assert_int_equal(mock_backend_count(f.mb, BE_OP_DISCARD), 2);
    assert_int_equal(f.mb->log[0].offset, 8 * 512);
    assert_int_equal(f.mb->log[0].length, 8 * 512);
    assert_int_equal(f.mb->log[1].offset, 40 * 512);
    assert_int_equal(f.mb->log[1].length, 3 * 512);
    for (int lba = 0; lba < 64; lba++) {
        bool gone = (lba >= 8 && lba < 16) || (lba >= 40 && lba < 43);
        const uint8_t *blk = f.mb->data + lba * 512;
        assert_true(gone ? zero(blk, 512) : blk[0] == 0xAB && blk[511] == 0xAB);
    }
    fx_close(&f);
}

static void test_unmap_checks_the_whole_list_before_deallocating_anything(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 16, 0x11);
    mock_backend_clear_log(f.mb);
    uint8_t list[8 + 16 * 2];
    const uint64_t d[2][2] = {{0, 8}, {1020, 5}}; /* the second runs past block 1023 */
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, d, 2));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    assert_int_equal(f.mb->nreq, 0);
    assert_int_equal(f.mb->data[0], 0x11);
    fx_close(&f);
}

static void test_unmap_parameter_list_and_cdb_checks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    uint8_t list[8 + 16 * 2];
    const uint64_t d[2][2] = {{0, 8}, {8, 8}};
    uint32_t len = unmap_list(list, d, 2);
    struct tcmd t;
    uint8_t c[10];

    /* PARAMETER LIST LENGTH 0: nothing to do */
    cdb10(c, SCSIOP_UNMAP, 0, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, NULL, 0);
    assert_good(&t);
    /* 1..7: shorter than the header */
    scsi_put_be16(c + 7, 7);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, list, 7);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
    /* ANCHOR: anchored blocks are not supported */
    scsi_put_be16(c + 7, (uint16_t)len);
    c[1] = 0x01;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, list, len);
    assert_invalid_cdb_field(&t, 1, 0);
    c[1] = 0;
    /* reserved byte 2 */
    c[2] = 0x80;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, list, len);
    assert_invalid_cdb_field(&t, 2, 7);
    c[2] = 0;
    /* the initiator sends less than PARAMETER LIST LENGTH */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, list, len - 1);
    assert_invalid_cdb_field(&t, 7, -1);
    assert_int_equal(f.mb->nreq, 0);
    /* BLOCK DESCRIPTOR DATA LENGTH 20: one whole descriptor; the partial one is ignored */
    scsi_put_be16(list + 2, 20);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, list, len);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_DISCARD), 1);
    fx_close(&f);
}

static void test_unmap_on_a_fully_provisioned_lu_is_an_invalid_opcode(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_zero, false);
    uint8_t list[8 + 16];
    const uint64_t d[1][2] = {{0, 8}};
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, d, 1));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
    /* and REPORT SUPPORTED OPERATION CODES does not claim it */
    uint8_t c[12] = {SCSIOP_MAINTENANCE_IN,
                     SERVICE_ACTION_REPORT_SUPPORTED_OPERATION_CODES,
                     1,
                     SCSIOP_UNMAP,
                     0,
                     0,
                     0,
                     0,
                     0,
                     64};
    uint8_t b[64];
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1] & 0x07, 0x01); /* not supported */
    fx_close(&f);
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    run_cmd(f.lu, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1] & 0x07, 0x03);
    fx_close(&f);
}

static void test_unmap_and_write_same_on_a_read_only_lu_are_write_protected(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.read_only = true};
    fx_open(&f, DISK_BYTES, &cfg, &caps_thin, false);
    uint8_t list[8 + 16], blk[512] = {0}, c[16];
    const uint64_t d[1][2] = {{0, 8}};
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, d, 1));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    cdb10(c, SCSIOP_WRITE_SAME, 0, 8);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    c[0] = SCSIOP_FORMAT_UNIT;
    memset(c + 1, 0, 5);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    assert_int_equal(f.mb->nreq, 0);
    fx_close(&f);
}

static void test_unmap_discard_error_is_a_medium_write_error(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    mock_backend_fail(f.mb, BE_OP_DISCARD, -EIO);
    uint8_t list[8 + 16];
    const uint64_t d[1][2] = {{24, 8}};
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, d, 1));
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, SCSI_ADSENSE_WRITE_ERROR, 0);
    assert_int_equal(scsi_get_be32(t.cmd.sense + 3), 24); /* INFORMATION: the first LBA */
    fx_close(&f);
}

/* ---- WRITE SAME --------------------------------------------------------------------------- */

static void test_write_same10_repeats_the_block_over_the_range(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    uint8_t blk[512], c[10];
    for (int i = 0; i < 512; i++)
        blk[i] = (uint8_t)(i * 3 + 1);
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE_SAME, 100, 300); /* 150 KiB: three backend writes of the slot */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 512);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 3);
    for (int lba = 100; lba < 400; lba++)
        assert_memory_equal(f.mb->data + lba * 512, blk, 512);
    assert_true(zero(f.mb->data + 99 * 512, 512));
    assert_true(zero(f.mb->data + 400 * 512, 512));
    fx_close(&f);
}

static void test_write_same_with_unmap_deallocates_the_range(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 64, 0xFF);
    mock_backend_clear_log(f.mb);
    uint8_t blk[512], c[16];
    memset(blk, 0xFF, sizeof(blk)); /* UNMAP=1 deallocates whatever the block holds */
    struct tcmd t;
    cdb16(c, SCSIOP_WRITE_SAME16, 16, 32);
    c[1] = 0x08;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    const struct mock_req *r = mock_backend_last(f.mb, BE_OP_DISCARD);
    assert_non_null(r);
    assert_int_equal(r->offset, 16 * 512);
    assert_int_equal(r->length, 32 * 512);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 0);
    assert_true(zero(f.mb->data + 16 * 512, 32 * 512));
    assert_int_equal(f.mb->data[48 * 512], 0xFF);
    /* WRITE SAME(10) with UNMAP as well */
    cdb10(c, SCSIOP_WRITE_SAME, 0, 8);
    c[1] = 0x08;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_DISCARD), 2);
    assert_true(zero(f.mb->data, 8 * 512));
    fx_close(&f);
}

static void test_write_same16_ndob_writes_zeros_or_unmaps(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 32, 0x5A);
    mock_backend_clear_log(f.mb);
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_WRITE_SAME16, 0, 8);
    c[1] = 0x01; /* NDOB, no UNMAP: zeros are written, the blocks stay mapped */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, NULL, 0);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 0);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_WRITE), 1);
    assert_true(zero(f.mb->data, 8 * 512));
    c[1] = 0x09; /* NDOB + UNMAP */
    scsi_put_be64(c + 2, 8);
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, NULL, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_DISCARD), 1);
    assert_true(zero(f.mb->data + 8 * 512, 8 * 512));
    assert_int_equal(f.mb->data[16 * 512], 0x5A);
    fx_close(&f);
}

static void test_write_same_field_checks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    uint8_t blk[1024] = {0}, c[16];
    struct tcmd t;
    /* ANCHOR (ANC_SUP=0), with or without UNMAP */
    cdb10(c, SCSIOP_WRITE_SAME, 0, 1);
    c[1] = 0x10;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_invalid_cdb_field(&t, 1, 4);
    c[1] = 0x18;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_invalid_cdb_field(&t, 1, 4);
    /* obsolete PBDATA/LBDATA and WRPROTECT */
    c[1] = 0x04;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_invalid_cdb_field(&t, 1, 2);
    c[1] = 0x20;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_invalid_cdb_field(&t, 1, 7); /* WRPROTECT's most significant bit */
    c[1] = 0;
    /* a data-out that is not exactly one block */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 256);
    assert_invalid_cdb_field(&t, 7, -1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 1024);
    assert_invalid_cdb_field(&t, 7, -1);
    /* past the end, with a count or with 0 (= to the end) */
    cdb10(c, SCSIOP_WRITE_SAME, 1020, 5);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    cdb10(c, SCSIOP_WRITE_SAME, 1025, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    assert_int_equal(f.mb->nreq, 0);
    /* 0 blocks (WSNZ=0): from the LBA to the end */
    memset(blk, 0x77, 512);
    cdb10(c, SCSIOP_WRITE_SAME, 1000, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, 512);
    assert_good(&t);
    assert_int_equal(f.mb->data[1000 * 512], 0x77);
    assert_int_equal(f.mb->data[DISK_BYTES - 1], 0x77);
    assert_int_equal(f.mb->data[999 * 512 + 511], 0);
    fx_close(&f);
}

static void test_write_same_unmap_on_a_full_lu_writes_the_pattern(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_zero, false);
    uint8_t blk[512], c[10];
    memset(blk, 0x3C, sizeof(blk));
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE_SAME, 4, 4);
    c[1] = 0x08;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, blk, sizeof(blk));
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_DISCARD), 0);
    assert_int_equal(f.mb->data[4 * 512], 0x3C);
    assert_int_equal(f.mb->data[8 * 512 - 1], 0x3C);
    fx_close(&f);
}

/* ---- GET LBA STATUS ----------------------------------------------------------------------- */

static void test_get_lba_status_reports_mapped_and_deallocated_runs(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 16, 1); /* granules 0, 1 */
    write_blocks(&f, 32, 8, 1); /* granule 4 */
    write_blocks(&f, 60, 2, 1); /* part of granule 7: the whole granule is allocated */
    struct lba_desc d[64];
    const struct lba_desc want[] = {{0, 16, 0},  {16, 16, 1}, {32, 8, 0},
                                    {40, 16, 1}, {56, 8, 0},  {64, 960, 1}};
    for (uint32_t window = 0; window <= 1; window++) {
        f.mb->extent_window = window; /* 1: the backend answers one run per call */
        uint32_t n = get_lba_status(&f, 0, 8 + 16 * 64, d);
        assert_int_equal(n, 6);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(d[i].lba, want[i].lba);
            assert_int_equal(d[i].n, want[i].n);
            assert_int_equal(d[i].status, want[i].status);
        }
    }
    /* from inside a run, and an allocation length for one descriptor */
    uint32_t n = get_lba_status(&f, 20, 24, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].lba, 20);
    assert_int_equal(d[0].n, 12);
    assert_int_equal(d[0].status, 1);
    /* the last block */
    n = get_lba_status(&f, 1023, 24, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].lba, 1023);
    assert_int_equal(d[0].n, 1);
    fx_close(&f);
}

static void test_get_lba_status_follows_unmap_and_write(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 64, 9);
    uint8_t list[8 + 16];
    const uint64_t one[1][2] = {{8, 16}};
    struct tcmd t;
    unmap(&f, &t, list, unmap_list(list, one, 1));
    assert_good(&t);
    struct lba_desc d[8];
    uint32_t n = get_lba_status(&f, 0, 8 + 16 * 8, d);
    assert_true(n >= 3);
    assert_int_equal(d[0].n, 8);
    assert_int_equal(d[0].status, 0);
    assert_int_equal(d[1].lba, 8);
    assert_int_equal(d[1].n, 16);
    assert_int_equal(d[1].status, 1);
    assert_int_equal(d[2].lba, 24);
    assert_int_equal(d[2].status, 0);
    /* an unmap smaller than a granule zeroes in place: still mapped */
    const uint64_t part[1][2] = {{30, 1}};
    unmap(&f, &t, list, unmap_list(list, part, 1));
    assert_good(&t);
    n = get_lba_status(&f, 30, 24, d);
    assert_int_equal(d[0].status, 0);
    assert_true(zero(f.mb->data + 30 * 512, 512));
    fx_close(&f);
}

static void test_get_lba_status_field_checks_and_backend_without_a_map(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    uint8_t c[16], b[64];
    struct tcmd t;
    cdb16(c, SCSIOP_SERVICE_ACTION_IN16, 1024, 64);
    c[1] = SERVICE_ACTION_GET_LBA_STATUS;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, b, sizeof(b));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                 SCSI_SENSEQ_LBA_OUT_OF_RANGE);
    cdb16(c, SCSIOP_SERVICE_ACTION_IN16, 0, 64);
    c[1] = SERVICE_ACTION_GET_LBA_STATUS;
    c[14] = 0x01; /* REPORT TYPE: not supported */
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 14, 1); /* REPORT TYPE is bits 1..0 */
    fx_close(&f);

    struct be_caps no_map = caps_thin;
    no_map.can_extents = false;
    fx_open(&f, DISK_BYTES, NULL, &no_map, false);
    struct lba_desc d[4];
    uint32_t n = get_lba_status(&f, 100, 64, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].lba, 100);
    assert_int_equal(d[0].n, 924);
    assert_int_equal(d[0].status, 0); /* mapped or unknown */
    assert_int_equal(f.mb->nextents, 0);
    fx_close(&f);
}

/* ---- FORMAT UNIT -------------------------------------------------------------------------- */

static void test_format_unit_leaves_every_block_zero_by_the_cheapest_means(void **state)
{
    const struct be_caps *caps[] = {&caps_thin, &caps_zero, &caps_none};
    const enum be_op op[] = {BE_OP_DISCARD, BE_OP_WRITE_ZEROES, BE_OP_WRITE};
    for (int i = 0; i < 3; i++) {
        struct fx f;
        fx_open(&f, DISK_BYTES, NULL, caps[i], false);
        memset(f.mb->data, 0xCD, DISK_BYTES);
        uint8_t c[6] = {SCSIOP_FORMAT_UNIT};
        struct tcmd t;
        run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
        assert_good(&t);
        assert_true(zero(f.mb->data, DISK_BYTES));
        assert_int_equal(mock_backend_count(f.mb, op[i]), i == 2 ? DISK_BYTES / 65536 : 1);
        fx_close(&f);
    }
}

static void test_format_unit_parameter_header_checks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    struct tcmd t;
    uint8_t c[6] = {SCSIOP_FORMAT_UNIT, 0x10}; /* FMTDATA, short header */
    uint8_t h[8] = {0};
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 4);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 4);
    h[3] = 8; /* a defect list */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 4);
    assert_invalid_param_field(&t, 2, -1);
    h[3] = 0;
    h[1] = 0x08; /* IP: no initialization pattern */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 4);
    assert_invalid_param_field(&t, 1, 3);
    h[1] = 0;
    h[0] = 0x01; /* PROTECTION FIELD USAGE */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 4);
    assert_invalid_param_field(&t, 0, 2);
    h[0] = 0;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 2); /* short parameter list */
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
    c[1] = 0x30; /* LONGLIST: 8-byte header, 4-byte defect list length */
    h[7] = 1;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 8);
    assert_invalid_param_field(&t, 4, -1);
    h[7] = 0;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, h, 8);
    assert_good(&t);
    c[1] = 0x08; /* CMPLST without FMTDATA */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 3);
    c[1] = 0xC0; /* FMTPINFO: no protection information */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 7);
    fx_close(&f);
}

/* ---- SANITIZE ----------------------------------------------------------------------------- */

static void sanitize_cdb(uint8_t *c, uint8_t sa, uint16_t plen)
{
    memset(c, 0, 10);
    c[0] = 0x48;
    c[1] = sa;
    scsi_put_be16(c + 7, plen);
}

static void test_sanitize_block_erase_erases_and_exit_failure_mode_is_good(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    write_blocks(&f, 0, 64, 0x61);
    write_blocks(&f, 1000, 24, 0x61);
    mock_backend_clear_log(f.mb);
    uint8_t c[10], b[64];
    struct tcmd t;
    sanitize_cdb(c, 0x82, 0); /* IMMED, BLOCK ERASE */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    const struct mock_req *r = mock_backend_last(f.mb, BE_OP_DISCARD);
    assert_non_null(r);
    assert_int_equal(r->offset, 0);
    assert_int_equal(r->length, DISK_BYTES);
    assert_true(zero(f.mb->data, DISK_BYTES));
    struct lba_desc d[4];
    assert_int_equal(get_lba_status(&f, 0, 64, d), 1);
    assert_int_equal(d[0].n, 1024);
    assert_int_equal(d[0].status, 1);
    sanitize_cdb(c, 0x1F, 0); /* EXIT FAILURE MODE: none to leave */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    /* VPD B1h: WABEREQ 01b, WACEREQ 00b */
    inquiry_vpd(f.lu, &t, 0xB1, b);
    assert_good(&t);
    assert_int_equal(b[7], 0x40);
    fx_close(&f);
}

static void test_sanitize_field_checks(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    uint8_t c[10], p[8] = {0};
    struct tcmd t;
    sanitize_cdb(c, 0x02, 8); /* BLOCK ERASE takes no parameter list */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, p, sizeof(p));
    assert_invalid_cdb_field(&t, 7, -1);
    sanitize_cdb(c, 0x1F, 8);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, p, sizeof(p));
    assert_invalid_cdb_field(&t, 7, -1);
    const uint8_t unsupported[] = {0x00, 0x01, 0x03, 0x04, 0x1E}; /* OVERWRITE, CRYPTO ERASE, .. */
    for (size_t i = 0; i < sizeof(unsupported); i++) {
        sanitize_cdb(c, unsupported[i], 0);
        run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
        assert_invalid_cdb_field(&t, 1, 4);
    }
    sanitize_cdb(c, 0x02 | 0x40, 0); /* reserved bit 6 */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 6);
    assert_int_equal(f.mb->nreq, 0);
    fx_close(&f);

    struct scsi_disk_config ro = {.read_only = true};
    fx_open(&f, DISK_BYTES, &ro, &caps_thin, false);
    sanitize_cdb(c, 0x02, 0);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0);
    fx_close(&f);
}

/* An erase of the whole medium holds the write gate exclusive: a write waits for it. */
static void test_sanitize_and_format_hold_writes_until_they_finish(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_zero, false);
    f.mb->deferred = true;
    uint8_t c[10], w[512], wc[10];
    memset(w, 0x99, sizeof(w));
    struct tcmd t1, t2;
    sanitize_cdb(c, 0x02, 0);
    run_cmd(f.lu, &t1, c, 10, SCSI_DIR_NONE, NULL, 0);
    cdb10(wc, SCSIOP_WRITE, 3, 1);
    run_cmd(f.lu, &t2, wc, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_int_equal(f.mb->nreq, 1); /* only the erase's WRITE_ZEROES */
    assert_int_equal(f.mb->log[0].op, BE_OP_WRITE_ZEROES);
    mock_backend_release(f.mb);
    assert_good(&t1);
    assert_good(&t2);
    assert_int_equal(f.mb->data[3 * 512], 0x99); /* the write landed after the erase */
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_capacity16_lbpme_lbprz_follow_the_backend),
        cmocka_unit_test(test_vpd_b2_describes_a_thin_lu_and_a_full_one),
        cmocka_unit_test(test_vpd_b0_limits_are_the_ones_enforced),
        cmocka_unit_test(test_unmap_deallocates_every_descriptor_and_reads_zero),
        cmocka_unit_test(test_unmap_checks_the_whole_list_before_deallocating_anything),
        cmocka_unit_test(test_unmap_parameter_list_and_cdb_checks),
        cmocka_unit_test(test_unmap_on_a_fully_provisioned_lu_is_an_invalid_opcode),
        cmocka_unit_test(test_unmap_and_write_same_on_a_read_only_lu_are_write_protected),
        cmocka_unit_test(test_unmap_discard_error_is_a_medium_write_error),
        cmocka_unit_test(test_write_same10_repeats_the_block_over_the_range),
        cmocka_unit_test(test_write_same_with_unmap_deallocates_the_range),
        cmocka_unit_test(test_write_same16_ndob_writes_zeros_or_unmaps),
        cmocka_unit_test(test_write_same_field_checks),
        cmocka_unit_test(test_write_same_unmap_on_a_full_lu_writes_the_pattern),
        cmocka_unit_test(test_get_lba_status_reports_mapped_and_deallocated_runs),
        cmocka_unit_test(test_get_lba_status_follows_unmap_and_write),
        cmocka_unit_test(test_get_lba_status_field_checks_and_backend_without_a_map),
        cmocka_unit_test(test_format_unit_leaves_every_block_zero_by_the_cheapest_means),
        cmocka_unit_test(test_format_unit_parameter_header_checks),
        cmocka_unit_test(test_sanitize_block_erase_erases_and_exit_failure_mode_is_good),
        cmocka_unit_test(test_sanitize_field_checks),
        cmocka_unit_test(test_sanitize_and_format_hold_writes_until_they_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
