/*
 * `storstack bench DEVICE`: measures a device through the user API the way fio's async engines
 * do. Each of --threads workers keeps --qd requests in flight with storstack_read_async /
 * storstack_write_async on buffers allocated once. A completion may run inside the submit call
 * (a local stack completing inline) or on another thread (a DPC worker, the remote client's
 * receiver), so submission never recurses: a completion bumps the worker's atomic `kick` counter
 * and only the caller that raised it from zero runs the submit loop, re-running it while kicks
 * arrived meanwhile (a trampoline). Latency is taken per I/O with CLOCK_MONOTONIC into a
 * log-linear histogram (64 linear buckets per power of two, fixed size), so nothing is allocated
 * per I/O. Offsets are block-aligned: random from a per-worker xorshift64, or sequential per
 * worker over its own slice of --size. With --prefill, the tested range is first written with
 * random data (1 MiB writes, 8 in flight, not timed), so that reads of a sparse RAM disk copy
 * real data instead of returning zeros for blocks never written.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntdddisk.h>

#include "tools/cli.h"

/* ---- histogram ---- */

#define HIST_SHIFT 6 /* log2(CLI_HIST_SUB) */

static unsigned hist_index(uint64_t v)
{
    if (v < CLI_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= HIST_SHIFT */
    unsigned sub = (unsigned)(v >> (e - HIST_SHIFT)) - CLI_HIST_SUB;
    return (e - HIST_SHIFT + 1) * CLI_HIST_SUB + sub;
}

static uint64_t hist_upper(unsigned index)
{
    if (index < CLI_HIST_SUB)
        return index;
    unsigned e = index / CLI_HIST_SUB + HIST_SHIFT - 1, sub = index % CLI_HIST_SUB;
    uint64_t width = (uint64_t)1 << (e - HIST_SHIFT);
    return ((uint64_t)(CLI_HIST_SUB + sub) << (e - HIST_SHIFT)) + width - 1;
}

void cli_hist_add(struct cli_hist *h, uint64_t ns)
{
    h->buckets[hist_index(ns)]++;
    h->count++;
}

void cli_hist_merge(struct cli_hist *into, const struct cli_hist *from)
{
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
}

uint64_t cli_hist_quantile(const struct cli_hist *h, double q)
{
    uint64_t rank, seen = 0;
    if (!h->count)
        return 0;
    rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank)
            return hist_upper(i);
    }
    return hist_upper(CLI_HIST_BUCKETS - 1);
}

/* ---- workers ---- */

struct bench_worker;

struct bench_slot {
    struct bench_worker *w;
    struct bench_slot *next;
    uint8_t *buf;
    uint64_t start_ns;         /* bench_stamp() at submission (TSC ticks or ns) */
    uint64_t lat_ns;           /* set by the completion */
    storstack_status_t status; /* set by the completion; STATUS_DATA_OVERRUN for a short one */
};

/*
 * One submitting worker. Everything but the atomics belongs to whoever holds `kick` (the
 * trampoline): the free list, the random state, the histogram and the counters. Completions, on
 * any thread, only stamp their slot and push it on `done` (a lock-free list that only the holder
 * empties, all at once, so there is no ABA); the holder accounts for them as it takes them back.
 */
struct bench_worker {
    storstack_handle_t *h;
    int write, random;
    uint32_t bs;
    uint64_t blocks, seq_first, seq_next, seq_end, rng;
    atomic_int stop;
    atomic_int inflight;
    atomic_int kick;
    _Atomic(struct bench_slot *) done;
    struct bench_slot *free_slots;
    struct bench_slot *slots;
    struct cli_hist hist;
    uint64_t ios, errors;
    storstack_status_t first_error;
    uint64_t tsc_mult; /* nanoseconds per TSC tick << 32; 0: stamps are CLOCK_MONOTONIC ns */
    pthread_t thread;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Per-I/O time stamps: the invariant TSC where the CPU has one (as fio's default clocksource
 * does), calibrated against CLOCK_MONOTONIC before the run; otherwise CLOCK_MONOTONIC. Two
 * clock_gettime calls per I/O would cost more than some whole stacks measured here.
 */
static uint64_t bench_tsc_calibrate(void)
{
#if defined(__x86_64__)
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    char line[4096];
    bool constant = false, nonstop = false;
    while (cpuinfo && fgets(line, sizeof(line), cpuinfo) && !(constant && nonstop)) {
        if (!strncmp(line, "flags", 5)) {
            constant = strstr(line, " constant_tsc") != NULL;
            nonstop = strstr(line, " nonstop_tsc") != NULL;
        }
    }
    if (cpuinfo)
        fclose(cpuinfo);
    if (!constant || !nonstop)
        return 0;
    uint64_t t0 = now_ns(), c0 = __rdtsc();
    usleep(20000);
    uint64_t t1 = now_ns(), c1 = __rdtsc();
    if (c1 <= c0 || t1 <= t0)
        return 0;
    return (uint64_t)((((unsigned __int128)(t1 - t0)) << 32) / (c1 - c0));
#else
    return 0;
#endif
}

static inline uint64_t bench_stamp(const struct bench_worker *w)
{
#if defined(__x86_64__)
    if (w->tsc_mult)
        return __rdtsc();
#endif
    return now_ns();
}

static inline uint64_t bench_elapsed_ns(const struct bench_worker *w, uint64_t start, uint64_t end)
{
    if (!w->tsc_mult)
        return end - start;
    return (uint64_t)(((unsigned __int128)(end - start) * w->tsc_mult) >> 32);
}

static uint64_t bench_next_offset(struct bench_worker *w)
{
    if (w->random) {
        uint64_t x = w->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->rng = x;
        /* x * blocks / 2^64: uniform over the blocks without a division */
        return (uint64_t)(((unsigned __int128)x * w->blocks) >> 64) * w->bs;
    }
    uint64_t off = w->seq_next;
    w->seq_next += w->bs;
    if (w->seq_next + w->bs > w->seq_end)
        w->seq_next = w->seq_first;
    return off;
}

static void bench_count(struct bench_worker *w, storstack_status_t status)
{
    if (!w->errors++)
        w->first_error = status;
}

/* The holder takes back every completed slot: histogram and counters, then the free list. */
static void bench_reap(struct bench_worker *w)
{
    struct bench_slot *s = atomic_exchange_explicit(&w->done, NULL, memory_order_acquire);
    while (s) {
        struct bench_slot *next = s->next;
        if (NT_SUCCESS(s->status)) {
            cli_hist_add(&w->hist, s->lat_ns);
            w->ios++;
        } else {
            bench_count(w, s->status);
        }
        s->next = w->free_slots;
        w->free_slots = s;
        s = next;
    }
}

static void bench_submit_loop(struct bench_worker *w);

/*
 * Completion of one request, in whatever thread completed it (possibly inside the submit call).
 * The in-flight count drops last: main frees the worker once it reads zero, so nothing here
 * touches the worker after that.
 */
static void bench_done(void *context, storstack_status_t status, uint64_t information)
{
    struct bench_slot *s = context;
    struct bench_worker *w = s->w;

    s->lat_ns = bench_elapsed_ns(w, s->start_ns, bench_stamp(w));
    s->status = NT_SUCCESS(status) && information != w->bs ? STATUS_DATA_OVERRUN : status;
    struct bench_slot *head = atomic_load_explicit(&w->done, memory_order_relaxed);
    do {
        s->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->done, &head, s, memory_order_release,
                                                    memory_order_relaxed));
    /* refill first: our own in-flight count keeps the worker alive until the very end */
    bench_submit_loop(w);
    atomic_fetch_sub_explicit(&w->inflight, 1, memory_order_release);
}

/* The trampoline: whoever raises kick from 0 submits; others just leave a kick behind. */
static void bench_submit_loop(struct bench_worker *w)
{
    if (atomic_fetch_add(&w->kick, 1) != 0)
        return;
    do {
        while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
            if (!w->free_slots)
                bench_reap(w);
            struct bench_slot *s = w->free_slots;
            if (!s)
                break;
            w->free_slots = s->next;
            uint64_t off = bench_next_offset(w);
            atomic_fetch_add_explicit(&w->inflight, 1, memory_order_relaxed);
            s->start_ns = bench_stamp(w);
            storstack_status_t st =
                w->write ? storstack_write_async(w->h, s->buf, w->bs, off, bench_done, s)
                         : storstack_read_async(w->h, s->buf, w->bs, off, bench_done, s);
            if (st != STATUS_PENDING) {
                /* not issued: count it, stop this worker (errors would spin) */
                bench_count(w, st);
                s->next = w->free_slots;
                w->free_slots = s;
                atomic_store(&w->stop, 1);
                atomic_fetch_sub_explicit(&w->inflight, 1, memory_order_relaxed);
                break;
            }
        }
    } while (atomic_fetch_sub(&w->kick, 1) != 1);
}

static void *bench_thread(void *arg)
{
    bench_submit_loop(arg);
    return NULL;
}

/* ---- prefill ---- */

#define PREFILL_CHUNK (1u << 20)
#define PREFILL_DEPTH 8

struct prefill;

struct prefill_slot {
    struct prefill *p;
    uint8_t *buf;
    uint32_t length;
    int busy;
};

struct prefill {
    pthread_mutex_t lock; /* everything below (completions race with the submitter) */
    pthread_cond_t changed;
    unsigned inflight;
    uint64_t errors;
    storstack_status_t first_error;
    struct prefill_slot slots[PREFILL_DEPTH];
};

static void prefill_done(void *context, storstack_status_t status, uint64_t information)
{
    struct prefill_slot *s = context;
    struct prefill *p = s->p;

    pthread_mutex_lock(&p->lock);
    if ((!NT_SUCCESS(status) || information != s->length) && !p->errors++)
        p->first_error = NT_SUCCESS(status) ? STATUS_DATA_OVERRUN : status;
    s->busy = 0;
    p->inflight--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* xorshift64* keyed by the run's seed and the chunk's offset: incompressible, never all zeros. */
static void prefill_fill(uint8_t *buf, uint32_t length, uint64_t seed, uint64_t offset)
{
    uint64_t x = (seed ^ (offset * 0x9E3779B97F4A7C15ull)) | 1;
    for (uint32_t i = 0; i + 8 <= length; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545F4914F6CDD1Dull;
        memcpy(buf + i, &v, 8);
    }
}

/*
 * Writes [0, length) of the device sequentially with random data, PREFILL_DEPTH requests of
 * PREFILL_CHUNK bytes in flight, and waits for all of them. Returns CLI_EXIT_OK or reports the
 * first error and returns CLI_EXIT_FAILURE.
 */
static int bench_prefill(storstack_handle_t *h, uint64_t length)
{
    struct prefill p = {0};
    uint64_t seed = now_ns(), off = 0;
    int rc = CLI_EXIT_OK;

    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.changed, NULL);
    for (unsigned i = 0; i < PREFILL_DEPTH; i++) {
        p.slots[i].p = &p;
        if (posix_memalign((void **)&p.slots[i].buf, 4096, PREFILL_CHUNK)) {
            p.slots[i].buf = NULL;
            rc = cli_fail("bench", "out of memory for prefill buffers");
        }
    }
    while (rc == CLI_EXIT_OK && off < length) {
        struct prefill_slot *s = NULL;
        pthread_mutex_lock(&p.lock);
        while (p.inflight == PREFILL_DEPTH)
            pthread_cond_wait(&p.changed, &p.lock);
        if (p.errors) {
            pthread_mutex_unlock(&p.lock);
            break;
        }
        for (unsigned i = 0; !s && i < PREFILL_DEPTH; i++)
            if (!p.slots[i].busy)
                s = &p.slots[i];
        s->busy = 1;
        p.inflight++;
        pthread_mutex_unlock(&p.lock);

        s->length = length - off < PREFILL_CHUNK ? (uint32_t)(length - off) : PREFILL_CHUNK;
        prefill_fill(s->buf, s->length, seed, off);
        storstack_status_t st = storstack_write_async(h, s->buf, s->length, off, prefill_done, s);
        if (st != STATUS_PENDING) {
            pthread_mutex_lock(&p.lock);
            if (!p.errors++)
                p.first_error = st;
            s->busy = 0;
            p.inflight--;
            pthread_mutex_unlock(&p.lock);
            break;
        }
        off += s->length;
    }
    pthread_mutex_lock(&p.lock);
    while (p.inflight)
        pthread_cond_wait(&p.changed, &p.lock);
    pthread_mutex_unlock(&p.lock);
    if (p.errors)
        rc = cli_fail("bench", "prefill: %" PRIu64 " write errors, first %s", p.errors,
                      storstack_status_name(p.first_error));
    for (unsigned i = 0; i < PREFILL_DEPTH; i++)
        free(p.slots[i].buf);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.changed);
    return rc;
}

static void bench_usage(FILE *out)
{
    fputs("usage: storstack bench DEVICE --rw randread|randwrite|read|write [--bs N] [--qd N]\n"
          "                       [--seconds N] [--threads N] [--size N] [--prefill] [--json]\n"
          "  --bs N        block size (default 4K), a multiple of 512\n"
          "  --qd N        requests in flight per thread (default 32)\n"
          "  --seconds N   run time (default 10)\n"
          "  --threads N   submitting threads (default 1)\n"
          "  --size N      bytes of the device to use (default: its length)\n"
          "  --prefill     first write the range with random data (1M writes, 8 in flight,\n"
          "                not timed), so reads copy data instead of finding unwritten blocks\n"
          "  --json        machine-readable output\n"
          "  --config FILE, --server PATH   which stack (see storstack --help)\n",
          out);
}

int cli_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rw", required_argument, NULL, 'r'},      {"bs", required_argument, NULL, 'b'},
        {"qd", required_argument, NULL, 'q'},      {"seconds", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'}, {"size", required_argument, NULL, 'S'},
        {"prefill", no_argument, NULL, 'p'},       {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},  {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    const char *rw = NULL;
    uint64_t bs = 4096, qd = 32, seconds = 10, threads = 1, size = 0;
    int c, prefill = 0;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rw = optarg;
            if (strcmp(rw, "randread") && strcmp(rw, "randwrite") && strcmp(rw, "read") &&
                strcmp(rw, "write"))
                return cli_usage_error("bench",
                                       "--rw: expected randread, randwrite, read or write, "
                                       "got '%s'",
                                       optarg);
            break;
        case 'b':
            if (cli_parse_size(optarg, &bs) || bs == 0 || bs % 512 || bs > (64u << 20))
                return cli_usage_error("bench", "--bs: a multiple of 512 up to 64M: '%s'", optarg);
            break;
        case 'q':
            if (cli_parse_uint(optarg, 1, 4096, &qd))
                return cli_usage_error("bench", "--qd: 1..4096: '%s'", optarg);
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, 86400, &seconds))
                return cli_usage_error("bench", "--seconds: 1..86400: '%s'", optarg);
            break;
        case 'T':
            if (cli_parse_uint(optarg, 1, 256, &threads))
                return cli_usage_error("bench", "--threads: 1..256: '%s'", optarg);
            break;
        case 'S':
            if (cli_parse_size(optarg, &size) || size == 0)
                return cli_usage_error("bench", "--size: not a size above 0: '%s'", optarg);
            break;
        case 'p':
            prefill = 1;
            break;
        case 'h':
            bench_usage(stdout);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, optarg, &common))
                break;
            return cli_usage_error("bench", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("bench", "missing DEVICE");
    if (argc - optind > 1)
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind + 1]);
    if (!rw)
        return cli_usage_error("bench", "--rw: required");
    if (size && size < bs * threads)
        return cli_usage_error("bench", "--size: smaller than --bs times --threads");
    const char *device = argv[optind];
    int write = strstr(rw, "write") != NULL, random = !strncmp(rw, "rand", 4);

    storstack_t *stack = cli_open_stack("bench", &common);
    if (!stack)
        return CLI_EXIT_FAILURE;
    storstack_handle_t *h = NULL;
    storstack_status_t st = storstack_open(
        stack, device, STORSTACK_GENERIC_READ | (write || prefill ? STORSTACK_GENERIC_WRITE : 0),
        &h);
    if (!NT_SUCCESS(st)) {
        storstack_destroy(stack);
        return cli_fail("bench", "cannot open %s: %s", device, storstack_status_name(st));
    }
    if (!size) {
        GET_LENGTH_INFORMATION len = {0};
        uint32_t ret = 0;
        st = storstack_ioctl(h, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &len, sizeof(len), &ret);
        if (!NT_SUCCESS(st) || ret < sizeof(len) || len.Length.QuadPart <= 0) {
            storstack_close(h);
            storstack_destroy(stack);
            return cli_fail("bench", "cannot learn the length of %s (%s); give --size", device,
                            storstack_status_name(st));
        }
        size = (uint64_t)len.Length.QuadPart;
        if (size < bs * threads) {
            storstack_close(h);
            storstack_destroy(stack);
            return cli_fail("bench", "%s is smaller than --bs times --threads", device);
        }
    }

    /* the range the workers touch: whole blocks of --bs */
    if (prefill && bench_prefill(h, size / bs * bs) != CLI_EXIT_OK) {
        storstack_close(h);
        storstack_destroy(stack);
        return CLI_EXIT_FAILURE;
    }

    struct bench_worker *w = calloc(threads, sizeof(*w));
    uint64_t tsc_mult = bench_tsc_calibrate();
    int rc = CLI_EXIT_OK;
    for (uint64_t i = 0; i < threads && w; i++) {
        struct bench_worker *k = &w[i];
        uint64_t slice = size / threads / bs * bs;
        /* Worker 0 uses the handle already open; the others open their own, as fio's jobs each
         * open the file: a handle's list of outstanding IRPs (for cancel) is then not shared. */
        k->h = h;
        if (i > 0) {
            st = storstack_open(
                stack, device,
                STORSTACK_GENERIC_READ | (write || prefill ? STORSTACK_GENERIC_WRITE : 0), &k->h);
            if (!NT_SUCCESS(st)) {
                k->h = NULL;
                rc = cli_fail("bench", "cannot open %s for thread %" PRIu64 ": %s", device, i + 1,
                              storstack_status_name(st));
                break;
            }
        }
        k->write = write;
        k->random = random;
        k->bs = (uint32_t)bs;
        k->tsc_mult = tsc_mult;
        k->blocks = size / bs;
        k->seq_first = k->seq_next = i * slice;
        k->seq_end = k->seq_first + slice;
        k->rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ (uint64_t)now_ns();
        k->slots = calloc(qd, sizeof(*k->slots));
        for (uint64_t j = 0; k->slots && j < qd; j++) {
            struct bench_slot *s = &k->slots[j];
            s->w = k;
            if (posix_memalign((void **)&s->buf, 4096, bs)) {
                rc = cli_fail("bench", "out of memory for buffers");
                break;
            }
            memset(s->buf, (int)(0xA5 ^ j), bs);
            s->next = k->free_slots;
            k->free_slots = s;
        }
        if (!k->slots)
            rc = cli_fail("bench", "out of memory");
    }
    if (!w)
        rc = cli_fail("bench", "out of memory");

    uint64_t t0 = now_ns(), t1 = t0;
    if (rc == CLI_EXIT_OK) {
        /* with a stack that completes inline, a worker's first submit loop runs until stop */
        for (uint64_t i = 0; i < threads; i++)
            pthread_create(&w[i].thread, NULL, bench_thread, &w[i]);
        /* run, then stop every worker and wait for its requests to drain */
        uint64_t end = t0 + seconds * 1000000000ull;
        while (now_ns() < end) {
            int all_stopped = 1;
            for (uint64_t i = 0; i < threads; i++)
                all_stopped &= atomic_load(&w[i].stop);
            if (all_stopped)
                break;
            usleep(10000);
        }
        for (uint64_t i = 0; i < threads; i++)
            atomic_store(&w[i].stop, 1);
        for (uint64_t i = 0; i < threads; i++)
            pthread_join(w[i].thread, NULL);
        /* the last completions may run on other threads: they touch nothing after their
         * in-flight decrement, so polling it is enough */
        for (uint64_t i = 0; i < threads; i++) {
            while (atomic_load_explicit(&w[i].inflight, memory_order_acquire))
                usleep(100);
            bench_reap(&w[i]);
        }
        t1 = now_ns();

        static struct cli_hist all;
        uint64_t ios = 0, errors = 0;
        storstack_status_t first_error = 0;
        memset(&all, 0, sizeof(all));
        for (uint64_t i = 0; i < threads; i++) {
            cli_hist_merge(&all, &w[i].hist);
            ios += w[i].ios;
            if (w[i].errors && !errors)
                first_error = w[i].first_error;
            errors += w[i].errors;
        }
        double secs = (double)(t1 - t0) / 1e9;
        double iops = ios / secs, mibs = iops * (double)bs / (1024.0 * 1024.0);
        double p50 = cli_hist_quantile(&all, 0.50) / 1e3, p99 = cli_hist_quantile(&all, 0.99) / 1e3,
               p999 = cli_hist_quantile(&all, 0.999) / 1e3;
        if (common.json) {
            printf("{\"device\": ");
            cli_json_write_string(stdout, device);
            printf(", \"rw\": \"%s\", \"bs\": %" PRIu64 ", \"qd\": %" PRIu64
                   ", \"threads\": %" PRIu64
                   ", \"prefill\": %s, \"seconds\": %.3f, \"remote\": %s, "
                   "\"ios\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"iops\": %.1f, "
                   "\"mib_per_s\": %.2f, \"lat_us\": {\"p50\": %.2f, \"p99\": %.2f, "
                   "\"p99.9\": %.2f}}\n",
                   rw, bs, qd, threads, prefill ? "true" : "false", secs,
                   storstack_is_remote(stack) ? "true" : "false", ios, errors, iops, mibs, p50, p99,
                   p999);
        } else {
            printf("%s %s bs=%" PRIu64 " qd=%" PRIu64 " threads=%" PRIu64 "%s (%s stack), %.1f s\n",
                   device, rw, bs, qd, threads, prefill ? " prefilled" : "",
                   storstack_is_remote(stack) ? "remote" : "local", secs);
            printf("  IOPS     %.0f\n  MiB/s    %.1f\n", iops, mibs);
            printf("  latency  p50 %.1f us   p99 %.1f us   p99.9 %.1f us\n", p50, p99, p999);
            if (errors)
                printf("  errors   %" PRIu64 " (first: %s)\n", errors,
                       storstack_status_name(first_error));
        }
        if (errors)
            rc = cli_fail("bench", "%" PRIu64 " I/O errors, first %s", errors,
                          storstack_status_name(first_error));
    }
    for (uint64_t i = 0; w && i < threads; i++) {
        for (uint64_t j = 0; w[i].slots && j < qd; j++)
            free(w[i].slots[j].buf);
        free(w[i].slots);
        if (i > 0 && w[i].h)
            storstack_close(w[i].h);
    }
    free(w);
    storstack_close(h);
    storstack_destroy(stack);
    return rc;
}
