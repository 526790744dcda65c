/*
 * The target of the device server: REPORT LUNS over several logical units (single level LUN
 * format, SELECT REPORT, allocation length rules), routing to the addressed LU, and the answers
 * for a LUN with no logical unit behind it.
 */
#include <errno.h>

#include "devices_test.h"

#define DISK_BYTES (64 * 512)

struct tfx {
    struct fx d[3];
    struct scsi_target *t;
};

static void tfx_open(struct tfx *x)
{
    x->t = scsi_target_create();
    assert_non_null(x->t);
    static const uint64_t luns[3] = {0, 5, 300};
    for (int i = 0; i < 3; i++) {
        fx_open(&x->d[i], DISK_BYTES, NULL, NULL, false);
        assert_int_equal(scsi_target_add_lu(x->t, luns[i], x->d[i].lu), 0);
    }
}

static void tfx_close(struct tfx *x)
{
    scsi_target_destroy(x->t);
    for (int i = 0; i < 3; i++)
        fx_close(&x->d[i]);
}

static void run_t(struct scsi_target *tg, uint64_t lun, struct tcmd *t, const uint8_t *cdb,
                  uint8_t len, enum scsi_dir dir, void *buf, uint32_t xfer)
{
    tcmd_prepare(t, cdb, len, dir, buf, xfer);
    scsi_target_execute(tg, lun, &t->cmd);
}

static void report_luns_cdb(uint8_t *c, uint8_t select, uint32_t alloc)
{
    memset(c, 0, 12);
    c[0] = SCSIOP_REPORT_LUNS;
    c[2] = select;
    scsi_put_be32(c + 6, alloc);
}

static void test_report_luns_lists_every_lun_in_single_level_format(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t c[12], b[64];
    struct tcmd t;
    report_luns_cdb(c, 0, sizeof(b));
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    static const uint8_t want[32] = {
        0,    0,    0, 24, 0, 0, 0, 0, /* header: three entries */
        0,    0,    0, 0,  0, 0, 0, 0, /* LUN 0 */
        0,    5,    0, 0,  0, 0, 0, 0, /* LUN 5: peripheral device addressing */
        0x41, 0x2C, 0, 0,  0, 0, 0, 0, /* LUN 300: flat space addressing */
    };
    assert_int_equal(t.cmd.transferred, 32);
    assert_memory_equal(b, want, 32);
    /* any LUN, even an absent one, answers for the target */
    run_t(x.t, 77, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_memory_equal(b, want, 32);
    /* SELECT REPORT 02h is the same here; 01h (well known only) is empty */
    report_luns_cdb(c, 2, sizeof(b));
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_memory_equal(b, want, 32);
    report_luns_cdb(c, 1, sizeof(b));
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 8);
    assert_int_equal(scsi_get_be32(b), 0);
    tfx_close(&x);
}

static void test_report_luns_allocation_length_cuts_the_list_not_its_length(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t c[12], b[64];
    struct tcmd t;
    report_luns_cdb(c, 0, 20);
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 20);
    assert_int_equal(scsi_get_be32(b), 24);
    tfx_close(&x);
}

static void test_report_luns_allocation_length_below_16_returns_invalid_field(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t c[12], b[64];
    struct tcmd t;
    report_luns_cdb(c, 0, 15);
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 6, -1);
    report_luns_cdb(c, 3, 64);
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 2, -1);
    report_luns_cdb(c, 0, 64);
    c[10] = 1;
    run_t(x.t, 0, &t, c, 12, SCSI_DIR_IN, b, sizeof(b));
    assert_invalid_cdb_field(&t, 10, 7); /* a reserved byte is one field */
    tfx_close(&x);
}

static void test_target_routes_commands_to_the_addressed_lu(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t w[512], c[10] = {SCSIOP_WRITE, 0, 0, 0, 0, 3, 0, 0, 1, 0};
    memset(w, 0x5A, sizeof(w));
    struct tcmd t;
    run_t(x.t, 5, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);
    assert_int_equal(x.d[1].mb->data[3 * 512], 0x5A);
    assert_int_equal(x.d[0].mb->data[3 * 512], 0);
    assert_int_equal(x.d[2].mb->data[3 * 512], 0);
    tfx_close(&x);
}

static void test_absent_lun_inquiry_returns_qualifier_3_type_1f(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t c[6] = {SCSIOP_INQUIRY, 0, 0, 0, 96, 0}, b[96];
    struct tcmd t;
    run_t(x.t, 1, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 36);
    assert_int_equal(b[0], 0x7F);
    assert_int_equal(b[2], 0x06);
    assert_int_equal(b[3], 0x02);
    assert_int_equal(b[4], 31);
    c[1] = 1; /* VPD page 00h: a header only */
    run_t(x.t, 1, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 4);
    assert_int_equal(b[0], 0x7F);
    tfx_close(&x);
}

static void test_absent_lun_other_commands_return_logical_unit_not_supported(void **state)
{
    struct tfx x;
    tfx_open(&x);
    uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY}, b[64];
    struct tcmd t;
    run_t(x.t, 4, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_LUN, 0);
    uint8_t rc[10] = {SCSIOP_READ_CAPACITY};
    run_t(x.t, 4, &t, rc, 10, SCSI_DIR_IN, b, 8);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_LUN, 0);
    /* REQUEST SENSE answers GOOD with the condition in its data */
    uint8_t rs[6] = {SCSIOP_REQUEST_SENSE, 0, 0, 0, 18, 0};
    run_t(x.t, 4, &t, rs, 6, SCSI_DIR_IN, b, 18);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 18);
    assert_int_equal(b[0], 0x70);
    assert_int_equal(b[2], SCSI_SENSE_ILLEGAL_REQUEST);
    assert_int_equal(b[12], SCSI_ADSENSE_INVALID_LUN);
    tfx_close(&x);
}

static void test_add_lu_rejects_duplicates_and_luns_past_16383(void **state)
{
    struct tfx x;
    tfx_open(&x);
    assert_int_equal(scsi_target_add_lu(x.t, 5, x.d[0].lu), -EEXIST);
    assert_int_equal(scsi_target_add_lu(x.t, 16384, x.d[0].lu), -EINVAL);
    tfx_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_luns_lists_every_lun_in_single_level_format),
        cmocka_unit_test(test_report_luns_allocation_length_cuts_the_list_not_its_length),
        cmocka_unit_test(test_report_luns_allocation_length_below_16_returns_invalid_field),
        cmocka_unit_test(test_target_routes_commands_to_the_addressed_lu),
        cmocka_unit_test(test_absent_lun_inquiry_returns_qualifier_3_type_1f),
        cmocka_unit_test(test_absent_lun_other_commands_return_logical_unit_not_supported),
        cmocka_unit_test(test_add_lu_rejects_duplicates_and_luns_past_16383),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
