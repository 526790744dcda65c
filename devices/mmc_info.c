/*
 * The MMC device's commands that describe the disc and the drive rather than read it: READ
 * TOC/PMA/ATIP, READ DISC INFORMATION, READ TRACK INFORMATION, GET CONFIGURATION (profiles and
 * features), GET EVENT STATUS NOTIFICATION, MECHANISM STATUS, MODE SENSE (pages 01h, 1Ah, 2Ah),
 * SET CD SPEED, SET STREAMING, GET PERFORMANCE and READ DVD STRUCTURE (MMC-6 chapter 6). Each
 * answers from the image model under the drive's lock, cut to the allocation length.
 */
#include <string.h>

#include "devices/mmc_p.h"
#include "devices/scsi_lu_p.h"

/* ---- READ TOC/PMA/ATIP, READ DISC INFORMATION, READ TRACK INFORMATION ---------------------- */

static void put_addr(uint8_t *p, uint32_t lba, bool msf)
{
    if (msf) {
        p[0] = 0;
        mmc_lba_to_msf(lba, &p[1], &p[2], &p[3]);
    } else {
        scsi_put_be32(p, lba);
    }
}

/* MMC-6 6.26: formats 0 (TOC), 1 (session information), 2 (full TOC, always MSF). A DVD has
 * an emulated one-track TOC (formats 0 and 1). */
int mmc_read_toc(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    const uint8_t *cdb = cmd->cdb;
    bool msf = cdb[1] & 0x02;
    uint8_t format = cdb[2] & 0x0F;
    uint8_t first = cdb[6];
    uint16_t alloc = scsi_get_be16(cdb + 7);
    uint8_t buf[4 + 101 * 11];
    uint32_t len = 4;

    if (format > 2) {
        scsi_check_cdb_field(cmd, lu, 2, 3);
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (!mmc_ready(lu, m, cmd))
        goto out;
    const struct mmc_image *img = m->img;
    uint8_t last = img->tracks[img->ntracks - 1].number;
    memset(buf, 0, sizeof(buf));
    if (format == 0) {
        if (first > last && first != 0xAA) {
            scsi_check_cdb_field(cmd, lu, 6, -1);
            goto out;
        }
        buf[2] = img->tracks[0].number;
        buf[3] = last;
        for (uint32_t i = 0; i < img->ntracks; i++) {
            const struct mmc_track *t = &img->tracks[i];
            if (t->number < first || first == 0xAA)
                continue;
            uint8_t *d = buf + len;
            d[1] = (uint8_t)(0x10 | mmc_track_control(t));
            d[2] = t->number;
            put_addr(d + 4, t->start, msf);
            len += 8;
        }
        uint8_t *d = buf + len;
        d[1] = (uint8_t)(0x10 | mmc_track_control(&img->tracks[img->ntracks - 1]));
        d[2] = 0xAA;
        put_addr(d + 4, img->leadout, msf);
        len += 8;
    } else if (format == 1) {
        buf[2] = 1;
        buf[3] = 1;
        uint8_t *d = buf + len;
        d[1] = (uint8_t)(0x10 | mmc_track_control(&img->tracks[0]));
        d[2] = img->tracks[0].number;
        put_addr(d + 4, img->tracks[0].start, msf);
        len += 8;
    } else {
        if (img->media != MMC_MEDIA_CD) {
            scsi_check_cdb_field(cmd, lu, 2, 3);
            goto out;
        }
        if (first > 1) { /* session number: one session */
            scsi_check_cdb_field(cmd, lu, 6, -1);
            goto out;
        }
        buf[2] = 1;
        buf[3] = 1;
        bool xa = false;
        for (uint32_t i = 0; i < img->ntracks; i++)
            xa |= img->tracks[i].mode == MMC_MODE2_2352 || img->tracks[i].mode == MMC_MODE2_2336;
        const struct mmc_track *ft = &img->tracks[0], *lt = &img->tracks[img->ntracks - 1];
        uint8_t points[3][4] = {
            {0xA0, mmc_track_control(ft), ft->number, (uint8_t)(xa ? 0x20 : 0x00)},
            {0xA1, mmc_track_control(lt), lt->number, 0},
        };
        for (int k = 0; k < 3; k++) {
            uint8_t *d = buf + len;
            d[0] = 1;
            if (k < 2) {
                d[1] = (uint8_t)(0x10 | points[k][1]);
                d[3] = points[k][0];
                d[8] = points[k][2];
                d[9] = points[k][3];
            } else {
                d[1] = (uint8_t)(0x10 | mmc_track_control(lt));
                d[3] = 0xA2;
                mmc_lba_to_msf(img->leadout, &d[8], &d[9], &d[10]);
            }
            len += 11;
        }
        for (uint32_t i = 0; i < img->ntracks; i++) {
            const struct mmc_track *t = &img->tracks[i];
            uint8_t *d = buf + len;
            d[0] = 1;
            d[1] = (uint8_t)(0x10 | mmc_track_control(t));
            d[3] = t->number;
            mmc_lba_to_msf(t->start, &d[8], &d[9], &d[10]);
            len += 11;
        }
    }
    scsi_put_be16(buf, (uint16_t)(len - 2));
    scsi_respond(cmd, buf, len, alloc);
out:
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

/* MMC-6 6.22: a finalized, complete, read-only disc with one session. */
int mmc_read_disc_info(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t buf[34];
    if ((cmd->cdb[1] & 0x07) != 0) {
        scsi_check_cdb_field(cmd, lu, 1, 2); /* only standard disc information */
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd)) {
        const struct mmc_image *img = m->img;
        memset(buf, 0, sizeof(buf));
        scsi_put_be16(buf, sizeof(buf) - 2);
        buf[2] = 0x0E; /* last session complete, disc finalized, not erasable */
        buf[3] = img->tracks[0].number;
        buf[4] = 1;
        buf[5] = img->tracks[0].number;
        buf[6] = img->tracks[img->ntracks - 1].number;
        buf[7] = 0x20; /* URU: unrestricted use */
        bool xa = false;
        for (uint32_t i = 0; i < img->ntracks; i++)
            xa |= img->tracks[i].mode == MMC_MODE2_2352 || img->tracks[i].mode == MMC_MODE2_2336;
        buf[8] = img->media == MMC_MEDIA_CD && xa ? 0x20 : 0x00;
        memset(buf + 16, 0xFF, 8); /* no next session, no lead-out to write */
        scsi_respond(cmd, buf, sizeof(buf), scsi_get_be16(cmd->cdb + 7));
    }
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

int mmc_read_track_info(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t type = cmd->cdb[1] & 0x03;
    uint32_t addr = scsi_get_be32(cmd->cdb + 2);
    uint8_t buf[48];
    if (type == 3) {
        scsi_check_cdb_field(cmd, lu, 1, 1);
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (!mmc_ready(lu, m, cmd))
        goto out;
    const struct mmc_image *img = m->img;
    const struct mmc_track *t = NULL;
    if (type == 0) {
        if (addr >= img->leadout) {
            mmc_lba_out_of_range(cmd, lu, addr);
            goto out;
        }
        t = mmc_image_track(img, addr);
    } else if (type == 1) {
        for (uint32_t i = 0; i < img->ntracks; i++)
            if (img->tracks[i].number == addr)
                t = &img->tracks[i];
    } else if (addr == 1) {
        t = &img->tracks[0]; /* session 1: its first track */
    }
    if (!t) {
        scsi_check_cdb_field(cmd, lu, 2, -1);
        goto out;
    }
    memset(buf, 0, sizeof(buf));
    scsi_put_be16(buf, sizeof(buf) - 2);
    buf[2] = t->number;
    buf[3] = 1;
    buf[5] = mmc_track_control(t);
    buf[6] = t->mode == MMC_MODE_AUDIO                                ? 0x0F
             : t->mode == MMC_MODE1_2048 || t->mode == MMC_MODE1_2352 ? 0x01
                                                                      : 0x02;
    scsi_put_be32(buf + 8, t->start);
    scsi_put_be32(buf + 24, t->first + t->length - t->start);
    scsi_respond(cmd, buf, sizeof(buf), scsi_get_be16(cmd->cdb + 7));
out:
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

/* ---- GET CONFIGURATION --------------------------------------------------------------------- */

/* Appends one feature descriptor when code >= start (RT 00b/01b) or == start (RT 10b). */
struct feat_ctx {
    uint8_t *buf;
    uint32_t len, cap;
    uint8_t rt;
    uint16_t start;
};

static void feat_add(struct feat_ctx *c, uint16_t code, uint8_t version, bool current,
                     const uint8_t *data, uint8_t dlen)
{
    if (c->rt == 2 ? code != c->start : code < c->start)
        return;
    if (c->rt == 1 && !current)
        return;
    if (c->len + 4 + dlen > c->cap)
        return;
    uint8_t *p = c->buf + c->len;
    scsi_put_be16(p, code);
    p[2] = (uint8_t)(version << 2 |
                     (code == 0x0000 || code == 0x0001 || code == 0x0002 || code == 0x0003 ||
                              code == 0x0100 || code == 0x0107
                          ? 0x02
                          : 0x00) |
                     (current ? 1 : 0));
    p[3] = dlen;
    memcpy(p + 4, data, dlen);
    c->len += 4 + dlen;
}

/* MMC-6 6.6, 5.3: the profile list (DVD-ROM, CD-ROM) and the features this file implements. */
int mmc_get_configuration(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t rt = cmd->cdb[1] & 0x03;
    uint8_t buf[256];
    if (rt == 3) {
        scsi_check_cdb_field(cmd, lu, 1, 1);
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    bool ready = mmc_ready(lu, m, NULL);
    bool dvd = ready && m->img->media == MMC_MEDIA_DVD;
    bool cd = ready && !dvd;
    pthread_rwlock_unlock(&m->lock);
    uint16_t profile = dvd ? 0x0010 : cd ? 0x0008 : 0x0000;

    memset(buf, 0, sizeof(buf));
    struct feat_ctx c = {buf, 8, sizeof(buf), rt, scsi_get_be16(cmd->cdb + 2)};
    uint8_t d[8];
    /* Profile List: DVD-ROM, CD-ROM (highest first) */
    memset(d, 0, sizeof(d));
    scsi_put_be16(d, 0x0010);
    d[2] = dvd;
    scsi_put_be16(d + 4, 0x0008);
    d[6] = cd;
    feat_add(&c, 0x0000, 0, true, d, 8);
    memset(d, 0, sizeof(d));
    scsi_put_be32(d, 1); /* physical interface: SCSI family */
    d[4] = 0x01;         /* DBE */
    feat_add(&c, 0x0001, 1, true, d, 8);
    memset(d, 0, sizeof(d));
    d[0] = 0x02; /* OCEvent: operational change events; polled only (ASYNC 0) */
    feat_add(&c, 0x0002, 1, true, d, 4);
    memset(d, 0, sizeof(d));
    d[0] = 0x20 | 0x10 | 0x08 | 0x01; /* tray, Load, Eject, Lock */
    feat_add(&c, 0x0003, 0, true, d, 4);
    memset(d, 0, sizeof(d));
    scsi_put_be32(d, MMC_USER_SECTOR);
    scsi_put_be16(d + 4, dvd ? 16 : 1); /* blocking */
    feat_add(&c, 0x0010, 0, ready, d, 8);
    memset(d, 0, sizeof(d));
    d[0] = 0x80 | 0x02; /* DAP, C2 flags */
    feat_add(&c, 0x001E, 2, cd, d, 4);
    memset(d, 0, sizeof(d));
    feat_add(&c, 0x001F, 0, dvd, d, 0);
    feat_add(&c, 0x0100, 0, true, d, 0);
    memset(d, 0, sizeof(d));
    d[0] = 0x08; /* SCS: SET CD SPEED supported */
    feat_add(&c, 0x0107, 3, true, d, 4);

    scsi_put_be32(buf, c.len - 4);
    scsi_put_be16(buf + 6, profile);
    scsi_respond(cmd, buf, c.len, scsi_get_be16(cmd->cdb + 7));
    return SCSI_DONE;
}

/* ---- GET EVENT STATUS NOTIFICATION, MECHANISM STATUS --------------------------------------- */

#define GESN_OPERATIONAL 0x02
#define GESN_POWER       0x04
#define GESN_MEDIA       0x10
#define GESN_SUPPORTED   (GESN_OPERATIONAL | GESN_POWER | GESN_MEDIA)

/* MMC-6 6.7, polled only: the first requested class with an event pending (reported once),
 * else the first requested class with "no change". */
int mmc_gesn(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t req = cmd->cdb[4];
    uint8_t buf[8];
    if (!(cmd->cdb[1] & 0x01)) {
        scsi_check_cdb_field(cmd, lu, 1, 0); /* asynchronous operation is not supported */
        return SCSI_DONE;
    }
    memset(buf, 0, sizeof(buf));
    buf[3] = GESN_SUPPORTED;
    uint8_t want = req & GESN_SUPPORTED;
    if (!want) {
        buf[2] = 0x80; /* NEA: no event available of the requested classes */
        scsi_put_be16(buf, 2);
        scsi_respond(cmd, buf, 4, scsi_get_be16(cmd->cdb + 7));
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    bool present = m->img && !m->tray_open;
    bool tray = m->tray_open;
    bool persistent = m->prevent & 0x02;
    pthread_rwlock_unlock(&m->lock);

    pthread_mutex_lock(&lu->lock);
    uint8_t cls = 0;
    static const uint8_t order[] = {GESN_OPERATIONAL, GESN_POWER, GESN_MEDIA};
    for (int i = 0; i < 3 && !cls; i++) {
        uint8_t c = order[i];
        if (!(want & c))
            continue;
        if ((c == GESN_OPERATIONAL && m->oper_event) || (c == GESN_POWER && m->power_event) ||
            (c == GESN_MEDIA && m->media_event))
            cls = c;
    }
    if (!cls)
        cls = (want & GESN_OPERATIONAL) ? GESN_OPERATIONAL
              : (want & GESN_POWER)     ? GESN_POWER
                                        : GESN_MEDIA;
    uint8_t *e = buf + 4;
    if (cls == GESN_OPERATIONAL) {
        buf[2] = 1;
        e[0] = m->oper_event;
        e[1] = persistent ? 0x80 : 0x00;
        scsi_put_be16(e + 2, m->oper_event ? 0x0002 : 0x0000); /* feature change */
        m->oper_event = 0;
    } else if (cls == GESN_POWER) {
        buf[2] = 2;
        e[0] = m->power_event;
        e[1] = m->power_state;
        m->power_event = 0;
    } else {
        buf[2] = 4;
        e[0] = m->media_event;
        e[1] = (uint8_t)((present ? 0x02 : 0) | (tray ? 0x01 : 0));
        m->media_event = 0;
    }
    pthread_mutex_unlock(&lu->lock);
    scsi_put_be16(buf, 6);
    scsi_respond(cmd, buf, 8, scsi_get_be16(cmd->cdb + 7));
    return SCSI_DONE;
}

int mmc_mechanism_status(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t buf[8];
    memset(buf, 0, sizeof(buf));
    pthread_rwlock_rdlock(&m->lock);
    buf[1] = m->tray_open ? 0x10 : 0x00; /* mechanism idle, door open bit */
    pthread_rwlock_unlock(&m->lock);
    scsi_respond(cmd, buf, sizeof(buf), scsi_get_be16(cmd->cdb + 8));
    return SCSI_DONE;
}

/* ---- MODE SENSE: pages 01h, 1Ah, 2Ah ------------------------------------------------------- */

static uint32_t page_read_error_recovery(struct scsi_lu *lu, uint8_t pc, uint8_t *p)
{
    p[0] = 0x01;
    p[1] = 0x0A;
    if (pc != 1)
        p[3] = 0x00; /* read retry count: an image never needs one */
    return 12;
}

static uint32_t page_power_condition(struct scsi_lu *lu, uint8_t pc, uint8_t *p)
{
    p[0] = 0x1A;
    p[1] = 0x0A; /* no idle or standby timers */
    return 12;
}

static uint32_t page_capabilities(struct scsi_lu *lu, uint8_t pc, uint8_t *p)
{
    struct mmc_dev *m = mmc_of(lu);
    p[0] = 0x2A;
    p[1] = 0x1E;
    if (pc == 1)
        return 32; /* nothing changeable */
    pthread_rwlock_rdlock(&m->lock);
    bool locked = m->prevent != 0;
    uint32_t max = mmc_max_speed(m->img && !m->tray_open ? m->img : NULL);
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_lock(&lu->lock);
    uint32_t cur = m->read_speed ? m->read_speed : max;
    pthread_mutex_unlock(&lu->lock);
    p[2] = 0x08;                                                /* DVD-ROM read */
    p[4] = 0x30;                                                /* Mode 2 form 1 and form 2 */
    p[5] = 0x13;                                                /* C2 pointers, CD-DA accurate */
    p[6] = (uint8_t)(0x20 | 0x08 | (locked ? 0x02 : 0) | 0x01); /* tray, eject, lock state, lock */
    scsi_put_be16(p + 8, (uint16_t)max);
    scsi_put_be16(p + 12, MMC_BUFFER_KB);
    scsi_put_be16(p + 14, (uint16_t)(cur < max ? cur : max));
    return 32;
}

static const struct {
    uint8_t page;
    uint32_t (*build)(struct scsi_lu *lu, uint8_t pc, uint8_t *p);
} mmc_pages[] = {
    {0x01, page_read_error_recovery},
    {0x1A, page_power_condition},
    {0x2A, page_capabilities},
};

static int mmc_mode_sense(struct scsi_lu *lu, struct scsi_cmd *cmd, bool ten)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t pc = cdb[2] >> 6, page = cdb[2] & 0x3F, sub = cdb[3];
    uint32_t alloc = ten ? scsi_get_be16(cdb + 7) : cdb[4];
    uint8_t buf[256];
    uint32_t hdr = ten ? 8 : 4, len = hdr;

    if (pc == 3) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST,
                          SCSI_ADSENSE_SAVING_PARAMETERS_NOT_SUPPORTED, 0);
        return SCSI_DONE;
    }
    if (sub != 0 && !(page == 0x3F && sub == 0xFF)) {
        scsi_check_cdb_field(cmd, lu, 3, -1);
        return SCSI_DONE;
    }
    memset(buf, 0, sizeof(buf));
    bool found = false;
    for (size_t i = 0; i < sizeof(mmc_pages) / sizeof(mmc_pages[0]); i++) {
        if (page != 0x3F && page != mmc_pages[i].page)
            continue;
        len += mmc_pages[i].build(lu, pc, buf + len);
        found = true;
    }
    if (!found) {
        scsi_check_cdb_field(cmd, lu, 2, 5);
        return SCSI_DONE;
    }
    if (ten)
        scsi_put_be16(buf, (uint16_t)(len - 2));
    else
        buf[0] = (uint8_t)(len - 1);
    /* medium type 0, no block descriptors (DBD is honoured trivially) */
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

int mmc_mode_sense6(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mmc_mode_sense(lu, cmd, false);
}

int mmc_mode_sense10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mmc_mode_sense(lu, cmd, true);
}

/* ---- SET CD SPEED, SET STREAMING, GET PERFORMANCE ------------------------------------------ */

/* Selects a read speed: FFFFh (or anything above the maximum) is the maximum, below 1x is 1x
 * (MMC-6 6.37: the drive picks the nearest speed it supports). */
static void set_read_speed(struct scsi_lu *lu, struct mmc_dev *m, uint32_t kbs)
{
    pthread_rwlock_rdlock(&m->lock);
    uint32_t max = mmc_max_speed(m->img && !m->tray_open ? m->img : NULL);
    pthread_rwlock_unlock(&m->lock);
    if (kbs > max)
        kbs = max;
    if (kbs < MMC_CD_1X)
        kbs = MMC_CD_1X;
    pthread_mutex_lock(&lu->lock);
    m->read_speed = kbs;
    pthread_mutex_unlock(&lu->lock);
}

int mmc_set_cd_speed(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    if ((cmd->cdb[1] & 0x03) > 1) {
        scsi_check_cdb_field(cmd, lu, 1, 1); /* rotational control: CLV or CAV */
        return SCSI_DONE;
    }
    set_read_speed(lu, mmc_of(lu), scsi_get_be16(cmd->cdb + 2));
    scsi_good(cmd);
    return SCSI_DONE;
}

/* MMC-6 6.39, type 00h: one performance descriptor (28 bytes). RDD restores the default
 * (maximum) speed; else read size (kB) / read time (ms) is the speed asked for. */
int mmc_set_streaming(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint16_t plen = scsi_get_be16(cmd->cdb + 9);
    uint8_t d[28];
    if (cmd->cdb[8] != 0) {
        scsi_check_cdb_field(cmd, lu, 8, -1);
        return SCSI_DONE;
    }
    if (plen == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (plen < sizeof(d)) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH,
                          0);
        return SCSI_DONE;
    }
    if (scsi_data_out(cmd, 0, d, sizeof(d)) != sizeof(d)) {
        scsi_check_cdb_field(cmd, lu, 9, -1);
        return SCSI_DONE;
    }
    cmd->transferred = sizeof(d); /* the descriptor was taken, whatever it asks */
    if (d[0] & 0x04) {            /* RDD */
        set_read_speed(lu, m, UINT32_MAX);
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint32_t start = scsi_get_be32(d + 4), end = scsi_get_be32(d + 8);
    uint32_t size = scsi_get_be32(d + 12), ms = scsi_get_be32(d + 16);
    if (end < start) {
        scsi_check_param_field(cmd, lu, 8, -1);
        return SCSI_DONE;
    }
    if (ms == 0) {
        scsi_check_param_field(cmd, lu, 16, -1);
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    bool ready = mmc_ready(lu, m, NULL);
    uint32_t leadout = ready ? m->img->leadout : 0;
    pthread_rwlock_unlock(&m->lock);
    if (ready && end >= leadout) {
        scsi_check_param_field(cmd, lu, 8, -1);
        return SCSI_DONE;
    }
    uint64_t kbs = (uint64_t)size * 1000 / ms;
    set_read_speed(lu, m, kbs > UINT32_MAX ? UINT32_MAX : (uint32_t)kbs);
    scsi_good(cmd);
    return SCSI_DONE;
}

/* MMC-6 6.8: type 00h (nominal performance, one descriptor over the medium at the selected
 * speed, constant linear velocity) and 03h (write speeds: none, the drive does not write). */
int mmc_get_performance(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    const uint8_t *cdb = cmd->cdb;
    uint8_t type = cdb[10];
    uint16_t maxd = scsi_get_be16(cdb + 8);
    uint8_t buf[8 + 16];
    memset(buf, 0, sizeof(buf));
    if (type == 0x03) {
        scsi_put_be32(buf, 4);
        scsi_respond(cmd, buf, 8, 8);
        return SCSI_DONE;
    }
    if (type != 0x00) {
        scsi_check_cdb_field(cmd, lu, 10, -1);
        return SCSI_DONE;
    }
    if (cdb[1] & 0x04) {
        /* write performance: nothing to report for a read-only drive */
        scsi_put_be32(buf, 4);
        buf[4] = 0x02;
        scsi_respond(cmd, buf, 8, 8);
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (!mmc_ready(lu, m, cmd)) {
        pthread_rwlock_unlock(&m->lock);
        return SCSI_DONE;
    }
    uint32_t leadout = m->img->leadout, max = mmc_max_speed(m->img);
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_lock(&lu->lock);
    uint32_t cur = m->read_speed && m->read_speed < max ? m->read_speed : max;
    pthread_mutex_unlock(&lu->lock);
    uint32_t n = maxd ? 1 : 0;
    scsi_put_be32(buf, 4 + 16 * n);
    if (n) {
        scsi_put_be32(buf + 8, 0);
        scsi_put_be32(buf + 12, cur);
        scsi_put_be32(buf + 16, leadout - 1);
        scsi_put_be32(buf + 20, cur);
    }
    scsi_respond(cmd, buf, 8 + 16 * n, 8 + 16 * n);
    return SCSI_DONE;
}

/* ---- READ DVD STRUCTURE -------------------------------------------------------------------- */

/* MMC-6 6.29, DVD media: format 00h physical format (one embossed layer), 01h copyright (no
 * protection, all regions), FFh the list of those. On a CD: 30/02. */
int mmc_read_dvd_structure(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    const uint8_t *cdb = cmd->cdb;
    uint8_t format = cdb[7];
    uint16_t alloc = scsi_get_be16(cdb + 8);
    uint8_t buf[4 + 2048];

    if (cdb[1] & 0x0F) {
        scsi_check_cdb_field(cmd, lu, 1, 3); /* media type 0: DVD */
        return SCSI_DONE;
    }
    if (format != 0x00 && format != 0x01 && format != 0xFF) {
        scsi_check_cdb_field(cmd, lu, 7, -1);
        return SCSI_DONE;
    }
    if (cdb[10] & 0xC0) {
        scsi_check_cdb_field(cmd, lu, 10, 7); /* no authentication grant for these formats */
        return SCSI_DONE;
    }
    if (format != 0xFF && cdb[6] != 0) {
        scsi_check_cdb_field(cmd, lu, 6, -1); /* one layer */
        return SCSI_DONE;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (!mmc_ready(lu, m, cmd))
        goto out;
    if (m->img->media != MMC_MEDIA_DVD) {
        mmc_incompatible(cmd, lu);
        goto out;
    }
    uint32_t len;
    memset(buf, 0, sizeof(buf));
    if (format == 0x00) {
        uint8_t *p = buf + 4;
        p[0] = 0x01; /* DVD-ROM, part version 1 */
        p[1] = 0x02; /* 120 mm, 10.08 Mbit/s */
        p[2] = 0x01; /* one layer, parallel track path, embossed */
        scsi_put_be32(p + 4, MMC_DVD_PSN0);
        scsi_put_be32(p + 8, MMC_DVD_PSN0 + m->img->leadout - 1);
        len = 4 + 2048;
    } else if (format == 0x01) {
        len = 8; /* CPS type 0, region management 00h: playable in every region */
    } else {
        uint8_t *p = buf + 4;
        p[0] = 0x00;
        p[1] = 0x40; /* readable */
        scsi_put_be16(p + 2, 2048 + 2);
        p[4] = 0x01;
        p[5] = 0x40;
        scsi_put_be16(p + 6, 6);
        p[8] = 0xFF;
        p[9] = 0x40;
        scsi_put_be16(p + 10, 14);
        len = 4 + 12;
    }
    scsi_put_be16(buf, (uint16_t)(len - 2));
    scsi_respond(cmd, buf, len, alloc);
out:
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}
