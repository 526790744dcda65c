/*
 * Inside the user API: a stack is a vtable, implemented by the in-process stack (api/local.c) and
 * by the management-socket client (api/remote.c). api/api.c holds the public entry points, the
 * synchronous wrappers over the asynchronous calls, and status names.
 */
#ifndef STORSTACK_API_API_P_H
#define STORSTACK_API_API_P_H

#include <pthread.h>

#include <storstack/storstack.h>

struct storstack_ops {
    void (*destroy)(storstack_t *stack);
    /* who is NULL (the caller's own identity) or checked by storstack_open_ex. */
    storstack_status_t (*open)(storstack_t *stack, const char *name, uint32_t access,
                               const struct storstack_identity *who, storstack_handle_t **out);
    storstack_status_t (*close)(storstack_handle_t *handle);
    /* Read (write == 0) or write; STATUS_PENDING and exactly one callback, or a failure and none.
     */
    storstack_status_t (*rw_async)(storstack_handle_t *handle, int write, void *buf,
                                   uint32_t length, uint64_t offset,
                                   storstack_io_callback *callback, void *context);
    storstack_status_t (*flush)(storstack_handle_t *handle);
    storstack_status_t (*ioctl)(storstack_handle_t *handle, uint32_t code, const void *in,
                                uint32_t in_length, void *out, uint32_t out_length,
                                uint32_t *returned);
    /* As rw_async: STATUS_PENDING and exactly one callback, or a failure and none. */
    storstack_status_t (*ioctl_async)(storstack_handle_t *handle, uint32_t code, const void *in,
                                      uint32_t in_length, void *out, uint32_t out_length,
                                      storstack_io_callback *callback, void *context);
    /* all: every request of the handle, else those issued with context. */
    storstack_status_t (*cancel)(storstack_handle_t *handle, int all, const void *context,
                                 uint32_t *cancelled);
    storstack_status_t (*get_tree)(storstack_t *stack, char **json);
    storstack_status_t (*reg_get_string)(storstack_t *stack, const char *key, const char *name,
                                         char *out, size_t out_length);
};

/* Waiting for an asynchronous call: init, pass storstack_wait_done and the wait as the callback
 * and context, then finish with the call's return value (it waits only for STATUS_PENDING). */
struct storstack_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    storstack_status_t status;
    uint64_t information;
};
void storstack_wait_init(struct storstack_wait *w);
storstack_io_callback storstack_wait_done;
storstack_status_t storstack_wait_finish(struct storstack_wait *w, storstack_status_t status,
                                         uint64_t *information);

struct storstack {
    const struct storstack_ops *ops;
    int remote;
};

struct storstack_handle {
    storstack_t *stack;
};

#endif
