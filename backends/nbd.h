/*
 * The NBD backend's face (backends/nbd.c): an export of a remote NBD server (nbdkit, qemu-nbd,
 * nbd-server, or storstack's own nbdkit plugin) as a byte store, through libnbd's asynchronous
 * API, with reconnection. Built only when libnbd is present (STORSTACK_HAVE_LIBNBD).
 */
#ifndef STORSTACK_BACKENDS_NBD_H
#define STORSTACK_BACKENDS_NBD_H

#include <stdint.h>

#include "backends/backend.h"

struct be_nbd_config {
    const char *uri;         /* NBD URI: nbd://HOST[:PORT][/EXPORT], nbd+unix:///EXPORT?socket= */
    uint32_t reconnect_ms;   /* give up on a lost server after this long (0: at once) */
    uint32_t connect_ms;     /* one connection attempt's limit */
    uint32_t max_backoff_ms; /* the delay between attempts doubles from 20 ms up to this */
};

/*
 * Connects (once, within connect_ms) and returns the backend, or a negative errno with
 * *err_detail (static text or the thread's libnbd error message) naming what failed.
 */
int be_nbd_create(const struct be_nbd_config *cfg, struct backend **out, const char **err_detail);

/* Reconnections that succeeded since create; 0 for a backend that is not NBD. For tests. */
uint64_t be_nbd_reconnects(const struct backend *be);

#endif
