/*
 * The SCSI side of an iSCSI session (RFC 7143 3.2, 11.3-11.8): a SCSI Command becomes one
 * IOCTL_SCSI_PASS_THROUGH_DIRECT to the device behind LUN 0, opened for the session. Reads go
 * back as Data-In PDUs no longer than the initiator's MaxRecvDataSegmentLength, with the status
 * collapsed into the last one when it is GOOD; writes gather immediate data, unsolicited Data-Out
 * up to FirstBurstLength, then one R2T at a time (MaxOutstandingR2T=1) up to MaxBurstLength
 * each, into a per-slot buffer kept for the session, and go down once complete. Task management
 * answers honestly what a synchronous pass-through allows: a running command cannot be aborted
 * (it has finished by the time the request is read), so ABORT TASK finds only writes still
 * waiting for data; resets are "function not supported" until they map to Storport SRBs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storage/ntddstor.h>

#include "frontends/iscsi/iscsi_p.h"

#define ISCSI_SENSE_MAX     96
#define ISCSI_STATUS_GOOD   0x00
#define ISCSI_STATUS_CHECK  0x02
#define ISCSI_STATUS_BUSY   0x08
#define ISCSI_XFER_CAP      ISCSI_MAX_CMD
#define ISCSI_PT_TIMEOUT    60
#define SCSI_OP_INQUIRY     0x12
#define SCSI_OP_REPORT_LUNS 0xa0

struct iscsi_sptd {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t pad;
    uint8_t sense[ISCSI_SENSE_MAX];
};

int iscsi_session_open(struct iscsi_conn *c)
{
    struct iscsi_target *t = c->target;
    STORAGE_PROPERTY_QUERY q = {.PropertyId = StorageAdapterProperty,
                                .QueryType = PropertyStandardQuery};
    STORAGE_ADAPTER_DESCRIPTOR ad;
    DISK_GEOMETRY geo;
    uint32_t returned = 0;

    if (storstack_open(t->stack, t->device, STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE,
                       &c->dev) != STATUS_SUCCESS) {
        c->dev = NULL;
        return -ENODEV;
    }
    /* The pass-through refuses more than the adapter's MaximumTransferLength. */
    memset(&ad, 0, sizeof(ad));
    c->max_xfer = ISCSI_XFER_FALLBACK;
    if (storstack_ioctl(c->dev, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &ad, sizeof(ad),
                        &returned) == STATUS_SUCCESS &&
        returned >= offsetof(STORAGE_ADAPTER_DESCRIPTOR, MaximumPhysicalPages) &&
        ad.MaximumTransferLength >= 512)
        c->max_xfer =
            ad.MaximumTransferLength < ISCSI_XFER_CAP ? ad.MaximumTransferLength : ISCSI_XFER_CAP;
    /* The block size, for the overflow residual of READ/WRITE (11.4.5). */
    if (storstack_ioctl(c->dev, IOCTL_DISK_GET_DRIVE_GEOMETRY, NULL, 0, &geo, sizeof(geo),
                        &returned) == STATUS_SUCCESS &&
        returned >= sizeof(geo))
        c->block_size = geo.BytesPerSector;
    c->rbuf = aligned_alloc(4096, ISCSI_MAX_CMD);
    if (!c->rbuf) {
        storstack_close(c->dev);
        c->dev = NULL;
        return -ENOMEM;
    }
    return 0;
}

void iscsi_session_close(struct iscsi_conn *c)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++) {
        free(c->tasks[i].buf);
        c->tasks[i].buf = NULL;
        c->tasks[i].used = false;
    }
    free(c->rbuf);
    c->rbuf = NULL;
    if (c->dev)
        storstack_close(c->dev);
    c->dev = NULL;
}

unsigned iscsi_session_free_tasks(const struct iscsi_conn *c)
{
    unsigned n = 0;

    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        n += !c->tasks[i].used;
    return n;
}

/* Bytes a READ/WRITE CDB asks for, or UINT32_MAX when the CDB says nothing we can count. */
static uint32_t iscsi_cdb_wanted(const struct iscsi_conn *c, const uint8_t *cdb)
{
    uint64_t blocks;

    if (!c->block_size)
        return UINT32_MAX;
    switch (cdb[0]) {
    case 0x08: /* READ(6), WRITE(6): 0 means 256 (SBC-4 5.15) */
    case 0x0a:
        blocks = cdb[4] ? cdb[4] : 256;
        break;
    case 0x28: /* READ(10), WRITE(10), WRITE AND VERIFY(10) */
    case 0x2a:
    case 0x2e:
        blocks = iscsi_get16(cdb + 7);
        break;
    case 0xa8: /* READ(12), WRITE(12), WRITE AND VERIFY(12) */
    case 0xaa:
    case 0xae:
        blocks = iscsi_get32(cdb + 6);
        break;
    case 0x88: /* READ(16), WRITE(16), WRITE AND VERIFY(16) */
    case 0x8a:
    case 0x8e:
        blocks = iscsi_get32(cdb + 10);
        break;
    default:
        return UINT32_MAX;
    }
    blocks *= c->block_size;
    return blocks > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)blocks;
}

/* SCSI Response with status and, for CHECK CONDITION, SenseLength + sense (11.4.7). */
static int iscsi_send_scsi_rsp(struct iscsi_conn *c, uint32_t itt, uint8_t response, uint8_t status,
                               const uint8_t *sense, uint32_t sense_len, uint32_t edtl,
                               uint32_t wanted, uint32_t moved)
{
    uint8_t bhs[ISCSI_BHS_LEN], seg[2 + ISCSI_SENSE_MAX];

    if (sense_len > ISCSI_SENSE_MAX)
        sense_len = ISCSI_SENSE_MAX;
    iscsi_build_scsi_rsp(bhs, itt, response, status, sense_len, edtl, wanted, moved);
    iscsi_put16(seg, sense_len);
    if (sense_len)
        memcpy(seg + 2, sense, sense_len);
    return iscsi_conn_send_status(c, bhs, seg, sense_len ? sense_len + 2 : 0);
}

/* CHECK CONDITION with fixed-format sense (SPC-4 4.5.3) built here, for what never reaches a
 * device (a LUN not mapped, a transfer over the adapter's limit). */
static int iscsi_check_condition(struct iscsi_conn *c, uint32_t itt, uint32_t edtl, uint8_t key,
                                 uint8_t asc, uint8_t ascq)
{
    uint8_t sense[18] = {0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq};
    return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_CHECK, sense,
                               sizeof(sense), edtl, 0, 0);
}

/* Data-In for moved bytes of c->rbuf (11.7), then the status in the last PDU or a response. */
static int iscsi_send_data_in(struct iscsi_conn *c, uint32_t itt, const uint8_t lun[8],
                              const uint8_t *buf, uint32_t moved, uint8_t status,
                              const uint8_t *sense, uint32_t sense_len, uint32_t edtl,
                              uint32_t wanted)
{
    bool collapse = status == ISCSI_STATUS_GOOD && sense_len == 0;
    uint32_t seg = c->params.max_xmit_dsl, burst = c->params.max_burst, off = 0, datasn = 0;
    uint8_t bhs[ISCSI_BHS_LEN];

    while (off < moved) {
        uint32_t n = moved - off < seg ? moved - off : seg;
        /* A sequence ends at each MaxBurstLength (11.7.1: F ends a Data-In sequence). */
        uint32_t to_burst = burst - off % burst;
        if (n > to_burst)
            n = to_burst;
        bool last = off + n == moved;
        iscsi_build_data_in(bhs, itt, lun, datasn++, off, n, last || n == to_burst);
        if (last && collapse) {
            iscsi_data_in_set_status(bhs, status, edtl, wanted, moved);
            if (iscsi_conn_send_status(c, bhs, buf + off, n))
                return -EPIPE;
            return 0;
        }
        iscsi_bhs_set_sn(bhs, 0, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
        if (iscsi_conn_send(c, bhs, buf + off, n))
            return -EPIPE;
        off += n;
    }
    return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, status, sense, sense_len, edtl,
                               wanted, moved);
}

/* Sets the TRANSFER LENGTH of a READ/WRITE CDB that iscsi_cdb_wanted() understood. */
static void iscsi_cdb_set_blocks(uint8_t *cdb, uint32_t blocks)
{
    switch (cdb[0]) {
    case 0x08:
    case 0x0a:
        cdb[4] = (uint8_t)blocks; /* callers never pass 0 or more than 255 here */
        break;
    case 0x28:
    case 0x2a:
    case 0x2e:
        iscsi_put16(cdb + 7, blocks);
        break;
    case 0xa8:
    case 0xaa:
    case 0xae:
        iscsi_put32(cdb + 6, blocks);
        break;
    default:
        iscsi_put32(cdb + 10, blocks);
        break;
    }
}

/* Sets the LOGICAL BLOCK ADDRESS of a READ/WRITE(10/12/16) CDB. */
static void iscsi_cdb_set_lba(uint8_t *cdb, uint64_t lba)
{
    if (cdb[0] == 0x88 || cdb[0] == 0x8a || cdb[0] == 0x8e) {
        iscsi_put32(cdb + 2, (uint32_t)(lba >> 32));
        iscsi_put32(cdb + 6, (uint32_t)lba);
    } else {
        iscsi_put32(cdb + 2, (uint32_t)lba);
    }
}

static uint64_t iscsi_cdb_lba(const uint8_t *cdb)
{
    if (cdb[0] == 0x88 || cdb[0] == 0x8a || cdb[0] == 0x8e)
        return (uint64_t)iscsi_get32(cdb + 2) << 32 | iscsi_get32(cdb + 6);
    return iscsi_get32(cdb + 2);
}

/* One IOCTL_SCSI_PASS_THROUGH_DIRECT; the NTSTATUS of the transport. */
static storstack_status_t iscsi_passthrough(struct iscsi_conn *c, const uint8_t cdb[16],
                                            uint8_t dir, uint8_t *buf, uint32_t len,
                                            struct iscsi_sptd *s)
{
    /* SPC-4 4.2.5.1: the group code gives the CDB length. */
    static const uint8_t cdb_len[8] = {6, 10, 10, 16, 16, 12, 16, 16};
    uint32_t returned = 0;

    memset(s, 0, sizeof(*s));
    memcpy(s->sptd.Cdb, cdb, 16);
    s->sptd.Length = sizeof(s->sptd);
    s->sptd.CdbLength = cdb_len[cdb[0] >> 5];
    s->sptd.SenseInfoLength = ISCSI_SENSE_MAX;
    s->sptd.SenseInfoOffset = offsetof(struct iscsi_sptd, sense);
    s->sptd.DataIn = dir;
    s->sptd.DataTransferLength = len;
    s->sptd.DataBuffer = len ? buf : NULL;
    s->sptd.TimeOutValue = ISCSI_PT_TIMEOUT;
    return storstack_ioctl(c->dev, IOCTL_SCSI_PASS_THROUGH_DIRECT, s, sizeof(*s), s, sizeof(*s),
                           &returned);
}

/* The target's own limit in VPD B0h (SBC-4 6.6.4): MAXIMUM TRANSFER LENGTH no more than one
 * command buffer, since the device below knows nothing of the target's buffers. */
static void iscsi_clamp_block_limits(const struct iscsi_conn *c, const uint8_t *cdb, uint8_t *buf,
                                     uint32_t moved)
{
    if (cdb[0] != SCSI_OP_INQUIRY || !(cdb[1] & 1) || cdb[2] != 0xb0 || moved < 12 ||
        !c->block_size)
        return;
    uint32_t limit = ISCSI_MAX_CMD / c->block_size, mtl = iscsi_get32(buf + 8);
    if (mtl == 0 || mtl > limit)
        iscsi_put32(buf + 8, limit);
    if (moved >= 16 && iscsi_get32(buf + 12) > limit)
        iscsi_put32(buf + 12, limit);
}

/*
 * Runs one command through IOCTL_SCSI_PASS_THROUGH_DIRECT and answers it. A READ/WRITE larger
 * than the adapter's MaximumTransferLength goes down as several, each of whole blocks at the
 * next LBA, stopping at the first that does not end GOOD.
 */
static int iscsi_execute(struct iscsi_conn *c, uint32_t itt, const uint8_t lun[8],
                         const uint8_t cdb_in[16], uint8_t dir, uint8_t *buf, uint32_t len,
                         uint32_t edtl)
{
    struct iscsi_sptd s;
    uint32_t wanted = iscsi_cdb_wanted(c, cdb_in), moved = 0;
    uint8_t cdb[16];
    storstack_status_t st = STATUS_SUCCESS;

    memcpy(cdb, cdb_in, 16);
    if (wanted != UINT32_MAX) {
        /* 11.4.5.1: the transfer is the smaller of EDTL and what the CDB asks for. A write
         * given less than the CDB asks writes the whole blocks it received and reports the rest
         * as overflow (what initiators such as libiscsi's test suite expect of a target). */
        if (dir == SCSI_IOCTL_DATA_OUT && len < wanted) {
            uint32_t blocks = len / c->block_size;
            if (blocks == 0)
                return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_GOOD,
                                           NULL, 0, edtl, wanted, 0);
            iscsi_cdb_set_blocks(cdb, blocks);
            len = blocks * c->block_size;
        } else if (len > wanted) {
            len = wanted;
        }
    }
    if (wanted != UINT32_MAX && len > c->max_xfer && c->max_xfer >= c->block_size &&
        cdb[0] != 0x08 && cdb[0] != 0x0a && len % c->block_size == 0) {
        uint32_t chunk = c->max_xfer / c->block_size * c->block_size;
        uint64_t lba = iscsi_cdb_lba(cdb);
        do {
            uint32_t n = len - moved < chunk ? len - moved : chunk;
            iscsi_cdb_set_lba(cdb, lba + moved / c->block_size);
            iscsi_cdb_set_blocks(cdb, n / c->block_size);
            st = iscsi_passthrough(c, cdb, dir, buf + moved, n, &s);
            if (NT_ERROR(st))
                break;
            moved += s.sptd.DataTransferLength < n ? s.sptd.DataTransferLength : n;
        } while (s.sptd.ScsiStatus == ISCSI_STATUS_GOOD && moved < len);
    } else if (len > c->max_xfer) {
        /* not a READ/WRITE we can split: the pass-through cannot carry it */
        return iscsi_check_condition(c, itt, edtl, 0x05, 0x24, 0x00);
    } else {
        st = iscsi_passthrough(c, cdb, dir, buf, len, &s);
        if (!NT_ERROR(st))
            moved = s.sptd.DataTransferLength < len ? s.sptd.DataTransferLength : len;
    }
    if (NT_ERROR(st))
        /* 11.4.3: the command did not reach a status; the initiator may retry elsewhere. */
        return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_TARGET_FAILURE, 0, NULL, 0, edtl, 0, 0);
    uint32_t sense_len = s.sptd.ScsiStatus == ISCSI_STATUS_GOOD ? 0 : s.sptd.SenseInfoLength;
    if (wanted == UINT32_MAX)
        wanted = moved;
    if (dir == SCSI_IOCTL_DATA_IN && moved) {
        iscsi_clamp_block_limits(c, cdb, buf, moved);
        return iscsi_send_data_in(c, itt, lun, buf, moved, s.sptd.ScsiStatus, s.sense, sense_len,
                                  edtl, wanted);
    }
    return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, s.sptd.ScsiStatus, s.sense,
                               sense_len, edtl, wanted, moved);
}

/* INQUIRY to a LUN with no logical unit: peripheral qualifier 011b (SPC-4 6.6.2). */
static int iscsi_inquiry_no_lun(struct iscsi_conn *c, uint32_t itt, const uint8_t lun[8],
                                const uint8_t *cdb, uint32_t edtl)
{
    uint8_t data[36] = {0x7f, 0, 0x06, 0x02, 31};
    uint32_t alloc = iscsi_get16(cdb + 3), n = sizeof(data);

    if (cdb[1] & 1) /* EVPD on an absent LU */
        return iscsi_check_condition(c, itt, edtl, 0x05, 0x25, 0x00);
    if (n > alloc)
        n = alloc;
    if (n > edtl)
        n = edtl;
    return iscsi_send_data_in(c, itt, lun, data, n, ISCSI_STATUS_GOOD, NULL, 0, edtl, n);
}

static struct iscsi_task *iscsi_task_find(struct iscsi_conn *c, uint32_t itt)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        if (c->tasks[i].used && c->tasks[i].itt == itt)
            return &c->tasks[i];
    return NULL;
}

/* A write moves on: executes once complete, else solicits the next burst (11.8). */
static int iscsi_task_progress(struct iscsi_conn *c, struct iscsi_task *t)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    if (t->received == t->edtl) {
        t->used = false;
        return iscsi_execute(c, t->itt, t->lun, t->cdb, SCSI_IOCTL_DATA_OUT, t->buf, t->edtl,
                             t->edtl);
    }
    if (t->unsol_open || t->r2t_open)
        return 0;
    uint32_t len = t->edtl - t->received;
    if (len > c->params.max_burst)
        len = c->params.max_burst;
    t->r2t_open = true;
    t->r2t_ttt = c->next_ttt++;
    if (c->next_ttt == ISCSI_RESERVED_TAG)
        c->next_ttt = 0;
    t->r2t_end = t->received + len;
    t->datasn = 0;
    /* 11.8.3: R2T carries the next StatSN without advancing it. */
    iscsi_build_r2t(bhs, t->itt, t->lun, t->r2t_ttt, t->r2tsn++, t->received, len);
    iscsi_bhs_set_sn(bhs, c->statsn, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
    return iscsi_conn_send(c, bhs, NULL, 0);
}

int iscsi_session_scsi_cmd(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data)
{
    struct iscsi_scsi_cmd cmd;
    struct iscsi_task *t = NULL;
    uint32_t lun;

    iscsi_pdu_scsi_cmd(p, &cmd);
    /* 11.3: bidirectional commands need ERL-independent AHS support this target lacks; immediate
     * data only for a write, within EDTL and FirstBurstLength, and only when negotiated. */
    if ((cmd.read && cmd.write) ||
        (p->data_len && (!cmd.write || !c->params.immediate_data || p->data_len > cmd.edtl ||
                         p->data_len > c->params.first_burst)))
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    lun = iscsi_lun_decode(cmd.lun);
    if (lun != 0) {
        if (cmd.cdb[0] == SCSI_OP_INQUIRY && cmd.read)
            return iscsi_inquiry_no_lun(c, cmd.itt, cmd.lun, cmd.cdb, cmd.edtl);
        if (cmd.cdb[0] != SCSI_OP_REPORT_LUNS) /* LOGICAL UNIT NOT SUPPORTED */
            return iscsi_check_condition(c, cmd.itt, cmd.edtl, 0x05, 0x25, 0x00);
    }
    if (cmd.edtl > ISCSI_MAX_CMD) /* over VPD B0h's MAXIMUM TRANSFER LENGTH as we report it */
        return iscsi_check_condition(c, cmd.itt, cmd.edtl, 0x05, 0x24, 0x00);
    if (!cmd.write)
        return iscsi_execute(c, cmd.itt, cmd.lun, cmd.cdb,
                             cmd.read ? SCSI_IOCTL_DATA_IN : SCSI_IOCTL_DATA_UNSPECIFIED, c->rbuf,
                             cmd.read ? cmd.edtl : 0, cmd.edtl);

    if (iscsi_task_find(c, cmd.itt))
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    for (unsigned i = 0; i < ISCSI_TASKS && !t; i++)
        if (!c->tasks[i].used)
            t = &c->tasks[i];
    if (!t) /* only an immediate command can get here with the window full */
        return iscsi_send_scsi_rsp(c, cmd.itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_BUSY, NULL, 0,
                                   cmd.edtl, 0, 0);
    if (!t->buf && !(t->buf = aligned_alloc(4096, ISCSI_MAX_CMD)))
        return iscsi_send_scsi_rsp(c, cmd.itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_BUSY, NULL, 0,
                                   cmd.edtl, 0, 0);
    memset(t, 0, offsetof(struct iscsi_task, buf));
    t->used = true;
    t->itt = cmd.itt;
    memcpy(t->lun, cmd.lun, 8);
    memcpy(t->cdb, cmd.cdb, 16);
    t->edtl = cmd.edtl;
    memcpy(t->buf, data, p->data_len);
    t->received = p->data_len;
    /* 3.2.4.2: with InitialR2T=No and F=0, Data-Out follows unsolicited up to FirstBurstLength.
     */
    t->unsol_open = !c->params.initial_r2t && !cmd.final && t->received < t->edtl;
    t->unsol_end = t->edtl < c->params.first_burst ? t->edtl : c->params.first_burst;
    return iscsi_task_progress(c, t);
}

int iscsi_session_data_out(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data)
{
    const uint8_t *b = p->bhs;
    struct iscsi_task *t = iscsi_task_find(c, p->itt);
    uint32_t ttt = iscsi_get32(b + ISCSI_OFF_TTT), datasn = iscsi_get32(b + ISCSI_OFF_DATASN);
    uint32_t off = iscsi_get32(b + ISCSI_OFF_BUFOFF), end;

    /* Data for a task already answered (aborted, or failed early): nothing waits for it. */
    if (!t)
        return 0;
    if (ttt == ISCSI_RESERVED_TAG) {
        if (!t->unsol_open)
            goto protocol_error;
        end = t->unsol_end;
    } else {
        if (!t->r2t_open || ttt != t->r2t_ttt)
            goto protocol_error;
        end = t->r2t_end;
    }
    /* DataPDUInOrder=Yes, DataSequenceInOrder=Yes (13.18, 13.19): each PDU continues the last,
     * within the burst it belongs to; DataSN counts within the sequence (11.7.5). */
    if (off != t->received || p->data_len > end - off || datasn != t->datasn)
        goto protocol_error;
    memcpy(t->buf + off, data, p->data_len);
    t->received += p->data_len;
    t->datasn++;
    if (p->final) {
        if (t->received != end) /* 3.2.4.2: a burst ends where it was meant to */
            goto protocol_error;
        if (ttt == ISCSI_RESERVED_TAG)
            t->unsol_open = false;
        else
            t->r2t_open = false;
        t->datasn = 0;
        return iscsi_task_progress(c, t);
    }
    return 0;

protocol_error:
    /* ERL 0 (7.1.5): no recovery within the connection; tell the initiator why, then close. */
    t->used = false;
    iscsi_conn_reject(c, b, ISCSI_REJECT_PROTOCOL_ERROR);
    return -EPROTO;
}

int iscsi_session_tmf(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    const uint8_t *b = p->bhs;
    uint8_t bhs[ISCSI_BHS_LEN], function = b[1] & 0x7f, response;
    uint32_t ref = iscsi_get32(b + ISCSI_OFF_TTT);
    struct iscsi_task *t;

    switch (function) {
    case ISCSI_TMF_ABORT_TASK:
        /* 11.5.1: only a write waiting for its data is still a task here. */
        t = iscsi_task_find(c, ref);
        response = t ? ISCSI_TMF_RSP_COMPLETE : ISCSI_TMF_RSP_NO_TASK;
        if (t)
            t->used = false;
        break;
    case ISCSI_TMF_ABORT_TASK_SET:
    case ISCSI_TMF_CLEAR_TASK_SET:
        /* One session, one LUN: the task set is this session's waiting writes. */
        if (iscsi_lun_decode(b + ISCSI_OFF_LUN) != 0) {
            response = ISCSI_TMF_RSP_NO_LUN;
            break;
        }
        for (unsigned i = 0; i < ISCSI_TASKS; i++)
            c->tasks[i].used = false;
        response = ISCSI_TMF_RSP_COMPLETE;
        break;
    case ISCSI_TMF_TASK_REASSIGN:
        response = ISCSI_TMF_RSP_REASSIGN_UNSUPPORTED; /* ERL 2 only */
        break;
    case ISCSI_TMF_CLEAR_ACA:
    case ISCSI_TMF_LUN_RESET:
    case ISCSI_TMF_TARGET_WARM_RESET:
    case ISCSI_TMF_TARGET_COLD_RESET:
        /* Not mapped to SRB_FUNCTION_RESET_LOGICAL_UNIT / RESET_DEVICE yet. */
        response = ISCSI_TMF_RSP_NOT_SUPPORTED;
        break;
    default:
        response = ISCSI_TMF_RSP_REJECTED;
        break;
    }
    iscsi_bhs_init(bhs, ISCSI_OP_TMF_RSP, ISCSI_FLAG_FINAL, 0, p->itt);
    bhs[2] = response;
    return iscsi_conn_send_status(c, bhs, NULL, 0);
}
