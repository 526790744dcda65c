/*
 * Unit tests of the sparse RAM backend: zeros without allocation, arbitrary iov segmentation
 * across pages against a shadow buffer, discard and write-zeroes, range checks, concurrency
 * (including discards freeing pages under readers), and the cost of a 1 TiB disk.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "backends/ram.h"

#define PAGE BE_RAM_PAGE_SIZE

/* cmocka's asserts longjmp into the main thread; worker threads abort instead. */
#define THREAD_CHECK(c)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct done {
    int calls;
    int result;
};

static void on_complete(struct be_io *io, int result)
{
    struct done *d = io->context;
    d->calls++;
    d->result = result;
}

/* RAM completes inline: the callback has run exactly once when be_submit() returns. */
static int submit_iov(struct backend *be, enum be_op op, uint64_t offset, const struct iovec *iov,
                      int iovcnt, uint64_t length)
{
    struct done d = {0};
    struct be_io io = {.op = op,
                       .offset = offset,
                       .length = length,
                       .iov = iov,
                       .iovcnt = iovcnt,
                       .complete = on_complete,
                       .context = &d};
    be_submit(be, &io);
    THREAD_CHECK(d.calls == 1);
    return d.result;
}

static int submit_buf(struct backend *be, enum be_op op, uint64_t offset, void *buf, size_t len)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    return submit_iov(be, op, offset, &iov, 1, len);
}

static int submit_range(struct backend *be, enum be_op op, uint64_t offset, uint64_t len)
{
    return submit_iov(be, op, offset, NULL, 0, len);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_unwritten_reads_are_zero_and_allocate_nothing(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(64ull << 20, &be), 0);
    assert_true(be->caps.can_flush && be->caps.can_fua && be->caps.can_trim);
    assert_true(be->caps.trim_zeroes && be->caps.can_zero && !be->caps.read_only);

    size_t len = 3 * PAGE + 100;
    uint8_t *buf = malloc(len);
    memset(buf, 0xa5, len);
    assert_int_equal(submit_buf(be, BE_OP_READ, 12345, buf, len), 0);
    assert_true(all_zero(buf, len));
    assert_int_equal(be_ram_allocated_pages(be), 0);
    free(buf);
    be_destroy(be);
}

static void test_write_allocates_only_the_pages_it_touches(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(64ull << 20, &be), 0);
    uint8_t b[2] = {1, 2};
    /* Two bytes straddling a page boundary: exactly two pages. */
    assert_int_equal(submit_buf(be, BE_OP_WRITE, 5 * PAGE - 1, b, 2), 0);
    assert_int_equal(be_ram_allocated_pages(be), 2);
    uint8_t r[4];
    assert_int_equal(submit_buf(be, BE_OP_READ, 5 * PAGE - 2, r, 4), 0);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[1], 1);
    assert_int_equal(r[2], 2);
    assert_int_equal(r[3], 0);
    be_destroy(be);
}

/* Splits `len` bytes of `buf` into 1..8 segments of random lengths, some of them zero. */
static int random_iov(struct iovec *iov, uint8_t *buf, size_t len)
{
    int n = 1 + rand() % 8;
    size_t off = 0;
    for (int i = 0; i < n - 1; i++) {
        size_t seg = len - off ? (size_t)rand() % (len - off + 1) : 0;
        iov[i] = (struct iovec){.iov_base = buf + off, .iov_len = seg};
        off += seg;
    }
    iov[n - 1] = (struct iovec){.iov_base = buf + off, .iov_len = len - off};
    return n;
}

static void test_random_io_across_pages_with_odd_iovs_matches_shadow(void **state)
{
    const uint64_t size = 8ull << 20;
    struct backend *be;
    assert_int_equal(be_ram_create(size, &be), 0);
    uint8_t *shadow = calloc(1, size);
    const size_t max = 5 * PAGE + 333;
    uint8_t *buf = malloc(max);
    struct iovec iov[8];
    srand(1234);

    for (int i = 0; i < 4000; i++) {
        size_t len = 1 + (size_t)rand() % max;
        uint64_t off = (uint64_t)rand() % (size - len + 1);
        int n = random_iov(iov, buf, len);
        switch (rand() % 5) {
        case 0:
        case 1:
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rand();
            assert_int_equal(submit_iov(be, BE_OP_WRITE, off, iov, n, len), 0);
            memcpy(shadow + off, buf, len);
            break;
        case 2:
        case 3:
            assert_int_equal(submit_iov(be, BE_OP_READ, off, iov, n, len), 0);
            assert_memory_equal(buf, shadow + off, len);
            break;
        default:
            assert_int_equal(submit_range(be, i & 1 ? BE_OP_DISCARD : BE_OP_WRITE_ZEROES, off, len),
                             0);
            memset(shadow + off, 0, len);
            break;
        }
    }
    /* Whole-device read back in one odd iov, and pages still held match the shadow's. */
    uint8_t *all = malloc(size);
    int n = random_iov(iov, all, size);
    assert_int_equal(submit_iov(be, BE_OP_READ, 0, iov, n, size), 0);
    assert_memory_equal(all, shadow, size);
    assert_true(be_ram_allocated_pages(be) <= size / PAGE);
    free(all);
    free(buf);
    free(shadow);
    be_destroy(be);
}

static void test_discard_frees_whole_pages_and_zeroes_partial_ones(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(1ull << 20, &be), 0);
    uint8_t *buf = malloc(8 * PAGE);
    memset(buf, 0x5a, 8 * PAGE);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, 0, buf, 8 * PAGE), 0);
    assert_int_equal(be_ram_allocated_pages(be), 8);

    /* From the middle of page 1 to the middle of page 6: pages 2..5 go, 1 and 6 are zeroed. */
    assert_int_equal(submit_range(be, BE_OP_DISCARD, PAGE + 100, 5 * PAGE), 0);
    assert_int_equal(be_ram_allocated_pages(be), 4);
    assert_int_equal(submit_buf(be, BE_OP_READ, 0, buf, 8 * PAGE), 0);
    for (size_t i = 0; i < 8 * PAGE; i++) {
        bool discarded = i >= PAGE + 100 && i < 6 * PAGE + 100;
        if (buf[i] != (discarded ? 0 : 0x5a))
            fail_msg("byte %zu is %#x", i, buf[i]);
    }

    /* WRITE_ZEROES behaves the same way. */
    assert_int_equal(submit_range(be, BE_OP_WRITE_ZEROES, 0, 8 * PAGE), 0);
    assert_int_equal(be_ram_allocated_pages(be), 0);
    assert_int_equal(submit_buf(be, BE_OP_READ, 0, buf, 8 * PAGE), 0);
    assert_true(all_zero(buf, 8 * PAGE));

    /* Discarding what was never written is a successful no-op. */
    assert_int_equal(submit_range(be, BE_OP_DISCARD, 0, 1ull << 20), 0);
    assert_int_equal(submit_range(be, BE_OP_FLUSH, 0, 0), 0);
    free(buf);
    be_destroy(be);
}

static void test_out_of_range_and_bad_iovs_return_einval(void **state)
{
    const uint64_t size = 10 * PAGE + 7; /* not a page multiple: the tail page is partial */
    struct backend *be;
    assert_int_equal(be_ram_create(size, &be), 0);
    uint8_t buf[16] = {0};
    assert_int_equal(submit_buf(be, BE_OP_WRITE, size - 16, buf, 16), 0);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, size - 15, buf, 16), -EINVAL);
    assert_int_equal(submit_buf(be, BE_OP_READ, size, buf, 1), -EINVAL);
    assert_int_equal(submit_buf(be, BE_OP_READ, UINT64_MAX - 3, buf, 8), -EINVAL);
    assert_int_equal(submit_range(be, BE_OP_DISCARD, size - 1, 2), -EINVAL);
    assert_int_equal(submit_range(be, BE_OP_WRITE_ZEROES, 1, UINT64_MAX), -EINVAL);
    struct iovec iov = {.iov_base = buf, .iov_len = 8};
    assert_int_equal(submit_iov(be, BE_OP_WRITE, 0, &iov, 1, 16), -EINVAL);
    assert_int_equal(submit_buf(be, BE_OP_READ, size, buf, 0), 0);
    assert_int_equal(be_ram_create(0, &be), -EINVAL);
    be_destroy(be);
}

struct worker {
    struct backend *be;
    uint64_t base;
    uint64_t span;
    uint8_t tag;
    int iterations;
    unsigned seed;
};

/* Each worker writes its own tag over its own range in random odd pieces. */
static void *disjoint_writer(void *arg)
{
    struct worker *w = arg;
    uint8_t buf[3 * PAGE];
    memset(buf, w->tag, sizeof(buf));
    for (int i = 0; i < w->iterations; i++) {
        size_t len = 1 + rand_r(&w->seed) % sizeof(buf);
        if (len > w->span)
            len = w->span;
        uint64_t off = w->base + rand_r(&w->seed) % (w->span - len + 1);
        THREAD_CHECK(submit_buf(w->be, BE_OP_WRITE, off, buf, len) == 0);
    }
    /* Finally cover the whole range, so every byte is known. */
    for (uint64_t off = 0; off < w->span; off += sizeof(buf)) {
        size_t len = w->span - off < sizeof(buf) ? w->span - off : sizeof(buf);
        THREAD_CHECK(submit_buf(w->be, BE_OP_WRITE, w->base + off, buf, len) == 0);
    }
    return NULL;
}

static void test_concurrent_writers_on_disjoint_ranges_lose_nothing(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(16ull << 20, &be), 0);
    /* Ranges that share pages and leaves at their edges, so CAS installs really race. */
    const uint64_t span = 3 * (1ull << 20) + 1001;
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){
            .be = be, .base = i * span, .span = span, .tag = (uint8_t)(0x10 + i), .seed = i + 1};
        w[i].iterations = 3000;
        pthread_create(&t[i], NULL, disjoint_writer, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);

    uint8_t *all = malloc(4 * span);
    assert_int_equal(submit_buf(be, BE_OP_READ, 0, all, 4 * span), 0);
    for (uint64_t i = 0; i < 4 * span; i++)
        if (all[i] != 0x10 + i / span)
            fail_msg("byte %llu is %#x", (unsigned long long)i, all[i]);
    uint64_t pages = (4 * span + PAGE - 1) / PAGE;
    assert_int_equal(be_ram_allocated_pages(be), pages);
    free(all);
    be_destroy(be);
}

static void test_concurrent_writers_on_overlapping_ranges_do_not_crash(void **state)
{
#if defined(__SANITIZE_THREAD__)
    /* Overlapping writes race byte by byte by design (as on media); TSan would rightly say so. */
    skip();
#endif
    struct backend *be;
    assert_int_equal(be_ram_create(4ull << 20, &be), 0);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.be = be,
                               .base = i * 100000,
                               .span = 2ull << 20,
                               .tag = (uint8_t)(0x40 + i),
                               .iterations = 3000,
                               .seed = 77 + i};
        pthread_create(&t[i], NULL, disjoint_writer, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Every byte holds one of the writers' tags: nothing torn into foreign values. */
    uint8_t *all = malloc(4ull << 20);
    assert_int_equal(submit_buf(be, BE_OP_READ, 0, all, 4ull << 20), 0);
    uint64_t end = 3 * 100000 + (2ull << 20);
    for (uint64_t i = 0; i < end; i++)
        assert_true(all[i] >= 0x40 && all[i] <= 0x43);
    free(all);
    be_destroy(be);
}

struct mixed {
    struct backend *be;
    uint8_t tag;
    unsigned seed;
    int iterations;
};

/* Writes and reads its own pages; whatever comes back is its tag or a discard's zeros. */
static void *mixed_io(void *arg)
{
    struct mixed *m = arg;
    uint8_t buf[2 * PAGE + 200];
    for (int i = 0; i < m->iterations; i++) {
        /* Thread k owns every 4th 16 KiB stripe starting at stripe k. */
        uint64_t stripe = (uint64_t)(rand_r(&m->seed) % 64) * 4 + m->tag;
        uint64_t off = stripe * 4 * PAGE + rand_r(&m->seed) % (2 * PAGE - 200);
        size_t len = 1 + rand_r(&m->seed) % sizeof(buf);
        if (rand_r(&m->seed) & 1) {
            memset(buf, 0x80 | m->tag, len);
            THREAD_CHECK(submit_buf(m->be, BE_OP_WRITE, off, buf, len) == 0);
        } else {
            THREAD_CHECK(submit_buf(m->be, BE_OP_READ, off, buf, len) == 0);
            for (size_t k = 0; k < len; k++)
                if (buf[k] != 0 && buf[k] != (0x80 | m->tag))
                    THREAD_CHECK(!"foreign byte read back");
        }
    }
    return NULL;
}

static void *discarder(void *arg)
{
    struct mixed *m = arg;
    for (int i = 0; i < m->iterations; i++) {
        uint64_t off = rand_r(&m->seed) % (4ull << 20);
        uint64_t len = 1 + rand_r(&m->seed) % (64 * PAGE);
        if (off + len > (4ull << 20))
            len = (4ull << 20) - off;
        THREAD_CHECK(submit_range(m->be, i & 1 ? BE_OP_DISCARD : BE_OP_WRITE_ZEROES, off, len) ==
                     0);
    }
    return NULL;
}

static void test_discard_while_others_read_and_write_is_safe(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(4ull << 20, &be), 0);
    pthread_t t[5];
    struct mixed m[5];
    for (int i = 0; i < 5; i++) {
        m[i] = (struct mixed){.be = be, .tag = (uint8_t)i, .seed = 900 + i, .iterations = 5000};
        pthread_create(&t[i], NULL, i < 4 ? mixed_io : discarder, &m[i]);
    }
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    assert_true(be_ram_allocated_pages(be) <= (4ull << 20) / PAGE);
    be_destroy(be);
}

static uint64_t resident_bytes(void)
{
    unsigned long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &vsz, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void test_terabyte_disk_is_cheap_until_written(void **state)
{
#if defined(__SANITIZE_THREAD__)
    /* The disk is one 1 TiB reservation of address space; ThreadSanitizer maps shadow memory
     * for every mapping and refuses one that large (-ENOMEM). */
    skip();
#endif
    const uint64_t tib = 1ull << 40;
    uint64_t before = resident_bytes();
    struct backend *be;
    assert_int_equal(be_ram_create(tib, &be), 0);
    assert_int_equal(be->size, tib);
    assert_int_equal(be_ram_allocated_pages(be), 0);

    /* 64 MiB written in the middle and a byte at each end cost about 64 MiB. */
    const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    memset(buf, 0xee, chunk);
    for (uint64_t i = 0; i < 64; i++)
        assert_int_equal(submit_buf(be, BE_OP_WRITE, tib / 2 + i * chunk, buf, chunk), 0);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, 0, buf, 1), 0);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, tib - 1, buf, 1), 0);
    assert_int_equal(be_ram_allocated_pages(be), 64 * chunk / PAGE + 2);
    assert_int_equal(submit_buf(be, BE_OP_READ, tib - chunk, buf, chunk), 0);
    assert_int_equal(buf[chunk - 1], 0xee);
    assert_true(all_zero(buf, chunk - 1));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    uint64_t grown = resident_bytes() - before;
    print_message("1 TiB RAM disk, 64 MiB written: resident grew by %llu KiB\n",
                  (unsigned long long)(grown >> 10));
    assert_true(grown < (64ull << 20) * 11 / 10 + (8ull << 20));
#else
    (void)before;
#endif
    /* Discarding the whole terabyte walks only the leaves that exist. */
    assert_int_equal(submit_range(be, BE_OP_DISCARD, 0, tib), 0);
    assert_int_equal(be_ram_allocated_pages(be), 0);
    free(buf);
    be_destroy(be);
}

static void test_two_backends_are_independent(void **state)
{
    struct backend *a, *b;
    assert_int_equal(be_ram_create(1ull << 20, &a), 0);
    assert_int_equal(be_ram_create(1ull << 20, &b), 0);
    uint8_t x = 7, y = 0;
    assert_int_equal(submit_buf(a, BE_OP_WRITE, 100, &x, 1), 0);
    assert_int_equal(submit_buf(b, BE_OP_READ, 100, &y, 1), 0);
    assert_int_equal(y, 0);
    assert_int_equal(be_ram_allocated_pages(a), 1);
    assert_int_equal(be_ram_allocated_pages(b), 0);
    be_destroy(a);
    be_destroy(b);
}

static void test_extents_report_pages_written_and_holes_after_discard(void **state)
{
    struct backend *be;
    uint64_t size = 8ull << 20; /* four leaves */
    assert_int_equal(be_ram_create(size, &be), 0);
    assert_true(be->caps.can_extents);
    struct be_extent e[8];

    /* Nothing written: one hole over everything asked, clipped to the size. */
    assert_int_equal(be_extents(be, 100, size, e, 8), 1);
    assert_int_equal(e[0].offset, 100);
    assert_int_equal(e[0].length, size - 100);
    assert_int_equal(e[0].flags, BE_EXTENT_HOLE);

    /* Pages 3..5 and page 600 (second leaf) written; page 4 then discarded whole. */
    uint8_t *buf = malloc(3 * PAGE);
    memset(buf, 0x11, 3 * PAGE);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, 3 * PAGE, buf, 3 * PAGE), 0);
    assert_int_equal(submit_buf(be, BE_OP_WRITE, 600 * PAGE + 5, buf, 10), 0);
    assert_int_equal(submit_range(be, BE_OP_DISCARD, 4 * PAGE, PAGE), 0);
    /* A partial discard keeps the page: it is zeroed, still allocated. */
    assert_int_equal(submit_range(be, BE_OP_DISCARD, 5 * PAGE, 100), 0);

    int n = be_extents(be, 0, size, e, 8);
    assert_int_equal(n, 7);
    const struct {
        uint64_t off, len;
        uint32_t flags;
    } want[] = {
        {0, 3 * PAGE, BE_EXTENT_HOLE},
        {3 * PAGE, PAGE, 0},
        {4 * PAGE, PAGE, BE_EXTENT_HOLE},
        {5 * PAGE, PAGE, 0},
        {6 * PAGE, 594 * PAGE, BE_EXTENT_HOLE},
        {600 * PAGE, PAGE, 0},
        {601 * PAGE, size - 601 * PAGE, BE_EXTENT_HOLE},
    };
    for (int i = 0; i < n; i++) {
        assert_int_equal(e[i].offset, want[i].off);
        assert_int_equal(e[i].length, want[i].len);
        assert_int_equal(e[i].flags, want[i].flags);
    }
    /* max bounds the answer; the caller resumes where it ends. */
    assert_int_equal(be_extents(be, 0, size, e, 2), 2);
    assert_int_equal(e[1].offset + e[1].length, 4 * PAGE);
    /* A query starting inside a page starts at the offset asked. */
    assert_int_equal(be_extents(be, 3 * PAGE + 7, 10, e, 8), 1);
    assert_int_equal(e[0].offset, 3 * PAGE + 7);
    assert_int_equal(e[0].length, 10);
    assert_int_equal(e[0].flags, 0);
    /* Bad arguments. */
    assert_int_equal(be_extents(be, size, 1, e, 8), -EINVAL);
    assert_int_equal(be_extents(be, 0, 1, e, 0), -EINVAL);
    free(buf);
    be_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unwritten_reads_are_zero_and_allocate_nothing),
        cmocka_unit_test(test_write_allocates_only_the_pages_it_touches),
        cmocka_unit_test(test_random_io_across_pages_with_odd_iovs_matches_shadow),
        cmocka_unit_test(test_discard_frees_whole_pages_and_zeroes_partial_ones),
        cmocka_unit_test(test_out_of_range_and_bad_iovs_return_einval),
        cmocka_unit_test(test_concurrent_writers_on_disjoint_ranges_lose_nothing),
        cmocka_unit_test(test_concurrent_writers_on_overlapping_ranges_do_not_crash),
        cmocka_unit_test(test_discard_while_others_read_and_write_is_safe),
        cmocka_unit_test(test_terabyte_disk_is_cheap_until_written),
        cmocka_unit_test(test_two_backends_are_independent),
        cmocka_unit_test(test_extents_report_pages_written_and_holes_after_discard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
