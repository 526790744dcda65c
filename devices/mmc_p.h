/*
 * Private face of the MMC device (peripheral device type 05h): the disc image model the MMC
 * command set reads from (devices/mmc.c) and the image readers that build it (devices/mmc_image.c:
 * ISO 9660/UDF images of 2048-byte sectors, BIN/CUE images of 2352-byte raw sectors with data and
 * audio tracks), and the drive's state shared by the two files of its command set (devices/mmc.c:
 * media state, reads, the command table; devices/mmc_info.c: the commands that describe the disc
 * and the drive). The CUE sheet parser is a pure function over text so the fuzz target and the
 * unit tests call it without files.
 */
#ifndef STORSTACK_DEVICES_MMC_P_H
#define STORSTACK_DEVICES_MMC_P_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMC_MAX_TRACKS     99
#define MMC_MAX_FILES      99
#define MMC_RAW_SECTOR     2352u
#define MMC_USER_SECTOR    2048u
#define MMC_CD_MAX_SECTORS 405000u /* 90 minutes: a larger 2048-byte image is a DVD-ROM */

/* How a track's sectors are stored in its file (the CUE sheet's track modes). */
enum mmc_track_mode {
    MMC_MODE_AUDIO, /* CD-DA, 2352 bytes of samples */
    MMC_MODE1_2048, /* Mode 1 user data only (ISO images, MODE1/2048) */
    MMC_MODE1_2352, /* Mode 1 raw: sync, header, 2048 user data, EDC/ECC */
    MMC_MODE2_2352, /* Mode 2 raw (XA): sync, header, subheader, form 1 or 2 */
    MMC_MODE2_2336, /* Mode 2 without sync and header: subheader first */
};

struct mmc_track {
    uint8_t number;  /* 1..99 */
    uint8_t mode;    /* enum mmc_track_mode */
    uint8_t file;    /* index into the image's files */
    uint32_t start;  /* disc LBA of INDEX 01 */
    uint32_t first;  /* disc LBA of the first sector stored for the track (INDEX 00 or 01) */
    uint32_t length; /* sectors from `first` to the next track (or the lead-out) */
    uint32_t sector; /* bytes per stored sector: 2048, 2336 or 2352 */
    uint64_t offset; /* byte offset of `first` in its file */
};

/* A parsed CUE sheet, before files are opened: frames are relative to each file's start. */
struct mmc_cue_track {
    uint8_t number;
    uint8_t mode;
    uint8_t file;
    bool has_index0;
    bool has_index1;
    uint8_t nindex;      /* INDEX lines seen in this track */
    uint8_t last_index;  /* the last INDEX number seen: numbers ascend */
    uint32_t last_frame; /* and so do their times */
    uint32_t index0;     /* frames */
    uint32_t index1;     /* frames */
};

struct mmc_cue {
    uint32_t nfiles;
    uint32_t ntracks;
    char files[MMC_MAX_FILES][256];
    struct mmc_cue_track tracks[MMC_MAX_TRACKS];
};

/*
 * Parses a CUE sheet of len bytes (not necessarily NUL-terminated). Accepts FILE (BINARY, or
 * MOTOROLA for big-endian audio is refused), TRACK with the modes above, INDEX 00/01 (other
 * indexes are accepted and ignored), and ignores REM, TITLE, PERFORMER, SONGWRITER, CATALOG,
 * ISRC, FLAGS, CDTEXTFILE. PREGAP and POSTGAP (gaps not stored in the file) are refused. Returns 0,
 * or -EINVAL with a reason naming the line in err.
 */
int mmc_cue_parse(const char *text, size_t len, struct mmc_cue *cue, char *err, size_t errlen);

/*
 * Lays the parsed sheet out on a disc given each file's size in bytes: tracks in order, each file
 * following the one before it. Returns 0 or -EINVAL with a reason in err.
 */
int mmc_cue_layout(const struct mmc_cue *cue, const uint64_t *file_sizes, struct mmc_track *tracks,
                   uint32_t *ntracks, uint32_t *leadout, char *err, size_t errlen);

enum mmc_media {
    MMC_MEDIA_CD,  /* CD-ROM profile 0008h */
    MMC_MEDIA_DVD, /* DVD-ROM profile 0010h */
};

/* An opened disc image: immutable after mmc_image_open, shared by readers under the LU's lock. */
struct mmc_image {
    char path[4096];
    uint8_t media; /* enum mmc_media */
    uint32_t ntracks;
    uint32_t leadout; /* LBA of the lead-out: the capacity in sectors */
    uint32_t nfiles;
    int fds[MMC_MAX_FILES];
    struct mmc_track tracks[MMC_MAX_TRACKS];
};

/*
 * Opens an image: a .cue sheet (its FILE entries relative to the sheet's folder), else a
 * 2048-byte-sector image (ISO 9660, UDF) as one Mode 1 data track; larger than a CD can hold, it
 * is a DVD-ROM. Returns 0 or a negative errno with a reason in err.
 */
int mmc_image_open(const char *path, struct mmc_image **out, char *err, size_t errlen);
void mmc_image_close(struct mmc_image *img);
/* The track holding lba (first..first+length), or NULL past the last track. */
const struct mmc_track *mmc_image_track(const struct mmc_image *img, uint32_t lba);
/* Reads the stored bytes of count sectors of track t from lba (count * t->sector bytes) into
 * buf. 0 or a negative errno. */
int mmc_image_read(const struct mmc_image *img, const struct mmc_track *t, uint32_t lba,
                   uint32_t count, uint8_t *buf);

/* mmc_edc.c: the EDC of len bytes (ECMA-130 14.3), and a Mode 1 sector's EDC, zero field and P
 * and Q parity (bytes 2064..2351) from its sync, header and user data. */
uint32_t mmc_edc(const uint8_t *p, size_t len);
void mmc_mode1_edc_ecc(uint8_t *sector);

/* LBA to MSF (MMC-6 table 555: LBA 0 is 00:02:00). */
static inline void mmc_lba_to_msf(uint32_t lba, uint8_t *m, uint8_t *s, uint8_t *f)
{
    uint32_t v = lba + 150;
    *m = (uint8_t)(v / (60 * 75));
    *s = (uint8_t)((v / 75) % 60);
    *f = (uint8_t)(v % 75);
}

/* ---- the drive (devices/mmc.c, devices/mmc_info.c) ----------------------------------------- */

struct scsi_lu;
struct scsi_cmd;

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

struct mmc_dev *mmc_of(struct scsi_lu *lu);
uint32_t mmc_max_speed(const struct mmc_image *img);
/* The medium check of every media-access command, with m->lock held: NOT READY 3Ah/01h, 3Ah/02h
 * or 04h/01h into cmd (when not NULL); TRUE when a disc is ready. */
bool mmc_ready(struct scsi_lu *lu, struct mmc_dev *m, struct scsi_cmd *cmd);
void mmc_lba_out_of_range(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba);
void mmc_incompatible(struct scsi_cmd *cmd, struct scsi_lu *lu);
uint8_t mmc_track_control(const struct mmc_track *t);

/* mmc_info.c: the commands that describe the disc and the drive */
int mmc_read_toc(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_read_disc_info(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_read_track_info(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_get_configuration(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_gesn(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_mechanism_status(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_mode_sense6(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_mode_sense10(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_set_cd_speed(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_set_streaming(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_get_performance(struct scsi_lu *lu, struct scsi_cmd *cmd);
int mmc_read_dvd_structure(struct scsi_lu *lu, struct scsi_cmd *cmd);

#endif
