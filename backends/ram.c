/*
 * The sparse RAM byte store (be_ram_create): the storage behind the virtual miniport's RAM disks.
 * The whole disk is one private anonymous mapping reserved at create (MAP_NORESERVE: address
 * space only), so a byte's address is base + offset and the MMU does the lookup. The kernel
 * supplies a zeroed page on the first write to it; a bitmap (one bit per 4 KiB page) records
 * which pages were written, so reads of pages never written are answered with zeros without
 * touching (and faulting in) the mapping, and a 1 TiB disk costs its bitmap (32 MiB of address
 * space) and region array (4 MiB) until used, both resident only where touched. Every request
 * completes inline, before be_submit() returns, with 0 or a negative errno; -EINVAL for a range
 * beyond the size or an iov that does not add up to the length. FLUSH and FUA are no-ops (nothing
 * is volatile beyond the process), DISCARD and WRITE_ZEROES give whole pages back to the kernel
 * (madvise MADV_DONTNEED: they read as zeros and hold no memory afterwards) and zero partial ones
 * in place (trim_zeroes). The allocation map (can_extents) is the bitmap.
 *
 * Concurrency: the disk is cut into 2 MiB regions, each with one 32-bit lock word: READ and
 * WRITE hold it shared (an atomic add and subtract, no syscall), DISCARD and WRITE_ZEROES
 * exclusive, writer-preferring, so a discard is atomic with respect to the I/O on its region and
 * a steady read load cannot starve it. The invariant it keeps: a page whose bit is clear holds
 * zeros in the mapping (never touched, or given back by a discard that also cleared the bit), so
 * a partial first write needs no zeroing of its own. The mapping itself never goes away before
 * destroy, so no pointer is ever freed under a reader. Requests on different regions touch no
 * common lock; overlapping concurrent writes are unordered byte by byte, as on real media.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backends/backend.h"
#include "backends/ram.h"

#define BE_RAM_PAGE_SHIFT   12
#define BE_RAM_REGION_SHIFT 9 /* 512 pages, 2 MiB per region */
#define BE_RAM_REGION_PAGES (1u << BE_RAM_REGION_SHIFT)
#define BE_RAM_WORD_PAGES   64u                    /* pages per bitmap word */
#define BE_RAM_EXCLUSIVE    0x80000000u            /* lock word: a discard holds or waits for it */
#define BE_RAM_SHARED_MASK  (BE_RAM_EXCLUSIVE - 1) /* lock word: READ/WRITE holders */
#ifdef MADV_COLLAPSE
#define BE_RAM_MADV_COLLAPSE MADV_COLLAPSE
#else
#define BE_RAM_MADV_COLLAPSE 25 /* Linux 6.1 uapi value, for older C library headers */
#endif

_Static_assert(BE_RAM_PAGE_SIZE == 1u << BE_RAM_PAGE_SHIFT, "page size and shift disagree");
_Static_assert(BE_RAM_REGION_PAGES % BE_RAM_WORD_PAGES == 0, "a region is whole bitmap words");

struct be_ram_region {
    atomic_uint lock;  /* BE_RAM_EXCLUSIVE | number of shared holders */
    atomic_uint pages; /* bits set in this region's part of the bitmap */
};

struct be_ram {
    struct backend be;
    uint8_t *base; /* the disk: base[offset], map_len bytes */
    size_t map_len;
    uint64_t npages;
    uint64_t nregions;
    _Atomic uint64_t *bitmap; /* bit p: page p was written and not discarded since */
    struct be_ram_region *regions;
    atomic_uint_fast64_t allocated_pages;
    atomic_bool collapse; /* MADV_COLLAPSE works here (cleared at its first EINVAL) */
    void *map;            /* what mmap returned; base is it rounded up to 2 MiB */

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

/* ---- region locks ----------------------------------------------------------------------- */

static void be_ram_backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

/* READ/WRITE: one atomic add when no discard holds or waits for the region. */
static void be_ram_lock_shared(struct be_ram_region *g)
{
    unsigned spins = 0;
    for (;;) {
        unsigned v = atomic_fetch_add_explicit(&g->lock, 1, memory_order_acquire);
        if (!(v & BE_RAM_EXCLUSIVE))
            return;
        /* A discard holds it or waits for it (writer preference): step back until it is done. */
        atomic_fetch_sub_explicit(&g->lock, 1, memory_order_relaxed);
        while (atomic_load_explicit(&g->lock, memory_order_relaxed) & BE_RAM_EXCLUSIVE)
            be_ram_backoff(&spins);
    }
}

static void be_ram_unlock_shared(struct be_ram_region *g)
{
    atomic_fetch_sub_explicit(&g->lock, 1, memory_order_release);
}

/* DISCARD/WRITE_ZEROES: claim the exclusive bit (new shared holders then step back), then wait
 * for the shared holders already inside to leave. */
static void be_ram_lock_exclusive(struct be_ram_region *g)
{
    unsigned spins = 0;
    unsigned v = atomic_load_explicit(&g->lock, memory_order_relaxed);
    for (;;) {
        if (v & BE_RAM_EXCLUSIVE) {
            be_ram_backoff(&spins);
            v = atomic_load_explicit(&g->lock, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak_explicit(&g->lock, &v, v | BE_RAM_EXCLUSIVE,
                                                         memory_order_acquire,
                                                         memory_order_relaxed)) {
            break;
        }
    }
    while (atomic_load_explicit(&g->lock, memory_order_acquire) & BE_RAM_SHARED_MASK)
        be_ram_backoff(&spins);
}

static void be_ram_unlock_exclusive(struct be_ram_region *g)
{
    atomic_fetch_and_explicit(&g->lock, ~BE_RAM_EXCLUSIVE, memory_order_release);
}

/* ---- the bitmap ------------------------------------------------------------------------- */

static bool be_ram_page_written(const struct be_ram *r, uint64_t page)
{
    uint64_t word =
        atomic_load_explicit(&r->bitmap[page / BE_RAM_WORD_PAGES], memory_order_relaxed);
    return (word >> (page % BE_RAM_WORD_PAGES)) & 1;
}

/*
 * A region whose 512 pages are all written becomes one 2 MiB huge page (MADV_COLLAPSE, Linux 6.1;
 * once per region, about a quarter of a millisecond): reads of a filled disk then cost one TLB
 * entry per 2 MiB instead of one per 4 KiB, which is most of a random 4 KiB read's cost. Only
 * full regions, so a sparse disk stays sparse; a later discard inside it splits it again. Where
 * the kernel cannot (no THP, an older kernel), the region simply stays in 4 KiB pages.
 */
static void be_ram_collapse(struct be_ram *r, uint64_t region)
{
    if (!atomic_load_explicit(&r->collapse, memory_order_relaxed))
        return;
    const size_t region_bytes = (size_t)BE_RAM_PAGE_SIZE << BE_RAM_REGION_SHIFT;
    if (madvise(r->base + region * region_bytes, region_bytes, BE_RAM_MADV_COLLAPSE) != 0 &&
        (errno == EINVAL || errno == ENOSYS))
        atomic_store_explicit(&r->collapse, false, memory_order_relaxed); /* not here: stop */
}

/* Called with the page's region held shared by a WRITE; racing writers agree on one setter. */
static void be_ram_mark_written(struct be_ram *r, uint64_t page)
{
    uint64_t bit = 1ull << (page % BE_RAM_WORD_PAGES);
    _Atomic uint64_t *word = &r->bitmap[page / BE_RAM_WORD_PAGES];
    if (atomic_load_explicit(word, memory_order_relaxed) & bit)
        return;
    if (atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit)
        return;
    uint64_t region = page >> BE_RAM_REGION_SHIFT;
    unsigned before = atomic_fetch_add_explicit(&r->regions[region].pages, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->allocated_pages, 1, memory_order_relaxed);
    if (before == BE_RAM_REGION_PAGES - 1)
        be_ram_collapse(r, region);
}

/* ---- READ and WRITE ----------------------------------------------------------------------- */

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

/*
 * READ and WRITE, page by page under each region's lock held shared. A read copies the written
 * pages out of the mapping and zeros for the others (without touching their part of the
 * mapping); a write copies into the mapping (the kernel faults a zeroed page in on first touch)
 * and then marks the page written.
 */
static int be_ram_rw(struct be_ram *r, struct be_io *io)
{
    bool write = io->op == BE_OP_WRITE;
    struct be_ram_cursor cur = {.iov = io->iov};
    struct be_ram_region *held = NULL;
    uint64_t pos = io->offset;
    uint64_t left = io->length;

    while (left) {
        uint64_t page = pos >> BE_RAM_PAGE_SHIFT;
        size_t chunk = BE_RAM_PAGE_SIZE - (pos & (BE_RAM_PAGE_SIZE - 1));
        if (chunk > left)
            chunk = left;
        struct be_ram_region *g = &r->regions[page >> BE_RAM_REGION_SHIFT];
        if (g != held) {
            if (held)
                be_ram_unlock_shared(held);
            be_ram_lock_shared(g);
            held = g;
        }
        if (write) {
            be_ram_copy_in(&cur, r->base + pos, chunk);
            be_ram_mark_written(r, page);
        } else {
            be_ram_copy_out(&cur, be_ram_page_written(r, page) ? r->base + pos : NULL, chunk);
        }
        pos += chunk;
        left -= chunk;
    }
    if (held)
        be_ram_unlock_shared(held);
    return 0;
}

/*
 * DISCARD and WRITE_ZEROES: both leave the range reading as zeros. Whole written pages go back to
 * the kernel (one madvise per run) and their bits are cleared; written pages only partly inside
 * are zeroed in place and stay allocated. Each region's lock is held exclusive while its pages
 * go; regions without a written page are skipped without taking it.
 */
static int be_ram_deallocate(struct be_ram *r, uint64_t offset, uint64_t length)
{
    const uint64_t region_bytes = (uint64_t)BE_RAM_PAGE_SIZE << BE_RAM_REGION_SHIFT;
    uint64_t pos = offset;
    uint64_t end = offset + length;
    int ret = 0;

    while (pos < end) {
        uint64_t region = pos / region_bytes;
        uint64_t region_end = (region + 1) * region_bytes;
        if (region_end > end)
            region_end = end;
        struct be_ram_region *g = &r->regions[region];
        if (atomic_load_explicit(&g->pages, memory_order_relaxed) == 0) {
            pos = region_end; /* nothing written here: already reads as zeros */
            continue;
        }

        be_ram_lock_exclusive(g);
        uint64_t run_start = 0, run_len = 0; /* whole written pages to give back */
        while (pos < region_end) {
            uint64_t page = pos >> BE_RAM_PAGE_SHIFT;
            size_t chunk = BE_RAM_PAGE_SIZE - (pos & (BE_RAM_PAGE_SIZE - 1));
            if (chunk > region_end - pos)
                chunk = region_end - pos;
            if (be_ram_page_written(r, page)) {
                if (chunk == BE_RAM_PAGE_SIZE) {
                    atomic_fetch_and_explicit(&r->bitmap[page / BE_RAM_WORD_PAGES],
                                              ~(1ull << (page % BE_RAM_WORD_PAGES)),
                                              memory_order_relaxed);
                    atomic_fetch_sub_explicit(&g->pages, 1, memory_order_relaxed);
                    atomic_fetch_sub_explicit(&r->allocated_pages, 1, memory_order_relaxed);
                    if (run_len && run_start + run_len == pos) {
                        run_len += chunk;
                    } else {
                        if (run_len && madvise(r->base + run_start, run_len, MADV_DONTNEED))
                            ret = -errno;
                        run_start = pos;
                        run_len = chunk;
                    }
                } else {
                    memset(r->base + pos, 0, chunk);
                }
            }
            pos += chunk;
        }
        if (run_len && madvise(r->base + run_start, run_len, MADV_DONTNEED))
            ret = -errno;
        be_ram_unlock_exclusive(g);
    }
    return ret;
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
 * The allocation map from the bitmap: a region with no written page is a 2 MiB hole, otherwise
 * page by page. Bits are only read, so no lock is needed: the answer is a snapshot that holds
 * every request completed before the call.
 */
static int be_ram_extents(struct backend *be, uint64_t offset, uint64_t length,
                          struct be_extent *ext, uint32_t max)
{
    struct be_ram *r = be_ram_from(be);
    const uint64_t region_bytes = (uint64_t)BE_RAM_PAGE_SIZE << BE_RAM_REGION_SHIFT;
    uint64_t pos = offset;
    uint64_t end = offset + length;
    uint32_t count = 0;

    while (pos < end) {
        uint64_t region = pos / region_bytes;
        uint64_t step_end;
        uint32_t flags;
        if (atomic_load_explicit(&r->regions[region].pages, memory_order_relaxed) == 0) {
            step_end = (region + 1) * region_bytes;
            flags = BE_EXTENT_HOLE;
        } else {
            uint64_t page = pos >> BE_RAM_PAGE_SHIFT;
            step_end = (page + 1) << BE_RAM_PAGE_SHIFT;
            flags = be_ram_page_written(r, page) ? 0 : BE_EXTENT_HOLE;
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
    munmap(r->map, r->map_len + ((size_t)BE_RAM_PAGE_SIZE << BE_RAM_REGION_SHIFT));
    free(r->bitmap);
    free(r->regions);
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

    /* Whole regions, so the bitmap is whole words and every page has its region. */
    const uint64_t region_bytes = (uint64_t)BE_RAM_PAGE_SIZE << BE_RAM_REGION_SHIFT;
    if (size > UINT64_MAX - region_bytes)
        return -ENOMEM;
    uint64_t nregions = (size + region_bytes - 1) / region_bytes;
    uint64_t npages = nregions * BE_RAM_REGION_PAGES;
    if (nregions * region_bytes > SIZE_MAX)
        return -ENOMEM;

    struct be_ram *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    /* calloc of a large array maps fresh zero pages: untouched parts of it cost no memory. */
    r->bitmap = calloc(npages / BE_RAM_WORD_PAGES, sizeof(*r->bitmap));
    r->regions = calloc(nregions, sizeof(*r->regions));
    /* Address space only: pages become resident when written (and stop being on discard). One
     * region more than needed, so that regions can start on 2 MiB boundaries (huge pages). */
    r->map_len = (size_t)(nregions * region_bytes);
    if (r->map_len > SIZE_MAX - region_bytes) {
        free(r->bitmap);
        free(r->regions);
        free(r);
        return -ENOMEM;
    }
    void *base = mmap(NULL, r->map_len + region_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!r->bitmap || !r->regions || base == MAP_FAILED) {
        if (base != MAP_FAILED)
            munmap(base, r->map_len + region_bytes);
        free(r->bitmap);
        free(r->regions);
        free(r);
        return -ENOMEM;
    }
    r->map = base;
    r->base = (uint8_t *)(((uintptr_t)base + region_bytes - 1) & ~(uintptr_t)(region_bytes - 1));
    atomic_init(&r->collapse, true);
    r->npages = npages;
    r->nregions = nregions;
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
