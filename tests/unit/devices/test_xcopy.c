/*
 * The copy manager: EXTENDED COPY (LID1) within one LU and between two LUs named by their NAA
 * designators, completing inline and on deferred backend completions; every rejected parameter
 * list (descriptor types, counts, lengths, reserved fields); copy errors as COPY ABORTED; and
 * RECEIVE COPY RESULTS (COPY STATUS, OPERATING PARAMETERS, FAILED SEGMENT DETAILS), VPD 8Fh.
 */
#include <errno.h>

#include "devices_test.h"

#define BLOCKS     2048
#define DISK_BYTES (BLOCKS * 512)

static const struct be_caps caps_flush = {.can_flush = true};

static const struct scsi_disk_config cfg1 = {
    .device_id = 0x1111, .block_size = 512, .write_cache = true};
static const struct scsi_disk_config cfg2 = {
    .device_id = 0x2222, .block_size = 512, .write_cache = true};

/* The LU's NAA designator, from its VPD 83h. */
static void naa_of(struct scsi_lu *lu, uint8_t naa[16])
{
    uint8_t c[6] = {SCSIOP_INQUIRY, 1, 0x83, 0, 255, 0}, b[255];
    struct tcmd t;
    run_cmd(lu, &t, c, 6, SCSI_DIR_IN, b, 255);
    assert_good(&t);
    assert_int_equal(b[5] & 0x0F, 3);
    memcpy(naa, b + 8, 16);
}

static uint32_t tgt_desc(uint8_t *p, const uint8_t naa[16])
{
    memset(p, 0, 32);
    p[0] = 0xE4;
    p[4] = 0x01; /* binary */
    p[5] = 0x03; /* LU association, NAA */
    p[7] = 16;
    memcpy(p + 8, naa, 16);
    p[31] = 0x00;
    p[30] = 0x02; /* DISK BLOCK LENGTH 512 */
    return 32;
}

static uint32_t seg_desc(uint8_t *p, uint16_t src, uint16_t dst, uint16_t blocks, uint64_t slba,
                         uint64_t dlba)
{
    memset(p, 0, 28);
    p[0] = 0x02;
    scsi_put_be16(p + 2, 0x18);
    scsi_put_be16(p + 4, src);
    scsi_put_be16(p + 6, dst);
    scsi_put_be16(p + 10, blocks);
    scsi_put_be64(p + 12, slba);
    scsi_put_be64(p + 20, dlba);
    return 28;
}

static void header(uint8_t *p, uint8_t list_id, uint8_t usage, uint16_t tdl, uint32_t sdl)
{
    memset(p, 0, 16);
    p[0] = list_id;
    p[1] = (uint8_t)(usage << 3);
    scsi_put_be16(p + 2, tdl);
    scsi_put_be32(p + 8, sdl);
}

static void xcopy(struct scsi_lu *lu, struct tcmd *t, uint8_t *p, uint32_t len)
{
    uint8_t c[16] = {SCSIOP_EXTENDED_COPY};
    scsi_put_be32(c + 10, len);
    tcmd_prepare(t, c, 16, SCSI_DIR_OUT, p, len);
    scsi_lu_execute(lu, &t->cmd);
}

static void rcr(struct scsi_lu *lu, struct tcmd *t, uint8_t sa, uint8_t list_id, uint8_t *b,
                uint32_t alloc)
{
    uint8_t c[16] = {SCSIOP_RECEIVE_COPY_RESULTS, sa, list_id};
    scsi_put_be32(c + 10, alloc);
    memset(b, 0xEE, alloc);
    run_cmd(lu, t, c, 16, SCSI_DIR_IN, b, alloc);
}

static void fill(struct fx *f, uint64_t lba, uint32_t blocks, uint8_t v)
{
    memset(f->mb->data + lba * 512, v, (size_t)blocks * 512);
}

static bool is(struct fx *f, uint64_t lba, uint32_t blocks, uint8_t v)
{
    for (size_t i = 0; i < (size_t)blocks * 512; i++) {
        if (f->mb->data[lba * 512 + i] != v)
            return false;
    }
    return true;
}

static void test_copy_within_one_lu_and_copy_status(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &cfg1, &caps_flush, false);
    uint8_t naa[16], p[256], b[64];
    naa_of(f.lu, naa);
    fill(&f, 0, 8, 'A');
    fill(&f, 100, 8, 'B');
    uint32_t n = 16;
    n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 0, 4, 0, 1000);
    n += seg_desc(p + n, 0, 0, 8, 100, 1004);
    header(p, 7, 0, 32, 56);
    struct tcmd t;
    xcopy(f.lu, &t, p, n);
    assert_good(&t);
    assert_true(is(&f, 1000, 4, 'A'));
    assert_true(is(&f, 1004, 8, 'B'));
    assert_true(is(&f, 1012, 1, 0));
    rcr(f.lu, &t, 0x00, 7, b, 64);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 12);
    assert_int_equal(scsi_get_be32(b), 8);
    assert_int_equal(b[4], 0x01);                 /* completed, good */
    assert_int_equal(scsi_get_be16(b + 5), 2);    /* segments processed */
    assert_int_equal(b[7], 0);                    /* bytes */
    assert_int_equal(scsi_get_be32(b + 8), 6144); /* 12 blocks */
    /* FAILED SEGMENT DETAILS of a good copy: nothing */
    rcr(f.lu, &t, 0x04, 7, b, 64);
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b), 0);
    /* a list identifier nobody used; another initiator's */
    rcr(f.lu, &t, 0x00, 8, b, 64);
    assert_invalid_cdb_field(&t, 2, -1);
    uint8_t c[16] = {SCSIOP_RECEIVE_COPY_RESULTS, 0x00, 7};
    scsi_put_be32(c + 10, 64);
    tcmd_prepare(&t, c, 16, SCSI_DIR_IN, b, 64);
    t.cmd.nexus = 5;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00);
    scsi_lu_execute(f.lu, &t.cmd);
    assert_int_equal(sense_asc(&t.cmd), 0x24);
    /* LIST ID USAGE 10b: nothing held */
    header(p, 9, 2, 32, 28);
    n = 16 + 32;
    n += seg_desc(p + n, 0, 0, 1, 0, 2000);
    xcopy(f.lu, &t, p, n);
    assert_good(&t);
    rcr(f.lu, &t, 0x00, 9, b, 64);
    assert_invalid_cdb_field(&t, 2, -1);
    fx_close(&f);
}

static void test_copy_between_two_lus_by_naa(void **state)
{
    struct fx a, b;
    fx_open(&a, DISK_BYTES, &cfg1, &caps_flush, false);
    fx_open(&b, DISK_BYTES, &cfg2, &caps_flush, false);
    uint8_t na[16], nb[16], p[256];
    naa_of(a.lu, na);
    naa_of(b.lu, nb);
    assert_memory_not_equal(na, nb, 16);
    fill(&a, 10, 4, 'x');
    fill(&b, 20, 2, 'y');
    uint32_t n = 16;
    n += tgt_desc(p + n, na);
    n += tgt_desc(p + n, nb);
    n += seg_desc(p + n, 0, 1, 4, 10, 30); /* a → b */
    n += seg_desc(p + n, 1, 0, 2, 20, 40); /* b → a */
    header(p, 1, 2, 64, 56);
    struct tcmd t;
    xcopy(a.lu, &t, p, n); /* issued to a, but either may be named */
    assert_good(&t);
    assert_true(is(&b, 30, 4, 'x'));
    assert_true(is(&a, 40, 2, 'y'));
    /* once b is gone, its designator reaches nobody */
    fx_close(&b);
    xcopy(a.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x08, 0x04);
    fx_close(&a);
}

static void test_copy_with_deferred_backend_completions(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &cfg1, &caps_flush, false);
    uint8_t naa[16], p[128];
    naa_of(f.lu, naa);
    for (int i = 0; i < 2048 + 8; i++)
        f.mb->data[i] = (uint8_t)(i * 7);
    uint32_t n = 16;
    n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 0, 0, 0, 0); /* an empty segment first */
    header(p, 3, 0, 32, 28);
    struct tcmd t;
    xcopy(f.lu, &t, p, n);
    assert_good(&t);
    fx_close(&f);

    struct mock_backend *mb = mock_backend_create(4 * 1024 * 1024, &caps_flush);
    struct scsi_lu *lu;
    assert_int_equal(scsi_disk_create(&cfg1, &mb->be, &lu), 0);
    naa_of(lu, naa);
    static const uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00);
    memset(mb->data, 'q', 2304 * 512);
    n = 16;
    n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 0, 2304, 0, 4096);
    header(p, 3, 0, 32, 28);
    mb->deferred = true;
    xcopy(lu, &t, p, n);
    assert_int_equal(t.ndone, 0); /* waiting for the first read */
    /* each completion submits the next request from the completion path: read, write, read,
     * write (1 MiB, then 128 KiB) */
    assert_int_equal(mock_backend_release(mb), 4);
    assert_good(&t);
    for (size_t i = 0; i < 2304 * 512; i++)
        assert_int_equal(mb->data[4096 * 512 + i], 'q');
    mb->deferred = false;
    scsi_lu_destroy(lu);
    be_destroy(&mb->be);
}

static void test_copy_errors_are_copy_aborted_and_reported(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &cfg1, &caps_flush, false);
    uint8_t naa[16], p[256], b[96];
    naa_of(f.lu, naa);
    struct tcmd t;
    /* destination index with no target descriptor */
    uint32_t n = 16;
    n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 1, 4, 0, 100);
    header(p, 1, 0, 32, 28);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x0D, 0x02);
    /* past the end: the first segment is done, the second fails */
    n = 16 + 32;
    n += seg_desc(p + n, 0, 0, 1, 0, 100);
    n += seg_desc(p + n, 0, 0, 4, 0, BLOCKS - 1);
    header(p, 2, 0, 32, 56);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x0D, 0x02);
    rcr(f.lu, &t, 0x00, 2, b, 96);
    assert_good(&t);
    assert_int_equal(b[4], 0x02); /* completed with an error */
    assert_int_equal(scsi_get_be16(b + 5), 1);
    assert_int_equal(scsi_get_be32(b + 8), 512);
    rcr(f.lu, &t, 0x04, 2, b, 96);
    assert_good(&t);
    assert_int_equal(b[56], SAM_STAT_CHECK_CONDITION);
    assert_int_equal(scsi_get_be16(b + 58), 18);
    assert_int_equal(b[60], 0x70);
    assert_int_equal(b[62], SCSI_SENSE_COPY_ABORTED);
    assert_int_equal(scsi_get_be32(b), 60 + 18 - 4);
    /* a backend failure */
    mock_backend_fail(f.mb, BE_OP_READ, -EIO);
    n = 16 + 32;
    n += seg_desc(p + n, 0, 0, 1, 0, 100);
    header(p, 3, 0, 32, 28);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x0D, 0x01);
    mock_backend_fail(f.mb, BE_OP_READ, 0);
    /* a software write-protected destination */
    uint8_t sel[16] = {0, 0, 0, 0, 0x0A, 0x0A, 0x02, 0x10, 0x08};
    uint8_t ms[6] = {SCSIOP_MODE_SELECT, 0x10, 0, 0, 16, 0};
    run_cmd(f.lu, &t, ms, 6, SCSI_DIR_OUT, sel, 16);
    assert_good(&t);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x27, 0x02);
    fx_close(&f);
}

static void test_bad_parameter_lists(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &cfg1, &caps_flush, false);
    uint8_t naa[16], p[2048];
    naa_of(f.lu, naa);
    struct tcmd t;
    /* PARAMETER LIST LENGTH 0: nothing to do */
    xcopy(f.lu, &t, p, 0);
    assert_good(&t);
    /* shorter than the header; shorter than the descriptor lists say */
    uint32_t n = 16;
    n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 0, 1, 0, 100);
    header(p, 1, 0, 32, 28);
    xcopy(f.lu, &t, p, 15);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    xcopy(f.lu, &t, p, 16 + 31);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    xcopy(f.lu, &t, p, n - 1);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    /* unsupported target descriptor (FC N_Port_Name E0h) and segment descriptor (stream 03h) */
    p[16] = 0xE0;
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x07);
    p[16] = 0xE4;
    p[48] = 0x03;
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x09);
    p[48] = 0x02;
    /* a designator no LU has */
    p[16 + 8 + 15] ^= 0xFF;
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_COPY_ABORTED, 0x08, 0x04);
    p[16 + 8 + 15] ^= 0xFF;
    /* a peripheral device type other than a disk; a disk block length not the LU's */
    p[17] = 0x01;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 17, 4);
    p[17] = 0;
    p[16 + 30] = 0x10;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 16 + 29, -1);
    p[16 + 30] = 0x02;
    /* segment DESCRIPTOR LENGTH; reserved bits */
    p[48 + 3] = 0x14;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 48 + 2, -1);
    p[48 + 3] = 0x18;
    p[48 + 1] = 0x10;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 48 + 1, 4);
    p[48 + 1] = 0;
    /* LIST ID USAGE 01b reserved; 11b with a nonzero LIST IDENTIFIER; inline data */
    p[1] = 0x08;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 1, 4);
    p[1] = 0x18;
    xcopy(f.lu, &t, p, n);
    assert_invalid_param_field(&t, 0, -1);
    p[1] = 0;
    scsi_put_be32(p + 12, 4);
    xcopy(f.lu, &t, p, n + 4);
    assert_invalid_param_field(&t, 12, -1);
    scsi_put_be32(p + 12, 0);
    /* too many target descriptors (9), segment descriptors (17); over 1024 bytes of lists */
    n = 16;
    for (int i = 0; i < 9; i++)
        n += tgt_desc(p + n, naa);
    n += seg_desc(p + n, 0, 0, 1, 0, 100);
    header(p, 1, 0, 9 * 32, 28);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x06);
    n = 16 + tgt_desc(p + 16, naa);
    for (int i = 0; i < 17; i++)
        n += seg_desc(p + n, 0, 0, 1, 0, 100);
    header(p, 1, 0, 32, 17 * 28);
    xcopy(f.lu, &t, p, n);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x08);
    header(p, 1, 0, 32, 36 * 28);
    xcopy(f.lu, &t, p, 16 + 32 + 36 * 28);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    /* service action other than LID1 EXTENDED COPY */
    uint8_t c[16] = {SCSIOP_EXTENDED_COPY, 0x10};
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_OUT, p, 0);
    assert_invalid_cdb_field(&t, 1, 4);
    /* none of it wrote anything */
    assert_true(is(&f, 100, 1, 0));
    fx_close(&f);
}

static void test_operating_parameters_and_vpd_8f(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &cfg1, &caps_flush, false);
    uint8_t b[128];
    struct tcmd t;
    rcr(f.lu, &t, 0x03, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 46);
    assert_int_equal(scsi_get_be32(b), 42);
    assert_int_equal(scsi_get_be16(b + 8), 8);
    assert_int_equal(scsi_get_be16(b + 10), 16);
    assert_int_equal(scsi_get_be32(b + 12), 1024);
    assert_int_equal(scsi_get_be32(b + 16), 0xFFFF * 512);
    assert_int_equal(b[43], 2);
    assert_int_equal(b[44], 0x02);
    assert_int_equal(b[45], 0xE4);
    rcr(f.lu, &t, 0x01, 0, b, sizeof(b)); /* RECEIVE DATA: no held data */
    assert_invalid_cdb_field(&t, 1, 4);

    uint8_t c[6] = {SCSIOP_INQUIRY, 1, 0x8F, 0, 128, 0};
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, 128);
    assert_good(&t);
    assert_int_equal(b[1], 0x8F);
    uint32_t len = scsi_get_be16(b + 2);
    assert_int_equal(t.cmd.transferred, 4 + len);
    /* SUPPORTED COMMANDS: 83h/00h, 84h/00h 03h 04h */
    assert_int_equal(scsi_get_be16(b + 4), 0x0001);
    static const uint8_t cmds[] = {8, 0x83, 1, 0x00, 0x84, 3, 0x00, 0x03, 0x04};
    assert_memory_equal(b + 8, cmds, sizeof(cmds));
    uint32_t pos = 4 + 4 + scsi_get_be16(b + 6);
    assert_int_equal(scsi_get_be16(b + pos), 0x0004);
    assert_int_equal(b[pos + 4], 2);
    pos += 4 + scsi_get_be16(b + pos + 2);
    assert_int_equal(scsi_get_be16(b + pos), 0x8001);
    pos += 4 + scsi_get_be16(b + pos + 2);
    assert_int_equal(pos, 4 + len);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_within_one_lu_and_copy_status),
        cmocka_unit_test(test_copy_between_two_lus_by_naa),
        cmocka_unit_test(test_copy_with_deferred_backend_completions),
        cmocka_unit_test(test_copy_errors_are_copy_aborted_and_reported),
        cmocka_unit_test(test_bad_parameter_lists),
        cmocka_unit_test(test_operating_parameters_and_vpd_8f),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
