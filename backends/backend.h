/*
 * Byte stores under the SCSI devices and hardware models. A backend is a fixed-size array of bytes
 * with asynchronous submit/complete, flush and discard; it declares what it can do the way nbdkit
 * plugins do (can_flush, can_fua, can_trim, can_zero, can_extents) and devices ask, never guess.
 * The allocation map (can_extents) is a synchronous query, be_extents().
 *
 * Contract of be_submit(): the request is owned by the backend until its complete callback runs,
 * exactly once, with 0 or a negative errno. The callback may run inside be_submit() (the RAM
 * backend always completes inline) or on a backend thread (the file backend's io_uring reaper).
 * Requests are independent: no ordering between in-flight requests is promised, except that a
 * FLUSH completes after every write that completed before the FLUSH was submitted is durable.
 * A WRITE with BE_IO_FUA completes only once its data is durable.
 * be_submit() never blocks for long and allocates nothing.
 */
#ifndef STORSTACK_BACKENDS_BACKEND_H
#define STORSTACK_BACKENDS_BACKEND_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum be_op {
    BE_OP_READ,
    BE_OP_WRITE,
    BE_OP_FLUSH,        /* make every completed write durable */
    BE_OP_DISCARD,      /* deallocate; later reads return zeros where can_trim_zeroes */
    BE_OP_WRITE_ZEROES, /* the range reads back as zeros afterwards */
};

#define BE_IO_FUA 0x1u /* WRITE: complete only when durable */

struct be_io {
    enum be_op op;
    uint32_t flags;
    uint64_t offset; /* bytes */
    uint64_t length; /* bytes; for READ/WRITE the sum of the iov lengths */
    const struct iovec *iov;
    int iovcnt;
    void (*complete)(struct be_io *io, int result); /* 0 or -errno, exactly once */
    void *context;                                  /* the submitter's */
    uint64_t priv[2];                               /* the backend's scratch */
};

struct be_caps {
    bool read_only;
    bool can_flush;
    bool can_fua;
    bool can_trim;
    bool trim_zeroes; /* a discarded range reads back as zeros (LBPRZ) */
    bool can_zero;
    bool can_extents;
    bool can_meta; /* meta_load/meta_store keep metadata blobs (see backend_ops) */
};

/*
 * One run of the allocation map (nbdkit's extents): `length` bytes from `offset`, allocated
 * (flags 0) or a hole (BE_EXTENT_HOLE: holds no storage; reads as zeros when trim_zeroes).
 */
#define BE_EXTENT_HOLE 0x1u

struct be_extent {
    uint64_t offset;
    uint64_t length;
    uint32_t flags;
};

struct backend;

struct backend_ops {
    const char *name;
    void (*submit)(struct backend *be, struct be_io *io);
    /*
     * The allocation map from `offset` (below size) for at most `length` bytes: fills up to `max`
     * (at least 1) extents in address order, contiguous from `offset`, adjacent runs of the same
     * kind merged, and returns how many, or a negative errno. The extents may stop short of
     * offset + length (max reached, or the backend answers a window at a time); the caller asks
     * again from where they end. Synchronous: it runs on the caller's thread, takes no longer
     * than a few lookups or syscalls, and reflects every request completed before it was called.
     * NULL when the backend has no can_extents.
     */
    int (*extents)(struct backend *be, uint64_t offset, uint64_t length, struct be_extent *ext,
                   uint32_t max);
    /* Waits until every submitted request has completed, then frees the backend. */
    void (*destroy)(struct backend *be);

    /* ---- Metadata blobs kept with the store (persistent reservations with APTPL) ----
     * Small named blobs (name: [a-z0-9_]+) that live as long as the store does: the RAM
     * backend's in memory, the file backend's in a sidecar file "<image>.<name>" next to the
     * image, replaced atomically (temp file, fsync, rename, fsync of the directory). Only when
     * caps.can_meta (be_has_meta). Not for the I/O path: they may block. */
    /* 0 with *len the blob's size (copied into buf), -ENOENT when absent, -EFBIG when larger
     * than cap, or another -errno. */
    int (*meta_load)(struct backend *be, const char *name, void *buf, size_t cap, size_t *len);
    /* Replaces the blob (durable on return 0); len 0 removes it. */
    int (*meta_store)(struct backend *be, const char *name, const void *buf, size_t len);
};

struct backend {
    const struct backend_ops *ops;
    uint64_t size; /* bytes */
    struct be_caps caps;
};

static inline void be_submit(struct backend *be, struct be_io *io)
{
    be->ops->submit(be, io);
}

static inline bool be_has_meta(const struct backend *be)
{
    return be->caps.can_meta && be->ops->meta_load && be->ops->meta_store;
}

/* For backends answering be_extents: appends [pos, pos + n) of kind `flags` to ext[], merged into
 * the last run when that is of the same kind. False when a new run is needed and ext[] is full. */
static inline bool be_extent_append(struct be_extent *ext, uint32_t *count, uint32_t max,
                                    uint64_t pos, uint64_t n, uint32_t flags)
{
    if (*count > 0 && ext[*count - 1].flags == flags) {
        ext[*count - 1].length += n;
        return true;
    }
    if (*count == max)
        return false;
    ext[*count] = (struct be_extent){.offset = pos, .length = n, .flags = flags};
    (*count)++;
    return true;
}

/* be->ops->extents when the backend declares can_extents; -EOPNOTSUPP otherwise, -EINVAL for an
 * offset at or past the end or max 0. */
static inline int be_extents(struct backend *be, uint64_t offset, uint64_t length,
                             struct be_extent *ext, uint32_t max)
{
    if (!be->caps.can_extents || !be->ops->extents)
        return -EOPNOTSUPP;
    if (offset >= be->size || max == 0 || length == 0)
        return -EINVAL;
    if (length > be->size - offset)
        length = be->size - offset;
    return be->ops->extents(be, offset, length, ext, max);
}

static inline void be_destroy(struct backend *be)
{
    if (be)
        be->ops->destroy(be);
}

/* A sparse RAM store: pages are allocated on first write, unwritten ranges read as zeros. */
int be_ram_create(uint64_t size, struct backend **out);

/*
 * The null store (Linux null_blk without memory_backed, fio's null engine): every request
 * completes inline and successfully and no data moves. A READ leaves the caller's buffer as it
 * was, so it serves to measure the stack's own cost per I/O, never to hold data or to be exported
 * to an initiator that should not see what its buffers held before.
 */
int be_null_create(uint64_t size, struct backend **out);

#define BE_FILE_CREATE   0x1u /* create the file if missing (sparse, at `size`) */
#define BE_FILE_DIRECT   0x2u /* O_DIRECT */
#define BE_FILE_READONLY 0x4u

/*
 * A file (or block device) through io_uring. size 0 means the file's current size; a size larger
 * than the file extends it sparsely. Returns 0 or a negative errno; *err_detail, when not NULL,
 * points to a static string naming the failing step.
 */
int be_file_create(const char *path, uint64_t size, uint32_t flags, struct backend **out,
                   const char **err_detail);

#endif
