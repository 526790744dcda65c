/*
 * The MMC device (devices/mmc.c, devices/mmc_image.c) over images this test writes: a 2048-byte
 * "ISO" with a per-sector pattern, a BIN/CUE with a raw Mode 1 data track and an audio track,
 * and a sparse file larger than a CD (a DVD-ROM). Every command is checked for its data against
 * the image bytes and for its sense on bad fields and wrong media.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "devices/mmc_p.h"
#include "devices_test.h"

static char dir[64];
static char iso_path[128], bin_path[128], cue_path[128], dvd_path[128];

#define ISO_SECTORS   300
#define DATA_SECTORS  200
#define AUDIO_SECTORS 150

static uint8_t iso_byte(uint32_t lba, uint32_t i)
{
    return (uint8_t)(lba * 7 + i * 13 + 1);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A raw Mode 1 sector: sync, BCD MSF header, user data (pattern), EDC/ECC area (0xEE). */
static void raw_mode1(uint32_t lba, uint8_t *s)
{
    memset(s, 0, MMC_RAW_SECTOR);
    memset(s + 1, 0xFF, 10);
    uint8_t m, sec, f;
    mmc_lba_to_msf(lba, &m, &sec, &f);
    s[12] = (uint8_t)((m / 10) << 4 | m % 10);
    s[13] = (uint8_t)((sec / 10) << 4 | sec % 10);
    s[14] = (uint8_t)((f / 10) << 4 | f % 10);
    s[15] = 1;
    for (uint32_t i = 0; i < 2048; i++)
        s[16 + i] = iso_byte(lba, i);
    memset(s + 2064, 0xEE, 288);
}

static int setup_images(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/test_mmc.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(iso_path, sizeof(iso_path), "%s/disc.iso", dir);
    snprintf(bin_path, sizeof(bin_path), "%s/disc.bin", dir);
    snprintf(cue_path, sizeof(cue_path), "%s/disc.cue", dir);
    snprintf(dvd_path, sizeof(dvd_path), "%s/dvd.iso", dir);

    uint8_t *iso = malloc((size_t)ISO_SECTORS * 2048);
    for (uint32_t l = 0; l < ISO_SECTORS; l++)
        for (uint32_t i = 0; i < 2048; i++)
            iso[l * 2048 + i] = iso_byte(l, i);
    write_file(iso_path, iso, (size_t)ISO_SECTORS * 2048);
    free(iso);

    size_t binlen = (size_t)(DATA_SECTORS + AUDIO_SECTORS) * MMC_RAW_SECTOR;
    uint8_t *bin = malloc(binlen);
    for (uint32_t l = 0; l < DATA_SECTORS; l++)
        raw_mode1(l, bin + (size_t)l * MMC_RAW_SECTOR);
    for (size_t i = (size_t)DATA_SECTORS * MMC_RAW_SECTOR; i < binlen; i++)
        bin[i] = (uint8_t)(i * 31);
    write_file(bin_path, bin, binlen);
    free(bin);
    /* track 2: pregap from sector 200 (00:02:50), INDEX 01 at 210 (00:02:60) */
    const char *cue = "REM generated\r\nFILE \"disc.bin\" BINARY\r\n"
                      "  TRACK 01 MODE1/2352\r\n    INDEX 01 00:00:00\r\n"
                      "  TRACK 02 AUDIO\r\n    INDEX 00 00:02:50\r\n    INDEX 01 00:02:60\r\n";
    write_file(cue_path, cue, strlen(cue));

    int fd = open(dvd_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(MMC_CD_MAX_SECTORS + 1000) * 2048), 0);
    close(fd);
    return 0;
}

static int teardown_images(void **state)
{
    unlink(iso_path);
    unlink(bin_path);
    unlink(cue_path);
    unlink(dvd_path);
    rmdir(dir);
    return 0;
}

/* A drive with the image loaded and the power-on and medium-change unit attentions consumed. */
static struct scsi_lu *drive(const char *image)
{
    struct scsi_cdrom_config cfg = {.device_id = 5, .image = image};
    struct scsi_lu *lu;
    char err[256] = "";
    int rc = scsi_cdrom_create(&cfg, &lu, err, sizeof(err));
    if (rc)
        fail_msg("create: %s", err);
    static const uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    struct tcmd t;
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00);
    return lu;
}

static void test_inquiry_reports_removable_cdrom(void **state)
{
    struct scsi_lu *lu = drive(NULL);
    uint8_t buf[96];
    struct tcmd t;
    uint8_t cdb[6] = {SCSIOP_INQUIRY, 0, 0, 0, 96};
    run_cmd(lu, &t, cdb, 6, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(buf[0], 0x05);
    assert_int_equal(buf[1] & 0x80, 0x80);
    assert_memory_equal(buf + 16, "VIRTUAL CDROM   ", 16);
    assert_int_equal(scsi_get_be16(buf + 62), 0x04E0); /* MMC-6, not SBC-3 */
    uint8_t vpd[6] = {SCSIOP_INQUIRY, 1, 0, 0, 96};
    run_cmd(lu, &t, vpd, 6, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(buf[3], 3);
    assert_int_equal(buf[6], 0x83);
    vpd[2] = 0xB0; /* block limits are a disk's page */
    run_cmd(lu, &t, vpd, 6, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    scsi_lu_destroy(lu);
}

static void test_empty_drive_reports_no_medium_then_load_changes_medium(void **state)
{
    struct scsi_lu *lu = drive(NULL);
    static const uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    struct tcmd t;
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_NOT_READY, 0x3A, 0x01);
    uint8_t rs[6] = {SCSIOP_REQUEST_SENSE, 0, 0, 0, 18};
    uint8_t sense[18];
    run_cmd(lu, &t, rs, 6, SCSI_DIR_IN, sense, sizeof(sense));
    assert_good(&t);
    assert_int_equal(sense[2], SCSI_SENSE_NOT_READY);
    assert_int_equal(sense[12], 0x3A);

    char err[256];
    assert_int_equal(scsi_cdrom_load(lu, iso_path, err, sizeof(err)), 0);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);

    assert_int_equal(scsi_cdrom_load(lu, "/nonexistent/x.iso", err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.iso"));
    scsi_lu_destroy(lu);
}

static void test_becoming_ready_after_load(void **state)
{
    struct scsi_cdrom_config cfg = {.ready_delay_ms = 200};
    struct scsi_lu *lu;
    assert_int_equal(scsi_cdrom_create(&cfg, &lu, NULL, 0), 0);
    static const uint8_t tur[6] = {SCSIOP_TEST_UNIT_READY};
    struct tcmd t;
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0); /* power-on UA */
    assert_int_equal(scsi_cdrom_load(lu, iso_path, NULL, 0), 0);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_NOT_READY, 0x04, 0x01);
    usleep(250 * 1000);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    scsi_lu_destroy(lu);
}

static void test_read_capacity_and_read10_match_the_iso(void **state)
{
    struct scsi_lu *lu = drive(iso_path);
    struct tcmd t;
    uint8_t cap[8];
    uint8_t rc[10] = {SCSIOP_READ_CAPACITY};
    run_cmd(lu, &t, rc, 10, SCSI_DIR_IN, cap, 8);
    assert_good(&t);
    assert_int_equal(scsi_get_be32(cap), ISO_SECTORS - 1);
    assert_int_equal(scsi_get_be32(cap + 4), 2048);

    static uint8_t buf[100 * 2048];
    uint8_t r10[10] = {SCSIOP_READ, 0, 0, 0, 0, 150, 0, 0, 100};
    run_cmd(lu, &t, r10, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, sizeof(buf));
    for (uint32_t l = 0; l < 100; l++)
        for (uint32_t i = 0; i < 2048; i += 97)
            assert_int_equal(buf[l * 2048 + i], iso_byte(150 + l, i));

    r10[5] = 250; /* 250 + 100 > 300 */
    run_cmd(lu, &t, r10, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
    uint8_t r12[12] = {SCSIOP_READ12, 0, 0, 0, 0, 10, 0, 0, 0, 2, 0x80};
    run_cmd(lu, &t, r12, 12, SCSI_DIR_IN, buf, 4096);
    assert_good(&t);
    assert_int_equal(buf[0], iso_byte(10, 0));
    struct scsi_cdrom_status st;
    scsi_cdrom_status(lu, &st);
    assert_int_equal(st.streaming_reads, 1);
    r12[10] = 0x40; /* reserved bit beside STREAMING */
    run_cmd(lu, &t, r12, 12, SCSI_DIR_IN, buf, 4096);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 10, 6);
    scsi_lu_destroy(lu);
}

static void test_cue_toc_formats_match_the_sheet(void **state)
{
    struct scsi_lu *lu = drive(cue_path);
    struct tcmd t;
    uint8_t buf[256];
    uint8_t toc[10] = {SCSIOP_READ_TOC, 0, 0, 0, 0, 0, 0, 0, 255};
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf), 2 + 3 * 8);
    assert_int_equal(buf[2], 1);
    assert_int_equal(buf[3], 2);
    assert_int_equal(buf[5], 0x14); /* ADR 1, data track */
    assert_int_equal(scsi_get_be32(buf + 8), 0);
    assert_int_equal(buf[13], 0x10); /* audio */
    assert_int_equal(buf[14], 2);
    assert_int_equal(scsi_get_be32(buf + 16), 210); /* INDEX 01 00:02:60 */
    assert_int_equal(buf[22], 0xAA);
    assert_int_equal(scsi_get_be32(buf + 24), DATA_SECTORS + AUDIO_SECTORS);
    /* MSF: the lead-out at 350 + 150 frames = 00:06:50 */
    toc[1] = 0x02;
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_memory_equal(buf + 24, "\x00\x00\x06\x32", 4);
    /* format 1: session information */
    toc[1] = 0;
    toc[2] = 1;
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf), 10);
    assert_int_equal(buf[6], 1);
    /* format 2: full TOC, A0 A1 A2 and two tracks */
    toc[2] = 2;
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf), 2 + 5 * 11);
    assert_int_equal(buf[4 + 3], 0xA0);
    assert_int_equal(buf[4 + 8], 1);
    assert_int_equal(buf[4 + 11 + 8], 2);
    assert_int_equal(buf[4 + 22 + 3], 0xA2);
    assert_memory_equal(buf + 4 + 22 + 8, "\x00\x06\x32", 3);
    /* bad fields: format 3 (ATIP, no recordable media), starting track past the last */
    toc[2] = 3;
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 2, 3);
    toc[2] = 0;
    toc[6] = 3;
    run_cmd(lu, &t, toc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 6, -1);
    scsi_lu_destroy(lu);
}

static void test_read_cd_raw_user_and_audio_sectors(void **state)
{
    struct scsi_lu *lu = drive(cue_path);
    struct tcmd t;
    static uint8_t buf[4 * 2352];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0); /* the load UA */
    /* two raw sectors (sync, headers, user data, EDC/ECC) of the data track */
    uint8_t cd[12] = {SCSIOP_READ_CD, 0, 0, 0, 0, 5, 0, 0, 2, 0xF8, 0};
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 2 * 2352);
    uint8_t want[2352];
    raw_mode1(5, want);
    assert_memory_equal(buf, want, 2352);
    raw_mode1(6, want);
    assert_memory_equal(buf + 2352, want, 2352);
    /* user data only, expected type Mode 1 */
    cd[1] = 2 << 2;
    cd[9] = 0x10;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 2 * 2048);
    raw_mode1(5, want);
    assert_memory_equal(buf, want + 16, 2048);
    /* expected CD-DA on a data sector: ILLEGAL MODE FOR THIS TRACK */
    cd[1] = 1 << 2;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x64, 0x00);
    /* an audio sector (LBA 250 = file offset 250 * 2352) */
    cd[1] = 1 << 2;
    scsi_put_be32(cd + 2, 250);
    cd[8] = 1;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 2352);
    for (uint32_t i = 0; i < 2352; i += 101)
        assert_int_equal(buf[i], (uint8_t)(((size_t)250 * 2352 + i) * 31));
    /* READ (10) of an audio sector */
    uint8_t r10[10] = {SCSIOP_READ, 0, 0, 0, 0, 250, 0, 0, 1};
    run_cmd(lu, &t, r10, 10, SCSI_DIR_IN, buf, 2048);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x64, 0x00);
    /* past the lead-out */
    scsi_put_be32(cd + 2, 350);
    cd[1] = 0;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
    /* sub-channel data is not in any image; reserved expected sector type 7 */
    scsi_put_be32(cd + 2, 0);
    cd[10] = 0x02;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 10, 1);
    cd[10] = 0;
    cd[1] = 7 << 2;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    /* READ CD MSF 00:02:05 .. 00:02:07 = LBA 5, 6 */
    uint8_t msf[12] = {SCSIOP_READ_CD_MSF, 0, 0, 0, 2, 5, 0, 2, 7, 0x10, 0};
    run_cmd(lu, &t, msf, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 2 * 2048);
    raw_mode1(6, want);
    assert_memory_equal(buf + 2048, want + 16, 2048);
    msf[5] = 80; /* frame 80 is not a frame */
    run_cmd(lu, &t, msf, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    scsi_lu_destroy(lu);
}

/* The two syndromes of an RS codeword over GF(2^8) (x^8 + x^4 + x^3 + x^2 + 1), computed with
 * log tables rather than the encoder's: sum c_k and sum c_k a^(n-1-k) (ECMA-130 annex A). */
static void rs_syndromes(const uint8_t *c, int n, uint8_t *s0, uint8_t *s1)
{
    uint8_t exp[512];
    int log[256];
    int x = 1;
    for (int i = 0; i < 255; i++) {
        exp[i] = exp[i + 255] = (uint8_t)x;
        log[x] = i;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11D;
    }
    *s0 = *s1 = 0;
    for (int k = 0; k < n; k++) {
        *s0 ^= c[k];
        if (c[k])
            *s1 ^= exp[log[c[k]] + (n - 1 - k)];
    }
}

/* Checks a Mode 1 raw sector's EDC and its 86 P and 52 Q codewords. */
static void assert_mode1_sector_valid(const uint8_t *sec)
{
    assert_int_equal(mmc_edc(sec, 2068), 0); /* a CRC over data and CRC leaves no remainder */
    for (int k = 2068; k < 2076; k++)
        assert_int_equal(sec[k], 0);
    const uint8_t *b = sec + 12;
    for (int j = 0; j < 86; j++) { /* P: 24 rows of a word column, one byte plane */
        uint8_t c[26], s0, s1;
        for (int i = 0; i < 24; i++)
            c[i] = b[(j / 2) * 2 + (j % 2) + i * 86];
        c[24] = sec[2076 + j];
        c[25] = sec[2076 + 86 + j];
        rs_syndromes(c, 26, &s0, &s1);
        assert_int_equal(s0, 0);
        assert_int_equal(s1, 0);
    }
    for (int j = 0; j < 52; j++) { /* Q: a diagonal of 43 words over the 26 rows */
        uint8_t c[45], s0, s1;
        for (int i = 0; i < 43; i++)
            c[i] = b[((j / 2) * 86 + (j % 2) + i * 88) % 2236];
        c[43] = sec[2248 + j];
        c[44] = sec[2248 + 52 + j];
        rs_syndromes(c, 45, &s0, &s1);
        assert_int_equal(s0, 0);
        assert_int_equal(s1, 0);
    }
}

static void test_read_cd_on_iso_rebuilds_sync_header_edc_and_ecc(void **state)
{
    struct scsi_lu *lu = drive(iso_path);
    struct tcmd t;
    static uint8_t buf[3 * 2352];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    uint8_t cd[12] = {SCSIOP_READ_CD, 0, 0, 0, 0, 0, 0, 0, 1, 0xB0, 0}; /* sync, header, user */
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 16 + 2048);
    assert_memory_equal(buf + 12, "\x00\x02\x00\x01", 4);
    assert_int_equal(buf[16], iso_byte(0, 0));
    /* whole raw sectors: EDC and ECC computed for what the image stores */
    cd[5] = 77;
    cd[8] = 3;
    cd[9] = 0xF8;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 3 * 2352);
    for (int k = 0; k < 3; k++) {
        const uint8_t *sec = buf + k * 2352;
        assert_memory_equal(sec, "\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00", 12);
        assert_int_equal(sec[16], iso_byte(77 + k, 0));
        assert_int_equal(sec[16 + 2047], iso_byte(77 + k, 2047));
        assert_mode1_sector_valid(sec);
    }
    /* the checker is not blind: one flipped bit and the EDC no longer divides */
    buf[100] ^= 0x10;
    assert_true(mmc_edc(buf, 2068) != 0);
    /* EDC/ECC alone */
    cd[8] = 1;
    cd[9] = 0x08;
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf + 2352, 288);
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 288);
    assert_memory_equal(buf + 2352, buf + 2064, 288);
    scsi_lu_destroy(lu);
}

static void test_dvd_image_refuses_cd_commands_and_reports_structure(void **state)
{
    struct scsi_lu *lu = drive(dvd_path);
    struct tcmd t;
    static uint8_t buf[4096];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    uint8_t cd[12] = {SCSIOP_READ_CD, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0};
    run_cmd(lu, &t, cd, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x30, 0x02);
    uint8_t ds[12] = {SCSIOP_READ_DVD_STRUCTURE, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x04, 0};
    run_cmd(lu, &t, ds, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf), 2050);
    assert_int_equal(buf[4], 0x01);
    assert_int_equal(scsi_get_be32(buf + 12), 0x030000 + MMC_CD_MAX_SECTORS + 1000 - 1);
    ds[7] = 0x01;
    run_cmd(lu, &t, ds, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 8);
    assert_int_equal(buf[4], 0); /* no copy protection */
    ds[7] = 0x02;                /* disc key: not for unprotected media */
    run_cmd(lu, &t, ds, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 7, -1);
    uint8_t gc[10] = {SCSIOP_GET_CONFIGURATION, 0x02, 0, 0, 0, 0, 0, 0, 64};
    run_cmd(lu, &t, gc, 10, SCSI_DIR_IN, buf, 64);
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf + 6), 0x0010);
    scsi_lu_destroy(lu);

    lu = drive(iso_path);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    ds[7] = 0;
    run_cmd(lu, &t, ds, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x30, 0x02);
    scsi_lu_destroy(lu);
}

static void test_eject_refused_while_prevented_and_events_reported(void **state)
{
    struct scsi_lu *lu = drive(iso_path);
    struct tcmd t;
    uint8_t ev[8];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    uint8_t gesn[10] = {SCSIOP_GET_EVENT_STATUS, 1, 0, 0, 0x10, 0, 0, 0, 8};
    run_cmd(lu, &t, gesn, 10, SCSI_DIR_IN, ev, sizeof(ev));
    assert_good(&t);
    assert_int_equal(ev[2], 4);
    assert_int_equal(ev[4], 2); /* NewMedia */
    assert_int_equal(ev[5], 0x02);
    run_cmd(lu, &t, gesn, 10, SCSI_DIR_IN, ev, sizeof(ev));
    assert_int_equal(ev[4], 0); /* reported once */

    uint8_t prevent[6] = {SCSIOP_MEDIUM_REMOVAL, 0, 0, 0, 1};
    run_cmd(lu, &t, prevent, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    uint8_t eject[6] = {SCSIOP_START_STOP_UNIT, 0, 0, 0, 0x02};
    run_cmd(lu, &t, eject, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02);
    assert_int_equal(scsi_cdrom_load(lu, NULL, NULL, 0), -EBUSY);
    prevent[4] = 0;
    run_cmd(lu, &t, prevent, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(lu, &t, eject, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_NOT_READY, 0x3A, 0x02); /* tray open */
    run_cmd(lu, &t, gesn, 10, SCSI_DIR_IN, ev, sizeof(ev));
    assert_int_equal(ev[4], 3);    /* MediaRemoval */
    assert_int_equal(ev[5], 0x01); /* tray open, no medium */
    uint8_t mech[12] = {SCSIOP_MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, 0, 8};
    run_cmd(lu, &t, mech, 12, SCSI_DIR_IN, ev, sizeof(ev));
    assert_good(&t);
    assert_int_equal(ev[1] & 0x10, 0x10);
    eject[4] = 0x03; /* load: close the tray */
    run_cmd(lu, &t, eject, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    /* asynchronous GESN and bad power conditions are refused */
    gesn[1] = 0;
    run_cmd(lu, &t, gesn, 10, SCSI_DIR_IN, ev, sizeof(ev));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    assert_field_pointer(&t, true, 1, 0);
    eject[4] = 0x50;
    run_cmd(lu, &t, eject, 6, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    /* a power change is a power management event */
    eject[4] = 0x20;
    run_cmd(lu, &t, eject, 6, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    gesn[1] = 1;
    gesn[4] = 0x04;
    run_cmd(lu, &t, gesn, 10, SCSI_DIR_IN, ev, sizeof(ev));
    assert_good(&t);
    assert_int_equal(ev[2], 2);
    assert_int_equal(ev[4], 1);
    assert_int_equal(ev[5], 2); /* idle */
    scsi_lu_destroy(lu);
}

static void test_configuration_disc_and_track_information(void **state)
{
    struct scsi_lu *lu = drive(cue_path);
    struct tcmd t;
    uint8_t buf[256];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    uint8_t gc[10] = {SCSIOP_GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 255};
    run_cmd(lu, &t, gc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be16(buf + 6), 0x0008);
    /* walk the features: 0000 0001 0002 0003 0010 001E 001F 0100 0107 */
    static const uint16_t want[] = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010,
                                    0x001E, 0x001F, 0x0100, 0x0107};
    uint32_t off = 8, end = scsi_get_be32(buf) + 4;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_true(off + 4 <= end);
        assert_int_equal(scsi_get_be16(buf + off), want[i]);
        if (want[i] == 0x001E)
            assert_int_equal(buf[off + 2] & 1, 1); /* CD Read is current */
        if (want[i] == 0x001F)
            assert_int_equal(buf[off + 2] & 1, 0);
        off += 4 + buf[off + 3];
    }
    assert_int_equal(off, end);
    gc[1] = 2; /* one feature */
    scsi_put_be16(gc + 2, 0x0107);
    run_cmd(lu, &t, gc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(buf), 4 + 8);
    gc[1] = 3;
    run_cmd(lu, &t, gc, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);

    uint8_t di[10] = {SCSIOP_READ_DISK_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 34};
    run_cmd(lu, &t, di, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(buf[2], 0x0E);
    assert_int_equal(buf[6], 2);
    di[1] = 1;
    run_cmd(lu, &t, di, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);

    uint8_t ti[10] = {SCSIOP_READ_TRACK_INFORMATION, 1, 0, 0, 0, 2, 0, 0, 48};
    run_cmd(lu, &t, ti, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(buf[2], 2);
    assert_int_equal(scsi_get_be32(buf + 8), 210);
    assert_int_equal(scsi_get_be32(buf + 24), 140);
    ti[5] = 3;
    run_cmd(lu, &t, ti, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    ti[1] = 0;
    scsi_put_be32(ti + 2, 5000);
    run_cmd(lu, &t, ti, 10, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0);
    scsi_lu_destroy(lu);
}

static void test_speed_streaming_and_performance(void **state)
{
    struct scsi_lu *lu = drive(iso_path);
    struct tcmd t;
    uint8_t buf[64];
    uint8_t tur[6] = {0};
    run_cmd(lu, &t, tur, 6, SCSI_DIR_NONE, NULL, 0);
    uint8_t gp[12] = {SCSIOP_GET_PERFORMANCE, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    run_cmd(lu, &t, gp, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_good(&t);
    assert_int_equal(scsi_get_be32(buf), 20);
    assert_int_equal(scsi_get_be32(buf + 12), 176 * 48);
    uint8_t ss[12] = {SCSIOP_SET_CD_SPEED, 0, 0x06, 0xE4}; /* 1764 kB/s: 10x */
    run_cmd(lu, &t, ss, 12, SCSI_DIR_NONE, NULL, 0);
    assert_good(&t);
    run_cmd(lu, &t, gp, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_int_equal(scsi_get_be32(buf + 12), 1764);
    assert_int_equal(scsi_get_be32(buf + 20), 1764);
    uint8_t page[64];
    uint8_t ms[10] = {SCSIOP_MODE_SENSE10, 0, 0x2A, 0, 0, 0, 0, 0, 64};
    run_cmd(lu, &t, ms, 10, SCSI_DIR_IN, page, sizeof(page));
    assert_good(&t);
    assert_int_equal(page[8], 0x2A);
    assert_int_equal(scsi_get_be16(page + 8 + 14), 1764);
    ms[2] = 0xEA; /* saved values */
    run_cmd(lu, &t, ms, 10, SCSI_DIR_IN, page, sizeof(page));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0);
    ms[2] = 0x08; /* caching is a disk's page */
    run_cmd(lu, &t, ms, 10, SCSI_DIR_IN, page, sizeof(page));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);

    /* SET STREAMING: 3528 kB over 1000 ms = 20x */
    uint8_t desc[28] = {0};
    scsi_put_be32(desc + 8, ISO_SECTORS - 1);
    scsi_put_be32(desc + 12, 3528);
    scsi_put_be32(desc + 16, 1000);
    uint8_t st[12] = {SCSIOP_SET_STREAMING, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28};
    run_cmd(lu, &t, st, 12, SCSI_DIR_OUT, desc, sizeof(desc));
    assert_good(&t);
    assert_int_equal(t.cmd.transferred, 28);
    run_cmd(lu, &t, gp, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_int_equal(scsi_get_be32(buf + 12), 3528);
    scsi_put_be32(desc + 16, 0); /* read time zero */
    run_cmd(lu, &t, st, 12, SCSI_DIR_OUT, desc, sizeof(desc));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x26, 0);
    st[10] = 20; /* shorter than a descriptor */
    run_cmd(lu, &t, st, 12, SCSI_DIR_OUT, desc, sizeof(desc));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x1A, 0);
    desc[0] = 0x04; /* RDD: back to the maximum */
    st[10] = 28;
    run_cmd(lu, &t, st, 12, SCSI_DIR_OUT, desc, sizeof(desc));
    assert_good(&t);
    run_cmd(lu, &t, gp, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_int_equal(scsi_get_be32(buf + 12), 176 * 48);
    gp[10] = 0x05;
    run_cmd(lu, &t, gp, 12, SCSI_DIR_IN, buf, sizeof(buf));
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
    scsi_lu_destroy(lu);
}

/* Every command's reserved CDB bits are checked from the table's usage mask. */
static void test_reserved_bits_rejected_for_every_command(void **state)
{
    struct scsi_lu *lu = drive(iso_path);
    static const uint8_t ops[][2] = {
        {0x00, 6},  {0x03, 6},  {0x12, 6},  {0x1A, 6},  {0x1B, 6},  {0x1E, 6},
        {0x25, 10}, {0x28, 10}, {0x43, 10}, {0x46, 10}, {0x4A, 10}, {0x51, 10},
        {0x52, 10}, {0x5A, 10}, {0xA8, 12}, {0xAC, 12}, {0xAD, 12}, {0xB6, 12},
        {0xB9, 12}, {0xBB, 12}, {0xBD, 12}, {0xBE, 12},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint8_t cdb[16] = {ops[i][0]};
        cdb[ops[i][1] - 1] = 0x04; /* NACA in CONTROL */
        struct tcmd t;
        uint8_t buf[64];
        run_cmd(lu, &t, cdb, ops[i][1], SCSI_DIR_IN, buf, sizeof(buf));
        assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
        assert_field_pointer(&t, true, ops[i][1] - 1, 2);
    }
    uint8_t wr[10] = {SCSIOP_WRITE};
    struct tcmd t;
    run_cmd(lu, &t, wr, 10, SCSI_DIR_NONE, NULL, 0);
    assert_check(&t, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
    scsi_lu_destroy(lu);
}

static void test_cue_parser_rejects_bad_sheets(void **state)
{
    static const char *bad[] = {
        "",
        "TRACK 01 MODE1/2352\n",
        "FILE \"a.bin\" BINARY\nTRACK 00 AUDIO\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nTRACK 03 AUDIO\n",
        "FILE \"a.bin\" WAVE\nTRACK 01 AUDIO\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 CDG\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:60:00\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:00:75\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nPREGAP 00:02:00\n",
        "FILE \"a.bin BINARY\nTRACK 01 AUDIO\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:00:00 junk\n",
        "FILE \"a.bin\" BINARY\nBOGUS\n",
        /* INDEX numbers and times ascend within a track (the fuzzer's INDEX 00 after 01) */
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:02:50\nINDEX 00 00:02:60\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 00 00:02:00\nINDEX 01 00:01:00\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:00:00\nINDEX 01 00:00:10\n",
        "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:00:10\nINDEX 02 00:00:05\n",
    };
    struct mmc_cue *cue = malloc(sizeof(*cue));
    char err[192];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(mmc_cue_parse(bad[i], strlen(bad[i]), cue, err, sizeof(err)), -EINVAL);
        assert_true(err[0] != '\0');
    }
    const char *ok = "FILE \"a.bin\" BINARY\nTRACK 01 MODE1/2352\nINDEX 01 00:00:00\n"
                     "TRACK 02 AUDIO\nINDEX 01 00:00:10\n";
    assert_int_equal(mmc_cue_parse(ok, strlen(ok), cue, err, sizeof(err)), 0);
    struct mmc_track tracks[MMC_MAX_TRACKS];
    uint32_t n, leadout;
    uint64_t small = 5 * 2352; /* track 2 would start past the end */
    assert_int_equal(mmc_cue_layout(cue, &small, tracks, &n, &leadout, err, sizeof(err)), -EINVAL);
    uint64_t odd = 20 * 2352 + 7;
    assert_int_equal(mmc_cue_layout(cue, &odd, tracks, &n, &leadout, err, sizeof(err)), -EINVAL);
    uint64_t good = 20 * 2352;
    assert_int_equal(mmc_cue_layout(cue, &good, tracks, &n, &leadout, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tracks[1].start, 10);
    assert_int_equal(tracks[1].offset, 10 * 2352);
    assert_int_equal(leadout, 20);
    free(cue);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inquiry_reports_removable_cdrom),
        cmocka_unit_test(test_empty_drive_reports_no_medium_then_load_changes_medium),
        cmocka_unit_test(test_becoming_ready_after_load),
        cmocka_unit_test(test_read_capacity_and_read10_match_the_iso),
        cmocka_unit_test(test_cue_toc_formats_match_the_sheet),
        cmocka_unit_test(test_read_cd_raw_user_and_audio_sectors),
        cmocka_unit_test(test_read_cd_on_iso_rebuilds_sync_header_edc_and_ecc),
        cmocka_unit_test(test_dvd_image_refuses_cd_commands_and_reports_structure),
        cmocka_unit_test(test_eject_refused_while_prevented_and_events_reported),
        cmocka_unit_test(test_configuration_disc_and_track_information),
        cmocka_unit_test(test_speed_streaming_and_performance),
        cmocka_unit_test(test_reserved_bits_rejected_for_every_command),
        cmocka_unit_test(test_cue_parser_rejects_bad_sheets),
    };
    return cmocka_run_group_tests(tests, setup_images, teardown_images);
}
