/*
 * A test double for the user API: a storstack_t over a RAM buffer, implementing struct
 * storstack_ops directly (no kernel, no drivers), so the management socket can be tested on its
 * own. Reads and writes complete on a worker thread, in batches and in reverse order of arrival,
 * so responses really come back out of order; "hold" keeps them until released. One device,
 * "PhysicalDrive0"; IOCTL 0x00220000 returns the input reversed; IOCTL_SCSI_PASS_THROUGH answers
 * INQUIRY with fixed data, stores data-out, and fails TEST UNIT READY with NOT READY sense.
 * IOCTLs complete inline (also the overlapped form); cancel completes the requests still queued
 * (held) with the context STATUS_CANCELLED.
 */
#ifndef TESTS_UNIT_API_RAMSTACK_H
#define TESTS_UNIT_API_RAMSTACK_H

#include <stddef.h>
#include <stdint.h>

#include <storstack/storstack.h>

#define RAMSTACK_IOCTL_REVERSE 0x00220000u

struct ramstack;

storstack_t *ramstack_create(size_t size);
uint8_t *ramstack_data(storstack_t *stack);
int ramstack_open_handles(storstack_t *stack);
int ramstack_flushes(storstack_t *stack);
void ramstack_hold(storstack_t *stack, int hold);
const uint8_t *ramstack_last_data_out(storstack_t *stack, uint32_t *length);
/* The identity the last open was made for ("" and 0 when the caller gave none). */
void ramstack_last_identity(storstack_t *stack, char *principal, size_t plen, char *transport_id,
                            size_t tlen, uint64_t *nexus);

#endif
