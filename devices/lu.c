/*
 * The logical unit of the SCSI device server: creation of a direct-access LU, the command
 * dispatcher, the unit attention store and the bounded data-buffer helpers. scsi_lu_execute()
 * looks the opcode (and service action) up in the LU's command table, then applies the checks
 * every command shares, in this order: unit attention (SAM-5 5.14; INQUIRY, REPORT LUNS and
 * REQUEST SENSE pass), unsupported opcode (20/00), bad service action, CDB length, reserved bits
 * from the entry's CDB usage mask (24/00 with a field pointer), NOT READY while stopped (04/02),
 * DATA PROTECT for writes to a write-protected medium (27/00). Only then does the handler run.
 * Everything a command needs lives in the command or the LU: nothing is allocated per command.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/sbc_p.h"

/* ---------------------------------------------------------------------------------------------
 * Data buffer helpers: the only code that touches the initiator's iov.
 * --------------------------------------------------------------------------------------------- */

static uint32_t iov_bytes(const struct scsi_cmd *cmd)
{
    uint64_t sum = 0;
    if (!cmd->iov || cmd->iovcnt <= 0)
        return 0;
    for (int i = 0; i < cmd->iovcnt && sum < cmd->xfer_len; i++)
        sum += cmd->iov[i].iov_len;
    return sum < cmd->xfer_len ? (uint32_t)sum : cmd->xfer_len;
}

uint32_t scsi_in_capacity(const struct scsi_cmd *cmd)
{
    return cmd->dir == SCSI_DIR_IN || cmd->dir == SCSI_DIR_UNSPECIFIED ? iov_bytes(cmd) : 0;
}

uint32_t scsi_out_capacity(const struct scsi_cmd *cmd)
{
    return cmd->dir == SCSI_DIR_OUT || cmd->dir == SCSI_DIR_UNSPECIFIED ? iov_bytes(cmd) : 0;
}

enum iov_op { IOV_TO, IOV_FROM, IOV_CMP };

/* Walks the first `limit` bytes of the iov from byte `offset`, copying to or from `mem` or
 * comparing with it, for at most `len` bytes. Returns the bytes handled; for IOV_CMP, the index of
 * the first byte that differs, or the bytes handled when all are equal. */
static uint32_t iov_walk(const struct scsi_cmd *cmd, uint32_t limit, uint32_t offset, uint8_t *mem,
                         uint32_t len, enum iov_op op)
{
    if (offset >= limit)
        return 0;
    if (len > limit - offset)
        len = limit - offset;
    uint32_t done = 0;
    uint64_t pos = 0;
    for (int i = 0; i < cmd->iovcnt && done < len; i++) {
        uint64_t seg = cmd->iov[i].iov_len;
        if (pos + seg <= offset) {
            pos += seg;
            continue;
        }
        uint64_t skip = offset > pos ? offset - pos : 0;
        uint64_t n = seg - skip;
        if (n > len - done)
            n = len - done;
        uint8_t *base = (uint8_t *)cmd->iov[i].iov_base + skip;
        if (op == IOV_TO) {
            memcpy(base, mem + done, n);
        } else if (op == IOV_FROM) {
            memcpy(mem + done, base, n);
        } else if (memcmp(base, mem + done, n) != 0) {
            uint64_t k = 0;
            while (base[k] == mem[done + k])
                k++;
            return done + (uint32_t)k;
        }
        done += (uint32_t)n;
        offset += (uint32_t)n;
        pos += seg;
    }
    return done;
}

uint32_t scsi_data_in(struct scsi_cmd *cmd, uint32_t offset, const void *src, uint32_t len)
{
    return iov_walk(cmd, scsi_in_capacity(cmd), offset, (uint8_t *)src, len, IOV_TO);
}

uint32_t scsi_data_out(const struct scsi_cmd *cmd, uint32_t offset, void *dst, uint32_t len)
{
    return iov_walk(cmd, scsi_out_capacity(cmd), offset, dst, len, IOV_FROM);
}

uint32_t scsi_data_out_cmp(const struct scsi_cmd *cmd, uint32_t offset, const void *mem,
                           uint32_t len)
{
    return iov_walk(cmd, scsi_out_capacity(cmd), offset, (uint8_t *)mem, len, IOV_CMP);
}

void scsi_check_param_list_length(struct scsi_cmd *cmd, const struct scsi_lu *lu)
{
    scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
}

void scsi_respond(struct scsi_cmd *cmd, const void *data, uint32_t data_len, uint32_t alloc_len)
{
    uint32_t n = data_len < alloc_len ? data_len : alloc_len;
    cmd->transferred = scsi_data_in(cmd, 0, data, n);
    scsi_good(cmd);
}

/* ---------------------------------------------------------------------------------------------
 * Unit attention store (SAM-5 5.14)
 * --------------------------------------------------------------------------------------------- */

/* Called with lu->lock held. */
static void ua_raise_locked(struct scsi_lu *lu, uint8_t asc, uint8_t ascq, const uint64_t *except)
{
    struct scsi_ua_store *ua = &lu->ua;
    uint64_t gen = ++ua->gen;
    struct scsi_ua_event *e = &ua->ev[gen % SCSI_UA_EVENTS];
    atomic_store(&ua->gen_pub, gen);
    e->gen = gen;
    e->asc = asc;
    e->ascq = ascq;
    e->has_except = except != NULL;
    e->except_nexus = except ? *except : 0;
}

void scsi_lu_ua_raise_locked(struct scsi_lu *lu, uint8_t asc, uint8_t ascq,
                             const uint64_t *except_nexus)
{
    ua_raise_locked(lu, asc, ascq, except_nexus);
}

void scsi_lu_ua_raise(struct scsi_lu *lu, uint8_t asc, uint8_t ascq, const uint64_t *except_nexus)
{
    pthread_mutex_lock(&lu->lock);
    ua_raise_locked(lu, asc, ascq, except_nexus);
    pthread_mutex_unlock(&lu->lock);
}

void scsi_lu_set_unit_attention(struct scsi_lu *lu, uint8_t asc, uint8_t ascq)
{
    pthread_mutex_lock(&lu->lock);
    /* 29h is a reset (or power on): it also ends the SPC-2 reservation (SPC-2 5.5.1), supersedes
     * pending reservation unit attentions and ends every prevention of medium removal (SBC-4
     * 5.12). Persistent reservations survive it. */
    if (asc == SCSI_ADSENSE_BUS_RESET) {
        pr_reset_locked(lu);
        sbc_prevent_reset_locked(lu, NULL);
    }
    ua_raise_locked(lu, asc, ascq, NULL);
    pthread_mutex_unlock(&lu->lock);
}

void scsi_lu_nexus_loss(struct scsi_lu *lu, uint64_t nexus, const char *transport_id)
{
    pthread_mutex_lock(&lu->lock);
    pr_nexus_loss_locked(lu, nexus, transport_id);
    sbc_prevent_reset_locked(lu, &nexus);
    pthread_mutex_unlock(&lu->lock);
}

bool scsi_lu_ua_take_cmd(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t *asc,
                         uint8_t *ascq)
{
    return scsi_lu_ua_take(lu, cmd->nexus, asc, ascq) || pr_ua_take(lu, cmd, asc, ascq);
}

static struct scsi_ua_nexus *ua_nexus_find(struct scsi_ua_store *ua, uint64_t nexus)
{
    for (int i = 0; i < SCSI_UA_NEXUS; i++) {
        if (ua->nx[i].used && ua->nx[i].nexus == nexus)
            return &ua->nx[i];
    }
    return NULL;
}

/* A full table forgets the nexus that has seen the least; it will see the retained events again,
 * which is harmless: a unit attention repeated after a loss of state is allowed (SAM-5 5.14). */
static struct scsi_ua_nexus *ua_nexus_new(struct scsi_ua_store *ua, uint64_t nexus)
{
    struct scsi_ua_nexus *victim = &ua->nx[0];
    for (int i = 0; i < SCSI_UA_NEXUS; i++) {
        struct scsi_ua_nexus *n = &ua->nx[i];
        if (!n->used) {
            victim = n;
            break;
        }
        if (n->seen_gen < victim->seen_gen)
            victim = n;
    }
    victim->used = true;
    victim->nexus = nexus;
    victim->seen_gen = 0;
    return victim;
}

bool scsi_lu_ua_take(struct scsi_lu *lu, uint64_t nexus, uint8_t *asc, uint8_t *ascq)
{
    bool found = false;
    struct scsi_ua_store *ua = &lu->ua;
    /* Fast path, no lock: this nexus already saw every event up to the newest one. Reading
     * quiet_gen, then quiet_nexus, then gen_pub (all sequentially consistent) sees a nexus
     * only with the gen it was quiet at, or a newer gen_pub, which sends us the slow way. */
    uint64_t quiet = atomic_load(&ua->quiet_gen);
    if (atomic_load(&ua->quiet_nexus) == nexus && atomic_load(&ua->gen_pub) == quiet)
        return false;
    pthread_mutex_lock(&lu->lock);
    struct scsi_ua_nexus *nx = ua_nexus_find(ua, nexus);
    uint64_t seen = nx ? nx->seen_gen : 0;
    if (ua->gen > seen) {
        uint64_t first = seen + 1;
        if (ua->gen >= SCSI_UA_EVENTS && first <= ua->gen - SCSI_UA_EVENTS)
            first = ua->gen - SCSI_UA_EVENTS + 1;
        /* A reset supersedes every unit attention established before it (SAM-5 5.14). */
        for (uint64_t g = ua->gen; g >= first; g--) {
            if (ua->ev[g % SCSI_UA_EVENTS].asc == SCSI_ADSENSE_BUS_RESET) {
                first = g;
                break;
            }
        }
        uint64_t new_seen = ua->gen;
        for (uint64_t g = first; g <= ua->gen; g++) {
            const struct scsi_ua_event *e = &ua->ev[g % SCSI_UA_EVENTS];
            if (e->has_except && e->except_nexus == nexus)
                continue;
            *asc = e->asc;
            *ascq = e->ascq;
            new_seen = g;
            found = true;
            break;
        }
        if (!nx)
            nx = ua_nexus_new(ua, nexus);
        nx->seen_gen = new_seen;
    }
    if (!found && nx && nx->seen_gen == ua->gen) {
        atomic_store(&ua->quiet_nexus, nexus);
        atomic_store(&ua->quiet_gen, ua->gen);
    }
    pthread_mutex_unlock(&lu->lock);
    return found;
}

/* ---------------------------------------------------------------------------------------------
 * Creation
 * --------------------------------------------------------------------------------------------- */

static int copy_ascii(char *dst, size_t cap, const char *src, const char *dflt)
{
    if (!src)
        src = dflt;
    size_t n = strlen(src);
    if (n > cap)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (src[i] < 0x20 || src[i] > 0x7E)
            return -EINVAL;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static void table_add(struct scsi_lu *lu, const struct scsi_cmd_desc *list)
{
    for (const struct scsi_cmd_desc *d = list; d->handler; d++) {
        if (!lu->op[d->opcode])
            lu->op[d->opcode] = d;
    }
}

int scsi_disk_create(const struct scsi_disk_config *cfg, struct backend *be, struct scsi_lu **out)
{
    static const struct scsi_disk_config defaults = {.block_size = 512, .write_cache = true};
    if (!out || !be)
        return -EINVAL;
    *out = NULL;
    if (!cfg)
        cfg = &defaults;

    uint32_t bs = cfg->block_size ? cfg->block_size : 512;
    if (bs < 512 || bs > 65536 || (bs & (bs - 1)))
        return -EINVAL;
    /* SBC-4 5.20.2: a physical block holds 2^LBPPBE logical blocks. */
    uint32_t pbs = cfg->physical_block_size ? cfg->physical_block_size : bs;
    if (pbs < bs || pbs > 65536 || (pbs & (pbs - 1)))
        return -EINVAL;
    if (be->size < bs)
        return -EINVAL;

    struct scsi_lu *lu = calloc(1, sizeof(*lu));
    if (!lu)
        return -ENOMEM;
    int rc = copy_ascii(lu->vendor, 8, cfg->vendor, "STORSTAK");
    if (!rc)
        rc = copy_ascii(lu->product, 16, cfg->product, "VIRTUAL DISK");
    if (!rc)
        rc = copy_ascii(lu->revision, 4, cfg->revision, "0001");
    if (!rc && cfg->serial) {
        rc = copy_ascii(lu->serial, 64, cfg->serial, NULL);
    } else if (!rc) {
        snprintf(lu->serial, sizeof(lu->serial), "%016" PRIX64, cfg->device_id);
    }
    if (rc) {
        free(lu);
        return rc;
    }

    lu->be = be;
    lu->device_type = DIRECT_ACCESS_DEVICE;
    lu->device_id = cfg->device_id;
    lu->block_size = bs;
    lu->block_shift = (uint32_t)__builtin_ctz(bs);
    lu->nblocks = be->size >> lu->block_shift;
    lu->max_transfer_blocks = cfg->max_transfer_blocks;
    lu->lbppb_exp = (uint8_t)(__builtin_ctz(pbs) - lu->block_shift);
    lu->read_only = cfg->read_only || be->caps.read_only;
    lu->removable = cfg->removable;
    lu->default_wce = cfg == &defaults ? true : cfg->write_cache;
    atomic_init(&lu->wce, lu->default_wce);
    atomic_init(&lu->d_sense, false);
    atomic_init(&lu->stopped, false);
    atomic_init(&lu->no_medium, false);
    atomic_init(&lu->verify_busy, 0);
    atomic_init(&lu->swp, false);
    atomic_init(&lu->pr.active, false);
    atomic_init(&lu->pr.ua_count, 0);

    lu->verify_buf = malloc((size_t)SCSI_VERIFY_SLOTS * SCSI_VERIFY_SLOT_SIZE);
    if (!lu->verify_buf || pthread_mutex_init(&lu->lock, NULL) != 0) {
        free(lu->verify_buf);
        free(lu);
        return -ENOMEM;
    }

    table_add(lu, spc_commands);
    table_add(lu, sbc_commands);
    if ((rc = sbc_lu_init(lu)) != 0) {
        pthread_mutex_destroy(&lu->lock);
        free(lu->verify_buf);
        free(lu);
        return rc;
    }
    lu->type_destroy = sbc_lu_fini;

    /* Persistent reservations kept with APTPL come back with the LU (SPC-4 5.9.5). */
    rc = pr_load(lu);
    if (rc) {
        lu->type_destroy(lu);
        pthread_mutex_destroy(&lu->lock);
        free(lu->verify_buf);
        free(lu);
        return rc;
    }
    /* Copies issued to any LU may now name this one by its NAA designator. */
    xcopy_register(lu);

    /* The power-on unit attention every I_T nexus sees once (SAM-5 6.3.1). */
    ua_raise_locked(lu, SCSI_ADSENSE_BUS_RESET, SCSI_SENSEQ_POWER_ON_RESET, NULL);
    *out = lu;
    return 0;
}

int scsi_lu_alloc(uint8_t device_type, const char *vendor, const char *product,
                  const char *revision, const char *serial, uint64_t device_id,
                  struct scsi_lu **out)
{
    struct scsi_lu *lu = calloc(1, sizeof(*lu));
    if (!lu)
        return -ENOMEM;
    int rc = copy_ascii(lu->vendor, 8, vendor, "STORSTAK");
    if (!rc)
        rc = copy_ascii(lu->product, 16, product, "VIRTUAL DISK");
    if (!rc)
        rc = copy_ascii(lu->revision, 4, revision, "0001");
    if (!rc && serial)
        rc = copy_ascii(lu->serial, 64, serial, NULL);
    else if (!rc)
        snprintf(lu->serial, sizeof(lu->serial), "%016" PRIX64, device_id);
    if (rc || pthread_mutex_init(&lu->lock, NULL) != 0) {
        free(lu);
        return rc ? rc : -ENOMEM;
    }
    lu->device_type = device_type;
    lu->device_id = device_id;
    atomic_init(&lu->wce, false);
    atomic_init(&lu->d_sense, false);
    atomic_init(&lu->stopped, false);
    atomic_init(&lu->no_medium, false);
    atomic_init(&lu->verify_busy, 0);
    ua_raise_locked(lu, SCSI_ADSENSE_BUS_RESET, SCSI_SENSEQ_POWER_ON_RESET, NULL);
    *out = lu;
    return 0;
}

void scsi_lu_add_commands(struct scsi_lu *lu, const struct scsi_cmd_desc *list)
{
    table_add(lu, list);
}

void scsi_lu_destroy(struct scsi_lu *lu)
{
    if (!lu)
        return;
    /* no copy may still be reading or writing this LU when its state goes */
    xcopy_unregister(lu);
    if (lu->type_destroy)
        lu->type_destroy(lu);
    pthread_mutex_destroy(&lu->lock);
    free(lu->verify_buf);
    free(lu);
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 * --------------------------------------------------------------------------------------------- */

void scsi_cmd_complete(struct scsi_cmd *cmd)
{
    if (cmd->done)
        cmd->done(cmd);
}

/*
 * The bit pointer for an unsupported bit of CDB byte i (SPC-4 4.5.2.4.2: the most significant bit
 * of the field in error). The field is the run of bits the entry does not look at that holds the
 * bit, up to the next field boundary: FMTPINFO 01b of FORMAT UNIT points at bit 7, not 6.
 */
int scsi_usage_field_msb(const uint8_t *usage, const uint8_t *field_msb, uint8_t cdb_len, uint8_t i,
                         int bit)
{
    /* SAM-5 5.2 CONTROL: vendor specific 7..6, reserved 5..3, NACA 2, obsolete 1 and 0. */
    uint8_t msb = i == cdb_len - 1 ? 0x27 : field_msb ? field_msb[i] : 0;
    while (bit < 7 && !(msb & (1u << bit)) && !(usage[i] & (1u << (bit + 1))))
        bit++;
    return bit;
}

int scsi_field_msb(const struct scsi_cmd_desc *d, uint8_t i, int bit)
{
    return scsi_usage_field_msb(d->usage, d->field_msb, d->cdb_len, i, bit);
}

/* The table entry for the CDB, or NULL. An opcode with service actions whose service action is
 * not supported returns the opcode's first entry with flags SCSI_F_SA and sa != cdb's: the caller
 * sees the mismatch and reports the SERVICE ACTION field. */
const struct scsi_cmd_desc *scsi_lu_lookup(const struct scsi_lu *lu, const uint8_t *cdb,
                                           uint8_t cdb_len)
{
    const struct scsi_cmd_desc *d = lu->op[cdb[0]];
    if (!d || !(d->flags & SCSI_F_SA) || cdb_len < 2)
        return d;
    for (const struct scsi_cmd_desc *e = d; e->handler && e->opcode == cdb[0]; e++) {
        if (e->sa == (cdb[1] & 0x1F))
            return e;
    }
    return d;
}

void scsi_lu_execute(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    cmd->status = SAM_STAT_GOOD;
    cmd->sense_len = 0;
    cmd->transferred = 0;
    struct scsi_cmd_priv *p = scsi_priv(cmd);
    memset(p, 0, sizeof(*p));
    p->lu = lu;
    p->slot = -1;

    if (!cmd->cdb || cmd->cdb_len == 0) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
        scsi_cmd_complete(cmd);
        return;
    }
    const uint8_t *cdb = cmd->cdb;
    const struct scsi_cmd_desc *d = scsi_lu_lookup(lu, cdb, cmd->cdb_len);

    uint8_t asc, ascq;
    if ((!d || !(d->flags & SCSI_F_UA_OK)) && scsi_lu_ua_take_cmd(lu, cmd, &asc, &ascq)) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_UNIT_ATTENTION, asc, ascq);
        scsi_cmd_complete(cmd);
        return;
    }
    if (!d) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_ILLEGAL_COMMAND, 0);
        scsi_cmd_complete(cmd);
        return;
    }
    if (cmd->cdb_len < d->cdb_len) {
        /* The CDB ends before the fields the opcode defines: no single field is at fault. */
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_CDB, 0);
        scsi_cmd_complete(cmd);
        return;
    }
    if ((d->flags & SCSI_F_SA) && d->sa != (cdb[1] & 0x1F)) {
        scsi_check_cdb_field(cmd, lu, 1, 4);
        scsi_cmd_complete(cmd);
        return;
    }
    for (uint8_t i = 1; i < d->cdb_len; i++) {
        uint8_t bad = cdb[i] & (uint8_t)~d->usage[i];
        if (bad) {
            scsi_check_cdb_field(cmd, lu, i, scsi_field_msb(d, i, scsi_high_bit(bad)));
            scsi_cmd_complete(cmd);
            return;
        }
    }
    if (atomic_load_explicit(&lu->pr.active, memory_order_acquire) && pr_conflict(lu, cmd, d)) {
        scsi_cmd_complete(cmd);
        return;
    }
    if ((d->flags & SCSI_F_MEDIA) && atomic_load_explicit(&lu->stopped, memory_order_acquire)) {
        /* An ejected medium is stopped too (sbc.c): MEDIUM NOT PRESENT - TRAY OPEN. */
        if (atomic_load_explicit(&lu->no_medium, memory_order_acquire))
            scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_NO_MEDIA_IN_DEVICE,
                              SBC_SENSEQ_TRAY_OPEN);
        else
            scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_LUN_NOT_READY,
                              SCSI_SENSEQ_INIT_COMMAND_REQUIRED);
        scsi_cmd_complete(cmd);
        return;
    }
    if ((d->flags & SCSI_F_WRITE) && lu->read_only) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT,
                          SCSI_SENSEQ_WRITE_PROTECT);
        scsi_cmd_complete(cmd);
        return;
    }
    /* The control mode page's SWP (SPC-4 7.5.8): LOGICAL UNIT SOFTWARE WRITE PROTECTED. */
    if ((d->flags & SCSI_F_WRITE) && atomic_load_explicit(&lu->swp, memory_order_relaxed)) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_DATA_PROTECT, SCSI_ADSENSE_WRITE_PROTECT, 0x02);
        scsi_cmd_complete(cmd);
        return;
    }
    if (d->handler(lu, cmd) == SCSI_DONE)
        scsi_cmd_complete(cmd);
}
