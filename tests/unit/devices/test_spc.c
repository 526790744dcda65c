/*
 * SPC commands of the disk device server: INQUIRY and its VPD pages byte for byte, REQUEST SENSE,
 * TEST UNIT READY, the command table's generic checks (unsupported opcode, short CDB, reserved
 * bits, NACA) and the unit attention rules of SAM-5 5.14.
 */
#include <errno.h>

#include "devices_test.h"

#define DISK_BYTES (2048 * 512)

static const struct be_caps caps_none = {0};

static const struct scsi_disk_config named = {
    .vendor = "ACME",
    .product = "SUPERDISK",
    .revision = "1.2",
    .serial = "SN0042",
    .device_id = 0x0123456789ABCDEFull,
    .block_size = 512,
    .max_transfer_blocks = 2048,
    .write_cache = true,
};

static void inquiry(struct scsi_lu *lu, struct tcmd *t, uint8_t evpd, uint8_t page, uint16_t alloc,
                    uint8_t *buf)
{
    uint8_t c[6] = {SCSIOP_INQUIRY, evpd, page, 0, 0, 0};
    scsi_put_be16(c + 3, alloc);
    run_cmd(lu, t, c, 6, SCSI_DIR_IN, buf, alloc);
}

static void test_inquiry_standard_data_is_spc4_disk_with_cmdque(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[96];
    memset(b, 0xEE, sizeof(b));
    struct tcmd t;
    inquiry(f.lu, &t, 0, 0, sizeof(b), b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 74);
    assert_int_equal(b[0], 0x00); /* PQ 0, direct access */
    assert_int_equal(b[1], 0x00); /* RMB 0 */
    assert_int_equal(b[2], 0x06); /* SPC-4 */
    assert_int_equal(b[3], 0x02); /* response data format 2 */
    assert_int_equal(b[4], 74 - 5);
    assert_int_equal(b[5], 0x18); /* TPGS 01b: implicit ALUA; 3PC (EXTENDED COPY) */
    assert_int_equal(b[6], 0);
    assert_int_equal(b[7], 0x02); /* CMDQUE */
    assert_memory_equal(b + 8, "ACME    ", 8);
    assert_memory_equal(b + 16, "SUPERDISK       ", 16);
    assert_memory_equal(b + 32, "1.2 ", 4);
    static const uint8_t versions[6] = {0x00, 0xA0, 0x04, 0x60, 0x04, 0xC0};
    assert_memory_equal(b + 58, versions, 6);
    assert_int_equal(b[74], 0xEE); /* nothing written past the data */
    fx_close(&f);
}

static void test_inquiry_allocation_length_cuts_the_data(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[96];
    struct tcmd t;
    inquiry(f.lu, &t, 0, 0, 5, b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 5);
    inquiry(f.lu, &t, 0, 0, 0, b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 0);
    /* A buffer smaller than the allocation length bounds the transfer too. */
    uint8_t c[6] = {SCSIOP_INQUIRY, 0, 0, 0, 96, 0};
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, 10);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 10);
    fx_close(&f);
}

static void test_inquiry_evpd0_with_page_code_returns_invalid_field_byte2(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[96];
    struct tcmd t;
    inquiry(f.lu, &t, 0, 0x80, sizeof(b), b);
    assert_invalid_cdb_field(&t, 2, -1);
    inquiry(f.lu, &t, 0x02, 0, sizeof(b), b); /* obsolete CMDDT */
    assert_invalid_cdb_field(&t, 1, 1);
    inquiry(f.lu, &t, 1, 0x87, sizeof(b), b); /* a page we do not have */
    assert_invalid_cdb_field(&t, 2, -1);
    fx_close(&f);
}

static void test_vpd_00_lists_exactly_the_pages_implemented(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0x00, sizeof(b), b);
    assert_good(&t);
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x07, 0x00, 0x80,
                                   0x83, 0x8F, 0xB0, 0xB1, 0xB2};
    assert_int_equal(t.cmd.transferred, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    /* and each one listed answers */
    for (int i = 4; i < (int)sizeof(want); i++) {
        inquiry(f.lu, &t, 1, want[i], sizeof(b), b);
        assert_good(&t);
        assert_int_equal(b[1], want[i]);
    }
    fx_close(&f);
}

static void test_vpd_80_returns_the_serial_number(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0x80, sizeof(b), b);
    assert_good(&t);
    static const uint8_t want[] = {0x00, 0x80, 0x00, 0x06, 'S', 'N', '0', '0', '4', '2'};
    assert_int_equal(t.cmd.transferred, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    fx_close(&f);
}

static void test_vpd_80_default_serial_derives_from_device_id(void **state)
{
    struct fx f;
    struct scsi_disk_config cfg = {.device_id = 0xABCDull, .write_cache = true};
    fx_open(&f, DISK_BYTES, &cfg, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0x80, sizeof(b), b);
    assert_good(&t);
    assert_int_equal(b[3], 16);
    assert_memory_equal(b + 4, "000000000000ABCD", 16);
    fx_close(&f);
}

static void test_vpd_83_has_naa6_and_t10_vendor_designators(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[256];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0x83, sizeof(b), b);
    assert_good(&t);
    uint16_t plen = scsi_get_be16(b + 2);
    assert_int_equal(t.cmd.transferred, 4 + plen);
    /* NAA: binary, LU association, type 3, 16 bytes, NAA 6 */
    const uint8_t *d = b + 4;
    assert_int_equal(d[0], 0x01);
    assert_int_equal(d[1], 0x03);
    assert_int_equal(d[3], 16);
    assert_int_equal(d[4] >> 4, 6);
    assert_int_equal(scsi_get_be64(d + 12), 0x0123456789ABCDEFull);
    /* T10 vendor ID: ASCII, LU association, type 1 */
    d += 4 + 16;
    assert_int_equal(d[0], 0x02);
    assert_int_equal(d[1], 0x01);
    assert_int_equal(d[3], 8 + 16 + 6);
    assert_memory_equal(d + 4, "ACME    SUPERDISK       SN0042", 30);
    /* relative target port 1 and target port group 1: binary, target port association */
    d += 4 + 30;
    static const uint8_t rtp[8] = {0x01, 0x14, 0, 4, 0, 0, 0, 1};
    static const uint8_t tpg[8] = {0x01, 0x15, 0, 4, 0, 0, 0, 1};
    assert_memory_equal(d, rtp, 8);
    assert_memory_equal(d + 8, tpg, 8);
    assert_int_equal(plen, 20 + 34 + 16);
    fx_close(&f);
}

static void test_vpd_b0_reports_max_transfer_and_granularity(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0xB0, sizeof(b), b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 64);
    assert_int_equal(b[1], 0xB0);
    assert_int_equal(scsi_get_be16(b + 2), 0x3C);
    assert_int_equal(scsi_get_be16(b + 6), 1);    /* one logical block per physical block */
    assert_int_equal(scsi_get_be32(b + 8), 2048); /* MAXIMUM TRANSFER LENGTH */
    fx_close(&f);
}

static void test_vpd_b1_reports_non_rotating_medium(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    inquiry(f.lu, &t, 1, 0xB1, sizeof(b), b);
    assert_good(&t);
    assert_int_equal(scsi_get_be16(b + 2), 0x3C);
    assert_int_equal(scsi_get_be16(b + 4), 0x0001);
    fx_close(&f);
}

/* ---- generic checks ----------------------------------------------------------------------- */

static void test_unsupported_opcode_returns_invalid_command_operation_code(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    static const uint8_t ops[] = {
        SCSIOP_REASSIGN_BLOCKS, SCSIOP_LOG_SENSE, SCSIOP_WRITE_LONG, 0x92, 0xC0, 0xFF};
    for (size_t i = 0; i < sizeof(ops); i++) {
        uint8_t c[16] = {ops[i]};
        struct tcmd t;
        run_cmd(f.lu, &t, c, 16, SCSI_DIR_NONE, NULL, 0);
        assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
        assert_int_equal(t.cmd.sense_len, 18);
        assert_int_equal(t.cmd.sense[15], 0); /* no field pointer */
    }
    fx_close(&f);
}

static void test_cdb_shorter_than_the_opcode_needs_returns_invalid_field_in_cdb(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t c[16] = {SCSIOP_READ16};
    uint8_t b[512];
    struct tcmd t;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, b, sizeof(b));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_CDB, 0);
    run_cmd(f.lu, &t, c, 0, SCSI_DIR_IN, b, sizeof(b));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
    fx_close(&f);
}

static void test_naca_in_control_byte_returns_invalid_field_bit2(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t c[6] = {SCSIOP_TEST_UNIT_READY, 0, 0, 0, 0, 0x04};
    struct tcmd t;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 5, 2);
    c[5] = 0xC0; /* vendor-specific bits are ignored */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    c[2] = 0x10; /* reserved byte: the field's most significant bit */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 2, 7);
    fx_close(&f);
}

/* ---- unit attention ----------------------------------------------------------------------- */

static void test_power_on_unit_attention_is_reported_once_then_gone(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, true);
    uint8_t b[96];
    struct tcmd t;
    /* INQUIRY and REPORT LUNS do not report or clear it. */
    inquiry(f.lu, &t, 0, 0, 36, b);
    assert_good(&t);
    uint8_t rl[12] = {SCSIOP_REPORT_LUNS};
    scsi_put_be32(rl + 6, 16);
    run_cmd(f.lu, &t, rl, 12, SCSI_DIR_IN, b, 16);
    assert_good(&t);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, SCSI_SENSEQ_POWER_ON_RESET);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    fx_close(&f);
}

static void test_unit_attention_precedes_invalid_opcode(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, true);
    uint8_t c[6] = {0xC1};
    struct tcmd t;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
    fx_close(&f);
}

static void test_unit_attention_is_per_i_t_nexus(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, true);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    struct tcmd t;
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 1;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0);
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 1;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_good(&t);
    tcmd_prepare(&t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    t.cmd.nexus = 2;
    scsi_lu_execute(f.lu, &t.cmd);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0);
    fx_close(&f);
}

static void test_set_unit_attention_reports_the_new_condition_to_every_nexus(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_BUS_RESET, SCSI_SENSEQ_BUS_DEVICE_RESET);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    struct tcmd t;
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET,
                 SCSI_SENSEQ_BUS_DEVICE_RESET);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    /* a capacity change, then a reset: the reset supersedes it */
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_PARAMETERS_CHANGED,
                               SCSI_SENSEQ_CAPACITY_DATA_CHANGED);
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_BUS_RESET, SCSI_SENSEQ_POWER_ON_RESET);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    /* two conditions without a reset are reported one after the other */
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_PARAMETERS_CHANGED,
                               SCSI_SENSEQ_CAPACITY_DATA_CHANGED);
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_OPERATING_CONDITIONS_CHANGED,
                               SCSI_SENSEQ_INQUIRY_DATA_CHANGED);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_PARAMETERS_CHANGED,
                 SCSI_SENSEQ_CAPACITY_DATA_CHANGED);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_OPERATING_CONDITIONS_CHANGED,
                 SCSI_SENSEQ_INQUIRY_DATA_CHANGED);
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    fx_close(&f);
}

/* ---- REQUEST SENSE ------------------------------------------------------------------------ */

static void test_request_sense_returns_and_clears_the_unit_attention(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, true);
    uint8_t c[6] = {SCSIOP_REQUEST_SENSE, 0, 0, 0, 252, 0};
    uint8_t b[252];
    struct tcmd t;
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 18);
    assert_int_equal(b[0], 0x70);
    assert_int_equal(b[2], SCSI_SENSE_UNIT_ATTENTION);
    assert_int_equal(b[7], 10);
    assert_int_equal(b[12], 0x29);
    assert_int_equal(b[13], 0x00);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    run_cmd(f.lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    static const uint8_t none[18] = {0x70, 0, 0, 0, 0, 0, 0, 10};
    assert_memory_equal(b, none, 18);
    fx_close(&f);
}

static void test_request_sense_desc_bit_returns_descriptor_format(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t stop[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0, 0};
    uint8_t c[6] = {SCSIOP_REQUEST_SENSE, 0x01, 0, 0, 252, 0};
    uint8_t b[252];
    struct tcmd t;
    run_cmd(f.lu, &t, stop, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    static const uint8_t want[8] = {0x72, SCSI_SENSE_NOT_READY, 0x04, 0x02, 0, 0, 0, 0};
    assert_int_equal(t.cmd.transferred, 8);
    assert_memory_equal(b, want, 8);
    c[4] = 3; /* allocation length cuts the sense data */
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 3);
    fx_close(&f);
}

static void test_report_luns_on_a_lone_lu_reports_lun_0(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t rl[12] = {SCSIOP_REPORT_LUNS};
    scsi_put_be32(rl + 6, 64);
    uint8_t b[64];
    struct tcmd t;
    run_cmd(f.lu, &t, rl, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    static const uint8_t want[16] = {0, 0, 0, 8};
    assert_int_equal(t.cmd.transferred, 16);
    assert_memory_equal(b, want, 16);
    fx_close(&f);
}

/* ---- REPORT SUPPORTED OPERATION CODES ---------------------------------------------------- */

static void rsoc(struct scsi_lu *lu, struct tcmd *t, uint8_t opts, uint8_t op, uint16_t sa,
                 uint8_t *buf, uint32_t alloc)
{
    uint8_t c[12] = {SCSIOP_MAINTENANCE_IN, SERVICE_ACTION_REPORT_SUPPORTED_OPERATION_CODES, opts,
                     op};
    scsi_put_be16(c + 4, sa);
    scsi_put_be32(c + 6, alloc);
    run_cmd(lu, t, c, 12, SCSI_DIR_IN, buf, alloc);
}

static void test_report_supported_opcodes_lists_every_table_entry(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    static uint8_t b[1024];
    struct tcmd t;
    rsoc(f.lu, &t, 0, 0, 0, b, sizeof(b));
    assert_good(&t);
    uint32_t n = scsi_get_be32(b) / 8;
    assert_int_equal(t.cmd.transferred, 4 + n * 8);
    bool saw_rc16 = false, saw_read10 = false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *d = b + 4 + i * 8;
        if (d[0] == SCSIOP_SERVICE_ACTION_IN16) {
            saw_rc16 |= scsi_get_be16(d + 2) == SERVICE_ACTION_READ_CAPACITY16 && (d[5] & 1) &&
                        scsi_get_be16(d + 6) == 16;
        }
        if (d[0] == SCSIOP_READ)
            saw_read10 = !(d[5] & 1) && scsi_get_be16(d + 6) == 10;
        /* every reported command is one the LU executes (no INVALID COMMAND OPERATION CODE) */
        uint8_t c[16] = {d[0], (uint8_t)scsi_get_be16(d + 2)};
        struct tcmd u;
        uint8_t junk[64];
        run_cmd(f.lu, &u, c, (uint8_t)scsi_get_be16(d + 6), SCSI_DIR_IN, junk, sizeof(junk));
        assert_int_equal(u.ndone, 1);
        assert_false(u.cmd.status == SAM_STAT_CHECK_CONDITION &&
                     sense_asc(&u.cmd) == SCSI_ADSENSE_ILLEGAL_COMMAND);
        /* and its usage data starts with the opcode and ends with the CONTROL byte's mask */
        uint8_t one[64];
        rsoc(f.lu, &u, (d[5] & 1) ? 2 : 1, d[0], scsi_get_be16(d + 2), one, sizeof(one));
        assert_good(&u);
        uint16_t sz = scsi_get_be16(one + 2);
        assert_int_equal(sz, scsi_get_be16(d + 6));
        assert_int_equal(one[4], d[0]);
        assert_int_equal(one[4 + sz - 1], 0xC0);
    }
    assert_true(saw_rc16);
    assert_true(saw_read10);
    assert_true(n >= 20);
    fx_close(&f);
}

static void test_report_supported_opcodes_one_command_returns_usage_data(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    rsoc(f.lu, &t, 1, SCSIOP_READ, 0, b, sizeof(b));
    assert_good(&t);
    static const uint8_t want[14] = {0,    0x03, 0,    10,   0x28, 0x1E, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0xC0};
    assert_int_equal(t.cmd.transferred, 14);
    assert_memory_equal(b, want, 14);
    rsoc(f.lu, &t, 2, SCSIOP_SERVICE_ACTION_IN16, SERVICE_ACTION_READ_CAPACITY16, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1], 0x03);
    assert_int_equal(b[5], 0x10); /* the service action in the usage data */
    rsoc(f.lu, &t, 0x82, SCSIOP_SERVICE_ACTION_IN16, 0x12, b, sizeof(b)); /* GET LBA STATUS */
    assert_good(&t);
    assert_int_equal(b[1], 0x83); /* CTDP, supported */
    /* GET PHYSICAL ELEMENT STATUS: not supported */
    rsoc(f.lu, &t, 0x82, SCSIOP_SERVICE_ACTION_IN16, 0x17, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1], 0x01);
    rsoc(f.lu, &t, 1, 0xC5, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1], 0x01);
    rsoc(f.lu, &t, 1, SCSIOP_SERVICE_ACTION_IN16, 0, b, sizeof(b)); /* has service actions */
    assert_invalid_cdb_field(&t, 2, 2);
    rsoc(f.lu, &t, 2, SCSIOP_READ, 0, b, sizeof(b)); /* has none */
    assert_invalid_cdb_field(&t, 2, 2);
    rsoc(f.lu, &t, 3, SCSIOP_READ, 7, b, sizeof(b)); /* 011b ignores the service action */
    assert_good(&t);
    assert_int_equal(b[1], 0x03);
    rsoc(f.lu, &t, 1 | 0x80, SCSIOP_READ, 0, b, sizeof(b)); /* RCTD: timeouts descriptor */
    assert_good(&t);
    assert_int_equal(b[1], 0x83);
    assert_int_equal(t.cmd.transferred, 14 + 12);
    assert_int_equal(scsi_get_be16(b + 14), 10);
    fx_close(&f);
}

static void maint_in(struct scsi_lu *lu, struct tcmd *t, uint8_t b1, uint8_t b2, uint32_t alloc,
                     uint8_t *buf)
{
    uint8_t c[12] = {SCSIOP_MAINTENANCE_IN, b1, b2};
    scsi_put_be32(c + 6, alloc);
    memset(buf, 0xEE, alloc);
    run_cmd(lu, t, c, 12, SCSI_DIR_IN, buf, alloc);
}

static void test_report_supported_task_management_functions(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[32];
    struct tcmd t;
    maint_in(f.lu, &t, 0x0D, 0, 32, b);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 4);
    static const uint8_t want[4] = {0xDA, 0, 0, 0}; /* ATS ATSS CTSS LURS TRS */
    assert_memory_equal(b, want, 4);
    maint_in(f.lu, &t, 0x0D, 0x80, 32, b); /* REPD: the 16-byte form */
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 16);
    assert_int_equal(b[0], 0xDA);
    assert_int_equal(b[3], 0x0C);
    maint_in(f.lu, &t, 0x0D, 0, 3, b); /* ALLOCATION LENGTH below 4 */
    assert_invalid_cdb_field(&t, 6, -1);
    maint_in(f.lu, &t, 0x0D, 0x40, 32, b); /* reserved bit */
    assert_invalid_cdb_field(&t, 2, 6);
    fx_close(&f);
}

static void test_report_target_port_groups_one_active_optimized_group(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    maint_in(f.lu, &t, 0x0A, 0, 64, b);
    assert_good(&t);
    static const uint8_t want[16] = {0, 0, 0, 12, 0x80, 0x01, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_int_equal(t.cmd.transferred, 16);
    assert_memory_equal(b, want, 16);
    maint_in(f.lu, &t, 0x2A, 0, 64, b); /* extended header */
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 20);
    assert_int_equal(scsi_get_be32(b), 16);
    assert_int_equal(b[4], 0x10);
    assert_memory_equal(b + 8, want + 4, 12);
    maint_in(f.lu, &t, 0x4A, 0, 64, b); /* PARAMETER DATA FORMAT 010b */
    assert_invalid_cdb_field(&t, 1, 7);
    maint_in(f.lu, &t, 0x0A, 0, 6, b); /* cut */
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 6);
    fx_close(&f);
}

static void test_report_supported_opcodes_describes_service_actions_of_reservations(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &named, &caps_none, false);
    uint8_t b[64];
    struct tcmd t;
    /* PERSISTENT RESERVE OUT / CLEAR: 10-byte CDB, SCOPE/TYPE, PARAMETER LIST LENGTH */
    rsoc(f.lu, &t, 2, SCSIOP_PERSISTENT_RESERVE_OUT, 0x03, b, sizeof(b));
    assert_good(&t);
    static const uint8_t want[14] = {0, 0x03, 0,    10,   0x5F, 0x03, 0xFF,
                                     0, 0,    0xFF, 0xFF, 0xFF, 0xFF, 0xC0};
    assert_int_equal(t.cmd.transferred, 14);
    assert_memory_equal(b, want, 14);
    rsoc(f.lu, &t, 2, SCSIOP_PERSISTENT_RESERVE_IN, 0x04, b, sizeof(b)); /* no such SA */
    assert_good(&t);
    assert_int_equal(b[1], 0x01);
    rsoc(f.lu, &t, 1, SCSIOP_RESERVE_UNIT, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1], 0x03);
    rsoc(f.lu, &t, 2, SCSIOP_RECEIVE_COPY_RESULTS, 0x03, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(b + 2), 16);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inquiry_standard_data_is_spc4_disk_with_cmdque),
        cmocka_unit_test(test_inquiry_allocation_length_cuts_the_data),
        cmocka_unit_test(test_inquiry_evpd0_with_page_code_returns_invalid_field_byte2),
        cmocka_unit_test(test_vpd_00_lists_exactly_the_pages_implemented),
        cmocka_unit_test(test_vpd_80_returns_the_serial_number),
        cmocka_unit_test(test_vpd_80_default_serial_derives_from_device_id),
        cmocka_unit_test(test_vpd_83_has_naa6_and_t10_vendor_designators),
        cmocka_unit_test(test_vpd_b0_reports_max_transfer_and_granularity),
        cmocka_unit_test(test_vpd_b1_reports_non_rotating_medium),
        cmocka_unit_test(test_unsupported_opcode_returns_invalid_command_operation_code),
        cmocka_unit_test(test_cdb_shorter_than_the_opcode_needs_returns_invalid_field_in_cdb),
        cmocka_unit_test(test_naca_in_control_byte_returns_invalid_field_bit2),
        cmocka_unit_test(test_power_on_unit_attention_is_reported_once_then_gone),
        cmocka_unit_test(test_unit_attention_precedes_invalid_opcode),
        cmocka_unit_test(test_unit_attention_is_per_i_t_nexus),
        cmocka_unit_test(test_set_unit_attention_reports_the_new_condition_to_every_nexus),
        cmocka_unit_test(test_request_sense_returns_and_clears_the_unit_attention),
        cmocka_unit_test(test_request_sense_desc_bit_returns_descriptor_format),
        cmocka_unit_test(test_report_luns_on_a_lone_lu_reports_lun_0),
        cmocka_unit_test(test_report_supported_opcodes_lists_every_table_entry),
        cmocka_unit_test(test_report_supported_opcodes_one_command_returns_usage_data),
        cmocka_unit_test(test_report_supported_task_management_functions),
        cmocka_unit_test(test_report_target_port_groups_one_active_optimized_group),
        cmocka_unit_test(test_report_supported_opcodes_describes_service_actions_of_reservations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
