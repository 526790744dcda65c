/*
 * Shared helpers of the integration tests: boot a whole stack from configuration text, open its
 * devices, stamp and check data patterns (every 512-byte piece carries its byte offset / 512 and a
 * seed, so data that lands in the wrong place or comes from the wrong write is detected), send
 * SCSI pass-through requests, and manage a temporary directory. Failures are reported with the
 * NTSTATUS names (storstack_status_name) so a log line says what happened.
 */
#ifndef STORSTACK_TESTS_INTEGRATION_INTEG_H
#define STORSTACK_TESTS_INTEGRATION_INTEG_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storstack.h>

#include "api/local.h"

#define INTEG_RW (STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE)
#define KIB      1024u
#define MIB      (1024u * 1024u)

/* Asserts that a status is the expected one, naming both on failure. */
#define assert_status(got, want)                                                                   \
    do {                                                                                           \
        storstack_status_t got_ = (got), want_ = (want);                                           \
        if (got_ != want_)                                                                         \
            fail_msg("%s:%d: %s is %s (0x%08X), expected %s", __FILE__, __LINE__, #got,            \
                     storstack_status_name(got_), (unsigned)got_, storstack_status_name(want_));   \
    } while (0)

/* Asserts a failure status (NT_ERROR), never STATUS_SUCCESS or a crash. */
#define assert_error_status(got)                                                                   \
    do {                                                                                           \
        storstack_status_t got_ = (got);                                                           \
        if (got_ >= 0)                                                                             \
            fail_msg("%s:%d: %s is %s, expected a failure", __FILE__, __LINE__, #got,              \
                     storstack_status_name(got_));                                                 \
    } while (0)

/* Boots a stack from configuration text (NULL: the built-in default) with extra packages. */
storstack_t *integ_boot_ex(const char *config_text, const DRIVER_PACKAGE *extra, size_t count);
storstack_t *integ_boot(const char *config_text);
/* Tries to boot; returns NULL and the message when it fails. */
storstack_t *integ_try_boot(const char *config_text, char *err, size_t errlen);
storstack_handle_t *integ_open(storstack_t *stack, const char *name, uint32_t access);

/* A config text for one vminiport adapter with one disk at Target0\Lun0: `adapter_extra` lines
 * go into the adapter's Device Parameters, `lun_extra` into the LUN key (each "Name = v\n"). */
char *integ_config(const char *adapter_extra, const char *lun_extra);

/* Patterns. */
void integ_fill(void *buf, uint64_t offset, uint32_t length, uint64_t seed);
/* Returns the byte offset (relative to buf) of the first 512-byte piece that differs, or -1. */
long integ_find_mismatch(const void *buf, uint64_t offset, uint32_t length, uint64_t seed);
/* Writes a pattern at `offset`, reads it back, and checks it (whole transfers, exact counts). */
void integ_write_pattern(storstack_handle_t *h, uint64_t offset, uint32_t length, uint64_t seed);
void integ_verify_pattern(storstack_handle_t *h, uint64_t offset, uint32_t length, uint64_t seed);
/* Allocates with a chosen misalignment from a page boundary (0 = page aligned). */
void *integ_alloc(size_t length, size_t misalign);
void integ_free(void *p);

/* SCSI pass-through. */
struct integ_spt {
    storstack_status_t status; /* of the IOCTL */
    uint32_t returned;
    uint8_t scsi_status;
    uint8_t sense_len;
    uint8_t sense[32];
    uint32_t transferred;
};
enum { INTEG_DATA_OUT = 0, INTEG_DATA_IN = 1, INTEG_DATA_NONE = 2 };
/* IOCTL_SCSI_PASS_THROUGH (direct == 0) or _DIRECT (direct == 1) to path/target/lun. */
void integ_pass_through(storstack_handle_t *h, int direct, uint8_t target, uint8_t lun,
                        const uint8_t *cdb, uint8_t cdb_len, int dir, void *data, uint32_t length,
                        struct integ_spt *r);
/* Asserts CHECK CONDITION with fixed-format sense key/ASC/ASCQ. sks < 0: not checked;
 * otherwise the three sense-key-specific bytes (15..17) as 0xXXYYZZ. */
void integ_assert_sense(const struct integ_spt *r, uint8_t key, uint8_t asc, uint8_t ascq, long sks,
                        const char *what);

/* A SCSI pass-through IRP a test builds and owns (kernel level, on an in-process stack): it
 * stays allocated until integ_irp_free, so the test may IoCancelIrp it at any time. The
 * completion routine counts completions and keeps the status. */
struct integ_irp {
    struct _IRP *irp;
    _Atomic int completions;
    int32_t status;
    struct {
        SCSI_PASS_THROUGH_DIRECT sptd;
        uint8_t sense[32];
    } spt;
    uint8_t data[4096];
};
/* Sends READ(10) of 8 blocks at lba with TimeOutValue timeout as IOCTL_SCSI_PASS_THROUGH_DIRECT
 * to the device object top (typically the disk's top device). */
void integ_irp_read(struct _EXECUTIVE *exec, struct _DEVICE_OBJECT *top, struct integ_irp *t,
                    uint32_t lba, uint32_t timeout);
void integ_irp_free(struct integ_irp *t);

/* Temporary directory: created under $TMPDIR (or /tmp), removed with everything in it. */
void integ_mkdtemp(char *path, size_t len);
void integ_rmtree(const char *path);
/* Runs a shell command (printf format; stderr joins stdout); returns its exit status (-1 when it
 * did not exit) and, when out is not NULL, its first 64 KiB of output (free it). */
int integ_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void integ_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t integ_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
