/*
 * Private face of the MMC device (peripheral device type 05h): the disc image model the MMC
 * command set reads from (devices/mmc.c) and the image readers that build it (devices/mmc_image.c:
 * ISO 9660/UDF images of 2048-byte sectors, BIN/CUE images of 2352-byte raw sectors with data and
 * audio tracks). The CUE sheet parser is a pure function over text so the fuzz target and the unit
 * tests call it without files.
 */
#ifndef STORSTACK_DEVICES_MMC_P_H
#define STORSTACK_DEVICES_MMC_P_H

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
    uint32_t index0; /* frames */
    uint32_t index1; /* frames */
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

/* LBA to MSF (MMC-6 table 555: LBA 0 is 00:02:00). */
static inline void mmc_lba_to_msf(uint32_t lba, uint8_t *m, uint8_t *s, uint8_t *f)
{
    uint32_t v = lba + 150;
    *m = (uint8_t)(v / (60 * 75));
    *s = (uint8_t)((v / 75) % 60);
    *f = (uint8_t)(v % 75);
}

#endif
