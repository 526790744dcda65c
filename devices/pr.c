/*
 * Reservations of a logical unit: SPC-2 RESERVE(6)/(10) and RELEASE(6)/(10), and SPC-4 persistent
 * reservations, PERSISTENT RESERVE IN (6.16: READ KEYS, READ RESERVATION, REPORT CAPABILITIES,
 * READ FULL STATUS) and PERSISTENT RESERVE OUT (6.17: REGISTER, REGISTER AND IGNORE EXISTING KEY,
 * RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT AND ABORT, REGISTER AND MOVE) with the six
 * reservation types, ALL_TG_PT, SPEC_I_PT with iSCSI TransportIDs (7.6.4.6) and APTPL.
 *
 * An initiator is identified by its TransportID when the command carries one (so a registrant
 * named by SPEC_I_PT is recognised when it logs in), else by its I_T nexus number. A TransportID
 * of the iSCSI name alone (format 00b) names every session of that initiator. The LU lock guards
 * all of it; the dispatcher reads pr.active without the lock and takes it only while a
 * reservation or a reservation unit attention exists.
 *
 * PERSISTENT RESERVE OUT works on a copy of the persistent state and commits it only once it is
 * stored (APTPL): a failed store changes nothing. Unit attentions raised by it (2Ah/03h
 * RESERVATIONS PREEMPTED, 2Ah/04h RESERVATIONS RELEASED, 2Ah/05h REGISTRATIONS PREEMPTED) are
 * queued per initiator in pr.ua and reported like every other unit attention.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "devices/scsi_lu_p.h"

enum {
    PR_WRITE_EXCLUSIVE = 0x1,
    PR_EXCLUSIVE_ACCESS = 0x3,
    PR_WRITE_EXCLUSIVE_RO = 0x5,
    PR_EXCLUSIVE_ACCESS_RO = 0x6,
    PR_WRITE_EXCLUSIVE_AR = 0x7,
    PR_EXCLUSIVE_ACCESS_AR = 0x8,
};

enum {
    PRIN_READ_KEYS = 0,
    PRIN_READ_RESERVATION = 1,
    PRIN_REPORT_CAPABILITIES = 2,
    PRIN_READ_FULL_STATUS = 3,
};

enum {
    PROUT_REGISTER = 0,
    PROUT_RESERVE = 1,
    PROUT_RELEASE = 2,
    PROUT_CLEAR = 3,
    PROUT_PREEMPT = 4,
    PROUT_PREEMPT_AND_ABORT = 5,
    PROUT_REGISTER_AND_IGNORE = 6,
    PROUT_REGISTER_AND_MOVE = 7,
};

#define ASC_RESERVATIONS             0x2A
#define ASCQ_RESERVATIONS_PREEMPTED  0x03
#define ASCQ_RESERVATIONS_RELEASED   0x04
#define ASCQ_REGISTRATIONS_PREEMPTED 0x05
#define ASC_INVALID_RELEASE          0x26 /* with ASCQ 04h */
#define ASC_INSUFFICIENT_RESOURCES   0x55 /* with ASCQ 04h: registration resources */
#define PROTOCOL_ISCSI               0x5
#define PROTOCOL_NONE                0xF
#define PR_PARAM_MAX                 4096 /* longest PERSISTENT RESERVE OUT list accepted */
#define PR_META_NAME                 "pr"

/* ---- identities ------------------------------------------------------------------------- */

/* The iSCSI name part of a text TransportID: up to ",i,0x" (any case) or the whole string. */
static size_t tid_name_len(const char *t)
{
    for (size_t i = 0; t[i]; i++) {
        if (t[i] == ',' && strncasecmp(t + i, ",i,0x", 5) == 0)
            return i;
    }
    return strlen(t);
}

/* iSCSI names compare without regard to case (RFC 3722 normalises them to lower case), and a name
 * without an ISID (format 00b) stands for every session of that initiator. */
static bool tid_eq(const char *a, const char *b)
{
    size_t la = tid_name_len(a), lb = tid_name_len(b);
    if (la != lb || strncasecmp(a, b, la) != 0)
        return false;
    if (!a[la] || !b[lb])
        return true;
    return strcasecmp(a + la, b + lb) == 0;
}

static const char *cmd_tid(const struct scsi_cmd *cmd)
{
    return cmd->transport_id && cmd->transport_id[0] ? cmd->transport_id : NULL;
}

static bool ident_match(const struct scsi_ident *id, uint64_t nexus, const char *tid)
{
    if (tid)
        return id->tid[0] && tid_eq(id->tid, tid);
    return !id->tid[0] && id->nexus == nexus;
}

static bool ident_same(const struct scsi_ident *a, const struct scsi_ident *b)
{
    return ident_match(a, b->nexus, b->tid[0] ? b->tid : NULL);
}

static void ident_of(const struct scsi_cmd *cmd, struct scsi_ident *id)
{
    const char *tid = cmd_tid(cmd);
    id->nexus = cmd->nexus;
    id->tid[0] = '\0';
    if (tid)
        snprintf(id->tid, sizeof(id->tid), "%s", tid);
}

void scsi_ident_of(const struct scsi_cmd *cmd, struct scsi_ident *id)
{
    ident_of(cmd, id);
}

bool scsi_ident_match(const struct scsi_ident *id, const struct scsi_cmd *cmd)
{
    return ident_match(id, cmd->nexus, cmd_tid(cmd));
}

static int reg_find(const struct scsi_pr_state *s, uint64_t nexus, const char *tid)
{
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        if (s->reg[i].used && ident_match(&s->reg[i].id, nexus, tid))
            return i;
    }
    return -1;
}

static int reg_find_cmd(const struct scsi_pr_state *s, const struct scsi_cmd *cmd)
{
    return reg_find(s, cmd->nexus, cmd_tid(cmd));
}

static bool type_all_registrants(uint8_t type)
{
    return type == PR_WRITE_EXCLUSIVE_AR || type == PR_EXCLUSIVE_ACCESS_AR;
}

static bool type_registrants(uint8_t type)
{
    return type == PR_WRITE_EXCLUSIVE_RO || type == PR_EXCLUSIVE_ACCESS_RO ||
           type_all_registrants(type);
}

static bool type_valid(uint8_t type)
{
    return type == PR_WRITE_EXCLUSIVE || type == PR_EXCLUSIVE_ACCESS ||
           type == PR_WRITE_EXCLUSIVE_RO || type == PR_EXCLUSIVE_ACCESS_RO ||
           type == PR_WRITE_EXCLUSIVE_AR || type == PR_EXCLUSIVE_ACCESS_AR;
}

static bool is_holder(const struct scsi_pr_state *s, int r)
{
    if (!s->reserved || r < 0)
        return false;
    return type_all_registrants(s->type) || s->holder == r;
}

static void update_active(struct scsi_lu *lu)
{
    struct scsi_pr *pr = &lu->pr;
    atomic_store(&pr->active, pr->s.reserved || pr->spc2 || atomic_load(&pr->ua_count) > 0);
}

/* ---- reservation unit attentions ---------------------------------------------------------- */

static void ua_push(struct scsi_pr *pr, const struct scsi_ident *id, uint8_t ascq)
{
    struct scsi_pr_ua *slot = NULL;
    for (int i = 0; i < SCSI_PR_MAX_UA; i++) {
        struct scsi_pr_ua *u = &pr->ua[i];
        if (u->used && u->ascq == ascq && ident_same(&u->id, id))
            return; /* already pending */
        if (!u->used && !slot)
            slot = u;
    }
    if (!slot)
        return; /* full: SAM-5 5.14 lets a device drop a unit attention it cannot keep */
    slot->used = true;
    slot->ascq = ascq;
    slot->id = *id;
    atomic_fetch_add(&pr->ua_count, 1);
}

bool pr_ua_take(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t *asc, uint8_t *ascq)
{
    struct scsi_pr *pr = &lu->pr;
    if (atomic_load(&pr->ua_count) == 0)
        return false;
    bool found = false;
    pthread_mutex_lock(&lu->lock);
    for (int i = 0; i < SCSI_PR_MAX_UA; i++) {
        struct scsi_pr_ua *u = &pr->ua[i];
        if (u->used && ident_match(&u->id, cmd->nexus, cmd_tid(cmd))) {
            *asc = ASC_RESERVATIONS;
            *ascq = u->ascq;
            u->used = false;
            atomic_fetch_sub(&pr->ua_count, 1);
            found = true;
            break;
        }
    }
    update_active(lu);
    pthread_mutex_unlock(&lu->lock);
    return found;
}

void pr_reset_locked(struct scsi_lu *lu)
{
    struct scsi_pr *pr = &lu->pr;
    pr->spc2 = false;
    for (int i = 0; i < SCSI_PR_MAX_UA; i++)
        pr->ua[i].used = false;
    atomic_store(&pr->ua_count, 0);
    update_active(lu);
}

void pr_nexus_loss_locked(struct scsi_lu *lu, uint64_t nexus, const char *transport_id)
{
    struct scsi_pr *pr = &lu->pr;
    const char *tid = transport_id && transport_id[0] ? transport_id : NULL;
    if (pr->spc2 && ident_match(&pr->spc2_holder, nexus, tid)) {
        pr->spc2 = false;
        update_active(lu);
    }
}

/* ---- conflicts (SPC-4 5.9.1 table 61; SPC-2 5.5.1) ----------------------------------------- */

enum pr_class { PR_ALLOW, PR_READ, PR_WRITE };

/* How a command meets a Write Exclusive / Exclusive Access reservation held by someone else:
 * allowed, allowed only under Write Exclusive (reads the medium), or conflicting (changes it). */
static enum pr_class pr_class_of(const uint8_t *cdb, const struct scsi_cmd_desc *d)
{
    switch (cdb[0]) {
    case SCSIOP_INQUIRY:
    case SCSIOP_REQUEST_SENSE:
    case SCSIOP_REPORT_LUNS:
    case SCSIOP_TEST_UNIT_READY:
    case SCSIOP_READ_CAPACITY:
    case SCSIOP_PERSISTENT_RESERVE_IN:
    case SCSIOP_PERSISTENT_RESERVE_OUT: /* each service action checks its own registration */
    case SCSIOP_MAINTENANCE_IN:         /* REPORT SUPPORTED OPCODES/TMFs, TARGET PORT GROUPS */
    case SCSIOP_RESERVE_UNIT:           /* 5.9.3 exceptions, in the handler */
    case SCSIOP_RELEASE_UNIT:
    case SCSIOP_RESERVE_UNIT10:
    case SCSIOP_RELEASE_UNIT10:
    case 0x4D: /* LOG SENSE */
        return PR_ALLOW;
    case 0x9E: /* SERVICE ACTION IN(16): READ CAPACITY(16) allowed, GET LBA STATUS reads */
        return (cdb[1] & 0x1F) == 0x10 ? PR_ALLOW : PR_READ;
    case SCSIOP_MODE_SELECT:
    case SCSIOP_MODE_SELECT10:
    case SCSIOP_SYNCHRONIZE_CACHE:
    case 0x91: /* SYNCHRONIZE CACHE(16) */
    case SCSIOP_START_STOP_UNIT:
    case SCSIOP_EXTENDED_COPY:
    case 0x4C: /* LOG SELECT */
    case 0x04: /* FORMAT UNIT */
    case 0x48: /* SANITIZE */
    case 0x3B: /* WRITE BUFFER */
        return PR_WRITE;
    case 0x1E: /* PREVENT ALLOW MEDIUM REMOVAL: PREVENT=0 is allowed */
        return (cdb[4] & 0x03) ? PR_WRITE : PR_ALLOW;
    default:
        return d && (d->flags & SCSI_F_WRITE) ? PR_WRITE : PR_READ;
    }
}

static bool spc2_allowed(uint8_t op)
{
    return op == SCSIOP_INQUIRY || op == SCSIOP_REQUEST_SENSE || op == SCSIOP_REPORT_LUNS ||
           op == SCSIOP_RELEASE_UNIT || op == SCSIOP_RELEASE_UNIT10 || op == SCSIOP_MAINTENANCE_IN;
}

bool pr_conflict(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_cmd_desc *d)
{
    struct scsi_pr *pr = &lu->pr;
    bool conflict = false;
    pthread_mutex_lock(&lu->lock);
    if (pr->spc2) {
        if (!ident_match(&pr->spc2_holder, cmd->nexus, cmd_tid(cmd)) && !spc2_allowed(cmd->cdb[0]))
            conflict = true;
    } else if (pr->s.reserved) {
        enum pr_class c = pr_class_of(cmd->cdb, d);
        int r = reg_find_cmd(&pr->s, cmd);
        if (c != PR_ALLOW && !is_holder(&pr->s, r)) {
            bool registered_ok = type_registrants(pr->s.type) && r >= 0;
            bool exclusive_access = pr->s.type == PR_EXCLUSIVE_ACCESS ||
                                    pr->s.type == PR_EXCLUSIVE_ACCESS_RO ||
                                    pr->s.type == PR_EXCLUSIVE_ACCESS_AR;
            if (!registered_ok && (c == PR_WRITE || exclusive_access))
                conflict = true;
        }
    }
    pthread_mutex_unlock(&lu->lock);
    if (conflict) {
        cmd->status = SAM_STAT_RESERVATION_CONFLICT;
        cmd->sense_len = 0;
    }
    return conflict;
}

static int reservation_conflict(struct scsi_cmd *cmd)
{
    cmd->status = SAM_STAT_RESERVATION_CONFLICT;
    cmd->sense_len = 0;
    return SCSI_DONE;
}

/* ---- SPC-2 RESERVE / RELEASE --------------------------------------------------------------- */

static bool any_registration(const struct scsi_pr_state *s)
{
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        if (s->reg[i].used)
            return true;
    }
    return false;
}

/* SPC-4 5.9.3 (CRH=1): with persistent reservations in use, RESERVE and RELEASE from a holder, or
 * from a registrant under a registrants-only or all-registrants reservation, complete with GOOD
 * and do nothing; from anyone else they conflict. Returns true when the command is decided. */
static bool crh_exception(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const struct scsi_pr_state *s = &lu->pr.s;
    int r = reg_find_cmd(s, cmd);
    if (r >= 0) {
        if (is_holder(s, r) || (s->reserved && type_registrants(s->type)))
            scsi_good(cmd);
        else
            reservation_conflict(cmd);
        return true;
    }
    if (any_registration(s)) {
        reservation_conflict(cmd);
        return true;
    }
    return false;
}

/* RESERVE(6)/(10) (SPC-2 7.21, 7.22): the logical unit for this I_T nexus. Third-party and
 * extent reservations are not supported: their bits are reserved in the usage masks. */
int spc_reserve(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct scsi_pr *pr = &lu->pr;
    pthread_mutex_lock(&lu->lock);
    if (!crh_exception(lu, cmd)) {
        if (pr->spc2 && !ident_match(&pr->spc2_holder, cmd->nexus, cmd_tid(cmd))) {
            reservation_conflict(cmd);
        } else {
            pr->spc2 = true;
            ident_of(cmd, &pr->spc2_holder);
            update_active(lu);
            scsi_good(cmd);
        }
    }
    pthread_mutex_unlock(&lu->lock);
    return SCSI_DONE;
}

/* RELEASE(6)/(10) (SPC-2 7.17, 7.18): releases the holder's reservation; from another I_T
 * nexus it completes with GOOD and changes nothing. */
int spc_release(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct scsi_pr *pr = &lu->pr;
    pthread_mutex_lock(&lu->lock);
    if (!crh_exception(lu, cmd)) {
        if (pr->spc2 && ident_match(&pr->spc2_holder, cmd->nexus, cmd_tid(cmd))) {
            pr->spc2 = false;
            update_active(lu);
        }
        scsi_good(cmd);
    }
    pthread_mutex_unlock(&lu->lock);
    return SCSI_DONE;
}

/* ---- TransportIDs (SPC-4 7.6.4) ------------------------------------------------------------ */

/* Binary TransportID of a registrant: iSCSI (protocol 5h) format 01b "name,i,0xISID" or format
 * 00b "name"; a registrant known only by its I_T nexus (the host's own port) is given as protocol
 * Fh ("no specific protocol") with the nexus number big-endian in bytes 4..11. Returns the length
 * (a multiple of 4, at least 24), 0 when it does not fit cap. */
static uint32_t tid_to_bin(const struct scsi_ident *id, uint8_t *p, uint32_t cap)
{
    if (!id->tid[0]) {
        if (cap < 24)
            return 0;
        memset(p, 0, 24);
        p[0] = PROTOCOL_NONE;
        scsi_put_be64(p + 4, id->nexus);
        return 24;
    }
    size_t n = strlen(id->tid) + 1;
    uint32_t len = (uint32_t)((n + 3) & ~(size_t)3);
    if (len < 20)
        len = 20;
    len += 4;
    if (cap < len)
        return 0;
    memset(p, 0, len);
    bool isid = id->tid[tid_name_len(id->tid)] != '\0';
    p[0] = (uint8_t)((isid ? 0x40 : 0x00) | PROTOCOL_ISCSI);
    scsi_put_be16(p + 2, (uint16_t)(len - 4));
    memcpy(p + 4, id->tid, n - 1);
    return len;
}

/* Parses the binary TransportID at p[0..avail) (offset `off` in the parameter list) into id.
 * Returns its length, or 0 with the sense set (INVALID FIELD IN PARAMETER LIST, or PARAMETER
 * LIST LENGTH ERROR when it runs past the list). Only iSCSI TransportIDs are accepted: the
 * only transport that names initiators to this device server is iSCSI. */
static uint32_t tid_from_bin(struct scsi_lu *lu, struct scsi_cmd *cmd, const uint8_t *p,
                             uint32_t avail, uint32_t off, struct scsi_ident *id)
{
    if (avail < 4) {
        scsi_check_param_list_length(cmd, lu);
        return 0;
    }
    uint8_t fmt = p[0] >> 6;
    if ((p[0] & 0x0F) != PROTOCOL_ISCSI) {
        scsi_check_param_field(cmd, lu, (uint16_t)off, 3);
        return 0;
    }
    if (fmt > 1) {
        scsi_check_param_field(cmd, lu, (uint16_t)off, 7);
        return 0;
    }
    if (p[0] & 0x30) {
        scsi_check_param_field(cmd, lu, (uint16_t)off, 5);
        return 0;
    }
    uint32_t alen = scsi_get_be16(p + 2);
    if (alen < 20 || alen % 4) {
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 2), -1);
        return 0;
    }
    if (4 + alen > avail) {
        scsi_check_param_list_length(cmd, lu);
        return 0;
    }
    const char *name = (const char *)p + 4;
    size_t n = strnlen(name, alen);
    if (n == alen || n == 0 || n >= SCSI_TID_MAX) {
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 4), -1);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (name[i] < 0x21 || name[i] > 0x7E) {
            scsi_check_param_field(cmd, lu, (uint16_t)(off + 4 + i), -1);
            return 0;
        }
    }
    id->nexus = 0;
    memcpy(id->tid, name, n);
    id->tid[n] = '\0';
    size_t nl = tid_name_len(id->tid);
    /* Format 01b carries ",i,0x" and the ISID; format 00b the name alone. */
    if ((fmt == 1) != (nl != n) || nl == 0) {
        scsi_check_param_field(cmd, lu, (uint16_t)off, 7);
        return 0;
    }
    return 4 + alen;
}

/* ---- persistence (APTPL) ------------------------------------------------------------------ */

/* Blob: "SSPR" version 1, generation, type, flags (bit0 reserved, bit1 APTPL), holder, count,
 * then per registration: key (8), flags (bit0 ALL_TG_PT), nexus (8), TransportID length (2),
 * TransportID. Integers big-endian. */
#define PR_BLOB_MAX (16 + SCSI_PR_MAX_REG * (8 + 1 + 8 + 2 + SCSI_TID_MAX))

static size_t pr_serialize(const struct scsi_pr_state *s, uint8_t *b)
{
    memcpy(b, "SSPR", 4);
    b[4] = 1;
    scsi_put_be32(b + 5, s->generation);
    b[9] = s->type;
    b[10] = (uint8_t)((s->reserved ? 1 : 0) | (s->aptpl ? 2 : 0));
    scsi_put_be16(b + 11, (uint16_t)s->holder);
    size_t pos = 15, count = 0;
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        const struct scsi_pr_reg *r = &s->reg[i];
        if (!r->used)
            continue;
        size_t tl = strlen(r->id.tid);
        scsi_put_be64(b + pos, r->key);
        b[pos + 8] = r->all_tg_pt ? 1 : 0;
        scsi_put_be64(b + pos + 9, r->id.nexus);
        scsi_put_be16(b + pos + 17, (uint16_t)tl);
        memcpy(b + pos + 19, r->id.tid, tl);
        /* the holder is stored as its position among the stored registrations */
        if (s->reserved && s->holder == i)
            scsi_put_be16(b + 11, (uint16_t)count);
        pos += 19 + tl;
        count++;
    }
    scsi_put_be16(b + 13, (uint16_t)count);
    return pos;
}

static int pr_deserialize(struct scsi_pr_state *s, const uint8_t *b, size_t len)
{
    memset(s, 0, sizeof(*s));
    if (len < 15 || memcmp(b, "SSPR", 4) != 0 || b[4] != 1)
        return -EINVAL;
    s->generation = scsi_get_be32(b + 5);
    s->type = b[9];
    s->reserved = b[10] & 1;
    s->aptpl = b[10] & 2;
    uint16_t holder = scsi_get_be16(b + 11);
    uint16_t count = scsi_get_be16(b + 13);
    if (count > SCSI_PR_MAX_REG || (s->reserved && !type_valid(s->type)))
        return -EINVAL;
    size_t pos = 15;
    for (uint16_t i = 0; i < count; i++) {
        if (len - pos < 19)
            return -EINVAL;
        struct scsi_pr_reg *r = &s->reg[i];
        uint16_t tl = scsi_get_be16(b + pos + 17);
        if (tl >= SCSI_TID_MAX || len - pos - 19 < tl)
            return -EINVAL;
        r->used = true;
        r->key = scsi_get_be64(b + pos);
        r->all_tg_pt = b[pos + 8] & 1;
        r->id.nexus = scsi_get_be64(b + pos + 9);
        memcpy(r->id.tid, b + pos + 19, tl);
        r->id.tid[tl] = '\0';
        pos += 19 + tl;
    }
    if (s->reserved && !type_all_registrants(s->type) && holder >= count)
        return -EINVAL;
    s->holder = (int16_t)holder;
    return 0;
}

int pr_load(struct scsi_lu *lu)
{
    if (!be_has_meta(lu->be))
        return 0;
    uint8_t *b = malloc(PR_BLOB_MAX);
    if (!b)
        return -ENOMEM;
    size_t len = 0;
    int rc = lu->be->ops->meta_load(lu->be, PR_META_NAME, b, PR_BLOB_MAX, &len);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc == 0) {
        struct scsi_pr_state *s = malloc(sizeof(*s));
        rc = s ? pr_deserialize(s, b, len) : -ENOMEM;
        /* Only an APTPL state survives a power loss (SPC-4 5.9.5). */
        if (rc == 0 && s->aptpl) {
            lu->pr.s = *s;
            update_active(lu);
        }
        free(s);
    }
    free(b);
    return rc;
}

/* Stores s when APTPL is (or was) in effect; a state without APTPL removes the blob. */
static int pr_store(struct scsi_lu *lu, const struct scsi_pr_state *s, bool was_aptpl)
{
    if (!s->aptpl && !was_aptpl)
        return 0;
    if (!be_has_meta(lu->be))
        return s->aptpl ? -EOPNOTSUPP : 0;
    if (!s->aptpl)
        return lu->be->ops->meta_store(lu->be, PR_META_NAME, NULL, 0);
    uint8_t *b = malloc(PR_BLOB_MAX);
    if (!b)
        return -ENOMEM;
    size_t len = pr_serialize(s, b);
    int rc = lu->be->ops->meta_store(lu->be, PR_META_NAME, b, len);
    free(b);
    return rc;
}

/* ---- PERSISTENT RESERVE IN (SPC-4 6.16) --------------------------------------------------- */

static void put_scope_type(uint8_t *p, uint8_t type)
{
    *p = type & 0x0F; /* SCOPE 0h: LU_SCOPE */
}

int spc_pr_in(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t sa = cdb[1] & 0x1F;
    uint32_t alloc = scsi_get_be16(cdb + 7);
    /* READ FULL STATUS of 64 registrants with the longest TransportIDs: 64 * (24 + 260) + 8. */
    static const uint32_t cap = 8 + SCSI_PR_MAX_REG * (24 + SCSI_TID_MAX + 4);
    uint8_t *buf = malloc(cap);
    if (!buf) {
        cmd->status = SAM_STAT_BUSY;
        return SCSI_DONE;
    }
    memset(buf, 0, cap);
    uint32_t len = 8;
    pthread_mutex_lock(&lu->lock);
    const struct scsi_pr_state *s = &lu->pr.s;
    scsi_put_be32(buf, s->generation);
    switch (sa) {
    case PRIN_READ_KEYS:
        for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
            if (!s->reg[i].used)
                continue;
            scsi_put_be64(buf + len, s->reg[i].key);
            len += 8;
        }
        scsi_put_be32(buf + 4, len - 8);
        break;
    case PRIN_READ_RESERVATION:
        if (s->reserved) {
            /* An all-registrants reservation has RESERVATION KEY zero (SPC-4 6.16.3.3). */
            if (!type_all_registrants(s->type))
                scsi_put_be64(buf + 8, s->reg[s->holder].key);
            put_scope_type(buf + 21, s->type);
            len += 16;
        }
        scsi_put_be32(buf + 4, len - 8);
        break;
    case PRIN_REPORT_CAPABILITIES:
        memset(buf, 0, 8);
        len = 8;
        scsi_put_be16(buf, 8);
        /* CRH (5.9.3 exceptions), SIP_C, ATP_C, PTPL_C when the backend keeps metadata */
        buf[2] = 0x10 | 0x08 | 0x04 | (be_has_meta(lu->be) ? 0x01 : 0x00);
        /* TMV; ALLOW COMMANDS 001b: TEST UNIT READY passes Write Exclusive and Exclusive
         * Access reservations; PTPL_A */
        buf[3] = (uint8_t)(0x80 | (0x1 << 4) | (s->aptpl ? 0x01 : 0x00));
        buf[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
        buf[5] = 0x01;                             /* EX_AC_AR */
        break;
    case PRIN_READ_FULL_STATUS:
        for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
            const struct scsi_pr_reg *r = &s->reg[i];
            if (!r->used)
                continue;
            uint8_t *d = buf + len;
            scsi_put_be64(d, r->key);
            d[12] = (uint8_t)((r->all_tg_pt ? 0x02 : 0) | (is_holder(s, i) ? 0x01 : 0));
            if (is_holder(s, i))
                put_scope_type(d + 13, s->type);
            scsi_put_be16(d + 18, 1); /* RELATIVE TARGET PORT IDENTIFIER: our one port */
            uint32_t tl = tid_to_bin(&r->id, d + 24, cap - len - 24);
            scsi_put_be32(d + 20, tl);
            len += 24 + tl;
        }
        scsi_put_be32(buf + 4, len - 8);
        break;
    }
    pthread_mutex_unlock(&lu->lock);
    scsi_respond(cmd, buf, len, alloc);
    free(buf);
    return SCSI_DONE;
}

/* ---- PERSISTENT RESERVE OUT (SPC-4 6.17) -------------------------------------------------- */

/* One PERSISTENT RESERVE OUT in progress: a copy of the state, the unit attentions it raises. */
struct prout {
    struct scsi_pr_state s;
    struct {
        struct scsi_ident id;
        uint8_t ascq;
    } ua[SCSI_PR_MAX_REG + 1];
    int nua;
    struct scsi_lu *lu;
    struct scsi_cmd *cmd;
    uint8_t type;
    bool bump; /* PRgeneration advances */
};

static void prout_ua(struct prout *o, const struct scsi_ident *id, uint8_t ascq)
{
    if (o->nua < (int)RTL_NUMBER_OF(o->ua)) {
        o->ua[o->nua].id = *id;
        o->ua[o->nua].ascq = ascq;
        o->nua++;
    }
}

static int reg_alloc(struct scsi_pr_state *s)
{
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        if (!s->reg[i].used)
            return i;
    }
    return -1;
}

static void insufficient_resources(struct prout *o)
{
    scsi_check_simple(o->cmd, o->lu, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RESOURCES, 0x04);
}

/* A new registration; its index, or -1 with INSUFFICIENT REGISTRATION RESOURCES set. */
static int reg_add(struct prout *o, const struct scsi_ident *id, uint64_t key, bool all_tg_pt)
{
    int r = reg_alloc(&o->s);
    if (r < 0) {
        insufficient_resources(o);
        return -1;
    }
    o->s.reg[r] = (struct scsi_pr_reg){.used = true, .all_tg_pt = all_tg_pt, .key = key, .id = *id};
    return r;
}

/* Removes registration r; a holder's removal releases its reservation (the last registrant of
 * an all-registrants one likewise), and a registrants-only or all-registrants reservation so
 * released tells the remaining registrants RESERVATIONS RELEASED (SPC-4 5.9.11). */
static void reg_remove(struct prout *o, int r, bool tell_released)
{
    struct scsi_pr_state *s = &o->s;
    s->reg[r].used = false;
    if (!s->reserved)
        return;
    bool release = type_all_registrants(s->type) ? !any_registration(s) : s->holder == r;
    if (!release)
        return;
    if (tell_released && type_registrants(s->type)) {
        for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
            if (s->reg[i].used)
                prout_ua(o, &s->reg[i].id, ASCQ_RESERVATIONS_RELEASED);
        }
    }
    s->reserved = false;
}

static int prout_register(struct prout *o, const uint8_t *p, uint32_t plen, bool ignore)
{
    struct scsi_cmd *cmd = o->cmd;
    struct scsi_lu *lu = o->lu;
    struct scsi_pr_state *s = &o->s;
    uint64_t key = scsi_get_be64(p), sakey = scsi_get_be64(p + 8);
    bool spec_i_pt = p[20] & 0x08, all_tg_pt = p[20] & 0x04, aptpl = p[20] & 0x01;
    int r = reg_find_cmd(s, cmd);

    if (spec_i_pt && (ignore || r >= 0 || sakey == 0)) {
        /* SPC-4 6.17.4: only an unregistered I_T nexus registering names others. */
        scsi_check_param_field(cmd, lu, 20, 3);
        return -1;
    }
    if (r < 0) {
        if (!ignore && key != 0)
            return 1; /* RESERVATION CONFLICT */
        if (sakey == 0) {
            /* Unregistering while not registered: GOOD, nothing changes. */
            return 0;
        }
    } else if (!ignore && key != s->reg[r].key) {
        return 1;
    }
    if (aptpl && !be_has_meta(lu->be)) {
        scsi_check_param_field(cmd, lu, 20, 0);
        return -1;
    }
    if (r >= 0 && sakey == 0) {
        reg_remove(o, r, true);
    } else if (r >= 0) {
        s->reg[r].key = sakey;
    } else {
        /* The TransportIDs of SPEC_I_PT first, so a bad one registers nobody. */
        struct scsi_ident ids[SCSI_PR_MAX_REG];
        int nids = 0;
        if (spec_i_pt) {
            if (plen < 28) {
                scsi_check_param_list_length(cmd, lu);
                return -1;
            }
            uint32_t tlen = scsi_get_be32(p + 24);
            if (28 + (uint64_t)tlen != plen) {
                scsi_check_param_list_length(cmd, lu);
                return -1;
            }
            for (uint32_t pos = 28; pos < plen;) {
                if (nids == SCSI_PR_MAX_REG) {
                    insufficient_resources(o);
                    return -1;
                }
                uint32_t n = tid_from_bin(lu, cmd, p + pos, plen - pos, pos, &ids[nids]);
                if (!n)
                    return -1;
                const char *own = cmd_tid(cmd);
                if (reg_find(s, 0, ids[nids].tid) >= 0 || (own && tid_eq(ids[nids].tid, own))) {
                    /* 6.17.4: a TransportID of a registered I_T nexus, or the sender's own */
                    scsi_check_param_field(cmd, lu, (uint16_t)pos, -1);
                    return -1;
                }
                pos += n;
                nids++;
            }
        }
        struct scsi_ident self;
        ident_of(cmd, &self);
        if (reg_add(o, &self, sakey, all_tg_pt) < 0)
            return -1;
        for (int i = 0; i < nids; i++) {
            if (reg_add(o, &ids[i], sakey, all_tg_pt) < 0)
                return -1;
        }
    }
    s->aptpl = aptpl;
    o->bump = true;
    return 0;
}

static int prout_reserve(struct prout *o, int r)
{
    struct scsi_pr_state *s = &o->s;
    if (s->reserved) {
        /* the holder asking again for the same type: GOOD; anything else conflicts */
        if (is_holder(s, r) && s->type == o->type)
            return 0;
        return 1;
    }
    s->reserved = true;
    s->type = o->type;
    s->holder = (int16_t)r;
    return 0;
}

static int prout_release(struct prout *o, int r)
{
    struct scsi_pr_state *s = &o->s;
    if (!s->reserved || !is_holder(s, r))
        return 0; /* 6.17.3: no reservation, or not the holder: GOOD, nothing changes */
    if (s->type != o->type) {
        scsi_check_simple(o->cmd, o->lu, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_RELEASE, 0x04);
        return -1;
    }
    if (type_registrants(s->type)) {
        for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
            if (s->reg[i].used && i != r)
                prout_ua(o, &s->reg[i].id, ASCQ_RESERVATIONS_RELEASED);
        }
    }
    s->reserved = false;
    return 0;
}

static int prout_clear(struct prout *o, int r)
{
    struct scsi_pr_state *s = &o->s;
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        if (s->reg[i].used && i != r)
            prout_ua(o, &s->reg[i].id, ASCQ_RESERVATIONS_PREEMPTED);
        s->reg[i].used = false;
    }
    s->reserved = false;
    o->bump = true;
    return 0;
}

/* Removes every registration with key sakey except the sender's; returns how many. */
static int preempt_key(struct prout *o, int r, uint64_t sakey, bool all_others)
{
    struct scsi_pr_state *s = &o->s;
    int n = 0;
    for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
        if (!s->reg[i].used || i == r || (!all_others && s->reg[i].key != sakey))
            continue;
        prout_ua(o, &s->reg[i].id, ASCQ_REGISTRATIONS_PREEMPTED);
        s->reg[i].used = false;
        n++;
    }
    return n;
}

/* PREEMPT and PREEMPT AND ABORT (SPC-4 5.9.11.4, 5.9.11.5). Commands complete inline or in
 * the backend and cannot be recalled from it, so PREEMPT AND ABORT aborts nothing more than
 * PREEMPT: every command of a preempted initiator that arrives after it meets the new state. */
static int prout_preempt(struct prout *o, int r, const uint8_t *p)
{
    struct scsi_pr_state *s = &o->s;
    uint64_t sakey = scsi_get_be64(p + 8);
    bool all = s->reserved && type_all_registrants(s->type);
    bool takes_reservation = s->reserved && (all ? sakey == 0 : s->reg[s->holder].key == sakey);
    if (!takes_reservation) {
        /* 5.9.11.4.2/.4: no reservation is preempted, only the registrations with the key go;
         * zero names nobody, and a key nobody has is a conflict. */
        if (sakey == 0) {
            scsi_check_param_field(o->cmd, o->lu, 8, -1);
            return -1;
        }
        if (preempt_key(o, r, sakey, false) == 0)
            return 1;
        o->bump = true;
        return 0;
    }
    /* 5.9.11.4.3: the holder's registrations (all others for an all-registrants reservation)
     * go, and the sender holds a reservation of the type it asks for. */
    preempt_key(o, r, sakey, all);
    if (s->type != o->type) {
        for (int i = 0; i < SCSI_PR_MAX_REG; i++) {
            if (s->reg[i].used && i != r)
                prout_ua(o, &s->reg[i].id, ASCQ_RESERVATIONS_RELEASED);
        }
    }
    s->type = o->type;
    s->holder = (int16_t)r;
    o->bump = true;
    return 0;
}

/* REGISTER AND MOVE (SPC-4 5.9.8): the holder registers the initiator a TransportID names and
 * hands it the reservation. Parameter list (6.17.5): key 0..7, service action key 8..15, UNREG
 * and APTPL in byte 17, RELATIVE TARGET PORT IDENTIFIER 18..19, TransportID length 20..23. */
static int prout_register_and_move(struct prout *o, int r, const uint8_t *p, uint32_t plen)
{
    struct scsi_cmd *cmd = o->cmd;
    struct scsi_lu *lu = o->lu;
    struct scsi_pr_state *s = &o->s;
    if (plen < 24) {
        scsi_check_param_list_length(cmd, lu);
        return -1;
    }
    if (p[16]) {
        scsi_check_param_field(cmd, lu, 16, scsi_high_bit(p[16]));
        return -1;
    }
    if (p[17] & 0xFC) {
        scsi_check_param_field(cmd, lu, 17, scsi_high_bit(p[17] & 0xFC));
        return -1;
    }
    uint32_t tlen = scsi_get_be32(p + 20);
    if (24 + (uint64_t)tlen != plen) {
        scsi_check_param_list_length(cmd, lu);
        return -1;
    }
    if (r < 0 || scsi_get_be64(p) != s->reg[r].key)
        return 1;
    /* 5.9.8: no reservation, or not its holder, or an all-registrants one: conflict. */
    if (!s->reserved || type_all_registrants(s->type) || s->holder != r)
        return 1;
    uint64_t sakey = scsi_get_be64(p + 8);
    if (sakey == 0) {
        scsi_check_param_field(cmd, lu, 8, -1);
        return -1;
    }
    if (scsi_get_be16(p + 18) != 1) {
        scsi_check_param_field(cmd, lu, 18, -1);
        return -1;
    }
    bool unreg = p[17] & 0x02, aptpl = p[17] & 0x01;
    if (aptpl && !be_has_meta(lu->be)) {
        scsi_check_param_field(cmd, lu, 17, 0);
        return -1;
    }
    struct scsi_ident dest;
    if (!tid_from_bin(lu, cmd, p + 24, plen - 24, 24, &dest))
        return -1;
    if (ident_match(&s->reg[r].id, 0, dest.tid)) {
        scsi_check_param_field(cmd, lu, 24, -1);
        return -1;
    }
    int d = reg_find(s, 0, dest.tid);
    if (d < 0 && (d = reg_add(o, &dest, sakey, false)) < 0)
        return -1;
    s->reg[d].key = sakey;
    s->holder = (int16_t)d;
    s->type = o->type;
    if (unreg)
        s->reg[r].used = false;
    s->aptpl = aptpl;
    o->bump = true;
    return 0;
}

int spc_pr_out(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t sa = cdb[1] & 0x1F;
    uint32_t plen = scsi_get_be32(cdb + 5);
    uint8_t scope = cdb[2] >> 4, type = cdb[2] & 0x0F;
    bool uses_type = sa == PROUT_RESERVE || sa == PROUT_RELEASE || sa == PROUT_PREEMPT ||
                     sa == PROUT_PREEMPT_AND_ABORT || sa == PROUT_REGISTER_AND_MOVE;

    if (uses_type && scope != 0) {
        scsi_check_cdb_field(cmd, lu, 2, 7);
        return SCSI_DONE;
    }
    if (uses_type && !type_valid(type)) {
        scsi_check_cdb_field(cmd, lu, 2, 3);
        return SCSI_DONE;
    }
    /* 6.17.3: 24 bytes, or more only with SPEC_I_PT (REGISTER) or for REGISTER AND MOVE. */
    if (plen > PR_PARAM_MAX) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RESOURCES, 0x04);
        return SCSI_DONE;
    }
    if (plen < 24) {
        scsi_check_param_list_length(cmd, lu);
        return SCSI_DONE;
    }
    uint8_t p[PR_PARAM_MAX];
    if (scsi_data_out(cmd, 0, p, plen) < plen) {
        scsi_check_cdb_field(cmd, lu, 5, -1); /* less data-out than the CDB announces */
        return SCSI_DONE;
    }
    cmd->transferred = plen;
    if (sa != PROUT_REGISTER_AND_MOVE) {
        bool spec_i_pt = p[20] & 0x08;
        if (plen != 24 && !(sa == PROUT_REGISTER && spec_i_pt)) {
            scsi_check_param_list_length(cmd, lu);
            return SCSI_DONE;
        }
        if (p[20] & 0xF2) {
            scsi_check_param_field(cmd, lu, 20, scsi_high_bit(p[20] & 0xF2));
            return SCSI_DONE;
        }
        if (p[21]) {
            scsi_check_param_field(cmd, lu, 21, scsi_high_bit(p[21]));
            return SCSI_DONE;
        }
        if (spec_i_pt && sa != PROUT_REGISTER) {
            scsi_check_param_field(cmd, lu, 20, 3);
            return SCSI_DONE;
        }
    }

    struct prout *o = malloc(sizeof(*o));
    if (!o) {
        cmd->status = SAM_STAT_BUSY;
        return SCSI_DONE;
    }
    o->nua = 0;
    o->lu = lu;
    o->cmd = cmd;
    o->type = type;
    o->bump = false;
    pthread_mutex_lock(&lu->lock);
    struct scsi_pr *pr = &lu->pr;
    o->s = pr->s;
    bool was_aptpl = pr->s.aptpl;
    int r = reg_find_cmd(&o->s, cmd);
    int rc;
    if (sa == PROUT_REGISTER || sa == PROUT_REGISTER_AND_IGNORE) {
        rc = prout_register(o, p, plen, sa == PROUT_REGISTER_AND_IGNORE);
    } else if (sa == PROUT_REGISTER_AND_MOVE) {
        rc = prout_register_and_move(o, r, p, plen);
    } else if (r < 0 || o->s.reg[r].key != scsi_get_be64(p)) {
        rc = 1; /* 5.9.7: the sender must be registered with the key it gives */
    } else if (sa == PROUT_RESERVE) {
        rc = prout_reserve(o, r);
    } else if (sa == PROUT_RELEASE) {
        rc = prout_release(o, r);
    } else if (sa == PROUT_CLEAR) {
        rc = prout_clear(o, r);
    } else {
        rc = prout_preempt(o, r, p);
    }
    if (rc == 0) {
        if (o->bump)
            o->s.generation++;
        int st = pr_store(lu, &o->s, was_aptpl);
        if (st != 0) {
            /* The state could not be made persistent: nothing changes. */
            scsi_check_simple(cmd, lu,
                              st == -EIO ? SCSI_SENSE_MEDIUM_ERROR : SCSI_SENSE_HARDWARE_ERROR,
                              st == -EIO ? 0x0C : 0x44, 0x00);
        } else {
            pr->s = o->s;
            for (int i = 0; i < o->nua; i++)
                ua_push(pr, &o->ua[i].id, o->ua[i].ascq);
            update_active(lu);
            scsi_good(cmd);
        }
    } else if (rc == 1) {
        reservation_conflict(cmd);
    }
    pthread_mutex_unlock(&lu->lock);
    free(o);
    return SCSI_DONE;
}
