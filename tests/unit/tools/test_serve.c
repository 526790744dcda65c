/*
 * Integration: the real `storstack serve` (the built binary, as a child process, on a socket in
 * a temporary directory) booting the default stack, and the tree/scsi/io/bench verbs run against
 * it over the management socket (and its idle RSS under 64 MiB); then SIGTERM and a clean exit 0.
 * Also the in-process path: the same verbs with --config-less default stack when no server listens.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/cli.h"

struct served {
    char dir[64], path[128], log[160];
    pid_t pid;
};

static int serve_setup(void **state)
{
    struct served *s = calloc(1, sizeof(*s));
    strcpy(s->dir, "/tmp/ss-serve-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/run/storstack.sock", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/serve.out", s->dir);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        freopen(s->log, "w", stdout);
        execl(STORSTACK_BIN, "storstack", "serve", "--socket", s->path, (char *)NULL);
        _exit(127);
    }
    /* wait for the banner */
    for (int i = 0; i < 1000; i++) {
        char buf[8192] = "";
        FILE *f = fopen(s->log, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            buf[n] = 0;
            fclose(f);
        }
        if (strstr(buf, "storstack: serving on "))
            break;
        int status;
        assert_int_equal(waitpid(s->pid, &status, WNOHANG), 0); /* still alive */
        usleep(10000);
    }
    *state = s;
    return 0;
}

static int serve_teardown(void **state)
{
    struct served *s = *state;
    char cmd[200];
    int status = -1;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(access(s->path, F_OK), -1); /* the socket is removed */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    assert_int_equal(system(cmd), 0);
    free(s);
    return 0;
}

static int run(int (*verb)(int, char **), char **out, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, out);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    char tmpl[] = "/tmp/ss-serve-out-XXXXXX";
    int fd = mkstemp(tmpl), saved;
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    int rc = verb(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    if (pread(fd, text, (size_t)n, 0) != n)
        text[0] = 0;
    close(fd);
    unlink(tmpl);
    if (out)
        *out = text;
    else
        free(text);
    return rc;
}

static void test_serve_banner_tree_and_socket_mode(void **state)
{
    struct served *s = *state;
    struct stat st;
    char buf[16384] = "";
    FILE *f = fopen(s->log, "r");
    assert_non_null(f);
    buf[fread(buf, 1, sizeof(buf) - 1, f)] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "storstack: serving on "));
    assert_non_null(strstr(buf, "PhysicalDrive0"));
    assert_int_equal(stat(s->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Issue 6: the default serve (1 GiB sparse RAM disk, CD-ROM, iSCSI target, management
     * socket) idles under 64 MiB resident. */
    char status_path[64], line[128];
    long rss_kib = -1;
    snprintf(status_path, sizeof(status_path), "/proc/%d/status", (int)s->pid);
    f = fopen(status_path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &rss_kib) == 1)
            break;
    fclose(f);
    print_message("storstack serve idle: VmRSS %ld KiB\n", rss_kib);
    assert_true(rss_kib > 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    print_message("sanitizer build: the 64 MiB bound is for real builds, not checked\n");
#else
    assert_true(rss_kib < 64 * 1024);
#endif
}

static void test_verbs_against_storstack_serve(void **state)
{
    struct served *s = *state;
    char *out;

    assert_int_equal(run(cli_tree, &out, "tree", "--server", s->path, NULL), 0);
    assert_non_null(strstr(out, "PhysicalDrive0"));
    free(out);
    assert_int_equal(run(cli_tree, &out, "tree", "--server", s->path, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"root\""));
    free(out);
    assert_int_equal(
        run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "inquiry", NULL), 0);
    assert_non_null(strstr(out, "PDT=0 (disk)"));
    free(out);
    assert_int_equal(run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "inquiry",
                         "--vpd", "0", NULL),
                     0);
    assert_non_null(strstr(out, "Supported VPD pages"));
    free(out);
    assert_int_equal(
        run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "readcap", NULL), 0);
    assert_non_null(strstr(out, "Logical block length=512 bytes"));
    assert_non_null(strstr(out, "Device size: 1073741824 bytes"));
    free(out);
    assert_int_equal(
        run(cli_scsi, NULL, "scsi", "--server", s->path, "PhysicalDrive0", "tur", NULL), 0);
    /* an opcode the disk does not know: CHECK CONDITION, exit 1 */
    assert_int_equal(run(cli_scsi, NULL, "scsi", "--server", s->path, "PhysicalDrive0", "raw",
                         "ff 00 00 00 00 00", NULL),
                     1);
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "write",
                         "--offset", "8M", "--length", "3M", "--pattern", "lba:3", NULL),
                     0);
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "verify",
                         "--offset", "8M", "--length", "3M", "--pattern", "lba:3", NULL),
                     0);
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "verify",
                         "--offset", "8M", "--length", "3M", "--pattern", "lba:4", NULL),
                     1);
    assert_int_equal(run(cli_bench, &out, "bench", "--server", s->path, "PhysicalDrive0", "--rw",
                         "randread", "--qd", "16", "--seconds", "1", "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"errors\": 0"));
    free(out);
}

static void test_verbs_boot_their_own_stack_without_a_server(void **state)
{
    char *out;
    /* --config-less and --server-less: nothing listens on our private XDG dir, so the verb
     * boots the built-in default stack in this process */
    char dir[] = "/tmp/ss-noserver-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("XDG_RUNTIME_DIR", dir, 1);
    assert_int_equal(run(cli_scsi, &out, "scsi", "PhysicalDrive0", "readcap", "--json", NULL), 0);
    assert_non_null(strstr(out, "\"block_length\": 512"));
    free(out);
    assert_int_equal(run(cli_bench, &out, "bench", "PhysicalDrive0", "--rw", "randwrite", "--qd",
                         "8", "--seconds", "1", "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"remote\": false"));
    assert_non_null(strstr(out, "\"errors\": 0"));
    free(out);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serve_banner_tree_and_socket_mode, serve_setup,
                                        serve_teardown),
        cmocka_unit_test_setup_teardown(test_verbs_against_storstack_serve, serve_setup,
                                        serve_teardown),
        cmocka_unit_test(test_verbs_boot_their_own_stack_without_a_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
