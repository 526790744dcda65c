/*
 * `storstack events` against the real `storstack serve`: a vminiport disk whose first READ is
 * dropped (FaultDropNth = 1) with a 1 s class timeout, so Storport logs the timeout and the
 * abort that recovers it; the verb shows them over the management socket with their codes, the
 * SRB's CDB and the address; --after skips what was seen; --follow prints and keeps going until
 * interrupted; a bad option and an unknown adapter fail with their exit statuses.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

static char dir[256], sock[300];
static pid_t server;

static int setup(void **state)
{
    char config[300], log[300];
    FILE *f;
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/s.sock", dir);
    snprintf(config, sizeof(config), "%s/stack.ini", dir);
    snprintf(log, sizeof(log), "%s/serve.out", dir);
    f = fopen(config, "w");
    assert_non_null(f);
    fputs("[Enum\\Root\\VMINIPORT\\0000]\n"
          "HardwareID = multi:ROOT\\VMINIPORT\n"
          "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters]\n"
          "FaultDropNth = 1\n"
          "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
          "Type = disk\nBackend = ram\nSize = 64M\n"
          "[Services\\Disk]\nTimeOutValue = dword:1\n",
          f);
    fclose(f);
    server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        execl(STORSTACK_BIN, "storstack", "serve", "--config", config, "--socket", sock,
              "--no-iscsi", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && access(sock, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(sock, F_OK), 0);
    return 0;
}

static int teardown(void **state)
{
    int status;
    kill(server, SIGTERM);
    waitpid(server, &status, 0);
    integ_rmtree(dir);
    return 0;
}

static void test_events_shows_the_timeout_and_its_recovery(void **state)
{
    char err[256], *out;
    storstack_t *stack = storstack_connect(sock, err, sizeof(err));
    storstack_handle_t *h;
    uint8_t buf[4096];
    uint32_t n;
    assert_non_null(stack);
    assert_status(storstack_open(stack, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h),
                  STATUS_SUCCESS);
    /* the dropped read times out, is aborted and retried: it succeeds */
    assert_status(storstack_read(h, buf, sizeof(buf), 0, &n), STATUS_SUCCESS);
    storstack_close(h);
    storstack_destroy(stack);

    assert_int_equal(integ_sh(&out, "%s events --server %s", STORSTACK_BIN, sock), 0);
    if (!strstr(out, "#1 ") || !strstr(out, "Scsi0: 0:0:0 storport REQUEST_TIMEOUT(0x0007)") ||
        !strstr(out, "cdb 28") || !strstr(out, "ABORT(0x0101)"))
        fail_msg("unexpected events output:\n%s", out);
    free(out);
    assert_int_equal(integ_sh(&out, "%s events --server %s --after 1", STORSTACK_BIN, sock), 0);
    if (strstr(out, "#1 ") || !strstr(out, "#2 "))
        fail_msg("--after 1 printed:\n%s", out);
    free(out);
    /* --follow keeps running until interrupted (timeout(1) says 124: it had to send SIGINT),
     * having printed what there was, and then ends */
    assert_int_equal(
        integ_sh(&out, "timeout -s INT -k 5 1 %s events --server %s --follow", STORSTACK_BIN, sock),
        124);
    if (!strstr(out, "REQUEST_TIMEOUT"))
        fail_msg("--follow printed:\n%s", out);
    free(out);
}

static void test_events_rejects_bad_arguments(void **state)
{
    char *out;
    assert_int_equal(integ_sh(&out, "%s events --server %s --after x", STORSTACK_BIN, sock), 2);
    free(out);
    assert_int_equal(integ_sh(&out, "%s events --server %s --adapter Scsi9:", STORSTACK_BIN, sock),
                     1);
    if (!strstr(out, "cannot open Scsi9:"))
        fail_msg("unexpected output: %s", out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_shows_the_timeout_and_its_recovery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_events_rejects_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
