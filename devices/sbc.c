/*
 * SBC-4 block commands of a direct-access logical unit: READ and WRITE (6, 10, 12, 16),
 * SYNCHRONIZE CACHE (10, 16), READ CAPACITY (10) and (16), START STOP UNIT, PRE-FETCH (10, 16),
 * PREVENT ALLOW MEDIUM REMOVAL, READ DEFECT DATA (10, 12), the command table of the block device
 * (with the handlers of sbc_lbp.c and sbc_cmp.c), and the transfer engine that carries every one
 * of them to the backend through the command's own be_io.
 *
 * A transfer is a chain of backend submissions kept in the command's scratch (struct
 * scsi_cmd_priv): usually one; two when the initiator's iov has more than four segments and does
 * not end on a segment boundary (whole segments go to the backend straight from the initiator's
 * array, the tail through bio_iov); one per 64 KiB bounce slot for the commands that compare or
 * read-modify-write (VERIFY BYTCHK=1, COMPARE AND WRITE, ORWRITE) or write a repeated pattern
 * (WRITE SAME); one per descriptor for UNMAP; a FLUSH after a write when FUA is needed and the
 * backend has no FUA. Completions may run inline (RAM) or on a backend thread (io_uring); an
 * atomic phase decides which thread continues the chain, so an inline backend costs no recursion
 * and no lock is held across be_submit().
 *
 * Every chain that writes holds the LU's write gate (struct scsi_write_gate) shared; COMPARE AND
 * WRITE and ORWRITE hold it exclusive, which makes them atomic against every other write (SBC-4
 * 5.3: no other command may change the blocks between the compare and the write). A command that
 * cannot take the gate waits in the gate's list, without a thread, and is started by the holder
 * that releases it.
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

#include "devices/sbc_p.h"

enum { PH_IDLE, PH_SUBMITTING, PH_RETURNED, PH_COMPLETED_INLINE };

static bool medium_move(struct scsi_cmd *cmd, struct scsi_lu *lu, bool load);
static bool sbc_not_ready(struct scsi_lu *lu, uint8_t *asc, uint8_t *ascq);

static bool kind_writes(const struct scsi_cmd_priv *p)
{
    switch (p->kind) {
    case SBC_IO_WRITE:
    case SBC_IO_DISCARD:
    case SBC_IO_ZEROES:
    case SBC_IO_PATTERN:
    case SBC_IO_UNMAP:
        return true;
    case SBC_IO_CAW:
    case SBC_IO_ORWRITE:
        return (p->flags & SBC_IO_STEP2) != 0;
    default:
        return false;
    }
}

/* ---- sense for backend errors ------------------------------------------------------------- */

static void sbc_backend_error(struct scsi_cmd *cmd, struct scsi_lu *lu, int err)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    bool flush = (p->flags & SBC_IO_FLUSHING) || p->kind == SBC_IO_SYNC || p->kind == SBC_IO_STOP ||
                 p->kind == SBC_IO_EJECT;
    bool write = kind_writes(p);
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

/* ---- bounce slots ------------------------------------------------------------------------- */

int sbc_slot_take(struct scsi_lu *lu)
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

uint8_t *sbc_slot_buf(struct scsi_lu *lu, int slot)
{
    return lu->verify_buf + (size_t)slot * SCSI_VERIFY_SLOT_SIZE;
}

void sbc_slot_fill(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t bytes, bool zeros)
{
    uint8_t *slot = sbc_slot_buf(lu, scsi_priv(cmd)->slot);
    uint32_t fill = bytes < SCSI_VERIFY_SLOT_SIZE ? (uint32_t)bytes : SCSI_VERIFY_SLOT_SIZE;
    if (zeros)
        memset(slot, 0, lu->block_size);
    else
        scsi_data_out(cmd, 0, slot, lu->block_size);
    for (uint32_t off = lu->block_size; off < fill; off += lu->block_size)
        memcpy(slot + off, slot, lu->block_size);
}

bool sbc_slot_claim(struct scsi_cmd *cmd, struct scsi_lu *lu)
{
    int slot = sbc_slot_take(lu);
    if (slot < 0) {
        cmd->status = SAM_STAT_BUSY; /* every bounce slot is in use: retry later */
        cmd->sense_len = 0;
        return false;
    }
    scsi_priv(cmd)->slot = (int8_t)slot;
    return true;
}

/* ---- the write gate ----------------------------------------------------------------------- */

static void sbc_run(struct scsi_cmd *cmd, bool have_result);

static void gate_enqueue(struct scsi_write_gate *g, struct scsi_cmd *cmd)
{
    cmd->bio.context = NULL;
    if (g->tail)
        g->tail->bio.context = cmd;
    else
        g->head = cmd;
    g->tail = cmd;
}

/* Shared holders that found EXCL back out through here; the one that drains the count to zero
 * starts the exclusive command waiting for it. */
static void gate_leave_shared(struct scsi_lu *lu)
{
    struct scsi_write_gate *g = &lu->gate;
    unsigned v = atomic_fetch_sub(&g->state, 1);
    if (!(v & SCSI_GATE_EXCL) || (v & ~SCSI_GATE_EXCL) != 1)
        return;
    pthread_mutex_lock(&g->lock);
    struct scsi_cmd *c = g->excl_waiting;
    if (c && (atomic_load(&g->state) & ~SCSI_GATE_EXCL) == 0)
        g->excl_waiting = NULL;
    else
        c = NULL;
    pthread_mutex_unlock(&g->lock);
    if (c)
        sbc_run(c, false);
}

/* Takes the gate for the command's chain: true to run it now, false when it waits (the gate
 * starts it later with sbc_run). */
static bool gate_enter(struct scsi_lu *lu, struct scsi_cmd *cmd, bool excl)
{
    struct scsi_write_gate *g = &lu->gate;
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    if (!excl) {
        for (;;) {
            unsigned v = atomic_fetch_add(&g->state, 1);
            if (!(v & SCSI_GATE_EXCL)) {
                p->flags |= SBC_IO_GATE_SH;
                return true;
            }
            gate_leave_shared(lu);
            pthread_mutex_lock(&g->lock);
            if (atomic_load(&g->state) & SCSI_GATE_EXCL) {
                gate_enqueue(g, cmd);
                pthread_mutex_unlock(&g->lock);
                return false;
            }
            pthread_mutex_unlock(&g->lock);
        }
    }
    pthread_mutex_lock(&g->lock);
    if (atomic_load(&g->state) & SCSI_GATE_EXCL) {
        gate_enqueue(g, cmd);
        pthread_mutex_unlock(&g->lock);
        return false;
    }
    unsigned v = atomic_fetch_or(&g->state, SCSI_GATE_EXCL);
    p->flags |= SBC_IO_GATE_EX;
    if ((v & ~SCSI_GATE_EXCL) == 0) {
        pthread_mutex_unlock(&g->lock);
        return true;
    }
    /* Writes in flight: the last of them to finish starts this command. */
    g->excl_waiting = cmd;
    pthread_mutex_unlock(&g->lock);
    return false;
}

static bool gate_wanted(const struct scsi_cmd_priv *p, bool *excl)
{
    *excl = p->kind == SBC_IO_CAW || p->kind == SBC_IO_ORWRITE || (p->flags & SBC_IO_WHOLE);
    return *excl || kind_writes(p);
}

/* Starts a queued command again: it takes its turn at the gate like a new one. */
static void gate_restart(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    bool excl;
    gate_wanted(p, &excl);
    if (gate_enter(p->lu, cmd, excl))
        sbc_run(cmd, false);
}

static void gate_leave(struct scsi_lu *lu, uint8_t flags)
{
    struct scsi_write_gate *g = &lu->gate;
    if (flags & SBC_IO_GATE_SH) {
        gate_leave_shared(lu);
        return;
    }
    if (!(flags & SBC_IO_GATE_EX))
        return;
    pthread_mutex_lock(&g->lock);
    atomic_fetch_and(&g->state, ~SCSI_GATE_EXCL);
    struct scsi_cmd *c = g->head;
    g->head = g->tail = NULL;
    pthread_mutex_unlock(&g->lock);
    while (c) {
        struct scsi_cmd *next = c->bio.context;
        gate_restart(c);
        c = next;
    }
}

/* ---- the transfer engine ------------------------------------------------------------------ */

/*
 * Points cmd->bio at the next piece of the data buffer, from byte `pos`, at most `remaining`
 * bytes; returns the piece's length. Up to four pieces are copied into bio_iov (the first may
 * start inside a segment, the last may be cut). When more are needed and `pos` is on a segment
 * boundary, the run of whole segments that fits is passed straight from the initiator's array.
 */
static uint32_t sbc_iov_step(struct scsi_cmd *cmd, uint64_t pos, uint64_t remaining)
{
    const struct iovec *iov = cmd->iov;
    int cnt = cmd->iovcnt;
    int i = 0;
    uint64_t start = 0;
    if (remaining > UINT32_MAX)
        remaining = UINT32_MAX;
    while (i < cnt && start + iov[i].iov_len <= pos) {
        start += iov[i].iov_len;
        i++;
    }
    uint64_t skip = pos - start;

    int n = 0;
    uint64_t got = 0;
    uint64_t sk = skip;
    for (int j = i; j < cnt && got < remaining && n < 4; j++, sk = 0) {
        uint64_t avail = iov[j].iov_len - sk;
        if (avail == 0)
            continue;
        uint64_t take = avail < remaining - got ? avail : remaining - got;
        cmd->bio_iov[n].iov_base = (uint8_t *)iov[j].iov_base + sk;
        cmd->bio_iov[n].iov_len = take;
        n++;
        got += take;
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
    return (uint32_t)got;
}

/* The UNMAP block descriptor i of the data-out buffer (SBC-4 5.32.2): LBA and block count. */
static void unmap_desc(const struct scsi_cmd *cmd, uint64_t i, uint64_t *lba, uint32_t *n)
{
    uint8_t d[16] = {0};
    scsi_data_out(cmd, (uint32_t)(8 + 16 * i), d, sizeof(d));
    *lba = scsi_get_be64(d);
    *n = scsi_get_be32(d + 8);
}

/* Moves p->done past UNMAP descriptors of zero blocks (they ask for nothing). */
static void unmap_skip_empty(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    for (; p->done < p->total; p->done++) {
        uint64_t lba;
        uint32_t n;
        unmap_desc(cmd, p->done, &lba, &n);
        if (n)
            return;
    }
}

static void sbc_io_done(struct be_io *io, int result);

static void prepare_slot(struct scsi_cmd *cmd, enum be_op op, uint64_t chunk)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    struct be_io *bio = &cmd->bio;
    cmd->bio_iov[0].iov_base = sbc_slot_buf(p->lu, p->slot);
    cmd->bio_iov[0].iov_len = chunk;
    bio->op = op;
    bio->iov = cmd->bio_iov;
    bio->iovcnt = 1;
    bio->length = chunk;
}

/* Fills cmd->bio for the next submission of the chain. */
static void sbc_prepare(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    struct scsi_lu *lu = p->lu;
    struct be_io *bio = &cmd->bio;
    memset(bio, 0, sizeof(*bio));
    bio->complete = sbc_io_done;
    bio->context = cmd;

    if ((p->flags & SBC_IO_FLUSHING) || p->kind == SBC_IO_SYNC || p->kind == SBC_IO_STOP ||
        p->kind == SBC_IO_EJECT) {
        bio->op = BE_OP_FLUSH;
        return;
    }
    uint64_t remaining = p->total - p->done;
    uint64_t chunk = remaining < SCSI_VERIFY_SLOT_SIZE ? remaining : SCSI_VERIFY_SLOT_SIZE;
    bio->offset = p->offset + p->done;
    switch (p->kind) {
    case SBC_IO_VERIFY:
    case SBC_IO_VERIFY_SAME:
        prepare_slot(cmd, BE_OP_READ, chunk);
        return;
    case SBC_IO_DISCARD:
    case SBC_IO_ZEROES:
        bio->op = p->kind == SBC_IO_DISCARD ? BE_OP_DISCARD : BE_OP_WRITE_ZEROES;
        bio->offset = p->offset;
        bio->length = p->total;
        return;
    case SBC_IO_PATTERN:
        prepare_slot(cmd, BE_OP_WRITE, chunk);
        break;
    case SBC_IO_UNMAP: {
        uint64_t lba;
        uint32_t n;
        unmap_skip_empty(cmd);
        unmap_desc(cmd, p->done, &lba, &n);
        bio->op = BE_OP_DISCARD;
        bio->offset = lba << lu->block_shift;
        bio->length = (uint64_t)n << lu->block_shift;
        return;
    }
    case SBC_IO_CAW:
        if (!(p->flags & SBC_IO_STEP2)) {
            bio->offset = p->offset;
            prepare_slot(cmd, BE_OP_READ, p->total);
            return;
        }
        /* The write half of the data-out buffer follows the compare half. */
        bio->op = BE_OP_WRITE;
        bio->length = sbc_iov_step(cmd, p->total + p->done, remaining);
        break;
    case SBC_IO_ORWRITE:
        prepare_slot(cmd, (p->flags & SBC_IO_STEP2) ? BE_OP_WRITE : BE_OP_READ, chunk);
        break;
    case SBC_IO_WRITE:
    case SBC_IO_READ:
    default:
        bio->op = p->kind == SBC_IO_WRITE ? BE_OP_WRITE : BE_OP_READ;
        bio->length = sbc_iov_step(cmd, p->done, remaining);
        break;
    }
    if (bio->op == BE_OP_WRITE && (p->flags & SBC_IO_FUA))
        bio->flags |= BE_IO_FUA;
}

static void miscompare(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t offset)
{
    /* SBC-4 5.3, 5.33: MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION, INFORMATION = the offset
     * of the first byte that differs. */
    struct scsi_sense_info si = {
        .key = SCSI_SENSE_MISCOMPARE,
        .asc = SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION,
        .info_valid = true,
        .info = offset,
    };
    scsi_check(cmd, lu, &si);
}

/* ORs the data-out bytes [pos, pos + n) into the slot, a stack-sized piece at a time. */
static void or_into_slot(struct scsi_cmd *cmd, uint8_t *dst, uint64_t pos, uint32_t n)
{
    uint8_t piece[512];
    for (uint32_t k = 0; k < n;) {
        uint32_t m = n - k < sizeof(piece) ? n - k : (uint32_t)sizeof(piece);
        scsi_data_out(cmd, (uint32_t)(pos + k), piece, m);
        for (uint32_t j = 0; j < m; j++)
            dst[k + j] |= piece[j];
        k += m;
    }
}

/* The writing part of a chain is done: flush when FUA asks for it, verify when WRITE AND VERIFY
 * asks for it, else the command is good. Returns true when another submission is needed. */
static bool written(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    if ((p->flags & SBC_IO_FLUSH_AFTER) && !(p->flags & SBC_IO_FLUSHING)) {
        p->flags |= SBC_IO_FLUSHING;
        return true;
    }
    p->flags &= (uint8_t)~SBC_IO_FLUSHING;
    if (p->flags & SBC_IO_THEN_VERIFY) {
        /* SBC-4 5.42: WRITE AND VERIFY with BYTCHK=1 compares the medium with the data-out. */
        p->flags &= (uint8_t)~SBC_IO_THEN_VERIFY;
        p->kind = p->kind == SBC_IO_PATTERN ? SBC_IO_VERIFY_SAME : SBC_IO_VERIFY;
        p->done = 0;
        return true;
    }
    if (p->kind == SBC_IO_WRITE)
        cmd->transferred = (uint32_t)p->total;
    scsi_good(cmd);
    return false;
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
    if (p->flags & SBC_IO_FLUSHING)
        return written(cmd);
    uint64_t n = cmd->bio.length;
    switch (p->kind) {
    case SBC_IO_SYNC:
        scsi_good(cmd);
        return false;
    case SBC_IO_STOP:
        atomic_store_explicit(&lu->stopped, true, memory_order_release);
        scsi_good(cmd);
        return false;
    case SBC_IO_EJECT:
        medium_move(cmd, lu, false);
        return false;
    case SBC_IO_VERIFY: {
        const uint8_t *medium = sbc_slot_buf(lu, p->slot);
        uint32_t at = scsi_data_out_cmp(cmd, (uint32_t)p->done, medium, (uint32_t)n);
        if (at < n) {
            cmd->transferred = (uint32_t)p->total;
            miscompare(cmd, lu, p->done + at);
            return false;
        }
        p->done += n;
        if (p->done < p->total)
            return true;
        cmd->transferred = (uint32_t)p->total;
        scsi_good(cmd);
        return false;
    }
    case SBC_IO_VERIFY_SAME: {
        /* BYTCHK=11b: every block of the range against the single data-out block. */
        const uint8_t *medium = sbc_slot_buf(lu, p->slot);
        for (uint64_t k = 0; k < n; k += lu->block_size) {
            uint32_t at = scsi_data_out_cmp(cmd, 0, medium + k, lu->block_size);
            if (at < lu->block_size) {
                miscompare(cmd, lu, p->done + k + at);
                return false;
            }
        }
        p->done += n;
        if (p->done < p->total)
            return true;
        scsi_good(cmd);
        return false;
    }
    case SBC_IO_DISCARD:
    case SBC_IO_ZEROES:
        return written(cmd);
    case SBC_IO_UNMAP:
        p->done++;
        unmap_skip_empty(cmd);
        if (p->done < p->total)
            return true;
        scsi_good(cmd);
        return false;
    case SBC_IO_CAW:
        if (!(p->flags & SBC_IO_STEP2)) {
            uint32_t at = scsi_data_out_cmp(cmd, 0, sbc_slot_buf(lu, p->slot), (uint32_t)n);
            if (at < n) {
                miscompare(cmd, lu, at);
                return false;
            }
            p->flags |= SBC_IO_STEP2;
            p->done = 0;
            return true;
        }
        p->done += n;
        if (p->done < p->total)
            return true;
        return written(cmd);
    case SBC_IO_ORWRITE:
        if (!(p->flags & SBC_IO_STEP2)) {
            or_into_slot(cmd, sbc_slot_buf(lu, p->slot), p->done, (uint32_t)n);
            p->flags |= SBC_IO_STEP2;
            return true;
        }
        p->flags &= (uint8_t)~SBC_IO_STEP2;
        p->done += n;
        if (p->done < p->total)
            return true;
        return written(cmd);
    case SBC_IO_READ:
        p->done += n;
        if (p->done < p->total)
            return true;
        cmd->transferred = (uint32_t)p->total;
        scsi_good(cmd);
        return false;
    case SBC_IO_WRITE:
    case SBC_IO_PATTERN:
    default:
        p->done += n;
        if (p->done < p->total)
            return true;
        return written(cmd);
    }
}

static void sbc_finish(struct scsi_cmd *cmd)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    struct scsi_lu *lu = p->lu;
    uint8_t flags = p->flags;
    if (p->slot >= 0) {
        slot_put(lu, p->slot);
        p->slot = -1;
    }
    p->flags &= (uint8_t) ~(SBC_IO_GATE_SH | SBC_IO_GATE_EX);
    /* Before done(): the command may be reused the moment it completes. */
    gate_leave(lu, flags);
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

int sbc_start(struct scsi_cmd *cmd, enum sbc_io_kind kind, uint64_t offset, uint64_t total,
              uint8_t flags)
{
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    p->kind = (uint8_t)kind;
    p->offset = offset;
    p->total = total;
    p->done = 0;
    p->flags = flags;
    bool excl;
    if (gate_wanted(p, &excl) && !gate_enter(p->lu, cmd, excl))
        return SCSI_PENDING; /* the gate starts it */
    sbc_run(cmd, false);
    return SCSI_PENDING;
}

uint8_t sbc_write_flags(const struct scsi_lu *lu, bool fua)
{
    /* WCE=0 makes every write write-through (SBC-4 6.5.5). */
    if (!fua && atomic_load_explicit(&((struct scsi_lu *)lu)->wce, memory_order_relaxed))
        return 0;
    if (lu->be->caps.can_fua)
        return SBC_IO_FUA;
    return lu->be->caps.can_flush ? SBC_IO_FLUSH_AFTER : 0;
}

int sbc_lu_init(struct scsi_lu *lu)
{
    /* Thin provisioned when the backend can deallocate (SBC-4 4.7.3.2); LBPRZ when what it
     * deallocates reads back as zeros. */
    lu->lbpme = lu->be->caps.can_trim;
    lu->lbprz = lu->be->caps.can_trim && lu->be->caps.trim_zeroes;
    if (lu->removable)
        lu->type_not_ready = sbc_not_ready;
    /* A fully provisioned LU has no UNMAP (LBPU=0): neither executed nor reported by REPORT
     * SUPPORTED OPERATION CODES, which lists lu->op. */
    if (!lu->lbpme && lu->op[SCSIOP_UNMAP] && lu->op[SCSIOP_UNMAP]->handler == sbc_unmap)
        lu->op[SCSIOP_UNMAP] = NULL;
    atomic_init(&lu->gate.state, 0);
    lu->gate.excl_waiting = NULL;
    lu->gate.head = lu->gate.tail = NULL;
    return pthread_mutex_init(&lu->gate.lock, NULL) == 0 ? 0 : -ENOMEM;
}

void sbc_lu_fini(struct scsi_lu *lu)
{
    pthread_mutex_destroy(&lu->gate.lock);
}

/* ---- READ / WRITE ------------------------------------------------------------------------- */

void sbc_parse_rw(const uint8_t *cdb, struct sbc_rw *rw)
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
    case SCSIOP_WRITE_VERIFY:
    case SBC_OP_PREFETCH10:
        rw->lba = scsi_get_be32(cdb + 2);
        rw->nblocks = scsi_get_be16(cdb + 7);
        rw->len_field = 7;
        rw->fua = cdb[1] & CDB_FORCE_MEDIA_ACCESS;
        break;
    case SCSIOP_READ12:
    case SCSIOP_WRITE12:
    case SCSIOP_VERIFY12:
    case SCSIOP_WRITE_VERIFY12:
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

bool sbc_range_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint64_t n)
{
    if (lba > lu->nblocks || n > lu->nblocks - lba) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_BLOCK,
                          SCSI_SENSEQ_LBA_OUT_OF_RANGE);
        return false;
    }
    return true;
}

/* SBC-4 6.6.4: a transfer longer than MAXIMUM TRANSFER LENGTH is an invalid field. */
bool sbc_xfer_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t n, uint16_t len_field)
{
    if (lu->max_transfer_blocks && n > lu->max_transfer_blocks) {
        scsi_check_cdb_field(cmd, lu, len_field, -1);
        return false;
    }
    return true;
}

static int sbc_read(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    if (!sbc_xfer_ok(cmd, lu, rw.nblocks, rw.len_field) ||
        !sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
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

bool sbc_write_checks(struct scsi_lu *lu, struct scsi_cmd *cmd, struct sbc_rw *rw, uint64_t *bytes)
{
    sbc_parse_rw(cmd->cdb, rw);
    if (!sbc_xfer_ok(cmd, lu, rw->nblocks, rw->len_field) ||
        !sbc_range_ok(cmd, lu, rw->lba, rw->nblocks))
        return false;
    if (rw->nblocks == 0) {
        scsi_good(cmd);
        return false;
    }
    *bytes = (uint64_t)rw->nblocks << lu->block_shift;
    if (scsi_out_capacity(cmd) < *bytes) {
        /* The initiator offers less data than the CDB asks to write. */
        scsi_check_cdb_field(cmd, lu, rw->len_field, -1);
        return false;
    }
    return true;
}

static int sbc_write(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    uint64_t bytes;
    if (!sbc_write_checks(lu, cmd, &rw, &bytes))
        return SCSI_DONE;
    return sbc_start(cmd, SBC_IO_WRITE, rw.lba << lu->block_shift, bytes,
                     sbc_write_flags(lu, rw.fua));
}

/* ---- SYNCHRONIZE CACHE, PRE-FETCH --------------------------------------------------------- */

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

/* SBC-4 5.16/5.17 PRE-FETCH (10)/(16): the range is checked (PREFETCH LENGTH 0 means to the end
 * of the medium). The device server keeps no read cache of its own (a RAM store is the medium;
 * the file store has the host page cache, which we do not steer), so there is never cache room
 * for the blocks: GOOD, not CONDITION MET, as SBC-4 asks when they do not all fit. IMMED is
 * accepted either way. */
static int sbc_prefetch(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    if (!sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    scsi_good(cmd);
    return SCSI_DONE;
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

/* SBC-4 5.20: no protection; LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT from the configured
 * physical block size, lowest aligned LBA 0; LBPME and LBPRZ from the backend (sbc_lu_init). */
static int sbc_read_capacity16(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    scsi_put_be64(buf, lu->nblocks - 1);
    scsi_put_be32(buf + 8, lu->block_size);
    buf[13] = lu->lbppb_exp & 0x0F;
    if (lu->lbpme)
        buf[14] |= 0x80;
    if (lu->lbprz)
        buf[14] |= 0x40;
    scsi_respond(cmd, buf, sizeof(buf), scsi_get_be32(cmd->cdb + 10));
    return SCSI_DONE;
}

/* ---- START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL ---------------------------------------- */

static bool prevented_locked(const struct scsi_lu *lu)
{
    return lu->nprevent != 0;
}

/*
 * Loads or ejects a removable medium (SBC-4 5.25 LOEJ), under the LU lock so that a PREVENT from
 * another nexus cannot slip between the check and the move. While any I_T nexus prevents removal,
 * a move is ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED (53h/02h); a "move" that changes nothing
 * (ejecting an ejected medium, loading a loaded one) is GOOD. An eject leaves the unit stopped
 * with no medium (NOT READY 3Ah/02h to media access); a load starts the unit and raises NOT READY
 * TO READY CHANGE, MEDIUM MAY HAVE CHANGED (28h/00h) for every other I_T nexus (SPC-4 5.14). The
 * data stays in the backend. Sets the command's status; true when GOOD.
 */
static bool medium_move(struct scsi_cmd *cmd, struct scsi_lu *lu, bool load)
{
    pthread_mutex_lock(&lu->lock);
    bool out = atomic_load_explicit(&lu->no_medium, memory_order_relaxed);
    if (out == !load) {
        if (load)
            atomic_store_explicit(&lu->stopped, false, memory_order_release);
        pthread_mutex_unlock(&lu->lock);
        scsi_good(cmd);
        return true;
    }
    if (prevented_locked(lu)) {
        pthread_mutex_unlock(&lu->lock);
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST,
                          SCSI_ADSENSE_MEDIA_LOAD_OR_EJECT_FAILED, SBC_SENSEQ_REMOVAL_PREVENTED);
        return false;
    }
    if (load) {
        /* Started before the medium shows, so the dispatcher never sees "present but stopped"
         * in between (it reads no_medium only when stopped). */
        atomic_store_explicit(&lu->stopped, false, memory_order_release);
        atomic_store_explicit(&lu->no_medium, false, memory_order_release);
        scsi_lu_ua_raise_locked(lu, SCSI_ADSENSE_MEDIUM_CHANGED, 0x00, &cmd->nexus);
    } else {
        atomic_store_explicit(&lu->no_medium, true, memory_order_release);
        atomic_store_explicit(&lu->stopped, true, memory_order_release);
    }
    pthread_mutex_unlock(&lu->lock);
    scsi_good(cmd);
    return true;
}

/* Why a removable disk is not ready, for REQUEST SENSE: no medium (3Ah/02h), else stopped. */
static bool sbc_not_ready(struct scsi_lu *lu, uint8_t *asc, uint8_t *ascq)
{
    if (!atomic_load_explicit(&lu->no_medium, memory_order_acquire))
        return false;
    *asc = SCSI_ADSENSE_NO_MEDIA_IN_DEVICE;
    *ascq = SBC_SENSEQ_TRAY_OPEN;
    return true;
}

void sbc_prevent_reset_locked(struct scsi_lu *lu, const uint64_t *nexus)
{
    if (!nexus) {
        lu->nprevent = 0;
        return;
    }
    for (uint32_t i = 0; i < lu->nprevent; i++) {
        if (lu->prevent[i] == *nexus) {
            lu->prevent[i] = lu->prevent[--lu->nprevent];
            return;
        }
    }
}

/*
 * SBC-4 5.25. POWER CONDITION 0h (START_VALID) acts on START and LOEJ; 1h (ACTIVE) and 7h
 * (LU_CONTROL) are accepted and change nothing, since the unit is always in the active power
 * condition and has no power condition timers; START and LOEJ are then ignored. Other power
 * conditions (IDLE, STANDBY, the FORCE_ ones) would need a low-power state the LU does not model:
 * INVALID FIELD IN CDB. A stopped unit answers media access commands with NOT READY, INITIALIZING
 * COMMAND REQUIRED until started again. Stopping flushes the write cache first unless NO_FLUSH is
 * set. LOEJ=1 loads (START=1) or ejects (START=0) a removable medium (medium_move); on a disk
 * that is not removable (RMB=0) there is nothing to load or eject: INVALID FIELD IN CDB.
 */
static int sbc_start_stop(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t pc = cdb[4] >> 4;
    if (pc != 0x0 && pc != 0x1 && pc != 0x7) {
        scsi_check_cdb_field(cmd, lu, 4, 7);
        return SCSI_DONE;
    }
    if (cdb[3] & 0x0F) { /* POWER CONDITION MODIFIER: none defined for these conditions */
        scsi_check_cdb_field(cmd, lu, 3, 3);
        return SCSI_DONE;
    }
    if (pc != 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    bool start = cdb[4] & 0x01, loej = cdb[4] & 0x02, no_flush = cdb[4] & 0x04;
    if (loej && !lu->removable) {
        scsi_check_cdb_field(cmd, lu, 4, 1);
        return SCSI_DONE;
    }
    if (loej && start) {
        medium_move(cmd, lu, true);
        return SCSI_DONE;
    }
    if (start) {
        if (atomic_load_explicit(&lu->no_medium, memory_order_acquire)) {
            /* Nothing to spin up: the medium is out until LOEJ=1 loads it. */
            scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_NO_MEDIA_IN_DEVICE,
                              SBC_SENSEQ_TRAY_OPEN);
            return SCSI_DONE;
        }
        atomic_store_explicit(&lu->stopped, false, memory_order_release);
        scsi_good(cmd);
        return SCSI_DONE;
    }
    bool flush = !no_flush && lu->be->caps.can_flush && !lu->read_only &&
                 !atomic_load_explicit(&lu->no_medium, memory_order_acquire);
    if (loej) {
        /* Refused before the flush when removal is prevented; checked again, with the move, once
         * the cache is on the medium. */
        pthread_mutex_lock(&lu->lock);
        bool refuse = prevented_locked(lu) && !atomic_load(&lu->no_medium);
        pthread_mutex_unlock(&lu->lock);
        if (refuse || !flush) {
            medium_move(cmd, lu, false);
            return SCSI_DONE;
        }
        return sbc_start(cmd, SBC_IO_EJECT, 0, 0, 0);
    }
    if (flush)
        return sbc_start(cmd, SBC_IO_STOP, 0, 0, 0);
    atomic_store_explicit(&lu->stopped, true, memory_order_release);
    scsi_good(cmd);
    return SCSI_DONE;
}

/*
 * SBC-4 5.12: PREVENT 01b prevents and 00b allows medium removal for the I_T nexus that sends it;
 * a removal is refused while any nexus prevents it, until that nexus allows it again, is lost
 * (scsi_lu_nexus_loss) or a reset or power on (29h) ends every prevention. A disk that is not
 * removable has nothing to prevent: either is GOOD with nothing recorded. 10b and 11b are
 * obsolete (a medium changer's) and refused.
 */
static int sbc_prevent_allow(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    uint8_t prevent = cmd->cdb[4] & 0x03;
    if (prevent & 0x02) {
        scsi_check_cdb_field(cmd, lu, 4, 1);
        return SCSI_DONE;
    }
    if (!lu->removable) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    pthread_mutex_lock(&lu->lock);
    sbc_prevent_reset_locked(lu, &cmd->nexus);
    bool full = false;
    if (prevent) {
        if (lu->nprevent < SCSI_PREVENT_NEXUS)
            lu->prevent[lu->nprevent++] = cmd->nexus;
        else
            full = true;
    }
    pthread_mutex_unlock(&lu->lock);
    if (full) /* every slot holds another nexus's prevention */
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_SYSTEM_RESOURCE_FAILURE,
                          0);
    else
        scsi_good(cmd);
    return SCSI_DONE;
}

/* ---- READ DEFECT DATA --------------------------------------------------------------------- */

/* SBC-4 5.18/5.19: a virtual medium has no defects. The header echoes REQ_PLIST, REQ_GLIST and
 * the requested DEFECT LIST FORMAT (every defined format describes an empty list the same way)
 * with a list length of zero; 111b is reserved. */
static int sbc_read_defect_data(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    bool ten = cdb[0] == SBC_OP_READ_DEFECT_DATA10;
    uint8_t req = ten ? cdb[2] : cdb[1];
    if ((req & 0x07) == 0x07) {
        scsi_check_cdb_field(cmd, lu, ten ? 2 : 1, 2);
        return SCSI_DONE;
    }
    uint8_t buf[8] = {0};
    buf[1] = req & 0x1F;
    if (ten)
        scsi_respond(cmd, buf, 4, scsi_get_be16(cdb + 7));
    else
        scsi_respond(cmd, buf, 8, scsi_get_be32(cdb + 6));
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
#define L4  0xFF, 0xFF, 0xFF, 0xFF
#define L8  L4, L4

/* A 16-byte CDB: byte 1 mask b1, LBA in bytes 2..9, a 4-byte length in 10..13, the group. */
#define CDB16(b1)                                                                                  \
    {                                                                                              \
        0xFF, b1, L8, L4, GRP, CTL                                                                 \
    }

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
     "READ CAPACITY(10)",
     .field_msb = {[1] = 0x01}}, /* reserved 7..1, obsolete RELADR */
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
    {SCSIOP_SERVICE_ACTION_IN16,
     SERVICE_ACTION_GET_LBA_STATUS,
     16,
     SCSI_DIR_IN,
     SCSI_F_MEDIA | SCSI_F_SA | SCSI_F_DATA_IN,
     {0xFF, 0x1F, L8, L4, 0, CTL},
     sbc_get_lba_status,
     "GET LBA STATUS",
     .field_msb = {[14] = 0x02}}, /* reserved 7..2, REPORT TYPE 1..0 */
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
    {SCSIOP_FORMAT_UNIT,
     0,
     6,
     SCSI_DIR_OUT,
     MW,
     {0xFF, 0x3F, 0, 0, 0, CTL},
     sbc_format_unit,
     "FORMAT UNIT"},
    {SBC_OP_SANITIZE,
     SANITIZE_BLOCK_ERASE,
     10,
     SCSI_DIR_OUT,
     MW | SCSI_F_SA,
     {0xFF, 0xBF, 0, 0, 0, 0, 0, 0xFF, 0xFF, CTL},
     sbc_sanitize,
     "SANITIZE BLOCK ERASE"},
    {SBC_OP_SANITIZE,
     SANITIZE_EXIT_FAILURE_MODE,
     10,
     SCSI_DIR_OUT,
     MW | SCSI_F_SA,
     {0xFF, 0xBF, 0, 0, 0, 0, 0, 0xFF, 0xFF, CTL},
     sbc_sanitize,
     "SANITIZE EXIT FAILURE MODE"},
    {SCSIOP_MEDIUM_REMOVAL,
     0,
     6,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0, 0, 0, 0x03, CTL},
     sbc_prevent_allow,
     "PREVENT ALLOW MEDIUM REMOVAL"},
    {SCSIOP_WRITE_VERIFY,
     0,
     10,
     SCSI_DIR_OUT,
     MW,
     {0xFF, VF1, L4, GRP, 0xFF, 0xFF, CTL},
     sbc_write_verify,
     "WRITE AND VERIFY(10)"},
    {SBC_OP_PREFETCH10,
     0,
     10,
     SCSI_DIR_NONE,
     SCSI_F_MEDIA,
     {0xFF, 0x02, L4, GRP, 0xFF, 0xFF, CTL},
     sbc_prefetch,
     "PRE-FETCH(10)"},
    {SBC_OP_READ_DEFECT_DATA10,
     0,
     10,
     SCSI_DIR_IN,
     SCSI_F_MEDIA | SCSI_F_DATA_IN,
     {0xFF, 0, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, CTL},
     sbc_read_defect_data,
     "READ DEFECT DATA(10)"},
    {SCSIOP_WRITE_SAME,
     0,
     10,
     SCSI_DIR_OUT,
     MW,
     {0xFF, 0x18, L4, GRP, 0xFF, 0xFF, CTL},
     sbc_write_same,
     "WRITE SAME(10)",
     .field_msb = {[1] = 0x01}}, /* reserved 2..1, obsolete 0 */
    {SCSIOP_UNMAP,
     0,
     10,
     SCSI_DIR_OUT,
     MW,
     {0xFF, 0x01, 0, 0, 0, 0, GRP, 0xFF, 0xFF, CTL},
     sbc_unmap,
     "UNMAP"},
    {SCSIOP_COMPARE_AND_WRITE,
     0,
     16,
     SCSI_DIR_OUT,
     MW,
     {0xFF, WR1, L8, 0, 0, 0, 0xFF, GRP, CTL},
     sbc_compare_and_write,
     "COMPARE AND WRITE"},
    {SBC_OP_ORWRITE16, 0, 16, SCSI_DIR_OUT, MW, CDB16(WR1), sbc_orwrite, "ORWRITE(16)"},
    {SCSIOP_WRITE_VERIFY16, 0, 16, SCSI_DIR_OUT, MW, CDB16(VF1), sbc_write_verify,
     "WRITE AND VERIFY(16)"},
    {SCSIOP_PREFETCH16, 0, 16, SCSI_DIR_NONE, SCSI_F_MEDIA, CDB16(0x02), sbc_prefetch,
     "PRE-FETCH(16)"},
    {SCSIOP_WRITE_SAME16, 0, 16, SCSI_DIR_OUT, MW, CDB16(0x19), sbc_write_same, "WRITE SAME(16)"},
    {SCSIOP_WRITE_VERIFY12,
     0,
     12,
     SCSI_DIR_OUT,
     MW,
     {0xFF, VF1, L4, L4, GRP, CTL},
     sbc_write_verify,
     "WRITE AND VERIFY(12)"},
    {SCSIOP_READ_DEFECT_DATA,
     0,
     12,
     SCSI_DIR_IN,
     SCSI_F_MEDIA | SCSI_F_DATA_IN,
     {0xFF, 0x1F, L4, L4, 0, CTL},
     sbc_read_defect_data,
     "READ DEFECT DATA(12)"},
    {0},
};
