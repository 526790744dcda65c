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

/* Speeds in kB/s (1000 bytes): CD 1x is 176.4 kB/s, DVD 1x 1385 kB/s (MMC-6 4.x). */
#define MMC_CD_1X     176u
#define MMC_CD_MAX    (176u * 48u)
#define MMC_DVD_MAX   (1385u * 16u)
#define MMC_BUFFER_KB 2048u
#define MMC_DVD_PSN0  0x030000u /* first physical sector number of a DVD data zone */

/* MMC-6 6.7 media event codes */
enum { MEV_NONE = 0, MEV_EJECT_REQUEST = 1, MEV_NEW_MEDIA = 2, MEV_MEDIA_REMOVAL = 3 };

struct mmc_dev {
    /* img, tray_open, ready_at and prevent: readers hold `lock` shared for the whole of a read,
     * so an image is never closed under them; load and eject take it exclusive. */
    pthread_rwlock_t lock;
    struct mmc_image *img;
    bool tray_open;
    uint8_t prevent; /* bit 0: prevent, bit 1: persistent prevent (MMC-6 6.15) */
    uint64_t ready_at_ns;
    uint32_t ready_delay_ms;
    /* Events and speeds, under lu->lock. */
    uint8_t media_event;
    uint8_t oper_event;
    uint8_t power_event;
    uint8_t power_state; /* 1 active, 2 idle, 3 standby (MMC-6 table 6.7.2.3) */
    uint32_t read_speed; /* kB/s currently selected */
    uint64_t media_changes;
    atomic_ulong streaming_reads;
};

static struct mmc_dev *mmc_of(struct scsi_lu *lu)
{
    return lu->type_priv;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t max_speed(const struct mmc_image *img)
{
    return img && img->media == MMC_MEDIA_DVD ? MMC_DVD_MAX : MMC_CD_MAX;
}

/* The medium check of every media-access command, with m->lock held (shared or exclusive):
 * NOT READY, MEDIUM NOT PRESENT - TRAY OPEN / TRAY CLOSED (3A/02, 3A/01) or LOGICAL UNIT IS IN
 * PROCESS OF BECOMING READY (04/01). */
static bool mmc_ready(struct scsi_lu *lu, struct mmc_dev *m, struct scsi_cmd *cmd)
{
    if (!m->img || m->tray_open) {
        if (cmd)
            scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_NO_MEDIA_IN_DEVICE,
                              m->tray_open ? 0x02 : 0x01);
        return false;
    }
    if (m->ready_at_ns && now_ns() < m->ready_at_ns) {
        if (cmd)
            scsi_check_simple(cmd, lu, SCSI_SENSE_NOT_READY, SCSI_ADSENSE_LUN_NOT_READY,
                              SCSI_SENSEQ_BECOMING_READY);
        return false;
    }
    return true;
}

static void mmc_lba_out_of_range(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba)
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
static void mmc_incompatible(struct scsi_cmd *cmd, struct scsi_lu *lu)
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
    uint32_t max = max_speed(img);
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

/* SPC-4 6.39: a pending unit attention (cleared), else the not-ready condition, else NO SENSE. */
static int mmc_request_sense(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    bool desc = cmd->cdb[1] & 0x01;
    struct scsi_sense_info si = {.key = SCSI_SENSE_NO_SENSE};
    uint8_t asc, ascq;
    if (scsi_lu_ua_take(lu, cmd->nexus, &asc, &ascq)) {
        si.key = SCSI_SENSE_UNIT_ATTENTION;
        si.asc = asc;
        si.ascq = ascq;
    } else {
        struct scsi_cmd probe;
        pthread_rwlock_rdlock(&m->lock);
        bool ready = mmc_ready(lu, m, &probe);
        pthread_rwlock_unlock(&m->lock);
        if (!ready) {
            si.key = SCSI_SENSE_NOT_READY;
            si.asc = probe.sense[12];
            si.ascq = probe.sense[13];
            if (probe.sense[0] == SCSI_SENSE_ERRORCODE_DESCRIPTOR_CURRENT) {
                si.asc = probe.sense[2];
                si.ascq = probe.sense[3];
            }
        }
    }
    uint8_t buf[SCSI_SENSE_MAX];
    uint8_t len = scsi_sense_build(buf, desc, &si);
    scsi_respond(cmd, buf, len, cmd->cdb[4]);
    return SCSI_DONE;
}

static void pad_ascii(uint8_t *dst, const char *src, size_t width)
{
    size_t n = strlen(src);
    memset(dst, ' ', width);
    memcpy(dst, src, n < width ? n : width);
}

/* Standard INQUIRY data of a removable MMC drive (RMB=1, version SPC-4, MMC-6 claimed); VPD
 * pages 80h and 83h are the shared SPC ones, and page 00h lists just those. */
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
    if (cdb[2] != 0) {
        scsi_check_cdb_field(cmd, lu, 2, -1);
        return SCSI_DONE;
    }
    INQUIRYDATA *id = (INQUIRYDATA *)buf;
    id->DeviceType = lu->device_type;
    id->DeviceTypeQualifier = DEVICE_QUALIFIER_ACTIVE;
    id->RemovableMedia = 1;
    id->Versions = SCSI_VERSION_SPC4;
    id->ResponseDataFormat = 2;
    id->CommandQueue = 1;
    pad_ascii(id->VendorId, lu->vendor, 8);
    pad_ascii(id->ProductId, lu->product, 16);
    pad_ascii(id->ProductRevisionLevel, lu->revision, 4);
    /* version descriptors: SAM-5, SPC-4, MMC-6 */
    scsi_put_be16(buf + 58, 0x00A0);
    scsi_put_be16(buf + 60, 0x0460);
    scsi_put_be16(buf + 62, 0x04E0);
    id->AdditionalLength = 74 - 5;
    scsi_respond(cmd, buf, 74, alloc);
    return SCSI_DONE;
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
                          uint32_t count, uint16_t len_byte)
{
    const struct mmc_image *img = m->img;
    uint8_t bounce[MMC_BOUNCE];
    uint32_t moved = 0;

    if (lba + count > img->leadout || lba >= img->leadout) {
        mmc_lba_out_of_range(cmd, lu, lba);
        return;
    }
    (void)len_byte;
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

static int mmc_read10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint32_t lba = scsi_get_be32(cmd->cdb + 2);
    uint32_t count = scsi_get_be16(cmd->cdb + 7);
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd)) {
        if (count == 0 && lba < m->img->leadout)
            scsi_good(cmd);
        else
            mmc_read_user(lu, m, cmd, lba, count, 7);
    }
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
}

/* READ (12) with STREAMING=1 (MMC-6 6.20): a real-time read; the drive gives up on a bad sector
 * rather than retrying, which an image never has. Counted so the streaming path is observable. */
static int mmc_read12(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct mmc_dev *m = mmc_of(lu);
    uint32_t lba = scsi_get_be32(cmd->cdb + 2);
    uint32_t count = scsi_get_be32(cmd->cdb + 6);
    if (cmd->cdb[10] & 0x80)
        atomic_fetch_add(&m->streaming_reads, 1);
    pthread_rwlock_rdlock(&m->lock);
    if (mmc_ready(lu, m, cmd)) {
        if (count == 0 && lba < m->img->leadout)
            scsi_good(cmd);
        else
            mmc_read_user(lu, m, cmd, lba, count, 6);
    }
    pthread_rwlock_unlock(&m->lock);
    return SCSI_DONE;
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
 * written to out (at most 2352 + 296), or -1 when the image does not hold a requested field
 * (EDC/ECC of a 2048-byte image). */
static int read_cd_sector(uint8_t mode, uint32_t lba, const uint8_t *s, uint8_t flags, uint8_t *out)
{
    uint8_t raw[MMC_RAW_SECTOR];
    const uint8_t *r = s;
    int n = 0;
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
                    return -1; /* EDC/ECC are not in a 2048-byte image */
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
            n += (int)ulen;
        }
        if (flags & 0x08) {
            memcpy(out + n, r + eoff, elen);
            n += (int)elen;
        }
    }
    if (c2) {
        /* an image has no read errors: the C2 pointers (and block error byte) are zero */
        memset(out + n, 0, c2len);
        n += (int)c2len;
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
        int n = read_cd_sector(t->mode, lba + i, sector, flags, outbuf);
        if (n < 0) {
            scsi_check_cdb_field(cmd, lu, 9, 3);
            goto out;
        }
        moved += scsi_data_in(cmd, moved, outbuf, (uint32_t)n);
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

/* ---- READ TOC/PMA/ATIP, READ DISC INFORMATION, READ TRACK INFORMATION ---------------------- */

static uint8_t track_control(const struct mmc_track *t)
{
    return t->mode == MMC_MODE_AUDIO ? 0x00 : 0x04; /* data track, copy not permitted */
}

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
static int mmc_read_toc(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
            d[1] = (uint8_t)(0x10 | track_control(t));
            d[2] = t->number;
            put_addr(d + 4, t->start, msf);
            len += 8;
        }
        uint8_t *d = buf + len;
        d[1] = (uint8_t)(0x10 | track_control(&img->tracks[img->ntracks - 1]));
        d[2] = 0xAA;
        put_addr(d + 4, img->leadout, msf);
        len += 8;
    } else if (format == 1) {
        buf[2] = 1;
        buf[3] = 1;
        uint8_t *d = buf + len;
        d[1] = (uint8_t)(0x10 | track_control(&img->tracks[0]));
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
            {0xA0, track_control(ft), ft->number, (uint8_t)(xa ? 0x20 : 0x00)},
            {0xA1, track_control(lt), lt->number, 0},
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
                d[1] = (uint8_t)(0x10 | track_control(lt));
                d[3] = 0xA2;
                mmc_lba_to_msf(img->leadout, &d[8], &d[9], &d[10]);
            }
            len += 11;
        }
        for (uint32_t i = 0; i < img->ntracks; i++) {
            const struct mmc_track *t = &img->tracks[i];
            uint8_t *d = buf + len;
            d[0] = 1;
            d[1] = (uint8_t)(0x10 | track_control(t));
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
static int mmc_read_disc_info(struct scsi_lu *lu, struct scsi_cmd *cmd)
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

static int mmc_read_track_info(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
    buf[5] = track_control(t);
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
static int mmc_get_configuration(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
static int mmc_gesn(struct scsi_lu *lu, struct scsi_cmd *cmd)
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

static int mmc_mechanism_status(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
    uint32_t max = max_speed(m->img && !m->tray_open ? m->img : NULL);
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

static int mmc_mode_sense6(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mmc_mode_sense(lu, cmd, false);
}

static int mmc_mode_sense10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mmc_mode_sense(lu, cmd, true);
}

/* ---- SET CD SPEED, SET STREAMING, GET PERFORMANCE ------------------------------------------ */

/* Selects a read speed: FFFFh (or anything above the maximum) is the maximum, below 1x is 1x
 * (MMC-6 6.37: the drive picks the nearest speed it supports). */
static void set_read_speed(struct scsi_lu *lu, struct mmc_dev *m, uint32_t kbs)
{
    pthread_rwlock_rdlock(&m->lock);
    uint32_t max = max_speed(m->img && !m->tray_open ? m->img : NULL);
    pthread_rwlock_unlock(&m->lock);
    if (kbs > max)
        kbs = max;
    if (kbs < MMC_CD_1X)
        kbs = MMC_CD_1X;
    pthread_mutex_lock(&lu->lock);
    m->read_speed = kbs;
    pthread_mutex_unlock(&lu->lock);
}

static int mmc_set_cd_speed(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
static int mmc_set_streaming(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
static int mmc_get_performance(struct scsi_lu *lu, struct scsi_cmd *cmd)
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
    uint32_t leadout = m->img->leadout, max = max_speed(m->img);
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
static int mmc_read_dvd_structure(struct scsi_lu *lu, struct scsi_cmd *cmd)
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

/* ---- table and creation -------------------------------------------------------------------- */

#define IN SCSI_DIR_IN
#define NO SCSI_DIR_NONE
#define UA SCSI_F_UA_OK
#define DI SCSI_F_DATA_IN

static const struct scsi_cmd_desc mmc_commands[] = {
    {0x00, 0, 6, NO, 0, {0xFF, 0, 0, 0, 0, CTL}, mmc_test_unit_ready, "TEST UNIT READY"},
    {0x03, 0, 6, IN, UA | DI, {0xFF, 0x01, 0, 0, 0xFF, CTL}, mmc_request_sense, "REQUEST SENSE"},
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
