/*
 * Stacks as values: two stacks in one process, each with its own RAM disk, keep independent data
 * under the same device names; a configuration with two targets of two LUNs each gives
 * PhysicalDrive0..3 in the device tree, each its own disk; and a bad configuration (an unknown
 * Backend, a RAM disk without Size, a Size that is not a multiple of the block size, BlockSize
 * 1000, a file backend in a missing directory, a malformed INI line, a value that is not a
 * number) makes storstack_create_ex return NULL with a message that names the offending key.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

static void test_two_stacks_in_one_process_keep_independent_data(void **state)
{
    char *c1 = integ_config(NULL, "Backend = ram\nSize = 32M\n");
    char *c2 = integ_config(NULL, "Backend = ram\nSize = 48M\n");
    storstack_t *a = integ_boot(c1), *b = integ_boot(c2);
    storstack_handle_t *ha = integ_open(a, "PhysicalDrive0", INTEG_RW);
    storstack_handle_t *hb = integ_open(b, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(ha, 0, 1 * MIB, 1);
    integ_write_pattern(hb, 0, 1 * MIB, 2);
    integ_write_pattern(ha, 31 * MIB, 1 * MIB, 3);
    integ_verify_pattern(ha, 0, 1 * MIB, 1);
    integ_verify_pattern(hb, 0, 1 * MIB, 2);
    integ_verify_pattern(ha, 31 * MIB, 1 * MIB, 3);
    /* b's disk is larger and never saw a's write at 31M */
    uint8_t *buf = integ_alloc(1 * MIB, 0);
    uint32_t n;
    assert_status(storstack_read(hb, buf, 1 * MIB, 31 * MIB, &n), STATUS_SUCCESS);
    for (uint32_t i = 0; i < 1 * MIB; i++)
        if (buf[i])
            fail_msg("stack b sees data at %u written to stack a", 31 * MIB + i);
    assert_status(storstack_read(ha, buf, 512, 32 * MIB, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(hb, buf, 512, 47 * MIB, &n), STATUS_SUCCESS);
    integ_free(buf);
    /* destroying one leaves the other working */
    storstack_close(ha);
    storstack_destroy(a);
    integ_verify_pattern(hb, 0, 1 * MIB, 2);
    storstack_close(hb);
    storstack_destroy(b);
    free(c1);
    free(c2);
}

static const char four_luns[] = "[Enum\\Root\\VMINIPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\VMINIPORT\n"
                                "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
                                "Backend = ram\nSize = 8M\nSerial = T0L0\n"
                                "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun1]\n"
                                "Backend = ram\nSize = 16M\nSerial = T0L1\n"
                                "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target1\\Lun0]\n"
                                "Backend = ram\nSize = 24M\nSerial = T1L0\n"
                                "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target1\\Lun1]\n"
                                "Backend = ram\nSize = 32M\nSerial = T1L1\n";

static void test_two_targets_of_two_luns_give_four_physical_drives(void **state)
{
    storstack_t *s = integ_boot(four_luns);
    char *json = NULL;
    assert_status(storstack_get_tree(s, &json), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "PhysicalDrive%d", i);
        if (!strstr(json, name))
            fail_msg("%s is not in the tree:\n%s", name, json);
    }
    assert_null(strstr(json, "PhysicalDrive4"));
    free(json);

    /* each drive is its own disk: distinct sizes, independent data */
    uint64_t sizes_seen = 0;
    storstack_handle_t *h[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        uint8_t buf[64];
        uint32_t ret;
        snprintf(name, sizeof(name), "PhysicalDrive%d", i);
        h[i] = integ_open(s, name, INTEG_RW);
        assert_status(storstack_ioctl(h[i], 0x7405C /* IOCTL_DISK_GET_LENGTH_INFO */, NULL, 0, buf,
                                      sizeof(buf), &ret),
                      STATUS_SUCCESS);
        uint64_t len;
        memcpy(&len, buf, 8);
        assert_true(len == 8 * MIB || len == 16 * MIB || len == 24 * MIB || len == 32 * MIB);
        sizes_seen |= 1ull << (len / MIB);
        integ_write_pattern(h[i], 0, 64 * KIB, 100 + (uint64_t)i);
    }
    assert_int_equal(sizes_seen, (1ull << 8) | (1ull << 16) | (1ull << 24) | (1ull << 32));
    for (int i = 0; i < 4; i++) {
        integ_verify_pattern(h[i], 0, 64 * KIB, 100 + (uint64_t)i);
        storstack_close(h[i]);
    }
    storstack_destroy(s);
}

/*
 * Boots `config` in a child process and expects NULL with a message containing `key`. The child
 * keeps a crash in the failed boot's cleanup from ending this program; it is reported as such.
 */
static void expect_rejected(const char *config, const char *key)
{
    char err[512] = "";
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512] = "";
        close(fds[0]);
        storstack_t *s = integ_try_boot(config, e, sizeof(e));
        char booted = s != NULL;
        if (write(fds[1], &booted, 1) != 1 || write(fds[1], e, sizeof(e)) != sizeof(e))
            _exit(3);
        close(fds[1]);
        if (s)
            storstack_destroy(s);
        _exit(0);
    }
    close(fds[1]);
    char booted = 0;
    ssize_t got = read(fds[0], &booted, 1);
    if (got == 1)
        got = read(fds[0], err, sizeof(err));
    close(fds[0]);
    err[sizeof(err) - 1] = 0;
    int status = 0;
    waitpid(pid, &status, 0);
    int crashed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (got <= 0)
        fail_msg("bad %s: storstack_create_ex crashed before returning (wait status %d)", key,
                 status);
    if (booted)
        fail_msg("a configuration with a bad %s booted", key);
    if (!err[0])
        fail_msg("bad %s: NULL without a message", key);
    if (!strstr(err, key))
        fail_msg("bad %s: the message does not name it: \"%s\"%s", key, err,
                 crashed ? "; and the failed boot crashed while cleaning up" : "");
    if (crashed)
        fail_msg("bad %s: rejected, but the failed boot crashed while cleaning up (status %d)", key,
                 status);
}

static void test_unknown_backend_is_rejected_naming_backend(void **state)
{
    char *c = integ_config(NULL, "Backend = tape\nSize = 1M\n");
    expect_rejected(c, "Backend");
    free(c);
}

static void test_ram_disk_without_size_is_rejected_naming_size(void **state)
{
    char *c = integ_config(NULL, "Backend = ram\n");
    expect_rejected(c, "Size");
    free(c);
}

static void test_size_not_a_multiple_of_block_size_is_rejected_naming_size(void **state)
{
    char *c = integ_config(NULL, "Backend = ram\nSize = 1000000\n");
    expect_rejected(c, "Size");
    free(c);
    c = integ_config(NULL, "Backend = ram\nSize = 1050112\nBlockSize = 4096\n");
    expect_rejected(c, "Size");
    free(c);
}

static void test_block_size_1000_is_rejected_naming_block_size(void **state)
{
    char *c = integ_config(NULL, "Backend = ram\nSize = 1M\nBlockSize = 1000\n");
    expect_rejected(c, "BlockSize");
    free(c);
}

static void test_file_backend_in_missing_directory_is_rejected_naming_the_path(void **state)
{
    char dir[256], lun[512];
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(lun, sizeof(lun), "Backend = file\nSize = 1M\nPath = %s/missing/disk.img\n", dir);
    char *c = integ_config(NULL, lun);
    expect_rejected(c, "missing/disk.img");
    free(c);
    integ_rmtree(dir);
}

static void test_malformed_ini_line_is_rejected_with_its_line(void **state)
{
    const char *c = "[Enum\\Root\\VMINIPORT\\0000]\n"
                    "HardwareID = multi:ROOT\\VMINIPORT\n"
                    "this line has no equals sign\n";
    char err[512] = "";
    assert_null(integ_try_boot(c, err, sizeof(err)));
    if (!strstr(err, ":3"))
        fail_msg("the message does not name line 3: \"%s\"", err);
    const char *c2 = "Size = 1M\n[Enum\\Root\\VMINIPORT\\0000]\n";
    assert_null(integ_try_boot(c2, err, sizeof(err)));
    if (!strstr(err, "Size"))
        fail_msg("the message does not name the value outside a section: \"%s\"", err);
}

static void test_unit_beyond_maximum_targets_is_rejected_naming_it(void **state)
{
    char *c = integ_config("MaximumTargets = 2\n",
                           "Backend = ram\nSize = 1M\n"
                           "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target5\\Lun0]\n"
                           "Backend = ram\nSize = 1M\n");
    expect_rejected(c, "Target5\\Lun0");
    free(c);
}

static void test_text_longer_than_its_field_is_rejected_naming_it(void **state)
{
    char *c = integ_config(NULL, "Backend = ram\nSize = 1M\nVendor = NINECHARS\n");
    expect_rejected(c, "Vendor");
    free(c);
    c = integ_config(NULL, "Backend = ram\nSize = 1M\nProduct = SEVENTEEN_CHARS_X\n");
    expect_rejected(c, "Product");
    free(c);
}

static void test_value_that_is_not_a_number_is_rejected_naming_the_key(void **state)
{
    char *c = integ_config(NULL, "Backend = ram\nSize = lots\n");
    expect_rejected(c, "Size");
    free(c);
    c = integ_config("MaximumTransferLength = big\n", "Backend = ram\nSize = 1M\n");
    expect_rejected(c, "MaximumTransferLength");
    free(c);
    c = integ_config(NULL, "Backend = ram\nSize = 1M\nWriteCache = dword:yes\n");
    expect_rejected(c, "WriteCache");
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_stacks_in_one_process_keep_independent_data),
        cmocka_unit_test(test_two_targets_of_two_luns_give_four_physical_drives),
        cmocka_unit_test(test_unknown_backend_is_rejected_naming_backend),
        cmocka_unit_test(test_ram_disk_without_size_is_rejected_naming_size),
        cmocka_unit_test(test_size_not_a_multiple_of_block_size_is_rejected_naming_size),
        cmocka_unit_test(test_block_size_1000_is_rejected_naming_block_size),
        cmocka_unit_test(test_unit_beyond_maximum_targets_is_rejected_naming_it),
        cmocka_unit_test(test_text_longer_than_its_field_is_rejected_naming_it),
        cmocka_unit_test(test_file_backend_in_missing_directory_is_rejected_naming_the_path),
        cmocka_unit_test(test_malformed_ini_line_is_rejected_with_its_line),
        cmocka_unit_test(test_value_that_is_not_a_number_is_rejected_naming_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
