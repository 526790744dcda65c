/*
 * The SCSI target device of the device server: a set of logical units by LUN, and the answers
 * that belong to the target rather than to one LU (SAM-5 4.6): REPORT LUNS (SPC-4 6.33), which
 * any LUN answers for the whole target, and commands addressed to a LUN with no logical unit
 * (SPC-4 6.6.2 and 6.39: INQUIRY returns peripheral qualifier 011b with type 1Fh, REQUEST SENSE
 * returns LOGICAL UNIT NOT SUPPORTED as its parameter data, anything else fails with ILLEGAL
 * REQUEST, LOGICAL UNIT NOT SUPPORTED 25h/00h). LUNs are numbers from 0 to 16383 reported in the
 * single level format. Adding is serialised by a mutex and published with a release store of the
 * count, so lookups on the I/O path take no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/scsi_lu_p.h"

#define SCSI_TARGET_MAX_LUNS 256
#define SCSI_LUN_MAX         16383 /* the largest LUN the flat space format carries */

struct scsi_target {
    pthread_mutex_t lock; /* serialises scsi_target_add_lu() */
    atomic_uint count;
    uint64_t luns[SCSI_TARGET_MAX_LUNS];
    struct scsi_lu *lus[SCSI_TARGET_MAX_LUNS];
};

struct scsi_target *scsi_target_create(void)
{
    struct scsi_target *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    atomic_init(&t->count, 0);
    return t;
}

int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu)
{
    if (!t || !lu || lun > SCSI_LUN_MAX)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    unsigned n = atomic_load_explicit(&t->count, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        if (t->luns[i] == lun) {
            rc = -EEXIST;
            goto out;
        }
    }
    if (n == SCSI_TARGET_MAX_LUNS) {
        rc = -ENOSPC;
        goto out;
    }
    t->luns[n] = lun;
    t->lus[n] = lu;
    atomic_store_explicit(&t->count, n + 1, memory_order_release);
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void scsi_target_destroy(struct scsi_target *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct scsi_lu *target_find(struct scsi_target *t, uint64_t lun)
{
    unsigned n = atomic_load_explicit(&t->count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        if (t->luns[i] == lun)
            return t->lus[i];
    }
    return NULL;
}

/* Reserved bits of the REPORT LUNS CDB (byte 2 is SELECT REPORT, bytes 6-9 ALLOCATION LENGTH). */
static const uint8_t report_luns_usage[12] = {0xFF, 0,    0xFF, 0,    0, 0,
                                              0xFF, 0xFF, 0xFF, 0xFF, 0, 0xC0};

static bool target_check_usage(struct scsi_cmd *cmd, const struct scsi_lu *lu, const uint8_t *usage,
                               uint8_t len)
{
    if (cmd->cdb_len < len) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_CDB, 0);
        return false;
    }
    for (uint8_t i = 1; i < len; i++) {
        uint8_t bad = cmd->cdb[i] & (uint8_t)~usage[i];
        if (bad) {
            scsi_check_cdb_field(cmd, lu, i,
                                 scsi_usage_field_msb(usage, NULL, len, i, scsi_high_bit(bad)));
            return false;
        }
    }
    return true;
}

/* lu, when the addressed LUN exists, only chooses the sense format (its D_SENSE). */
static void target_report_luns(struct scsi_target *t, const struct scsi_lu *lu,
                               struct scsi_cmd *cmd)
{
    if (!target_check_usage(cmd, lu, report_luns_usage, sizeof(report_luns_usage)))
        return;
    if (!spc_report_luns_check(cmd, lu))
        return;
    unsigned n = atomic_load_explicit(&t->count, memory_order_acquire);
    spc_report_luns_emit(cmd, lu, t->luns, n);
}

static void target_absent_lun(struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    if (cdb[0] == SCSIOP_INQUIRY) {
        static const uint8_t usage[6] = {0xFF, 0x01, 0xFF, 0xFF, 0xFF, 0xC0};
        if (!target_check_usage(cmd, NULL, usage, sizeof(usage)))
            return;
        uint8_t buf[INQUIRYDATABUFFERSIZE] = {0};
        uint32_t len;
        buf[0] = LOGICAL_UNIT_NOT_PRESENT_DEVICE;
        if (cdb[1] & CDB_INQUIRY_EVPD) {
            /* Only the supported pages page, empty: there is nothing to describe. */
            if (cdb[2] != VPD_SUPPORTED_PAGES) {
                scsi_check_cdb_field(cmd, NULL, 2, -1);
                return;
            }
            len = 4;
        } else {
            if (cdb[2] != 0) {
                scsi_check_cdb_field(cmd, NULL, 2, -1);
                return;
            }
            buf[2] = SCSI_VERSION_SPC4;
            buf[3] = 2; /* RESPONSE DATA FORMAT */
            buf[4] = INQUIRYDATABUFFERSIZE - 5;
            len = INQUIRYDATABUFFERSIZE;
        }
        scsi_respond(cmd, buf, len, scsi_get_be16(cdb + 3));
        return;
    }
    if (cdb[0] == SCSIOP_REQUEST_SENSE) {
        static const uint8_t usage[6] = {0xFF, 0x01, 0, 0, 0xFF, 0xC0};
        if (!target_check_usage(cmd, NULL, usage, sizeof(usage)))
            return;
        struct scsi_sense_info si = {.key = SCSI_SENSE_ILLEGAL_REQUEST,
                                     .asc = SCSI_ADSENSE_INVALID_LUN};
        uint8_t buf[SCSI_SENSE_MAX];
        uint8_t len = scsi_sense_build(buf, cdb[1] & 0x01, &si);
        scsi_respond(cmd, buf, len, cdb[4]);
        return;
    }
    scsi_check_simple(cmd, NULL, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_LUN, 0);
}

void scsi_target_execute(struct scsi_target *t, uint64_t lun, struct scsi_cmd *cmd)
{
    struct scsi_lu *lu = target_find(t, lun);
    bool report_luns = cmd->cdb && cmd->cdb_len > 0 && cmd->cdb[0] == SCSIOP_REPORT_LUNS;
    if (lu && !report_luns) {
        scsi_lu_execute(lu, cmd);
        return;
    }
    cmd->status = SAM_STAT_GOOD;
    cmd->sense_len = 0;
    cmd->transferred = 0;
    if (!cmd->cdb || cmd->cdb_len == 0)
        scsi_check_simple(cmd, NULL, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
    else if (report_luns)
        target_report_luns(t, lu, cmd);
    else
        target_absent_lun(cmd);
    if (cmd->done)
        cmd->done(cmd);
}
