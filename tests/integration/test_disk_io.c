/*
 * Data integrity through the whole disk stack (PhysicalDrive0 → disk class driver → Storport →
 * vminiport → SBC device → RAM backend): patterns in which every 512-byte piece carries its
 * sector number and a seed are written and read back in many sizes (one block, odd block
 * counts, 4K, 64K+512, exactly the adapter's MaximumTransferLength and multiples that the class
 * driver must split, 4 MiB) at offsets across the disk (start, middle, last blocks, ending
 * exactly at capacity), synchronously and with 32 overlapped requests in flight; a whole 64 MiB
 * disk is written and verified; unaligned offsets and lengths and transfers past the capacity
 * fail with STATUS_INVALID_PARAMETER; a 4096-byte-block disk works the same; never-written
 * ranges read as zeros; and a handle opened for reading only cannot write.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"

#define DEFAULT_CAPACITY (1024ull * MIB) /* the built-in default RAM disk */
#define MAX_TRANSFER     (256u * KIB)    /* vminiport's default MaximumTransferLength */

struct disk_fixture {
    storstack_t *stack;
    storstack_handle_t *h;
    uint64_t capacity;
};

static int setup_default(void **state)
{
    struct disk_fixture *f = calloc(1, sizeof(*f));
    f->stack = integ_boot(NULL);
    f->h = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->capacity = DEFAULT_CAPACITY;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct disk_fixture *f = *state;
    if (f->h)
        storstack_close(f->h);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

static const uint32_t sizes[] = {
    512,
    3 * 512,
    17 * 512,
    4 * KIB,
    64 * KIB + 512,
    MAX_TRANSFER,
    3 * MAX_TRANSFER,
    7 * MAX_TRANSFER + MAX_TRANSFER / 2,
    4 * MIB,
};

static void test_write_read_pattern_of_every_size_at_offsets_across_the_disk(void **state)
{
    struct disk_fixture *f = *state;
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint32_t len = sizes[i];
        const uint64_t offsets[] = {
            0,
            512,
            7 * 512,
            f->capacity / 2 - 512,
            f->capacity / 2 + 4096,
            f->capacity - len,       /* ending exactly at capacity */
            f->capacity - len - 512, /* the last blocks but one */
        };
        for (size_t j = 0; j < sizeof(offsets) / sizeof(offsets[0]); j++) {
            integ_write_pattern(f->h, offsets[j], len, seed);
            integ_verify_pattern(f->h, offsets[j], len, seed);
            seed++;
        }
    }
}

static void test_last_block_and_first_block_are_independent(void **state)
{
    struct disk_fixture *f = *state;
    integ_write_pattern(f->h, 0, 512, 77);
    integ_write_pattern(f->h, f->capacity - 512, 512, 78);
    integ_verify_pattern(f->h, 0, 512, 77);
    integ_verify_pattern(f->h, f->capacity - 512, 512, 78);
}

static void test_unaligned_buffer_addresses_transfer_correctly(void **state)
{
    struct disk_fixture *f = *state;
    const size_t misaligns[] = {1, 8, 511, 513, 4095};
    for (size_t i = 0; i < sizeof(misaligns) / sizeof(misaligns[0]); i++) {
        uint32_t len = 64 * KIB + 512, n = 0;
        uint64_t off = 3 * MIB + i * 128 * KIB;
        uint8_t *buf = integ_alloc(len, misaligns[i]);
        integ_fill(buf, off, len, 900 + i);
        assert_status(storstack_write(f->h, buf, len, off, &n), STATUS_SUCCESS);
        memset(buf, 0, len);
        assert_status(storstack_read(f->h, buf, len, off, &n), STATUS_SUCCESS);
        assert_int_equal(n, len);
        assert_int_equal(integ_find_mismatch(buf, off, len, 900 + i), -1);
        integ_free(buf);
    }
}

static void test_overwrite_replaces_only_the_written_blocks(void **state)
{
    struct disk_fixture *f = *state;
    uint64_t base = 10 * MIB;
    integ_write_pattern(f->h, base, 64 * KIB, 5);
    integ_write_pattern(f->h, base + 4096 + 512, 3 * 512, 6);
    integ_verify_pattern(f->h, base, 4096 + 512, 5);
    integ_verify_pattern(f->h, base + 4096 + 512, 3 * 512, 6);
    integ_verify_pattern(f->h, base + 4096 + 4 * 512, 64 * KIB - 4096 - 4 * 512, 5);
}

static void test_never_written_ranges_read_as_zeros(void **state)
{
    struct disk_fixture *f = *state;
    uint32_t len = 1 * MIB, n = 0;
    uint8_t *buf = integ_alloc(len, 0);
    const uint64_t offsets[] = {100 * MIB, f->capacity - len, f->capacity / 3 & ~511ull};
    for (size_t i = 0; i < 3; i++) {
        memset(buf, 0xA5, len);
        assert_status(storstack_read(f->h, buf, len, offsets[i], &n), STATUS_SUCCESS);
        assert_int_equal(n, len);
        for (uint32_t k = 0; k < len; k++)
            if (buf[k])
                fail_msg("byte %u of a never-written range at %llu is %02X", k,
                         (unsigned long long)offsets[i], buf[k]);
    }
    integ_free(buf);
}

static void test_unaligned_offset_or_length_is_invalid_parameter(void **state)
{
    struct disk_fixture *f = *state;
    uint8_t *buf = integ_alloc(8192, 0);
    uint32_t n = 77;
    memset(buf, 0, 8192);
    assert_status(storstack_read(f->h, buf, 512, 1, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 511, 0, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 513, 0, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_write(f->h, buf, 512, 256, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_write(f->h, buf, 1000, 4096, &n), STATUS_INVALID_PARAMETER);
    assert_int_equal(n, 0);
    integ_free(buf);
}

static void test_transfer_past_capacity_is_invalid_parameter(void **state)
{
    struct disk_fixture *f = *state;
    uint8_t *buf = integ_alloc(8192, 0);
    uint32_t n = 0;
    memset(buf, 0, 8192);
    assert_status(storstack_read(f->h, buf, 512, f->capacity, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 1024, f->capacity - 512, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_write(f->h, buf, 8192, f->capacity - 4096, &n),
                  STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 512, f->capacity * 4, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 512, (uint64_t)INT64_MAX - 511, &n),
                  STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 512, UINT64_MAX - 511, &n), STATUS_INVALID_PARAMETER);
    /* the last block itself is fine */
    assert_status(storstack_read(f->h, buf, 512, f->capacity - 512, &n), STATUS_SUCCESS);
    integ_free(buf);
}

static void test_zero_length_transfer_succeeds_with_nothing_moved(void **state)
{
    struct disk_fixture *f = *state;
    uint8_t b[512];
    uint32_t n = 99;
    assert_status(storstack_read(f->h, b, 0, 0, &n), STATUS_SUCCESS);
    assert_int_equal(n, 0);
}

static void test_read_only_handle_gets_access_denied_on_write(void **state)
{
    struct disk_fixture *f = *state;
    storstack_handle_t *ro = integ_open(f->stack, "PhysicalDrive0", STORSTACK_GENERIC_READ);
    uint8_t *buf = integ_alloc(4096, 0);
    uint32_t n = 0;
    integ_write_pattern(f->h, 20 * MIB, 4096, 31);
    integ_fill(buf, 20 * MIB, 4096, 32);
    assert_status(storstack_write(ro, buf, 4096, 20 * MIB, &n), STATUS_ACCESS_DENIED);
    assert_status(storstack_flush(ro), STATUS_ACCESS_DENIED);
    assert_status(storstack_read(ro, buf, 4096, 20 * MIB, &n), STATUS_SUCCESS);
    assert_int_equal(integ_find_mismatch(buf, 20 * MIB, 4096, 31), -1);
    storstack_close(ro);

    storstack_handle_t *wo = integ_open(f->stack, "PhysicalDrive0", STORSTACK_GENERIC_WRITE);
    assert_status(storstack_read(wo, buf, 4096, 20 * MIB, &n), STATUS_ACCESS_DENIED);
    storstack_close(wo);
    integ_free(buf);
}

/* ---- 32 overlapped requests in flight ---------------------------------------------------- */

#define ASYNC_DEPTH 32

struct async_slot {
    uint8_t *buf;
    uint64_t offset;
    uint32_t length;
    uint64_t seed;
    int busy;
    storstack_status_t status;
    uint64_t information;
};

struct async_run {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct async_slot slots[ASYNC_DEPTH];
    int in_flight, max_in_flight, callbacks;
    char error[256];
};

struct async_ctx {
    struct async_run *run;
    int slot;
};

static void async_done(void *context, storstack_status_t status, uint64_t information)
{
    struct async_ctx *c = context;
    struct async_run *r = c->run;
    pthread_mutex_lock(&r->lock);
    r->slots[c->slot].status = status;
    r->slots[c->slot].information = information;
    r->slots[c->slot].busy = 0;
    r->in_flight--;
    r->callbacks++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Finishes a slot: checks its status (and data, for reads). Lock held. */
static void async_check(struct async_run *r, struct async_slot *s, int write)
{
    if (!s->buf)
        return;
    if (s->status != STATUS_SUCCESS || s->information != s->length) {
        if (!r->error[0])
            snprintf(r->error, sizeof(r->error), "%s of %u at %llu: %s, %llu bytes",
                     write ? "write" : "read", s->length, (unsigned long long)s->offset,
                     storstack_status_name(s->status), (unsigned long long)s->information);
    } else if (!write && integ_find_mismatch(s->buf, s->offset, s->length, s->seed) >= 0) {
        if (!r->error[0])
            snprintf(r->error, sizeof(r->error), "read of %u at %llu: data mismatch", s->length,
                     (unsigned long long)s->offset);
    }
    integ_free(s->buf);
    s->buf = NULL;
}

/* Runs `count` requests, 32 at a time, each in its own 64K-aligned region: request k covers
 * region k from its start, with a length from 512 to 64K. */
static void async_pass(storstack_handle_t *h, int write, int count, uint64_t base)
{
    struct async_run *r = calloc(1, sizeof(*r));
    struct async_ctx ctx[ASYNC_DEPTH];
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    for (int k = 0; k < count; k++) {
        int slot = -1;
        pthread_mutex_lock(&r->lock);
        for (;;) {
            for (int i = 0; i < ASYNC_DEPTH && slot < 0; i++)
                if (!r->slots[i].busy)
                    slot = i;
            if (slot >= 0)
                break;
            pthread_cond_wait(&r->cond, &r->lock);
        }
        struct async_slot *s = &r->slots[slot];
        async_check(r, s, write);
        s->length = 512u * (1u + (uint32_t)(k * 37) % 128u);
        s->offset = base + (uint64_t)k * 64 * KIB;
        s->seed = 5000 + (uint64_t)k;
        s->buf = integ_alloc(s->length, (size_t)(k % 3) * 512);
        if (write)
            integ_fill(s->buf, s->offset, s->length, s->seed);
        else
            memset(s->buf, 0, s->length);
        s->busy = 1;
        r->in_flight++;
        if (r->in_flight > r->max_in_flight)
            r->max_in_flight = r->in_flight;
        pthread_mutex_unlock(&r->lock);
        ctx[slot].run = r;
        ctx[slot].slot = slot;
        storstack_status_t st =
            write ? storstack_write_async(h, s->buf, s->length, s->offset, async_done, &ctx[slot])
                  : storstack_read_async(h, s->buf, s->length, s->offset, async_done, &ctx[slot]);
        if (st != STATUS_PENDING)
            fail_msg("overlapped %s not issued: %s", write ? "write" : "read",
                     storstack_status_name(st));
    }
    pthread_mutex_lock(&r->lock);
    while (r->in_flight)
        pthread_cond_wait(&r->cond, &r->lock);
    for (int i = 0; i < ASYNC_DEPTH; i++)
        async_check(r, &r->slots[i], write);
    pthread_mutex_unlock(&r->lock);
    if (r->callbacks != count)
        fail_msg("%d callbacks for %d requests", r->callbacks, count);
    if (r->error[0])
        fail_msg("%s", r->error);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

static void test_async_writes_and_reads_with_32_in_flight_keep_data_in_place(void **state)
{
    struct disk_fixture *f = *state;
    async_pass(f->h, 1, 1024, 200 * MIB);
    async_pass(f->h, 0, 1024, 200 * MIB);
    /* and the synchronous path sees the same bytes */
    integ_verify_pattern(f->h, 200 * MIB + 5 * 64 * KIB, 512u * (1u + (5u * 37u) % 128u), 5005);
}

static void test_async_read_past_capacity_reports_invalid_parameter_in_callback(void **state)
{
    struct disk_fixture *f = *state;
    struct async_run *r = calloc(1, sizeof(*r));
    struct async_ctx ctx = {r, 0};
    uint8_t *buf = integ_alloc(4096, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->slots[0].busy = 1;
    r->in_flight = 1;
    storstack_status_t st = storstack_read_async(f->h, buf, 4096, f->capacity, async_done, &ctx);
    if (st == STATUS_PENDING) {
        pthread_mutex_lock(&r->lock);
        while (r->in_flight)
            pthread_cond_wait(&r->cond, &r->lock);
        pthread_mutex_unlock(&r->lock);
        assert_status(r->slots[0].status, STATUS_INVALID_PARAMETER);
    } else {
        assert_status(st, STATUS_INVALID_PARAMETER);
    }
    integ_free(buf);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

/* ---- a whole small disk ---------------------------------------------------------------------- */

static int setup_64m(void **state)
{
    struct disk_fixture *f = calloc(1, sizeof(*f));
    char *cfg = integ_config(NULL, "Backend = ram\nSize = 64M\n");
    f->stack = integ_boot(cfg);
    free(cfg);
    f->h = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->capacity = 64ull * MIB;
    *state = f;
    return 0;
}

static void test_whole_64m_disk_written_then_verified(void **state)
{
    struct disk_fixture *f = *state;
    const uint32_t chunk = 1 * MIB + 512 * 3; /* not a divisor: the last piece is short */
    for (uint64_t off = 0; off < f->capacity; off += chunk) {
        uint32_t len = f->capacity - off < chunk ? (uint32_t)(f->capacity - off) : chunk;
        integ_write_pattern(f->h, off, len, 4242);
    }
    for (uint64_t off = 0; off < f->capacity; off += 4 * MIB)
        integ_verify_pattern(f->h, off, 4 * MIB, 4242);
    uint8_t b[512];
    uint32_t n;
    assert_status(storstack_read(f->h, b, 512, f->capacity, &n), STATUS_INVALID_PARAMETER);
}

/* ---- the null device: the whole stack, no data kept ----------------------------------------- */

static int setup_null(void **state)
{
    struct disk_fixture *f = calloc(1, sizeof(*f));
    char *cfg = integ_config(NULL, "Backend = null\nSize = 1T\n");
    f->stack = integ_boot(cfg);
    free(cfg);
    f->h = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->capacity = 1ull << 40;
    *state = f;
    return 0;
}

static void test_null_disk_completes_every_transfer_and_keeps_no_data(void **state)
{
    struct disk_fixture *f = *state;
    uint8_t *buf = integ_alloc(64 * KIB, 0);
    uint32_t n = 0;
    memset(buf, 0xA5, 64 * KIB);
    assert_status(storstack_write(f->h, buf, 64 * KIB, f->capacity - 64 * KIB, &n), STATUS_SUCCESS);
    assert_int_equal(n, 64 * KIB);
    /* a read moves nothing: the caller's bytes stay as they were */
    memset(buf, 0x3C, 64 * KIB);
    assert_status(storstack_read(f->h, buf, 64 * KIB, f->capacity - 64 * KIB, &n), STATUS_SUCCESS);
    assert_int_equal(n, 64 * KIB);
    for (uint32_t i = 0; i < 64 * KIB; i++)
        assert_int_equal(buf[i], 0x3C);
    /* the bounds are the device's, as for any disk */
    assert_status(storstack_read(f->h, buf, 4096, f->capacity, &n), STATUS_INVALID_PARAMETER);
    integ_free(buf);
}

/* ---- 4096-byte blocks ------------------------------------------------------------------------ */

static int setup_4k(void **state)
{
    struct disk_fixture *f = calloc(1, sizeof(*f));
    char *cfg = integ_config(NULL, "Backend = ram\nSize = 128M\nBlockSize = 4096\n");
    f->stack = integ_boot(cfg);
    free(cfg);
    f->h = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->capacity = 128ull * MIB;
    *state = f;
    return 0;
}

static void test_4k_block_disk_round_trips_and_rejects_512_byte_alignment(void **state)
{
    struct disk_fixture *f = *state;
    const uint32_t lens[] = {4096,   3 * 4096, 64 * KIB, MAX_TRANSFER, 3 * MAX_TRANSFER + 4096,
                             4 * MIB};
    uint64_t seed = 300;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        const uint64_t offs[] = {0, 4096, f->capacity / 2, f->capacity - lens[i]};
        for (size_t j = 0; j < 4; j++, seed++) {
            integ_write_pattern(f->h, offs[j], lens[i], seed);
            integ_verify_pattern(f->h, offs[j], lens[i], seed);
        }
    }
    uint8_t *buf = integ_alloc(8192, 0);
    uint32_t n;
    memset(buf, 0, 8192);
    assert_status(storstack_read(f->h, buf, 512, 0, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 4096, 512, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_write(f->h, buf, 4096 + 512, 8192, &n), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(f->h, buf, 8192, f->capacity - 4096, &n),
                  STATUS_INVALID_PARAMETER);
    integ_free(buf);
}

static void test_4k_block_disk_async_32_in_flight(void **state)
{
    struct disk_fixture *f = *state;
    /* 512-multiple lengths are not 4K-aligned: use whole 4K requests here */
    for (int round = 0; round < 2; round++) {
        struct async_run *r = calloc(1, sizeof(*r));
        struct async_ctx ctx[ASYNC_DEPTH];
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        for (int i = 0; i < ASYNC_DEPTH; i++) {
            struct async_slot *s = &r->slots[i];
            s->length = 4096u * (1u + (uint32_t)i % 16u);
            s->offset = (uint64_t)i * 64 * KIB;
            s->seed = 7000 + (uint64_t)i;
            s->buf = integ_alloc(s->length, 0);
            if (round == 0)
                integ_fill(s->buf, s->offset, s->length, s->seed);
            s->busy = 1;
            r->in_flight++;
        }
        for (int i = 0; i < ASYNC_DEPTH; i++) {
            struct async_slot *s = &r->slots[i];
            ctx[i].run = r;
            ctx[i].slot = i;
            storstack_status_t st =
                round == 0
                    ? storstack_write_async(f->h, s->buf, s->length, s->offset, async_done, &ctx[i])
                    : storstack_read_async(f->h, s->buf, s->length, s->offset, async_done, &ctx[i]);
            assert_status(st, STATUS_PENDING);
        }
        pthread_mutex_lock(&r->lock);
        while (r->in_flight)
            pthread_cond_wait(&r->cond, &r->lock);
        for (int i = 0; i < ASYNC_DEPTH; i++)
            async_check(r, &r->slots[i], round == 0);
        pthread_mutex_unlock(&r->lock);
        if (r->error[0])
            fail_msg("%s", r->error);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_write_read_pattern_of_every_size_at_offsets_across_the_disk, setup_default,
            teardown),
        cmocka_unit_test_setup_teardown(test_last_block_and_first_block_are_independent,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_buffer_addresses_transfer_correctly,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_replaces_only_the_written_blocks,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_never_written_ranges_read_as_zeros, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_offset_or_length_is_invalid_parameter,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_past_capacity_is_invalid_parameter,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_transfer_succeeds_with_nothing_moved,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_handle_gets_access_denied_on_write,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(
            test_async_writes_and_reads_with_32_in_flight_keep_data_in_place, setup_default,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_async_read_past_capacity_reports_invalid_parameter_in_callback, setup_default,
            teardown),
        cmocka_unit_test_setup_teardown(test_whole_64m_disk_written_then_verified, setup_64m,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_4k_block_disk_round_trips_and_rejects_512_byte_alignment, setup_4k, teardown),
        cmocka_unit_test_setup_teardown(test_4k_block_disk_async_32_in_flight, setup_4k, teardown),
        cmocka_unit_test_setup_teardown(test_null_disk_completes_every_transfer_and_keeps_no_data,
                                        setup_null, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
