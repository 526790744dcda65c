/*
 * The reliability suite: a random read/write/verify workload (4 KiB blocks over 8 MiB, 8 in
 * flight, a fixed number of I/Os) on a whole stack with one fault kind injected — CHECK
 * CONDITION (MEDIUM ERROR on reads, UNIT ATTENTION), BUSY, TASK SET FULL and latency from the
 * faultinject lower filter; dropped commands, failed aborts and resets, and a lost connection
 * from vminiport's hooks, with Services\Disk\TimeOutValue 1 s so Storport's error recovery runs.
 * It checks that no request hangs (a bounded wall time), that every failed request ends with a
 * status a storage caller expects (and only the fault kinds that cannot be retried away fail
 * any), and that afterwards every block holds its last acknowledged write (a block whose write
 * failed may hold that write or the one before). The number of I/Os per kind is
 * STORSTACK_RELIABILITY_IOS (default 1500: a few seconds per kind, the bounded CI variant).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>

#include "integ.h"

#define RL_BLOCK      4096u
#define RL_BLOCKS     2048u /* 8 MiB */
#define RL_DEPTH      8
#define RL_ALTS       4
#define RL_WALL_LIMIT 90.0 /* seconds per kind: past this the run has hung */

struct rl_block {
    uint32_t gen;          /* last acknowledged write (0: never written, zeros) */
    uint32_t alt[RL_ALTS]; /* writes that failed after this one: the block may hold them */
    int alts;
    int busy;
};

struct rl_slot {
    struct rl_run *run;
    int write;
    uint32_t block, gen;
    uint8_t *buf;
};

struct rl_run {
    storstack_handle_t *disk;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct rl_block blocks[RL_BLOCKS];
    int in_flight;
    long reads, writes, read_failures, write_failures, mismatches, bad_statuses;
    storstack_status_t last_bad;
    uint32_t next_gen;
    uint64_t random;
};

static uint64_t rl_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What a failed read or write may end with: the NTSTATUS a class driver reports for a device
 * error, a timeout, or a busy device it could not retry away. */
static int rl_expected_failure(storstack_status_t st)
{
    return st == STATUS_DEVICE_DATA_ERROR || st == STATUS_IO_DEVICE_ERROR ||
           st == STATUS_IO_TIMEOUT || st == STATUS_DEVICE_BUSY || st == STATUS_DEVICE_NOT_READY;
}

/* Whether buf is the content of the block's write gen. */
static int rl_holds(const uint8_t *buf, uint32_t block, uint32_t gen)
{
    static const uint8_t zero[RL_BLOCK];
    if (gen == 0)
        return !memcmp(buf, zero, RL_BLOCK);
    return integ_find_mismatch(buf, (uint64_t)block * RL_BLOCK, RL_BLOCK, gen) < 0;
}

static int rl_matches(const struct rl_block *b, const uint8_t *buf, uint32_t block)
{
    if (rl_holds(buf, block, b->gen))
        return 1;
    for (int i = 0; i < b->alts; i++)
        if (rl_holds(buf, block, b->alt[i]))
            return 1;
    return 0;
}

static void rl_done(void *context, storstack_status_t status, uint64_t information)
{
    struct rl_slot *s = context;
    struct rl_run *r = s->run;
    struct rl_block *b = &r->blocks[s->block];

    pthread_mutex_lock(&r->lock);
    if (status != STATUS_SUCCESS && !rl_expected_failure(status)) {
        r->bad_statuses++;
        r->last_bad = status;
    }
    if (s->write) {
        if (status == STATUS_SUCCESS && information == RL_BLOCK) {
            b->gen = s->gen;
            b->alts = 0;
        } else {
            r->write_failures++;
            if (b->alts == RL_ALTS)
                memmove(b->alt, b->alt + 1, sizeof(b->alt[0]) * (RL_ALTS - 1)), b->alts--;
            b->alt[b->alts++] = s->gen;
        }
    } else if (status == STATUS_SUCCESS) {
        if (information != RL_BLOCK || !rl_matches(b, s->buf, s->block))
            r->mismatches++;
    } else {
        r->read_failures++;
    }
    b->busy = 0;
    s->run = NULL;
    r->in_flight--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Verifies every block at the end, retrying a read the injected faults fail. */
static void rl_verify_all(struct rl_run *r)
{
    uint8_t *buf = integ_alloc(RL_BLOCK, 0);
    for (uint32_t i = 0; i < RL_BLOCKS; i++) {
        storstack_status_t st = STATUS_IO_DEVICE_ERROR;
        uint32_t n = 0;
        for (int tries = 0; tries < 50 && st != STATUS_SUCCESS; tries++)
            st = storstack_read(r->disk, buf, RL_BLOCK, (uint64_t)i * RL_BLOCK, &n);
        assert_status(st, STATUS_SUCCESS);
        assert_int_equal(n, RL_BLOCK);
        if (!rl_matches(&r->blocks[i], buf, i))
            fail_msg("block %u does not hold its last acknowledged write (gen %u, %d failed "
                     "writes after it)",
                     i, r->blocks[i].gen, r->blocks[i].alts);
    }
    integ_free(buf);
}

struct rl_kind {
    const char *name;
    const char *adapter;  /* vminiport Device Parameters lines */
    const char *services; /* extra registry sections */
    int may_fail_reads, may_fail_writes;
    uint32_t events[2]; /* event log entries that prove the fault happened (0: none) */
};

/* Asserts that the adapter's event log holds each expected error code. */
static void rl_check_events(storstack_t *stack, const struct rl_kind *k)
{
    size_t len = sizeof(STORSTACK_EVENTS) + 256 * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS out;
    STORSTACK_GET_EVENTS in = {0};
    storstack_handle_t *adapter;
    uint32_t returned;

    if (!k->events[0])
        return;
    out = calloc(1, len);
    adapter = integ_open(stack, "Scsi0:", INTEG_RW);
    assert_status(storstack_ioctl(adapter, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), out,
                                  (uint32_t)len, &returned),
                  STATUS_SUCCESS);
    for (int e = 0; e < 2 && k->events[e]; e++) {
        int found = 0;
        for (ULONG i = 0; i < out->Count; i++)
            found |= out->Events[i].ErrorCode == k->events[e];
        if (!found) {
            /* what did happen, for the report */
            for (ULONG i = 0; i < out->Count; i++)
                fprintf(stderr, "  event %llu: 0x%04X %s\n",
                        (unsigned long long)out->Events[i].Sequence,
                        (unsigned)out->Events[i].ErrorCode, out->Events[i].Text);
            fail_msg("%s: no event 0x%04X in the event log: the fault never happened", k->name,
                     k->events[e]);
        }
    }
    storstack_close(adapter);
    free(out);
}

static void rl_run_kind(const struct rl_kind *k)
{
    struct rl_run *r = calloc(1, sizeof(*r));
    struct rl_slot slots[RL_DEPTH];
    const char *env = getenv("STORSTACK_RELIABILITY_IOS");
    long ios = env ? atol(env) : 1500, issued = 0;
    char *base = integ_config(k->adapter, "Backend = ram\nSize = 64M\n"), *config = NULL;
    storstack_t *stack;
    double start, took;

    if (asprintf(&config, "%s[Services\\Disk]\nTimeOutValue = dword:1\n%s", base,
                 k->services ? k->services : "") < 0)
        fail_msg("out of memory");
    free(base);
    stack = integ_boot(config);
    free(config);
    r->disk = integ_open(stack, "PhysicalDrive0", INTEG_RW);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->random = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < RL_DEPTH; i++) {
        slots[i].buf = integ_alloc(RL_BLOCK, 0);
        slots[i].run = NULL;
    }
    start = now_seconds();
    pthread_mutex_lock(&r->lock);
    while (issued < ios || r->in_flight) {
        struct timespec until;
        struct rl_slot *s = NULL;
        if (now_seconds() - start > RL_WALL_LIMIT)
            fail_msg("%s: hung: %d requests still in flight after %.0f s", k->name, r->in_flight,
                     RL_WALL_LIMIT);
        for (int i = 0; i < RL_DEPTH && issued < ios && !s; i++)
            if (!slots[i].run)
                s = &slots[i];
        if (!s) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&r->cond, &r->lock, &until);
            continue;
        }
        uint32_t block;
        do
            block = (uint32_t)(rl_next(&r->random) % RL_BLOCKS);
        while (r->blocks[block].busy);
        s->run = r;
        s->block = block;
        s->write = rl_next(&r->random) % 2;
        r->blocks[block].busy = 1;
        r->in_flight++;
        issued++;
        if (s->write) {
            s->gen = ++r->next_gen;
            r->writes++;
        } else {
            r->reads++;
        }
        pthread_mutex_unlock(&r->lock);
        storstack_status_t st;
        if (s->write) {
            integ_fill(s->buf, (uint64_t)block * RL_BLOCK, RL_BLOCK, s->gen);
            st = storstack_write_async(r->disk, s->buf, RL_BLOCK, (uint64_t)block * RL_BLOCK,
                                       rl_done, s);
        } else {
            memset(s->buf, 0xEE, RL_BLOCK);
            st = storstack_read_async(r->disk, s->buf, RL_BLOCK, (uint64_t)block * RL_BLOCK,
                                      rl_done, s);
        }
        if (st != STATUS_PENDING)
            rl_done(s, st, 0); /* not issued: counted as a failure of its kind */
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    took = now_seconds() - start;
    print_message("%-12s %ld I/Os in %.2f s: %ld reads (%ld failed), %ld writes (%ld failed), "
                  "%ld mismatches\n",
                  k->name, issued, took, r->reads, r->read_failures, r->writes, r->write_failures,
                  r->mismatches);
    if (r->bad_statuses)
        fail_msg("%s: %ld requests failed with %s, not a device error, timeout or busy", k->name,
                 r->bad_statuses, storstack_status_name(r->last_bad));
    assert_int_equal(r->mismatches, 0);
    if (!k->may_fail_reads && r->read_failures)
        fail_msg("%s: %ld reads failed; this fault is to be retried away", k->name,
                 r->read_failures);
    if (!k->may_fail_writes && r->write_failures)
        fail_msg("%s: %ld writes failed; this fault is to be retried away", k->name,
                 r->write_failures);
    rl_verify_all(r);
    rl_check_events(stack, k);
    for (int i = 0; i < RL_DEPTH; i++)
        integ_free(slots[i].buf);
    storstack_close(r->disk);
    storstack_destroy(stack);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

#define FI_CLASS                                                                                   \
    "[Control\\Class\\{4d36e967-e325-11ce-bfc1-08002be10318}]\n"                                   \
    "LowerFilters = multi:faultinject\n"                                                           \
    "[Services\\faultinject\\Parameters]\n"

static const struct rl_kind kinds[] = {
    {"none", NULL, NULL, 0, 0},
    {"medium-error", NULL,
     FI_CLASS "Kind = check\nSense = 3/11/00\nOperations = read\nRate = 300\n", 1, 0},
    {"unit-attn", NULL, FI_CLASS "Kind = check\nSense = 6/29/00\nRate = 300\n", 0, 0},
    {"busy", NULL, FI_CLASS "Kind = busy\nRate = 500\n", 0, 0},
    {"queue-full", NULL, FI_CLASS "Kind = queuefull\nRate = 500\n", 0, 0},
    {"latency", NULL, FI_CLASS "Kind = latency\nLatencyMs = 5\nRate = 1000\n", 0, 0},
    {"dropped", "FaultDropRate = 10\n", NULL, 0, 0, {SP_REQUEST_TIMEOUT, STORP_EVENT_ABORT}},
    {"failed-reset",
     "FaultDropNth = 300\nFaultFailResets = 3\n",
     NULL,
     0,
     0,
     /* one timed-out request: abort, LUN and target reset fail, the bus reset recovers; under
      * heavy load a second request may time out too and use up a failure on its abort, so the
      * proof is the escalation through the LUN to the target reset, not the bus reset */
     {STORP_EVENT_LUN_RESET, STORP_EVENT_TARGET_RESET}},
    {"lost-conn",
     "FaultDisconnectNth = 400\nFaultDisconnectMs = 1500\n",
     NULL,
     0,
     0,
     {SP_UNEXPECTED_DISCONNECT, SP_REQUEST_TIMEOUT}},
};

#define RL_TEST(i)                                                                                 \
    static void test_reliability_##i(void **state)                                                 \
    {                                                                                              \
        rl_run_kind(&kinds[i]);                                                                    \
    }
RL_TEST(0)
RL_TEST(1)
RL_TEST(2)
RL_TEST(3)
RL_TEST(4)
RL_TEST(5)
RL_TEST(6)
RL_TEST(7)
RL_TEST(8)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reliability_0), cmocka_unit_test(test_reliability_1),
        cmocka_unit_test(test_reliability_2), cmocka_unit_test(test_reliability_3),
        cmocka_unit_test(test_reliability_4), cmocka_unit_test(test_reliability_5),
        cmocka_unit_test(test_reliability_6), cmocka_unit_test(test_reliability_7),
        cmocka_unit_test(test_reliability_8),
    };
    /* one kind by name: test_reliability KIND */
    if (argc > 1) {
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (!strcmp(argv[1], kinds[i].name)) {
                const struct CMUnitTest one[] = {tests[i]};
                return cmocka_run_group_tests_name(kinds[i].name, one, NULL, NULL);
            }
        fprintf(stderr, "unknown fault kind '%s'\n", argv[1]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
