/*
 * The copy manager of the device server: EXTENDED COPY (LID1, SPC-4 6.4) with identification
 * target descriptors (E4h, 6.4.5.2) naming logical units by their NAA designator and block to
 * block segment descriptors (02h, 6.4.6.5); RECEIVE COPY RESULTS (LID1, 6.18) with COPY STATUS,
 * OPERATING PARAMETERS and FAILED SEGMENT DETAILS; the third-party copy VPD page (8Fh, 7.8.17).
 *
 * Every disk LU registers its NAA designator here when it is created, so a copy issued to one LU
 * may read from or write to any LU of the process's device server; an LU being destroyed leaves
 * the registry first and waits until no copy holds it. A copy runs as a chain of backend requests
 * (read a chunk of up to XC_CHUNK bytes from the source, write it to the destination) driven by a
 * trampoline: a request that completes inline returns to the loop instead of recursing, one that
 * completes on a backend thread continues the chain there. The job and its bounce buffer are
 * allocated per EXTENDED COPY (a copy command, not the I/O path); the command completes once,
 * when the last segment is written or the first one fails.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/scsi_lu_p.h"

#define XC_MAX_TGT       8
#define XC_MAX_SEG       16
#define XC_MAX_DESC_LIST 1024
#define XC_CHUNK         (1u << 20)
#define XC_TGT_LEN       32
#define XC_SEG_B2B_LEN   28
#define XC_HDR_LEN       16

#define XC_TGT_ID   0xE4 /* identification descriptor target descriptor */
#define XC_SEG_B2B  0x02 /* block device to block device */
#define XC_COPY_MGR 0x01 /* COPY MANAGER STATUS: completed, good */
#define XC_COPY_ERR 0x02 /* completed with an error */

/* RECEIVE COPY RESULTS service actions (LID1) */
enum { RCR_COPY_STATUS = 0x00, RCR_OPERATING_PARAMETERS = 0x03, RCR_FAILED_SEGMENT = 0x04 };

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_lu *registry;

void xcopy_register(struct scsi_lu *lu)
{
    spc_naa(lu, lu->naa);
    atomic_init(&lu->xc_refs, 0);
    pthread_mutex_lock(&registry_lock);
    lu->xc_next = registry;
    registry = lu;
    pthread_mutex_unlock(&registry_lock);
}

void xcopy_unregister(struct scsi_lu *lu)
{
    pthread_mutex_lock(&registry_lock);
    for (struct scsi_lu **pp = &registry; *pp; pp = &(*pp)->xc_next) {
        if (*pp == lu) {
            *pp = lu->xc_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    /* A copy found the LU before it left the registry: wait for it to finish with it. */
    while (atomic_load(&lu->xc_refs) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* The registered LU with this NAA designator, with a reference taken; NULL when none. */
static struct scsi_lu *registry_get(const uint8_t naa[16])
{
    struct scsi_lu *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (struct scsi_lu *l = registry; l; l = l->xc_next) {
        if (memcmp(l->naa, naa, 16) == 0) {
            atomic_fetch_add(&l->xc_refs, 1);
            found = l;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

/* ---- VPD 8Fh ------------------------------------------------------------------------------ */

/* A third-party copy descriptor whose body is a one-byte list length and the list, padded to a
 * multiple of 4 bytes; returns its length. */
static uint32_t vpd_list_descriptor(uint8_t *d, uint16_t type, const uint8_t *list, uint8_t n)
{
    uint32_t dlen = (1u + n + 3) & ~3u;
    scsi_put_be16(d, type);
    scsi_put_be16(d + 2, (uint16_t)dlen);
    d[4] = n;
    memcpy(d + 5, list, n);
    return 4 + dlen;
}

/* SPC-4 7.8.17: SUPPORTED COMMANDS (0001h), SUPPORTED DESCRIPTORS (0004h) and GENERAL COPY
 * OPERATIONS (8001h) third-party copy descriptors, each padded to a multiple of 4 bytes. */
uint32_t xcopy_vpd(const struct scsi_lu *lu, uint8_t *b)
{
    static const uint8_t cmds[] = {SCSIOP_EXTENDED_COPY,
                                   1,
                                   0x00,
                                   SCSIOP_RECEIVE_COPY_RESULTS,
                                   3,
                                   RCR_COPY_STATUS,
                                   RCR_OPERATING_PARAMETERS,
                                   RCR_FAILED_SEGMENT};
    static const uint8_t descs[] = {XC_SEG_B2B, XC_TGT_ID};
    uint32_t len = 4;
    len += vpd_list_descriptor(b + len, 0x0001, cmds, sizeof(cmds));   /* SUPPORTED COMMANDS */
    len += vpd_list_descriptor(b + len, 0x0004, descs, sizeof(descs)); /* SUPPORTED DESCRIPTORS */
    uint8_t *d = b + len;                                              /* GENERAL COPY OPERATIONS */
    scsi_put_be16(d, 0x8001);
    scsi_put_be16(d + 2, 0x0020);
    scsi_put_be32(d + 4, 1);                         /* TOTAL CONCURRENT COPIES */
    scsi_put_be32(d + 8, 1);                         /* MAXIMUM IDENTIFIED CONCURRENT COPIES */
    scsi_put_be32(d + 12, 0xFFFFu * lu->block_size); /* MAXIMUM SEGMENT LENGTH */
    d[16] = (uint8_t)lu->block_shift;                /* DATA SEGMENT GRANULARITY (log2) */
    len += 4 + 0x20;
    return len;
}

/* ---- copy results -------------------------------------------------------------------------- */

static void result_store(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t list_id,
                         uint16_t segments, uint64_t bytes)
{
    pthread_mutex_lock(&lu->lock);
    struct scsi_xcopy_result *slot = &lu->xc[0];
    for (int i = 0; i < SCSI_XCOPY_RESULTS; i++) {
        struct scsi_xcopy_result *r = &lu->xc[i];
        if (r->used && r->list_id == list_id && scsi_ident_match(&r->id, cmd)) {
            slot = r;
            break;
        }
        if (!r->used || (slot->used && r->seq < slot->seq))
            slot = r;
    }
    slot->used = true;
    slot->list_id = list_id;
    slot->seq = ++lu->xc_seq;
    scsi_ident_of(cmd, &slot->id);
    slot->segments = segments;
    slot->bytes = bytes;
    bool good = cmd->status == SAM_STAT_GOOD;
    slot->status = good ? XC_COPY_MGR : XC_COPY_ERR;
    slot->sense_len = good ? 0 : (uint8_t)(cmd->sense_len < 32 ? cmd->sense_len : 32);
    memcpy(slot->sense, cmd->sense, slot->sense_len);
    pthread_mutex_unlock(&lu->lock);
}

int spc_receive_copy_results(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t sa = cdb[1] & 0x1F, list_id = cdb[2];
    uint32_t alloc = scsi_get_be32(cdb + 10);
    uint8_t buf[96];
    memset(buf, 0, sizeof(buf));
    uint32_t len;

    if (sa == RCR_OPERATING_PARAMETERS) {
        /* SPC-4 6.18.4 */
        scsi_put_be16(buf + 8, XC_MAX_TGT);
        scsi_put_be16(buf + 10, XC_MAX_SEG);
        scsi_put_be32(buf + 12, XC_MAX_DESC_LIST);
        scsi_put_be32(buf + 16, 0xFFFFu * lu->block_size); /* MAXIMUM SEGMENT LENGTH */
        scsi_put_be16(buf + 34, 1);                        /* TOTAL CONCURRENT COPIES */
        buf[36] = 1;                                       /* MAXIMUM CONCURRENT COPIES */
        buf[37] = (uint8_t)lu->block_shift;                /* DATA SEGMENT GRANULARITY */
        buf[43] = 2;                                       /* IMPLEMENTED DESCRIPTOR LIST */
        buf[44] = XC_SEG_B2B;
        buf[45] = XC_TGT_ID;
        len = 46;
        scsi_put_be32(buf, len - 4);
        scsi_respond(cmd, buf, len, alloc);
        return SCSI_DONE;
    }

    pthread_mutex_lock(&lu->lock);
    const struct scsi_xcopy_result *r = NULL;
    for (int i = 0; i < SCSI_XCOPY_RESULTS; i++) {
        if (lu->xc[i].used && lu->xc[i].list_id == list_id &&
            scsi_ident_match(&lu->xc[i].id, cmd)) {
            r = &lu->xc[i];
            break;
        }
    }
    if (!r) {
        pthread_mutex_unlock(&lu->lock);
        /* No copy with this LIST IDENTIFIER from this initiator is held. */
        scsi_check_cdb_field(cmd, lu, 2, -1);
        return SCSI_DONE;
    }
    if (sa == RCR_COPY_STATUS) {
        /* SPC-4 6.18.2: TRANSFER COUNT in bytes (units 00h) saturating at 32 bits */
        buf[4] = r->status;
        scsi_put_be16(buf + 5, r->segments);
        buf[7] = 0x00;
        scsi_put_be32(buf + 8, r->bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)r->bytes);
        len = 12;
    } else {
        /* FAILED SEGMENT DETAILS (6.18.5): the status and sense data of a failed copy; for a
         * copy that succeeded there is nothing to report beyond the header. */
        len = 60;
        if (r->status == XC_COPY_ERR) {
            buf[56] = SAM_STAT_CHECK_CONDITION;
            scsi_put_be16(buf + 58, r->sense_len);
            memcpy(buf + 60, r->sense, r->sense_len);
            len += r->sense_len;
        } else {
            len = 4;
        }
    }
    pthread_mutex_unlock(&lu->lock);
    scsi_put_be32(buf, len - 4);
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

/* ---- EXTENDED COPY -------------------------------------------------------------------------- */

struct xc_seg {
    uint16_t src, dst; /* target descriptor indexes */
    uint16_t blocks;
    uint64_t src_lba, dst_lba;
};

struct xc_job {
    struct scsi_lu *lu;
    struct scsi_cmd *cmd;
    struct scsi_lu *tgt[XC_MAX_TGT];
    int ntgt;
    struct xc_seg seg[XC_MAX_SEG];
    int nseg;
    uint8_t list_id;
    bool hold;

    /* progress */
    int cur;             /* segment in progress */
    uint64_t seg_done;   /* bytes of it copied */
    uint64_t total_done; /* bytes of all segments */
    uint32_t chunk;      /* bytes of the request in flight */
    bool writing;        /* the request in flight is the chunk's write */
    bool flushing;       /* a destination flush (WCE=0) */
    int result;
    atomic_int handoff;
    struct be_io bio;
    struct iovec iov;
    uint8_t *buf;
};

static void xc_finish(struct xc_job *j)
{
    struct scsi_cmd *cmd = j->cmd;
    if (j->hold)
        result_store(j->lu, cmd, j->list_id, (uint16_t)j->cur, j->total_done);
    for (int i = 0; i < j->ntgt; i++) {
        if (j->tgt[i])
            atomic_fetch_sub(&j->tgt[i]->xc_refs, 1);
    }
    free(j->buf);
    free(j);
    scsi_cmd_complete(cmd);
}

static void xc_abort(struct xc_job *j, uint8_t asc, uint8_t ascq)
{
    scsi_check_simple(j->cmd, j->lu, SCSI_SENSE_COPY_ABORTED, asc, ascq);
}

static void xc_step(struct xc_job *j);

static void xc_complete(struct be_io *io, int result)
{
    struct xc_job *j = io->context;
    j->result = result;
    /* The second of (submitter, completion) to get here continues the chain. */
    if (atomic_fetch_add(&j->handoff, 1) == 0)
        return;
    xc_step(j);
}

/* Checks segment j->cur before its first request; false with the sense set. */
static bool xc_segment_ok(struct xc_job *j)
{
    const struct xc_seg *s = &j->seg[j->cur];
    if (s->src >= j->ntgt || s->dst >= j->ntgt) {
        xc_abort(j, 0x0D, 0x02); /* COPY TARGET DEVICE NOT REACHABLE */
        return false;
    }
    struct scsi_lu *src = j->tgt[s->src], *dst = j->tgt[s->dst];
    if (src->block_size != dst->block_size) {
        xc_abort(j, 0x0D, 0x03); /* INCORRECT COPY TARGET DEVICE TYPE */
        return false;
    }
    if (s->src_lba > src->nblocks || s->blocks > src->nblocks - s->src_lba ||
        s->dst_lba > dst->nblocks || s->blocks > dst->nblocks - s->dst_lba) {
        /* SPC-4 6.4.3: a segment the copy target cannot do ends the copy with COPY ABORTED;
         * the range is past the target's capacity, as its READ or WRITE would report. */
        xc_abort(j, 0x0D, 0x02);
        return false;
    }
    if (atomic_load(&src->stopped) || atomic_load(&dst->stopped)) {
        xc_abort(j, 0x0D, 0x02);
        return false;
    }
    if (dst->read_only || atomic_load(&dst->swp)) {
        xc_abort(j, SCSI_ADSENSE_WRITE_PROTECT, dst->read_only ? 0x00 : 0x02);
        return false;
    }
    return true;
}

static void xc_step(struct xc_job *j)
{
    for (;;) {
        if (j->result != 0) {
            xc_abort(j, 0x0D, 0x01); /* THIRD PARTY DEVICE FAILURE */
            xc_finish(j);
            return;
        }
        if (j->flushing) {
            j->flushing = false;
            j->cur++;
            j->seg_done = 0;
        } else if (j->chunk) {
            if (j->writing) {
                j->seg_done += j->chunk;
                j->total_done += j->chunk;
                j->chunk = 0;
                j->writing = false;
            } else {
                j->writing = true;
            }
        }
        struct be_io *io = &j->bio;
        memset(io, 0, sizeof(*io));
        io->complete = xc_complete;
        io->context = j;
        if (!j->writing) {
            /* next chunk, or next segment */
            while (j->cur < j->nseg) {
                const struct xc_seg *s = &j->seg[j->cur];
                if (j->seg_done == 0 && !xc_segment_ok(j)) {
                    xc_finish(j);
                    return;
                }
                uint64_t bytes = (uint64_t)s->blocks << j->tgt[s->src]->block_shift;
                if (j->seg_done < bytes)
                    break;
                struct scsi_lu *dst = j->tgt[s->dst];
                if (bytes && !atomic_load(&dst->wce) && dst->be->caps.can_flush) {
                    /* a destination with WCE=0: the segment is durable before it counts */
                    j->flushing = true;
                    break;
                }
                j->cur++;
                j->seg_done = 0;
            }
            if (j->cur == j->nseg) {
                scsi_good(j->cmd);
                xc_finish(j);
                return;
            }
        }
        const struct xc_seg *s = &j->seg[j->cur];
        struct scsi_lu *src = j->tgt[s->src], *dst = j->tgt[s->dst];
        struct backend *be;
        if (j->flushing) {
            be = dst->be;
            io->op = BE_OP_FLUSH;
        } else {
            uint64_t bytes = (uint64_t)s->blocks << src->block_shift;
            if (!j->writing)
                j->chunk =
                    (uint32_t)(bytes - j->seg_done < XC_CHUNK ? bytes - j->seg_done : XC_CHUNK);
            j->iov.iov_base = j->buf;
            j->iov.iov_len = j->chunk;
            io->iov = &j->iov;
            io->iovcnt = 1;
            io->length = j->chunk;
            if (j->writing) {
                be = dst->be;
                io->op = BE_OP_WRITE;
                io->offset = (s->dst_lba << dst->block_shift) + j->seg_done;
            } else {
                be = src->be;
                io->op = BE_OP_READ;
                io->offset = (s->src_lba << src->block_shift) + j->seg_done;
            }
        }
        atomic_store(&j->handoff, 0);
        be_submit(be, io);
        if (atomic_fetch_add(&j->handoff, 1) == 0)
            return; /* the completion will continue */
    }
}

/* Parses one identification target descriptor at p (offset off). Returns the LU with a
 * reference, or NULL with the sense set. */
static struct scsi_lu *xc_target(struct scsi_lu *lu, struct scsi_cmd *cmd, const uint8_t *p,
                                 uint32_t off)
{
    if (p[0] != XC_TGT_ID) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x07);
        return NULL;
    }
    /* Byte 1: LU ID TYPE (ignored in SPC-4), NUL (obsolete), PERIPHERAL DEVICE TYPE. */
    if ((p[1] & 0x1F) != DIRECT_ACCESS_DEVICE) {
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 1), 4);
        return NULL;
    }
    /* The designation descriptor: an NAA designator of a logical unit, 16 bytes. */
    const uint8_t *d = p + 4;
    struct scsi_lu *t = NULL;
    if ((d[0] & 0x0F) == VpdCodeSetBinary && (d[1] & 0x0F) == VpdIdentifierTypeFCPHName &&
        ((d[1] >> 4) & 0x03) == VpdAssocDevice && d[3] == 16)
        t = registry_get(d + 4);
    if (!t) {
        /* No logical unit of this device server has that designator. */
        scsi_check_simple(cmd, lu, SCSI_SENSE_COPY_ABORTED, 0x08, 0x04); /* UNREACHABLE */
        return NULL;
    }
    uint32_t dbl = scsi_get_be24(p + 29);
    if (dbl != 0 && dbl != t->block_size) {
        atomic_fetch_sub(&t->xc_refs, 1);
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 29), -1);
        return NULL;
    }
    return t;
}

int spc_extended_copy(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint32_t plen = scsi_get_be32(cdb + 10);
    if (plen == 0) { /* SPC-4 6.4.1: not an error, nothing to do */
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint8_t p[XC_HDR_LEN + XC_MAX_DESC_LIST];
    if (plen < XC_HDR_LEN) {
        scsi_check_param_list_length(cmd, lu);
        return SCSI_DONE;
    }
    uint32_t want = plen < sizeof(p) ? plen : (uint32_t)sizeof(p);
    if (scsi_data_out(cmd, 0, p, want) < want) {
        scsi_check_cdb_field(cmd, lu, 10, -1);
        return SCSI_DONE;
    }
    cmd->transferred = want;
    uint8_t list_id = p[0], usage = (p[1] >> 3) & 0x03;
    uint32_t tdl = scsi_get_be16(p + 2), sdl = scsi_get_be32(p + 8), inl = scsi_get_be32(p + 12);
    if (p[1] & 0xC0) {
        scsi_check_param_field(cmd, lu, 1, scsi_high_bit(p[1] & 0xC0));
        return SCSI_DONE;
    }
    if (usage == 1) { /* 01b is reserved */
        scsi_check_param_field(cmd, lu, 1, 4);
        return SCSI_DONE;
    }
    if (usage == 3 && list_id != 0) { /* 11b: the LIST IDENTIFIER must be zero */
        scsi_check_param_field(cmd, lu, 0, -1);
        return SCSI_DONE;
    }
    for (int i = 4; i < 8; i++) {
        if (p[i]) {
            scsi_check_param_field(cmd, lu, (uint16_t)i, scsi_high_bit(p[i]));
            return SCSI_DONE;
        }
    }
    if ((uint64_t)XC_HDR_LEN + tdl + sdl + inl > plen || (uint64_t)tdl + sdl > XC_MAX_DESC_LIST) {
        scsi_check_param_list_length(cmd, lu);
        return SCSI_DONE;
    }
    if (inl != 0) { /* no segment descriptor of ours takes inline data */
        scsi_check_param_field(cmd, lu, 12, -1);
        return SCSI_DONE;
    }
    if (tdl % XC_TGT_LEN) {
        scsi_check_param_field(cmd, lu, 2, -1);
        return SCSI_DONE;
    }
    if (tdl / XC_TGT_LEN > XC_MAX_TGT) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x06);
        return SCSI_DONE;
    }

    struct xc_job *j = calloc(1, sizeof(*j));
    if (!j) {
        cmd->status = SAM_STAT_BUSY;
        return SCSI_DONE;
    }
    j->lu = lu;
    j->cmd = cmd;
    j->list_id = list_id;
    j->hold = usage == 0;
    atomic_init(&j->handoff, 0);
    bool ok = true;
    for (uint32_t off = XC_HDR_LEN; ok && off < XC_HDR_LEN + tdl; off += XC_TGT_LEN) {
        struct scsi_lu *t = xc_target(lu, cmd, p + off, off);
        if (!t)
            ok = false;
        else
            j->tgt[j->ntgt++] = t;
    }
    for (uint32_t off = XC_HDR_LEN + tdl; ok && off < XC_HDR_LEN + tdl + sdl;) {
        const uint8_t *s = p + off;
        if (XC_HDR_LEN + tdl + sdl - off < 4) {
            scsi_check_param_list_length(cmd, lu);
            ok = false;
            break;
        }
        if (s[0] != XC_SEG_B2B) {
            scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x09);
            ok = false;
            break;
        }
        if (j->nseg == XC_MAX_SEG) {
            scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0x08);
            ok = false;
            break;
        }
        if (scsi_get_be16(s + 2) != XC_SEG_B2B_LEN - 4) {
            scsi_check_param_field(cmd, lu, (uint16_t)(off + 2), -1);
            ok = false;
            break;
        }
        if (XC_HDR_LEN + tdl + sdl - off < XC_SEG_B2B_LEN) {
            scsi_check_param_list_length(cmd, lu);
            ok = false;
            break;
        }
        /* byte 1: DC (number of blocks counts destination blocks: the same, block sizes
         * being equal) and CAT (nothing is left over); the rest reserved */
        if (s[1] & 0xFC) {
            scsi_check_param_field(cmd, lu, (uint16_t)(off + 1), scsi_high_bit(s[1] & 0xFC));
            ok = false;
            break;
        }
        if (s[8] || s[9]) {
            scsi_check_param_field(cmd, lu, (uint16_t)(off + (s[8] ? 8 : 9)), -1);
            ok = false;
            break;
        }
        struct xc_seg *g = &j->seg[j->nseg++];
        g->src = scsi_get_be16(s + 4);
        g->dst = scsi_get_be16(s + 6);
        g->blocks = scsi_get_be16(s + 10);
        g->src_lba = scsi_get_be64(s + 12);
        g->dst_lba = scsi_get_be64(s + 20);
        off += XC_SEG_B2B_LEN;
    }
    if (ok && j->nseg && !(j->buf = malloc(XC_CHUNK))) {
        cmd->status = SAM_STAT_BUSY;
        ok = false;
    }
    if (!ok) {
        /* Rejected before any segment ran: nothing is held for RECEIVE COPY RESULTS. */
        j->hold = false;
        xc_finish(j);
        return SCSI_PENDING;
    }
    xc_step(j);
    return SCSI_PENDING;
}
