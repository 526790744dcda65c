/*
 * Unit tests of the io_uring file backend: sparse creation and extension, data patterns through
 * odd iovs, end-of-file zeros, FUA and FLUSH, holes from DISCARD, read-only and O_DIRECT refusals,
 * two submitting threads at depth 64, destroy with requests in flight, and the durability
 * contract checked by SIGKILLing a child right after its acknowledgements.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"

#ifndef SS_TEST_TMPDIR
#define SS_TEST_TMPDIR "/tmp"
#endif

#define MIB (1ull << 20)

#define THREAD_CHECK(c)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A group of requests whose completions (on the reaper) a test thread waits for. */
struct waitgroup {
    pthread_mutex_t m;
    pthread_cond_t c;
    int outstanding;
};

struct req {
    struct be_io io;
    struct iovec iov[8];
    struct waitgroup *wg;
    int result;
    int calls;
};

static void wg_init(struct waitgroup *wg)
{
    pthread_mutex_init(&wg->m, NULL);
    pthread_cond_init(&wg->c, NULL);
    wg->outstanding = 0;
}

static void wg_wait(struct waitgroup *wg)
{
    pthread_mutex_lock(&wg->m);
    while (wg->outstanding > 0)
        pthread_cond_wait(&wg->c, &wg->m);
    pthread_mutex_unlock(&wg->m);
}

static void wg_destroy(struct waitgroup *wg)
{
    pthread_cond_destroy(&wg->c);
    pthread_mutex_destroy(&wg->m);
}

static void on_complete(struct be_io *io, int result)
{
    struct req *r = io->context;
    pthread_mutex_lock(&r->wg->m);
    r->result = result;
    r->calls++;
    r->wg->outstanding--;
    pthread_cond_broadcast(&r->wg->c);
    pthread_mutex_unlock(&r->wg->m);
}

static void req_submit(struct backend *be, struct req *r, struct waitgroup *wg, enum be_op op,
                       uint32_t flags, uint64_t offset, uint64_t length, int iovcnt)
{
    r->wg = wg;
    r->result = 1;
    r->calls = 0;
    r->io = (struct be_io){.op = op,
                           .flags = flags,
                           .offset = offset,
                           .length = length,
                           .iov = r->iov,
                           .iovcnt = iovcnt,
                           .complete = on_complete,
                           .context = r};
    pthread_mutex_lock(&wg->m);
    wg->outstanding++;
    pthread_mutex_unlock(&wg->m);
    be_submit(be, &r->io);
}

static int do_io(struct backend *be, enum be_op op, uint32_t flags, uint64_t offset, void *buf,
                 uint64_t length)
{
    struct waitgroup wg;
    struct req r;
    wg_init(&wg);
    r.iov[0] = (struct iovec){.iov_base = buf, .iov_len = length};
    req_submit(be, &r, &wg, op, flags, offset, length, buf ? 1 : 0);
    wg_wait(&wg);
    wg_destroy(&wg);
    THREAD_CHECK(r.calls == 1);
    return r.result;
}

/* A fresh, not yet existing path in the build tree; the caller unlinks it. */
static char *temp_path(void)
{
    char *path = malloc(256);
    snprintf(path, 256, "%s/be_file_XXXXXX", SS_TEST_TMPDIR);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    return path;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_create_makes_a_sparse_file_of_the_requested_size(void **state)
{
    char *path = temp_path();
    struct backend *be;
    const char *detail = NULL;
    assert_int_equal(be_file_create(path, 256 * MIB, BE_FILE_CREATE, &be, &detail), 0);
    assert_int_equal(be->size, 256 * MIB);
    assert_true(be->caps.can_flush && be->caps.can_fua && be->caps.can_trim);
    assert_true(be->caps.trim_zeroes && be->caps.can_zero && !be->caps.read_only);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 256 * MIB);
    assert_true(st.st_blocks * 512 < (off_t)MIB);

    uint8_t *buf = malloc(MIB);
    memset(buf, 0xff, MIB);
    assert_int_equal(do_io(be, BE_OP_READ, 0, 100 * MIB + 3, buf, MIB), 0);
    assert_true(all_zero(buf, MIB));
    be_destroy(be);

    /* A missing file without BE_FILE_CREATE is an error that names its step. */
    unlink(path);
    assert_int_equal(be_file_create(path, MIB, 0, &be, &detail), -ENOENT);
    assert_string_equal(detail, "open");
    free(buf);
    free(path);
}

static void test_random_patterns_through_odd_iovs_read_back(void **state)
{
    const uint64_t size = 8 * MIB;
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, size, BE_FILE_CREATE, &be, NULL), 0);
    uint8_t *shadow = calloc(1, size);
    const size_t max = 300000;
    uint8_t *buf = malloc(max);
    struct waitgroup wg;
    struct req r;
    wg_init(&wg);
    srand(42);

    for (int i = 0; i < 1500; i++) {
        size_t len = 1 + (size_t)rand() % max;
        uint64_t off = (uint64_t)rand() % (size - len + 1);
        int n = 1 + rand() % 8;
        size_t pos = 0;
        for (int k = 0; k < n; k++) {
            size_t seg = k == n - 1 ? len - pos : (size_t)rand() % (len - pos + 1);
            r.iov[k] = (struct iovec){.iov_base = buf + pos, .iov_len = seg};
            pos += seg;
        }
        int what = rand() % 6;
        enum be_op op = what < 2 ? BE_OP_WRITE : what < 5 ? BE_OP_READ : BE_OP_WRITE_ZEROES;
        if (op == BE_OP_WRITE)
            fill(buf, len, (uint32_t)i);
        req_submit(be, &r, &wg, op, (i & 3) == 0 ? BE_IO_FUA : 0, off, len,
                   op == BE_OP_WRITE_ZEROES ? 0 : n);
        wg_wait(&wg);
        assert_int_equal(r.result, 0);
        if (op == BE_OP_WRITE)
            memcpy(shadow + off, buf, len);
        else if (op == BE_OP_WRITE_ZEROES)
            memset(shadow + off, 0, len);
        else
            assert_memory_equal(buf, shadow + off, len);
    }
    assert_int_equal(do_io(be, BE_OP_FLUSH, 0, 0, NULL, 0), 0);
    be_destroy(be);

    /* What the backend wrote is what the file holds. */
    uint8_t *file = malloc(size);
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, file, size, 0), (ssize_t)size);
    close(fd);
    assert_memory_equal(file, shadow, size);
    wg_destroy(&wg);
    unlink(path);
    free(file);
    free(buf);
    free(shadow);
    free(path);
}

static void test_size_zero_takes_the_file_size_and_a_larger_size_extends(void **state)
{
    char *path = temp_path();
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    uint8_t data[10000];
    fill(data, sizeof(data), 7);
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));

    struct backend *be;
    assert_int_equal(be_file_create(path, 0, 0, &be, NULL), 0);
    assert_int_equal(be->size, sizeof(data));
    be_destroy(be);

    assert_int_equal(be_file_create(path, 4 * MIB, 0, &be, NULL), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 4 * MIB);
    uint8_t buf[20000];
    assert_int_equal(do_io(be, BE_OP_READ, 0, 0, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, data, sizeof(data));
    assert_true(all_zero(buf + sizeof(data), sizeof(buf) - sizeof(data)));

    /* Someone shrinks the file under us: a read past its end returns zeros, not an error. */
    assert_int_equal(ftruncate(fd, 5000), 0);
    memset(buf, 0xcc, sizeof(buf));
    assert_int_equal(do_io(be, BE_OP_READ, 0, 0, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, data, 5000);
    assert_true(all_zero(buf + 5000, sizeof(buf) - 5000));
    be_destroy(be);

    /* An empty file with no size given has nothing to serve. */
    assert_int_equal(ftruncate(fd, 0), 0);
    const char *detail = NULL;
    assert_int_equal(be_file_create(path, 0, 0, &be, &detail), -EINVAL);
    assert_non_null(detail);
    close(fd);
    unlink(path);
    free(path);
}

static void test_fua_write_and_flush_complete_and_persist(void **state)
{
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, 4 * MIB, BE_FILE_CREATE, &be, NULL), 0);
    uint8_t a[8192], b[8192], got[8192];
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    assert_int_equal(do_io(be, BE_OP_WRITE, BE_IO_FUA, 4096, a, sizeof(a)), 0);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, MIB, b, sizeof(b)), 0);
    assert_int_equal(do_io(be, BE_OP_FLUSH, 0, 0, NULL, 0), 0);
    be_destroy(be);

    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, got, sizeof(got), 4096), (ssize_t)sizeof(got));
    assert_memory_equal(got, a, sizeof(a));
    assert_int_equal(pread(fd, got, sizeof(got), MIB), (ssize_t)sizeof(got));
    assert_memory_equal(got, b, sizeof(b));
    close(fd);
    unlink(path);
    free(path);
}

static void test_discard_punches_a_hole_that_reads_as_zeros(void **state)
{
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, 4 * MIB, BE_FILE_CREATE, &be, NULL), 0);
    uint8_t *buf = malloc(4 * MIB);
    fill(buf, 4 * MIB, 3);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 0, buf, 4 * MIB), 0);
    assert_int_equal(do_io(be, BE_OP_FLUSH, 0, 0, NULL, 0), 0);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    assert_int_equal(do_io(be, BE_OP_DISCARD, 0, MIB, NULL, MIB), 0);
    assert_int_equal(do_io(be, BE_OP_WRITE_ZEROES, 0, 3 * MIB + 10, NULL, 1000), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_true(after.st_blocks < before.st_blocks);
    int fd = open(path, O_RDONLY);
    assert_int_equal(lseek(fd, 0, SEEK_HOLE), (off_t)MIB);
    close(fd);

    uint8_t *got = malloc(4 * MIB);
    assert_int_equal(do_io(be, BE_OP_READ, 0, 0, got, 4 * MIB), 0);
    memset(buf + MIB, 0, MIB);
    memset(buf + 3 * MIB + 10, 0, 1000);
    assert_memory_equal(got, buf, 4 * MIB);
    be_destroy(be);
    unlink(path);
    free(got);
    free(buf);
    free(path);
}

static void test_extents_follow_seek_data_and_seek_hole(void **state)
{
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, 8 * MIB, BE_FILE_CREATE, &be, NULL), 0);
    assert_true(be->caps.can_extents);
    struct be_extent e[8];
    /* A fresh sparse file is one hole. */
    assert_int_equal(be_extents(be, 0, 8 * MIB, e, 8), 1);
    assert_int_equal(e[0].flags, BE_EXTENT_HOLE);
    assert_int_equal(e[0].length, 8 * MIB);

    uint8_t *buf = malloc(4 * MIB);
    fill(buf, 4 * MIB, 9);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 2 * MIB, buf, 4 * MIB), 0);
    assert_int_equal(do_io(be, BE_OP_DISCARD, 0, 3 * MIB, NULL, MIB), 0);
    /* hole [0,2M) data [2M,3M) hole [3M,4M) data [4M,6M) hole [6M,8M) */
    int n = be_extents(be, 0, 8 * MIB, e, 8);
    assert_int_equal(n, 5);
    const uint64_t bounds[] = {0, 2 * MIB, 3 * MIB, 4 * MIB, 6 * MIB, 8 * MIB};
    for (int i = 0; i < n; i++) {
        assert_int_equal(e[i].offset, bounds[i]);
        assert_int_equal(e[i].length, bounds[i + 1] - bounds[i]);
        assert_int_equal(e[i].flags, i % 2 ? 0 : BE_EXTENT_HOLE);
    }
    /* Cut by length and by max; a query from inside a run starts at the offset asked. */
    assert_int_equal(be_extents(be, 2 * MIB + 512, 4096, e, 8), 1);
    assert_int_equal(e[0].offset, 2 * MIB + 512);
    assert_int_equal(e[0].length, 4096);
    assert_int_equal(e[0].flags, 0);
    assert_int_equal(be_extents(be, 0, 8 * MIB, e, 2), 2);
    assert_int_equal(e[1].offset + e[1].length, 3 * MIB);

    /* WRITE_ZEROES reads back as zeros (ZERO_RANGE may keep the blocks allocated). */
    assert_int_equal(do_io(be, BE_OP_WRITE_ZEROES, 0, 4 * MIB, NULL, MIB), 0);
    uint8_t *got = malloc(MIB);
    assert_int_equal(do_io(be, BE_OP_READ, 0, 4 * MIB, got, MIB), 0);
    assert_true(all_zero(got, MIB));
    be_destroy(be);
    unlink(path);
    free(got);
    free(buf);
    free(path);
}

static void test_readonly_refuses_writes_and_serves_reads(void **state)
{
    char *path = temp_path();
    struct backend *be;
    uint8_t data[4096], got[4096];
    fill(data, sizeof(data), 9);
    assert_int_equal(be_file_create(path, MIB, BE_FILE_CREATE, &be, NULL), 0);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 0, data, sizeof(data)), 0);
    be_destroy(be);

    assert_int_equal(be_file_create(path, 0, BE_FILE_READONLY, &be, NULL), 0);
    assert_true(be->caps.read_only);
    assert_false(be->caps.can_trim || be->caps.can_zero || be->caps.can_fua);
    int ret = do_io(be, BE_OP_WRITE, 0, 0, data, sizeof(data));
    assert_true(ret == -EROFS || ret == -EBADF);
    ret = do_io(be, BE_OP_DISCARD, 0, 0, NULL, 4096);
    assert_true(ret == -EROFS || ret == -EBADF || ret == -EOPNOTSUPP);
    assert_int_equal(do_io(be, BE_OP_READ, 0, 0, got, sizeof(got)), 0);
    assert_memory_equal(got, data, sizeof(data));
    be_destroy(be);
    unlink(path);
    free(path);
}

static void test_out_of_range_returns_einval(void **state)
{
    char *path = temp_path();
    struct backend *be;
    uint8_t buf[512];
    assert_int_equal(be_file_create(path, MIB, BE_FILE_CREATE, &be, NULL), 0);
    assert_int_equal(do_io(be, BE_OP_READ, 0, MIB - 511, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, UINT64_MAX - 10, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_DISCARD, 0, MIB, NULL, 1), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, MIB - 512, buf, sizeof(buf)), 0);
    be_destroy(be);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, MIB);
    unlink(path);
    free(path);
}

static void test_direct_io_requires_512_byte_alignment(void **state)
{
    char *path = temp_path();
    struct backend *be;
    const char *detail = NULL;
    int ret = be_file_create(path, 4 * MIB, BE_FILE_CREATE | BE_FILE_DIRECT, &be, &detail);
    if (ret == -EINVAL && detail && strcmp(detail, "open") == 0) {
        unlink(path);
        free(path);
        skip(); /* this filesystem has no O_DIRECT */
    }
    assert_int_equal(ret, 0);
    uint8_t *buf = aligned_alloc(4096, 64 * 1024);
    fill(buf, 64 * 1024, 5);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 4096, buf + 1, 512), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 4097, buf, 512), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_WRITE, 0, 4096, buf, 500), -EINVAL);
    assert_int_equal(do_io(be, BE_OP_WRITE, BE_IO_FUA, 4096, buf, 64 * 1024), 0);
    uint8_t *got = aligned_alloc(4096, 64 * 1024);
    assert_int_equal(do_io(be, BE_OP_READ, 0, 4096, got, 64 * 1024), 0);
    assert_memory_equal(got, buf, 64 * 1024);
    be_destroy(be);
    unlink(path);
    free(got);
    free(buf);
    free(path);
}

#define DEPTH  64
#define ROUNDS 40
#define BLOCK  8192

struct depth_worker {
    struct backend *be;
    int id;
};

/* Keeps DEPTH writes in flight, then DEPTH reads checking them, ROUNDS times. */
static void *depth_worker(void *arg)
{
    struct depth_worker *w = arg;
    struct waitgroup wg;
    struct req *reqs = calloc(DEPTH, sizeof(*reqs));
    uint8_t *bufs = malloc((size_t)DEPTH * BLOCK);
    uint8_t *expect = malloc(BLOCK);
    wg_init(&wg);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < DEPTH; i++) {
            uint64_t off = ((uint64_t)w->id * DEPTH + i) * BLOCK;
            fill(bufs + (size_t)i * BLOCK, BLOCK, (uint32_t)(round * 1000 + w->id * 100 + i));
            reqs[i].iov[0] = (struct iovec){.iov_base = bufs + (size_t)i * BLOCK, .iov_len = BLOCK};
            req_submit(w->be, &reqs[i], &wg, BE_OP_WRITE, (i & 7) == 0 ? BE_IO_FUA : 0, off, BLOCK,
                       1);
        }
        wg_wait(&wg);
        for (int i = 0; i < DEPTH; i++)
            THREAD_CHECK(reqs[i].calls == 1 && reqs[i].result == 0);
        memset(bufs, 0, (size_t)DEPTH * BLOCK);
        for (int i = 0; i < DEPTH; i++) {
            uint64_t off = ((uint64_t)w->id * DEPTH + i) * BLOCK;
            req_submit(w->be, &reqs[i], &wg, BE_OP_READ, 0, off, BLOCK, 1);
        }
        wg_wait(&wg);
        for (int i = 0; i < DEPTH; i++) {
            THREAD_CHECK(reqs[i].calls == 1 && reqs[i].result == 0);
            fill(expect, BLOCK, (uint32_t)(round * 1000 + w->id * 100 + i));
            THREAD_CHECK(memcmp(expect, bufs + (size_t)i * BLOCK, BLOCK) == 0);
        }
    }
    wg_destroy(&wg);
    free(expect);
    free(bufs);
    free(reqs);
    return NULL;
}

static void test_two_threads_at_depth_64_complete_every_request(void **state)
{
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, 16 * MIB, BE_FILE_CREATE, &be, NULL), 0);
    pthread_t t[2];
    struct depth_worker w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct depth_worker){.be = be, .id = i};
        pthread_create(&t[i], NULL, depth_worker, &w[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    be_destroy(be);
    unlink(path);
    free(path);
}

static void test_destroy_waits_for_requests_in_flight(void **state)
{
    enum { N = 600 }; /* more than the ring holds, so some submitters wait for space */
    char *path = temp_path();
    struct backend *be;
    assert_int_equal(be_file_create(path, 64 * MIB, BE_FILE_CREATE, &be, NULL), 0);
    struct req *reqs = calloc(N, sizeof(*reqs));
    uint8_t *buf = malloc(65536);
    fill(buf, 65536, 11);
    struct waitgroup wg;
    wg_init(&wg);
    for (int i = 0; i < N; i++) {
        reqs[i].iov[0] = (struct iovec){.iov_base = buf, .iov_len = 65536};
        enum be_op op = i % 50 == 49 ? BE_OP_FLUSH : BE_OP_WRITE;
        req_submit(be, &reqs[i], &wg, op, 0, (uint64_t)i * 65536 % (64 * MIB), 65536,
                   op == BE_OP_FLUSH ? 0 : 1);
    }
    be_destroy(be); /* no wait before: destroy itself must drain */
    assert_int_equal(wg.outstanding, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(reqs[i].calls, 1);
        assert_int_equal(reqs[i].result, 0);
    }
    wg_destroy(&wg);
    unlink(path);
    free(buf);
    free(reqs);
    free(path);
}

/* One acknowledgement through the pipe: which region, which generation of its pattern. */
struct ack {
    uint32_t region;
    uint32_t seed;
};

#define DUR_REGION        16384u
#define DUR_FUA_REGIONS   256u
#define DUR_FLUSH_REGIONS 256u

static void durability_child(const char *path, int ackfd)
{
    struct backend *be;
    if (be_file_create(path, (DUR_FUA_REGIONS + DUR_FLUSH_REGIONS) * DUR_REGION, BE_FILE_CREATE,
                       &be, NULL) != 0)
        _exit(2);
    static uint8_t buf[8][DUR_REGION];
    for (uint32_t gen = 1;; gen++) {
        for (uint32_t r = 0; r < DUR_FUA_REGIONS; r++) {
            uint32_t seed = gen * 100000 + r;
            fill(buf[0], DUR_REGION, seed);
            if (do_io(be, BE_OP_WRITE, BE_IO_FUA, (uint64_t)r * DUR_REGION, buf[0], DUR_REGION))
                _exit(3);
            struct ack a = {r, seed};
            if (write(ackfd, &a, sizeof(a)) != sizeof(a))
                _exit(4);
        }
        /* Plain writes, then a FLUSH: only after the FLUSH completes are they acknowledged. */
        for (uint32_t r = DUR_FUA_REGIONS; r < DUR_FUA_REGIONS + DUR_FLUSH_REGIONS; r += 8) {
            for (uint32_t k = 0; k < 8; k++) {
                fill(buf[k], DUR_REGION, gen * 100000 + r + k);
                if (do_io(be, BE_OP_WRITE, 0, (uint64_t)(r + k) * DUR_REGION, buf[k], DUR_REGION))
                    _exit(3);
            }
            if (do_io(be, BE_OP_FLUSH, 0, 0, NULL, 0))
                _exit(3);
            for (uint32_t k = 0; k < 8; k++) {
                struct ack a = {r + k, gen * 100000 + r + k};
                if (write(ackfd, &a, sizeof(a)) != sizeof(a))
                    _exit(4);
            }
        }
    }
}

static void test_acknowledged_writes_survive_kill_9(void **state)
{
    char *path = temp_path();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        durability_child(path, fds[1]);
        _exit(0);
    }
    close(fds[1]);

    /* Latest acknowledged generation per region; kill as soon as the child is well under way. */
    static uint32_t latest[DUR_FUA_REGIONS + DUR_FLUSH_REGIONS];
    memset(latest, 0, sizeof(latest));
    struct ack a;
    unsigned acks = 0;
    while (read(fds[0], &a, sizeof(a)) == sizeof(a)) {
        assert_true(a.region < DUR_FUA_REGIONS + DUR_FLUSH_REGIONS);
        latest[a.region] = a.seed;
        if (++acks == 700)
            kill(pid, SIGKILL);
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(acks >= 700);

    /*
     * A region acknowledged at generation g may since hold a later, unacknowledged generation
     * (a write in flight when the child died) — but never anything older than g.
     */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t got[DUR_REGION], want[DUR_REGION];
    unsigned checked = 0;
    for (uint32_t r = 0; r < DUR_FUA_REGIONS + DUR_FLUSH_REGIONS; r++) {
        if (!latest[r])
            continue;
        assert_int_equal(pread(fd, got, DUR_REGION, (off_t)r * DUR_REGION), DUR_REGION);
        bool ok = false;
        for (uint32_t seed = latest[r]; seed <= latest[r] + 100000 && !ok; seed += 100000) {
            fill(want, DUR_REGION, seed);
            ok = memcmp(got, want, DUR_REGION) == 0;
        }
        if (!ok)
            fail_msg("region %u lost its acknowledged write (seed %u)", r, latest[r]);
        checked++;
    }
    print_message("%u acknowledgements, %u regions verified after SIGKILL\n", acks, checked);
    close(fd);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_makes_a_sparse_file_of_the_requested_size),
        cmocka_unit_test(test_random_patterns_through_odd_iovs_read_back),
        cmocka_unit_test(test_size_zero_takes_the_file_size_and_a_larger_size_extends),
        cmocka_unit_test(test_fua_write_and_flush_complete_and_persist),
        cmocka_unit_test(test_discard_punches_a_hole_that_reads_as_zeros),
        cmocka_unit_test(test_extents_follow_seek_data_and_seek_hole),
        cmocka_unit_test(test_readonly_refuses_writes_and_serves_reads),
        cmocka_unit_test(test_out_of_range_returns_einval),
        cmocka_unit_test(test_direct_io_requires_512_byte_alignment),
        cmocka_unit_test(test_two_threads_at_depth_64_complete_every_request),
        cmocka_unit_test(test_destroy_waits_for_requests_in_flight),
        cmocka_unit_test(test_acknowledged_writes_survive_kill_9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
