/*
 * Regression tests for pass-through bounds that fuzz_passthrough found: an output buffer shorter
 * than the SCSI_PASS_THROUGH header (the header went back over the caller's short buffer), and a
 * DataBufferOffset so large that offset + length wrapped past the bounds check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <storstack/storage/ntddscsi.h>
#include <storstack/storstack.h>

#include "api/local.h"
#include "kernel/executive.h"

static storstack_t *stack;
static storstack_handle_t *disk;

static int setup(void **state)
{
    char err[256];
    stack = storstack_create(NULL, err, sizeof(err));
    if (!stack)
        return -1;
    return storstack_open(stack, "PhysicalDrive0", STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE,
                          &disk) == 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    storstack_close(disk);
    storstack_destroy(stack);
    return 0;
}

static void inquiry_header(SCSI_PASS_THROUGH *spt)
{
    memset(spt, 0, sizeof(*spt));
    spt->Length = sizeof(*spt);
    spt->CdbLength = 6;
    spt->DataIn = SCSI_IOCTL_DATA_IN;
    spt->TimeOutValue = 5;
    spt->Cdb[0] = 0x12;
    spt->Cdb[4] = 36;
}

static void test_output_shorter_than_header_is_refused_and_nothing_overflows(void **state)
{
    uint8_t in[sizeof(SCSI_PASS_THROUGH) + 36] = {0};
    uint8_t out[8];
    uint32_t returned = 99;
    EXECUTIVE_COUNTERS counters;
    SCSI_PASS_THROUGH spt;

    inquiry_header(&spt);
    spt.DataTransferLength = 36;
    spt.DataBufferOffset = sizeof(spt);
    memcpy(in, &spt, sizeof(spt));
    assert_int_equal(
        storstack_ioctl(disk, IOCTL_SCSI_PASS_THROUGH, in, sizeof(in), out, sizeof(out), &returned),
        (int32_t)0xC000000D /* STATUS_INVALID_PARAMETER */);
    assert_int_equal(returned, 0);
    ExQueryCounters(storstack_local_executive(stack), &counters);
    assert_int_equal(counters.Violations, 0);
}

static void test_data_offset_that_wraps_is_refused(void **state)
{
    uint8_t buf[sizeof(SCSI_PASS_THROUGH) + 64] = {0};
    uint32_t returned;
    SCSI_PASS_THROUGH spt;

    inquiry_header(&spt);
    spt.DataTransferLength = 2;
    spt.DataBufferOffset = ~(ULONG_PTR)0;
    memcpy(buf, &spt, sizeof(spt));
    assert_int_equal(storstack_ioctl(disk, IOCTL_SCSI_PASS_THROUGH, buf, sizeof(buf), buf,
                                     sizeof(buf), &returned),
                     (int32_t)0xC000000D);
}

static void test_well_formed_inquiry_still_works(void **state)
{
    uint8_t buf[sizeof(SCSI_PASS_THROUGH) + 36] = {0};
    uint32_t returned;
    SCSI_PASS_THROUGH spt;

    inquiry_header(&spt);
    spt.DataTransferLength = 36;
    spt.DataBufferOffset = sizeof(spt);
    memcpy(buf, &spt, sizeof(spt));
    assert_int_equal(storstack_ioctl(disk, IOCTL_SCSI_PASS_THROUGH, buf, sizeof(buf), buf,
                                     sizeof(buf), &returned),
                     0);
    assert_int_equal(returned, sizeof(buf));
    memcpy(&spt, buf, sizeof(spt));
    assert_int_equal(spt.ScsiStatus, 0);
    assert_memory_equal(buf + sizeof(spt) + 8, "STORSTAK", 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_shorter_than_header_is_refused_and_nothing_overflows),
        cmocka_unit_test(test_data_offset_that_wraps_is_refused),
        cmocka_unit_test(test_well_formed_inquiry_still_works),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
