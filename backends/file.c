/*
 * The file byte store (be_file_create): a regular file or a block device driven through io_uring,
 * the storage behind the virtual miniport's file-backed LUNs. Each backend owns one ring and one
 * reaper thread. Any thread may submit; the submission queue has a single producer, so submitters
 * take a short mutex around preparing and submitting one SQE (the model is Storport's StartIo
 * lock: held only while handing the request to the "hardware"). On a buffered file, requests
 * that callbacks issue on the reaper only get an SQE; the reaper submits them all at once after
 * its batch of completions (one system call per batch at a steady queue depth); with O_DIRECT
 * they go to the device at once. The reaper waits on the
 * completion queue and runs the callbacks, the way a DPC completes requests after the ISR: every
 * request completes exactly once, on the reaper thread, except for requests refused before they
 * reach the kernel (bad range or alignment, read-only, shutting down), which complete inline.
 * READ/WRITE map to READV/WRITEV; a short transfer is resubmitted for the remainder from the
 * reaper, and a read that meets end of file returns zeros for the rest. BE_IO_FUA is RWF_DSYNC on
 * the write, FLUSH is a data-sync FSYNC, DISCARD punches a hole, WRITE_ZEROES zeroes the range
 * (punching a hole where the filesystem cannot zero). The allocation map (be_extents) is a
 * synchronous SEEK_DATA/SEEK_HOLE walk on the caller's thread. Durability contract: a write
 * acknowledged with BE_IO_FUA, or followed by an acknowledged FLUSH, has reached stable storage as
 * far as the kernel can promise, and certainly survives the death of this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"

#define BE_FILE_RING_ENTRIES 256u
/* A CQ four times the SQ gives room for callbacks that submit from the reaper beyond the cap. */
#define BE_FILE_CQ_ENTRIES   1024u
#define BE_FILE_MAX_INFLIGHT BE_FILE_RING_ENTRIES
#define BE_FILE_DIRECT_ALIGN 512u
#define BE_FILE_REAP_BATCH   64u

/* io->priv[] use: [0] bytes transferred so far (READ/WRITE); [1] WRITE_ZEROES fallback step. */
#define BE_FILE_DONE(io)      ((io)->priv[0])
#define BE_FILE_ZERO_STEP(io) ((io)->priv[1])

struct be_file {
    struct backend be;
    int fd;
    bool direct;
    struct io_uring ring;
    pthread_mutex_t lock;   /* the SQ, inflight and closing */
    pthread_cond_t space;   /* inflight dropped below the cap */
    pthread_cond_t drained; /* inflight reached zero */
    uint32_t inflight;      /* accepted requests whose callback has not yet returned */
    bool closing;
    pthread_t reaper;
    char *meta_base; /* metadata sidecar prefix "<image path>." (regular writable files) */
};

static struct be_file *be_file_from(struct backend *be)
{
    return (struct be_file *)be;
}

/* Finds which iov segment, and where in it, the byte `done` of the request's stream lies. */
static void be_file_iov_seek(const struct be_io *io, uint64_t done, int *idx, size_t *off)
{
    int i = 0;
    while (i < io->iovcnt && done >= io->iov[i].iov_len) {
        done -= io->iov[i].iov_len;
        i++;
    }
    *idx = i;
    *off = done;
}

static void be_file_prep(struct be_file *f, struct be_io *io, struct io_uring_sqe *sqe)
{
    uint64_t done = BE_FILE_DONE(io);
    int rw_flags = (io->op == BE_OP_WRITE && (io->flags & BE_IO_FUA)) ? RWF_DSYNC : 0;

    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE: {
        int idx;
        size_t off;
        be_file_iov_seek(io, done, &idx, &off);
        if (off == 0) {
            /* The caller's array stays valid and untouched until we complete; no copy needed. */
            if (io->op == BE_OP_READ)
                io_uring_prep_readv2(sqe, f->fd, io->iov + idx, io->iovcnt - idx, io->offset + done,
                                     0);
            else
                io_uring_prep_writev2(sqe, f->fd, io->iov + idx, io->iovcnt - idx,
                                      io->offset + done, rw_flags);
        } else {
            /* Resuming inside a segment: finish that segment alone, then go vectored again. */
            uint8_t *base = (uint8_t *)io->iov[idx].iov_base + off;
            unsigned len = io->iov[idx].iov_len - off;
            if (io->op == BE_OP_READ) {
                io_uring_prep_read(sqe, f->fd, base, len, io->offset + done);
            } else {
                io_uring_prep_write(sqe, f->fd, base, len, io->offset + done);
                sqe->rw_flags = rw_flags;
            }
        }
        break;
    }
    case BE_OP_FLUSH:
        io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
        break;
    case BE_OP_DISCARD:
        io_uring_prep_fallocate(sqe, f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, io->offset,
                                io->length);
        break;
    case BE_OP_WRITE_ZEROES:
        io_uring_prep_fallocate(
            sqe, f->fd,
            (BE_FILE_ZERO_STEP(io) == 0 ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) |
                FALLOC_FL_KEEP_SIZE,
            io->offset, io->length);
        break;
    }
    io_uring_sqe_set_data(sqe, io);
}

/* Submits every prepared SQE. Called with f->lock held. A failed submit leaves the SQEs in the
 * ring for the next submit: never dropped. */
static void be_file_submit_locked(struct be_file *f)
{
    for (int tries = 0; tries < 100; tries++) {
        int ret = io_uring_submit(&f->ring);
        if (ret >= 0 || (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY))
            break;
        usleep(50);
    }
}

/*
 * Prepares one request (or the remainder of one) for the kernel. Called with f->lock held. With
 * `submit`, it goes to the kernel now (a submitter's thread, or O_DIRECT); without, it waits in
 * the SQ for the reaper's one io_uring_submit after its batch of completions (requests that
 * callbacks on the reaper issue: at a steady queue depth, nearly all of them, so one system call
 * carries a whole batch). A missing SQE only happens when the SQ is full; submitting makes room.
 */
static void be_file_queue_locked(struct be_file *f, struct be_io *io, bool submit)
{
    struct io_uring_sqe *sqe;
    for (int tries = 0; !(sqe = io_uring_get_sqe(&f->ring)); tries++) {
        io_uring_submit(&f->ring);
        if (tries > 0)
            usleep(50);
    }
    be_file_prep(f, io, sqe);
    if (submit)
        be_file_submit_locked(f);
}

static int be_file_check(const struct be_file *f, const struct be_io *io)
{
    bool rw = io->op == BE_OP_READ || io->op == BE_OP_WRITE;

    if ((unsigned)io->op > BE_OP_WRITE_ZEROES)
        return -EOPNOTSUPP;
    if (io->op != BE_OP_READ && io->op != BE_OP_FLUSH && f->be.caps.read_only)
        return -EROFS;
    if (io->op == BE_OP_DISCARD && !f->be.caps.can_trim)
        return -EOPNOTSUPP;
    if (io->op == BE_OP_FLUSH)
        return 0;
    if (io->offset > f->be.size || io->length > f->be.size - io->offset)
        return -EINVAL;
    if (rw) {
        if (io->iovcnt < 0 || (io->iovcnt > 0 && !io->iov) || io->iovcnt > IOV_MAX)
            return -EINVAL;
        uint64_t sum = 0;
        for (int i = 0; i < io->iovcnt; i++) {
            sum += io->iov[i].iov_len;
            if (f->direct &&
                (((uintptr_t)io->iov[i].iov_base | io->iov[i].iov_len) % BE_FILE_DIRECT_ALIGN) != 0)
                return -EINVAL;
        }
        if (sum != io->length)
            return -EINVAL;
        if (f->direct && ((io->offset | io->length) % BE_FILE_DIRECT_ALIGN) != 0)
            return -EINVAL;
    }
    return 0;
}

/* be_submit() for files: any thread; waits only while the cap of in-flight requests is reached. */
static void be_file_submit(struct backend *be, struct be_io *io)
{
    struct be_file *f = be_file_from(be);
    int ret = be_file_check(f, io);
    if (ret == 0 && io->length == 0 && io->op != BE_OP_FLUSH)
        ret = 1; /* nothing to move: succeed without a trip to the kernel */
    if (ret != 0) {
        io->complete(io, ret < 0 ? ret : 0);
        return;
    }
    BE_FILE_DONE(io) = 0;
    BE_FILE_ZERO_STEP(io) = 0;

    /*
     * A callback running on the reaper may submit; it must not wait for space only the reaper
     * can free, so it goes over the cap (the CQ is sized for that).
     */
    bool on_reaper = pthread_equal(pthread_self(), f->reaper);
    pthread_mutex_lock(&f->lock);
    while (!on_reaper && !f->closing && f->inflight >= BE_FILE_MAX_INFLIGHT)
        pthread_cond_wait(&f->space, &f->lock);
    if (f->closing) {
        pthread_mutex_unlock(&f->lock);
        io->complete(io, -ESHUTDOWN);
        return;
    }
    f->inflight++;
    /* O_DIRECT: to the device at once (measured: deferring costs ~18% at QD 32, the reaper then
     * enters the kernel less often to reap); buffered: deferred to the batch's one submit. */
    be_file_queue_locked(f, io, !on_reaper || f->direct);
    pthread_mutex_unlock(&f->lock);
}

/* The next step of a short or interrupted transfer, from the reaper: submitted with its batch. */
static void be_file_resubmit(struct be_file *f, struct be_io *io)
{
    pthread_mutex_lock(&f->lock);
    be_file_queue_locked(f, io, false);
    pthread_mutex_unlock(&f->lock);
}

/*
 * The DPC half: turns one CQE into either the request's completion or its next step. Runs on the
 * reaper with no lock held. Returns true when the callback ran.
 */
static bool be_file_handle_cqe(struct be_file *f, struct be_io *io, int res)
{
    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE:
        if (res == -EINTR || res == -EAGAIN) {
            be_file_resubmit(f, io);
            return false;
        }
        if (res < 0)
            break;
        if (res == 0) {
            if (io->op == BE_OP_WRITE) {
                res = -EIO; /* no progress and no error: do not spin */
                break;
            }
            /* End of file inside the backend's size: the rest reads as zeros. */
            int idx;
            size_t off;
            be_file_iov_seek(io, BE_FILE_DONE(io), &idx, &off);
            for (; idx < io->iovcnt; idx++, off = 0)
                memset((uint8_t *)io->iov[idx].iov_base + off, 0, io->iov[idx].iov_len - off);
            res = 0;
            break;
        }
        BE_FILE_DONE(io) += (uint64_t)res;
        if (BE_FILE_DONE(io) < io->length) {
            be_file_resubmit(f, io);
            return false;
        }
        res = 0;
        break;
    case BE_OP_WRITE_ZEROES:
        if ((res == -EOPNOTSUPP || res == -EINVAL) && BE_FILE_ZERO_STEP(io) == 0) {
            /* tmpfs and others cannot ZERO_RANGE; a punched hole reads back as zeros too. */
            BE_FILE_ZERO_STEP(io) = 1;
            be_file_resubmit(f, io);
            return false;
        }
        break;
    default:
        break;
    }
    io->complete(io, res < 0 ? res : 0);
    return true;
}

static void *be_file_reaper(void *arg)
{
    struct be_file *f = arg;
    struct {
        struct be_io *io;
        int res;
    } batch[BE_FILE_REAP_BATCH];
    bool stop = false;

    while (!stop) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&f->ring, &cqe);
        if (ret < 0)
            continue; /* -EINTR; the ring cannot otherwise fail while we own it */

        /*
         * Taking the submit lock here orders this thread after the submitter of every CQE seen:
         * the submitter held the lock across io_uring_submit, so it has released it by now.
         */
        unsigned head, n = 0;
        pthread_mutex_lock(&f->lock);
        io_uring_for_each_cqe(&f->ring, head, cqe)
        {
            if (n == BE_FILE_REAP_BATCH)
                break;
            batch[n].io = io_uring_cqe_get_data(cqe);
            batch[n].res = cqe->res;
            n++;
        }
        io_uring_cq_advance(&f->ring, n);
        pthread_mutex_unlock(&f->lock);

        uint32_t finished = 0;
        for (unsigned i = 0; i < n; i++) {
            if (!batch[i].io)
                stop = true; /* destroy's wake-up NOP */
            else if (be_file_handle_cqe(f, batch[i].io, batch[i].res))
                finished++;
        }
        /* What the callbacks issued (and the resubmitted remainders): one submit for the batch. */
        pthread_mutex_lock(&f->lock);
        if (io_uring_sq_ready(&f->ring))
            be_file_submit_locked(f);
        if (finished) {
            f->inflight -= finished;
            pthread_cond_broadcast(&f->space);
            if (f->inflight == 0)
                pthread_cond_broadcast(&f->drained);
        }
        pthread_mutex_unlock(&f->lock);
    }
    return NULL;
}

/* Stops accepting, waits for every accepted request's callback to return, then tears down. */
static void be_file_destroy(struct backend *be)
{
    struct be_file *f = be_file_from(be);

    pthread_mutex_lock(&f->lock);
    f->closing = true;
    pthread_cond_broadcast(&f->space);
    while (f->inflight > 0)
        pthread_cond_wait(&f->drained, &f->lock);
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&f->ring)))
        io_uring_submit(&f->ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, NULL);
    io_uring_submit(&f->ring);
    pthread_mutex_unlock(&f->lock);

    pthread_join(f->reaper, NULL);
    io_uring_queue_exit(&f->ring);
    close(f->fd);
    pthread_cond_destroy(&f->drained);
    pthread_cond_destroy(&f->space);
    pthread_mutex_destroy(&f->lock);
    free(f->meta_base);
    free(f);
}

/*
 * The allocation map of a regular file from lseek(SEEK_DATA/SEEK_HOLE): a synchronous syscall pair
 * per run on the caller's thread (io_uring has no opcode for it). The filesystem answers from its
 * extent tree and page cache, so data written but not yet written back counts as allocated, and a
 * filesystem without hole tracking reports one data run (allowed: "allocated" is always true).
 * Beyond the end of the file (a size larger than the file) is a hole.
 */
static int be_file_extents(struct backend *be, uint64_t offset, uint64_t length,
                           struct be_extent *ext, uint32_t max)
{
    struct be_file *f = be_file_from(be);
    uint64_t pos = offset;
    uint64_t end = offset + length;
    uint32_t count = 0;

    while (pos < end) {
        off_t data = lseek(f->fd, (off_t)pos, SEEK_DATA);
        uint64_t next;
        uint32_t flags;
        if (data < 0 && errno != ENXIO)
            return count ? (int)count : -errno;
        if (data < 0 || (uint64_t)data > pos) {
            /* ENXIO: no data at or after pos, the rest is a hole. */
            next = data < 0 ? end : (uint64_t)data;
            flags = BE_EXTENT_HOLE;
        } else {
            off_t hole = lseek(f->fd, (off_t)pos, SEEK_HOLE);
            if (hole < 0)
                return count ? (int)count : -errno;
            next = (uint64_t)hole;
            flags = 0;
        }
        if (next > end)
            next = end;
        if (next <= pos)
            next = end; /* a filesystem answering nonsense must not make us spin */
        if (!be_extent_append(ext, &count, max, pos, next - pos, flags))
            break;
        pos = next;
    }
    return (int)count;
}

static int be_file_meta_load(struct backend *be, const char *name, void *buf, size_t cap,
                             size_t *len);
static int be_file_meta_store(struct backend *be, const char *name, const void *buf, size_t len);

static const struct backend_ops be_file_ops = {
    .name = "file",
    .submit = be_file_submit,
    .extents = be_file_extents,
    .destroy = be_file_destroy,
    .meta_load = be_file_meta_load,
    .meta_store = be_file_meta_store,
};

static int be_file_sync_parent(const char *path);

/* ---- metadata blobs: sidecar files "<image>.<name>" ------------------------------------- */

static int be_file_meta_path(struct be_file *f, const char *name, const char *suffix, char *out)
{
    for (const char *c = name; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return -EINVAL;
    }
    if (!f->meta_base)
        return -EOPNOTSUPP;
    int n = snprintf(out, PATH_MAX, "%s%s%s", f->meta_base, name, suffix);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int be_file_meta_load(struct backend *be, const char *name, void *buf, size_t cap,
                             size_t *len)
{
    char path[PATH_MAX];
    int ret = be_file_meta_path(be_file_from(be), name, "", path);
    if (ret)
        return ret;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    for (;;) {
        uint8_t extra;
        ssize_t n = got < cap ? read(fd, (uint8_t *)buf + got, cap - got) : read(fd, &extra, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            break;
        }
        if (n == 0)
            break;
        if (got == cap) {
            ret = -EFBIG;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (ret == 0)
        *len = got;
    return ret;
}

/* Written to "<image>.<name>.tmp", fsync'd, renamed over the blob, and the directory fsync'd:
 * a crash leaves the old blob or the new one, never a torn one. */
static int be_file_meta_store(struct backend *be, const char *name, const void *buf, size_t len)
{
    struct be_file *f = be_file_from(be);
    char path[PATH_MAX], tmp[PATH_MAX];
    int ret = be_file_meta_path(f, name, "", path);
    if (!ret)
        ret = be_file_meta_path(f, name, ".tmp", tmp);
    if (ret)
        return ret;
    if (len == 0) {
        if (unlink(path) < 0 && errno != ENOENT)
            return -errno;
        return be_file_sync_parent(path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < len && ret == 0) {
        ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);
        if (n < 0 && errno != EINTR)
            ret = -errno;
        else if (n > 0)
            done += (size_t)n;
    }
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    close(fd);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret != 0) {
        unlink(tmp);
        return ret;
    }
    return be_file_sync_parent(path);
}

/* A file we created must still exist after a crash: its directory entry has to be durable. */
static int be_file_sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return -errno;
    int ret = fsync(dfd) < 0 ? -errno : 0;
    close(dfd);
    return ret;
}

static int be_file_open(const char *path, uint32_t flags, bool *created)
{
    int oflags = O_CLOEXEC | ((flags & BE_FILE_READONLY) ? O_RDONLY : O_RDWR) |
                 ((flags & BE_FILE_DIRECT) ? O_DIRECT : 0);
    *created = false;
    if (flags & BE_FILE_CREATE) {
        int fd = open(path, oflags | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            *created = true;
            return fd;
        }
        if (errno != EEXIST)
            return -errno;
    }
    int fd = open(path, oflags);
    return fd < 0 ? -errno : fd;
}

int be_file_create(const char *path, uint64_t size, uint32_t flags, struct backend **out,
                   const char **err_detail)
{
    const char *detail = NULL;
    struct be_file *f = NULL;
    bool created = false;
    bool ring_ready = false;
    int fd = -1;
    int ret;

    if (!path || !out) {
        ret = -EINVAL;
        detail = "arguments";
        goto fail;
    }
    *out = NULL;
    if ((flags & BE_FILE_CREATE) && (flags & BE_FILE_READONLY)) {
        ret = -EINVAL;
        detail = "create and read-only together";
        goto fail;
    }

    fd = be_file_open(path, flags, &created);
    if (fd < 0) {
        ret = fd;
        detail = "open";
        goto fail;
    }

    struct stat st;
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        detail = "fstat";
        goto fail;
    }
    bool regular = S_ISREG(st.st_mode);
    uint64_t current;
    if (regular) {
        current = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &current) < 0) {
            ret = -errno;
            detail = "BLKGETSIZE64";
            goto fail;
        }
    } else {
        ret = -EINVAL;
        detail = "not a regular file or block device";
        goto fail;
    }

    bool extended = false;
    if (size == 0) {
        size = current;
    } else if (size > current) {
        if (!regular || (flags & BE_FILE_READONLY)) {
            ret = -EINVAL;
            detail = regular ? "size beyond a read-only file" : "size beyond the device";
            goto fail;
        }
        if (ftruncate(fd, (off_t)size) < 0) {
            ret = -errno;
            detail = "ftruncate";
            goto fail;
        }
        extended = true;
    }
    if (size == 0) {
        ret = -EINVAL;
        detail = "empty file and no size";
        goto fail;
    }
    if ((flags & BE_FILE_DIRECT) && size % BE_FILE_DIRECT_ALIGN != 0) {
        ret = -EINVAL;
        detail = "size not a multiple of 512 with O_DIRECT";
        goto fail;
    }
    /* The new size (and the new name) must survive a crash like the data written later. */
    if (extended && fsync(fd) < 0) {
        ret = -errno;
        detail = "fsync";
        goto fail;
    }
    if (created && (ret = be_file_sync_parent(path)) < 0) {
        detail = "fsync of the parent directory";
        goto fail;
    }

    f = calloc(1, sizeof(*f));
    if (!f) {
        ret = -ENOMEM;
        detail = "calloc";
        goto fail;
    }
    struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE,
                                     .cq_entries = BE_FILE_CQ_ENTRIES};
    ret = io_uring_queue_init_params(BE_FILE_RING_ENTRIES, &f->ring, &params);
    if (ret < 0) {
        detail = "io_uring_queue_init";
        goto fail;
    }
    ring_ready = true;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->space, NULL);
    pthread_cond_init(&f->drained, NULL);
    f->fd = fd;
    f->direct = (flags & BE_FILE_DIRECT) != 0;
    bool writable = !(flags & BE_FILE_READONLY);
    f->be.ops = &be_file_ops;
    /* Metadata sidecars next to a writable image file (not next to a device node). */
    if (regular && writable && (f->meta_base = malloc(strlen(path) + 2)) != NULL) {
        strcpy(f->meta_base, path);
        strcat(f->meta_base, ".");
    }
    f->be.size = size;
    f->be.caps = (struct be_caps){
        .read_only = !writable,
        .can_flush = true,
        .can_fua = writable,
        /* A punched hole in a block device is not guaranteed; files always read back zeros. */
        .can_trim = writable && regular,
        .trim_zeroes = writable && regular,
        .can_zero = writable,
        /* SEEK_DATA/SEEK_HOLE answer for regular files; a block device has no hole map. */
        .can_extents = regular,
        .can_meta = f->meta_base != NULL, /* sidecar metadata next to a writable image file */
    };

    /* The reaper takes no signals: the application's handlers belong to its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&f->reaper, NULL, be_file_reaper, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret < 0) {
        detail = "pthread_create";
        pthread_cond_destroy(&f->drained);
        pthread_cond_destroy(&f->space);
        pthread_mutex_destroy(&f->lock);
        goto fail;
    }
    *out = &f->be;
    return 0;

fail:
    if (ring_ready)
        io_uring_queue_exit(&f->ring);
    if (f)
        free(f->meta_base);
    free(f);
    if (fd >= 0)
        close(fd);
    if (err_detail)
        *err_detail = detail;
    return ret;
}
