/*
 * Reservations through the whole stack: two handles opened with different identities
 * (storstack_open_ex) are two initiators to the disk's device server. A persistent reservation
 * of one keeps the other out (RESERVATION CONFLICT comes back as the pass-through's ScsiStatus),
 * a preemption reaches the preempted initiator as a unit attention, and with APTPL the
 * registrations and the reservation survive destroying the stack and booting a new one on the
 * same image file (the file backend's "<image>.pr" sidecar).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integ.h"

static const struct storstack_identity ida = {.principal = "iqn.2026-11.org.example:a",
                                              .transport_id =
                                                  "iqn.2026-11.org.example:a,i,0x230000000001",
                                              .nexus = 0x11};
static const struct storstack_identity idb = {.principal = "iqn.2026-11.org.example:b",
                                              .transport_id =
                                                  "iqn.2026-11.org.example:b,i,0x230000000002",
                                              .nexus = 0x22};

static void expect_status(const struct integ_spt *r, uint8_t st, const char *what)
{
    if (r->status != STATUS_SUCCESS || r->scsi_status != st)
        fail_msg("%s: IOCTL %s, ScsiStatus %02Xh (want %02Xh), sense %Xh/%02Xh/%02Xh", what,
                 storstack_status_name(r->status), r->scsi_status, st, r->sense[2] & 0x0F,
                 r->sense[12], r->sense[13]);
}

static void cmd(storstack_handle_t *h, const uint8_t *cdb, uint8_t len, int dir, void *data,
                uint32_t n, struct integ_spt *r)
{
    integ_pass_through(h, 1, 0, 0, cdb, len, dir, data, n, r);
}

/* TEST UNIT READY until it stops reporting unit attentions. */
static void settle(storstack_handle_t *h)
{
    static const uint8_t tur[6] = {0};
    struct integ_spt r;
    for (int i = 0; i < 16; i++) {
        cmd(h, tur, 6, INTEG_DATA_NONE, NULL, 0, &r);
        if (r.scsi_status == 0)
            return;
    }
    fail_msg("unit attentions do not stop");
}

static void prout(storstack_handle_t *h, uint8_t sa, uint8_t type, uint64_t key, uint64_t sakey,
                  uint8_t b20, struct integ_spt *r)
{
    uint8_t p[24] = {0}, c[10] = {0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0};
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(key >> (56 - 8 * i));
        p[8 + i] = (uint8_t)(sakey >> (56 - 8 * i));
    }
    p[20] = b20;
    cmd(h, c, 10, INTEG_DATA_OUT, p, 24, r);
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)integ_get_be32(p) << 32 | integ_get_be32(p + 4);
}

static void io10(storstack_handle_t *h, bool write, struct integ_spt *r)
{
    static uint8_t b[512];
    uint8_t c[10] = {write ? 0x2A : 0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0};
    cmd(h, c, 10, write ? INTEG_DATA_OUT : INTEG_DATA_IN, b, 512, r);
}

static void test_two_initiators_meet_each_others_persistent_reservation(void **state)
{
    char *config = integ_config(NULL, "Backend = ram\nSize = 64M\n");
    storstack_t *s = integ_boot(config);
    storstack_handle_t *ha, *hb;
    assert_int_equal(storstack_open_ex(s, "PhysicalDrive0", INTEG_RW, &ida, &ha), STATUS_SUCCESS);
    assert_int_equal(storstack_open_ex(s, "PhysicalDrive0", INTEG_RW, &idb, &hb), STATUS_SUCCESS);
    settle(ha);
    settle(hb);
    struct integ_spt r;
    prout(ha, 0x06, 0, 0, 0xAAAA, 0, &r);
    expect_status(&r, 0, "A registers");
    prout(hb, 0x06, 0, 0, 0xBBBB, 0, &r);
    expect_status(&r, 0, "B registers");
    prout(ha, 0x01, 0x03, 0xAAAA, 0, 0, &r);
    expect_status(&r, 0, "A reserves Exclusive Access");
    io10(ha, true, &r);
    expect_status(&r, 0, "A writes");
    io10(hb, false, &r);
    expect_status(&r, 0x18, "B reads under A's Exclusive Access");
    io10(hb, true, &r);
    expect_status(&r, 0x18, "B writes under A's Exclusive Access");

    uint8_t rr[24], c[10] = {0x5E, 0x01, 0, 0, 0, 0, 0, 0, 24, 0};
    cmd(hb, c, 10, INTEG_DATA_IN, rr, 24, &r);
    expect_status(&r, 0, "B: READ RESERVATION");
    assert_int_equal(get_be64(rr + 8), 0xAAAA);
    assert_int_equal(rr[21], 0x03);

    /* B preempts A: A hears REGISTRATIONS PREEMPTED once, then meets B's reservation */
    prout(hb, 0x04, 0x01, 0xBBBB, 0xAAAA, 0, &r);
    expect_status(&r, 0, "B preempts A");
    io10(ha, false, &r);
    integ_assert_sense(&r, 0x6, 0x2A, 0x05, -1, "A after the preemption");
    io10(ha, false, &r);
    expect_status(&r, 0, "A reads under B's Write Exclusive");
    io10(ha, true, &r);
    expect_status(&r, 0x18, "A writes under B's Write Exclusive");
    io10(hb, true, &r);
    expect_status(&r, 0, "B writes");
    prout(hb, 0x03, 0, 0xBBBB, 0, 0, &r);
    expect_status(&r, 0, "B clears");
    io10(ha, true, &r);
    expect_status(&r, 0, "A writes after CLEAR");

    /* SPC-2 RESERVE(6) by A keeps B out until A releases */
    uint8_t res[6] = {0x16}, rel[6] = {0x17};
    cmd(ha, res, 6, INTEG_DATA_NONE, NULL, 0, &r);
    expect_status(&r, 0, "A RESERVE(6)");
    cmd(hb, res, 6, INTEG_DATA_NONE, NULL, 0, &r);
    expect_status(&r, 0x18, "B RESERVE(6)");
    io10(hb, false, &r);
    expect_status(&r, 0x18, "B reads under A's RESERVE");
    cmd(ha, rel, 6, INTEG_DATA_NONE, NULL, 0, &r);
    expect_status(&r, 0, "A RELEASE(6)");
    io10(hb, false, &r);
    expect_status(&r, 0, "B reads after RELEASE");

    storstack_close(ha);
    storstack_close(hb);
    storstack_destroy(s);
    free(config);
}

static void test_aptpl_reservation_survives_a_stack_restart_on_a_file(void **state)
{
    char dir[256], path[300], side[320], lun[512];
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/disk.img", dir);
    snprintf(side, sizeof(side), "%s.pr", path);
    snprintf(lun, sizeof(lun), "Backend = file\nPath = %s\nSize = 64M\n", path);
    char *config = integ_config(NULL, lun);

    storstack_t *s = integ_boot(config);
    storstack_handle_t *ha, *hb;
    assert_int_equal(storstack_open_ex(s, "PhysicalDrive0", INTEG_RW, &ida, &ha), STATUS_SUCCESS);
    settle(ha);
    struct integ_spt r;
    prout(ha, 0x06, 0, 0, 0xA1A1, 0x01, &r); /* APTPL */
    expect_status(&r, 0, "A registers with APTPL");
    prout(ha, 0x01, 0x01, 0xA1A1, 0, 0, &r);
    expect_status(&r, 0, "A reserves Write Exclusive");
    struct stat st;
    assert_int_equal(stat(side, &st), 0);
    storstack_close(ha);
    storstack_destroy(s);

    /* a new stack: A comes back on another I_T nexus with the same TransportID */
    s = integ_boot(config);
    struct storstack_identity a2 = ida;
    a2.nexus = 0x99;
    assert_int_equal(storstack_open_ex(s, "PhysicalDrive0", INTEG_RW, &a2, &ha), STATUS_SUCCESS);
    assert_int_equal(storstack_open_ex(s, "PhysicalDrive0", INTEG_RW, &idb, &hb), STATUS_SUCCESS);
    settle(ha);
    settle(hb);
    uint8_t rk[32], c[10] = {0x5E, 0x00, 0, 0, 0, 0, 0, 0, 32, 0};
    cmd(hb, c, 10, INTEG_DATA_IN, rk, 32, &r);
    expect_status(&r, 0, "READ KEYS after the restart");
    assert_int_equal(integ_get_be32(rk + 4), 8);
    assert_int_equal(get_be64(rk + 8), 0xA1A1);
    io10(hb, true, &r);
    expect_status(&r, 0x18, "B writes under the restored reservation");
    io10(ha, true, &r);
    expect_status(&r, 0, "A (same TransportID, new nexus) writes as the holder");
    /* unregistering with APTPL 0 removes the sidecar */
    prout(ha, 0x00, 0, 0xA1A1, 0, 0, &r);
    expect_status(&r, 0, "A unregisters");
    assert_int_not_equal(stat(side, &st), 0);
    storstack_close(ha);
    storstack_close(hb);
    storstack_destroy(s);
    free(config);
    integ_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_initiators_meet_each_others_persistent_reservation),
        cmocka_unit_test(test_aptpl_reservation_survives_a_stack_restart_on_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
