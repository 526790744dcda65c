/*
 * The file backend under a whole stack: a disk backed by a file in a temporary directory keeps
 * what was written and flushed (storstack_flush, IRP_MJ_FLUSH_BUFFERS → SYNCHRONIZE CACHE)
 * across storstack_destroy and a new stack on the same file; a child process that writes
 * patterns and reports after each acknowledged flush is killed with SIGKILL, and a new stack
 * finds every acknowledged write intact; and the file stays sparse when little was written.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

#define DISK_SIZE (256ull * MIB)

struct file_fixture {
    char dir[256];
    char path[300];
    char *config;
};

static int setup(void **state)
{
    struct file_fixture *f = calloc(1, sizeof(*f));
    char lun[512];
    integ_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
    snprintf(lun, sizeof(lun), "Backend = file\nPath = %s\nSize = 256M\n", f->path);
    f->config = integ_config(NULL, lun);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct file_fixture *f = *state;
    integ_rmtree(f->dir);
    free(f->config);
    free(f);
    return 0;
}

static void test_flushed_data_survives_destroy_and_a_new_stack_on_the_same_file(void **state)
{
    struct file_fixture *f = *state;
    storstack_t *s = integ_boot(f->config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    const uint64_t offs[] = {0, 1 * MIB + 512, DISK_SIZE / 2, DISK_SIZE - 1 * MIB - 512};
    for (int i = 0; i < 4; i++)
        integ_write_pattern(h, offs[i], 1 * MIB, 10 + (uint64_t)i);
    integ_write_pattern(h, DISK_SIZE - 512, 512, 99);
    assert_status(storstack_flush(h), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++)
        integ_verify_pattern(h, offs[i], 1 * MIB, 10 + (uint64_t)i);
    storstack_close(h);
    storstack_destroy(s);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, DISK_SIZE);

    s = integ_boot(f->config);
    h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    for (int i = 0; i < 4; i++)
        integ_verify_pattern(h, offs[i], 1 * MIB, 10 + (uint64_t)i);
    integ_verify_pattern(h, DISK_SIZE - 512, 512, 99);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_file_stays_sparse_after_writing_little(void **state)
{
    struct file_fixture *f = *state;
    storstack_t *s = integ_boot(f->config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 0, 64 * KIB, 1);
    integ_write_pattern(h, DISK_SIZE - 64 * KIB, 64 * KIB, 2);
    assert_status(storstack_flush(h), STATUS_SUCCESS);
    storstack_close(h);
    storstack_destroy(s);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, DISK_SIZE);
    if ((uint64_t)st.st_blocks * 512 > 4 * MIB)
        fail_msg("a 256 MiB file with 128 KiB written occupies %llu bytes: not sparse",
                 (unsigned long long)st.st_blocks * 512);
}

/* ---- kill -9 --------------------------------------------------------------------------------- */

#define REGION      (128u * KIB)
#define GENERATIONS 400
#define KILL_AFTER  25

/* Generation g writes its own region (g + 1) and rewrites region 0, both with seed g, flushes,
 * then reports g. */
static void child_run(const char *config, int fd)
{
    char err[512];
    storstack_t *s = storstack_create_ex(NULL, config, NULL, 0, err, sizeof(err));
    storstack_handle_t *h = NULL;
    uint8_t *buf = integ_alloc(REGION, 0);
    if (!s || storstack_open(s, "PhysicalDrive0", INTEG_RW, &h) != STATUS_SUCCESS)
        _exit(2);
    for (uint32_t g = 1; g <= GENERATIONS; g++) {
        uint32_t n;
        uint64_t off = (uint64_t)(g + 1) * REGION;
        integ_fill(buf, off, REGION, g);
        if (storstack_write(h, buf, REGION, off, &n) != STATUS_SUCCESS)
            _exit(3);
        integ_fill(buf, 0, REGION, g);
        if (storstack_write(h, buf, REGION, 0, &n) != STATUS_SUCCESS)
            _exit(3);
        if (storstack_flush(h) != STATUS_SUCCESS)
            _exit(4);
        if (write(fd, &g, sizeof(g)) != sizeof(g))
            _exit(5);
    }
    /* wait to be killed: the parent decides when */
    for (;;)
        pause();
}

static void test_acknowledged_flushed_writes_survive_kill_9(void **state)
{
    struct file_fixture *f = *state;
    int fds[2];
    uint32_t acked = 0, g;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(f->config, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    while (acked < KILL_AFTER && read(fds[0], &g, sizeof(g)) == sizeof(g))
        acked = g;
    /* the child is somewhere in generation acked+1 (or beyond, unacknowledged) */
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    /* anything acknowledged after we stopped reading is acknowledged too */
    while (read(fds[0], &g, sizeof(g)) == sizeof(g))
        acked = g;
    close(fds[0]);
    if (acked < KILL_AFTER)
        fail_msg("the child reported %u generations before it stopped (status %d)", acked, status);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    storstack_t *s = integ_boot(f->config);
    storstack_handle_t *h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    for (uint32_t k = 1; k <= acked; k++)
        integ_verify_pattern(h, (uint64_t)(k + 1) * REGION, REGION, k);
    /* region 0 holds the last acknowledged generation or a later one, whole pieces only */
    uint8_t *buf = integ_alloc(REGION, 0);
    uint32_t n;
    assert_status(storstack_read(h, buf, REGION, 0, &n), STATUS_SUCCESS);
    for (uint32_t off = 0; off < REGION; off += 512) {
        uint64_t lba, seed;
        memcpy(&lba, buf + off, 8);
        memcpy(&seed, buf + off + 8, 8);
        if (lba != off / 512 || seed < acked || seed > GENERATIONS ||
            integ_find_mismatch(buf + off, off, 512, seed) >= 0)
            fail_msg("region 0 byte %u: sector %llu seed %llu, expected generation >= %u", off,
                     (unsigned long long)lba, (unsigned long long)seed, acked);
    }
    integ_free(buf);
    storstack_close(h);
    storstack_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acknowledged_flushed_writes_survive_kill_9, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_flushed_data_survives_destroy_and_a_new_stack_on_the_same_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_stays_sparse_after_writing_little, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
