/*
 * Disc images for the MMC device: an ISO 9660/UDF image (2048-byte sectors) is one Mode 1 data
 * track; a CUE sheet names BIN files of raw 2352-byte sectors (or 2048/2336) holding data and audio
 * tracks. The CUE sheet is outside input: every line, number and name is checked here, once, and
 * the track layout is validated against the file sizes before a single sector is read. Reads are
 * positional (pread) on descriptors opened read-only, so any number of threads may read at once.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/mmc_p.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* ---- CUE sheet parser -------------------------------------------------------------------- */

struct cue_line {
    const char *p, *end;
    unsigned no;
};

static void skip_space(struct cue_line *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
        l->p++;
}

/* The next word (or "quoted string") into buf; 0 when none or too long. */
static size_t next_word(struct cue_line *l, char *buf, size_t cap)
{
    size_t n = 0;
    skip_space(l);
    if (l->p >= l->end)
        return 0;
    if (*l->p == '"') {
        l->p++;
        while (l->p < l->end && *l->p != '"') {
            if (n + 1 >= cap)
                return 0;
            buf[n++] = *l->p++;
        }
        if (l->p >= l->end)
            return 0; /* unterminated quote */
        l->p++;
        if (n == 0)
            return 0;
    } else {
        while (l->p < l->end && *l->p != ' ' && *l->p != '\t') {
            if (n + 1 >= cap)
                return 0;
            buf[n++] = *l->p++;
        }
    }
    buf[n] = '\0';
    return n;
}

static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
    uint32_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
        v = v * 10 + (uint32_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* mm:ss:ff, frames < 75, seconds < 60 */
static bool parse_msf(const char *s, uint32_t *frames)
{
    char part[3][8];
    int k = 0;
    size_t n = 0;
    for (;; s++) {
        if (*s == ':' || *s == '\0') {
            if (n == 0 || k >= 3)
                return false;
            part[k++][n] = '\0';
            n = 0;
            if (*s == '\0')
                break;
            continue;
        }
        if (n >= 7)
            return false;
        part[k < 3 ? k : 2][n++] = *s;
    }
    uint32_t m, sec, f;
    if (k != 3 || !parse_uint(part[0], 999, &m) || !parse_uint(part[1], 59, &sec) ||
        !parse_uint(part[2], 74, &f))
        return false;
    *frames = (m * 60 + sec) * 75 + f;
    return true;
}

static const struct {
    const char *name;
    uint8_t mode;
} cue_modes[] = {
    {"AUDIO", MMC_MODE_AUDIO},      {"MODE1/2048", MMC_MODE1_2048}, {"MODE1/2352", MMC_MODE1_2352},
    {"MODE2/2352", MMC_MODE2_2352}, {"MODE2/2336", MMC_MODE2_2336},
};

static uint32_t mode_sector(uint8_t mode)
{
    switch (mode) {
    case MMC_MODE1_2048:
        return 2048;
    case MMC_MODE2_2336:
        return 2336;
    default:
        return MMC_RAW_SECTOR;
    }
}

int mmc_cue_parse(const char *text, size_t len, struct mmc_cue *cue, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    unsigned no = 0;
    struct mmc_cue_track *cur = NULL;

    memset(cue, 0, sizeof(*cue));
    /* a UTF-8 byte order mark is allowed at the start */
    if (len >= 3 && (uint8_t)p[0] == 0xEF && (uint8_t)p[1] == 0xBB && (uint8_t)p[2] == 0xBF)
        p += 3;
    while (p < end) {
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        struct cue_line l = {p, eol, ++no};
        p = eol;
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
        for (const char *c = l.p; c < l.end; c++) {
            if (*c == '\0')
                return fail(err, errlen, "line %u: NUL byte", no);
        }
        char cmd[32], a[256], b[64];
        if (!next_word(&l, cmd, sizeof(cmd))) {
            skip_space(&l);
            if (l.p < l.end)
                return fail(err, errlen, "line %u: unreadable command", no);
            continue; /* empty line */
        }
        for (char *c = cmd; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        if (!strcmp(cmd, "REM") || !strcmp(cmd, "TITLE") || !strcmp(cmd, "PERFORMER") ||
            !strcmp(cmd, "SONGWRITER") || !strcmp(cmd, "CATALOG") || !strcmp(cmd, "ISRC") ||
            !strcmp(cmd, "FLAGS") || !strcmp(cmd, "CDTEXTFILE"))
            continue;
        if (!strcmp(cmd, "FILE")) {
            if (!next_word(&l, a, sizeof(a)))
                return fail(err, errlen, "line %u: FILE needs a name (at most 255 bytes)", no);
            if (!next_word(&l, b, sizeof(b)))
                return fail(err, errlen, "line %u: FILE needs a type (BINARY)", no);
            if (strcasecmp(b, "BINARY") != 0)
                return fail(err, errlen, "line %u: FILE type %s is not supported (BINARY)", no, b);
            if (cue->nfiles >= MMC_MAX_FILES)
                return fail(err, errlen, "line %u: more than %u files", no, MMC_MAX_FILES);
            if (strchr(a, '/') && a[0] == '/')
                return fail(err, errlen, "line %u: FILE must be relative to the sheet", no);
            memcpy(cue->files[cue->nfiles++], a, strlen(a) + 1);
            cur = NULL;
        } else if (!strcmp(cmd, "TRACK")) {
            uint32_t n;
            if (cue->nfiles == 0)
                return fail(err, errlen, "line %u: TRACK before any FILE", no);
            if (!next_word(&l, a, sizeof(a)) || !parse_uint(a, 99, &n) || n == 0)
                return fail(err, errlen, "line %u: TRACK number must be 1..99", no);
            if (cue->ntracks && n != cue->tracks[cue->ntracks - 1].number + 1u)
                return fail(err, errlen, "line %u: TRACK %u does not follow track %u", no, n,
                            cue->tracks[cue->ntracks - 1].number);
            if (!next_word(&l, b, sizeof(b)))
                return fail(err, errlen, "line %u: TRACK needs a mode", no);
            size_t m;
            for (m = 0; m < sizeof(cue_modes) / sizeof(cue_modes[0]); m++) {
                if (!strcasecmp(b, cue_modes[m].name))
                    break;
            }
            if (m == sizeof(cue_modes) / sizeof(cue_modes[0]))
                return fail(err, errlen, "line %u: track mode %s is not supported", no, b);
            cur = &cue->tracks[cue->ntracks++];
            cur->number = (uint8_t)n;
            cur->mode = cue_modes[m].mode;
            cur->file = (uint8_t)(cue->nfiles - 1);
        } else if (!strcmp(cmd, "INDEX")) {
            uint32_t idx, frames;
            if (!cur)
                return fail(err, errlen, "line %u: INDEX outside a TRACK", no);
            if (!next_word(&l, a, sizeof(a)) || !parse_uint(a, 99, &idx))
                return fail(err, errlen, "line %u: INDEX number must be 0..99", no);
            if (!next_word(&l, b, sizeof(b)) || !parse_msf(b, &frames))
                return fail(err, errlen, "line %u: INDEX time must be mm:ss:ff", no);
            if (cur->nindex && idx <= cur->last_index)
                return fail(err, errlen, "line %u: INDEX %02u after INDEX %02u (numbers ascend)",
                            no, idx, cur->last_index);
            if (cur->nindex && frames < cur->last_frame)
                return fail(err, errlen, "line %u: INDEX %02u before INDEX %02u in time", no, idx,
                            cur->last_index);
            cur->nindex++;
            cur->last_index = (uint8_t)idx;
            cur->last_frame = frames;
            if (idx == 0) {
                cur->has_index0 = true;
                cur->index0 = frames;
            } else if (idx == 1) {
                cur->has_index1 = true;
                cur->index1 = frames;
            }
        } else if (!strcmp(cmd, "PREGAP") || !strcmp(cmd, "POSTGAP")) {
            return fail(err, errlen, "line %u: %s (a gap not stored in the file) is not supported",
                        no, cmd);
        } else {
            return fail(err, errlen, "line %u: unknown command %s", no, cmd);
        }
        skip_space(&l);
        if (l.p < l.end)
            return fail(err, errlen, "line %u: unexpected text after %s", no, cmd);
    }
    if (cue->ntracks == 0)
        return fail(err, errlen, "no TRACK in the sheet");
    if (cue->tracks[0].number != 1)
        return fail(err, errlen, "the first track must be track 1");
    return 0;
}

/* ---- layout ------------------------------------------------------------------------------ */

int mmc_cue_layout(const struct mmc_cue *cue, const uint64_t *file_sizes, struct mmc_track *tracks,
                   uint32_t *ntracks, uint32_t *leadout, char *err, size_t errlen)
{
    uint64_t lba = 0; /* disc LBA where the current file starts */
    uint32_t i = 0;

    if (cue->ntracks == 0 || cue->ntracks > MMC_MAX_TRACKS)
        return fail(err, errlen, "no tracks");
    while (i < cue->ntracks) {
        uint8_t f = cue->tracks[i].file;
        uint32_t j = i; /* tracks i..j-1 are in file f */
        while (j < cue->ntracks && cue->tracks[j].file == f)
            j++;
        uint64_t off = 0;
        uint32_t prev_frame = 0;
        for (uint32_t k = i; k < j; k++) {
            const struct mmc_cue_track *c = &cue->tracks[k];
            struct mmc_track *t = &tracks[k];
            if (!c->has_index1)
                return fail(err, errlen, "track %u has no INDEX 01", c->number);
            uint32_t first = c->has_index0 ? c->index0 : c->index1;
            if (k > i && first < prev_frame)
                return fail(err, errlen, "track %u starts before track %u in the same file",
                            c->number, cue->tracks[k - 1].number);
            if (k > i) {
                /* the previous track runs up to this one's first stored sector */
                struct mmc_track *pt = &tracks[k - 1];
                pt->length = first - prev_frame;
                off += (uint64_t)pt->length * pt->sector;
            } else {
                /* sectors before a file's first INDEX 01 (no INDEX 00) belong to that track */
                first = 0;
            }
            t->number = c->number;
            t->mode = c->mode;
            t->file = f;
            t->sector = mode_sector(c->mode);
            t->first = (uint32_t)(lba + first);
            t->start = (uint32_t)(lba + c->index1);
            t->offset = off;
            prev_frame = first;
        }
        struct mmc_track *last = &tracks[j - 1];
        if (file_sizes[f] < last->offset)
            return fail(err, errlen, "file %s is shorter than its tracks", cue->files[f]);
        uint64_t rest = file_sizes[f] - last->offset;
        if (rest % last->sector)
            return fail(err, errlen,
                        "file %s: %llu bytes after track %u are not whole %u-byte "
                        "sectors",
                        cue->files[f], (unsigned long long)rest, last->number, last->sector);
        last->length = (uint32_t)(rest / last->sector < UINT32_MAX ? rest / last->sector : 0);
        for (uint32_t k = i; k < j; k++) {
            if (tracks[k].length == 0 || tracks[k].start >= tracks[k].first + tracks[k].length)
                return fail(err, errlen, "track %u has no sectors after INDEX 01",
                            tracks[k].number);
        }
        lba = (uint64_t)last->first + last->length;
        /* the lead-out must be addressable in MSF (MMC-6: under 100 minutes) */
        if (lba > 99u * 60 * 75 - 150)
            return fail(err, errlen, "the disc is longer than 99 minutes");
        i = j;
    }
    *ntracks = cue->ntracks;
    *leadout = (uint32_t)lba;
    return 0;
}

/* ---- opening and reading ----------------------------------------------------------------- */

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int open_ro(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = S_ISREG(st.st_mode) ? -errno : -EINVAL;
        close(fd);
        return e;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

static int open_cue(struct mmc_image *img, const char *path, char *err, size_t errlen)
{
    uint64_t size;
    int fd = open_ro(path, &size);
    if (fd < 0)
        return fail(err, errlen, "%s: %s", path, strerror(-fd)), fd;
    if (size > 1024 * 1024) {
        close(fd);
        return fail(err, errlen, "%s: a CUE sheet over 1 MiB is not plausible", path);
    }
    char *text = malloc(size + 1);
    struct mmc_cue *cue = malloc(sizeof(*cue));
    int rc = -ENOMEM;
    if (!text || !cue)
        goto out;
    ssize_t got = pread(fd, text, size, 0);
    if (got != (ssize_t)size) {
        rc = fail(err, errlen, "%s: short read", path);
        goto out;
    }
    char perr[192];
    rc = mmc_cue_parse(text, size, cue, perr, sizeof(perr));
    if (rc) {
        fail(err, errlen, "%s: %s", path, perr);
        goto out;
    }
    /* FILE names are relative to the sheet's folder */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
    uint64_t sizes[MMC_MAX_FILES];
    for (uint32_t i = 0; i < cue->nfiles; i++) {
        char full[4096 + 256];
        snprintf(full, sizeof(full), "%.*s%s", (int)dirlen, path, cue->files[i]);
        int ffd = open_ro(full, &sizes[i]);
        if (ffd < 0) {
            rc = ffd;
            fail(err, errlen, "%s: %s", full, strerror(-ffd));
            goto out;
        }
        img->fds[img->nfiles++] = ffd;
    }
    rc = mmc_cue_layout(cue, sizes, img->tracks, &img->ntracks, &img->leadout, perr, sizeof(perr));
    if (rc)
        fail(err, errlen, "%s: %s", path, perr);
    img->media = MMC_MEDIA_CD;
out:
    free(text);
    free(cue);
    close(fd);
    return rc;
}

int mmc_image_open(const char *path, struct mmc_image **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path || strlen(path) >= sizeof(((struct mmc_image *)0)->path))
        return fail(err, errlen, "no image path");
    struct mmc_image *img = calloc(1, sizeof(*img));
    if (!img)
        return -ENOMEM;
    memcpy(img->path, path, strlen(path) + 1);
    int rc;
    if (ends_with_ci(path, ".cue")) {
        rc = open_cue(img, path, err, errlen);
    } else {
        uint64_t size;
        int fd = open_ro(path, &size);
        if (fd < 0) {
            rc = fd;
            fail(err, errlen, "%s: %s", path, strerror(-fd));
        } else {
            img->fds[img->nfiles++] = fd;
            if (size == 0 || size % MMC_USER_SECTOR) {
                rc = fail(err, errlen, "%s: %llu bytes is not a whole number of 2048-byte sectors",
                          path, (unsigned long long)size);
            } else if (size / MMC_USER_SECTOR > UINT32_MAX - 1) {
                rc = fail(err, errlen, "%s: too large", path);
            } else {
                struct mmc_track *t = &img->tracks[0];
                img->ntracks = 1;
                t->number = 1;
                t->mode = MMC_MODE1_2048;
                t->sector = MMC_USER_SECTOR;
                t->length = (uint32_t)(size / MMC_USER_SECTOR);
                img->leadout = t->length;
                img->media = t->length > MMC_CD_MAX_SECTORS ? MMC_MEDIA_DVD : MMC_MEDIA_CD;
                rc = 0;
            }
        }
    }
    if (rc) {
        mmc_image_close(img);
        return rc;
    }
    *out = img;
    return 0;
}

void mmc_image_close(struct mmc_image *img)
{
    if (!img)
        return;
    for (uint32_t i = 0; i < img->nfiles; i++)
        close(img->fds[i]);
    free(img);
}

const struct mmc_track *mmc_image_track(const struct mmc_image *img, uint32_t lba)
{
    for (uint32_t i = 0; i < img->ntracks; i++) {
        const struct mmc_track *t = &img->tracks[i];
        if (lba >= t->first && lba - t->first < t->length)
            return t;
    }
    return NULL;
}

int mmc_image_read(const struct mmc_image *img, const struct mmc_track *t, uint32_t lba,
                   uint32_t count, uint8_t *buf)
{
    uint64_t off = t->offset + (uint64_t)(lba - t->first) * t->sector;
    size_t want = (size_t)count * t->sector, done = 0;
    if (lba < t->first || lba - t->first > t->length || count > t->length - (lba - t->first))
        return -EINVAL;
    while (done < want) {
        ssize_t n = pread(img->fds[t->file], buf + done, want - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the file shrank under us */
        done += (size_t)n;
    }
    return 0;
}
