/*
 * The RAM test double of ramstack.h. Its lock models nothing in Storport: it only guards the
 * double's queue of requests waiting for the worker.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <storstack/nt/ntstatus.h>

#include "api/api_p.h"
#include <storstack/storage/ntddscsi.h>
#include "tests/unit/api/ramstack.h"

struct ram_req {
    struct ram_req *next;
    storstack_handle_t *handle;
    int write;
    uint8_t *buf;
    uint32_t length;
    uint64_t offset;
    storstack_io_callback *cb;
    void *ctx;
};

struct ramstack {
    storstack_t base;
    char last_principal[STORSTACK_PRINCIPAL_MAX]; /* the identity of the last open */
    char last_transport_id[STORSTACK_TRANSPORT_ID_MAX];
    uint64_t last_nexus;
    uint8_t *data;
    size_t size;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ram_req *queue;
    int hold, stop, open_handles, flushes;
    pthread_t worker;
    uint8_t data_out[512];
    uint32_t data_out_length;
};

static struct ramstack *ram_of(storstack_t *s)
{
    return (struct ramstack *)s;
}

static void *ram_worker(void *arg)
{
    struct ramstack *rs = arg;
    pthread_mutex_lock(&rs->lock);
    for (;;) {
        while (!rs->stop && (!rs->queue || rs->hold))
            pthread_cond_wait(&rs->cond, &rs->lock);
        if (rs->stop && !rs->queue)
            break;
        pthread_mutex_unlock(&rs->lock);
        struct timespec ts = {0, 200000}; /* let a batch gather, so order gets shuffled */
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&rs->lock);
        struct ram_req *batch = rs->queue; /* newest first: reverse order of arrival */
        rs->queue = NULL;
        pthread_mutex_unlock(&rs->lock);
        while (batch) {
            struct ram_req *r = batch;
            batch = r->next;
            if (r->write)
                memcpy(rs->data + r->offset, r->buf, r->length);
            else
                memcpy(r->buf, rs->data + r->offset, r->length);
            storstack_io_callback *cb = r->cb;
            void *ctx = r->ctx;
            uint32_t len = r->length;
            free(r);
            cb(ctx, STATUS_SUCCESS, len);
        }
        pthread_mutex_lock(&rs->lock);
    }
    pthread_mutex_unlock(&rs->lock);
    return NULL;
}

static void ram_destroy(storstack_t *s)
{
    struct ramstack *rs = ram_of(s);
    pthread_mutex_lock(&rs->lock);
    rs->stop = 1;
    rs->hold = 0;
    pthread_cond_broadcast(&rs->cond);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->worker, NULL);
    free(rs->data);
    free(rs);
}

static storstack_status_t ram_open(storstack_t *s, const char *name, uint32_t access,
                                   const struct storstack_identity *who, storstack_handle_t **out)
{
    struct ramstack *rs = ram_of(s);
    if (strcmp(name, "PhysicalDrive0") && strcmp(name, "\\\\.\\PhysicalDrive0"))
        return STATUS_OBJECT_NAME_NOT_FOUND;
    pthread_mutex_lock(&rs->lock);
    snprintf(rs->last_principal, sizeof(rs->last_principal), "%s", who ? who->principal : "");
    snprintf(rs->last_transport_id, sizeof(rs->last_transport_id), "%s",
             who && who->transport_id ? who->transport_id : "");
    rs->last_nexus = who ? who->nexus : 0;
    pthread_mutex_unlock(&rs->lock);
    storstack_handle_t *h = calloc(1, sizeof(*h));
    h->stack = s;
    pthread_mutex_lock(&rs->lock);
    rs->open_handles++;
    pthread_mutex_unlock(&rs->lock);
    *out = h;
    return STATUS_SUCCESS;
}

static storstack_status_t ram_close(storstack_handle_t *h)
{
    struct ramstack *rs = ram_of(h->stack);
    pthread_mutex_lock(&rs->lock);
    rs->open_handles--;
    pthread_mutex_unlock(&rs->lock);
    free(h);
    return STATUS_SUCCESS;
}

static storstack_status_t ram_rw(storstack_handle_t *h, int write, void *buf, uint32_t length,
                                 uint64_t offset, storstack_io_callback *cb, void *ctx)
{
    struct ramstack *rs = ram_of(h->stack);
    if (offset > rs->size || length > rs->size - offset)
        return STATUS_INVALID_PARAMETER;
    struct ram_req *r = calloc(1, sizeof(*r));
    *r = (struct ram_req){.handle = h,
                          .write = write,
                          .buf = buf,
                          .length = length,
                          .offset = offset,
                          .cb = cb,
                          .ctx = ctx};
    pthread_mutex_lock(&rs->lock);
    r->next = rs->queue;
    rs->queue = r;
    pthread_cond_broadcast(&rs->cond);
    pthread_mutex_unlock(&rs->lock);
    return STATUS_PENDING;
}

static storstack_status_t ram_flush(storstack_handle_t *h)
{
    struct ramstack *rs = ram_of(h->stack);
    pthread_mutex_lock(&rs->lock);
    rs->flushes++;
    pthread_mutex_unlock(&rs->lock);
    return STATUS_SUCCESS;
}

static storstack_status_t ram_ioctl(storstack_handle_t *h, uint32_t code, const void *in,
                                    uint32_t in_length, void *out, uint32_t out_length,
                                    uint32_t *returned)
{
    struct ramstack *rs = ram_of(h->stack);
    *returned = 0;
    if (code == RAMSTACK_IOCTL_REVERSE) {
        uint32_t n = in_length < out_length ? in_length : out_length;
        for (uint32_t i = 0; i < n; i++)
            ((uint8_t *)out)[i] = ((const uint8_t *)in)[in_length - 1 - i];
        *returned = n;
        return n < in_length ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
    }
    if (code != IOCTL_SCSI_PASS_THROUGH)
        return STATUS_INVALID_DEVICE_REQUEST;
    SCSI_PASS_THROUGH spt;
    if (in_length < sizeof(spt) || out_length < sizeof(spt))
        return STATUS_INVALID_PARAMETER;
    memcpy(&spt, in, sizeof(spt));
    if (spt.DataBufferOffset + spt.DataTransferLength > out_length ||
        spt.SenseInfoOffset + spt.SenseInfoLength > out_length)
        return STATUS_INVALID_PARAMETER;
    uint8_t *o = out;
    uint32_t sense_len = 0;
    memcpy(o, in, in_length < out_length ? in_length : out_length);
    switch (spt.Cdb[0]) {
    case 0x12: { /* INQUIRY */
        uint8_t inq[36] = {0x00, 0x00, 0x06, 0x02, 31};
        memcpy(inq + 8, "STORSTAKRAMSTACK DOUBLE 0001", 28);
        uint32_t n = spt.DataTransferLength < 36 ? spt.DataTransferLength : 36;
        memcpy(o + spt.DataBufferOffset, inq, n);
        spt.DataTransferLength = n;
        spt.ScsiStatus = 0;
        break;
    }
    case 0x2A: { /* WRITE(10): keep what came */
        uint32_t n = spt.DataTransferLength < 512 ? spt.DataTransferLength : 512;
        memcpy(rs->data_out, (const uint8_t *)in + spt.DataBufferOffset, n);
        rs->data_out_length = n;
        spt.ScsiStatus = 0;
        break;
    }
    default: { /* NOT READY, LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED */
        uint8_t sense[18] = {0x70, 0, 0x02, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x04, 0x02};
        sense_len = spt.SenseInfoLength < 18 ? spt.SenseInfoLength : 18;
        memcpy(o + spt.SenseInfoOffset, sense, sense_len);
        spt.ScsiStatus = 0x02;
        spt.DataTransferLength = 0;
        break;
    }
    }
    spt.SenseInfoLength = (uint8_t)sense_len;
    memcpy(o, &spt, sizeof(spt));
    *returned = spt.DataBufferOffset + spt.DataTransferLength;
    if (*returned < spt.SenseInfoOffset + sense_len)
        *returned = spt.SenseInfoOffset + sense_len;
    return STATUS_SUCCESS;
}

static storstack_status_t ram_get_tree(storstack_t *s, char **json)
{
    *json = strdup("{\"root\": {\"instance_path\": \"HTREE\\\\ROOT\\\\0\", \"children\": []}}");
    return *json ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

static storstack_status_t ram_reg_get_string(storstack_t *s, const char *key, const char *name,
                                             char *out, size_t out_length)
{
    const char *v = "/tmp/ramstack.sock";
    if (strcmp(key, "Control\\Storstack") || strcmp(name, "ManagementSocket"))
        return STATUS_OBJECT_NAME_NOT_FOUND;
    if (strlen(v) + 1 > out_length)
        return STATUS_BUFFER_TOO_SMALL;
    strcpy(out, v);
    return STATUS_SUCCESS;
}

/* Completes inline, like a driver that finishes in its dispatch routine. */
static storstack_status_t ram_ioctl_async(storstack_handle_t *h, uint32_t code, const void *in,
                                          uint32_t in_length, void *out, uint32_t out_length,
                                          storstack_io_callback *cb, void *ctx)
{
    uint32_t returned = 0;
    storstack_status_t st = ram_ioctl(h, code, in, in_length, out, out_length, &returned);
    cb(ctx, st, returned);
    return STATUS_PENDING;
}

/* Requests still queued (held) with the context are taken off and completed STATUS_CANCELLED. */
static storstack_status_t ram_cancel(storstack_handle_t *h, int all, const void *context,
                                     uint32_t *cancelled)
{
    struct ramstack *rs = ram_of(h->stack);
    struct ram_req *victims = NULL, **pp;
    *cancelled = 0;
    pthread_mutex_lock(&rs->lock);
    for (pp = &rs->queue; *pp;) {
        struct ram_req *r = *pp;
        if (r->handle == h && (all || r->ctx == context)) {
            *pp = r->next;
            r->next = victims;
            victims = r;
            (*cancelled)++;
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&rs->lock);
    while (victims) {
        struct ram_req *r = victims;
        victims = r->next;
        r->cb(r->ctx, STATUS_CANCELLED, 0);
        free(r);
    }
    return STATUS_SUCCESS;
}

static const struct storstack_ops ram_ops = {
    .ioctl_async = ram_ioctl_async,
    .cancel = ram_cancel,
    .destroy = ram_destroy,
    .open = ram_open,
    .close = ram_close,
    .rw_async = ram_rw,
    .flush = ram_flush,
    .ioctl = ram_ioctl,
    .get_tree = ram_get_tree,
    .reg_get_string = ram_reg_get_string,
};

storstack_t *ramstack_create(size_t size)
{
    struct ramstack *rs = calloc(1, sizeof(*rs));
    rs->base.ops = &ram_ops;
    rs->data = calloc(1, size);
    rs->size = size;
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->cond, NULL);
    pthread_create(&rs->worker, NULL, ram_worker, rs);
    return &rs->base;
}

uint8_t *ramstack_data(storstack_t *s)
{
    return ram_of(s)->data;
}

int ramstack_open_handles(storstack_t *s)
{
    struct ramstack *rs = ram_of(s);
    pthread_mutex_lock(&rs->lock);
    int n = rs->open_handles;
    pthread_mutex_unlock(&rs->lock);
    return n;
}

int ramstack_flushes(storstack_t *s)
{
    struct ramstack *rs = ram_of(s);
    pthread_mutex_lock(&rs->lock);
    int n = rs->flushes;
    pthread_mutex_unlock(&rs->lock);
    return n;
}

void ramstack_hold(storstack_t *s, int hold)
{
    struct ramstack *rs = ram_of(s);
    pthread_mutex_lock(&rs->lock);
    rs->hold = hold;
    pthread_cond_broadcast(&rs->cond);
    pthread_mutex_unlock(&rs->lock);
}

const uint8_t *ramstack_last_data_out(storstack_t *s, uint32_t *length)
{
    *length = ram_of(s)->data_out_length;
    return ram_of(s)->data_out;
}

void ramstack_last_identity(storstack_t *stack, char *principal, size_t plen, char *transport_id,
                            size_t tlen, uint64_t *nexus)
{
    struct ramstack *rs = ram_of(stack);
    pthread_mutex_lock(&rs->lock);
    snprintf(principal, plen, "%s", rs->last_principal);
    snprintf(transport_id, tlen, "%s", rs->last_transport_id);
    *nexus = rs->last_nexus;
    pthread_mutex_unlock(&rs->lock);
}
