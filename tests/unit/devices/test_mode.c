/*
 * Mode parameters of the disk device server: MODE SENSE(6/10) byte for byte for each page
 * control, MODE SELECT(6/10) parameter list validation with its field pointers, WCE changes seen
 * by the backend as FUA, D_SENSE switching the sense format, and the MODE PARAMETERS CHANGED unit
 * attention for the other I_T nexuses.
 */
#include "devices_test.h"

#define DISK_BYTES (1000 * 512)

static const struct be_caps caps_fua = {.can_flush = true, .can_fua = true};

static const uint8_t caching_cur_wce[20] = {0x08, 0x12, 0x04};
static const uint8_t control_cur[12] = {0x0A, 0x0A, 0x02, 0x10};

static void mode_sense6(struct scsi_lu *lu, struct tcmd *t, uint8_t b1, uint8_t b2, uint8_t b3,
                        uint8_t alloc, uint8_t *buf)
{
    uint8_t c[6] = {SCSIOP_MODE_SENSE, b1, b2, b3, alloc, 0};
    run_cmd(lu, t, c, 6, SCSI_DIR_IN, buf, alloc);
}

static void mode_select6(struct scsi_lu *lu, struct tcmd *t, uint8_t b1, const uint8_t *data,
                         uint8_t len, uint64_t nexus)
{
    uint8_t c[6] = {SCSIOP_MODE_SELECT, b1, 0, 0, len, 0};
    tcmd_prepare(t, c, 6, SCSI_DIR_OUT, (void *)data, len);
    t->cmd.nexus = nexus;
    scsi_lu_execute(lu, &t->cmd);
}

static void write10(struct scsi_lu *lu, struct tcmd *t, uint8_t flags)
{
    static uint8_t w[512];
    uint8_t c[10] = {SCSIOP_WRITE, flags, 0, 0, 0, 1, 0, 0, 1, 0};
    run_cmd(lu, t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
}

static void test_mode_sense6_all_pages_returns_header_descriptor_and_pages(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0, 0x3F, 0, 255, b);
    assert_good(&t);
    uint8_t want[4 + 8 + 20 + 12 + 40 + 12] = {4 + 8 + 20 + 12 + 40 + 12 - 1, 0, 0x10, 8};
    scsi_put_be32(want + 4, 1000);
    scsi_put_be24(want + 9, 512);
    memcpy(want + 12, caching_cur_wce, 20);
    memcpy(want + 32, control_cur, 12);
    want[44] = 0x1A; /* power condition: no timers */
    want[45] = 0x26;
    want[84] = 0x1C; /* informational exceptions: DEXCPT */
    want[85] = 0x0A;
    want[86] = 0x08;
    assert_int_equal(t.cmd.transferred, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    fx_close(&f);
}

static void test_mode_sense10_llbaa_returns_long_block_descriptor(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    uint8_t c[10] = {SCSIOP_MODE_SENSE10, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0};
    struct tcmd t;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, b, 255);
    assert_good(&t);
    uint8_t want[8 + 16 + 20] = {0, 8 + 16 + 20 - 2, 0, 0x10, 0x01, 0, 0, 16};
    scsi_put_be64(want + 8, 1000);
    scsi_put_be32(want + 20, 512);
    memcpy(want + 24, caching_cur_wce, 20);
    assert_int_equal(t.cmd.transferred, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    fx_close(&f);
}

static void test_mode_sense_dbd_omits_the_block_descriptor(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0x08, 0x0A, 0, 255, b);
    assert_good(&t);
    uint8_t want[4 + 12] = {15, 0, 0x10, 0};
    memcpy(want + 4, control_cur, 12);
    assert_int_equal(t.cmd.transferred, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    /* allocation length cuts it */
    mode_sense6(f.lu, &t, 0x08, 0x0A, 0, 4, b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 4);
    fx_close(&f);
}

static void test_mode_sense_changeable_values_show_wce_d_sense_and_swp_only(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0x08, 0x40 | 0x3F, 0, 255, b);
    assert_good(&t);
    static const uint8_t cach[20] = {0x08, 0x12, 0x04};
    static const uint8_t ctl[12] = {0x0A, 0x0A, 0x04, 0, 0x08};
    assert_memory_equal(b + 4, cach, 20);
    assert_memory_equal(b + 24, ctl, 12);
    fx_close(&f);
}

static void test_mode_sense_default_values_come_from_the_config(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.write_cache = false};
    fx_open(&f, DISK_BYTES, &cfg, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0x08, 0x80 | 0x08, 0, 255, b);
    assert_good(&t);
    assert_int_equal(b[4 + 2], 0x00);
    fx_close(&f);
}

static void test_mode_sense_saved_values_return_saving_parameters_not_supported(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0, 0xC0 | 0x08, 0, 255, b);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_SAVING_PARAMETERS_NOT_SUPPORTED, 0);
    assert_field_pointer(&t, true, 2, 7);
    fx_close(&f);
}

static void test_mode_sense_unknown_page_or_subpage_returns_invalid_field(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0, 0x19, 0, 255, b);
    assert_invalid_cdb_field(&t, 2, 5);
    mode_sense6(f.lu, &t, 0, 0x08, 0x01, 255, b);
    assert_invalid_cdb_field(&t, 3, -1);
    mode_sense6(f.lu, &t, 0, 0x3F, 0xFF, 255, b); /* all pages and subpages */
    assert_good(&t);
    mode_sense6(f.lu, &t, 0x10, 0x3F, 0, 255, b); /* LLBAA does not exist in MODE SENSE(6) */
    assert_invalid_cdb_field(&t, 1, 7);           /* reserved 7..4 in MODE SENSE(6) */
    fx_close(&f);
}

static void test_mode_sense_sets_wp_when_read_only(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.read_only = true};
    fx_open(&f, DISK_BYTES, &cfg, &caps_fua, false);
    uint8_t b[255];
    struct tcmd t;
    mode_sense6(f.lu, &t, 0x08, 0x08, 0, 255, b);
    assert_good(&t);
    assert_int_equal(b[2], 0x90);
    fx_close(&f);
}

/* ---- MODE SELECT -------------------------------------------------------------------------- */

static void test_mode_select_clearing_wce_makes_writes_fua_and_setting_it_undoes(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    write10(f.lu, &t, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags, 0);

    uint8_t p[4 + 20] = {0};
    memcpy(p + 4, caching_cur_wce, 20);
    p[4 + 2] = 0x00; /* WCE off */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    write10(f.lu, &t, 0); /* the same nexus gets no unit attention */
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags, BE_IO_FUA);

    uint8_t b[255];
    mode_sense6(f.lu, &t, 0x08, 0x08, 0, 255, b);
    assert_int_equal(b[4 + 2], 0x00);

    p[4 + 2] = 0x04;
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    write10(f.lu, &t, 0);
    assert_good(&t);
    assert_int_equal(mock_backend_last(f.mb, BE_OP_WRITE)->flags, 0);
    fx_close(&f);
}

static void test_mode_select_reports_mode_parameters_changed_to_other_nexus_only(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    /* nexus 7 clears its power-on unit attention first */
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 7;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0);

    uint8_t p[4 + 20] = {0};
    memcpy(p + 4, caching_cur_wce, 20);
    p[6] = 0;
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 7;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_PARAMETERS_CHANGED,
                 SCSI_SENSEQ_MODE_PARAMETERS_CHANGED);
    /* selecting the same values again changes nothing and raises nothing */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 7;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_good(&t);
    fx_close(&f);
}

/* Every page MODE SENSE(6)/(10) lists answers alone with current, changeable and default values
 * (saved: SAVING PARAMETERS NOT SUPPORTED), and MODE SELECT(6)/(10) takes its current values back
 * but refuses a change to a bit the changeable values do not show. */
static void test_every_advertised_page_in_every_form(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    static const struct {
        uint8_t code, len;
    } pages[] = {{0x08, 20}, {0x0A, 12}, {0x1A, 40}, {0x1C, 12}};
    struct tcmd t;
    uint8_t b[255];
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        uint8_t code = pages[i].code, len = pages[i].len;
        for (int pc = 0; pc < 4; pc++) {
            mode_sense6(f.lu, &t, 0x08, (uint8_t)(pc << 6 | code), 0, 255, b);
            if (pc == 3) {
                assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0x00);
                continue;
            }
            assert_good(&t);
            assert_int_equal(t.cmd.transferred, 4 + len);
            assert_int_equal(b[4] & 0x3F, code);
            assert_int_equal(b[5], len - 2);
            uint8_t c10[10] = {
                SCSIOP_MODE_SENSE10, 0x08, (uint8_t)(pc << 6 | code), 0, 0, 0, 0, 0, 255, 0};
            uint8_t b10[255];
            run_cmd(f.lu, &t, c10, 10, SCSI_DIR_IN, b10, 255);
            assert_good(&t);
            assert_int_equal(t.cmd.transferred, 8 + len);
            assert_memory_equal(b10 + 8, b + 4, len);
        }
        /* current values back through MODE SELECT(6) and (10) */
        mode_sense6(f.lu, &t, 0x08, code, 0, 255, b);
        uint8_t sel[4 + 64] = {0};
        memcpy(sel + 4, b + 4, len);
        mode_select6(f.lu, &t, 0x10, sel, (uint8_t)(4 + len), 0);
        assert_good(&t);
        uint8_t sel10[8 + 64] = {0};
        memcpy(sel10 + 8, b + 4, len);
        uint8_t c10[10] = {SCSIOP_MODE_SELECT10, 0x10, 0, 0, 0, 0, 0, 0, (uint8_t)(8 + len), 0};
        run_cmd(f.lu, &t, c10, 10, SCSI_DIR_OUT, sel10, 8 + len);
        assert_good(&t);
        /* a bit that is not changeable: the last byte's low bit */
        uint8_t chg[255];
        mode_sense6(f.lu, &t, 0x08, 0x40 | code, 0, 255, chg);
        if (!(chg[4 + len - 1] & 0x01)) {
            sel[4 + len - 1] ^= 0x01;
            mode_select6(f.lu, &t, 0x10, sel, (uint8_t)(4 + len), 0);
            assert_invalid_param_field(&t, (uint16_t)(4 + len - 1), 0);
        }
    }
    fx_close(&f);
}

/* SWP=1 in the control page: every medium-changing command fails with DATA PROTECT, LOGICAL UNIT
 * SOFTWARE WRITE PROTECTED (27h/02h); reads still work; the header's WP bit shows it; the other
 * nexus sees MODE PARAMETERS CHANGED; SWP=0 lifts it. */
static void test_mode_select_swp_write_protects_the_lu(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    uint8_t sel[4 + 12] = {0, 0, 0, 0};
    memcpy(sel + 4, control_cur, 12);
    sel[4 + 4] |= 0x08; /* SWP */
    struct tcmd t;
    mode_select6(f.lu, &t, 0x10, sel, sizeof(sel), 0);
    assert_good(&t);
    write10(f.lu, &t, 0);
    assert_check(&t, SCSI_SENSE_DATA_PROTECT, 0x27, 0x02);
    assert_int_equal(f.mb->nreq, 0);
    static uint8_t r[512];
    uint8_t rd[10] = {SCSIOP_READ, 0, 0, 0, 0, 1, 0, 0, 1, 0};
    run_cmd(f.lu, &t, rd, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    uint8_t b[64];
    mode_sense6(f.lu, &t, 0x08, 0x0A, 0, 64, b);
    assert_good(&t);
    assert_int_equal(b[2] & 0x80, 0x80); /* WP */
    assert_int_equal(b[4 + 4] & 0x08, 0x08);
    /* another nexus: the change is a unit attention, then its write is protected too */
    uint8_t tur[6] = {0};
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 9;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00); /* its first command */
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 9;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x2A, 0x01);
    sel[4 + 4] &= (uint8_t)~0x08;
    mode_select6(f.lu, &t, 0x10, sel, sizeof(sel), 0);
    assert_good(&t);
    write10(f.lu, &t, 0);
    assert_good(&t);
    fx_close(&f);
}

static void test_mode_select_d_sense_switches_to_descriptor_sense(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    uint8_t p[4 + 12] = {0};
    memcpy(p + 4, control_cur, 12);
    p[4 + 2] |= 0x04;
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    /* an invalid field now comes back as descriptor sense with a sense-key-specific descriptor */
    uint8_t c[10] = {SCSIOP_READ, 0x60, 0, 0, 0, 0, 0, 0, 1, 0};
    uint8_t r[512];
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    static const uint8_t want[16] = {0x72, 0x05, 0x24, 0x00, 0,    0, 0, 8,
                                     0x02, 0x06, 0,    0,    0xCF, 0, 1, 0};
    assert_int_equal(t.cmd.status, SAM_STAT_CHECK_CONDITION);
    assert_int_equal(t.cmd.sense_len, 16);
    assert_memory_equal(t.cmd.sense, want, 16);
    /* a medium error carries an information descriptor with the LBA */
    mock_backend_fail(f.mb, BE_OP_READ, -5);
    uint8_t c2[10] = {SCSIOP_READ, 0, 0, 0, 0x01, 0x02, 0, 0, 1, 0};
    run_cmd(f.lu, &t, c2, 10, SCSI_DIR_IN, r, sizeof(r));
    static const uint8_t want2[20] = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0x00, 0x0A,
                                      0x80, 0,    0,    0,    0, 0, 0, 0,  0x01, 0x02};
    assert_int_equal(t.cmd.sense_len, 20);
    assert_memory_equal(t.cmd.sense, want2, 20);
    fx_close(&f);
}

static void test_mode_select_changing_an_unchangeable_bit_returns_invalid_param_field(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    uint8_t p[4 + 8 + 20] = {0, 0, 0, 8};
    scsi_put_be32(p + 4, 1000);
    scsi_put_be24(p + 9, 512);
    memcpy(p + 12, caching_cur_wce, 20);
    p[12 + 2] |= 0x01; /* RCD is not changeable */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 14, 0);
    p[12 + 2] &= (uint8_t)~0x01;
    p[12 + 12] = 0x80; /* a byte we report as zero */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 24, 7);
    p[12 + 12] = 0;
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);
    fx_close(&f);
}

static void test_mode_select_bad_headers_and_lengths_return_the_right_sense(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    uint8_t p[4 + 8 + 20] = {0, 0, 0, 8};
    scsi_put_be32(p + 4, 1000);
    scsi_put_be24(p + 9, 512);
    memcpy(p + 12, caching_cur_wce, 20);

    mode_select6(f.lu, &t, 0x11, p, sizeof(p), 0); /* SP: no saved pages */
    assert_invalid_cdb_field(&t, 1, 0);
    mode_select6(f.lu, &t, 0x00, p, sizeof(p), 0); /* PF=0 */
    assert_invalid_cdb_field(&t, 1, 4);
    mode_select6(f.lu, &t, 0x10, p, 3, 0); /* shorter than the header */
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
    mode_select6(f.lu, &t, 0x10, p, sizeof(p) - 1, 0); /* cuts the page */
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
    mode_select6(f.lu, &t, 0x10, p, 4 + 4, 0); /* cuts the block descriptor */
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
    mode_select6(f.lu, &t, 0x10, p, 0, 0); /* empty list: nothing to do */
    assert_good(&t);

    p[0] = 5; /* MODE DATA LENGTH is reserved in MODE SELECT */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 0, -1);
    p[0] = 0;
    p[3] = 4; /* block descriptor length */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 3, -1);
    p[3] = 8;
    scsi_put_be24(p + 9, 4096); /* another block length */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 9, -1);
    scsi_put_be24(p + 9, 512);
    p[13] = 0x11; /* caching page length */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 13, -1);
    p[13] = 0x12;
    p[12] = 0x19; /* a page we do not have */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 12, 5);
    p[12] = 0x48; /* SPF: subpage format */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_invalid_param_field(&t, 12, 6);
    p[12] = 0x88; /* PS is ignored */
    mode_select6(f.lu, &t, 0x10, p, sizeof(p), 0);
    assert_good(&t);

    /* the CDB asks for more than the initiator sends */
    uint8_t c[6] = {SCSIOP_MODE_SELECT, 0x10, 0, 0, 40, 0};
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_OUT, p, sizeof(p));
    assert_invalid_cdb_field(&t, 4, -1);
    fx_close(&f);
}

static void test_mode_select10_with_long_lba_descriptor_is_accepted(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_fua, false);
    struct tcmd t;
    uint8_t p[8 + 16 + 12] = {0, 0, 0, 0, 0x01, 0, 0, 16};
    scsi_put_be64(p + 8, 1000);
    scsi_put_be32(p + 20, 512);
    memcpy(p + 24, control_cur, 12);
    uint8_t c[10] = {SCSIOP_MODE_SELECT10, 0x10, 0, 0, 0, 0, 0, 0, sizeof(p), 0};
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, p, sizeof(p));
    assert_good(&t);
    p[4] = 0; /* 16 bytes of descriptor without LONGLBA */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, p, sizeof(p));
    assert_invalid_param_field(&t, 6, -1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_sense6_all_pages_returns_header_descriptor_and_pages),
        cmocka_unit_test(test_mode_sense10_llbaa_returns_long_block_descriptor),
        cmocka_unit_test(test_mode_sense_dbd_omits_the_block_descriptor),
        cmocka_unit_test(test_mode_sense_changeable_values_show_wce_d_sense_and_swp_only),
        cmocka_unit_test(test_mode_sense_default_values_come_from_the_config),
        cmocka_unit_test(test_mode_sense_saved_values_return_saving_parameters_not_supported),
        cmocka_unit_test(test_mode_sense_unknown_page_or_subpage_returns_invalid_field),
        cmocka_unit_test(test_mode_sense_sets_wp_when_read_only),
        cmocka_unit_test(test_mode_select_clearing_wce_makes_writes_fua_and_setting_it_undoes),
        cmocka_unit_test(test_mode_select_reports_mode_parameters_changed_to_other_nexus_only),
        cmocka_unit_test(test_mode_select_d_sense_switches_to_descriptor_sense),
        cmocka_unit_test(test_mode_select_swp_write_protects_the_lu),
        cmocka_unit_test(test_every_advertised_page_in_every_form),
        cmocka_unit_test(test_mode_select_changing_an_unchangeable_bit_returns_invalid_param_field),
        cmocka_unit_test(test_mode_select_bad_headers_and_lengths_return_the_right_sense),
        cmocka_unit_test(test_mode_select10_with_long_lba_descriptor_is_accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
