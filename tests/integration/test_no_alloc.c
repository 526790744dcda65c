/*
 * The fast path allocates nothing per I/O (issue 6): after a warm-up that fills the lookaside
 * lists, 10 000 reads and writes through the whole disk stack (PhysicalDrive0 → disk class
 * driver → Storport → vminiport → SBC device → RAM backend), synchronous and 32 in flight, and
 * 2 000 SCSI pass-through requests (IOCTL_SCSI_PASS_THROUGH with its data in the system buffer,
 * and _DIRECT) make no call to malloc, calloc, realloc, posix_memalign or aligned_alloc on any
 * thread. The test is linked with --wrap for those functions (CMakeLists.txt), so every call from
 * storstack's own code is counted while counting is on; the C library's internals are not.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/ntddscsi.h>

#include "integ.h"

static atomic_bool counting;
static atomic_ulong allocations;

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);

static void count_one(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *__wrap_malloc(size_t size)
{
    count_one();
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    count_one();
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    count_one();
    return __real_realloc(p, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    count_one();
    return __real_posix_memalign(p, align, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    count_one();
    return __real_aligned_alloc(align, size);
}

static void count_start(void)
{
    atomic_store(&allocations, 0);
    atomic_store(&counting, true);
}

static unsigned long count_stop(void)
{
    atomic_store(&counting, false);
    return atomic_load(&allocations);
}

#define IOS   10000u
#define DEPTH 32u
#define BLOCK (4u * KIB)
#define SPAN  (64ull * MIB) /* the part of the disk the I/Os touch */

struct fixture {
    storstack_t *stack;
    storstack_handle_t *h;
    uint8_t *buf;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char *config = integ_config(NULL, "Backend = ram\nSize = 256M\n");
    f->stack = integ_boot(config);
    free(config);
    f->h = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->buf = integ_alloc(DEPTH * BLOCK, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    integ_free(f->buf);
    storstack_close(f->h);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

static uint64_t offset_of(unsigned i)
{
    return (uint64_t)(i * 2654435761u) % (SPAN / BLOCK) * BLOCK;
}

static void sync_ios(struct fixture *f, unsigned n)
{
    uint32_t done = 0;
    for (unsigned i = 0; i < n; i++) {
        storstack_status_t st = i % 2 ? storstack_read(f->h, f->buf, BLOCK, offset_of(i), &done)
                                      : storstack_write(f->h, f->buf, BLOCK, offset_of(i), &done);
        if (st != STATUS_SUCCESS || done != BLOCK) {
            count_stop();
            fail_msg("I/O %u: %s, %u bytes", i, storstack_status_name(st), done);
        }
    }
}

static void test_synchronous_reads_and_writes_allocate_nothing(void **state)
{
    struct fixture *f = *state;
    sync_ios(f, 1000); /* warm-up: lookaside lists reach their working depth */
    count_start();
    sync_ios(f, IOS);
    unsigned long n = count_stop();
    print_message("%u synchronous I/Os: %lu allocations\n", IOS, n);
    assert_int_equal(n, 0);
}

/* DEPTH requests in flight: the test thread issues into free slots; completions (inline or on
 * another thread) hand their slot back. No recursion, whichever thread completes. */
struct async_run;

struct async_slot {
    struct async_run *r;
    unsigned index;
    struct async_slot *next;
};

struct async_run {
    pthread_mutex_t lock;
    pthread_cond_t done;
    unsigned completed, errors;
    struct async_slot *free;
    struct async_slot slots[DEPTH];
};

static void async_done(void *context, storstack_status_t status, uint64_t information)
{
    struct async_slot *s = context;
    struct async_run *r = s->r;
    pthread_mutex_lock(&r->lock);
    if (status != STATUS_SUCCESS || information != BLOCK)
        r->errors++;
    r->completed++;
    s->next = r->free;
    r->free = s;
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->lock);
}

/* n requests, DEPTH at a time, alternately reads and writes; returns the errors. */
static unsigned async_ios(struct fixture *f, unsigned n)
{
    static struct async_run r; /* nothing allocated while counting */
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.done, NULL);
    for (unsigned i = 0; i < DEPTH; i++) {
        r.slots[i] = (struct async_slot){.r = &r, .index = i, .next = r.free};
        r.free = &r.slots[i];
    }
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_lock(&r.lock);
        while (!r.free)
            pthread_cond_wait(&r.done, &r.lock);
        struct async_slot *s = r.free;
        r.free = s->next;
        pthread_mutex_unlock(&r.lock);
        uint8_t *buf = f->buf + (size_t)s->index * BLOCK;
        storstack_status_t st =
            i % 2 ? storstack_read_async(f->h, buf, BLOCK, offset_of(i), async_done, s)
                  : storstack_write_async(f->h, buf, BLOCK, offset_of(i), async_done, s);
        if (st != STATUS_PENDING)
            async_done(s, st, 0);
    }
    pthread_mutex_lock(&r.lock);
    while (r.completed < n)
        pthread_cond_wait(&r.done, &r.lock);
    pthread_mutex_unlock(&r.lock);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.done);
    return r.errors;
}

static void test_overlapped_reads_and_writes_allocate_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(async_ios(f, 1000), 0); /* warm-up */
    count_start();
    unsigned errors = async_ios(f, IOS);
    unsigned long n = count_stop();
    print_message("%u overlapped I/Os, %u in flight: %lu allocations\n", IOS, DEPTH, n);
    assert_int_equal(errors, 0);
    assert_int_equal(n, 0);
}

/* READ(10) of 8 blocks at LBA `lba` by pass-through: buffered (data in the system buffer) or
 * direct, from a request built once by the caller. */
static void pass_through(struct fixture *f, int direct, uint8_t *req, uint32_t total, uint32_t lba)
{
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)req;
    uint8_t *cdb = spt->Cdb;
    uint32_t returned = 0;
    spt->DataTransferLength = BLOCK;
    spt->SenseInfoLength = 32;
    spt->ScsiStatus = 0xFF;
    memset(cdb, 0, 16);
    cdb[0] = 0x28;
    cdb[2] = (uint8_t)(lba >> 24);
    cdb[3] = (uint8_t)(lba >> 16);
    cdb[4] = (uint8_t)(lba >> 8);
    cdb[5] = (uint8_t)lba;
    cdb[8] = BLOCK / 512;
    storstack_status_t st =
        storstack_ioctl(f->h, direct ? IOCTL_SCSI_PASS_THROUGH_DIRECT : IOCTL_SCSI_PASS_THROUGH,
                        req, total, req, total, &returned);
    if (st != STATUS_SUCCESS || spt->ScsiStatus != 0 || spt->DataTransferLength != BLOCK) {
        count_stop();
        fail_msg("pass-through%s: %s, SCSI status %02Xh, %u bytes", direct ? " direct" : "",
                 storstack_status_name(st), spt->ScsiStatus, spt->DataTransferLength);
    }
}

static void test_scsi_pass_through_allocates_nothing(void **state)
{
    struct fixture *f = *state;
    const uint32_t sense_off = 64, data_off = 96;
    for (int direct = 0; direct <= 1; direct++) {
        uint32_t total = direct ? data_off : data_off + BLOCK;
        uint8_t *req = integ_alloc(total, 0);
        memset(req, 0, total);
        SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)req;
        spt->Length = direct ? sizeof(SCSI_PASS_THROUGH_DIRECT) : sizeof(SCSI_PASS_THROUGH);
        spt->CdbLength = 10;
        spt->SenseInfoOffset = sense_off;
        spt->DataIn = SCSI_IOCTL_DATA_IN;
        spt->TimeOutValue = 10;
        if (direct)
            ((SCSI_PASS_THROUGH_DIRECT *)req)->DataBuffer = f->buf;
        else
            spt->DataBufferOffset = data_off;
        for (uint32_t i = 0; i < 100; i++)
            pass_through(f, direct, req, total, i * 8);
        count_start();
        for (uint32_t i = 0; i < IOS / 10; i++)
            pass_through(f, direct, req, total, (i * 8) % (SPAN / 512));
        unsigned long n = count_stop();
        print_message("%u pass-through%s requests: %lu allocations\n", IOS / 10,
                      direct ? " direct" : "", n);
        integ_free(req);
        assert_int_equal(n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_synchronous_reads_and_writes_allocate_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlapped_reads_and_writes_allocate_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scsi_pass_through_allocates_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
