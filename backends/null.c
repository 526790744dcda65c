/*
 * The null backend (backend.h): a store of `size` bytes that keeps nothing. Every request
 * completes inside be_submit() with success; reads leave the buffer untouched. Used to measure the
 * stack's per-I/O cost without the data copy (bench/, docs/benchmarks.md).
 */
#include <stdlib.h>

#include "backends/backend.h"

static void null_submit(struct backend *be, struct be_io *io)
{
    (void)be;
    io->complete(io, 0);
}

static void null_destroy(struct backend *be)
{
    free(be);
}

static const struct backend_ops null_ops = {
    .name = "null",
    .submit = null_submit,
    .destroy = null_destroy,
};

int be_null_create(uint64_t size, struct backend **out)
{
    if (size == 0)
        return -EINVAL;
    struct backend *be = calloc(1, sizeof(*be));
    if (!be)
        return -ENOMEM;
    be->ops = &null_ops;
    be->size = size;
    /* flush, FUA, discard and zeroing are all "done" at once: nothing is ever stored */
    be->caps =
        (struct be_caps){.can_flush = true, .can_fua = true, .can_trim = true, .can_zero = true};
    *out = be;
    return 0;
}
