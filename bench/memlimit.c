/*
 * memlimit: the physical limit a RAM disk's 4 KiB random reads are measured against. Each thread
 * copies 4 KiB blocks at random block-aligned offsets of a buffer the size of the disk (1 GiB by
 * default, written first so every page is resident and distinct) into its own 4 KiB destination,
 * for --seconds. That is the one thing a read of a RAM disk must do; everything else a storage
 * stack does per I/O is overhead on top of it. Prints the median copies/s of --repeat runs (the
 * sum over threads) as one JSON object. Not part of the CMake build: bench/run.sh compiles it.
 */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_REPEAT  15

struct worker {
    const uint8_t *src;
    uint64_t blocks, block, rng, ns_limit;
    uint64_t copies, ns;
    pthread_t thread;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    uint8_t *dst = aligned_alloc(4096, w->block);
    uint64_t x = w->rng, copies = 0, t0 = now_ns(), t = t0;

    if (!dst)
        return NULL;
    while (t - t0 < w->ns_limit) {
        /* the clock is read once per 1024 copies, so it costs nothing per copy */
        for (int i = 0; i < 1024; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t b = (uint64_t)(((unsigned __int128)x * w->blocks) >> 64);
            memcpy(dst, w->src + b * w->block, w->block);
            /* the copy has an observer: the compiler may not drop it */
            __asm__ volatile("" : : "r"(dst) : "memory");
        }
        copies += 1024;
        t = now_ns();
    }
    w->copies = copies;
    w->ns = t - t0;
    free(dst);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int usage(FILE *out, int status)
{
    fputs("usage: memlimit [--seconds N] [--threads N] [--size BYTES] [--block BYTES] "
          "[--repeat N] [--hugepages]\n"
          "  defaults: 5 s, 1 thread, 1 GiB, 4096, 3 runs (the median is printed)\n"
          "  --hugepages: the buffer in 2 MiB transparent huge pages (MADV_HUGEPAGE), as the\n"
          "               RAM backend maps fully written regions; fewer TLB misses per copy\n",
          out);
    return status;
}

int main(int argc, char **argv)
{
    uint64_t seconds = 5, threads = 1, size = 1ull << 30, block = 4096, repeat = 3;
    int hugepages = 0;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        uint64_t *into = NULL, min = 1, max = 0;
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h"))
            return usage(stdout, 0);
        if (!strcmp(opt, "--hugepages")) {
            hugepages = 1;
            continue;
        }
        if (!strcmp(opt, "--seconds"))
            into = &seconds, max = 3600;
        else if (!strcmp(opt, "--threads"))
            into = &threads, max = MAX_THREADS;
        else if (!strcmp(opt, "--size"))
            into = &size, min = 1u << 20, max = 1ull << 40;
        else if (!strcmp(opt, "--block"))
            into = &block, min = 64, max = 1u << 20;
        else if (!strcmp(opt, "--repeat"))
            into = &repeat, max = MAX_REPEAT;
        if (!into || i + 1 >= argc || parse_u64(argv[i + 1], min, max, into)) {
            fprintf(stderr, "memlimit: bad or incomplete option '%s'\n", opt);
            return usage(stderr, 2);
        }
        i++;
    }
    if (block % 64 || size < block) {
        fprintf(stderr, "memlimit: --block must be a multiple of 64 and at most --size\n");
        return 2;
    }

    const uint64_t align = hugepages ? 2u << 20 : 4096;
    const uint64_t alloc = (size + align - 1) / align * align;
    uint8_t *src = aligned_alloc(align, alloc);
    if (!src) {
        fprintf(stderr, "memlimit: cannot allocate %" PRIu64 " bytes\n", size);
        return 1;
    }
    if (hugepages && madvise(src, alloc, MADV_HUGEPAGE) != 0) {
        fprintf(stderr, "memlimit: madvise(MADV_HUGEPAGE): %s\n", strerror(errno));
        return 1;
    }
    /* written, not just allocated: resident pages with distinct contents (no shared zero page) */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (uint64_t off = 0; off + 8 <= size; off += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(src + off, &x, 8);
    }

    struct worker w[MAX_THREADS];
    double runs[MAX_REPEAT];
    for (uint64_t r = 0; r < repeat; r++) {
        double rate = 0;
        for (uint64_t i = 0; i < threads; i++) {
            w[i] = (struct worker){.src = src,
                                   .blocks = size / block,
                                   .block = block,
                                   .rng = (0x2545F4914F6CDD1Dull * (i + 1 + r * MAX_THREADS)) |
                                          now_ns() | 1,
                                   .ns_limit = seconds * 1000000000ull};
            if (pthread_create(&w[i].thread, NULL, worker_run, &w[i])) {
                fprintf(stderr, "memlimit: cannot start thread %" PRIu64 "\n", i);
                return 1;
            }
        }
        for (uint64_t i = 0; i < threads; i++) {
            pthread_join(w[i].thread, NULL);
            if (!w[i].ns) {
                fprintf(stderr, "memlimit: thread %" PRIu64 " could not allocate\n", i);
                return 1;
            }
            rate += (double)w[i].copies * 1e9 / (double)w[i].ns;
        }
        runs[r] = rate;
        fprintf(stderr,
                "memlimit: threads=%" PRIu64 " run %" PRIu64 "/%" PRIu64 ": %.0f copies/s\n",
                threads, r + 1, repeat, rate);
    }

    double sorted[MAX_REPEAT];
    memcpy(sorted, runs, sizeof(double) * repeat);
    qsort(sorted, repeat, sizeof(double), cmp_double);
    printf("{\"threads\": %" PRIu64 ", \"size\": %" PRIu64 ", \"block\": %" PRIu64
           ", \"seconds\": %" PRIu64 ", \"hugepages\": %s, \"copies_per_s\": %.1f, \"runs\": [",
           threads, size, block, seconds, hugepages ? "true" : "false", sorted[repeat / 2]);
    for (uint64_t r = 0; r < repeat; r++)
        printf("%s%.1f", r ? ", " : "", runs[r]);
    printf("]}\n");
    free(src);
    return 0;
}
