/*
 * A CD-ROM drive exported over the iSCSI target: the stack in process with CdRom0 holding an ISO
 * made by xorriso, the target (frontends/iscsi) serving CdRom0 as LUN 0 on a free port, and
 * libiscsi's initiators as outside tools: `iscsi-inq` sees an MMC device (peripheral type 05h,
 * removable), and `qemu-img` (its libiscsi block driver) reports the ISO's size and copies the
 * disc back byte for byte; the drive's security descriptor admits libiscsi's and QEMU's initiator
 * names only, and another initiator gets ACCESS DENIED for every command to the drive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "frontends/iscsi/iscsi.h"
#include "integ.h"

static char dir[256], iso[320], url[256];
static storstack_t *stack;
static struct iscsi_target *target;

static int setup(void **state)
{
    char err[256], text[1024];
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(iso, sizeof(iso), "%s/disc.iso", dir);
    if (integ_sh(NULL,
                 "mkdir '%s/src' && head -c 2500000 /dev/urandom > '%s/src/a.bin' && "
                 "xorriso -as mkisofs -quiet -V ISCSI -o '%s' '%s/src'",
                 dir, dir, iso, dir) != 0)
        fail_msg("xorriso failed or is missing (scripts/install-deps.sh test installs it)");
    snprintf(text, sizeof(text),
             "[Enum\\Root\\VMINIPORT\\0000]\nHardwareID = multi:ROOT\\VMINIPORT\n"
             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
             "Type = cdrom\nImage = %s\n"
             /* the drive's ACL: this process and libiscsi's tools, no other initiator */
             "[Control\\Class\\{4d36e965-e325-11ce-bfc1-08002be10318}]\n"
             "Security = allow uid:* rwp; allow iqn.2007-10.com.github:sahlberg:* rwp; allow "
             "iqn.2008-11.org.linux-kvm* rwp; deny *\n",
             iso);
    stack = integ_boot(text);
    struct iscsi_target_config cfg = {.portal = "127.0.0.1:0", .device = "CdRom0"};
    if (iscsi_target_start(stack, &cfg, &target, err, sizeof(err)))
        fail_msg("cannot start the target: %s", err);
    snprintf(url, sizeof(url), "iscsi://127.0.0.1:%u/%s/0", iscsi_target_port(target),
             ISCSI_DEFAULT_IQN);
    return 0;
}

static int teardown(void **state)
{
    iscsi_target_stop(target);
    storstack_destroy(stack);
    integ_rmtree(dir);
    return 0;
}

static void test_iscsi_inq_sees_a_removable_mmc_device(void **state)
{
    char *out;
    assert_int_equal(integ_sh(&out, "iscsi-inq '%s'", url), 0);
    if (!strstr(out, "Peripheral Device Type:MMC"))
        fail_msg("iscsi-inq: %s", out);
    assert_non_null(strstr(out, "Removable:1"));
    assert_non_null(strstr(out, "VIRTUAL CDROM"));
    free(out);
}

static void test_qemu_img_reads_the_disc_back_byte_for_byte(void **state)
{
    char *out;
    struct stat st;
    assert_int_equal(stat(iso, &st), 0);
    if (integ_sh(&out, "qemu-img --help | grep -qw iscsi") != 0)
        fail_msg("qemu-img has no iscsi block driver");
    free(out);
    if (integ_sh(&out, "qemu-img info -f raw --output=json '%s'", url) != 0)
        fail_msg("qemu-img info: %s", out);
    char want[64];
    snprintf(want, sizeof(want), "\"virtual-size\": %lld", (long long)st.st_size);
    if (!strstr(out, want))
        fail_msg("qemu-img info: %s", out);
    free(out);
    if (integ_sh(&out, "qemu-img convert -f raw -O raw '%s' '%s/copy.raw'", url, dir) != 0)
        fail_msg("qemu-img convert: %s", out);
    free(out);
    assert_int_equal(integ_sh(&out, "cmp '%s' '%s/copy.raw'", iso, dir), 0);
    free(out);
}

/* The security descriptor is checked against the initiator name: another initiator logs in, but
 * every command to the drive's LUN ends ACCESS DENIED - NO ACCESS RIGHTS (20h/02h). */
static void test_an_initiator_the_acl_denies_gets_access_denied(void **state)
{
    char *out = NULL;
    (void)state;
    assert_int_not_equal(
        integ_sh(&out, "iscsi-inq -i iqn.2026-11.org.example:stranger '%s' 2>&1", url), 0);
    if (!strstr(out, "0x2002"))
        fail_msg("iscsi-inq as a stranger: %s", out);
    free(out);
    /* the tools' own name is allowed, in the same run */
    assert_int_equal(integ_sh(&out, "iscsi-inq '%s'", url), 0);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iscsi_inq_sees_a_removable_mmc_device),
        cmocka_unit_test(test_qemu_img_reads_the_disc_back_byte_for_byte),
        cmocka_unit_test(test_an_initiator_the_acl_denies_gets_access_denied),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
