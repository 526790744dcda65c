/*
 * The user API's public entry points: each call dispatches to the stack's implementation (local
 * or remote); the synchronous read/write wait on their asynchronous twins, as ReadFile without
 * OVERLAPPED waits on the I/O manager's event.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

#include "api/api_p.h"

void storstack_destroy(storstack_t *stack)
{
    if (stack)
        stack->ops->destroy(stack);
}

int storstack_is_remote(const storstack_t *stack)
{
    return stack->remote;
}

storstack_status_t storstack_open(storstack_t *stack, const char *name, uint32_t access,
                                  storstack_handle_t **out)
{
    return storstack_open_ex(stack, name, access, NULL, out);
}

storstack_status_t storstack_open_ex(storstack_t *stack, const char *name, uint32_t access,
                                     const struct storstack_identity *who, storstack_handle_t **out)
{
    if (!stack || !name || !out)
        return STATUS_INVALID_PARAMETER;
    *out = NULL;
    if (who && (!who->principal || !who->principal[0] ||
                strlen(who->principal) >= STORSTACK_PRINCIPAL_MAX ||
                (who->transport_id && strlen(who->transport_id) >= STORSTACK_TRANSPORT_ID_MAX)))
        return STATUS_INVALID_PARAMETER;
    return stack->ops->open(stack, name, access, who, out);
}

storstack_status_t storstack_close(storstack_handle_t *handle)
{
    if (!handle)
        return STATUS_INVALID_HANDLE;
    return handle->stack->ops->close(handle);
}

void storstack_wait_init(struct storstack_wait *w)
{
    w->done = 0;
    w->status = STATUS_PENDING;
    w->information = 0;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

void storstack_wait_done(void *context, storstack_status_t status, uint64_t information)
{
    struct storstack_wait *w = context;
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->information = information;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

storstack_status_t storstack_wait_finish(struct storstack_wait *w, storstack_status_t status,
                                         uint64_t *information)
{
    if (status == STATUS_PENDING) {
        pthread_mutex_lock(&w->lock);
        while (!w->done)
            pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
        status = w->status;
        if (information)
            *information = w->information;
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    return status;
}

static storstack_status_t sync_rw(storstack_handle_t *handle, int write, void *buf, uint32_t length,
                                  uint64_t offset, uint32_t *transferred)
{
    struct storstack_wait w;
    uint64_t information = 0;
    storstack_status_t status;

    if (transferred)
        *transferred = 0;
    if (!handle)
        return STATUS_INVALID_HANDLE;
    storstack_wait_init(&w);
    status =
        handle->stack->ops->rw_async(handle, write, buf, length, offset, storstack_wait_done, &w);
    status = storstack_wait_finish(&w, status, &information);
    if (transferred)
        *transferred = (uint32_t)information;
    return status;
}

storstack_status_t storstack_read(storstack_handle_t *handle, void *buf, uint32_t length,
                                  uint64_t offset, uint32_t *transferred)
{
    return sync_rw(handle, 0, buf, length, offset, transferred);
}

storstack_status_t storstack_write(storstack_handle_t *handle, const void *buf, uint32_t length,
                                   uint64_t offset, uint32_t *transferred)
{
    return sync_rw(handle, 1, (void *)buf, length, offset, transferred);
}

storstack_status_t storstack_read_async(storstack_handle_t *handle, void *buf, uint32_t length,
                                        uint64_t offset, storstack_io_callback *callback,
                                        void *context)
{
    if (!handle)
        return STATUS_INVALID_HANDLE;
    if (!callback)
        return STATUS_INVALID_PARAMETER;
    return handle->stack->ops->rw_async(handle, 0, buf, length, offset, callback, context);
}

storstack_status_t storstack_write_async(storstack_handle_t *handle, const void *buf,
                                         uint32_t length, uint64_t offset,
                                         storstack_io_callback *callback, void *context)
{
    if (!handle)
        return STATUS_INVALID_HANDLE;
    if (!callback)
        return STATUS_INVALID_PARAMETER;
    return handle->stack->ops->rw_async(handle, 1, (void *)buf, length, offset, callback, context);
}

storstack_status_t storstack_flush(storstack_handle_t *handle)
{
    if (!handle)
        return STATUS_INVALID_HANDLE;
    return handle->stack->ops->flush(handle);
}

storstack_status_t storstack_ioctl(storstack_handle_t *handle, uint32_t code, const void *in,
                                   uint32_t in_length, void *out, uint32_t out_length,
                                   uint32_t *returned)
{
    uint32_t dummy;
    if (!handle)
        return STATUS_INVALID_HANDLE;
    if ((in_length && !in) || (out_length && !out))
        return STATUS_INVALID_USER_BUFFER;
    return handle->stack->ops->ioctl(handle, code, in, in_length, out, out_length,
                                     returned ? returned : &dummy);
}

storstack_status_t storstack_ioctl_async(storstack_handle_t *handle, uint32_t code, const void *in,
                                         uint32_t in_length, void *out, uint32_t out_length,
                                         storstack_io_callback *callback, void *context)
{
    if (!handle)
        return STATUS_INVALID_HANDLE;
    if (!callback)
        return STATUS_INVALID_PARAMETER;
    if ((in_length && !in) || (out_length && !out))
        return STATUS_INVALID_USER_BUFFER;
    return handle->stack->ops->ioctl_async(handle, code, in, in_length, out, out_length, callback,
                                           context);
}

storstack_status_t storstack_cancel(storstack_handle_t *handle, const void *context,
                                    uint32_t *cancelled)
{
    uint32_t dummy;
    if (!handle)
        return STATUS_INVALID_HANDLE;
    return handle->stack->ops->cancel(handle, context == NULL, context,
                                      cancelled ? cancelled : &dummy);
}

storstack_status_t storstack_get_tree(storstack_t *stack, char **json)
{
    if (!stack || !json)
        return STATUS_INVALID_PARAMETER;
    *json = NULL;
    return stack->ops->get_tree(stack, json);
}

storstack_status_t storstack_reg_get_string(storstack_t *stack, const char *key, const char *name,
                                            char *out, size_t out_length)
{
    if (!stack || !key || !name || !out || !out_length)
        return STATUS_INVALID_PARAMETER;
    return stack->ops->reg_get_string(stack, key, name, out, out_length);
}

static const struct {
    storstack_status_t status;
    const char *name;
} status_names[] = {
#define N(s)                                                                                       \
    {                                                                                              \
        s, #s                                                                                      \
    }
    N(STATUS_SUCCESS),
    N(STATUS_PENDING),
    N(STATUS_BUFFER_OVERFLOW),
    N(STATUS_DEVICE_BUSY),
    N(STATUS_VERIFY_REQUIRED),
    N(STATUS_UNSUCCESSFUL),
    N(STATUS_NOT_IMPLEMENTED),
    N(STATUS_INFO_LENGTH_MISMATCH),
    N(STATUS_INVALID_HANDLE),
    N(STATUS_INVALID_PARAMETER),
    N(STATUS_NO_SUCH_DEVICE),
    N(STATUS_INVALID_DEVICE_REQUEST),
    N(STATUS_END_OF_FILE),
    N(STATUS_NO_MEDIA_IN_DEVICE),
    N(STATUS_UNRECOGNIZED_MEDIA),
    N(STATUS_NONEXISTENT_SECTOR),
    N(STATUS_ACCESS_DENIED),
    N(STATUS_BUFFER_TOO_SMALL),
    N(STATUS_OBJECT_NAME_INVALID),
    N(STATUS_OBJECT_NAME_NOT_FOUND),
    N(STATUS_OBJECT_NAME_COLLISION),
    N(STATUS_DATA_OVERRUN),
    N(STATUS_SHARING_VIOLATION),
    N(STATUS_DELETE_PENDING),
    N(STATUS_INSUFFICIENT_RESOURCES),
    N(STATUS_DEVICE_DATA_ERROR),
    N(STATUS_DEVICE_NOT_CONNECTED),
    N(STATUS_MEDIA_WRITE_PROTECTED),
    N(STATUS_DEVICE_NOT_READY),
    N(STATUS_IO_TIMEOUT),
    N(STATUS_NOT_SUPPORTED),
    N(STATUS_INVALID_USER_BUFFER),
    N(STATUS_INVALID_PARAMETER_1),
    N(STATUS_CANCELLED),
    N(STATUS_INVALID_DEVICE_STATE),
    N(STATUS_IO_DEVICE_ERROR),
    N(STATUS_DEVICE_PROTOCOL_ERROR),
    N(STATUS_DRIVER_INTERNAL_ERROR),
    N(STATUS_INVALID_BLOCK_LENGTH),
    N(STATUS_CONNECTION_REFUSED),
    N(STATUS_CONNECTION_DISCONNECTED),
    N(STATUS_DEVICE_DOES_NOT_EXIST),
    N(STATUS_MORE_PROCESSING_REQUIRED),
#undef N
};

const char *storstack_status_name(storstack_status_t status)
{
    static _Thread_local char unknown[16];
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (status_names[i].status == status)
            return status_names[i].name;
    snprintf(unknown, sizeof(unknown), "0x%08X", (unsigned)status);
    return unknown;
}
