/*
 * The MMC device (MMC-6, peripheral device type 05h): a read-only CD/DVD drive whose medium is a
 * disc image (devices/mmc_image.c). The drive has a tray: a medium is present when an image is
 * loaded and the tray is closed. Loading starts a "becoming ready" period (NOT READY 04/01 for
 * ready_delay_ms), then the unit attention NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
 * (28/00) and a NewMedia event for GET EVENT STATUS NOTIFICATION. PREVENT ALLOW MEDIUM REMOVAL
 * refuses ejects (53/02) while prevented. Reads come from the image by pread into a stack bounce
 * buffer (no allocation per command); the image is swapped under a reader-writer lock so a load
 * never pulls a file from under a read. Everything the drive advertises (features in GET
 * CONFIGURATION, mode page 2Ah bits, GESN classes) is what this file executes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/mmc_p.h"
#include "devices/scsi_lu_p.h"

#define CTL 0xC0

struct mmc_dev *mmc_of(struct scsi_lu *lu)
{
    return lu->type_priv;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t mmc_max_speed(const struct mmc_image *img)
{
    return img && img->media == MMC_MEDIA_DVD ? MMC_DVD_MAX : MMC_CD_MAX;
}

/* Why the drive is not ready, with m->lock held: MEDIUM NOT PRESENT - TRAY CLOSED / TRAY OPEN
 * (3A/01, 3A/02) or LOGICAL UNIT IS IN PROCESS OF BECOMING READY (04/01); false when ready. */
static bool mmc_not_ready_locked(const struct mmc_dev *m, uint8_t *asc, uint8_t *ascq)
{
    if (!m->img || m->tray_open) {
        *asc = SCSI_ADSENSE_NO_MEDIA_IN_DEVICE;
        *ascq = m->tray_open ? 0x02 : 0x01;
        return true;
    }
    if (m->ready_at_ns && now_ns() < m->ready_at_ns) {
        *asc = SCSI_ADSENSE_LUN_NOT_READY;
        *ascq = SCSI_SENSEQ_BECOMING_READY;
        return true;
    }
    return false;
}

bool mmc_ready(struct scsi_lu *lu, struct mmc_dev *m, struct scsi_cmd *cmd)
{
    uint8_t asc, ascq;
    if (!mmc_not_ready_locked(m, &asc, &ascq))
        return true;
    if (cmd)
        scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, asc, ascq);
    return false;
}

/* The LU's not-ready hook: REQUEST SENSE (spc.c) reports the medium's state. */
static bool mmc_not_ready(struct scsi_lu *lu, uint8_t *asc, uint8_t *ascq)
{
    struct mmc_dev *m = mmc_of(lu);
    pthread_rwlock_rdlock(&m->lock);
    bool not_ready = mmc_not_ready_locked(m, asc, ascq);
    pthread_rwlock_unlock(&m->lock);
    return not_ready;
}

void mmc_lba_out_of_range(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba)
{
    struct scsi_sense_info si = {.key = SCSI_SENSE_ILLEGAL_REQUEST,
                                 .asc = SCSI_ADSENSE_ILLEGAL_BLOCK,
                                 .info_valid = true,
                                 .info = lba};
    scsi_check(cmd, lu, &si);
}

/* ILLEGAL REQUEST, ILLEGAL MODE FOR THIS TRACK (64/00), INFORMATION = the sector. */
static void mmc_illegal_mode(struct scsi_cmd *cmd, struct scsi_lu *lu, uint32_t lba)
{
    struct scsi_sense_info si = {.key = SCSI_SENSE_ILLEGAL_REQUEST,
                                 .asc = SCSI_ADSENSE_ILLEGAL_MODE_FOR_THIS_TRACK,
                                 .info_valid = true,
                                 .info = lba};
    scsi_check(cmd, lu, &si);
}

/* CANNOT READ MEDIUM - INCOMPATIBLE FORMAT (30/02): a CD command on a DVD or the reverse. */
void mmc_incompatible(struct scsi_cmd *cmd, struct scsi_lu *lu)
{
    scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_INVALID_MEDIA, 0x02);
}

static void mmc_medium_error(struct scsi_cmd *cmd, struct scsi_lu *lu, uint32_t lba)
{
    struct scsi_sense_info si = {.key = SCSI_SENSE_MEDIUM_ERROR,
                                 .asc = SCSI_ADSENSE_UNRECOVERED_ERROR,
                                 .info_valid = true,
                                 .info = lba};
    scsi_check(cmd, lu, &si);
}

uint8_t mmc_track_control(const struct mmc_track *t)
{
    return t->mode == MMC_MODE_AUDIO ? 0x00 : 0x04; /* data track, copy not permitted */
}

/* ---- media changes (the operator's load and eject, and START STOP UNIT) -------------------- */

static void mmc_note_change(struct scsi_lu *lu, struct mmc_dev *m, uint8_t media_event)
{
    pthread_mutex_lock(&lu->lock);
    m->media_event = media_event;
    m->oper_event = 0x02; /* feature change: the current profile changed */
    m->media_changes++;
    /* NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (SPC-4 / MMC-6 4.1.6.2) */
    if (media_event == MEV_NEW_MEDIA)
        scsi_lu_ua_raise_locked(lu, SCSI_ADSENSE_MEDIUM_CHANGED, 0x00, NULL);
    pthread_mutex_unlock(&lu->lock);
}

int scsi_cdrom_load(struct scsi_lu *lu, const char *image, char *err, size_t errlen)
{
    struct mmc_dev *m = mmc_of(lu);
    struct mmc_image *img = NULL;
    if (!m)
        return -EINVAL;
    if (image && *image) {
        int rc = mmc_image_open(image, &img, err, errlen);
        if (rc)
            return rc;
    }
    pthread_rwlock_wrlock(&m->lock);
    if (m->prevent && m->img && !m->tray_open) {
        pthread_rwlock_unlock(&m->lock);
        mmc_image_close(img);
        if (err && errlen)
            snprintf(err, errlen, "medium removal is prevented");
        return -EBUSY;
    }
    struct mmc_image *old = m->img;
    bool had = old && !m->tray_open;
    m->img = img;
    m->tray_open = false;
    m->ready_at_ns = img && m->ready_delay_ms ? now_ns() + m->ready_delay_ms * 1000000ull : 0;
    uint32_t max = mmc_max_speed(img);
    pthread_rwlock_unlock(&m->lock);
    mmc_image_close(old);
    pthread_mutex_lock(&lu->lock);
    if (m->read_speed > max)
        m->read_speed = max;
    pthread_mutex_unlock(&lu->lock);
    if (img)
        mmc_note_change(lu, m, MEV_NEW_MEDIA);
    else if (had)
        mmc_note_change(lu, m, MEV_MEDIA_REMOVAL);
    return 0;
}

int scsi_cdrom_status(struct scsi_lu *lu, struct scsi_cdrom_status *st)
{
    struct mmc_dev *m = mmc_of(lu);
    if (!m || !st)
        return -EINVAL;
    memset(st, 0, sizeof(*st));
    pthread_rwlock_rdlock(&m->lock);
    st->loaded = m->img != NULL;
    st->tray_open = m->tray_open;
    st->prevented = m->prevent != 0;
    if (m->img) {
        snprintf(st->image, sizeof(st->image), "%s", m->img->path);
        st->sectors = m->img->leadout;
        st->tracks = m->img->ntracks;
        st->dvd = m->img->media == MMC_MEDIA_DVD;
    }
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_lock(&lu->lock);
    st->read_speed_kbs = m->read_speed;
    st->media_changes = m->media_changes;
    pthread_mutex_unlock(&lu->lock);
    st->streaming_reads = atomic_load(&m->streaming_reads);
    return 0;
}

/* ---- TEST UNIT READY, REQUEST SENSE, INQUIRY ------------------------------------------------ */

static int mmc_test_unit_ready(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd))
        scsi_good(cmd);
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

/* INQUIRY (SPC-4 6.6): the standard data (RMB=1, MMC-6 claimed) and VPD pages 80h and 83h are
 * the shared SPC ones; page 00h lists just those (the disk's block pages do not apply). */
static int mmc_inquiry(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint16_t alloc = scsi_get_be16(cdb + 3);
    uint8_t buf[96];
    memset(buf, 0, sizeof(buf));
    if (cdb[1] & CDB_INQUIRY_EVPD) {
        if (cdb[2] == VPD_SERIAL_NUMBER || cdb[2] == VPD_DEVICE_IDENTIFIERS)
            return spc_inquiry(lu, cmd);
        if (cdb[2] != VPD_SUPPORTED_PAGES) {
            scsi_check_cdb_field(cmd, lu, 2, -1);
            return SCSI_DONE;
        }
        buf[0] = lu->device_type;
        buf[3] = 3;
        buf[4] = VPD_SUPPORTED_PAGES;
        buf[5] = VPD_SERIAL_NUMBER;
        buf[6] = VPD_DEVICE_IDENTIFIERS;
        scsi_respond(cmd, buf, 7, alloc);
        return SCSI_DONE;
    }
    /* the standard data is SPC's, with RMB and the MMC-6 version descriptor from the LU */
    return spc_inquiry(lu, cmd);
}

/* ---- START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL ------------------------------------------ */

/* MMC-6 6.40: LOEJ with START=0 opens the tray (refused with 53/02 while removal is prevented),
 * with START=1 closes it. POWER CONDITION 1..3 (active, idle, standby) changes the power state
 * and raises a power management event; other values are not supported. */
static int mmc_start_stop(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t b4 = cmd->cdb[4];
    uint8_t pc = b4 >> 4;
    bool loej = b4 & 0x02, start = b4 & 0x01;

    if (pc > 3) {
        scsi_check_cdb_field(cmd, lu, 4, 7);
        return SCSI_DONE;
    }
    if (pc) {
        pthread_mutex_lock(&lu->lock);
        m->power_state = pc;
        m->power_event = 0x01; /* power change successful */
        pthread_mutex_unlock(&lu->lock);
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (!loej) {
        pthread_mutex_lock(&lu->lock);
        m->power_state = start ? 1 : 3;
        pthread_mutex_unlock(&lu->lock);
        scsi_good(cmd);
        return SCSI_DONE;
    }
    pthread_rwlock_wrlock(&m->lock);
    if (!start) {
        if (m->prevent) {
            pthread_rwlock_unlock(&m->lock);
            /* MEDIA LOAD OR EJECT FAILED, MEDIUM REMOVAL PREVENTED */
            scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST,
                              SCSI_ADSENSE_MEDIA_LOAD_OR_EJECT_FAILED, 0x02);
            return SCSI_DONE;
        }
        bool had = m->img && !m->tray_open;
        m->tray_open = true;
        pthread_rwlock_unlock(&m->lock);
        if (had)
            mmc_note_change(lu, m, MEV_MEDIA_REMOVAL);
    } else {
        bool was_open = m->tray_open;
        m->tray_open = false;
        if (was_open && m->img && m->ready_delay_ms)
            m->ready_at_ns = now_ns() + m->ready_delay_ms * 1000000ull;
        bool loaded = was_open && m->img;
        pthread_rwlock_unlock(&m->lock);
        if (loaded)
            mmc_note_change(lu, m, MEV_NEW_MEDIA);
    }
    scsi_good(cmd);
    return SCSI_DONE;
}

static int mmc_prevent_allow(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    pthread_rwlock_wrlock(&m->lock);
    m->prevent = cmd->cdb[4] & 0x03;
    pthread_rwlock_unlock(&m->lock);
    scsi_good(cmd);
    return SCSI_DONE;
}

/* ---- READ CAPACITY, READ (10)/(12) -------------------------------------------------------- */

static int mmc_read_capacity(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint8_t buf[8];
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd)) {
        scsi_put_be32(buf, m->img->leadout - 1);
        scsi_put_be32(buf + 4, MMC_USER_SECTOR);
        scsi_respond(cmd, buf, 8, 8);
    }
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

/* The bounce buffer of one read step: 64 KiB on the submitting thread's stack. */
#define MMC_BOUNCE 65536u

/* Where the 2048 bytes of user data sit in a stored sector of mode `mode`, or -1 when the sector
 * has none (audio, Mode 2 form 2). */
static int user_data_offset(uint8_t mode, const uint8_t *sector)
{
    switch (mode) {
    case MMC_MODE1_2048:
        return 0;
    case MMC_MODE1_2352:
        return 16;
    case MMC_MODE2_2352:
        return (sector[18] & 0x20) ? -1 : 24; /* submode FORM bit: form 2 has 2324 bytes */
    case MMC_MODE2_2336:
        return (sector[2] & 0x20) ? -1 : 8;
    default:
        return -1;
    }
}

/* READ (10)/(12) (MMC-6 6.19, 6.20): 2048-byte user data of data sectors; an audio or form 2
 * sector is ILLEGAL MODE FOR THIS TRACK. Called with the medium ready and m->lock shared. */
static void mmc_read_user(struct scsi_lu *lu, struct mmc_dev *m, struct scsi_cmd *cmd, uint64_t lba,
                          uint32_t count)
{
    const struct mmc_image *img = m->img;
    uint8_t bounce[MMC_BOUNCE];
    uint32_t moved = 0;

    if (lba + count > img->leadout || lba >= img->leadout) {
        mmc_lba_out_of_range(cmd, lu, lba);
        return;
    }
    while (count) {
        const struct mmc_track *t = mmc_image_track(img, (uint32_t)lba);
        if (!t) {
            mmc_lba_out_of_range(cmd, lu, lba);
            return;
        }
        uint32_t in_track = t->first + t->length - (uint32_t)lba;
        uint32_t n = MMC_BOUNCE / t->sector;
        if (n > count)
            n = count;
        if (n > in_track)
            n = in_track;
        if (t->mode == MMC_MODE_AUDIO) {
            mmc_illegal_mode(cmd, lu, (uint32_t)lba);
            return;
        }
        if (mmc_image_read(img, t, (uint32_t)lba, n, bounce) != 0) {
            mmc_medium_error(cmd, lu, (uint32_t)lba);
            return;
        }
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *s = bounce + (size_t)i * t->sector;
            int off = user_data_offset(t->mode, s);
            if (off < 0) {
                cmd->transferred = moved;
                mmc_illegal_mode(cmd, lu, (uint32_t)lba + i);
                return;
            }
            moved += scsi_data_in(cmd, moved, s + off, MMC_USER_SECTOR);
        }
        lba += n;
        count -= n;
    }
    cmd->transferred = moved;
    scsi_good(cmd);
}

/* READ (10) and READ (12): a zero transfer length inside the medium is GOOD with no data. */
static int mmc_read(struct scsi_lu *lu, struct scsi_cmd *cmd, uint32_t lba, uint32_t count)
{
    struct mmc_dev *m = mmc_of(lu);
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd)) {
        if (count == 0 && lba < m->img->leadout)
            scsi_good(cmd);
        else
            mmc_read_user(lu, m, cmd, lba, count);
    }
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

static int mmc_read10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mmc_read(lu, cmd, scsi_get_be32(cmd->cdb + 2), scsi_get_be16(cmd->cdb + 7));
}

/* READ (12) with STREAMING=1 (MMC-6 6.20): a real-time read; the drive gives up on a bad sector
 * rather than retrying, which an image never has. Counted so the streaming path is observable. */
static int mmc_read12(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    if (cmd->cdb[10] & 0x80)
        atomic_fetch_add(&mmc_of(lu)->streaming_reads, 1);
    return mmc_read(lu, cmd, scsi_get_be32(cmd->cdb + 2), scsi_get_be32(cmd->cdb + 6));
}

/* ---- READ CD, READ CD MSF ------------------------------------------------------------------ */

/* Expected sector types (MMC-6 table 497) */
enum { EST_ANY, EST_CDDA, EST_MODE1, EST_MODE2, EST_MODE2_FORM1, EST_MODE2_FORM2 };

static uint8_t sector_type(uint8_t mode, const uint8_t *s)
{
    switch (mode) {
    case MMC_MODE_AUDIO:
        return EST_CDDA;
    case MMC_MODE1_2048:
    case MMC_MODE1_2352:
        return EST_MODE1;
    case MMC_MODE2_2352:
        return (s[18] & 0x20) ? EST_MODE2_FORM2 : EST_MODE2_FORM1;
    default:
        return (s[2] & 0x20) ? EST_MODE2_FORM2 : EST_MODE2_FORM1;
    }
}

/* One sector of READ CD output from a stored sector. flags is CDB byte 9. Returns the bytes
 * written to out (at most 2352 + 296). What the image does not store is rebuilt: sync and header
 * from the address, and for a 2048-byte image the EDC and ECC (mmc_edc.c). */
static uint32_t read_cd_sector(uint8_t mode, uint32_t lba, const uint8_t *s, uint8_t flags,
                               uint8_t *out)
{
    uint8_t raw[MMC_RAW_SECTOR];
    const uint8_t *r = s;
    uint32_t n = 0;
    uint8_t type = sector_type(mode, s);
    bool c2 = (flags & 0x06) != 0;
    uint32_t c2len = ((flags >> 1) & 0x03) == 1 ? 294 : 296;

    if (type == EST_CDDA) {
        if (flags & 0xF8) {
            memcpy(out, s, MMC_RAW_SECTOR);
            n = MMC_RAW_SECTOR;
        }
    } else {
        if (mode == MMC_MODE1_2048 || mode == MMC_MODE2_2336) {
            /* rebuild sync and header around what the image holds */
            memset(raw, 0, sizeof(raw));
            memset(raw + 1, 0xFF, 10);
            uint8_t mm, ss, ff;
            mmc_lba_to_msf(lba, &mm, &ss, &ff);
            raw[12] = (uint8_t)((mm / 10) << 4 | mm % 10);
            raw[13] = (uint8_t)((ss / 10) << 4 | ss % 10);
            raw[14] = (uint8_t)((ff / 10) << 4 | ff % 10);
            raw[15] = mode == MMC_MODE1_2048 ? 1 : 2;
            if (mode == MMC_MODE1_2048) {
                memcpy(raw + 16, s, 2048);
                if (flags & 0x08)
                    mmc_mode1_edc_ecc(raw); /* not in a 2048-byte image: computed */
            } else {
                memcpy(raw + 16, s, 2336);
            }
            r = raw;
        }
        bool mode2 = type != EST_MODE1;
        if (flags & 0x80) {
            memcpy(out + n, r, 12);
            n += 12;
        }
        uint8_t hc = (flags >> 5) & 0x03;
        if (hc & 0x01) {
            memcpy(out + n, r + 12, 4);
            n += 4;
        }
        if ((hc & 0x02) && mode2) {
            memcpy(out + n, r + 16, 8);
            n += 8;
        }
        uint32_t uoff, ulen, eoff, elen;
        if (type == EST_MODE1) {
            uoff = 16, ulen = 2048, eoff = 2064, elen = 288;
        } else if (type == EST_MODE2_FORM1) {
            uoff = 24, ulen = 2048, eoff = 2072, elen = 280;
        } else {
            uoff = 24, ulen = 2324, eoff = 2348, elen = 4;
        }
        if (flags & 0x10) {
            memcpy(out + n, r + uoff, ulen);
            n += ulen;
        }
        if (flags & 0x08) {
            memcpy(out + n, r + eoff, elen);
            n += elen;
        }
    }
    if (c2) {
        /* an image has no read errors: the C2 pointers (and block error byte) are zero */
        memset(out + n, 0, c2len);
        n += c2len;
    }
    return n;
}

static void mmc_read_cd(struct scsi_lu *lu, struct scsi_cmd *cmd, uint32_t lba, uint32_t count)
{
    struct mmc_dev *m = mmc_of(lu);
    const uint8_t *cdb = cmd->cdb;
    uint8_t est = (cdb[1] >> 2) & 0x07;
    uint8_t flags = cdb[9];
    uint8_t sub = cdb[10] & 0x07;

    if (est > EST_MODE2_FORM2) {
        scsi_check_cdb_field(cmd, lu, 1, 4);
        return;
    }
    if (((flags >> 1) & 0x03) == 3) {
        scsi_check_cdb_field(cmd, lu, 9, 2);
        return;
    }
    /* no image format here stores sub-channel data */
    if (sub) {
        scsi_check_cdb_field(cmd, lu, 10, scsi_high_bit(sub));
        return;
    }
    pthread_rwlock_rdlock(&m->lock);
    if (!mmc_ready(lu, m, cmd))
        goto out;
    const struct mmc_image *img = m->img;
    if (img->media != MMC_MEDIA_CD) {
        mmc_incompatible(cmd, lu);
        goto out;
    }
    if ((uint64_t)lba + count > img->leadout) {
        mmc_lba_out_of_range(cmd, lu, lba);
        goto out;
    }
    uint8_t sector[MMC_RAW_SECTOR];
    uint8_t outbuf[MMC_RAW_SECTOR + 296];
    uint32_t moved = 0;
    for (uint32_t i = 0; i < count; i++) {
        const struct mmc_track *t = mmc_image_track(img, lba + i);
        if (!t) {
            mmc_lba_out_of_range(cmd, lu, lba + i);
            goto out;
        }
        if (mmc_image_read(img, t, lba + i, 1, sector) != 0) {
            cmd->transferred = moved;
            mmc_medium_error(cmd, lu, lba + i);
            goto out;
        }
        uint8_t type = sector_type(t->mode, sector);
        if (est != EST_ANY && est != type &&
            !(est == EST_MODE2 && (type == EST_MODE2_FORM1 || type == EST_MODE2_FORM2) &&
              t->mode == MMC_MODE2_2336)) {
            cmd->transferred = moved;
            mmc_illegal_mode(cmd, lu, lba + i);
            goto out;
        }
        uint32_t n = read_cd_sector(t->mode, lba + i, sector, flags, outbuf);
        moved += scsi_data_in(cmd, moved, outbuf, n);
    }
    cmd->transferred = moved;
    scsi_good(cmd);
out:
    pthread_rwlock_unlock(&m->lock);
}

static int mmc_read_cd_lba(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    mmc_read_cd(lu, cmd, scsi_get_be32(cmd->cdb + 2),
                (uint32_t)cmd->cdb[6] << 16 | (uint32_t)cmd->cdb[7] << 8 | cmd->cdb[8]);
    return SCSI_DONE;
}

static int msf_to_lba(const uint8_t *p, uint32_t *lba)
{
    if (p[1] > 59 || p[2] > 74)
        return -1;
    uint32_t v = ((uint32_t)p[0] * 60 + p[1]) * 75 + p[2];
    if (v < 150)
        return -1; /* the lead-in is not readable */
    *lba = v - 150;
    return 0;
}

/* READ CD MSF (MMC-6 6.22): from the start MSF up to, not including, the end MSF. */
static int mmc_read_cd_msf(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    uint32_t start, end;
    if (msf_to_lba(cmd->cdb + 3, &start)) {
        scsi_check_cdb_field(cmd, lu, 3, -1);
        return SCSI_DONE;
    }
    if (msf_to_lba(cmd->cdb + 6, &end) || end < start) {
        scsi_check_cdb_field(cmd, lu, 6, -1);
        return SCSI_DONE;
    }
    mmc_read_cd(lu, cmd, start, end - start);
    return SCSI_DONE;
}

/* ---- table and creation -------------------------------------------------------------------- */

#define IN SCSI_DIR_IN
#define NO SCSI_DIR_NONE
#define UA SCSI_F_UA_OK
#define DI SCSI_F_DATA_IN

static const struct scsi_cmd_desc mmc_commands[] = {
    {0x00, 0, 6, NO, 0, {0xFF, 0, 0, 0, 0, CTL}, mmc_test_unit_ready, "TEST UNIT READY"},
    {0x03, 0, 6, IN, UA | DI, {0xFF, 0x01, 0, 0, 0xFF, CTL}, spc_request_sense, "REQUEST SENSE"},
    {0x12, 0, 6, IN, UA | DI, {0xFF, 0x01, 0xFF, 0xFF, 0xFF, CTL}, mmc_inquiry, "INQUIRY"},
    {0x1A, 0, 6, IN, DI, {0xFF, 0x08, 0xFF, 0xFF, 0xFF, CTL}, mmc_mode_sense6, "MODE SENSE(6)"},
    {0x1B, 0, 6, NO, 0, {0xFF, 0x01, 0, 0, 0xF3, CTL}, mmc_start_stop, "START STOP UNIT"},
    {0x1E,
     0,
     6,
     NO,
     0,
     {0xFF, 0, 0, 0, 0x03, CTL},
     mmc_prevent_allow,
     "PREVENT ALLOW MEDIUM REMOVAL"},
    {0x25, 0, 10, IN, DI, {0xFF, 0, 0, 0, 0, 0, 0, 0, 0, CTL}, mmc_read_capacity, "READ CAPACITY"},
    {0x28,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, CTL},
     mmc_read10,
     "READ(10)"},
    {0x43,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x02, 0x0F, 0, 0, 0, 0xFF, 0xFF, 0xFF, CTL},
     mmc_read_toc,
     "READ TOC/PMA/ATIP"},
    {0x46,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x03, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, CTL},
     mmc_get_configuration,
     "GET CONFIGURATION"},
    {0x4A,
     0,
     10,
     IN,
     UA | DI,
     {0xFF, 0x01, 0, 0, 0xFF, 0, 0, 0xFF, 0xFF, CTL},
     mmc_gesn,
     "GET EVENT STATUS NOTIFICATION"},
    {0x51,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x07, 0, 0, 0, 0, 0, 0xFF, 0xFF, CTL},
     mmc_read_disc_info,
     "READ DISC INFORMATION"},
    {0x52,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, CTL},
     mmc_read_track_info,
     "READ TRACK INFORMATION"},
    {0x5A,
     0,
     10,
     IN,
     DI,
     {0xFF, 0x08, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, CTL},
     mmc_mode_sense10,
     "MODE SENSE(10)"},
    {0xA0,
     0,
     12,
     IN,
     UA | DI,
     {0xFF, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_report_luns_self,
     "REPORT LUNS"},
    {0xA8,
     0,
     12,
     IN,
     DI,
     {0xFF, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, CTL},
     mmc_read12,
     "READ(12)"},
    {0xAC,
     0,
     12,
     IN,
     DI,
     {0xFF, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, CTL},
     mmc_get_performance,
     "GET PERFORMANCE"},
    {0xAD,
     0,
     12,
     IN,
     DI,
     {0xFF, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0, CTL},
     mmc_read_dvd_structure,
     "READ DVD STRUCTURE"},
    {0xB6,
     0,
     12,
     SCSI_DIR_OUT,
     0,
     {0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, CTL},
     mmc_set_streaming,
     "SET STREAMING"},
    {0xB9,
     0,
     12,
     IN,
     DI,
     {0xFF, 0x1E, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x07, CTL},
     mmc_read_cd_msf,
     "READ CD MSF"},
    {0xBB,
     0,
     12,
     NO,
     0,
     {0xFF, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, CTL},
     mmc_set_cd_speed,
     "SET CD SPEED"},
    {0xBD,
     0,
     12,
     IN,
     DI,
     {0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, CTL},
     mmc_mechanism_status,
     "MECHANISM STATUS"},
    {0xBE,
     0,
     12,
     IN,
     DI,
     {0xFF, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x07, CTL},
     mmc_read_cd_lba,
     "READ CD"},
    {0},
};

static void mmc_destroy(struct scsi_lu *lu)
{
    struct mmc_dev *m = lu->type_priv;
    if (!m)
        return;
    mmc_image_close(m->img);
    pthread_rwlock_destroy(&m->lock);
    free(m);
    lu->type_priv = NULL;
}

int scsi_cdrom_create(const struct scsi_cdrom_config *cfg, struct scsi_lu **out, char *err,
                      size_t errlen)
{
    static const struct scsi_cdrom_config defaults = {0};
    struct scsi_lu *lu;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!cfg)
        cfg = &defaults;
    int rc = scsi_lu_alloc(READ_ONLY_DIRECT_ACCESS_DEVICE, cfg->vendor,
                           cfg->product ? cfg->product : "VIRTUAL CDROM", cfg->revision,
                           cfg->serial, cfg->device_id, &lu);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "bad identity strings");
        return rc;
    }
    struct mmc_dev *m = calloc(1, sizeof(*m));
    if (!m || pthread_rwlock_init(&m->lock, NULL) != 0) {
        free(m);
        scsi_lu_destroy(lu);
        return -ENOMEM;
    }
    m->ready_delay_ms = cfg->ready_delay_ms;
    m->power_state = 1;
    atomic_init(&m->streaming_reads, 0);
    lu->type_priv = m;
    lu->type_destroy = mmc_destroy;
    lu->block_size = MMC_USER_SECTOR;
    lu->block_shift = 11;
    lu->read_only = true;
    lu->removable = true;
    lu->type_not_ready = mmc_not_ready;
    lu->command_set_version = 0x04E0; /* MMC-6 (SPC-4 table 148) */
    scsi_lu_add_commands(lu, mmc_commands);
    if (cfg->image && *cfg->image) {
        rc = mmc_image_open(cfg->image, &m->img, err, errlen);
        if (rc) {
            scsi_lu_destroy(lu);
            return rc;
        }
        m->media_event = MEV_NEW_MEDIA;
    }
    *out = lu;
    return 0;
}
