/*
 * Byte stores under the SCSI devices and hardware models. A backend is a fixed-size array of bytes
 * with asynchronous submit/complete, flush and discard; it declares what it can do the way nbdkit
 * plugins do (can_flush, can_fua, can_trim, can_zero, can_extents) and devices ask, never guess.
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
};

struct backend;

struct backend_ops {
    const char *name;
    void (*submit)(struct backend *be, struct be_io *io);
    /* Waits until every submitted request has completed, then frees the backend. */
    void (*destroy)(struct backend *be);

    /* ---- Metadata blobs kept with the store (persistent reservations with APTPL) ----
     * Small named blobs (name: [a-z0-9_]+) that live as long as the store does: the RAM
     * backend's in memory, the file backend's in a sidecar file "<image>.<name>" next to the
     * image, replaced atomically (temp file, fsync, rename, fsync of the directory). Both NULL
     * when the backend keeps none. Not for the I/O path: they may block. */
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
    return be->ops->meta_load && be->ops->meta_store;
}

static inline void be_destroy(struct backend *be)
{
    if (be)
        be->ops->destroy(be);
}

/* A sparse RAM store: pages are allocated on first write, unwritten ranges read as zeros. */
int be_ram_create(uint64_t size, struct backend **out);

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
