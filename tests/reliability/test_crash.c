/*
 * The crash part of the reliability suite: `storstack serve` on a file-backed disk is killed
 * with SIGKILL while a client writes through the management socket; the server is started again
 * on the same file and every write that was acknowledged before an acknowledged FLUSH must be
 * there (a block written again after the last flush may hold that later write instead). Writes
 * are 4 KiB blocks with a generation stamped pattern; a flush follows every 16 writes.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integ.h"

#define CR_BLOCK  4096u
#define CR_BLOCKS 1024u /* 4 MiB */
#define CR_MAXGEN 8     /* generations remembered after the durable one */

struct cr_block {
    uint32_t durable;          /* last write acknowledged before an acknowledged flush */
    uint32_t later[CR_MAXGEN]; /* writes issued after it (acknowledged or not) */
    int nlater;
};

static char dir[256], sock[300], config_path[300], image[300];

static pid_t cr_start_server(void)
{
    char log[320];
    pid_t pid;
    snprintf(log, sizeof(log), "%s/serve.out", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        execl(STORSTACK_BIN, "storstack", "serve", "--config", config_path, "--socket", sock,
              "--no-iscsi", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static storstack_t *cr_connect(void)
{
    char err[256];
    for (int i = 0; i < 1000; i++) {
        storstack_t *s = storstack_connect(sock, err, sizeof(err));
        if (s)
            return s;
        usleep(10000);
    }
    fail_msg("cannot connect to %s: %s", sock, err);
    return NULL;
}

static int cr_holds(const uint8_t *buf, uint32_t block, uint32_t gen)
{
    static const uint8_t zero[CR_BLOCK];
    if (gen == 0)
        return !memcmp(buf, zero, CR_BLOCK);
    return integ_find_mismatch(buf, (uint64_t)block * CR_BLOCK, CR_BLOCK, gen) < 0;
}

static void test_kill_9_during_writes_keeps_every_flushed_write(void **state)
{
    struct cr_block *blocks = calloc(CR_BLOCKS, sizeof(*blocks));
    uint32_t pending[16], npending = 0, gen = 0, n;
    uint8_t *buf = integ_alloc(CR_BLOCK, 0);
    uint64_t x = 0x243F6A8885A308D3ull;
    storstack_t *stack;
    storstack_handle_t *h;
    FILE *cfg;
    pid_t server;
    int status, flushed = 0, failed_after_kill = 0;
    struct timespec t0, t;

    integ_mkdtemp(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/s.sock", dir);
    snprintf(config_path, sizeof(config_path), "%s/stack.ini", dir);
    snprintf(image, sizeof(image), "%s/disk.img", dir);
    cfg = fopen(config_path, "w");
    assert_non_null(cfg);
    fprintf(cfg,
            "[Enum\\Root\\VMINIPORT\\0000]\n"
            "HardwareID = multi:ROOT\\VMINIPORT\n"
            "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
            "Type = disk\nBackend = file\nPath = %s\nSize = 16M\n",
            image);
    fclose(cfg);

    server = cr_start_server();
    stack = cr_connect();
    assert_status(storstack_open(stack, "PhysicalDrive0", INTEG_RW, &h), STATUS_SUCCESS);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* write for 0.5 s, then kill the server from under the client and go on writing */
    for (int killed = 0;;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t b = (uint32_t)(x % CR_BLOCKS);
        struct cr_block *blk = &blocks[b];
        clock_gettime(CLOCK_MONOTONIC, &t);
        double elapsed = (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
        if (!killed && elapsed > 0.5) {
            kill(server, SIGKILL);
            killed = 1;
        }
        gen++;
        if (blk->nlater == CR_MAXGEN) /* keep the newest */
            memmove(blk->later, blk->later + 1, sizeof(blk->later[0]) * (CR_MAXGEN - 1)),
                blk->nlater--;
        blk->later[blk->nlater++] = gen;
        integ_fill(buf, (uint64_t)b * CR_BLOCK, CR_BLOCK, gen);
        if (storstack_write(h, buf, CR_BLOCK, (uint64_t)b * CR_BLOCK, &n) != STATUS_SUCCESS) {
            if (!killed)
                fail_msg("a write failed before the kill");
            failed_after_kill = 1;
            break;
        }
        pending[npending++] = b;
        if (npending == 16) {
            if (storstack_flush(h) != STATUS_SUCCESS) {
                failed_after_kill = killed;
                break;
            }
            /* every write acknowledged so far is durable */
            for (uint32_t i = 0; i < npending; i++) {
                struct cr_block *p = &blocks[pending[i]];
                if (p->nlater) {
                    p->durable = p->later[p->nlater - 1];
                    p->nlater = 0;
                }
            }
            npending = 0;
            flushed++;
        }
        if (elapsed > 10.0)
            fail_msg("the client never noticed the killed server");
    }
    assert_true(failed_after_kill);
    assert_true(flushed > 0);
    waitpid(server, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    storstack_close(h);
    storstack_destroy(stack);

    /* start again on the same file: every flushed write is there */
    server = cr_start_server();
    stack = cr_connect();
    assert_status(storstack_open(stack, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h),
                  STATUS_SUCCESS);
    int checked = 0;
    for (uint32_t b = 0; b < CR_BLOCKS; b++) {
        struct cr_block *blk = &blocks[b];
        int ok;
        assert_status(storstack_read(h, buf, CR_BLOCK, (uint64_t)b * CR_BLOCK, &n), STATUS_SUCCESS);
        ok = cr_holds(buf, b, blk->durable);
        for (int i = 0; i < blk->nlater && !ok; i++)
            ok = cr_holds(buf, b, blk->later[i]);
        if (!ok)
            fail_msg("block %u lost its flushed write (gen %u) after the kill", b, blk->durable);
        checked += blk->durable != 0;
    }
    print_message("%d flushes before the kill, %d blocks with a flushed write checked\n", flushed,
                  checked);
    storstack_close(h);
    storstack_destroy(stack);
    kill(server, SIGTERM);
    waitpid(server, &status, 0);
    integ_rmtree(dir);
    integ_free(buf);
    free(blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_during_writes_keeps_every_flushed_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
