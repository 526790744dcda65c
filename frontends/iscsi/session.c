/*
 * The SCSI side of an iSCSI session (RFC 7143 3.2, 11.3-11.8): a SCSI Command becomes an
 * IOCTL_SCSI_PASS_THROUGH_DIRECT, issued with storstack_ioctl_async to the device its LUN maps
 * to (opened for this session with its own I_T nexus), so as many commands run at once as the
 * CmdSN window holds. Reads go back as Data-In PDUs no longer than the initiator's
 * MaxRecvDataSegmentLength, with the status collapsed into the last one when it is GOOD; writes
 * gather immediate data, unsolicited Data-Out up to FirstBurstLength, then one R2T at a time
 * (MaxOutstandingR2T=1) up to MaxBurstLength each, into the task's buffer, and go down once
 * complete. READ/WRITE over the adapter's MaximumTransferLength go down as several
 * pass-throughs, one after the other. REPORT LUNS is the target's own answer (SAM-5: the
 * target's LUN inventory), from its map; every other command goes down the stack.
 *
 * Task management maps onto the stack: ABORT TASK, ABORT TASK SET and CLEAR TASK SET cancel the
 * tasks' IRPs (storstack_cancel: Storport turns a cancelled pass-through into
 * SRB_FUNCTION_ABORT_COMMAND), LUN RESET sends IOCTL_STORAGE_RESET_DEVICE
 * (SRB_FUNCTION_RESET_LOGICAL_UNIT), TARGET WARM/COLD RESET IOCTL_STORAGE_RESET_BUS
 * (HwStorResetBus) to each LU; the response waits until every aborted task has come back, and
 * aborted tasks get no response of their own (11.5.1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storage/ntddstor.h>

#include "frontends/iscsi/iscsi_p.h"

#define ISCSI_STATUS_GOOD          0x00
#define ISCSI_STATUS_CHECK         0x02
#define ISCSI_STATUS_BUSY          0x08
#define ISCSI_STATUS_TASK_SET_FULL 0x28
#define ISCSI_PT_TIMEOUT           60
#define SCSI_OP_INQUIRY            0x12
#define SCSI_OP_REPORT_LUNS        0xa0
#define SENSE_ILLEGAL              0x05
#define SENSE_ABORTED              0x0b

/* ---- Session open/close, task slots and buffers ------------------------------------------- */

/* The completion callback, on whichever thread completed the IRP: queue and wake the loop. On the
 * connection's own loop (the stack completed it inline) the task only goes on local_head, which
 * that loop alone touches: no lock, no eventfd, no wakeup. */
static void iscsi_task_done(void *context, storstack_status_t status, uint64_t information)
{
    struct iscsi_task *t = context;
    struct iscsi_conn *c = t->conn;
    uint64_t one = 1;

    (void)information;
    t->status = status;
    if (iscsi_loop_self == c->loop) {
        iscsi_conn_local_done(c, t);
        return;
    }
    /* The eventfd is signalled only when the list was empty (the loop takes the whole list at
     * each wakeup), and under the lock: once the loop has taken this task off, the connection
     * may end and be freed, so nothing here may touch it after the unlock. */
    pthread_mutex_lock(&c->cq_lock);
    bool wake = c->cq_head == NULL;
    t->next_done = c->cq_head;
    c->cq_head = t;
    if (wake && write(c->efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow with at most ISCSI_TASKS signals outstanding */
    }
    pthread_mutex_unlock(&c->cq_lock);
}

static void iscsi_lu_limits(struct iscsi_lu *lu)
{
    STORAGE_PROPERTY_QUERY q = {.PropertyId = StorageAdapterProperty,
                                .QueryType = PropertyStandardQuery};
    STORAGE_ADAPTER_DESCRIPTOR ad;
    DISK_GEOMETRY geo;
    uint32_t returned = 0;

    /* The pass-through refuses more than the adapter's MaximumTransferLength. */
    memset(&ad, 0, sizeof(ad));
    lu->max_xfer = ISCSI_XFER_FALLBACK;
    if (storstack_ioctl(lu->h, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &ad, sizeof(ad),
                        &returned) == STATUS_SUCCESS &&
        returned >= offsetof(STORAGE_ADAPTER_DESCRIPTOR, MaximumPhysicalPages) &&
        ad.MaximumTransferLength >= 512)
        lu->max_xfer =
            ad.MaximumTransferLength < ISCSI_MAX_CMD ? ad.MaximumTransferLength : ISCSI_MAX_CMD;
    /* The block size, for the overflow residual of READ/WRITE (11.4.5). */
    lu->block_size = 0;
    if (storstack_ioctl(lu->h, IOCTL_DISK_GET_DRIVE_GEOMETRY, NULL, 0, &geo, sizeof(geo),
                        &returned) == STATUS_SUCCESS &&
        returned >= sizeof(geo))
        lu->block_size = geo.BytesPerSector;
}

static void iscsi_task_free_buffer(struct iscsi_conn *c, struct iscsi_task *t)
{
    free(t->buf);
    c->buf_bytes -= t->cap;
    t->buf = NULL;
    t->cap = 0;
}

int iscsi_session_open(struct iscsi_conn *c)
{
    struct iscsi_target *t = c->target;
    const struct iscsi_target_def *def = &t->cfg.targets[c->params.target];
    char tid[ISCSI_NAME_MAX + 32];

    /* SPC-4 7.6.4.6: the iSCSI initiator port TransportID, NAME,i,0xISID */
    snprintf(tid, sizeof(tid), "%s,i,0x%02x%02x%02x%02x%02x%02x", c->params.initiator_name,
             c->isid[0], c->isid[1], c->isid[2], c->isid[3], c->isid[4], c->isid[5]);
    /* The nexus id the SCSI devices key unit attentions and reservations by: unique among the
     * live sessions of this portal (all its targets, which may share devices), and taken from
     * the smallest free, so that the devices' per-nexus tables (32 entries for the disk) do not
     * churn through ids as initiators log in and out. A session that reuses an id may see a
     * unit attention meant for the one before it, which SAM-5 5.14 allows after a loss of
     * state; it sees no power-on unit attention if the id has seen it. */
    pthread_mutex_lock(&t->lock);
    c->tdef = def;
    for (unsigned i = 0; i < ISCSI_MAX_CONNS; i++)
        if (!t->nexus_used[i]) {
            t->nexus_used[i] = true;
            c->nexus = i + 1;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    if (!c->nexus)
        return -EBUSY;
    struct storstack_identity who = {
        .principal = c->params.initiator_name, .transport_id = tid, .nexus = c->nexus};
    for (unsigned i = 0; i < def->nluns; i++) {
        struct iscsi_lu *lu = &c->lus[i];
        lu->lun = def->luns[i].lun;
        storstack_status_t st =
            storstack_open_ex(t->stack, def->luns[i].device,
                              STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &who, &lu->h);
        if (st == STATUS_ACCESS_DENIED) {
            /* The device's security descriptor refuses this initiator: the LUN stays in the map
             * and every command to it says so (ACCESS DENIED), the other LUNs work. */
            lu->h = NULL;
            c->nlus = i + 1;
            fprintf(stderr, "storstack: iSCSI: %s: LUN %u (%s) denied to %s\n", def->iqn,
                    (unsigned)lu->lun, def->luns[i].device, c->params.initiator_name);
            continue;
        }
        if (st != STATUS_SUCCESS) {
            lu->h = NULL;
            iscsi_session_close(c);
            return -ENODEV;
        }
        c->nlus = i + 1;
        iscsi_lu_limits(lu);
    }
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        c->tasks[i].conn = c;
    return 0;
}

void iscsi_session_cancel(struct iscsi_conn *c)
{
    for (unsigned i = 0; i < c->nlus; i++)
        if (c->lus[i].h)
            storstack_cancel(c->lus[i].h, NULL, NULL);
}

void iscsi_session_close(struct iscsi_conn *c)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++) {
        iscsi_task_free_buffer(c, &c->tasks[i]);
        c->tasks[i].state = ISCSI_TASK_FREE;
    }
    c->used = 0;
    for (unsigned i = 0; i < c->nlus; i++)
        if (c->lus[i].h)
            storstack_close(c->lus[i].h);
    c->nlus = 0;
    if (c->nexus) {
        pthread_mutex_lock(&c->target->lock);
        c->target->nexus_used[c->nexus - 1] = false;
        pthread_mutex_unlock(&c->target->lock);
        c->nexus = 0;
    }
}

void iscsi_session_trim(struct iscsi_conn *c)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        if (c->tasks[i].state == ISCSI_TASK_FREE && c->tasks[i].buf)
            iscsi_task_free_buffer(c, &c->tasks[i]);
}

/*
 * Room for need bytes in the task's buffer, kept from command to command (a power of two from
 * 64 KiB). The session's buffers stay under ISCSI_SESSION_BUF: idle slots give theirs back
 * first, and a command that still does not fit gets TASK SET FULL from the caller.
 */
static int iscsi_task_buffer(struct iscsi_conn *c, struct iscsi_task *t, uint32_t need)
{
    uint32_t cap = ISCSI_BUF_MIN;

    if (t->cap >= need)
        return 0;
    while (cap < need)
        cap <<= 1;
    iscsi_task_free_buffer(c, t);
    if (c->buf_bytes + cap > ISCSI_SESSION_BUF)
        iscsi_session_trim(c);
    if (c->buf_bytes + cap > ISCSI_SESSION_BUF)
        return -ENOBUFS;
    t->buf = aligned_alloc(4096, cap);
    if (!t->buf)
        return -ENOMEM;
    t->cap = cap;
    c->buf_bytes += cap;
    return 0;
}

static struct iscsi_task *iscsi_task_find(struct iscsi_conn *c, uint32_t itt)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        if (c->tasks[i].state != ISCSI_TASK_FREE && c->tasks[i].itt == itt)
            return &c->tasks[i];
    return NULL;
}

static struct iscsi_lu *iscsi_lu_find(struct iscsi_conn *c, uint32_t lun)
{
    for (unsigned i = 0; i < c->nlus; i++)
        if (c->lus[i].lun == lun)
            return &c->lus[i];
    return NULL;
}

static int iscsi_tmf_check(struct iscsi_conn *c);

static int iscsi_task_release(struct iscsi_conn *c, struct iscsi_task *t)
{
    t->state = ISCSI_TASK_FREE;
    t->aborted = false;
    c->used--;
    return iscsi_tmf_check(c);
}

/* ---- Responses ---------------------------------------------------------------------------- */

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
 * device (a LUN not mapped, REPORT LUNS, a transfer over the target's limit, a data phase
 * error); field >= 0 adds the sense-key-specific field pointer to that CDB byte. */
static int iscsi_check_condition(struct iscsi_conn *c, uint32_t itt, uint32_t edtl, uint8_t key,
                                 uint8_t asc, uint8_t ascq, int field)
{
    uint8_t sense[18] = {0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq};
    if (field >= 0) {
        sense[15] = 0xc0; /* SKSV, C/D: a CDB field */
        iscsi_put16(sense + 16, (uint32_t)field);
    }
    return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_CHECK, sense,
                               sizeof(sense), edtl, 0, 0);
}

/*
 * Data-In for moved bytes of buf (11.7), then the status in the last PDU or a response. From a
 * task's buffer (task non-NULL) the PDUs go by reference and stop when the send queue is full:
 * ISCSI_AGAIN, with how far they got in the task, to go on from there. Other data (a few bytes of
 * the target's own) goes whole.
 */
static int iscsi_send_data_in(struct iscsi_conn *c, struct iscsi_task *task, uint32_t itt,
                              const uint8_t lun[8], const uint8_t *buf, uint32_t moved,
                              uint8_t status, const uint8_t *sense, uint32_t sense_len,
                              uint32_t edtl, uint32_t wanted)
{
    bool collapse = status == ISCSI_STATUS_GOOD && sense_len == 0;
    uint32_t seg = c->params.max_xmit_dsl, burst = c->params.max_burst;
    uint32_t off = task ? task->din_off : 0, datasn = task ? task->din_sn : 0;
    uint8_t bhs[ISCSI_BHS_LEN];

    while (off < moved) {
        if (task && !iscsi_conn_room(c)) {
            task->din_off = off;
            task->din_sn = datasn;
            return ISCSI_AGAIN;
        }
        uint32_t n = moved - off < seg ? moved - off : seg;
        /* A sequence ends at each MaxBurstLength (11.7.1: F ends a Data-In sequence). */
        uint32_t to_burst = burst - off % burst;
        if (n > to_burst)
            n = to_burst;
        bool last = off + n == moved;
        iscsi_build_data_in(bhs, itt, lun, datasn++, off, n, last || n == to_burst);
        if (last && collapse) {
            iscsi_data_in_set_status(bhs, status, edtl, wanted, moved);
            int rc = task ? iscsi_conn_send_status_ref(c, bhs, buf + off, n)
                          : iscsi_conn_send_status(c, bhs, buf + off, n);
            return rc ? -EPIPE : 0;
        }
        iscsi_bhs_set_sn(bhs, 0, c->exp_cmdsn, iscsi_conn_max_cmdsn(c));
        /* A task's buffer is sent from where the pass-through read into it, no copy. */
        if (task ? iscsi_conn_send_ref(c, bhs, buf + off, n)
                 : iscsi_conn_send(c, bhs, buf + off, n))
            return -EPIPE;
        off += n;
    }
    return iscsi_send_scsi_rsp(c, itt, ISCSI_RESPONSE_COMPLETED, status, sense, sense_len, edtl,
                               wanted, moved);
}

/* ---- CDB helpers -------------------------------------------------------------------------- */

/* Bytes a READ/WRITE CDB asks for, or UINT32_MAX when the CDB says nothing we can count. */
static uint32_t iscsi_cdb_wanted(const struct iscsi_lu *lu, const uint8_t *cdb)
{
    uint64_t blocks;

    if (!lu->block_size)
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
    blocks *= lu->block_size;
    return blocks > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)blocks;
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

/* The target's own limit in VPD B0h (SBC-4 6.6.4): MAXIMUM TRANSFER LENGTH no more than one
 * command buffer, since the device below knows nothing of the target's buffers. */
static void iscsi_clamp_block_limits(const struct iscsi_lu *lu, const uint8_t *cdb, uint8_t *buf,
                                     uint32_t moved)
{
    if (cdb[0] != SCSI_OP_INQUIRY || !(cdb[1] & 1) || cdb[2] != 0xb0 || moved < 12 ||
        !lu->block_size)
        return;
    uint32_t limit = ISCSI_MAX_CMD / lu->block_size, mtl = iscsi_get32(buf + 8);
    if (mtl == 0 || mtl > limit)
        iscsi_put32(buf + 8, limit);
    if (moved >= 16 && iscsi_get32(buf + 12) > limit)
        iscsi_put32(buf + 12, limit);
}

/* ---- Execution ---------------------------------------------------------------------------- */

/* Sends the task's next pass-through down (all of it, or the next piece of a split one). */
static int iscsi_task_issue(struct iscsi_conn *c, struct iscsi_task *t)
{
    /* SPC-4 4.2.5.1: the group code gives the CDB length. */
    static const uint8_t cdb_len[8] = {6, 10, 10, 16, 16, 12, 16, 16};
    const struct iscsi_lu *lu = t->lu;
    uint32_t n = t->len - t->moved;
    storstack_status_t st;

    if (t->split) {
        uint32_t chunk = lu->max_xfer / lu->block_size * lu->block_size;
        if (n > chunk)
            n = chunk;
        iscsi_cdb_set_lba(t->xcdb, t->lba + t->moved / lu->block_size);
        iscsi_cdb_set_blocks(t->xcdb, n / lu->block_size);
    }
    memset(&t->s, 0, sizeof(t->s));
    memcpy(t->s.sptd.Cdb, t->xcdb, 16);
    t->s.sptd.Length = sizeof(t->s.sptd);
    t->s.sptd.CdbLength = cdb_len[t->xcdb[0] >> 5];
    t->s.sptd.SenseInfoLength = ISCSI_SENSE_MAX;
    t->s.sptd.SenseInfoOffset = offsetof(struct iscsi_sptd, sense);
    t->s.sptd.DataIn = t->dir;
    t->s.sptd.DataTransferLength = n;
    t->s.sptd.DataBuffer = n ? t->buf + t->moved : NULL;
    t->s.sptd.TimeOutValue = ISCSI_PT_TIMEOUT;
    t->piece = n;
    t->state = ISCSI_TASK_RUNNING;
    c->running++;
    st = storstack_ioctl_async(lu->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &t->s, sizeof(t->s), &t->s,
                               sizeof(t->s), iscsi_task_done, t);
    if (st != STATUS_PENDING) { /* not issued: no callback will come; answered as one */
        t->status = st;
        iscsi_conn_local_done(c, t);
    }
    return 0;
}

/*
 * Starts a command with its data (if any) in t->buf. A READ/WRITE larger than the adapter's
 * MaximumTransferLength goes down as several pass-throughs, each of whole blocks at the next
 * LBA, stopping at the first that does not end GOOD.
 */
static int iscsi_execute(struct iscsi_conn *c, struct iscsi_task *t)
{
    const struct iscsi_lu *lu = t->lu;
    uint32_t wanted = iscsi_cdb_wanted(lu, t->cdb);
    uint32_t len = t->dir == SCSI_IOCTL_DATA_UNSPECIFIED ? 0 : t->edtl;
    int rc;

    memcpy(t->xcdb, t->cdb, 16);
    t->split = false;
    t->moved = 0;
    if (wanted != UINT32_MAX) {
        /* 11.4.5.1: the transfer is the smaller of EDTL and what the CDB asks for. A write
         * given less than the CDB asks writes the whole blocks it received and reports the rest
         * as overflow (what initiators such as libiscsi's test suite expect of a target). */
        if (t->dir == SCSI_IOCTL_DATA_OUT && len < wanted) {
            uint32_t blocks = len / lu->block_size;
            if (blocks == 0) {
                rc = iscsi_send_scsi_rsp(c, t->itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_GOOD,
                                         NULL, 0, t->edtl, wanted, 0);
                int r = iscsi_task_release(c, t);
                return rc ? rc : r;
            }
            iscsi_cdb_set_blocks(t->xcdb, blocks);
            len = blocks * lu->block_size;
        } else if (len > wanted) {
            len = wanted;
        }
    }
    if (wanted != UINT32_MAX && len > lu->max_xfer && lu->max_xfer >= lu->block_size &&
        t->cdb[0] != 0x08 && t->cdb[0] != 0x0a && len % lu->block_size == 0) {
        t->split = true;
        t->lba = iscsi_cdb_lba(t->cdb);
    } else if (len > lu->max_xfer) {
        /* not a READ/WRITE we can split: the pass-through cannot carry it */
        rc = iscsi_check_condition(c, t->itt, t->edtl, SENSE_ILLEGAL, 0x24, 0x00, -1);
        int r = iscsi_task_release(c, t);
        return rc ? rc : r;
    }
    t->wanted = wanted;
    t->len = len;
    return iscsi_task_issue(c, t);
}

int iscsi_session_complete(struct iscsi_conn *c, struct iscsi_task *t)
{
    c->running--;
    if (t->aborted)
        return iscsi_task_release(c, t); /* 11.5.1: no response for an aborted task */
    t->din_off = t->din_sn = 0;
    if (NT_ERROR(t->status))
        return 1;
    uint32_t got =
        t->s.sptd.DataTransferLength < t->piece ? t->s.sptd.DataTransferLength : t->piece;
    t->moved += got;
    if (t->split && t->s.sptd.ScsiStatus == ISCSI_STATUS_GOOD && got == t->piece &&
        t->moved < t->len)
        return iscsi_task_issue(c, t);
    if (t->dir == SCSI_IOCTL_DATA_IN && t->moved)
        iscsi_clamp_block_limits(t->lu, t->cdb, t->buf, t->moved);
    return 1;
}

int iscsi_session_answer(struct iscsi_conn *c, struct iscsi_task *t)
{
    int rc;

    if (NT_ERROR(t->status)) {
        /* 11.4.3: the command did not reach a status; the initiator may retry elsewhere. */
        rc = iscsi_send_scsi_rsp(c, t->itt, ISCSI_RESPONSE_TARGET_FAILURE, 0, NULL, 0, t->edtl, 0,
                                 0);
        int r = iscsi_task_release(c, t);
        return rc ? rc : r;
    }
    uint8_t status = t->s.sptd.ScsiStatus;
    uint32_t sense_len = status == ISCSI_STATUS_GOOD ? 0 : t->s.sptd.SenseInfoLength;
    uint32_t wanted = t->wanted == UINT32_MAX ? t->moved : t->wanted;
    if (t->dir == SCSI_IOCTL_DATA_IN && t->moved) {
        rc = iscsi_send_data_in(c, t, t->itt, t->lun, t->buf, t->moved, status, t->s.sense,
                                sense_len, t->edtl, wanted);
        if (rc == ISCSI_AGAIN)
            return rc;
    } else {
        rc = iscsi_send_scsi_rsp(c, t->itt, ISCSI_RESPONSE_COMPLETED, status, t->s.sense, sense_len,
                                 t->edtl, wanted, t->moved);
    }
    int r = iscsi_task_release(c, t);
    return rc ? rc : r;
}

/* INQUIRY to a LUN with no logical unit: peripheral qualifier 011b (SPC-4 6.6.2). */
static int iscsi_inquiry_no_lun(struct iscsi_conn *c, const struct iscsi_scsi_cmd *cmd)
{
    uint8_t data[36] = {0x7f, 0, 0x06, 0x02, 31};
    uint32_t alloc = iscsi_get16(cmd->cdb + 3), n = sizeof(data);

    if (cmd->cdb[1] & 1) /* EVPD on an absent LU */
        return iscsi_check_condition(c, cmd->itt, cmd->edtl, SENSE_ILLEGAL, 0x25, 0x00, -1);
    if (n > alloc)
        n = alloc;
    if (n > cmd->edtl)
        n = cmd->edtl;
    return iscsi_send_data_in(c, NULL, cmd->itt, cmd->lun, data, n, ISCSI_STATUS_GOOD, NULL, 0,
                              cmd->edtl, n);
}

/* REPORT LUNS (SPC-4 6.33) from the target's map, at whatever LUN it is addressed to. */
static int iscsi_report_luns(struct iscsi_conn *c, const struct iscsi_scsi_cmd *cmd)
{
    /* bits that may be set in each CDB byte: SELECT REPORT, ALLOCATION LENGTH, CONTROL */
    static const uint8_t usage[12] = {0xff, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xc0};
    const uint8_t *cdb = cmd->cdb;
    uint8_t data[8 + 8 * ISCSI_MAX_LUNS];
    uint32_t alloc = iscsi_get32(cdb + 6), n = 0;

    for (int i = 1; i < 12; i++)
        if (cdb[i] & (uint8_t)~usage[i])
            return iscsi_check_condition(c, cmd->itt, cmd->edtl, SENSE_ILLEGAL, 0x24, 0, i);
    if (cdb[2] > 0x02)
        return iscsi_check_condition(c, cmd->itt, cmd->edtl, SENSE_ILLEGAL, 0x24, 0, 2);
    if (alloc < 16)
        return iscsi_check_condition(c, cmd->itt, cmd->edtl, SENSE_ILLEGAL, 0x24, 0, 6);
    memset(data, 0, sizeof(data));
    if (cdb[2] != 0x01) /* 01h: well-known LUNs only, and there are none */
        for (unsigned i = 0; i < c->nlus; i++)
            iscsi_lun_encode(data + 8 + 8 * n++, c->lus[i].lun);
    iscsi_put32(data, 8 * n);
    uint32_t total = 8 + 8 * n, len = total;
    if (len > alloc)
        len = alloc;
    if (len > cmd->edtl)
        len = cmd->edtl;
    return iscsi_send_data_in(c, NULL, cmd->itt, cmd->lun, data, len, ISCSI_STATUS_GOOD, NULL, 0,
                              cmd->edtl, total < alloc ? total : alloc);
}

/* A write moves on: executes once complete, else solicits the next burst (11.8). */
static int iscsi_task_progress(struct iscsi_conn *c, struct iscsi_task *t)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    if (t->received == t->edtl)
        return iscsi_execute(c, t);
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
    struct iscsi_lu *lu;

    iscsi_pdu_scsi_cmd(p, &cmd);
    /* 11.3: bidirectional commands need ERL-independent AHS support this target lacks; immediate
     * data only for a write, within EDTL and FirstBurstLength, and only when negotiated. */
    if ((cmd.read && cmd.write) ||
        (p->data_len && (!cmd.write || !c->params.immediate_data || p->data_len > cmd.edtl ||
                         p->data_len > c->params.first_burst)))
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_PROTOCOL_ERROR);
    if (iscsi_task_find(c, cmd.itt)) /* 11.2.1.8: a tag in use */
        return iscsi_conn_reject(c, p->bhs, ISCSI_REJECT_INVALID_PDU_FIELD);
    if (cmd.cdb[0] == SCSI_OP_REPORT_LUNS)
        return iscsi_report_luns(c, &cmd);
    lu = iscsi_lu_find(c, iscsi_lun_decode(cmd.lun));
    if (!lu) {
        if (cmd.cdb[0] == SCSI_OP_INQUIRY && cmd.read)
            return iscsi_inquiry_no_lun(c, &cmd);
        /* LOGICAL UNIT NOT SUPPORTED */
        return iscsi_check_condition(c, cmd.itt, cmd.edtl, SENSE_ILLEGAL, 0x25, 0x00, -1);
    }
    if (!lu->h) /* ACCESS DENIED - NO ACCESS RIGHTS (SPC-4 table 28, 20h/02h) */
        return iscsi_check_condition(c, cmd.itt, cmd.edtl, SENSE_ILLEGAL, 0x20, 0x02, -1);
    if (cmd.edtl > ISCSI_MAX_CMD) /* over VPD B0h's MAXIMUM TRANSFER LENGTH as we report it */
        return iscsi_check_condition(c, cmd.itt, cmd.edtl, SENSE_ILLEGAL, 0x24, 0x00, -1);
    for (unsigned i = 0; i < ISCSI_TASKS && !t; i++)
        if (c->tasks[i].state == ISCSI_TASK_FREE)
            t = &c->tasks[i];
    uint32_t need = cmd.read || cmd.write ? cmd.edtl : 0;
    if (!t) /* only an immediate command finds none */
        return iscsi_send_scsi_rsp(c, cmd.itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_BUSY, NULL, 0,
                                   cmd.edtl, 0, 0);
    if (need && iscsi_task_buffer(c, t, need)) /* SAM-5 5.3.1: TASK SET FULL */
        return iscsi_send_scsi_rsp(c, cmd.itt, ISCSI_RESPONSE_COMPLETED, ISCSI_STATUS_TASK_SET_FULL,
                                   NULL, 0, cmd.edtl, 0, 0);
    t->state = ISCSI_TASK_DATA;
    t->aborted = false;
    t->data_error = false;
    t->itt = cmd.itt;
    memcpy(t->lun, cmd.lun, 8);
    memcpy(t->cdb, cmd.cdb, 16);
    t->lu = lu;
    t->edtl = cmd.edtl;
    t->dir = cmd.read    ? SCSI_IOCTL_DATA_IN
             : cmd.write ? SCSI_IOCTL_DATA_OUT
                         : SCSI_IOCTL_DATA_UNSPECIFIED;
    c->used++;
    c->trimmed = false;
    if (!cmd.write)
        return iscsi_execute(c, t);
    if (p->data_len)
        memcpy(t->buf, data, p->data_len);
    t->received = p->data_len;
    t->r2tsn = 0;
    t->datasn = 0;
    t->r2t_open = false;
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
    if (!t || t->state != ISCSI_TASK_DATA)
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
    /*
     * DataPDUInOrder=Yes, DataSequenceInOrder=Yes (13.18, 13.19): each PDU continues the last,
     * within the burst it belongs to; DataSN counts within the sequence (11.7.5). A PDU out of
     * sequence spoils the command, not the connection (the header said how long it is): the
     * rest of the burst is dropped and the command ends in CHECK CONDITION, ABORTED COMMAND,
     * DATA PHASE ERROR (4Bh/00h) or DATA OFFSET ERROR (4Bh/05h).
     */
    if (!t->data_error) {
        if (datasn != t->datasn)
            t->data_error = true, t->data_ascq = 0x00;
        else if (off != t->received || p->data_len > end - off)
            t->data_error = true, t->data_ascq = 0x05;
    }
    if (!t->data_error) {
        memcpy(t->buf + off, data, p->data_len);
        t->received += p->data_len;
        t->datasn++;
    }
    if (!p->final)
        return 0;
    if (ttt == ISCSI_RESERVED_TAG)
        t->unsol_open = false;
    else
        t->r2t_open = false;
    t->datasn = 0;
    if (!t->data_error && t->received != end) /* 3.2.4.2: a burst ends where it was meant to */
        t->data_error = true, t->data_ascq = 0x05;
    if (t->data_error) {
        int rc = iscsi_check_condition(c, t->itt, t->edtl, SENSE_ABORTED, 0x4b, t->data_ascq, -1);
        int r = iscsi_task_release(c, t);
        return rc ? rc : r;
    }
    return iscsi_task_progress(c, t);

protocol_error:
    /* A Data-Out for no open burst: the initiator and the target disagree on the state of the
     * command. ERL 0 (7.1.5): no recovery within the connection; tell it why, then close. */
    iscsi_task_release(c, t);
    iscsi_conn_reject(c, b, ISCSI_REJECT_PROTOCOL_ERROR);
    return -EPROTO;
}

/* ---- Task management ---------------------------------------------------------------------- */

/* Aborts one task: one still gathering data is simply dropped; one down the stack is cancelled
 * and comes back (cancelled, or finished first) through iscsi_session_complete, unanswered. */
static void iscsi_abort_task(struct iscsi_conn *c, struct iscsi_task *t)
{
    if (t->state == ISCSI_TASK_DATA) {
        t->state = ISCSI_TASK_FREE;
        c->used--;
    } else if (t->state == ISCSI_TASK_RUNNING && !t->aborted) {
        t->aborted = true;
        storstack_cancel(t->lu->h, t, NULL);
    }
}

/* Aborts this session's tasks on lu (NULL: on every LU). */
static void iscsi_abort_all(struct iscsi_conn *c, const struct iscsi_lu *lu)
{
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        if (c->tasks[i].state != ISCSI_TASK_FREE && (!lu || c->tasks[i].lu == lu))
            iscsi_abort_task(c, &c->tasks[i]);
}

/* Sends the waiting TMF response once no aborted task is still down the stack. */
static int iscsi_tmf_check(struct iscsi_conn *c)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    if (!c->tmf.active)
        return 0;
    for (unsigned i = 0; i < ISCSI_TASKS; i++)
        if (c->tasks[i].state == ISCSI_TASK_RUNNING && c->tasks[i].aborted)
            return 0;
    c->tmf.active = false;
    iscsi_bhs_init(bhs, ISCSI_OP_TMF_RSP, ISCSI_FLAG_FINAL, 0, c->tmf.itt);
    bhs[2] = c->tmf.response;
    if (iscsi_conn_send_status(c, bhs, NULL, 0))
        return -EPIPE;
    if (c->tmf.close_after) {
        /* 11.5.1: after TARGET COLD RESET the target drops all of its connections. */
        iscsi_conn_drop_target(c);
        return -ECONNRESET;
    }
    return 0;
}

static uint8_t iscsi_tmf_result(storstack_status_t st)
{
    if (NT_SUCCESS(st))
        return ISCSI_TMF_RSP_COMPLETE;
    if (st == STATUS_INVALID_DEVICE_REQUEST || st == STATUS_NOT_SUPPORTED ||
        st == STATUS_NOT_IMPLEMENTED)
        return ISCSI_TMF_RSP_NOT_SUPPORTED;
    return ISCSI_TMF_RSP_REJECTED;
}

int iscsi_session_tmf(struct iscsi_conn *c, const struct iscsi_pdu *p)
{
    const uint8_t *b = p->bhs;
    uint8_t function = b[1] & 0x7f, response = ISCSI_TMF_RSP_COMPLETE;
    uint32_t ref = iscsi_get32(b + ISCSI_OFF_TTT), refcmdsn = iscsi_get32(b + 32);
    uint32_t cmdsn = iscsi_get32(b + ISCSI_OFF_CMDSN);
    struct iscsi_lu *lu = iscsi_lu_find(c, iscsi_lun_decode(b + ISCSI_OFF_LUN));
    struct iscsi_task *t;
    storstack_status_t st;

    if (c->tmf.active) { /* one at a time: the first is still waiting for its tasks */
        response = ISCSI_TMF_RSP_REJECTED;
        goto answer;
    }
    c->tmf.close_after = false;
    switch (function) {
    case ISCSI_TMF_ABORT_TASK:
        t = iscsi_task_find(c, ref);
        if (t) {
            iscsi_abort_task(c, t);
        } else if (iscsi_sn_lt(refcmdsn, c->exp_cmdsn) || !iscsi_sn_lt(refcmdsn, cmdsn)) {
            /* 11.5.1 c): not a task, and RefCmdSN outside the window */
            response = ISCSI_TMF_RSP_NO_TASK;
        } /* b): in the window, before this request: considered received, complete */
        break;
    case ISCSI_TMF_ABORT_TASK_SET:
    case ISCSI_TMF_CLEAR_TASK_SET:
        /* The task set of this I_T nexus at the LU (TST=000: per initiator). */
        if (!lu) {
            response = ISCSI_TMF_RSP_NO_LUN;
            break;
        }
        iscsi_abort_all(c, lu);
        break;
    case ISCSI_TMF_LUN_RESET:
        if (!lu || !lu->h) {
            response = ISCSI_TMF_RSP_NO_LUN;
            break;
        }
        /* SRB_FUNCTION_RESET_LOGICAL_UNIT: every nexus's tasks there end, with a unit
         * attention (29h/03h) for the others. Ours are aborted once the reset is done (their
         * completions are still queued for this thread, so none is answered); a reset the
         * stack cannot do leaves them running. */
        st = storstack_ioctl(lu->h, IOCTL_STORAGE_RESET_DEVICE, NULL, 0, NULL, 0, NULL);
        response = iscsi_tmf_result(st);
        if (response == ISCSI_TMF_RSP_COMPLETE)
            iscsi_abort_all(c, lu);
        break;
    case ISCSI_TMF_TARGET_WARM_RESET:
    case ISCSI_TMF_TARGET_COLD_RESET:
        for (unsigned i = 0; i < c->nlus; i++) {
            uint8_t path = 0; /* STORAGE_BUS_RESET_REQUEST.PathId */
            if (!c->lus[i].h)
                continue;
            st = storstack_ioctl(c->lus[i].h, IOCTL_STORAGE_RESET_BUS, &path, sizeof(path), NULL, 0,
                                 NULL);
            if (iscsi_tmf_result(st) != ISCSI_TMF_RSP_COMPLETE) {
                response = iscsi_tmf_result(st);
                break;
            }
        }
        if (response == ISCSI_TMF_RSP_COMPLETE) {
            iscsi_abort_all(c, NULL);
            c->tmf.close_after = function == ISCSI_TMF_TARGET_COLD_RESET;
        }
        break;
    case ISCSI_TMF_TASK_REASSIGN:
        response = ISCSI_TMF_RSP_REASSIGN_UNSUPPORTED; /* ERL 2 only */
        break;
    case ISCSI_TMF_CLEAR_ACA: /* NACA is never accepted, so there is never an ACA */
        response = ISCSI_TMF_RSP_NOT_SUPPORTED;
        break;
    default:
        response = ISCSI_TMF_RSP_REJECTED;
        break;
    }
    c->tmf.active = true;
    c->tmf.itt = p->itt;
    c->tmf.response = response;
    return iscsi_tmf_check(c); /* now, or when the last aborted task comes back */

answer:;
    uint8_t bhs[ISCSI_BHS_LEN];
    iscsi_bhs_init(bhs, ISCSI_OP_TMF_RSP, ISCSI_FLAG_FINAL, 0, p->itt);
    bhs[2] = response;
    return iscsi_conn_send_status(c, bhs, NULL, 0);
}
