/*
 * libFuzzer target for the MMC device's CUE sheet reader (devices/mmc_image.c), which takes
 * outside input: the sheet text is parsed (mmc_cue_parse) and, when it parses, laid out
 * (mmc_cue_layout) against file sizes taken from the input's first bytes, so the layout's
 * arithmetic (frames, offsets, sector sizes, track lengths) sees hostile values too. A laid-out
 * disc is checked for the invariants the MMC commands rely on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/mmc_p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mmc_cue cue;
    struct mmc_track tracks[MMC_MAX_TRACKS];
    uint64_t sizes[MMC_MAX_FILES];
    uint32_t n = 0, leadout = 0;
    char err[192];

    if (size < 8)
        return 0;
    /* the first 8 bytes seed the file sizes: multiples of sectors, or not */
    uint64_t seed;
    memcpy(&seed, data, sizeof(seed));
    for (uint32_t i = 0; i < MMC_MAX_FILES; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        sizes[i] = (seed >> 40) % (2ull << 30);
        if (seed & 1)
            sizes[i] -= sizes[i] % MMC_RAW_SECTOR;
    }
    if (mmc_cue_parse((const char *)data + 8, size - 8, &cue, err, sizeof(err)) != 0) {
        if (!memchr(err, '\0', sizeof(err)) || !err[0])
            abort(); /* a failure always says why */
        return 0;
    }
    if (cue.ntracks == 0 || cue.ntracks > MMC_MAX_TRACKS || cue.nfiles == 0 ||
        cue.nfiles > MMC_MAX_FILES)
        abort();
    if (mmc_cue_layout(&cue, sizes, tracks, &n, &leadout, err, sizeof(err)) != 0)
        return 0;
    uint32_t end = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct mmc_track *t = &tracks[i];
        if (t->length == 0 || t->start < t->first || t->start >= t->first + t->length ||
            t->first < end || t->file >= cue.nfiles ||
            t->offset + (uint64_t)t->length * t->sector > sizes[t->file])
            abort();
        end = t->first + t->length;
    }
    if (end != leadout)
        abort();
    return 0;
}
