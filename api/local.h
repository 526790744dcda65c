/*
 * The in-process stack's extra entry point, for tests and embedders: boot from a file or from
 * configuration text, with driver packages beyond the in-tree ones (a test miniport, a filter).
 * storstack_create(path) is storstack_create_ex(path, NULL, NULL, 0).
 */
#ifndef STORSTACK_API_LOCAL_H
#define STORSTACK_API_LOCAL_H

#include <storstack/storstack.h>
#include <storstack/wdm/pnp.h>

storstack_t *storstack_create_ex(const char *config_path, const char *config_text,
                                 const DRIVER_PACKAGE *extra, size_t extra_count, char *err,
                                 size_t errlen);

/* The executive behind a local stack (NULL for a remote one), for white-box tests. */
PEXECUTIVE storstack_local_executive(storstack_t *stack);

#endif
