/*
 * A removable disk through the whole stack (vminiport `Removable = 1`, `PhysicalBlockSize`),
 * driven by SCSI pass-through on PhysicalDrive0: RMB in INQUIRY, LBPPBE in READ CAPACITY (16),
 * PREVENT ALLOW refusing an eject until a LUN reset (IOCTL_STORAGE_RESET_DEVICE: Storport's
 * SRB_FUNCTION_RESET_LOGICAL_UNIT, the miniport's 29h unit attention) ends the prevention, an
 * eject leaving the medium absent (3Ah/02h) and a load bringing it back with its data; and the
 * configuration checks of the two keys.
 */
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/ntddstor.h>
#include <storstack/storstack.h>
#include <storstack/storage/scsi.h>

#include "integ.h"

static void cdb6(struct integ_spt *r, storstack_handle_t *h, uint8_t op, uint8_t b4, int dir,
                 void *data, uint32_t len)
{
    uint8_t c[6] = {op, 0, 0, 0, b4, 0};
    if (op == SCSIOP_INQUIRY)
        c[4] = (uint8_t)len;
    integ_pass_through(h, 0, 0, 0, c, 6, dir, data, len, r);
}

/* TEST UNIT READY until the unit attentions are gone; the last status. */
static struct integ_spt tur_settled(storstack_handle_t *h)
{
    struct integ_spt r;
    for (int i = 0; i < 16; i++) {
        cdb6(&r, h, SCSIOP_TEST_UNIT_READY, 0, INTEG_DATA_NONE, NULL, 0);
        if (r.scsi_status != SCSISTAT_CHECK_CONDITION || (r.sense[2] & 0x0F) != 0x06)
            break;
    }
    return r;
}

static void test_removable_disk_ejects_loads_and_prevention_ends_with_a_lun_reset(void **state)
{
    (void)state;
    char *config = integ_config(NULL, "Backend = ram\nSize = 16M\nRemovable = 1\n"
                                      "PhysicalBlockSize = 4096\n");
    storstack_t *s = integ_boot(config);
    free(config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    struct integ_spt r;
    uint8_t b[96];

    cdb6(&r, h, SCSIOP_INQUIRY, 0, INTEG_DATA_IN, b, sizeof(b));
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    assert_int_equal(b[1] & 0x80, 0x80); /* RMB */
    uint8_t rc16[16] = {SCSIOP_SERVICE_ACTION_IN16, SERVICE_ACTION_READ_CAPACITY16};
    rc16[13] = 32;
    integ_pass_through(h, 0, 0, 0, rc16, 16, INTEG_DATA_IN, b, 32, &r);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    assert_int_equal(b[13] & 0x0F, 3); /* 8 logical blocks per physical block */

    integ_write_pattern(h, 0, 64 * KIB, 11);
    cdb6(&r, h, SCSIOP_MEDIUM_REMOVAL, 1, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x02, INTEG_DATA_NONE, NULL, 0);
    integ_assert_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02, -1, "eject while prevented");

    /* a LUN reset ends the prevention (SBC-4 5.12) */
    assert_status(storstack_ioctl(h, IOCTL_STORAGE_RESET_DEVICE, NULL, 0, NULL, 0, NULL),
                  STATUS_SUCCESS);
    r = tur_settled(h);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x02, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    cdb6(&r, h, SCSIOP_TEST_UNIT_READY, 0, INTEG_DATA_NONE, NULL, 0);
    integ_assert_sense(&r, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_NO_MEDIA_IN_DEVICE, 0x02, -1,
                       "TEST UNIT READY without a medium");

    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x03, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    r = tur_settled(h);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    integ_verify_pattern(h, 0, 64 * KIB, 11); /* the data stayed in the backend */

    storstack_close(h);
    storstack_destroy(s);
}

/* Closing a handle opened with an I_T nexus identity is that nexus's loss at the LU (classpnp
 * passes the cleanup down, Storport calls HwStorUnitControl ScsiUnitNexusLoss, the miniport
 * scsi_lu_nexus_loss): its prevention of medium removal ends; another nexus's does not. */
static void test_closing_a_nexus_handle_ends_its_prevention(void **state)
{
    (void)state;
    char *config = integ_config(NULL, "Backend = ram\nSize = 16M\nRemovable = 1\n");
    storstack_t *s = integ_boot(config);
    free(config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    const struct storstack_identity a = {.principal = "iqn.2026-11.org.example:a",
                                         .transport_id = "iqn.2026-11.org.example:a,i,0x1",
                                         .nexus = 7};
    const struct storstack_identity b = {.principal = "iqn.2026-11.org.example:b", .nexus = 8};
    storstack_handle_t *ha = NULL, *hb = NULL;
    assert_status(storstack_open_ex(s, "PhysicalDrive0",
                                    STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &a, &ha),
                  STATUS_SUCCESS);
    assert_status(storstack_open_ex(s, "PhysicalDrive0",
                                    STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &b, &hb),
                  STATUS_SUCCESS);
    struct integ_spt r;
    tur_settled(ha);
    tur_settled(hb);
    tur_settled(h);
    cdb6(&r, ha, SCSIOP_MEDIUM_REMOVAL, 1, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    cdb6(&r, hb, SCSIOP_MEDIUM_REMOVAL, 1, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);

    storstack_close(hb); /* nexus 8 is gone; 7 still prevents */
    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x02, INTEG_DATA_NONE, NULL, 0);
    integ_assert_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02, -1, "eject while 7 prevents");
    storstack_close(ha);
    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x02, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    /* a handle without a nexus (this host's) closing changes nothing for the others */
    cdb6(&r, h, SCSIOP_START_STOP_UNIT, 0x03, INTEG_DATA_NONE, NULL, 0);
    assert_int_equal(r.scsi_status, SCSISTAT_GOOD);
    storstack_close(h);
    storstack_destroy(s);
}

static void expect_rejected(const char *lun_extra, const char *key)
{
    char err[512] = "";
    char *config = integ_config(NULL, lun_extra);
    storstack_t *s = integ_try_boot(config, err, sizeof(err));
    free(config);
    if (s) {
        storstack_destroy(s);
        fail_msg("a configuration with a bad %s booted", key);
    }
    if (!strstr(err, key))
        fail_msg("bad %s: the message does not name it: %s", key, err);
}

static void test_bad_physical_block_size_fails_the_adapter_with_a_reason(void **state)
{
    (void)state;
    expect_rejected("Backend = ram\nSize = 16M\nPhysicalBlockSize = 256\n", "PhysicalBlockSize");
    expect_rejected("Backend = ram\nSize = 16M\nPhysicalBlockSize = 6144\n", "PhysicalBlockSize");
    expect_rejected("Backend = ram\nSize = 16M\nBlockSize = 4096\nPhysicalBlockSize = 512\n",
                    "PhysicalBlockSize");
    expect_rejected("Backend = ram\nSize = 16M\nPhysicalBlockSize = 131072\n", "PhysicalBlockSize");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_removable_disk_ejects_loads_and_prevention_ends_with_a_lun_reset),
        cmocka_unit_test(test_closing_a_nexus_handle_ends_its_prevention),
        cmocka_unit_test(test_bad_physical_block_size_fails_the_adapter_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
