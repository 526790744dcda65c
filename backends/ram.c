/*
 * The sparse RAM byte store (be_ram_create): the storage behind the virtual miniport's RAM disks.
 * The address space is cut into 4 KiB pages held in a two-level table: a top-level array of leaf
 * pointers sized at create time, and leaves of 512 page pointers (2 MiB each) allocated on first
 * write. A page is allocated on its first write; reads of pages never written return zeros and
 * allocate nothing, so a 1 TiB disk costs a 4 MiB (mostly untouched) top-level array until used.
 * Every request completes inline, before be_submit() returns, with 0 or a negative errno;
 * -EINVAL for a range beyond the size or an iov that does not add up to the length, -ENOMEM when a
 * first-write page cannot be allocated. FLUSH and FUA are no-ops (nothing is volatile beyond the
 * process), DISCARD and WRITE_ZEROES free whole pages and zero partial ones (trim_zeroes). The
 * allocation map (can_extents) is the page table itself: a page is allocated or a hole.
 *
 * Concurrency: leaves and pages are installed with compare-and-swap, so two first writes racing to
 * the same leaf or page agree on one and free the other. Leaves are never freed before destroy, so
 * a leaf pointer read without a lock stays valid. Pages, though, are freed by DISCARD while another
 * thread may be reading them; each leaf therefore carries a reader-writer lock that READ and WRITE
 * take shared (many at once, one leaf at a time) and DISCARD/WRITE_ZEROES take exclusive, and a
 * page pointer is only followed while its leaf's lock is held. The lock is per 2 MiB leaf, not
 * global: requests on different leaves never touch the same lock, and a discard stalls only the
 * I/O on the leaf it is freeing. The locks prefer writers, so a steady read load cannot starve a
 * discard. Overlapping concurrent writes are unordered byte by byte, as on real media.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/ram.h"

#define BE_RAM_PAGE_SHIFT 12
#define BE_RAM_LEAF_SHIFT 9 /* 512 pages, 2 MiB per leaf */
#define BE_RAM_LEAF_PAGES (1u << BE_RAM_LEAF_SHIFT)
#define BE_RAM_LEAF_BYTES ((uint64_t)BE_RAM_PAGE_SIZE << BE_RAM_LEAF_SHIFT)

_Static_assert(BE_RAM_PAGE_SIZE == 1u << BE_RAM_PAGE_SHIFT, "page size and shift disagree");

struct be_ram_leaf {
    pthread_rwlock_t lock; /* shared: READ/WRITE; exclusive: freeing or zeroing pages */
    _Atomic(uint8_t *) pages[BE_RAM_LEAF_PAGES];
};

struct be_ram {
    struct backend be;
    uint64_t nleaves;
    _Atomic(struct be_ram_leaf *) *leaves;
    atomic_uint_fast64_t allocated_pages;
    pthread_rwlockattr_t lock_attr;

    /* Metadata blobs (backend.h meta_load/meta_store): in memory, as long as the store. */
    pthread_mutex_t meta_lock;
    struct be_ram_meta {
        char name[16];
        uint8_t *data;
        size_t len;
    } meta[4];
};

/* Walks an iovec array as one byte stream, `count` bytes at a time. */
struct be_ram_cursor {
    const struct iovec *iov;
    int idx;
    size_t off;
};

static const struct backend_ops be_ram_ops;

static struct be_ram *be_ram_from(struct backend *be)
{
    return (struct be_ram *)be;
}

static void be_ram_copy_out(struct be_ram_cursor *c, const uint8_t *src, size_t count)
{
    while (count) {
        size_t n = c->iov[c->idx].iov_len - c->off;
        if (n > count)
            n = count;
        uint8_t *dst = (uint8_t *)c->iov[c->idx].iov_base + c->off;
        if (src) {
            memcpy(dst, src, n);
            src += n;
        } else {
            memset(dst, 0, n);
        }
        count -= n;
        c->off += n;
        if (c->off == c->iov[c->idx].iov_len) {
            c->idx++;
            c->off = 0;
        }
    }
}

static void be_ram_copy_in(struct be_ram_cursor *c, uint8_t *dst, size_t count)
{
    while (count) {
        size_t n = c->iov[c->idx].iov_len - c->off;
        if (n > count)
            n = count;
        memcpy(dst, (const uint8_t *)c->iov[c->idx].iov_base + c->off, n);
        dst += n;
        count -= n;
        c->off += n;
        if (c->off == c->iov[c->idx].iov_len) {
            c->idx++;
            c->off = 0;
        }
    }
}

static struct be_ram_leaf *be_ram_get_leaf(struct be_ram *r, uint64_t leaf_idx, bool create)
{
    struct be_ram_leaf *leaf = atomic_load_explicit(&r->leaves[leaf_idx], memory_order_acquire);
    if (leaf || !create)
        return leaf;

    struct be_ram_leaf *fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        return NULL;
    if (pthread_rwlock_init(&fresh->lock, &r->lock_attr) != 0) {
        free(fresh);
        return NULL;
    }
    struct be_ram_leaf *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&r->leaves[leaf_idx], &expected, fresh,
                                                memory_order_acq_rel, memory_order_acquire))
        return fresh;
    /* Another first write installed this leaf first; use theirs. */
    pthread_rwlock_destroy(&fresh->lock);
    free(fresh);
    return expected;
}

/* Called with the leaf's lock held shared. */
static uint8_t *be_ram_install_page(struct be_ram *r, struct be_ram_leaf *leaf, uint32_t slot)
{
    uint8_t *fresh = calloc(1, BE_RAM_PAGE_SIZE);
    if (!fresh)
        return NULL;
    uint8_t *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&leaf->pages[slot], &expected, fresh,
                                                memory_order_acq_rel, memory_order_acquire)) {
        atomic_fetch_add_explicit(&r->allocated_pages, 1, memory_order_relaxed);
        return fresh;
    }
    free(fresh);
    return expected;
}

static int be_ram_rw(struct be_ram *r, struct be_io *io)
{
    bool write = io->op == BE_OP_WRITE;
    struct be_ram_cursor cur = {.iov = io->iov};
    struct be_ram_leaf *held = NULL;
    uint64_t pos = io->offset;
    uint64_t left = io->length;
    int ret = 0;

    while (left) {
        uint64_t page_idx = pos >> BE_RAM_PAGE_SHIFT;
        size_t in_page = pos & (BE_RAM_PAGE_SIZE - 1);
        size_t chunk = BE_RAM_PAGE_SIZE - in_page;
        if (chunk > left)
            chunk = left;

        struct be_ram_leaf *leaf = be_ram_get_leaf(r, page_idx >> BE_RAM_LEAF_SHIFT, write);
        if (!leaf) {
            if (write) {
                ret = -ENOMEM;
                break;
            }
            be_ram_copy_out(&cur, NULL, chunk);
            pos += chunk;
            left -= chunk;
            continue;
        }
        if (leaf != held) {
            if (held)
                pthread_rwlock_unlock(&held->lock);
            pthread_rwlock_rdlock(&leaf->lock);
            held = leaf;
        }

        uint32_t slot = page_idx & (BE_RAM_LEAF_PAGES - 1);
        uint8_t *page = atomic_load_explicit(&leaf->pages[slot], memory_order_acquire);
        if (write) {
            if (!page)
                page = be_ram_install_page(r, leaf, slot);
            if (!page) {
                ret = -ENOMEM;
                break;
            }
            be_ram_copy_in(&cur, page + in_page, chunk);
        } else {
            be_ram_copy_out(&cur, page ? page + in_page : NULL, chunk);
        }
        pos += chunk;
        left -= chunk;
    }
    if (held)
        pthread_rwlock_unlock(&held->lock);
    return ret;
}

/*
 * DISCARD and WRITE_ZEROES: both leave the range reading as zeros; whole pages are freed, partial
 * ones zeroed in place. Each leaf's lock is taken exclusive while its pages go, so no reader is
 * inside a page being freed.
 */
static int be_ram_deallocate(struct be_ram *r, uint64_t offset, uint64_t length)
{
    uint64_t pos = offset;
    uint64_t end = offset + length;

    while (pos < end) {
        uint64_t leaf_idx = pos / BE_RAM_LEAF_BYTES;
        uint64_t leaf_end = (leaf_idx + 1) * BE_RAM_LEAF_BYTES;
        if (leaf_end > end)
            leaf_end = end;
        struct be_ram_leaf *leaf = be_ram_get_leaf(r, leaf_idx, false);
        if (!leaf) {
            pos = leaf_end;
            continue;
        }

        pthread_rwlock_wrlock(&leaf->lock);
        while (pos < leaf_end) {
            uint32_t slot = (pos >> BE_RAM_PAGE_SHIFT) & (BE_RAM_LEAF_PAGES - 1);
            size_t in_page = pos & (BE_RAM_PAGE_SIZE - 1);
            size_t chunk = BE_RAM_PAGE_SIZE - in_page;
            if (chunk > leaf_end - pos)
                chunk = leaf_end - pos;
            uint8_t *page = atomic_load_explicit(&leaf->pages[slot], memory_order_relaxed);
            if (page && chunk == BE_RAM_PAGE_SIZE) {
                atomic_store_explicit(&leaf->pages[slot], NULL, memory_order_relaxed);
                free(page);
                atomic_fetch_sub_explicit(&r->allocated_pages, 1, memory_order_relaxed);
            } else if (page) {
                memset(page + in_page, 0, chunk);
            }
            pos += chunk;
        }
        pthread_rwlock_unlock(&leaf->lock);
    }
    return 0;
}

static int be_ram_check(const struct be_ram *r, const struct be_io *io)
{
    if (io->offset > r->be.size || io->length > r->be.size - io->offset)
        return -EINVAL;
    if (io->op == BE_OP_READ || io->op == BE_OP_WRITE) {
        if (io->iovcnt < 0 || (io->iovcnt > 0 && !io->iov))
            return -EINVAL;
        uint64_t sum = 0;
        for (int i = 0; i < io->iovcnt; i++)
            sum += io->iov[i].iov_len;
        if (sum != io->length)
            return -EINVAL;
    }
    return 0;
}

/* be_submit() for RAM: completes inline, in the submitter's context, holding no lock. */
static void be_ram_submit(struct backend *be, struct be_io *io)
{
    struct be_ram *r = be_ram_from(be);
    int ret;

    switch (io->op) {
    case BE_OP_READ:
    case BE_OP_WRITE:
        ret = be_ram_check(r, io);
        if (ret == 0)
            ret = be_ram_rw(r, io);
        break;
    case BE_OP_FLUSH:
        ret = 0;
        break;
    case BE_OP_DISCARD:
    case BE_OP_WRITE_ZEROES:
        ret = be_ram_check(r, io);
        if (ret == 0)
            ret = be_ram_deallocate(r, io->offset, io->length);
        break;
    default:
        ret = -EOPNOTSUPP;
        break;
    }
    io->complete(io, ret);
}

/* ---- metadata blobs --------------------------------------------------------------------- */

static struct be_ram_meta *be_ram_meta_find(struct be_ram *r, const char *name)
{
    for (size_t i = 0; i < sizeof(r->meta) / sizeof(r->meta[0]); i++) {
        if (r->meta[i].data && strcmp(r->meta[i].name, name) == 0)
            return &r->meta[i];
    }
    return NULL;
}

static int be_ram_meta_load(struct backend *be, const char *name, void *buf, size_t cap,
                            size_t *len)
{
    struct be_ram *r = be_ram_from(be);
    pthread_mutex_lock(&r->meta_lock);
    struct be_ram_meta *m = be_ram_meta_find(r, name);
    int ret = 0;
    if (!m) {
        ret = -ENOENT;
    } else if (m->len > cap) {
        ret = -EFBIG;
    } else {
        memcpy(buf, m->data, m->len);
        *len = m->len;
    }
    pthread_mutex_unlock(&r->meta_lock);
    return ret;
}

static int be_ram_meta_store(struct backend *be, const char *name, const void *buf, size_t len)
{
    struct be_ram *r = be_ram_from(be);
    if (strlen(name) >= sizeof(r->meta[0].name))
        return -EINVAL;
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, buf, len);
    }
    pthread_mutex_lock(&r->meta_lock);
    struct be_ram_meta *m = be_ram_meta_find(r, name);
    for (size_t i = 0; !m && len && i < sizeof(r->meta) / sizeof(r->meta[0]); i++) {
        if (!r->meta[i].data)
            m = &r->meta[i];
    }
    int ret = 0;
    if (m) {
        free(m->data);
        m->data = copy;
        m->len = len;
        strcpy(m->name, name);
        copy = NULL;
    } else if (len) {
        ret = -ENOSPC;
    }
    pthread_mutex_unlock(&r->meta_lock);
    free(copy);
    return ret;
}

static void be_ram_meta_free(struct be_ram *r)
{
    for (size_t i = 0; i < sizeof(r->meta) / sizeof(r->meta[0]); i++)
        free(r->meta[i].data);
    pthread_mutex_destroy(&r->meta_lock);
}

/*
 * The allocation map from the page table: an absent leaf is a 2 MiB hole, an absent page a 4 KiB
 * one. Only pointers are compared with NULL, never followed, so no leaf lock is needed: the
 * answer is a snapshot that holds every request completed before the call.
 */
static int be_ram_extents(struct backend *be, uint64_t offset, uint64_t length,
                          struct be_extent *ext, uint32_t max)
{
    struct be_ram *r = be_ram_from(be);
    uint64_t pos = offset;
    uint64_t end = offset + length;
    uint32_t count = 0;

    while (pos < end) {
        uint64_t leaf_idx = pos / BE_RAM_LEAF_BYTES;
        struct be_ram_leaf *leaf = be_ram_get_leaf(r, leaf_idx, false);
        uint64_t step_end;
        uint32_t flags;
        if (!leaf) {
            step_end = (leaf_idx + 1) * BE_RAM_LEAF_BYTES;
            flags = BE_EXTENT_HOLE;
        } else {
            uint32_t slot = (pos >> BE_RAM_PAGE_SHIFT) & (BE_RAM_LEAF_PAGES - 1);
            step_end = ((pos >> BE_RAM_PAGE_SHIFT) + 1) << BE_RAM_PAGE_SHIFT;
            flags =
                atomic_load_explicit(&leaf->pages[slot], memory_order_acquire) ? 0 : BE_EXTENT_HOLE;
        }
        if (step_end > end)
            step_end = end;
        if (!be_extent_append(ext, &count, max, pos, step_end - pos, flags))
            break;
        pos = step_end;
    }
    return (int)count;
}

static void be_ram_destroy(struct backend *be)
{
    struct be_ram *r = be_ram_from(be);

    be_ram_meta_free(r);

    for (uint64_t i = 0; i < r->nleaves; i++) {
        struct be_ram_leaf *leaf = atomic_load_explicit(&r->leaves[i], memory_order_acquire);
        if (!leaf)
            continue;
        for (uint32_t j = 0; j < BE_RAM_LEAF_PAGES; j++)
            free(atomic_load_explicit(&leaf->pages[j], memory_order_relaxed));
        pthread_rwlock_destroy(&leaf->lock);
        free(leaf);
    }
    pthread_rwlockattr_destroy(&r->lock_attr);
    free(r->leaves);
    free(r);
}

static const struct backend_ops be_ram_ops = {
    .name = "ram",
    .submit = be_ram_submit,
    .extents = be_ram_extents,
    .destroy = be_ram_destroy,
    .meta_load = be_ram_meta_load,
    .meta_store = be_ram_meta_store,
};

int be_ram_create(uint64_t size, struct backend **out)
{
    if (!out || size == 0)
        return -EINVAL;
    *out = NULL;

    uint64_t nleaves = size / BE_RAM_LEAF_BYTES + (size % BE_RAM_LEAF_BYTES != 0);
    if (nleaves > SIZE_MAX / sizeof(struct be_ram_leaf *))
        return -ENOMEM;

    struct be_ram *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    /* calloc of a large array maps fresh zero pages: untouched parts of it cost no memory. */
    r->leaves = calloc(nleaves, sizeof(*r->leaves));
    if (!r->leaves) {
        free(r);
        return -ENOMEM;
    }
    pthread_rwlockattr_init(&r->lock_attr);
    pthread_rwlockattr_setkind_np(&r->lock_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    r->nleaves = nleaves;
    pthread_mutex_init(&r->meta_lock, NULL);
    atomic_init(&r->allocated_pages, 0);
    r->be.ops = &be_ram_ops;
    r->be.size = size;
    r->be.caps = (struct be_caps){
        .can_flush = true,
        .can_fua = true,
        .can_trim = true,
        .trim_zeroes = true,
        .can_zero = true,
        .can_extents = true,
        .can_meta = true,
    };
    *out = &r->be;
    return 0;
}

uint64_t be_ram_allocated_pages(const struct backend *be)
{
    if (!be || be->ops != &be_ram_ops)
        return 0;
    const struct be_ram *r = (const struct be_ram *)be;
    return atomic_load_explicit(&((struct be_ram *)r)->allocated_pages, memory_order_relaxed);
}
