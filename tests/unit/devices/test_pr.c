/*
 * Reservations of the disk device server with several initiators: SPC-2 RESERVE/RELEASE, and
 * PERSISTENT RESERVE IN/OUT with every service action, the six reservation types against
 * registered and unregistered initiators, unit attentions to the right initiators, SPEC_I_PT
 * TransportIDs, REGISTER AND MOVE, APTPL across a re-created LU, and every bad field.
 */
#include <errno.h>

#include "devices_test.h"

#define DISK_BYTES (2048 * 512)

static const struct be_caps caps_flush = {.can_flush = true};

/* Initiators: A and B by nexus (no TransportID), C and D by iSCSI TransportID. */
struct who {
    uint64_t nexus;
    const char *tid;
};
static const struct who A = {1, NULL}, B = {2, NULL};
static const struct who C = {3, "iqn.2026-11.org.example:c,i,0x230000000003"};
static const struct who D = {4, "iqn.2026-11.org.example:d,i,0x230000000004"};

static void run_as(struct scsi_lu *lu, struct tcmd *t, const struct who *w, const uint8_t *cdb,
                   uint8_t len, enum scsi_dir dir, void *buf, uint32_t xfer)
{
    tcmd_prepare(t, cdb, len, dir, buf, xfer);
    t->cmd.nexus = w->nexus;
    t->cmd.transport_id = w->tid;
    scsi_lu_execute(lu, &t->cmd);
}

/* A command until it stops reporting unit attentions; returns how many it reported. */
static int clear_ua(struct scsi_lu *lu, const struct who *w)
{
    static const uint8_t tur[6] = {0};
    struct tcmd t;
    int n = 0;
    for (;;) {
        run_as(lu, &t, w, tur, 6, SCSI_DIR_NONE, NULL, 0);
        if (t.cmd.status != SAM_STAT_CHECK_CONDITION || sense_key(&t.cmd) != 6)
            return n;
        n++;
    }
}

static void expect_ua(struct scsi_lu *lu, const struct who *w, uint8_t asc, uint8_t ascq)
{
    static const uint8_t tur[6] = {0};
    struct tcmd t;
    run_as(lu, &t, w, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, asc, ascq);
}

static void expect_no_ua(struct scsi_lu *lu, const struct who *w)
{
    static const uint8_t tur[6] = {0};
    struct tcmd t;
    run_as(lu, &t, w, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_int_not_equal(t.cmd.status, SAM_STAT_CHECK_CONDITION);
}

/* PERSISTENT RESERVE OUT with the standard 24-byte list (plus `extra` bytes after it). */
static void prout_x(struct scsi_lu *lu, struct tcmd *t, const struct who *w, uint8_t sa,
                    uint8_t type, uint64_t key, uint64_t sakey, uint8_t b20, const uint8_t *extra,
                    uint32_t nextra)
{
    static uint8_t p[1024];
    memset(p, 0, sizeof(p));
    scsi_put_be64(p, key);
    scsi_put_be64(p + 8, sakey);
    p[20] = b20;
    if (nextra)
        memcpy(p + 24, extra, nextra);
    uint8_t c[10] = {SCSIOP_PERSISTENT_RESERVE_OUT, sa, type};
    scsi_put_be32(c + 5, 24 + nextra);
    run_as(lu, t, w, c, 10, SCSI_DIR_OUT, p, 24 + nextra);
}

static void prout(struct scsi_lu *lu, struct tcmd *t, const struct who *w, uint8_t sa, uint8_t type,
                  uint64_t key, uint64_t sakey)
{
    prout_x(lu, t, w, sa, type, key, sakey, 0, NULL, 0);
}

static void prin(struct scsi_lu *lu, struct tcmd *t, const struct who *w, uint8_t sa, uint8_t *buf,
                 uint16_t alloc)
{
    uint8_t c[10] = {SCSIOP_PERSISTENT_RESERVE_IN, sa};
    scsi_put_be16(c + 7, alloc);
    memset(buf, 0xEE, alloc);
    run_as(lu, t, w, c, 10, SCSI_DIR_IN, buf, alloc);
}

static void reg(struct scsi_lu *lu, const struct who *w, uint64_t key)
{
    struct tcmd t;
    prout(lu, &t, w, 0x06, 0, 0, key); /* REGISTER AND IGNORE EXISTING KEY */
    assert_good(&t);
}

static uint8_t io(struct scsi_lu *lu, const struct who *w, bool write)
{
    static uint8_t b[512];
    uint8_t c[10] = {write ? SCSIOP_WRITE : SCSIOP_READ, 0, 0, 0, 0, 8, 0, 0, 1, 0};
    struct tcmd t;
    run_as(lu, &t, w, c, 10, write ? SCSI_DIR_OUT : SCSI_DIR_IN, b, sizeof(b));
    assert_int_equal(t.ndone, 1);
    return t.cmd.status;
}

static void open_lu(struct fx *f)
{
    fx_open(f, DISK_BYTES, NULL, &caps_flush, true);
    clear_ua(f->lu, &A);
    clear_ua(f->lu, &B);
    clear_ua(f->lu, &C);
    clear_ua(f->lu, &D);
}

/* ---- PERSISTENT RESERVE IN / OUT basics ------------------------------------------------- */

static void test_register_read_keys_and_prgeneration(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 8);
    assert_int_equal(scsi_get_be32(b), 0);
    assert_int_equal(scsi_get_be32(b + 4), 0);

    prout(f.lu, &t, &A, 0x00, 0, 0, 0xA1); /* REGISTER */
    assert_good(&t);
    prout(f.lu, &t, &B, 0x00, 0, 0, 0xB1);
    assert_good(&t);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b), 2);
    assert_int_equal(scsi_get_be32(b + 4), 16);
    assert_int_equal(scsi_get_be64(b + 8), 0xA1);
    assert_int_equal(scsi_get_be64(b + 16), 0xB1);

    /* REGISTER from a registered initiator with the wrong key conflicts, changes nothing */
    prout(f.lu, &t, &A, 0x00, 0, 0xB1, 0xA2);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    /* and from an unregistered one with a nonzero key */
    prout(f.lu, &t, &C, 0x00, 0, 0x77, 0xC1);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    /* the right key changes it; REGISTER AND IGNORE EXISTING KEY ignores the key */
    prout(f.lu, &t, &A, 0x00, 0, 0xA1, 0xA2);
    assert_good(&t);
    prout(f.lu, &t, &B, 0x06, 0, 0x12345, 0xB2);
    assert_good(&t);
    /* unregistering while unregistered: GOOD, PRgeneration unchanged */
    prout(f.lu, &t, &C, 0x00, 0, 0, 0);
    assert_good(&t);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b), 4);
    assert_int_equal(scsi_get_be64(b + 8), 0xA2);
    assert_int_equal(scsi_get_be64(b + 16), 0xB2);
    /* unregister A */
    prout(f.lu, &t, &A, 0x00, 0, 0xA2, 0);
    assert_good(&t);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b), 5);
    assert_int_equal(scsi_get_be32(b + 4), 8);
    assert_int_equal(scsi_get_be64(b + 8), 0xB2);
    /* the allocation length cuts the list; ADDITIONAL LENGTH still tells it all */
    prin(f.lu, &t, &A, 0, b, 12);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 12);
    assert_int_equal(scsi_get_be32(b + 4), 8);
    fx_close(&f);
}

static void test_reserve_release_and_read_reservation(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    prin(f.lu, &t, &A, 1, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b + 4), 0); /* no reservation */
    /* not registered with that key: conflict */
    prout(f.lu, &t, &A, 0x01, 0x01, 0xB1, 0);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prout(f.lu, &t, &A, 0x01, 0x01, 0xA1, 0); /* RESERVE Write Exclusive */
    assert_good(&t);
    prout(f.lu, &t, &A, 0x01, 0x01, 0xA1, 0); /* again, same type: GOOD */
    assert_good(&t);
    prout(f.lu, &t, &A, 0x01, 0x03, 0xA1, 0); /* another type: conflict */
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prout(f.lu, &t, &B, 0x01, 0x01, 0xB1, 0); /* someone else: conflict */
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 24);
    assert_int_equal(scsi_get_be32(b), 2); /* RESERVE does not advance PRgeneration */
    assert_int_equal(scsi_get_be32(b + 4), 16);
    assert_int_equal(scsi_get_be64(b + 8), 0xA1);
    assert_int_equal(b[21], 0x01); /* LU_SCOPE, Write Exclusive */
    /* RELEASE from a non-holder: GOOD, nothing changes */
    prout(f.lu, &t, &B, 0x02, 0x01, 0xB1, 0);
    assert_good(&t);
    /* RELEASE by the holder with another type: INVALID RELEASE OF PERSISTENT RESERVATION */
    prout(f.lu, &t, &A, 0x02, 0x03, 0xA1, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x04);
    prout(f.lu, &t, &A, 0x02, 0x01, 0xA1, 0);
    assert_good(&t);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b + 4), 0);
    /* a Write Exclusive release tells nobody */
    expect_no_ua(f.lu, &B);

    /* all registrants: RESERVATION KEY zero, every registrant holds it and may release it */
    prout(f.lu, &t, &A, 0x01, 0x07, 0xA1, 0);
    assert_good(&t);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be64(b + 8), 0);
    assert_int_equal(b[21], 0x07);
    prout(f.lu, &t, &B, 0x01, 0x07, 0xB1, 0); /* a holder asking again */
    assert_good(&t);
    prout(f.lu, &t, &B, 0x02, 0x07, 0xB1, 0);
    assert_good(&t);
    /* released: the other registrant hears RESERVATIONS RELEASED */
    expect_ua(f.lu, &A, 0x2A, 0x04);
    expect_no_ua(f.lu, &B);
    fx_close(&f);
}

/* The access matrix of SPC-4 5.9.1 table 61, as libiscsi's ProutReserve.Access* checks it:
 * registered and unregistered initiator B reading and writing under A's reservation. */
static void test_each_reservation_type_allows_and_conflicts_as_spc4_says(void **state)
{
    static const struct {
        uint8_t type;
        bool reg_read, reg_write, unreg_read, unreg_write;
    } m[] = {
        {0x03, false, false, false, false}, /* Exclusive Access */
        {0x01, true, false, true, false},   /* Write Exclusive */
        {0x06, true, true, false, false},   /* Exclusive Access, Registrants Only */
        {0x05, true, true, true, false},    /* Write Exclusive, Registrants Only */
        {0x08, true, true, false, false},   /* Exclusive Access, All Registrants */
        {0x07, true, true, true, false},    /* Write Exclusive, All Registrants */
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        struct fx f;
        open_lu(&f);
        struct tcmd t;
        reg(f.lu, &A, 0xA1);
        reg(f.lu, &B, 0xB1);
        prout(f.lu, &t, &A, 0x01, m[i].type, 0xA1, 0);
        assert_good(&t);
        assert_int_equal(io(f.lu, &A, false), SAM_STAT_GOOD);
        assert_int_equal(io(f.lu, &A, true), SAM_STAT_GOOD);
        uint8_t want_r = m[i].reg_read ? SAM_STAT_GOOD : SAM_STAT_RESERVATION_CONFLICT;
        uint8_t want_w = m[i].reg_write ? SAM_STAT_GOOD : SAM_STAT_RESERVATION_CONFLICT;
        assert_int_equal(io(f.lu, &B, false), want_r);
        assert_int_equal(io(f.lu, &B, true), want_w);
        prout(f.lu, &t, &B, 0x00, 0, 0xB1, 0); /* B unregisters */
        assert_good(&t);
        want_r = m[i].unreg_read ? SAM_STAT_GOOD : SAM_STAT_RESERVATION_CONFLICT;
        want_w = m[i].unreg_write ? SAM_STAT_GOOD : SAM_STAT_RESERVATION_CONFLICT;
        assert_int_equal(io(f.lu, &B, false), want_r);
        assert_int_equal(io(f.lu, &B, true), want_w);
        /* always allowed: INQUIRY, TEST UNIT READY, READ CAPACITY, PERSISTENT RESERVE IN */
        uint8_t inq[6] = {SCSIOP_INQUIRY, 0, 0, 0, 36, 0}, b[36];
        run_as(f.lu, &t, &B, inq, 6, SCSI_DIR_IN, b, 36);
        assert_good(&t);
        uint8_t tur[6] = {0};
        run_as(f.lu, &t, &B, tur, 6, SCSI_DIR_NONE, NULL, 0);
        assert_good(&t);
        uint8_t rc[10] = {SCSIOP_READ_CAPACITY}, cap[8];
        run_as(f.lu, &t, &B, rc, 10, SCSI_DIR_IN, cap, 8);
        assert_good(&t);
        /* MODE SELECT and SYNCHRONIZE CACHE change state: conflict for the unregistered B */
        uint8_t sync[10] = {SCSIOP_SYNCHRONIZE_CACHE};
        run_as(f.lu, &t, &B, sync, 10, SCSI_DIR_NONE, NULL, 0);
        assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
        fx_close(&f);
    }
}

/* libiscsi's ProutReserve.Ownership*: the holder unregisters; an all-registrants reservation
 * stays (held by the other registrant, who releases it), any other type is gone. */
static void test_holder_unregistering_for_each_type(void **state)
{
    static const uint8_t types[] = {0x03, 0x01, 0x06, 0x05, 0x08, 0x07};
    for (size_t i = 0; i < sizeof(types); i++) {
        bool shared = types[i] == 0x07 || types[i] == 0x08;
        struct fx f;
        open_lu(&f);
        struct tcmd t;
        uint8_t b[64];
        reg(f.lu, &C, 0xC1);
        reg(f.lu, &D, 0xD1);
        prout(f.lu, &t, &C, 0x01, types[i], 0xC1, 0);
        assert_good(&t);
        prout(f.lu, &t, &C, 0x00, 0, 0xC1, 0); /* C unregisters */
        assert_good(&t);
        prin(f.lu, &t, &C, 1, b, sizeof(b));
        assert_good(&t);
        if (shared) {
            assert_int_equal(scsi_get_be32(b + 4), 16);
            assert_int_equal(scsi_get_be64(b + 8), 0);
            assert_int_equal(b[21], types[i]);
            prout(f.lu, &t, &D, 0x02, types[i], 0xD1, 0);
            assert_good(&t);
            prin(f.lu, &t, &D, 1, b, sizeof(b));
            assert_good(&t);
        } else {
            /* registrants-only types tell the remaining registrant */
            if (types[i] == 0x05 || types[i] == 0x06)
                expect_ua(f.lu, &D, 0x2A, 0x04);
            expect_no_ua(f.lu, &D);
        }
        assert_int_equal(scsi_get_be32(b + 4), 0);
        prout(f.lu, &t, &D, 0x00, 0, 0xD1, 0);
        assert_good(&t);
        fx_close(&f);
    }
}

static void test_holder_unregistering_releases_and_tells_registrants(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    prout(f.lu, &t, &A, 0x01, 0x05, 0xA1, 0); /* Write Exclusive, Registrants Only */
    assert_good(&t);
    prout(f.lu, &t, &A, 0x00, 0, 0xA1, 0);
    assert_good(&t);
    expect_ua(f.lu, &B, 0x2A, 0x04);
    expect_no_ua(f.lu, &A);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b + 4), 0);
    fx_close(&f);
}

static void test_clear_removes_everything_and_tells_the_others(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    reg(f.lu, &C, 0xC1);
    prout(f.lu, &t, &A, 0x01, 0x03, 0xA1, 0);
    assert_good(&t);
    prout(f.lu, &t, &D, 0x03, 0, 0xD1, 0); /* not registered */
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prout(f.lu, &t, &B, 0x03, 0, 0xB1, 0); /* any registrant may CLEAR */
    assert_good(&t);
    prin(f.lu, &t, &B, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b), 4);
    assert_int_equal(scsi_get_be32(b + 4), 0);
    expect_ua(f.lu, &A, 0x2A, 0x03);
    /* REQUEST SENSE returns (and clears) a reservation unit attention too */
    uint8_t rs[6] = {SCSIOP_REQUEST_SENSE, 0, 0, 0, 18, 0}, sense[18];
    run_as(f.lu, &t, &C, rs, 6, SCSI_DIR_IN, sense, 18);
    assert_good(&t);
    assert_int_equal(sense[2] & 0x0F, SCSI_SENSE_UNIT_ATTENTION);
    assert_int_equal(sense[12], 0x2A);
    assert_int_equal(sense[13], 0x03);
    expect_no_ua(f.lu, &C);
    expect_no_ua(f.lu, &B);
    expect_no_ua(f.lu, &D);
    assert_int_equal(io(f.lu, &D, true), SAM_STAT_GOOD);
    fx_close(&f);
}

static void test_preempt_removes_registrations_or_takes_the_reservation(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    reg(f.lu, &C, 0xC1);
    /* no reservation: PREEMPT removes the registrations with the key, one generation step */
    prout(f.lu, &t, &B, 0x04, 0x03, 0xB1, 0xA1);
    assert_good(&t);
    prin(f.lu, &t, &B, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b), 4);
    assert_int_equal(scsi_get_be32(b + 4), 16);
    assert_int_equal(scsi_get_be64(b + 8), 0xB1);
    assert_int_equal(scsi_get_be64(b + 16), 0xC1);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b + 4), 0); /* and reserves nothing */
    expect_ua(f.lu, &A, 0x2A, 0x05);
    expect_no_ua(f.lu, &C);
    /* a key nobody holds: conflict; key zero without a reservation: invalid field */
    prout(f.lu, &t, &B, 0x04, 0x03, 0xB1, 0x999);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prout(f.lu, &t, &B, 0x04, 0x03, 0xB1, 0);
    assert_invalid_param_field(&t, 8, -1);
    /* C reserves; B preempts C's key: B holds a reservation of the type it named */
    prout(f.lu, &t, &C, 0x01, 0x01, 0xC1, 0);
    assert_good(&t);
    prout(f.lu, &t, &B, 0x05, 0x03, 0xB1, 0xC1); /* PREEMPT AND ABORT */
    assert_good(&t);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be64(b + 8), 0xB1);
    assert_int_equal(b[21], 0x03);
    expect_ua(f.lu, &C, 0x2A, 0x05);
    assert_int_equal(io(f.lu, &C, false), SAM_STAT_RESERVATION_CONFLICT);
    /* an unregistered initiator may not preempt */
    prout(f.lu, &t, &D, 0x04, 0x03, 0xD1, 0xB1);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    fx_close(&f);
}

static void test_preempt_of_an_all_registrants_reservation_with_key_zero(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[64];
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    reg(f.lu, &C, 0xC1);
    prout(f.lu, &t, &A, 0x01, 0x08, 0xA1, 0);
    assert_good(&t);
    prout(f.lu, &t, &B, 0x04, 0x01, 0xB1, 0);
    assert_good(&t);
    prin(f.lu, &t, &B, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b + 4), 8);
    prin(f.lu, &t, &B, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be64(b + 8), 0xB1);
    assert_int_equal(b[21], 0x01);
    expect_ua(f.lu, &A, 0x2A, 0x05);
    expect_ua(f.lu, &C, 0x2A, 0x05);
    fx_close(&f);
}

/* ---- TransportIDs: identity, SPEC_I_PT, READ FULL STATUS, REGISTER AND MOVE ------------- */

static uint32_t iscsi_tid(uint8_t *p, const char *s, bool isid)
{
    size_t n = strlen(s) + 1;
    uint32_t len = (uint32_t)((n + 3) & ~(size_t)3);
    if (len < 20)
        len = 20;
    memset(p, 0, 4 + len);
    p[0] = (uint8_t)((isid ? 0x40 : 0) | 0x05);
    scsi_put_be16(p + 2, (uint16_t)len);
    memcpy(p + 4, s, n - 1);
    return 4 + len;
}

static void test_spec_i_pt_registers_initiators_named_by_transport_id(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t x[256], b[512];
    /* D by its name alone (any session), C by name and ISID */
    uint32_t n = 4;
    n += iscsi_tid(x + n, "iqn.2026-11.org.example:d", false);
    n += iscsi_tid(x + n, "IQN.2026-11.org.example:c,i,0x230000000003", true);
    scsi_put_be32(x, n - 4);
    prout_x(f.lu, &t, &A, 0x00, 0, 0, 0xAA, 0x08 | 0x04, x, n); /* SPEC_I_PT ALL_TG_PT */
    assert_good(&t);
    prin(f.lu, &t, &A, 0, b, 64);
    assert_int_equal(scsi_get_be32(b + 4), 24);
    /* C and D are recognised when they connect: they can reserve with the key */
    prout(f.lu, &t, &D, 0x01, 0x01, 0xAA, 0);
    assert_good(&t);
    /* a D session with another ISID is the same registrant */
    struct who d2 = {44, "iqn.2026-11.org.example:d,i,0x230000000099"};
    clear_ua(f.lu, &d2);
    prout(f.lu, &t, &d2, 0x02, 0x01, 0xAA, 0);
    assert_good(&t);
    prin(f.lu, &t, &A, 1, b, 64);
    assert_int_equal(scsi_get_be32(b + 4), 0);

    /* READ FULL STATUS: A by nexus (protocol Fh), D format 00b, C format 01b */
    prout(f.lu, &t, &C, 0x01, 0x03, 0xAA, 0);
    assert_good(&t);
    prin(f.lu, &t, &B, 3, b, sizeof(b));
    assert_good(&t);
    uint32_t total = scsi_get_be32(b + 4);
    uint32_t pos = 8, seen = 0;
    while (pos < 8 + total) {
        const uint8_t *d = b + pos;
        uint32_t tl = scsi_get_be32(d + 20);
        assert_int_equal(scsi_get_be64(d), 0xAA);
        assert_int_equal(d[12] & 0x02, 0x02); /* ALL_TG_PT */
        assert_int_equal(scsi_get_be16(d + 18), 1);
        const uint8_t *id = d + 24;
        if ((id[0] & 0x0F) == 0x0F) {
            assert_int_equal(scsi_get_be64(id + 4), A.nexus);
            assert_int_equal(d[12] & 0x01, 0);
            seen |= 1;
        } else if (id[0] == 0x05) {
            assert_string_equal((const char *)id + 4, "iqn.2026-11.org.example:d");
            seen |= 2;
        } else {
            assert_int_equal(id[0], 0x45);
            assert_string_equal((const char *)id + 4, "IQN.2026-11.org.example:c,i,0x230000000003");
            assert_int_equal(d[12] & 0x01, 0x01); /* R_HOLDER */
            assert_int_equal(d[13], 0x03);
            seen |= 4;
        }
        pos += 24 + tl;
    }
    assert_int_equal(pos, 8 + total);
    assert_int_equal(seen, 7);
    fx_close(&f);
}

static void test_spec_i_pt_bad_lists_register_nobody(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t x[256], b[64];
    /* a Fibre Channel TransportID (protocol 0h): invalid field at its first byte (offset 28) */
    memset(x, 0, sizeof(x));
    scsi_put_be32(x, 24);
    prout_x(f.lu, &t, &A, 0x00, 0, 0, 0xAA, 0x08, x, 28);
    assert_invalid_param_field(&t, 28, 3);
    /* TRANSPORTID PARAMETER DATA LENGTH disagreeing with the list */
    uint32_t n = 4 + iscsi_tid(x + 4, "iqn.2026-11.org.example:d", false);
    scsi_put_be32(x, n);
    prout_x(f.lu, &t, &A, 0x00, 0, 0, 0xAA, 0x08, x, n);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    /* format 01b without ",i,0x" */
    scsi_put_be32(x, n - 4);
    x[4] |= 0x40;
    prout_x(f.lu, &t, &A, 0x00, 0, 0, 0xAA, 0x08, x, n);
    assert_invalid_param_field(&t, 28, 7);
    x[4] &= (uint8_t)~0x40;
    /* not NUL-terminated within its length */
    memset(x + 8, 'a', n - 8);
    prout_x(f.lu, &t, &A, 0x00, 0, 0, 0xAA, 0x08, x, n);
    assert_invalid_param_field(&t, 32, -1);
    /* SPEC_I_PT with REGISTER AND IGNORE EXISTING KEY */
    prout(f.lu, &t, &A, 0x06, 0, 0, 0xAA);
    assert_good(&t);
    prout_x(f.lu, &t, &B, 0x06, 0, 0, 0xBB, 0x08, NULL, 0);
    assert_invalid_param_field(&t, 20, 3);
    /* SPEC_I_PT from a registered initiator */
    prout_x(f.lu, &t, &A, 0x00, 0, 0xAA, 0xAB, 0x08, NULL, 0);
    assert_invalid_param_field(&t, 20, 3);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b + 4), 8); /* A alone */
    fx_close(&f);
}

static void test_register_and_move_hands_the_reservation_over(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t p[128], b[64];
    reg(f.lu, &C, 0xC1);
    prout(f.lu, &t, &C, 0x01, 0x01, 0xC1, 0);
    assert_good(&t);
    /* list: key, service action key, UNREG, RELATIVE TARGET PORT 1, D's TransportID */
    memset(p, 0, sizeof(p));
    scsi_put_be64(p, 0xC1);
    scsi_put_be64(p + 8, 0xD1);
    p[17] = 0x02; /* UNREG */
    scsi_put_be16(p + 18, 1);
    uint32_t tl = iscsi_tid(p + 24, D.tid, true);
    scsi_put_be32(p + 20, tl);
    uint8_t c[10] = {SCSIOP_PERSISTENT_RESERVE_OUT, 0x07, 0x03};
    scsi_put_be32(c + 5, 24 + tl);
    /* a bad relative target port first */
    scsi_put_be16(p + 18, 2);
    run_as(f.lu, &t, &C, c, 10, SCSI_DIR_OUT, p, 24 + tl);
    assert_invalid_param_field(&t, 18, -1);
    scsi_put_be16(p + 18, 1);
    /* a non-holder cannot move */
    run_as(f.lu, &t, &D, c, 10, SCSI_DIR_OUT, p, 24 + tl);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    run_as(f.lu, &t, &C, c, 10, SCSI_DIR_OUT, p, 24 + tl);
    assert_good(&t);
    prin(f.lu, &t, &A, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be64(b + 8), 0xD1);
    assert_int_equal(b[21], 0x03);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b + 4), 8); /* C unregistered */
    assert_int_equal(io(f.lu, &D, true), SAM_STAT_GOOD);
    assert_int_equal(io(f.lu, &C, false), SAM_STAT_RESERVATION_CONFLICT);
    fx_close(&f);
}

/* ---- capabilities and bad fields ----------------------------------------------------------- */

static void test_report_capabilities(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[16];
    prin(f.lu, &t, &A, 2, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 8);
    static const uint8_t want[8] = {0, 8, 0x1C, 0x90, 0xEA, 0x01, 0, 0};
    assert_memory_equal(b, want, 8);
    fx_close(&f);
    /* a backend with metadata: PTPL_C, and PTPL_A once APTPL is set */
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    mock_backend_enable_meta(f.mb);
    clear_ua(f.lu, &A);
    prout_x(f.lu, &t, &A, 0x06, 0, 0, 0xA1, 0x01, NULL, 0);
    assert_good(&t);
    prin(f.lu, &t, &A, 2, b, sizeof(b));
    assert_int_equal(b[2], 0x1D);
    assert_int_equal(b[3], 0x91);
    fx_close(&f);
}

static void test_bad_fields_in_cdb_and_parameter_list(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    uint8_t b[32];
    /* PERSISTENT RESERVE IN service actions 04h..1Fh */
    for (uint8_t sa = 4; sa < 0x20; sa++) {
        prin(f.lu, &t, &A, sa, b, sizeof(b));
        assert_invalid_cdb_field(&t, 1, 4);
    }
    /* reserved CDB bytes */
    uint8_t c[10] = {SCSIOP_PERSISTENT_RESERVE_IN, 0, 0x01, 0, 0, 0, 0, 0, 32, 0};
    run_as(f.lu, &t, &A, c, 10, SCSI_DIR_IN, b, 32);
    assert_invalid_cdb_field(&t, 2, 7); /* a reserved byte is one field */
    reg(f.lu, &A, 0xA1);
    /* SCOPE other than LU_SCOPE; TYPE 0, 2, 4, 9 */
    prout(f.lu, &t, &A, 0x01, 0x11, 0xA1, 0);
    assert_invalid_cdb_field(&t, 2, 7);
    static const uint8_t bad_types[] = {0, 2, 4, 9, 0xF};
    for (size_t i = 0; i < sizeof(bad_types); i++) {
        prout(f.lu, &t, &A, 0x01, bad_types[i], 0xA1, 0);
        assert_invalid_cdb_field(&t, 2, 3);
    }
    /* TYPE is ignored by REGISTER and CLEAR */
    prout(f.lu, &t, &A, 0x00, 0x0F, 0xA1, 0xA1);
    assert_good(&t);
    /* PARAMETER LIST LENGTH other than 24 */
    static uint8_t p[32];
    uint8_t o[10] = {SCSIOP_PERSISTENT_RESERVE_OUT, 0x00, 0, 0, 0, 0, 0, 0, 23, 0};
    run_as(f.lu, &t, &A, o, 10, SCSI_DIR_OUT, p, 23);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    o[8] = 28;
    run_as(f.lu, &t, &A, o, 10, SCSI_DIR_OUT, p, 28);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0x00);
    /* reserved bits of byte 20 and byte 21 of the list */
    prout_x(f.lu, &t, &A, 0x00, 0, 0xA1, 0xA2, 0x02, NULL, 0);
    assert_invalid_param_field(&t, 20, 1);
    prout_x(f.lu, &t, &A, 0x00, 0, 0xA1, 0xA2, 0x80, NULL, 0);
    assert_invalid_param_field(&t, 20, 7);
    /* APTPL without a backend that keeps metadata */
    prout_x(f.lu, &t, &A, 0x00, 0, 0xA1, 0xA2, 0x01, NULL, 0);
    assert_invalid_param_field(&t, 20, 0);
    /* SPEC_I_PT with a service action other than REGISTER */
    prout_x(f.lu, &t, &A, 0x01, 0x01, 0xA1, 0, 0x08, NULL, 0);
    assert_invalid_param_field(&t, 20, 3);
    /* less data-out than the PARAMETER LIST LENGTH */
    o[8] = 24;
    run_as(f.lu, &t, &A, o, 10, SCSI_DIR_OUT, p, 16);
    assert_invalid_cdb_field(&t, 5, -1);
    /* nothing of it changed the state */
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b), 2);
    assert_int_equal(scsi_get_be64(b + 8), 0xA1);
    fx_close(&f);
}

/* ---- APTPL ---------------------------------------------------------------------------------- */

/* A power cycle: a new LU over the same store, its power-on unit attentions consumed. */
static void power_cycle(struct fx *f)
{
    scsi_lu_destroy(f->lu);
    assert_int_equal(scsi_disk_create(NULL, &f->mb->be, &f->lu), 0);
    clear_ua(f->lu, &A);
    clear_ua(f->lu, &B);
    clear_ua(f->lu, &C);
}

static void test_aptpl_state_survives_recreating_the_lu(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    mock_backend_enable_meta(f.mb);
    struct tcmd t;
    uint8_t b[512];
    clear_ua(f.lu, &A);
    clear_ua(f.lu, &B);
    clear_ua(f.lu, &C);
    reg(f.lu, &A, 0xA1);
    assert_int_equal(f.mb->nmeta_store, 0);                 /* nothing persistent yet */
    prout_x(f.lu, &t, &C, 0x06, 0, 0, 0xC1, 0x01, NULL, 0); /* APTPL */
    assert_good(&t);
    prout(f.lu, &t, &C, 0x01, 0x06, 0xC1, 0);
    assert_good(&t);
    assert_true(f.mb->meta_present);
    /* a failing store changes nothing */
    f.mb->meta_fail = -EIO;
    prout(f.lu, &t, &A, 0x00, 0, 0xA1, 0);
    assert_check(&t, SCSI_SENSE_MEDIUM_ERROR, 0x0C, 0x00);
    f.mb->meta_fail = 0;

    power_cycle(&f);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(b), 2);
    assert_int_equal(scsi_get_be32(b + 4), 16);
    assert_int_equal(scsi_get_be64(b + 8), 0xA1);
    assert_int_equal(scsi_get_be64(b + 16), 0xC1);
    prin(f.lu, &t, &A, 1, b, sizeof(b));
    assert_int_equal(scsi_get_be64(b + 8), 0xC1);
    assert_int_equal(b[21], 0x06);
    /* the reservation is in force for the reconnecting initiator C and against B */
    assert_int_equal(io(f.lu, &C, true), SAM_STAT_GOOD);
    assert_int_equal(io(f.lu, &B, false), SAM_STAT_RESERVATION_CONFLICT);
    /* APTPL cleared: the blob goes, and a power cycle forgets everything */
    prout_x(f.lu, &t, &C, 0x00, 0, 0xC1, 0xC1, 0x00, NULL, 0);
    assert_good(&t);
    assert_false(f.mb->meta_present);
    power_cycle(&f);
    prin(f.lu, &t, &A, 0, b, sizeof(b));
    assert_int_equal(scsi_get_be32(b), 0);
    assert_int_equal(scsi_get_be32(b + 4), 0);
    fx_close(&f);
}

static void test_corrupt_aptpl_blob_fails_lu_creation(void **state)
{
    struct fx f;
    fx_open(&f, DISK_BYTES, NULL, &caps_flush, false);
    mock_backend_enable_meta(f.mb);
    assert_int_equal(f.mb->be.ops->meta_store(&f.mb->be, "pr", "SSPR\x01garbage", 12), 0);
    struct scsi_lu *lu2 = NULL;
    assert_int_equal(scsi_disk_create(NULL, &f.mb->be, &lu2), -EINVAL);
    assert_null(lu2);
    fx_close(&f);
}

/* ---- SPC-2 RESERVE / RELEASE -------------------------------------------------------------- */

static void reserve6(struct scsi_lu *lu, struct tcmd *t, const struct who *w, bool release)
{
    uint8_t c[6] = {release ? SCSIOP_RELEASE_UNIT : SCSIOP_RESERVE_UNIT};
    run_as(lu, t, w, c, 6, SCSI_DIR_NONE, NULL, 0);
}

static void test_spc2_reserve_conflicts_for_other_initiators(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    reserve6(f.lu, &t, &A, false);
    assert_good(&t);
    reserve6(f.lu, &t, &A, false); /* again: GOOD */
    assert_good(&t);
    reserve6(f.lu, &t, &B, false);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    assert_int_equal(io(f.lu, &B, false), SAM_STAT_RESERVATION_CONFLICT);
    uint8_t ms[6] = {SCSIOP_MODE_SENSE, 0, 0x3F, 0, 255, 0}, b[255];
    run_as(f.lu, &t, &B, ms, 6, SCSI_DIR_IN, b, 255);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    run_as(f.lu, &t, &A, ms, 6, SCSI_DIR_IN, b, 255);
    assert_good(&t);
    uint8_t inq[6] = {SCSIOP_INQUIRY, 0, 0, 0, 36, 0};
    run_as(f.lu, &t, &B, inq, 6, SCSI_DIR_IN, b, 36);
    assert_good(&t);
    /* PERSISTENT RESERVE from another initiator conflicts too */
    prin(f.lu, &t, &B, 0, b, 32);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    /* RELEASE from B: GOOD, nothing released */
    reserve6(f.lu, &t, &B, true);
    assert_good(&t);
    assert_int_equal(io(f.lu, &B, true), SAM_STAT_RESERVATION_CONFLICT);
    reserve6(f.lu, &t, &A, true);
    assert_good(&t);
    assert_int_equal(io(f.lu, &B, true), SAM_STAT_GOOD);
    /* RESERVE(10) the same way; 3RDPTY is not supported */
    uint8_t r10[10] = {SCSIOP_RESERVE_UNIT10};
    run_as(f.lu, &t, &B, r10, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_RESERVATION_CONFLICT);
    uint8_t r10b[10] = {SCSIOP_RELEASE_UNIT10, 0x10};
    run_as(f.lu, &t, &B, r10b, 10, SCSI_DIR_NONE, NULL, 0);
    assert_invalid_cdb_field(&t, 1, 4);
    r10b[1] = 0;
    run_as(f.lu, &t, &B, r10b, 10, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_GOOD);
    fx_close(&f);
}

static void test_spc2_reserve_ends_with_reset_and_nexus_loss(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    /* a reset also supersedes pending reservation unit attentions */
    reg(f.lu, &A, 0xA1);
    reg(f.lu, &B, 0xB1);
    prout(f.lu, &t, &A, 0x03, 0, 0xA1, 0); /* CLEAR: B has 2Ah/03h pending */
    assert_good(&t);
    scsi_lu_set_unit_attention(f.lu, 0x29, 0x03);
    expect_ua(f.lu, &B, 0x29, 0x03);
    expect_no_ua(f.lu, &B);
    clear_ua(f.lu, &A);
    clear_ua(f.lu, &C);

    reserve6(f.lu, &t, &A, false);
    assert_good(&t);
    scsi_lu_set_unit_attention(f.lu, 0x29, 0x03); /* LUN reset */
    expect_ua(f.lu, &B, 0x29, 0x03);
    assert_int_equal(io(f.lu, &B, true), SAM_STAT_GOOD);
    reserve6(f.lu, &t, &C, false);
    assert_int_equal(t.cmd.status, SAM_STAT_CHECK_CONDITION); /* C's reset UA first */
    reserve6(f.lu, &t, &C, false);
    assert_good(&t);
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_CHECK_CONDITION); /* A's reset UA */
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_RESERVATION_CONFLICT);
    scsi_lu_nexus_loss(f.lu, 99, D.tid); /* someone else's loss changes nothing */
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_RESERVATION_CONFLICT);
    scsi_lu_nexus_loss(f.lu, C.nexus, C.tid);
    assert_int_equal(io(f.lu, &A, false), SAM_STAT_GOOD);
    fx_close(&f);
}

/* SPC-4 5.9.3 (CRH=1): RESERVE/RELEASE while persistent reservations are in use. */
static void test_spc2_reserve_with_persistent_reservations_in_use(void **state)
{
    struct fx f;
    open_lu(&f);
    struct tcmd t;
    reg(f.lu, &A, 0xA1);
    reserve6(f.lu, &t, &B, false); /* B is not registered, A is: conflict */
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    reserve6(f.lu, &t, &A, false); /* registered, not a holder: conflict */
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    prout(f.lu, &t, &A, 0x01, 0x03, 0xA1, 0);
    assert_good(&t);
    reserve6(f.lu, &t, &A, false); /* the holder: GOOD, nothing changes */
    assert_good(&t);
    reserve6(f.lu, &t, &A, true);
    assert_good(&t);
    uint8_t b[32];
    prin(f.lu, &t, &A, 1, b, sizeof(b));
    assert_int_equal(b[21], 0x03);
    assert_int_equal(io(f.lu, &A, true), SAM_STAT_GOOD);
    reserve6(f.lu, &t, &B, true);
    assert_int_equal(t.cmd.status, SAM_STAT_RESERVATION_CONFLICT);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_read_keys_and_prgeneration),
        cmocka_unit_test(test_reserve_release_and_read_reservation),
        cmocka_unit_test(test_each_reservation_type_allows_and_conflicts_as_spc4_says),
        cmocka_unit_test(test_holder_unregistering_releases_and_tells_registrants),
        cmocka_unit_test(test_holder_unregistering_for_each_type),
        cmocka_unit_test(test_clear_removes_everything_and_tells_the_others),
        cmocka_unit_test(test_preempt_removes_registrations_or_takes_the_reservation),
        cmocka_unit_test(test_preempt_of_an_all_registrants_reservation_with_key_zero),
        cmocka_unit_test(test_spec_i_pt_registers_initiators_named_by_transport_id),
        cmocka_unit_test(test_spec_i_pt_bad_lists_register_nobody),
        cmocka_unit_test(test_register_and_move_hands_the_reservation_over),
        cmocka_unit_test(test_report_capabilities),
        cmocka_unit_test(test_bad_fields_in_cdb_and_parameter_list),
        cmocka_unit_test(test_aptpl_state_survives_recreating_the_lu),
        cmocka_unit_test(test_corrupt_aptpl_blob_fails_lu_creation),
        cmocka_unit_test(test_spc2_reserve_conflicts_for_other_initiators),
        cmocka_unit_test(test_spc2_reserve_ends_with_reset_and_nexus_loss),
        cmocka_unit_test(test_spc2_reserve_with_persistent_reservations_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
