/*
 * A removable disk (RMB=1): START STOP UNIT LOEJ ejects and loads the medium, PREVENT ALLOW
 * MEDIUM REMOVAL per I_T nexus (SBC-4 5.12, 5.25), ended by a reset or the loss of the nexus; the
 * physical block size (READ CAPACITY (16), VPD B0h); bit pointers at a field's most significant
 * bit (SPC-4 4.5.2.4.2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "devices_test.h"

#define DISK_BYTES (1024 * 512)

static const struct be_caps caps_flush = {.can_flush = true};
static const struct be_caps caps_thin = {.can_flush = true,
                                         .can_trim = true,
                                         .trim_zeroes = true,
                                         .can_zero = true,
                                         .can_extents = true};
static const struct scsi_disk_config removable = {
    .block_size = 512, .write_cache = true, .removable = true};

/* Runs a CDB for the given I_T nexus. */
static void run_nx(struct scsi_lu *lu, struct tcmd *t, uint64_t nexus, const uint8_t *cdb,
                   uint8_t len, enum scsi_dir dir, void *buf, uint32_t xfer)
{
    tcmd_prepare(t, cdb, len, dir, buf, xfer);
    t->cmd.nexus = nexus;
    scsi_lu_execute(lu, &t->cmd);
}

static void tur(struct scsi_lu *lu, struct tcmd *t, uint64_t nexus)
{
    static const uint8_t c[6] = {SCSIOP_TEST_UNIT_READY};
    run_nx(lu, t, nexus, c, 6, SCSI_DIR_NONE, NULL, 0);
}

static void start_stop(struct scsi_lu *lu, struct tcmd *t, uint64_t nexus, uint8_t byte4)
{
    uint8_t c[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, byte4, 0};
    run_nx(lu, t, nexus, c, 6, SCSI_DIR_NONE, NULL, 0);
}

static void prevent(struct scsi_lu *lu, struct tcmd *t, uint64_t nexus, uint8_t p)
{
    uint8_t c[6] = {SCSIOP_MEDIUM_REMOVAL, 0, 0, 0, p, 0};
    run_nx(lu, t, nexus, c, 6, SCSI_DIR_NONE, NULL, 0);
}

#define EJECT 0x02
#define LOAD  0x03

static void assert_no_medium(const struct tcmd *t)
{
    assert_check(t, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_NO_MEDIA_IN_DEVICE, 0x02);
}

static void assert_removal_prevented(const struct tcmd *t)
{
    assert_check(t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_MEDIA_LOAD_OR_EJECT_FAILED, 0x02);
}

/* The power-on unit attention of a nexus other than 0 (fx_open takes nexus 0's). */
static void take_power_on(struct scsi_lu *lu, uint64_t nexus)
{
    struct tcmd t;
    tur(lu, &t, nexus);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0x00);
}

static void test_removable_disk_reports_rmb_and_a_fixed_disk_does_not(void **state)
{
    struct fx f;
    uint8_t b[96];
    uint8_t c[6] = {SCSIOP_INQUIRY, 0, 0, 0, sizeof(b), 0};
    struct tcmd t;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(b[1] & 0x80, 0x80);
    fx_close(&f);
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    run_cmd(f.lu, &t, c, 6, SCSI_DIR_IN, b, sizeof(b));
    assert_int_equal(b[1] & 0x80, 0);
    fx_close(&f);
}

static void test_eject_makes_media_access_not_ready_and_load_keeps_the_data(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    take_power_on(f.lu, 7);
    uint8_t w[512], r[512], c[16];
    memset(w, 0x5A, sizeof(w));
    struct tcmd t;
    cdb10(c, SCSIOP_WRITE, 3, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, w, sizeof(w));
    assert_good(&t);

    mock_backend_clear_log(f.mb);
    start_stop(f.lu, &t, 0, EJECT);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 1); /* the cache goes first */
    tur(f.lu, &t, 0);
    assert_no_medium(&t);
    cdb10(c, SCSIOP_READ, 3, 1);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_no_medium(&t);
    uint8_t rc10[10] = {SCSIOP_READ_CAPACITY};
    run_cmd(f.lu, &t, rc10, 10, SCSI_DIR_IN, r, 8);
    assert_no_medium(&t);
    /* REQUEST SENSE tells why */
    uint8_t rs[6] = {SCSIOP_REQUEST_SENSE, 0, 0, 0, 18, 0};
    run_cmd(f.lu, &t, rs, 6, SCSI_DIR_IN, r, 18);
    assert_good(&t);
    assert_int_equal(r[2] & 0x0F, SCSI_SENSE_NOT_READY);
    assert_int_equal(r[12], SCSI_ADSENSE_NO_MEDIA_IN_DEVICE);
    assert_int_equal(r[13], 0x02);
    /* START=1 alone has nothing to spin up; ejecting again changes nothing */
    start_stop(f.lu, &t, 0, 0x01);
    assert_no_medium(&t);
    start_stop(f.lu, &t, 0, EJECT);
    assert_good(&t);

    start_stop(f.lu, &t, 0, LOAD);
    assert_good(&t);
    tur(f.lu, &t, 0); /* the loading nexus sees no unit attention */
    assert_good(&t);
    tur(f.lu, &t, 7); /* another one does: NOT READY TO READY CHANGE */
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_MEDIUM_CHANGED, 0x00);
    tur(f.lu, &t, 7);
    assert_good(&t);
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, r, sizeof(r));
    assert_good(&t);
    assert_memory_equal(r, w, sizeof(w));
    fx_close(&f);
}

static void test_eject_without_flush_when_no_flush_is_set(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    struct tcmd t;
    start_stop(f.lu, &t, 0, EJECT | 0x04);
    assert_good(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 0);
    tur(f.lu, &t, 0);
    assert_no_medium(&t);
    fx_close(&f);
}

static void test_prevent_from_any_nexus_refuses_eject_and_load(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    take_power_on(f.lu, 2);
    struct tcmd t;
    prevent(f.lu, &t, 0, 1);
    assert_good(&t);
    start_stop(f.lu, &t, 0, EJECT);
    assert_removal_prevented(&t);
    start_stop(f.lu, &t, 2, EJECT); /* another nexus is refused too */
    assert_removal_prevented(&t);
    assert_int_equal(mock_backend_count(f.mb, BE_OP_FLUSH), 0);
    tur(f.lu, &t, 0);
    assert_good(&t);
    prevent(f.lu, &t, 2, 0); /* an ALLOW from another nexus ends only its own prevention */
    assert_good(&t);
    start_stop(f.lu, &t, 2, EJECT);
    assert_removal_prevented(&t);
    prevent(f.lu, &t, 0, 0);
    start_stop(f.lu, &t, 2, EJECT);
    assert_good(&t);
    /* a prevention taken while the medium is out holds the tray: no load */
    prevent(f.lu, &t, 0, 1);
    assert_good(&t);
    start_stop(f.lu, &t, 0, LOAD);
    assert_removal_prevented(&t);
    tur(f.lu, &t, 0);
    assert_no_medium(&t);
    prevent(f.lu, &t, 0, 0);
    start_stop(f.lu, &t, 0, LOAD);
    assert_good(&t);
    /* loading a loaded medium moves nothing, prevented or not */
    prevent(f.lu, &t, 0, 1);
    start_stop(f.lu, &t, 0, LOAD);
    assert_good(&t);
    fx_close(&f);
}

static void test_prevention_ends_with_a_reset_or_the_loss_of_its_nexus(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    take_power_on(f.lu, 2);
    take_power_on(f.lu, 3);
    struct tcmd t;
    prevent(f.lu, &t, 2, 1);
    prevent(f.lu, &t, 3, 1);
    scsi_lu_nexus_loss(f.lu, 9, NULL); /* a nexus that prevents nothing */
    start_stop(f.lu, &t, 0, EJECT);
    assert_removal_prevented(&t);
    scsi_lu_nexus_loss(f.lu, 2, NULL);
    start_stop(f.lu, &t, 0, EJECT);
    assert_removal_prevented(&t); /* 3 still prevents */
    scsi_lu_nexus_loss(f.lu, 3, "iqn.x,i,0x1");
    start_stop(f.lu, &t, 0, EJECT);
    assert_good(&t);
    start_stop(f.lu, &t, 0, LOAD);
    assert_good(&t);

    prevent(f.lu, &t, 0, 1);
    scsi_lu_set_unit_attention(f.lu, SCSI_ADSENSE_BUS_RESET, 0x03); /* a LUN reset */
    tur(f.lu, &t, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, SCSI_ADSENSE_BUS_RESET, 0x03);
    start_stop(f.lu, &t, 0, EJECT);
    assert_good(&t);
    /* another unit attention does not end it */
    start_stop(f.lu, &t, 0, LOAD);
    prevent(f.lu, &t, 0, 1);
    scsi_lu_set_unit_attention(f.lu, 0x2A, 0x09);
    tur(f.lu, &t, 0);
    start_stop(f.lu, &t, 0, EJECT);
    assert_removal_prevented(&t);
    fx_close(&f);
}

static void test_prevent_table_full_is_a_resource_failure(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    struct tcmd t;
    for (uint64_t n = 1; n <= 32; n++) {
        take_power_on(f.lu, n);
        prevent(f.lu, &t, n, 1);
        assert_good(&t);
    }
    prevent(f.lu, &t, 1, 1); /* again from a nexus that has an entry: fine */
    assert_good(&t);
    take_power_on(f.lu, 33);
    prevent(f.lu, &t, 33, 1);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_SYSTEM_RESOURCE_FAILURE, 0);
    prevent(f.lu, &t, 33, 0); /* allowing needs no entry */
    assert_good(&t);
    fx_close(&f);
}

static void test_power_conditions_and_loej_on_a_fixed_disk(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    struct tcmd t;
    /* ACTIVE and LU_CONTROL change nothing and ignore START and LOEJ */
    start_stop(f.lu, &t, 0, 0x10 | EJECT);
    assert_good(&t);
    start_stop(f.lu, &t, 0, 0x70);
    assert_good(&t);
    tur(f.lu, &t, 0);
    assert_good(&t);
    /* IDLE, STANDBY and the reserved values: INVALID FIELD at POWER CONDITION's top bit */
    const uint8_t bad[] = {0x2, 0x3, 0x4, 0x5, 0x6, 0x8, 0x9, 0xA, 0xB, 0xC, 0xF};
    for (size_t i = 0; i < sizeof(bad); i++) {
        start_stop(f.lu, &t, 0, (uint8_t)(bad[i] << 4));
        assert_invalid_cdb_field(&t, 4, 7);
    }
    /* LOEJ=0 with START=0 stops (04h/02h), it does not eject */
    start_stop(f.lu, &t, 0, 0x00);
    assert_good(&t);
    tur(f.lu, &t, 0);
    assert_check(&t, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_LUN_NOT_READY,
                 SCSI_SENSEQ_INIT_COMMAND_REQUIRED);
    start_stop(f.lu, &t, 0, 0x01);
    assert_good(&t);
    fx_close(&f);

    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    start_stop(f.lu, &t, 0, EJECT); /* not removable: nothing to eject */
    assert_invalid_cdb_field(&t, 4, 1);
    prevent(f.lu, &t, 0, 1); /* nothing to prevent, nothing recorded */
    assert_good(&t);
    fx_close(&f);
}

static void read_capacity16(struct scsi_lu *lu, uint8_t *b)
{
    uint8_t c[16];
    struct tcmd t;
    cdb16(c, SCSIOP_SERVICE_ACTION_IN16, 0, 32);
    c[1] = SERVICE_ACTION_READ_CAPACITY16;
    run_cmd(lu, &t, c, 16, SCSI_DIR_IN, b, 32);
    assert_good(&t);
}

static void block_limits(struct scsi_lu *lu, uint8_t *b)
{
    uint8_t c[6] = {SCSIOP_INQUIRY, 1, 0xB0, 0, 64, 0};
    struct tcmd t;
    run_cmd(lu, &t, c, 6, SCSI_DIR_IN, b, 64);
    assert_good(&t);
}

static void test_physical_block_size_sets_lbppbe_and_the_granularities(void **state)
{
    static const struct {
        uint32_t bs, pbs;
        uint8_t exp;
        uint16_t xfer_gran;
        uint32_t unmap_gran;
    } cases[] = {
        {512, 0, 0, 1, 8},      /* default: one logical block per physical block */
        {512, 4096, 3, 8, 8},   /* 512e */
        {512, 8192, 4, 16, 16}, /* unmap granularity never below a physical block */
        {4096, 0, 0, 1, 1},     {4096, 65536, 4, 16, 16},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scsi_disk_config cfg = {.block_size = cases[i].bs,
                                       .physical_block_size = cases[i].pbs};
        struct fx f;
        fx_open(&f, 256 * 4096, &cfg, &caps_thin, false);
        uint8_t b[64];
        read_capacity16(f.lu, b);
        assert_int_equal(scsi_get_be32(b + 8), cases[i].bs);
        assert_int_equal(b[13] & 0x0F, cases[i].exp);
        assert_int_equal(scsi_get_be16(b + 14) & 0x3FFF, 0); /* LOWEST ALIGNED LBA */
        block_limits(f.lu, b);
        assert_int_equal(scsi_get_be16(b + 6), cases[i].xfer_gran);
        assert_int_equal(scsi_get_be32(b + 28), cases[i].unmap_gran);
        assert_int_equal(scsi_get_be32(b + 32), 0x80000000u); /* UGAVALID, alignment 0 */
        fx_close(&f);
    }
}

static void test_physical_block_size_must_be_a_power_of_two_multiple_up_to_64k(void **state)
{
    struct mock_backend *mb = mock_backend_create(1 << 20, &caps_thin);
    struct scsi_lu *lu;
    const uint32_t bad[][2] = {{512, 256}, {512, 1536}, {4096, 2048}, {512, 131072}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct scsi_disk_config cfg = {.block_size = bad[i][0], .physical_block_size = bad[i][1]};
        assert_int_equal(scsi_disk_create(&cfg, &mb->be, &lu), -EINVAL);
    }
    be_destroy(&mb->be);
}

/* SPC-4 4.5.2.4.2: the bit pointer names the most significant bit of the field in error. */
static void test_bit_pointer_names_the_fields_most_significant_bit(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_thin, false);
    struct tcmd t;
    uint8_t c[16], d[512] = {0};
    /* FORMAT UNIT FMTPINFO 01b: bit 7, not 6 */
    uint8_t fu[6] = {SCSIOP_FORMAT_UNIT, 0x40, 0, 0, 0, 0};
    run_cmd(f.lu, &t, fu, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 7);
    /* FORMAT UNIT without FMTDATA: DEFECT LIST FORMAT 001b points at bit 2 */
    fu[1] = 0x01;
    run_cmd(f.lu, &t, fu, 6, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 2);
    /* NACA in CONTROL stays bit 2; a reserved CONTROL bit points at 5 */
    cdb10(c, SCSIOP_READ, 0, 1);
    c[9] = 0x04;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, d, sizeof(d));
    assert_invalid_cdb_field(&t, 9, 2);
    c[9] = 0x08;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, d, sizeof(d));
    assert_invalid_cdb_field(&t, 9, 5);
    c[9] = 0x01; /* obsolete LINK: its own field */
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_IN, d, sizeof(d));
    assert_invalid_cdb_field(&t, 9, 0);
    /* WRITE SAME(10): obsolete bit 0 apart from reserved 2..1 */
    cdb10(c, SCSIOP_WRITE_SAME, 0, 1);
    c[1] = 0x01;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_invalid_cdb_field(&t, 1, 0);
    c[1] = 0x02;
    run_cmd(f.lu, &t, c, 10, SCSI_DIR_OUT, d, sizeof(d));
    assert_invalid_cdb_field(&t, 1, 2);
    /* READ(16) RDPROTECT 001b */
    cdb16(c, SCSIOP_READ16, 0, 1);
    c[1] = 0x20;
    run_cmd(f.lu, &t, c, 16, SCSI_DIR_IN, d, sizeof(d));
    assert_invalid_cdb_field(&t, 1, 7);
    /* READ CAPACITY(10) obsolete RELADR is bit 0, a reserved bit above it points at 7 */
    uint8_t rc[10] = {SCSIOP_READ_CAPACITY, 0x01};
    run_cmd(f.lu, &t, rc, 10, SCSI_DIR_IN, d, 8);
    assert_invalid_cdb_field(&t, 1, 0);
    rc[1] = 0x04;
    run_cmd(f.lu, &t, rc, 10, SCSI_DIR_IN, d, 8);
    assert_invalid_cdb_field(&t, 1, 7);
    fx_close(&f);
}

/* Threads moving the medium, preventing and reading at once: every answer is one of the states
 * a single command could see, and the lock-free reads of the medium state are race-free (this
 * program also runs under ThreadSanitizer: the `concurrent` label). */
struct race {
    struct scsi_lu *lu;
    atomic_bool stop;
    atomic_int bad;
};

static void *race_mover(void *arg)
{
    struct race *r = arg;
    struct tcmd t;
    for (int i = 0; i < 2000; i++) {
        start_stop(r->lu, &t, 1, (i & 1) ? LOAD : EJECT);
        bool ok = t.cmd.status == SAM_STAT_GOOD ||
                  (t.cmd.status == SAM_STAT_CHECK_CONDITION && sense_asc(&t.cmd) == 0x53 &&
                   sense_ascq(&t.cmd) == 0x02) ||
                  (t.cmd.status == SAM_STAT_CHECK_CONDITION && sense_asc(&t.cmd) == 0x28);
        if (!ok || t.ndone != 1)
            atomic_fetch_add(&r->bad, 1);
    }
    return NULL;
}

static void *race_preventer(void *arg)
{
    struct race *r = arg;
    struct tcmd t;
    for (int i = 0; !atomic_load(&r->stop); i++) {
        prevent(r->lu, &t, 2, i & 1);
        if (t.cmd.status != SAM_STAT_GOOD &&
            !(t.cmd.status == SAM_STAT_CHECK_CONDITION && sense_key(&t.cmd) == 0x06))
            atomic_fetch_add(&r->bad, 1);
    }
    return NULL;
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    struct tcmd t;
    uint8_t c[16], buf[512];
    cdb10(c, SCSIOP_READ, 5, 1);
    while (!atomic_load(&r->stop)) {
        run_nx(r->lu, &t, 3, c, 10, SCSI_DIR_IN, buf, sizeof(buf));
        if (t.cmd.status == SAM_STAT_GOOD || t.ndone != 1) {
            if (t.ndone != 1)
                atomic_fetch_add(&r->bad, 1);
            continue;
        }
        uint8_t key = sense_key(&t.cmd), asc = sense_asc(&t.cmd);
        bool ok = (key == SCSI_SENSE_NOT_READY && (asc == 0x3A || asc == 0x04)) ||
                  (key == SCSI_SENSE_UNIT_ATTENTION && (asc == 0x28 || asc == 0x29));
        if (!ok)
            atomic_fetch_add(&r->bad, 1);
    }
    return NULL;
}

static void test_eject_load_and_prevent_race_with_reads(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, &removable, &caps_flush, false);
    for (uint64_t n = 1; n <= 3; n++)
        take_power_on(f.lu, n);
    struct race r = {.lu = f.lu};
    atomic_init(&r.stop, false);
    atomic_init(&r.bad, 0);
    pthread_t mover, preventer, reader;
    assert_int_equal(pthread_create(&preventer, NULL, race_preventer, &r), 0);
    assert_int_equal(pthread_create(&reader, NULL, race_reader, &r), 0);
    assert_int_equal(pthread_create(&mover, NULL, race_mover, &r), 0);
    pthread_join(mover, NULL);
    atomic_store(&r.stop, true);
    pthread_join(preventer, NULL);
    pthread_join(reader, NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    /* after the race: allowed again, the medium loads and reads */
    struct tcmd t;
    prevent(f.lu, &t, 2, 0);
    start_stop(f.lu, &t, 1, LOAD);
    assert_true(t.cmd.status == SAM_STAT_GOOD || sense_asc(&t.cmd) == 0x28);
    start_stop(f.lu, &t, 1, LOAD);
    assert_good(&t);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_removable_disk_reports_rmb_and_a_fixed_disk_does_not),
        cmocka_unit_test(test_eject_makes_media_access_not_ready_and_load_keeps_the_data),
        cmocka_unit_test(test_eject_without_flush_when_no_flush_is_set),
        cmocka_unit_test(test_prevent_from_any_nexus_refuses_eject_and_load),
        cmocka_unit_test(test_prevention_ends_with_a_reset_or_the_loss_of_its_nexus),
        cmocka_unit_test(test_prevent_table_full_is_a_resource_failure),
        cmocka_unit_test(test_power_conditions_and_loej_on_a_fixed_disk),
        cmocka_unit_test(test_physical_block_size_sets_lbppbe_and_the_granularities),
        cmocka_unit_test(test_physical_block_size_must_be_a_power_of_two_multiple_up_to_64k),
        cmocka_unit_test(test_bit_pointer_names_the_fields_most_significant_bit),
        cmocka_unit_test(test_eject_load_and_prevent_race_with_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
