/*
 * EXTENDED COPY through the whole stack on a file-backed disk: the copy manager's chain of reads
 * and writes completes on the io_uring reaper thread (run under ThreadSanitizer with the
 * `concurrent` label). 3 MiB are copied inside the disk in 1 MiB chunks, the copy's status is
 * read back with RECEIVE COPY RESULTS, and the copy is compared with its source through reads.
 */
#include <stdlib.h>
#include <string.h>

#include "integ.h"

static void expect_good(const struct integ_spt *r, const char *what)
{
    if (r->status != STATUS_SUCCESS || r->scsi_status != 0)
        fail_msg("%s: IOCTL %s, ScsiStatus %02Xh, sense %Xh/%02Xh/%02Xh", what,
                 storstack_status_name(r->status), r->scsi_status, r->sense[2] & 0x0F, r->sense[12],
                 r->sense[13]);
}

static void test_extended_copy_inside_a_file_disk(void **state)
{
    char dir[256], lun[512];
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(lun, sizeof(lun), "Backend = file\nPath = %s/disk.img\nSize = 64M\n", dir);
    char *config = integ_config(NULL, lun);
    storstack_t *s = integ_boot(config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 0, 3 * MIB, 77);

    /* the disk's NAA designator from VPD 83h */
    uint8_t inq[6] = {0x12, 1, 0x83, 0, 255, 0}, vpd[255];
    struct integ_spt r;
    integ_pass_through(h, 1, 0, 0, inq, 6, INTEG_DATA_IN, vpd, 255, &r);
    expect_good(&r, "VPD 83h");
    assert_int_equal(vpd[5] & 0x0F, 3);
    assert_int_equal(vpd[7], 16);

    uint8_t p[16 + 32 + 28] = {0};
    p[0] = 5;   /* LIST IDENTIFIER, held (LIST ID USAGE 00b) */
    p[3] = 32;  /* TARGET DESCRIPTOR LIST LENGTH */
    p[11] = 28; /* SEGMENT DESCRIPTOR LIST LENGTH */
    uint8_t *t = p + 16;
    t[0] = 0xE4;
    memcpy(t + 4, vpd + 4, 4 + 16); /* designation descriptor */
    t[30] = 0x02;                   /* DISK BLOCK LENGTH 512 */
    uint8_t *g = p + 48;
    g[0] = 0x02;
    g[3] = 0x18;
    const uint32_t blocks = 3 * MIB / 512, dst = 32 * MIB / 512;
    g[10] = (uint8_t)(blocks >> 8);
    g[11] = (uint8_t)blocks;
    integ_put_be32(g + 24, dst); /* DESTINATION LBA (low 32 bits) */
    uint8_t xc[16] = {0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sizeof(p), 0, 0};
    integ_pass_through(h, 1, 0, 0, xc, 16, INTEG_DATA_OUT, p, sizeof(p), &r);
    expect_good(&r, "EXTENDED COPY");

    uint8_t rcr[16] = {0x84, 0x00, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0}, st[12];
    integ_pass_through(h, 1, 0, 0, rcr, 16, INTEG_DATA_IN, st, 12, &r);
    expect_good(&r, "RECEIVE COPY RESULTS");
    assert_int_equal(st[4], 0x01);
    assert_int_equal(integ_get_be32(st + 8), 3 * MIB);

    /* the pattern names its own offsets: compare the copy with the source byte for byte */
    uint8_t *a = integ_alloc(3 * MIB, 0), *b = integ_alloc(3 * MIB, 0);
    uint32_t n = 0;
    assert_status(storstack_read(h, a, 3 * MIB, 0, &n), STATUS_SUCCESS);
    assert_status(storstack_read(h, b, 3 * MIB, 32 * MIB, &n), STATUS_SUCCESS);
    assert_int_equal(n, 3 * MIB);
    assert_memory_equal(a, b, 3 * MIB);
    integ_verify_pattern(h, 0, 3 * MIB, 77);
    integ_free(a);
    integ_free(b);
    storstack_close(h);
    storstack_destroy(s);
    free(config);
    integ_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extended_copy_inside_a_file_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
