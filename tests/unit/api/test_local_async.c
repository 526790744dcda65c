/*
 * The in-process stack's overlapped DeviceIoControl and CancelIoEx (api/local.c) on the built-in
 * default stack (a RAM disk as PhysicalDrive0): a pass-through and a METHOD_BUFFERED IOCTL
 * complete through the callback with their output in place; storstack_cancel reaches only the
 * handle's own requests with the given context, and every request calls back exactly once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storstack.h>

struct done {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    storstack_status_t status;
    uint64_t info;
};

static void on_done(void *context, storstack_status_t status, uint64_t information)
{
    struct done *d = context;
    pthread_mutex_lock(&d->lock);
    d->calls++;
    d->status = status;
    d->info = information;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void wait_done(struct done *d, int calls)
{
    pthread_mutex_lock(&d->lock);
    while (d->calls < calls)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

struct sptd_sense {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t pad;
    uint8_t sense[32];
};

static void test_ioctl_async_pass_through_and_buffered(void **state)
{
    storstack_t *s = *state;
    storstack_handle_t *h;
    struct done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    struct sptd_sense x;
    uint8_t data[96];
    DISK_GEOMETRY geo;

    assert_int_equal(
        storstack_open(s, "PhysicalDrive0", STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &h),
        STATUS_SUCCESS);
    memset(&x, 0, sizeof(x));
    x.sptd.Length = sizeof(x.sptd);
    x.sptd.CdbLength = 6;
    x.sptd.SenseInfoLength = sizeof(x.sense);
    x.sptd.SenseInfoOffset = offsetof(struct sptd_sense, sense);
    x.sptd.DataIn = SCSI_IOCTL_DATA_IN;
    x.sptd.DataTransferLength = sizeof(data);
    x.sptd.DataBuffer = data;
    x.sptd.TimeOutValue = 10;
    x.sptd.Cdb[0] = 0x12;
    x.sptd.Cdb[4] = sizeof(data);
    assert_int_equal(storstack_ioctl_async(h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &x, sizeof(x), &x,
                                           sizeof(x), on_done, &d),
                     STATUS_PENDING);
    wait_done(&d, 1);
    assert_int_equal(d.status, STATUS_SUCCESS);
    assert_int_equal(x.sptd.ScsiStatus, 0);
    assert_memory_equal(data + 8, "STORSTAK", 8);

    assert_int_equal(storstack_ioctl_async(h, IOCTL_DISK_GET_DRIVE_GEOMETRY, NULL, 0, &geo,
                                           sizeof(geo), on_done, &d),
                     STATUS_PENDING);
    wait_done(&d, 2);
    assert_int_equal(d.status, STATUS_SUCCESS);
    assert_int_equal(d.info, sizeof(geo));
    assert_int_equal(geo.BytesPerSector, 512);
    /* refused up front: no callback */
    assert_int_equal(
        storstack_ioctl_async(h, IOCTL_DISK_GET_DRIVE_GEOMETRY, NULL, 0, NULL, 8, on_done, &d),
        STATUS_INVALID_USER_BUFFER);
    assert_int_equal(storstack_ioctl_async(NULL, 0, NULL, 0, NULL, 0, on_done, &d),
                     STATUS_INVALID_HANDLE);
    assert_int_equal(d.calls, 2);
    storstack_close(h);
}

/* Many reads in flight, then a cancel of one context and of all: each request calls back once,
 * cancelled or done, and never more requests are cancelled than were asked to be. */
static void test_cancel_reaches_only_matching_requests_each_calls_back_once(void **state)
{
    storstack_t *s = *state;
    enum { N = 64 };
    static uint8_t bufs[N][4096];
    static struct done ds[N];
    storstack_handle_t *h, *other;
    uint32_t n = 0, n_all = 0, n_other = 0;

    assert_int_equal(storstack_open(s, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h),
                     STATUS_SUCCESS);
    assert_int_equal(storstack_open(s, "PhysicalDrive0", STORSTACK_GENERIC_READ, &other),
                     STATUS_SUCCESS);
    for (int i = 0; i < N; i++) {
        pthread_mutex_init(&ds[i].lock, NULL);
        pthread_cond_init(&ds[i].cond, NULL);
        ds[i].calls = 0;
        assert_int_equal(
            storstack_read_async(h, bufs[i], 4096, (uint64_t)i * 4096, on_done, &ds[i]),
            STATUS_PENDING);
    }
    assert_int_equal(storstack_cancel(other, NULL, &n_other), STATUS_SUCCESS);
    assert_int_equal(n_other, 0); /* another handle's requests are not its own */
    assert_int_equal(storstack_cancel(h, &ds[N - 1], &n), STATUS_SUCCESS);
    assert_true(n <= 1);
    assert_int_equal(storstack_cancel(h, NULL, &n_all), STATUS_SUCCESS);
    assert_true(n_all <= N);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        wait_done(&ds[i], 1);
        assert_true(ds[i].status == STATUS_SUCCESS || ds[i].status == STATUS_CANCELLED);
        cancelled += ds[i].status == STATUS_CANCELLED;
    }
    assert_true((uint32_t)cancelled <= n + n_all);
    /* all gone: nothing left to cancel, and no callback ran twice */
    assert_int_equal(storstack_cancel(h, NULL, &n), STATUS_SUCCESS);
    assert_int_equal(n, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(ds[i].calls, 1);
    storstack_close(other);
    storstack_close(h);
}

static int setup(void **state)
{
    char err[256];
    storstack_t *s = storstack_create(NULL, err, sizeof(err));
    assert_non_null(s);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    storstack_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ioctl_async_pass_through_and_buffered),
        cmocka_unit_test(test_cancel_reaches_only_matching_requests_each_calls_back_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
