/*
 * A byte store for the device tests: a flat calloc'd buffer behind struct backend_ops, completing
 * inline by default. It records what the device asked for (operations, flags, offsets), can fail
 * a chosen operation with a chosen errno, and can hold requests back (deferred completion) until
 * the test releases them, from the test thread or another one.
 */
#ifndef STORSTACK_TESTS_MOCK_BACKEND_H
#define STORSTACK_TESTS_MOCK_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"

#define MOCK_MAX_PENDING 64
#define MOCK_LOG         64
#define MOCK_GRAN        4096 /* allocation map granule, as the RAM backend's page */

struct mock_req {
    enum be_op op;
    uint32_t flags;
    uint64_t offset;
    uint64_t length;
    int iovcnt;
};

struct mock_backend {
    struct backend be;
    uint8_t *data;
    uint8_t *alloc;         /* one byte per MOCK_GRAN: nonzero = allocated */
    uint32_t extent_window; /* when nonzero, be_extents answers at most this many runs */
    int nextents;           /* be_extents calls */

    pthread_mutex_t lock;
    /* Fault injection: fail requests of fail_op (when fail_err != 0) with fail_err. */
    bool fail_enabled;
    enum be_op fail_op;
    int fail_err;
    /* Deferred completion: requests wait in pending[] until mock_backend_release(). */
    bool deferred;
    struct be_io *pending[MOCK_MAX_PENDING];
    int npending;

    /* Metadata blob ("pr"), when mock_backend_enable_meta() gave the backend meta ops. */
    uint8_t *meta;
    size_t meta_len;
    bool meta_present;
    int meta_fail; /* -errno returned by meta_store when nonzero */
    int nmeta_store;

    /* What the device submitted. */
    int nreq;
    struct mock_req log[MOCK_LOG];
};

struct mock_backend *mock_backend_create(uint64_t size, const struct be_caps *caps);
void mock_backend_fail(struct mock_backend *m, enum be_op op, int err); /* err 0: stop failing */
/* Completes every held request; returns how many. */
int mock_backend_release(struct mock_backend *m);
int mock_backend_count(struct mock_backend *m, enum be_op op);
const struct mock_req *mock_backend_last(struct mock_backend *m, enum be_op op);
void mock_backend_clear_log(struct mock_backend *m);
/* Declares can_meta: meta_load/meta_store over one in-memory blob per backend. */
void mock_backend_enable_meta(struct mock_backend *m);

#endif
