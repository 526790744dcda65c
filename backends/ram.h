/*
 * The RAM backend's extra face, beyond be_ram_create() in backend.h: introspection that tests and
 * the `storstack` status output use to see how much of a sparse RAM disk is really allocated.
 */
#ifndef STORSTACK_BACKENDS_RAM_H
#define STORSTACK_BACKENDS_RAM_H

#include <stdint.h>

#include "backends/backend.h"

#define BE_RAM_PAGE_SIZE 4096u

/* Pages (BE_RAM_PAGE_SIZE bytes each) currently allocated; 0 for a backend that is not RAM. */
uint64_t be_ram_allocated_pages(const struct backend *be);

#endif
