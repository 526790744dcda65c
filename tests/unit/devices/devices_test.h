/*
 * Shared fixture for the device server tests: a disk over the mock backend, a command wrapper
 * that runs one CDB and counts completions, and assertions on status and sense (fixed or
 * descriptor format). Header-only; each test program includes it once.
 */
#ifndef STORSTACK_TESTS_DEVICES_TEST_H
#define STORSTACK_TESTS_DEVICES_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <storstack/storage/scsi.h>

#include "devices/scsi_lu.h"
#include "mock_backend.h"

struct tcmd {
    struct scsi_cmd cmd;
    uint8_t cdb[16];
    struct iovec iov[1];
    int ndone;
};

static inline void tcmd_done(struct scsi_cmd *c)
{
    ((struct tcmd *)c->context)->ndone++;
}

static inline void tcmd_prepare(struct tcmd *t, const uint8_t *cdb, uint8_t len, enum scsi_dir dir,
                                void *buf, uint32_t xfer)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->cdb, cdb, len);
    t->cmd.cdb = t->cdb;
    t->cmd.cdb_len = len;
    t->cmd.dir = dir;
    t->iov[0].iov_base = buf;
    t->iov[0].iov_len = xfer;
    t->cmd.iov = t->iov;
    t->cmd.iovcnt = buf ? 1 : 0;
    t->cmd.xfer_len = xfer;
    t->cmd.done = tcmd_done;
    t->cmd.context = t;
}

static inline void run_cmd(struct scsi_lu *lu, struct tcmd *t, const uint8_t *cdb, uint8_t len,
                           enum scsi_dir dir, void *buf, uint32_t xfer)
{
    tcmd_prepare(t, cdb, len, dir, buf, xfer);
    scsi_lu_execute(lu, &t->cmd);
}

struct fx {
    struct mock_backend *mb;
    struct scsi_lu *lu;
};

/* A disk of `size` bytes; the power-on unit attention is consumed unless keep_ua. */
static inline void fx_open(struct fx *f, uint64_t size, const struct scsi_disk_config *cfg,
                           const struct be_caps *caps, bool keep_ua)
{
    f->mb = mock_backend_create(size, caps);
    assert_non_null(f->mb);
    assert_int_equal(scsi_disk_create(cfg, &f->mb->be, &f->lu), 0);
    if (!keep_ua) {
        static const uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
        struct tcmd t;
        run_cmd(f->lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
        assert_int_equal(t.cmd.status, SAM_STAT_CHECK_CONDITION);
        mock_backend_clear_log(f->mb);
    }
}

static inline void fx_close(struct fx *f)
{
    scsi_lu_destroy(f->lu);
    be_destroy(&f->mb->be);
}

static inline uint8_t sense_key(const struct scsi_cmd *c)
{
    return (c->sense[0] & 0x7F) >= 0x72 ? c->sense[1] & 0x0F : c->sense[2] & 0x0F;
}

static inline uint8_t sense_asc(const struct scsi_cmd *c)
{
    return (c->sense[0] & 0x7F) >= 0x72 ? c->sense[2] : c->sense[12];
}

static inline uint8_t sense_ascq(const struct scsi_cmd *c)
{
    return (c->sense[0] & 0x7F) >= 0x72 ? c->sense[3] : c->sense[13];
}

static inline void assert_good(const struct tcmd *t)
{
    assert_int_equal(t->ndone, 1);
    assert_int_equal(t->cmd.status, SAM_STAT_GOOD);
    assert_int_equal(t->cmd.sense_len, 0);
}

static inline void assert_check(const struct tcmd *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
    assert_int_equal(t->ndone, 1);
    assert_int_equal(t->cmd.status, SAM_STAT_CHECK_CONDITION);
    assert_true(t->cmd.sense_len >= 8);
    assert_int_equal(sense_key(&t->cmd), key);
    assert_int_equal(sense_asc(&t->cmd), asc);
    assert_int_equal(sense_ascq(&t->cmd), ascq);
}

/* Fixed format sense-key-specific field pointer; bit < 0 means BPV=0. */
static inline void assert_field_pointer(const struct tcmd *t, bool cd, uint16_t byte, int bit)
{
    const uint8_t *s = t->cmd.sense;
    assert_int_equal(s[0] & 0x7F, 0x70);
    assert_int_equal(t->cmd.sense_len, 18);
    uint8_t want = (uint8_t)(0x80 | (cd ? 0x40 : 0) | (bit >= 0 ? 0x08 | bit : 0));
    assert_int_equal(s[15], want);
    assert_int_equal(scsi_get_be16(s + 16), byte);
}

static inline void assert_invalid_cdb_field(const struct tcmd *t, uint16_t byte, int bit)
{
    assert_check(t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_CDB, 0);
    assert_field_pointer(t, true, byte, bit);
}

static inline void assert_invalid_param_field(const struct tcmd *t, uint16_t byte, int bit)
{
    assert_check(t, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_FIELD_PARAMETER_LIST, 0);
    assert_field_pointer(t, false, byte, bit);
}

/* CDBs with an LBA and a length: (10) bytes 2-5 and 7-8, (12) 2-5 and 6-9, (16) 2-9 and 10-13. */
static inline void cdb10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n)
{
    memset(c, 0, 10);
    c[0] = op;
    scsi_put_be32(c + 2, lba);
    scsi_put_be16(c + 7, n);
}

static inline void cdb12(uint8_t *c, uint8_t op, uint32_t lba, uint32_t n)
{
    memset(c, 0, 12);
    c[0] = op;
    scsi_put_be32(c + 2, lba);
    scsi_put_be32(c + 6, n);
}

static inline void cdb16(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n)
{
    memset(c, 0, 16);
    c[0] = op;
    scsi_put_be64(c + 2, lba);
    scsi_put_be32(c + 10, n);
}

#endif
