/*
 * SBC-4 block commands of a direct-access logical unit: READ and WRITE (6, 10, 12, 16), VERIFY
 * (10, 12, 16), SYNCHRONIZE CACHE (10, 16), READ CAPACITY (10) and (16), START STOP UNIT, and the
 * transfer engine that carries them to the backend through the command's own be_io.
 *
 * A transfer is a chain of backend submissions kept in the command's scratch (struct
 * scsi_cmd_priv): usually one; two when the initiator's iov has more than four segments and does
 * not end on a segment boundary (whole segments go to the backend straight from the initiator's
 * array, the tail through bio_iov); one per 64 KiB for VERIFY with BYTCHK=1 (the medium is read
 * into a per-LU bounce slot and compared); a FLUSH after a write when FUA is needed and the
 * backend has no FUA. Completions may run inline (RAM) or on a backend thread (io_uring); an
 * atomic phase decides which thread continues the chain, so an inline backend costs no recursion
 * and no lock is held across be_submit().
 *
 * Backend errors become sense data (SBC-4 4.18, SPC-4 4.5.6): -EIO and kin on a read or verify
 * read, MEDIUM ERROR / UNRECOVERED READ ERROR (11h/00h); on a write or flush, MEDIUM ERROR /
 * WRITE ERROR (0Ch/00h), both with the INFORMATION field set to the first LBA of the failed
 * submission; -ENOSPC/-EDQUOT on a write, DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT
 * (27h/07h) as thin provisioning does (SBC-4 4.7.3.7); -EROFS/-EPERM/-EACCES, DATA PROTECT /
 * WRITE PROTECTED (27h/00h); -EAGAIN/-EBUSY/-ENOMEM, status BUSY so the initiator retries;
 * anything else, HARDWARE ERROR / INTERNAL TARGET FAILURE (44h/00h).
 */
#include <errno.h>
#include <string.h>

#include "devices/scsi_lu_p.h"

enum sbc_io_kind {
    SBC_IO_READ,
    SBC_IO_WRITE,
    SBC_IO_VERIFY, /* BYTCHK=1: read into a bounce slot, compare with the data-out buffer */
    SBC_IO_SYNC,   /* SYNCHRONIZE CACHE */
    SBC_IO_STOP,   /* START STOP UNIT with START=0: flush, then stop */
};

#define SBC_IO_FLUSH_AFTER 0x01u /* FUA wanted and the backend has none: flush after writing */
#define SBC_IO_FLUSHING    0x02u /* the current submission is that flush */
#define SBC_IO_FUA         0x04u /* pass BE_IO_FUA on the writes */

enum { PH_IDLE, PH_SUBMITTING, PH_RETURNED, PH_COMPLETED_INLINE };

/* ---- sense for backend errors ------------------------------------------------------------- */

static void sbc_backend_error(struct scsi_cmd *cmd, struct scsi_lu *lu, int err)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    bool flush = (p->flags & SBC_IO_FLUSHING) || p->kind == SBC_IO_SYNC || p->kind == SBC_IO_STOP;
    bool write = p->kind == SBC_IO_WRITE;
    struct scsi_sense_info si = {0};

    switch (-err) {
    case EAGAIN:
    case EBUSY:
    case ENOMEM:
        cmd->status = SAM_STAT_BUSY;
        cmd->sense_len = 0;
        return;
    case ENOSPC:
    case EDQUOT:
        if (write && !flush) {
            si.key = SCSI_SENSE_DATA_PROTECT;
            si.asc = SCSI_ADSENSE_WRITE_PROTECT;
            si.ascq = SCSI_SENSEQ_SPACE_ALLOC_FAILED_WRITE_PROTECT;
            break;
        }
        goto medium;
    case EROFS:
    case EPERM:
    case EACCES:
        si.key = SCSI_SENSE_DATA_PROTECT;
        si.asc = SCSI_ADSENSE_WRITE_PROTECT;
        si.ascq = SCSI_SENSEQ_WRITE_PROTECT;
        break;
    case EIO:
    case ENODATA:
    case EBADMSG:
    case EILSEQ:
    medium:
        si.key = SCSI_SENSE_MEDIUM_ERROR;
        if (write || flush) {
            si.asc = SCSI_ADSENSE_WRITE_ERROR;
            si.ascq = SCSI_SENSEQ_WRITE_ERROR;
        } else {
            si.asc = SCSI_ADSENSE_UNRECOVERED_ERROR;
            si.ascq = SCSI_SENSEQ_UNRECOVERED_READ_ERROR;
        }
        if (!flush) {
            si.info_valid = true;
            si.info = cmd->bio.offset >> lu->block_shift;
        }
        break;
    default:
        si.key = SCSI_SENSE_HARDWARE_ERROR;
        si.asc = SCSI_ADSENSE_INTERNAL_TARGET_FAILURE;
        break;
    }
    scsi_check(cmd, lu, &si);
}

/* ---- verify bounce slots ------------------------------------------------------------------ */

static int slot_take(struct scsi_lu *lu)
{
    unsigned v = atomic_load(&lu->verify_busy);
    for (;;) {
        int i = 0;
        while (i < SCSI_VERIFY_SLOTS && (v & (1u << i)))
            i++;
        if (i == SCSI_VERIFY_SLOTS)
            return -1;
        if (atomic_compare_exchange_weak(&lu->verify_busy, &v, v | (1u << i)))
            return i;
    }
}

static void slot_put(struct scsi_lu *lu, int i)
{
    atomic_fetch_and(&lu->verify_busy, ~(1u << i));
}

/* ---- the transfer engine ------------------------------------------------------------------ */

/*
 * Points cmd->bio at the next piece of the data buffer, from byte `pos`, at most `remaining`
 * bytes; returns the piece's length. Up to four pieces are copied into bio_iov (the first may
 * start inside a segment, the last may be cut). When more are needed and `pos` is on a segment
 * boundary, the run of whole segments that fits is passed straight from the initiator's array.
 */
static uint32_t sbc_iov_step(struct scsi_cmd *cmd, uint32_t pos, uint32_t remaining)
{
    const struct iovec *iov = cmd->iov;
    int cnt = cmd->iovcnt;
    int i = 0;
    uint64_t start = 0;
    while (i < cnt && start + iov[i].iov_len <= pos) {
        start += iov[i].iov_len;
        i++;
    }
    uint64_t skip = pos - start;

    int n = 0;
    uint32_t got = 0;
    uint64_t sk = skip;
    for (int j = i; j < cnt && got < remaining && n < 4; j++, sk = 0) {
        uint64_t avail = iov[j].iov_len - sk;
        if (avail == 0)
            continue;
        uint64_t take = avail < remaining - got ? avail : remaining - got;
        cmd->bio_iov[n].iov_base = (uint8_t *)iov[j].iov_base + sk;
        cmd->bio_iov[n].iov_len = take;
        n++;
        got += (uint32_t)take;
    }
    if (got < remaining && skip == 0) {
        uint64_t sum = 0;
        int k = 0;
        while (i + k < cnt && sum + iov[i + k].iov_len <= remaining) {
            sum += iov[i + k].iov_len;
            k++;
        }
        if (sum > got) {
            cmd->bio.iov = &iov[i];
            cmd->bio.iovcnt = k;
            return (uint32_t)sum;
        }
    }
    cmd->bio.iov = cmd->bio_iov;
    cmd->bio.iovcnt = n;
    return got;
}

static void sbc_io_done(struct be_io *io, int result);

/* Fills cmd->bio for the next submission of the chain. */
static void sbc_prepare(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    struct scsi_lu *lu = p->lu;
    struct be_io *bio = &cmd->bio;
    memset(bio, 0, sizeof(*bio));
    bio->complete = sbc_io_done;
    bio->context = cmd;

    if ((p->flags & SBC_IO_FLUSHING) || p->kind == SBC_IO_SYNC || p->kind == SBC_IO_STOP) {
        bio->op = BE_OP_FLUSH;
        return;
    }
    uint32_t remaining = p->total - p->done;
    bio->offset = p->offset + p->done;
    if (p->kind == SBC_IO_VERIFY) {
        uint32_t n = remaining < SCSI_VERIFY_SLOT_SIZE ? remaining : SCSI_VERIFY_SLOT_SIZE;
        cmd->bio_iov[0].iov_base = lu->verify_buf + (size_t)p->slot * SCSI_VERIFY_SLOT_SIZE;
        cmd->bio_iov[0].iov_len = n;
        bio->op = BE_OP_READ;
        bio->iov = cmd->bio_iov;
        bio->iovcnt = 1;
        bio->length = n;
        return;
    }
    bio->op = p->kind == SBC_IO_WRITE ? BE_OP_WRITE : BE_OP_READ;
    if (p->kind == SBC_IO_WRITE && (p->flags & SBC_IO_FUA))
        bio->flags |= BE_IO_FUA;
    bio->length = sbc_iov_step(cmd, p->done, remaining);
}

/* Consumes the result of the submission that just completed. Returns true when another
 * submission is needed; false when the command is finished (status set). */
static bool sbc_after(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    struct scsi_lu *lu = p->lu;

    if (p->result < 0) {
        sbc_backend_error(cmd, lu, p->result);
        return false;
    }
    if (p->flags & SBC_IO_FLUSHING) {
        cmd->transferred = p->total;
        scsi_good(cmd);
        return false;
    }
    switch (p->kind) {
    case SBC_IO_SYNC:
        scsi_good(cmd);
        return false;
    case SBC_IO_STOP:
        atomic_store_explicit(&lu->stopped, true, memory_order_release);
        scsi_good(cmd);
        return false;
    case SBC_IO_VERIFY: {
        uint32_t n = (uint32_t)cmd->bio.length;
        const uint8_t *medium = lu->verify_buf + (size_t)p->slot * SCSI_VERIFY_SLOT_SIZE;
        uint32_t at = scsi_data_out_cmp(cmd, p->done, medium, n);
        if (at < n) {
            /* SBC-4 VERIFY: MISCOMPARE, INFORMATION = offset of the first byte that differs
             * from the start of the data-out buffer. */
            struct scsi_sense_info si = {
                .key = SCSI_SENSE_MISCOMPARE,
                .asc = SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION,
                .info_valid = true,
                .info = (uint64_t)p->done + at,
            };
            cmd->transferred = p->total;
            scsi_check(cmd, lu, &si);
            return false;
        }
        p->done += n;
        if (p->done < p->total)
            return true;
        cmd->transferred = p->total;
        scsi_good(cmd);
        return false;
    }
    case SBC_IO_READ:
    case SBC_IO_WRITE:
    default:
        p->done += (uint32_t)cmd->bio.length;
        if (p->done < p->total)
            return true;
        if (p->flags & SBC_IO_FLUSH_AFTER) {
            p->flags |= SBC_IO_FLUSHING;
            return true;
        }
        cmd->transferred = p->total;
        scsi_good(cmd);
        return false;
    }
}

static void sbc_finish(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    if (p->slot >= 0) {
        slot_put(p->lu, p->slot);
        p->slot = -1;
    }
    scsi_cmd_complete(cmd);
}

/*
 * Runs the chain on this thread until a submission completes elsewhere or the command is done.
 * The phase handshake: the submitter sets SUBMITTING, submits, then tries SUBMITTING->RETURNED.
 * A completion that finds SUBMITTING sets COMPLETED_INLINE and leaves the work to the submitter
 * (the loop below); one that finds RETURNED continues the chain itself.
 */
static void sbc_run(struct scsi_cmd *cmd, bool have_result)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    for (;;) {
        if (have_result && !sbc_after(cmd)) {
            sbc_finish(cmd);
            return;
        }
        sbc_prepare(cmd);
        atomic_store(&p->phase, PH_SUBMITTING);
        be_submit(p->lu->be, &cmd->bio);
        uint8_t expected = PH_SUBMITTING;
        if (atomic_compare_exchange_strong(&p->phase, &expected, PH_RETURNED))
            return; /* the completion owns the command now */
        have_result = true;
    }
}

static void sbc_io_done(struct be_io *io, int result)
{
    struct scsi_cmd *cmd = io->context;
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    p->result = result;
    uint8_t expected = PH_SUBMITTING;
    if (atomic_compare_exchange_strong(&p->phase, &expected, PH_COMPLETED_INLINE))
        return;
    sbc_run(cmd, true);
}

static int sbc_start(struct scsi_cmd *cmd, enum sbc_io_kind kind, uint64_t offset, uint32_t total,
                     uint8_t flags)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    p->kind = (uint8_t)kind;
    p->offset = offset;
    p->total = total;
    p->done = 0;
    p->flags = flags;
    sbc_run(cmd, false);
    return SCSI_PENDING;
}

/* ---- READ / WRITE / VERIFY ---------------------------------------------------------------- */

struct sbc_rw {
    uint64_t lba;
    uint32_t nblocks;
    uint16_t len_field; /* CDB byte of TRANSFER LENGTH, for the field pointer */
    bool fua;
};

static void sbc_parse_rw(const uint8_t *cdb, struct sbc_rw *rw)
{
    switch (cdb[0]) {
    case SCSIOP_READ6:
    case SCSIOP_WRITE6:
        /* SBC-4 5.13/5.39: 21-bit LBA; TRANSFER LENGTH 0 means 256 blocks. */
        rw->lba = scsi_get_be24(cdb + 1) & 0x1FFFFF;
        rw->nblocks = cdb[4] ? cdb[4] : 256;
        rw->len_field = 4;
        rw->fua = false;
        break;
    case SCSIOP_READ:
    case SCSIOP_WRITE:
    case SCSIOP_VERIFY:
        rw->lba = scsi_get_be32(cdb + 2);
        rw->nblocks = scsi_get_be16(cdb + 7);
        rw->len_field = 7;
        rw->fua = cdb[1] & CDB_FORCE_MEDIA_ACCESS;
        break;
    case SCSIOP_READ12:
    case SCSIOP_WRITE12:
    case SCSIOP_VERIFY12:
        rw->lba = scsi_get_be32(cdb + 2);
        rw->nblocks = scsi_get_be32(cdb + 6);
        rw->len_field = 6;
        rw->fua = cdb[1] & CDB_FORCE_MEDIA_ACCESS;
        break;
    default: /* 16-byte */
        rw->lba = scsi_get_be64(cdb + 2);
        rw->nblocks = scsi_get_be32(cdb + 10);
        rw->len_field = 10;
        rw->fua = cdb[1] & CDB_FORCE_MEDIA_ACCESS;
        break;
    }
}

static bool sbc_range_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint64_t n)
{
    if (lba > lu->nblocks || n > lu->nblocks - lba) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                          SCSI_SENSEQ_LBA_OUT_OF_RANGE);
        return false;
    }
    return true;
}

/* SBC-4 6.6.4: a transfer longer than MAXIMUM TRANSFER LENGTH is an invalid field. */
static bool sbc_length_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, const struct sbc_rw *rw)
{
    if (lu->max_transfer_blocks && rw->nblocks > lu->max_transfer_blocks) {
        scsi_check_cdb_field(cmd, lu, rw->len_field, -1);
        return false;
    }
    return true;
}

static int sbc_read(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    if (!sbc_length_ok(cmd, lu, &rw) || !sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    uint64_t bytes = (uint64_t)rw.nblocks << lu->block_shift;
    /* A data-in buffer shorter than the transfer gets what fits; the residual is the caller's
     * (SAM-5 5.4.3 overflow). FUA on a read needs nothing: there is no read cache to bypass. */
    uint32_t cap = scsi_in_capacity(cmd);
    uint32_t total = bytes < cap ? (uint32_t)bytes : cap;
    if (total == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    return sbc_start(cmd, SBC_IO_READ, rw.lba << lu->block_shift, total, 0);
}

static int sbc_write(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    if (!sbc_length_ok(cmd, lu, &rw) || !sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    if (rw.nblocks == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint64_t bytes = (uint64_t)rw.nblocks << lu->block_shift;
    if (scsi_out_capacity(cmd) < bytes) {
        /* The initiator offers less data than the CDB asks to write. */
        scsi_check_cdb_field(cmd, lu, rw.len_field, -1);
        return SCSI_DONE;
    }
    /* WCE=0 makes every write write-through (SBC-4 6.5.5). */
    bool fua = rw.fua || !atomic_load_explicit(&lu->wce, memory_order_relaxed);
    uint8_t flags = 0;
    if (fua && lu->be->caps.can_fua)
        flags |= SBC_IO_FUA;
    else if (fua && lu->be->caps.can_flush)
        flags |= SBC_IO_FLUSH_AFTER;
    return sbc_start(cmd, SBC_IO_WRITE, rw.lba << lu->block_shift, (uint32_t)bytes, flags);
}

static int sbc_verify(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    uint8_t bytchk = (cmd->cdb[1] >> 1) & 0x03;
    /* BYTCHK 10b is reserved; 11b (one block compared against each) is not implemented. */
    if (bytchk > 1) {
        scsi_check_cdb_field(cmd, lu, 1, 2);
        return SCSI_DONE;
    }
    if (bytchk && !sbc_length_ok(cmd, lu, &rw))
        return SCSI_DONE;
    if (!sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    if (!bytchk || rw.nblocks == 0) {
        /* BYTCHK=0: a medium verification; a store without media errors passes it. */
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint64_t bytes = (uint64_t)rw.nblocks << lu->block_shift;
    if (scsi_out_capacity(cmd) < bytes) {
        scsi_check_cdb_field(cmd, lu, rw.len_field, -1);
        return SCSI_DONE;
    }
    int slot = slot_take(lu);
    if (slot < 0) {
        cmd->status = SAM_STAT_BUSY; /* every bounce slot is in use: retry later */
        return SCSI_DONE;
    }
    scsi_priv(cmd)->slot = (int8_t)slot;
    return sbc_start(cmd, SBC_IO_VERIFY, rw.lba << lu->block_shift, (uint32_t)bytes, 0);
}

/* ---- SYNCHRONIZE CACHE -------------------------------------------------------------------- */

/* SBC-4 SYNCHRONIZE CACHE (10)/(16): the range is checked (NUMBER OF LOGICAL BLOCKS 0 means to
 * the end of the medium), then the whole backend is flushed: flushing more than asked is allowed.
 * IMMED=1 is accepted; we still answer after the flush, which the standard permits. */
static int sbc_sync_cache(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint64_t lba, n;
    if (cdb[0] == SCSIOP_SYNCHRONIZE_CACHE) {
        lba = scsi_get_be32(cdb + 2);
        n = scsi_get_be16(cdb + 7);
    } else {
        lba = scsi_get_be64(cdb + 2);
        n = scsi_get_be32(cdb + 10);
    }
    if (!sbc_range_ok(cmd, lu, lba, n))
        return SCSI_DONE;
    if (!lu->be->caps.can_flush) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    return sbc_start(cmd, SBC_IO_SYNC, 0, 0, 0);
}

/* ---- READ CAPACITY ------------------------------------------------------------------------ */

static int sbc_read_capacity10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    /* SBC-3 5.15: with PMI zero the LOGICAL BLOCK ADDRESS field must be zero. */
    if (!(cdb[8] & 0x01) && scsi_get_be32(cdb + 2) != 0) {
        scsi_check_cdb_field(cmd, lu, 2, -1);
        return SCSI_DONE;
    }
    uint8_t buf[8];
    uint64_t last = lu->nblocks - 1;
    /* SBC-4 5.15: FFFFFFFFh tells the initiator to use READ CAPACITY(16). */
    scsi_put_be32(buf, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
    scsi_put_be32(buf + 4, lu->block_size);
    scsi_respond(cmd, buf, sizeof(buf), sizeof(buf));
    return SCSI_DONE;
}

static int sbc_read_capacity16(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    scsi_put_be64(buf, lu->nblocks - 1);
    scsi_put_be32(buf + 8, lu->block_size);
    /* No protection, one logical block per physical block, not thin provisioned. */
    scsi_respond(cmd, buf, sizeof(buf), scsi_get_be32(cmd->cdb + 10));
    return SCSI_DONE;
}

/* ---- START STOP UNIT ---------------------------------------------------------------------- */

/* SBC-4 5.25. Only POWER CONDITION 0h (START_VALID) is implemented. A stopped unit answers media
 * access commands with NOT READY, INITIALIZING COMMAND REQUIRED until started again. Stopping
 * flushes the write cache first unless NO_FLUSH is set. */
static int sbc_start_stop(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    if (cdb[4] & 0xF0) {
        scsi_check_cdb_field(cmd, lu, 4, 7);
        return SCSI_DONE;
    }
    if (cdb[3] & 0x0F) {
        scsi_check_cdb_field(cmd, lu, 3, 3);
        return SCSI_DONE;
    }
    if (cdb[4] & 0x02) { /* LOEJ: the medium is not removable */
        scsi_check_cdb_field(cmd, lu, 4, 1);
        return SCSI_DONE;
    }
    if (cdb[4] & 0x01) {
        atomic_store_explicit(&lu->stopped, false, memory_order_release);
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (!(cdb[4] & 0x04) && lu->be->caps.can_flush && !lu->read_only)
        return sbc_start(cmd, SBC_IO_STOP, 0, 0, 0);
    atomic_store_explicit(&lu->stopped, true, memory_order_release);
    scsi_good(cmd);
    return SCSI_DONE;
}

/* ---- table -------------------------------------------------------------------------------- */

#define CTL 0xC0
#define MW  (SCSI_F_MEDIA | SCSI_F_WRITE)

/* Byte 1 of READ(10/12/16): RDPROTECT unsupported (must be 0), DPO, FUA, RARC, obsolete FUA_NV.
 * WRITE: WRPROTECT 0, DPO, FUA, obsolete FUA_NV. VERIFY: VRPROTECT 0, DPO, BYTCHK. */
#define RD1 0x1E
#define WR1 0x1A
#define VF1 0x16
#define GRP 0x1F

const struct scsi_cmd_desc sbc_commands[] = {
    {SCSIOP_READ6,
     0,
     6,
     SCSI_DIR_IN,
     SCSI_F_MEDIA,
     {0xFF, 0x1F, 0xFF, 0xFF, 0xFF, CTL},
     sbc_read,
     "READ(6)"},
    {SCSIOP_WRITE6,
     0,
     6,
     SCSI_DIR_OUT,
     MW,
     {0xFF, 0x1F, 0xFF, 0xFF, 0xFF, CTL},
     sbc_write,
     "WRITE(6)"},
    {SCSIOP_START_STOP_UNIT,
     0,
     6,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0x01, 0, 0x0F, 0xF7, CTL},
     sbc_start_stop,
     "START STOP UNIT"},
    {SCSIOP_READ_CAPACITY,
     0,
     10,
     SCSI_DIR_IN,
     SCSI_F_MEDIA | SCSI_F_DATA_IN,
     {0xFF, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, CTL},
     sbc_read_capacity10,
     "READ CAPACITY(10)"},
    {SCSIOP_READ,
     0,
     10,
     SCSI_DIR_IN,
     SCSI_F_MEDIA,
     {0xFF, RD1, 0xFF, 0xFF, 0xFF, 0xFF, GRP, 0xFF, 0xFF, CTL},
     sbc_read,
     "READ(10)"},
    {SCSIOP_WRITE,
     0,
     10,
     SCSI_DIR_OUT,
     MW,
     {0xFF, WR1, 0xFF, 0xFF, 0xFF, 0xFF, GRP, 0xFF, 0xFF, CTL},
     sbc_write,
     "WRITE(10)"},
    {SCSIOP_VERIFY,
     0,
     10,
     SCSI_DIR_OUT,
     SCSI_F_MEDIA,
     {0xFF, VF1, 0xFF, 0xFF, 0xFF, 0xFF, GRP, 0xFF, 0xFF, CTL},
     sbc_verify,
     "VERIFY(10)"},
    {SCSIOP_SYNCHRONIZE_CACHE,
     0,
     10,
     SCSI_DIR_NONE,
     SCSI_F_MEDIA,
     {0xFF, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, GRP, 0xFF, 0xFF, CTL},
     sbc_sync_cache,
     "SYNCHRONIZE CACHE(10)"},
    {SCSIOP_READ16,
     0,
     16,
     SCSI_DIR_IN,
     SCSI_F_MEDIA,
     {0xFF, RD1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_read,
     "READ(16)"},
    {SCSIOP_WRITE16,
     0,
     16,
     SCSI_DIR_OUT,
     MW,
     {0xFF, WR1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_write,
     "WRITE(16)"},
    {SCSIOP_VERIFY16,
     0,
     16,
     SCSI_DIR_OUT,
     SCSI_F_MEDIA,
     {0xFF, VF1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_verify,
     "VERIFY(16)"},
    {SCSIOP_SYNCHRONIZE_CACHE16,
     0,
     16,
     SCSI_DIR_NONE,
     SCSI_F_MEDIA,
     {0xFF, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_sync_cache,
     "SYNCHRONIZE CACHE(16)"},
    {SCSIOP_SERVICE_ACTION_IN16,
     SERVICE_ACTION_READ_CAPACITY16,
     16,
     SCSI_DIR_IN,
     SCSI_F_MEDIA | SCSI_F_SA | SCSI_F_DATA_IN,
     {0xFF, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
      CTL},
     sbc_read_capacity16,
     "READ CAPACITY(16)"},
    {SCSIOP_READ12,
     0,
     12,
     SCSI_DIR_IN,
     SCSI_F_MEDIA,
     {0xFF, RD1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_read,
     "READ(12)"},
    {SCSIOP_WRITE12,
     0,
     12,
     SCSI_DIR_OUT,
     MW,
     {0xFF, WR1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_write,
     "WRITE(12)"},
    {SCSIOP_VERIFY12,
     0,
     12,
     SCSI_DIR_OUT,
     SCSI_F_MEDIA,
     {0xFF, VF1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, GRP, CTL},
     sbc_verify,
     "VERIFY(12)"},
    {0},
};
