/*
 * `storstack cdrom` against a running `storstack serve` (the built binary as a child process, its
 * built-in default stack with an empty CdRom0): an ISO made by xorriso is loaded over the
 * management socket, read back byte for byte with `storstack io verify`, its TOC and status
 * shown, the speed set, the drive ejected; bad arguments and a missing image say what is wrong.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "integ.h"

static char dir[64], sock[128], iso[128];
static pid_t server;

static int setup(void **state)
{
    char cmd[512], log[160];
    strcpy(dir, "/tmp/ss-cdcli-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s.sock", dir);
    snprintf(iso, sizeof(iso), "%s/disc.iso", dir);
    snprintf(cmd, sizeof(cmd),
             "mkdir '%s/src' && head -c 900000 /dev/urandom > '%s/src/a.bin' && "
             "xorriso -as mkisofs -quiet -V CLI -o '%s' '%s/src' 2>/dev/null",
             dir, dir, iso, dir);
    if (system(cmd) != 0)
        fail_msg("xorriso failed or is missing (scripts/install-deps.sh test installs it)");
    snprintf(log, sizeof(log), "%s/serve.out", dir);
    server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        freopen(log, "w", stdout);
        execl(STORSTACK_BIN, "storstack", "serve", "--socket", sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && access(sock, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(sock, F_OK), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    int status;
    kill(server, SIGTERM);
    waitpid(server, &status, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_load_read_toc_speed_eject_against_a_server(void **state)
{
    char *out;
    struct stat st;
    assert_int_equal(stat(iso, &st), 0);

    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 status", sock), 0);
    assert_non_null(strstr(out, "medium       none"));
    free(out);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 toc", sock), 1);
    assert_non_null(strstr(out, "STATUS_NO_MEDIA_IN_DEVICE"));
    free(out);
    assert_int_equal(
        integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 load %s/none.iso", sock, dir), 1);
    assert_non_null(strstr(out, "No such file or directory"));
    free(out);

    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 load %s", sock, iso),
                     0);
    assert_int_equal(integ_sh(&out,
                              STORSTACK_BIN
                              " io --server %s CdRom0 verify --offset 0 --length %lld --file %s",
                              sock, (long long)st.st_size, iso),
                     0);
    free(out);
    /* and through pass-through: READ (10) of the first 32 sectors */
    assert_int_equal(integ_sh(NULL,
                              STORSTACK_BIN " scsi --server %s CdRom0 raw 28 00 00 00 00 00 00 00 "
                                            "20 00 --in 64K --out %s/head.bin",
                              sock, dir),
                     0);
    assert_int_equal(integ_sh(NULL, "cmp -n 65536 %s %s/head.bin", iso, dir), 0);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 toc --json", sock), 0);
    char want[96];
    snprintf(want, sizeof(want), "{\"track\": 170, \"type\": \"leadout\", \"lba\": %lld}",
             (long long)st.st_size / 2048);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 speed 4x", sock), 0);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 status --json", sock),
                     0);
    assert_non_null(strstr(out, "\"media\": \"cd-rom\""));
    assert_non_null(strstr(out, "\"read_speed_kbs\": 704"));
    free(out);
    /* a pass-through PREVENT, then eject is refused, ALLOW, then it works */
    assert_int_equal(
        integ_sh(NULL, STORSTACK_BIN " scsi --server %s CdRom0 raw 1e 00 00 00 01 00", sock), 0);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 eject", sock), 1);
    assert_non_null(strstr(out, "prevented"));
    free(out);
    assert_int_equal(
        integ_sh(NULL, STORSTACK_BIN " scsi --server %s CdRom0 raw 1e 00 00 00 00 00", sock), 0);
    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 eject", sock), 0);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 status", sock), 0);
    assert_non_null(strstr(out, "none (tray open)"));
    free(out);
}

static void test_bad_arguments_exit_2(void **state)
{
    char *out;
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom0 speed fast", sock), 2);
    assert_non_null(strstr(out, "speed"));
    free(out);
    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 load", sock), 2);
    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 spin", sock), 2);
    assert_int_equal(integ_sh(NULL, STORSTACK_BIN " cdrom --server %s CdRom0 eject now", sock), 2);
    assert_int_equal(integ_sh(&out, STORSTACK_BIN " cdrom --server %s CdRom9 status", sock), 1);
    assert_non_null(strstr(out, "STATUS_OBJECT_NAME_NOT_FOUND"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_read_toc_speed_eject_against_a_server),
        cmocka_unit_test(test_bad_arguments_exit_2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
