/*
 * The mock byte store of mock_backend.h. Reads and writes copy between the flat buffer and the
 * request's iov, checking that the request stays inside the store and that the iov lengths add
 * up to the request length (a device bug would abort the test). DISCARD and WRITE_ZEROES zero the
 * range; the allocation map (MOCK_GRAN pieces, for be_extents) marks what WRITE touched and what a
 * DISCARD covered whole.
 */
#include "mock_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void mock_execute(struct mock_backend *m, struct be_io *io)
{
    int result = 0;
    pthread_mutex_lock(&m->lock);
    bool fail = m->fail_enabled && m->fail_op == io->op;
    int err = m->fail_err;
    pthread_mutex_unlock(&m->lock);
    if (fail) {
        io->complete(io, err);
        return;
    }
    if (io->op == BE_OP_READ || io->op == BE_OP_WRITE) {
        uint64_t sum = 0;
        for (int i = 0; i < io->iovcnt; i++)
            sum += io->iov[i].iov_len;
        if (sum != io->length || io->offset > m->be.size || io->length > m->be.size - io->offset)
            abort();
        if (m->be.size > (1ull << 30))
            abort();
        uint64_t off = io->offset;
        for (int i = 0; i < io->iovcnt; i++) {
            if (io->op == BE_OP_READ)
                memcpy(io->iov[i].iov_base, m->data + off, io->iov[i].iov_len);
            else
                memcpy(m->data + off, io->iov[i].iov_base, io->iov[i].iov_len);
            off += io->iov[i].iov_len;
        }
        if (io->op == BE_OP_WRITE && io->length)
            memset(m->alloc + io->offset / MOCK_GRAN, 1,
                   (io->offset + io->length - 1) / MOCK_GRAN - io->offset / MOCK_GRAN + 1);
    } else if (io->op == BE_OP_DISCARD || io->op == BE_OP_WRITE_ZEROES) {
        bool discard = io->op == BE_OP_DISCARD;
        if (io->offset > m->be.size || io->length > m->be.size - io->offset ||
            m->be.size > (1ull << 30))
            abort();
        if (discard ? !m->be.caps.can_trim : !m->be.caps.can_zero) {
            result = -EOPNOTSUPP;
        } else {
            memset(m->data + io->offset, 0, io->length);
            if (discard) {
                uint64_t first = (io->offset + MOCK_GRAN - 1) / MOCK_GRAN;
                uint64_t end = (io->offset + io->length) / MOCK_GRAN;
                if (end > first)
                    memset(m->alloc + first, 0, end - first);
            }
        }
    } else if (io->op == BE_OP_FLUSH) {
        if (!m->be.caps.can_flush)
            result = -EOPNOTSUPP;
    } else {
        result = -EOPNOTSUPP;
    }
    io->complete(io, result);
}

static void mock_submit(struct backend *be, struct be_io *io)
{
    struct mock_backend *m = (struct mock_backend *)be;
    pthread_mutex_lock(&m->lock);
    if (m->nreq < MOCK_LOG) {
        struct mock_req *r = &m->log[m->nreq];
        r->op = io->op;
        r->flags = io->flags;
        r->offset = io->offset;
        r->length = io->length;
        r->iovcnt = io->iovcnt;
    }
    m->nreq++;
    if (m->deferred) {
        if (m->npending == MOCK_MAX_PENDING)
            abort();
        m->pending[m->npending++] = io;
        pthread_mutex_unlock(&m->lock);
        return;
    }
    pthread_mutex_unlock(&m->lock);
    mock_execute(m, io);
}

static void mock_destroy(struct backend *be)
{
    struct mock_backend *m = (struct mock_backend *)be;
    mock_backend_release(m);
    pthread_mutex_destroy(&m->lock);
    free(m->meta);
    free(m->alloc);
    free(m->data);
    free(m);
}

static int mock_extents(struct backend *be, uint64_t offset, uint64_t length, struct be_extent *ext,
                        uint32_t max)
{
    struct mock_backend *m = (struct mock_backend *)be;
    uint32_t n = 0;
    uint64_t pos = offset, end = offset + length;
    pthread_mutex_lock(&m->lock);
    m->nextents++;
    pthread_mutex_unlock(&m->lock);
    while (pos < end) {
        uint64_t g = pos / MOCK_GRAN;
        uint64_t next = (g + 1) * MOCK_GRAN < end ? (g + 1) * MOCK_GRAN : end;
        uint32_t flags = m->alloc[g] ? 0 : BE_EXTENT_HOLE;
        uint32_t limit = m->extent_window && m->extent_window < max ? m->extent_window : max;
        if (!be_extent_append(ext, &n, limit, pos, next - pos, flags))
            break;
        pos = next;
    }
    return (int)n;
}

static int mock_meta_load(struct backend *be, const char *name, void *buf, size_t cap, size_t *len);
static int mock_meta_store(struct backend *be, const char *name, const void *buf, size_t len);

static const struct backend_ops mock_ops = {
    .name = "mock",
    .submit = mock_submit,
    .extents = mock_extents,
    .destroy = mock_destroy,
    .meta_load = mock_meta_load,
    .meta_store = mock_meta_store,
};

static int mock_meta_load(struct backend *be, const char *name, void *buf, size_t cap, size_t *len)
{
    struct mock_backend *m = (struct mock_backend *)be;
    if (strcmp(name, "pr") != 0 || !m->meta_present)
        return -ENOENT;
    if (m->meta_len > cap)
        return -EFBIG;
    memcpy(buf, m->meta, m->meta_len);
    *len = m->meta_len;
    return 0;
}

static int mock_meta_store(struct backend *be, const char *name, const void *buf, size_t len)
{
    struct mock_backend *m = (struct mock_backend *)be;
    if (strcmp(name, "pr") != 0)
        abort();
    m->nmeta_store++;
    if (m->meta_fail)
        return m->meta_fail;
    free(m->meta);
    m->meta = NULL;
    m->meta_len = 0;
    m->meta_present = len > 0;
    if (len) {
        m->meta = malloc(len);
        if (!m->meta)
            abort();
        memcpy(m->meta, buf, len);
        m->meta_len = len;
    }
    return 0;
}

void mock_backend_enable_meta(struct mock_backend *m)
{
    m->be.caps.can_meta = true;
}

struct mock_backend *mock_backend_create(uint64_t size, const struct be_caps *caps)
{
    struct mock_backend *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    /* A store larger than 1 GiB has no bytes behind it: only capacity tests use one. */
    m->data = calloc(1, size && size <= (1ull << 30) ? size : 1);
    m->alloc = calloc(1, size && size <= (1ull << 30) ? size / MOCK_GRAN + 1 : 1);
    if (!m->data || !m->alloc) {
        free(m->data);
        free(m->alloc);
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->be.ops = &mock_ops;
    m->be.size = size;
    if (caps)
        m->be.caps = *caps;
    return m;
}

void mock_backend_fail(struct mock_backend *m, enum be_op op, int err)
{
    pthread_mutex_lock(&m->lock);
    m->fail_enabled = err != 0;
    m->fail_op = op;
    m->fail_err = err;
    pthread_mutex_unlock(&m->lock);
}

int mock_backend_release(struct mock_backend *m)
{
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        if (m->npending == 0) {
            pthread_mutex_unlock(&m->lock);
            return n;
        }
        struct be_io *io = m->pending[0];
        memmove(m->pending, m->pending + 1, (size_t)(m->npending - 1) * sizeof(m->pending[0]));
        m->npending--;
        pthread_mutex_unlock(&m->lock);
        mock_execute(m, io);
        n++;
    }
}

int mock_backend_count(struct mock_backend *m, enum be_op op)
{
    int n = 0;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nreq && i < MOCK_LOG; i++)
        n += m->log[i].op == op;
    pthread_mutex_unlock(&m->lock);
    return n;
}

const struct mock_req *mock_backend_last(struct mock_backend *m, enum be_op op)
{
    const struct mock_req *r = NULL;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nreq && i < MOCK_LOG; i++) {
        if (m->log[i].op == op)
            r = &m->log[i];
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

void mock_backend_clear_log(struct mock_backend *m)
{
    pthread_mutex_lock(&m->lock);
    m->nreq = 0;
    pthread_mutex_unlock(&m->lock);
}
