/*
 * The CD-ROM stack end to end: a vminiport MMC unit, Storport, classpnp and the cdrom class
 * driver, booted in this process. Images are made here: an ISO by xorriso (from a folder of
 * random files), a BIN/CUE with a raw Mode 1 data track and an audio track, a sparse DVD-sized
 * image. Data is checked byte for byte against the image files, through reads, pass-through and
 * raw reads; the guide's exclusive access, set speed, streaming and ACL behaviour through the
 * IOCTLs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/ntddcdrm.h>
#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddcdvd.h>

#include "integ.h"

#define CDROM_CLASS_KEY "Control\\Class\\{4d36e965-e325-11ce-bfc1-08002be10318}"

static char dir[256], iso[320], bin[320], cue[320], dvd[320];
static uint8_t *iso_data;
static size_t iso_size;
static uint8_t *bin_data;
static size_t bin_size;

#define DATA_SECTORS  64
#define AUDIO_SECTORS 40

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static uint8_t bcd(unsigned v)
{
    return (uint8_t)((v / 10) << 4 | v % 10);
}

static int setup(void **state)
{
    char cmd[1024], src[300];
    integ_mkdtemp(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/src", dir);
    mkdir(src, 0755);
    snprintf(iso, sizeof(iso), "%s/disc.iso", dir);
    snprintf(bin, sizeof(bin), "%s/disc.bin", dir);
    snprintf(cue, sizeof(cue), "%s/disc.cue", dir);
    snprintf(dvd, sizeof(dvd), "%s/dvd.iso", dir);

    /* an ISO 9660 image made by xorriso from 1.5 MB of random files */
    srand(7);
    uint8_t *junk = malloc(700 * 1024);
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < 700 * 1024; i++)
            junk[i] = (uint8_t)rand();
        snprintf(cmd, sizeof(cmd), "%s/file%d.bin", src, f);
        write_file(cmd, junk, 700 * 1024 - (size_t)f * 3333);
    }
    free(junk);
    snprintf(cmd, sizeof(cmd), "xorriso -as mkisofs -quiet -V STORSTACK -o '%s' '%s' 2>/dev/null",
             iso, src);
    if (system(cmd) != 0)
        fail_msg("xorriso failed or is missing (scripts/install-deps.sh test installs it)");
    iso_data = read_file(iso, &iso_size);
    assert_int_equal(iso_size % 2048, 0);

    /* BIN/CUE: a raw Mode 1 track of DATA_SECTORS, an audio track of AUDIO_SECTORS */
    bin_size = (size_t)(DATA_SECTORS + AUDIO_SECTORS) * RAW_SECTOR_SIZE;
    bin_data = malloc(bin_size);
    for (uint32_t l = 0; l < DATA_SECTORS; l++) {
        uint8_t *s = bin_data + (size_t)l * RAW_SECTOR_SIZE;
        uint32_t v = l + 150;
        memset(s, 0, RAW_SECTOR_SIZE);
        memset(s + 1, 0xFF, 10);
        s[12] = bcd(v / 4500);
        s[13] = bcd(v / 75 % 60);
        s[14] = bcd(v % 75);
        s[15] = 1;
        for (uint32_t i = 0; i < 2048; i++)
            s[16 + i] = (uint8_t)(l * 3 + i);
        memset(s + 2064, 0xEC, 288);
    }
    for (size_t i = (size_t)DATA_SECTORS * RAW_SECTOR_SIZE; i < bin_size; i++)
        bin_data[i] = (uint8_t)(i * 7 + 3);
    write_file(bin, bin_data, bin_size);
    snprintf(cmd, sizeof(cmd),
             "FILE \"disc.bin\" BINARY\n  TRACK 01 MODE1/2352\n    INDEX 01 00:00:00\n"
             "  TRACK 02 AUDIO\n    INDEX 01 00:00:%02u\n",
             DATA_SECTORS);
    write_file(cue, cmd, strlen(cmd));

    int fd = open(dvd, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)500000 * 2048), 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    free(iso_data);
    free(bin_data);
    integ_rmtree(dir);
    return 0;
}

/* One adapter: a disk at Target0 (so the CD-ROM is not alone) and the drive at Target1. */
static storstack_t *boot_cdrom(const char *image, const char *extra_keys)
{
    char *text = malloc(8192);
    snprintf(text, 8192,
             "[Enum\\Root\\VMINIPORT\\0000]\nHardwareID = multi:ROOT\\VMINIPORT\n"
             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
             "Type = disk\nBackend = ram\nSize = 16M\n"
             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target1\\Lun0]\n"
             "Type = cdrom\nImage = %s\n%s",
             image ? image : "", extra_keys ? extra_keys : "");
    storstack_t *s = integ_boot(text);
    free(text);
    return s;
}

static storstack_status_t load_image(storstack_handle_t *h, const char *path)
{
    STORSTACK_CDROM_LOAD_IMAGE li;
    uint32_t got;
    memset(&li, 0, sizeof(li));
    snprintf(li.Path, sizeof(li.Path), "%s", path);
    return storstack_ioctl(h, IOCTL_STORSTACK_CDROM_LOAD_IMAGE, &li, (uint32_t)strlen(path) + 1,
                           NULL, 0, &got);
}

static STORSTACK_CDROM_STATUS get_status(storstack_handle_t *h)
{
    STORSTACK_CDROM_STATUS st;
    uint32_t got = 0;
    assert_status(
        storstack_ioctl(h, IOCTL_STORSTACK_CDROM_GET_STATUS, NULL, 0, &st, sizeof(st), &got),
        STATUS_SUCCESS);
    assert_int_equal(got, sizeof(st));
    return st;
}

static void
test_xorriso_iso_loads_and_reads_back_through_class_driver_and_pass_through(void **state)
{
    storstack_t *s = boot_cdrom(NULL, NULL);
    storstack_handle_t *h = integ_open(s, "CdRom0", INTEG_RW);
    uint32_t got = 0;
    uint8_t *buf = malloc(iso_size);

    /* the empty drive */
    assert_status(storstack_read(h, buf, 2048, 0, &got), STATUS_NO_MEDIA_IN_DEVICE);
    assert_status(load_image(h, iso), STATUS_SUCCESS);
    /* through the class driver: every byte, in one request split into transfer packets */
    assert_status(storstack_read(h, buf, (uint32_t)iso_size, 0, &got), STATUS_SUCCESS);
    assert_int_equal(got, iso_size);
    assert_memory_equal(buf, iso_data, iso_size);
    /* past the end; not whole sectors; writes */
    assert_status(storstack_read(h, buf, 2048, iso_size, &got), STATUS_INVALID_PARAMETER);
    assert_status(storstack_read(h, buf, 512, 0, &got), STATUS_INVALID_PARAMETER);
    assert_status(storstack_write(h, buf, 2048, 0, &got), STATUS_MEDIA_WRITE_PROTECTED);

    /* through pass-through: READ CAPACITY and READ (10) of the volume descriptor area */
    struct integ_spt r;
    uint8_t cap[8];
    uint8_t rc10[10] = {0x25};
    integ_pass_through(h, 1, 0, 0, rc10, 10, INTEG_DATA_IN, cap, 8, &r);
    assert_int_equal(r.scsi_status, 0);
    assert_int_equal(integ_get_be32(cap), iso_size / 2048 - 1);
    assert_int_equal(integ_get_be32(cap + 4), 2048);
    uint8_t r10[10] = {0x28, 0, 0, 0, 0, 16, 0, 0, 8};
    integ_pass_through(h, 1, 0, 0, r10, 10, INTEG_DATA_IN, buf, 8 * 2048, &r);
    assert_int_equal(r.scsi_status, 0);
    assert_memory_equal(buf, iso_data + 16 * 2048, 8 * 2048);
    assert_memory_equal(buf + 1, "CD001", 5); /* the primary volume descriptor */

    /* a raw read of the ISO: sync, header, the image's user data, computed EDC/ECC, C2 */
    RAW_READ_INFO rr = {.DiskOffset.QuadPart = 16 * 2048, .SectorCount = 2, .TrackMode = RawWithC2};
    assert_status(storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf,
                                  2 * (RAW_SECTOR_SIZE + 294), &got),
                  STATUS_SUCCESS);
    assert_int_equal(got, 2 * (RAW_SECTOR_SIZE + 294));
    assert_memory_equal(buf + 12, "\x00\x02\x16\x01", 4); /* 00:02:16, Mode 1 */
    assert_memory_equal(buf + 16, iso_data + 16 * 2048, 2048);
    assert_memory_equal(buf + RAW_SECTOR_SIZE + 294 + 16, iso_data + 17 * 2048, 2048);
    rr.TrackMode = XAForm2; /* the disc has no Mode 2 sectors */
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, 2 * RAW_SECTOR_SIZE, &got),
        STATUS_INVALID_DEVICE_REQUEST);

    /* the TOC: one data track, the lead-out at the image's sector count */
    CDROM_TOC toc;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_READ_TOC, NULL, 0, &toc, sizeof(toc), &got),
                  STATUS_SUCCESS);
    assert_int_equal(toc.FirstTrack, 1);
    assert_int_equal(toc.LastTrack, 1);
    assert_int_equal(toc.TrackData[0].Control & 4, 4);
    assert_int_equal(toc.TrackData[1].TrackNumber, 0xAA);
    uint32_t f = (uint32_t)(iso_size / 2048) + 150;
    assert_int_equal(toc.TrackData[1].Address[1], f / 4500);
    assert_int_equal(toc.TrackData[1].Address[2], f / 75 % 60);
    assert_int_equal(toc.TrackData[1].Address[3], f % 75);
    assert_status(storstack_ioctl(h, IOCTL_CDROM_READ_TOC, NULL, 0, &toc, 100, &got),
                  STATUS_BUFFER_TOO_SMALL);
    CDROM_TOC_SESSION_DATA sd;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_GET_LAST_SESSION, NULL, 0, &sd, sizeof(sd), &got),
                  STATUS_SUCCESS);
    assert_int_equal(got, sizeof(sd));
    assert_int_equal(sd.LastCompleteSession, 1);
    assert_int_equal(sd.TrackData[0].TrackNumber, 1);
    assert_memory_equal(sd.TrackData[0].Address, "\x00\x00\x02\x00", 4); /* 00:02:00 */

    /* GET CONFIGURATION: the CD-ROM profile is current */
    GET_CONFIGURATION_IOCTL_INPUT gc = {.Feature = 0,
                                        .RequestType = SCSI_GET_CONFIGURATION_REQUEST_TYPE_ALL};
    uint8_t conf[256];
    assert_status(storstack_ioctl(h, IOCTL_CDROM_GET_CONFIGURATION, &gc, sizeof(gc), conf,
                                  sizeof(conf), &got),
                  STATUS_SUCCESS);
    assert_int_equal(conf[6] << 8 | conf[7], 0x0008);
    gc.RequestType = 3;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_GET_CONFIGURATION, &gc, sizeof(gc), conf,
                                  sizeof(conf), &got),
                  STATUS_INVALID_PARAMETER);

    GET_MEDIA_TYPES mt;
    assert_status(
        storstack_ioctl(h, IOCTL_STORAGE_GET_MEDIA_TYPES_EX, NULL, 0, &mt, sizeof(mt), &got),
        STATUS_SUCCESS);
    assert_int_equal(mt.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.MediaType, CD_ROM);
    GET_LENGTH_INFORMATION li;
    assert_status(storstack_ioctl(h, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &got),
                  STATUS_SUCCESS);
    assert_int_equal(li.Length.QuadPart, iso_size);
    DISK_GEOMETRY g;
    assert_status(storstack_ioctl(h, IOCTL_DISK_GET_DRIVE_GEOMETRY, NULL, 0, &g, sizeof(g), &got),
                  STATUS_SUCCESS);
    assert_int_equal(g.BytesPerSector, 2048);
    free(buf);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_bin_cue_toc_and_raw_reads_match_the_bin(void **state)
{
    storstack_t *s = boot_cdrom(cue, NULL);
    storstack_handle_t *h = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    uint32_t got = 0;
    CDROM_READ_TOC_EX in = {.Format = CDROM_READ_TOC_EX_FORMAT_TOC};
    uint8_t toc[64];
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_READ_TOC_EX, &in, sizeof(in), toc, sizeof(toc), &got),
        STATUS_SUCCESS);
    assert_int_equal(got, 4 + 3 * 8);
    assert_int_equal(toc[3], 2);
    assert_int_equal(toc[4 + 8 + 1] & 0x0F, 0); /* track 2 is audio */
    assert_int_equal(integ_get_be32(toc + 4 + 8 + 4), DATA_SECTORS);
    assert_int_equal(integ_get_be32(toc + 4 + 16 + 4), DATA_SECTORS + AUDIO_SECTORS);
    in.Format = CDROM_READ_TOC_EX_FORMAT_FULL_TOC; /* needs MSF */
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_READ_TOC_EX, &in, sizeof(in), toc, sizeof(toc), &got),
        STATUS_INVALID_PARAMETER);
    in.Msf = 1;
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_READ_TOC_EX, &in, sizeof(in), toc, sizeof(toc), &got),
        STATUS_SUCCESS);
    assert_int_equal(got, 4 + 5 * 11);

    /* cooked reads of the data track: the user data of the raw sectors */
    uint8_t *buf = malloc(8 * RAW_SECTOR_SIZE + 8 * 294);
    assert_status(storstack_read(h, buf, 4 * 2048, 10 * 2048, &got), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++)
        assert_memory_equal(buf + i * 2048, bin_data + (size_t)(10 + i) * RAW_SECTOR_SIZE + 16,
                            2048);
    /* raw reads: audio, and data with C2 pointers */
    RAW_READ_INFO rr = {
        .DiskOffset.QuadPart = (DATA_SECTORS + 5) * 2048LL, .SectorCount = 3, .TrackMode = CDDA};
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, 3 * RAW_SECTOR_SIZE, &got),
        STATUS_SUCCESS);
    assert_int_equal(got, 3 * RAW_SECTOR_SIZE);
    assert_memory_equal(buf, bin_data + (size_t)(DATA_SECTORS + 5) * RAW_SECTOR_SIZE,
                        3 * RAW_SECTOR_SIZE);
    rr.DiskOffset.QuadPart = 2 * 2048;
    rr.TrackMode = RawWithC2;
    rr.SectorCount = 2;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf,
                                  2 * (RAW_SECTOR_SIZE + 294), &got),
                  STATUS_SUCCESS);
    assert_memory_equal(buf, bin_data + 2 * RAW_SECTOR_SIZE, RAW_SECTOR_SIZE);
    assert_memory_equal(buf + RAW_SECTOR_SIZE + 294, bin_data + 3 * RAW_SECTOR_SIZE,
                        RAW_SECTOR_SIZE);
    /* CDDA over a data sector: ILLEGAL MODE FOR THIS TRACK */
    rr.TrackMode = CDDA;
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, 2 * RAW_SECTOR_SIZE, &got),
        STATUS_INVALID_DEVICE_REQUEST);
    rr.TrackMode = RawWithSubCode;
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, 2 * RAW_SECTOR_SIZE, &got),
        STATUS_NOT_SUPPORTED);
    rr.TrackMode = CDDA;
    rr.SectorCount = 100; /* more than the buffer holds */
    assert_status(
        storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, 2 * RAW_SECTOR_SIZE, &got),
        STATUS_BUFFER_TOO_SMALL);
    /* a DVD structure on a CD: the drive says incompatible medium */
    DVD_READ_STRUCTURE ds = {.Format = DvdPhysicalDescriptor};
    assert_status(storstack_ioctl(h, IOCTL_DVD_READ_STRUCTURE, &ds, sizeof(ds), buf, 2052, &got),
                  STATUS_INVALID_DEVICE_REQUEST);
    free(buf);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_dvd_image_structures_and_media_type(void **state)
{
    storstack_t *s = boot_cdrom(dvd, NULL);
    storstack_handle_t *h = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    uint32_t got = 0;
    uint8_t buf[2052];
    DVD_READ_STRUCTURE ds = {.Format = DvdPhysicalDescriptor};
    assert_status(
        storstack_ioctl(h, IOCTL_DVD_READ_STRUCTURE, &ds, sizeof(ds), buf, sizeof(buf), &got),
        STATUS_SUCCESS);
    assert_int_equal(got, 2052);
    assert_int_equal(integ_get_be32(buf + 12), 0x030000 + 500000 - 1);
    ds.Format = DvdCopyrightDescriptor;
    assert_status(
        storstack_ioctl(h, IOCTL_DVD_READ_STRUCTURE, &ds, sizeof(ds), buf, sizeof(buf), &got),
        STATUS_SUCCESS);
    assert_int_equal(got, 8);
    assert_int_equal(buf[4], 0);
    ds.Format = DvdMaxDescriptor;
    assert_status(
        storstack_ioctl(h, IOCTL_DVD_READ_STRUCTURE, &ds, sizeof(ds), buf, sizeof(buf), &got),
        STATUS_INVALID_PARAMETER);
    GET_MEDIA_TYPES mt;
    assert_status(
        storstack_ioctl(h, IOCTL_STORAGE_GET_MEDIA_TYPES_EX, NULL, 0, &mt, sizeof(mt), &got),
        STATUS_SUCCESS);
    assert_int_equal(mt.MediaInfo[0].DeviceSpecific.RemovableDiskInfo.MediaType, DVD_ROM);
    RAW_READ_INFO rr = {.SectorCount = 1, .TrackMode = RawWithC2};
    uint8_t raw[RAW_SECTOR_SIZE + 294];
    assert_status(storstack_ioctl(h, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), raw, sizeof(raw), &got),
                  STATUS_INVALID_DEVICE_REQUEST);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_eject_refused_while_prevented_and_change_notified_to_handles(void **state)
{
    storstack_t *s = boot_cdrom(iso, NULL);
    storstack_handle_t *a = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    storstack_handle_t *b = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    uint32_t got = 0, count = 0;
    PREVENT_MEDIA_REMOVAL pmr = {.PreventMediaRemoval = TRUE};

    assert_status(
        storstack_ioctl(b, IOCTL_STORAGE_CHECK_VERIFY, NULL, 0, &count, sizeof(count), &got),
        STATUS_SUCCESS);
    uint32_t first = count;
    assert_status(storstack_ioctl(a, IOCTL_STORAGE_MEDIA_REMOVAL, &pmr, sizeof(pmr), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_status(storstack_ioctl(b, IOCTL_STORAGE_EJECT_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_DEVICE_BUSY);
    assert_true(get_status(b).Prevented);
    /* allowing from a handle that holds no lock is refused */
    pmr.PreventMediaRemoval = FALSE;
    assert_status(storstack_ioctl(b, IOCTL_STORAGE_MEDIA_REMOVAL, &pmr, sizeof(pmr), NULL, 0, &got),
                  STATUS_INVALID_DEVICE_STATE);
    /* the lock dies with its handle */
    storstack_close(a);
    assert_false(get_status(b).Prevented);
    assert_status(storstack_ioctl(b, IOCTL_STORAGE_EJECT_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_SUCCESS);
    uint8_t buf[2048];
    assert_status(storstack_read(b, buf, 2048, 0, &got), STATUS_NO_MEDIA_IN_DEVICE);
    /* the change reaches each handle once through CHECK_VERIFY */
    assert_status(
        storstack_ioctl(b, IOCTL_STORAGE_CHECK_VERIFY, NULL, 0, &count, sizeof(count), &got),
        STATUS_VERIFY_REQUIRED);
    assert_true(count > first);
    assert_status(
        storstack_ioctl(b, IOCTL_STORAGE_CHECK_VERIFY, NULL, 0, &count, sizeof(count), &got),
        STATUS_NO_MEDIA_IN_DEVICE);
    assert_status(storstack_ioctl(b, IOCTL_STORAGE_LOAD_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_status(
        storstack_ioctl(b, IOCTL_STORAGE_CHECK_VERIFY, NULL, 0, &count, sizeof(count), &got),
        STATUS_VERIFY_REQUIRED);
    assert_status(
        storstack_ioctl(b, IOCTL_STORAGE_CHECK_VERIFY, NULL, 0, &count, sizeof(count), &got),
        STATUS_SUCCESS);
    assert_status(storstack_read(b, buf, 2048, 16 * 2048, &got), STATUS_SUCCESS);
    assert_memory_equal(buf, iso_data + 16 * 2048, 2048);
    /* loading from a read-only handle is refused; a load while prevented too */
    assert_status(load_image(b, cue), STATUS_ACCESS_DENIED);
    storstack_handle_t *w = integ_open(s, "CdRom0", INTEG_RW);
    pmr.PreventMediaRemoval = TRUE;
    assert_status(storstack_ioctl(w, IOCTL_STORAGE_MEDIA_REMOVAL, &pmr, sizeof(pmr), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_status(load_image(w, cue), STATUS_DEVICE_BUSY);
    STORSTACK_CDROM_STATUS st = get_status(w);
    assert_non_null(strstr(st.Message, "prevented"));
    /* a file that cannot be opened is reported first */
    assert_status(load_image(w, "/nonexistent/disc.iso"), STATUS_OBJECT_NAME_NOT_FOUND);
    assert_non_null(strstr(get_status(w).Message, "No such file"));
    storstack_close(w);
    storstack_close(b);
    storstack_destroy(s);
}

static void test_media_change_by_another_initiator_found_by_gesn_polling(void **state)
{
    storstack_t *s = boot_cdrom(iso, "[Services\\cdrom\\Parameters]\nMediaPollInterval = 50\n");
    storstack_handle_t *h = integ_open(s, "CdRom0", INTEG_RW); /* pass-through needs write */
    uint32_t before = get_status(h).MediaChangeCount;
    /* START STOP UNIT (eject) sent straight to the unit, not through the class driver's IOCTLs */
    struct integ_spt r;
    uint8_t eject[6] = {0x1B, 0, 0, 0, 0x02, 0};
    integ_pass_through(h, 1, 0, 0, eject, 6, INTEG_DATA_NONE, NULL, 0, &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, 0);
    uint32_t after = before;
    for (int i = 0; i < 200 && after == before; i++) {
        usleep(10000);
        after = get_status(h).MediaChangeCount;
    }
    assert_true(after > before);
    uint32_t got;
    uint8_t buf[2048];
    assert_status(storstack_read(h, buf, 2048, 0, &got), STATUS_NO_MEDIA_IN_DEVICE);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_exclusive_access_from_two_handles(void **state)
{
    storstack_t *s = boot_cdrom(iso, NULL);
    /* IOCTL_CDROM_EXCLUSIVE_ACCESS needs read and write access to the handle */
    storstack_handle_t *a = integ_open(s, "CdRom0", INTEG_RW);
    storstack_handle_t *b = integ_open(s, "CdRom0", INTEG_RW);
    uint32_t got = 0;
    uint8_t buf[2048];
    CDROM_EXCLUSIVE_LOCK lock;
    CDROM_EXCLUSIVE_LOCK_STATE st;
    CDROM_EXCLUSIVE_ACCESS q = {.RequestType = ExclusiveAccessQueryState};

    memset(&lock, 0, sizeof(lock));
    lock.Access.RequestType = ExclusiveAccessLockDevice;
    assert_status(
        storstack_ioctl(a, IOCTL_CDROM_EXCLUSIVE_ACCESS, &lock, sizeof(lock), NULL, 0, &got),
        STATUS_INVALID_PARAMETER); /* no caller name */
    memcpy(lock.CallerName, "burner\x01", 7);
    assert_status(
        storstack_ioctl(a, IOCTL_CDROM_EXCLUSIVE_ACCESS, &lock, sizeof(lock), NULL, 0, &got),
        STATUS_INVALID_PARAMETER); /* not printable */
    memcpy(lock.CallerName, "burner\0", 7);
    assert_status(
        storstack_ioctl(a, IOCTL_CDROM_EXCLUSIVE_ACCESS, &lock, sizeof(lock), NULL, 0, &got),
        STATUS_SUCCESS);
    /* the other handle: refused, except the query */
    assert_status(storstack_read(b, buf, 2048, 0, &got), STATUS_ACCESS_DENIED);
    CDROM_TOC toc;
    assert_status(storstack_ioctl(b, IOCTL_CDROM_READ_TOC, NULL, 0, &toc, sizeof(toc), &got),
                  STATUS_ACCESS_DENIED);
    assert_status(
        storstack_ioctl(b, IOCTL_CDROM_EXCLUSIVE_ACCESS, &lock, sizeof(lock), NULL, 0, &got),
        STATUS_ACCESS_DENIED);
    CDROM_EXCLUSIVE_ACCESS unlock = {.RequestType = ExclusiveAccessUnlockDevice};
    assert_status(
        storstack_ioctl(b, IOCTL_CDROM_EXCLUSIVE_ACCESS, &unlock, sizeof(unlock), NULL, 0, &got),
        STATUS_ACCESS_DENIED);
    assert_status(
        storstack_ioctl(b, IOCTL_CDROM_EXCLUSIVE_ACCESS, &q, sizeof(q), &st, sizeof(st), &got),
        STATUS_SUCCESS);
    assert_true(st.LockState);
    assert_string_equal((char *)st.CallerName, "burner");
    /* the owner works as usual */
    assert_status(storstack_read(a, buf, 2048, 16 * 2048, &got), STATUS_SUCCESS);
    assert_memory_equal(buf, iso_data + 16 * 2048, 2048);
    /* the lock dies with its handle */
    storstack_close(a);
    assert_status(
        storstack_ioctl(b, IOCTL_CDROM_EXCLUSIVE_ACCESS, &q, sizeof(q), &st, sizeof(st), &got),
        STATUS_SUCCESS);
    assert_false(st.LockState);
    assert_status(storstack_read(b, buf, 2048, 0, &got), STATUS_SUCCESS);
    assert_status(
        storstack_ioctl(b, IOCTL_CDROM_EXCLUSIVE_ACCESS, &unlock, sizeof(unlock), NULL, 0, &got),
        STATUS_INVALID_DEVICE_STATE);
    storstack_close(b);
    storstack_destroy(s);
}

static uint32_t current_speed(storstack_handle_t *h)
{
    struct integ_spt r;
    uint8_t gp[12] = {0xAC, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    uint8_t buf[24];
    integ_pass_through(h, 1, 0, 0, gp, 12, INTEG_DATA_IN, buf, sizeof(buf), &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, 0);
    assert_int_equal(integ_get_be32(buf + 12), integ_get_be32(buf + 20));
    return integ_get_be32(buf + 12);
}

static void test_set_speed_both_request_types_reported_by_get_performance(void **state)
{
    storstack_t *s = boot_cdrom(iso, NULL);
    storstack_handle_t *h = integ_open(s, "CdRom0", INTEG_RW); /* pass-through needs write */
    uint32_t got;
    assert_int_equal(current_speed(h), 176 * 48);
    CDROM_SET_SPEED sp = {.RequestType = CdromSetSpeed, .ReadSpeed = 1764, .WriteSpeed = 0xFFFF};
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &sp, sizeof(sp), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_int_equal(current_speed(h), 1764);
    assert_int_equal(get_status(h).ReadSpeed, 1764);
    sp.RotationControl = 7;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &sp, sizeof(sp), NULL, 0, &got),
                  STATUS_INVALID_PARAMETER);
    CDROM_SET_STREAMING ss = {.RequestType = CdromSetStreaming,
                              .ReadSize = 5292,
                              .ReadTime = 1000,
                              .EndLba = (ULONG)(iso_size / 2048 - 1)};
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &ss, sizeof(ss), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_int_equal(current_speed(h), 5292);
    ss.EndLba = (ULONG)(iso_size / 2048 + 10); /* past the medium: the drive refuses */
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &ss, sizeof(ss), NULL, 0, &got),
                  STATUS_INVALID_DEVICE_REQUEST);
    ss.RestoreDefaults = TRUE;
    ss.EndLba = 0;
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &ss, sizeof(ss), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_int_equal(current_speed(h), 176 * 48);
    assert_status(storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &ss, 12, NULL, 0, &got),
                  STATUS_INFO_LENGTH_MISMATCH);
    storstack_close(h);
    storstack_destroy(s);
}

static void test_streaming_handle_reads_with_read12_streaming(void **state)
{
    storstack_t *s = boot_cdrom(iso, NULL);
    storstack_handle_t *a = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    storstack_handle_t *b = integ_open(s, "CdRom0", STORSTACK_GENERIC_READ);
    uint32_t got;
    uint8_t *buf = malloc(iso_size);
    CDROM_STREAMING_CONTROL sc = {.RequestType = CdromStreamingEnableForReadOnly};
    assert_status(storstack_ioctl(a, IOCTL_CDROM_ENABLE_STREAMING, &sc, sizeof(sc), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_int_equal(get_status(a).StreamingReads, 0);
    assert_status(storstack_read(a, buf, (uint32_t)iso_size, 0, &got), STATUS_SUCCESS);
    assert_int_equal(got, iso_size);
    assert_memory_equal(buf, iso_data, iso_size);
    uint64_t n = get_status(a).StreamingReads;
    assert_true(n >= 1);
    /* the other handle reads the ordinary way */
    assert_status(storstack_read(b, buf, 64 * 1024, 0, &got), STATUS_SUCCESS);
    assert_int_equal(get_status(a).StreamingReads, n);
    sc.RequestType = CdromStreamingDisable;
    assert_status(storstack_ioctl(a, IOCTL_CDROM_ENABLE_STREAMING, &sc, sizeof(sc), NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_status(storstack_read(a, buf, 64 * 1024, 0, &got), STATUS_SUCCESS);
    assert_int_equal(get_status(a).StreamingReads, n);
    sc.RequestType = 9;
    assert_status(storstack_ioctl(a, IOCTL_CDROM_ENABLE_STREAMING, &sc, sizeof(sc), NULL, 0, &got),
                  STATUS_INVALID_PARAMETER);
    free(buf);
    storstack_close(a);
    storstack_close(b);
    storstack_destroy(s);
}

static storstack_handle_t *open_as(storstack_t *s, const char *who, uint32_t access,
                                   storstack_status_t *st)
{
    struct storstack_identity id = {.principal = who, .nexus = 0};
    storstack_handle_t *h = NULL;
    *st = storstack_open_ex(s, "CdRom0", access, &id, &h);
    return h;
}

static void test_security_descriptor_checks_opens_and_privileged_requests(void **state)
{
    storstack_t *s = boot_cdrom(cue, "[" CDROM_CLASS_KEY "]\n"
                                     "Security = allow iqn.2024-01.test:admin rwp; "
                                     "allow iqn.2024-01.test:writer rw; "
                                     "allow iqn.2024-01.test:* r; allow uid:* r; deny *\n");
    storstack_status_t st;
    uint32_t got;
    uint8_t buf[RAW_SECTOR_SIZE + 294];

    assert_null(open_as(s, "iqn.1999-01.other:x", STORSTACK_GENERIC_READ, &st));
    assert_status(st, STATUS_ACCESS_DENIED);
    assert_null(open_as(s, "iqn.2024-01.test:reader", INTEG_RW, &st));
    assert_status(st, STATUS_ACCESS_DENIED);
    storstack_handle_t *r = open_as(s, "iqn.2024-01.test:reader", STORSTACK_GENERIC_READ, &st);
    assert_status(st, STATUS_SUCCESS);
    storstack_handle_t *adm = open_as(s, "iqn.2024-01.test:admin", INTEG_RW, &st);
    assert_status(st, STATUS_SUCCESS);
    storstack_handle_t *w = open_as(s, "iqn.2024-01.test:writer", INTEG_RW, &st);
    assert_status(st, STATUS_SUCCESS);

    /* a reader reads, but the privileged requests say no */
    assert_status(storstack_read(r, buf, 2048, 0, &got), STATUS_SUCCESS);
    assert_memory_equal(buf, bin_data + 16, 2048);
    RAW_READ_INFO rr = {.SectorCount = 1, .TrackMode = RawWithC2};
    assert_status(storstack_ioctl(r, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, sizeof(buf), &got),
                  STATUS_ACCESS_DENIED);
    struct integ_spt p;
    uint8_t tur[6] = {0};
    integ_pass_through(w, 1, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &p);
    assert_status(p.status, STATUS_ACCESS_DENIED); /* write access, but not privileged */
    assert_status(storstack_ioctl(w, IOCTL_STORAGE_EJECT_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_SUCCESS);
    assert_status(storstack_ioctl(w, IOCTL_STORAGE_LOAD_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_SUCCESS);
    CDROM_EXCLUSIVE_LOCK lock = {.Access.RequestType = ExclusiveAccessLockDevice};
    memcpy(lock.CallerName, "reader", 7);
    assert_status(
        storstack_ioctl(r, IOCTL_CDROM_EXCLUSIVE_ACCESS, &lock, sizeof(lock), NULL, 0, &got),
        STATUS_ACCESS_DENIED);
    assert_status(storstack_ioctl(r, IOCTL_STORAGE_EJECT_MEDIA, NULL, 0, NULL, 0, &got),
                  STATUS_ACCESS_DENIED);
    /* the admin may */
    assert_status(
        storstack_ioctl(adm, IOCTL_CDROM_RAW_READ, &rr, sizeof(rr), buf, sizeof(buf), &got),
        STATUS_SUCCESS);
    assert_memory_equal(buf, bin_data, RAW_SECTOR_SIZE);
    integ_pass_through(adm, 1, 0, 0, tur, 6, INTEG_DATA_NONE, NULL, 0, &p);
    assert_status(p.status, STATUS_SUCCESS);
    storstack_close(r);
    storstack_close(w);
    storstack_close(adm);
    /* this process opens as uid:N: read only */
    storstack_handle_t *me = NULL;
    assert_status(storstack_open(s, "CdRom0", INTEG_RW, &me), STATUS_ACCESS_DENIED);
    assert_status(storstack_open(s, "CdRom0", STORSTACK_GENERIC_READ, &me), STATUS_SUCCESS);
    storstack_close(me);
    storstack_destroy(s);

    /* a descriptor that does not parse keeps the drive from starting, with the reason */
    char *text = malloc(4096);
    snprintf(text, 4096,
             "[Enum\\Root\\VMINIPORT\\0000]\nHardwareID = multi:ROOT\\VMINIPORT\n"
             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
             "Type = cdrom\n[" CDROM_CLASS_KEY "]\nSecurity = allow uid:0 rx\n");
    s = integ_boot(text);
    free(text);
    assert_status(storstack_open(s, "CdRom0", STORSTACK_GENERIC_READ, &me),
                  STATUS_OBJECT_NAME_NOT_FOUND);
    storstack_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_xorriso_iso_loads_and_reads_back_through_class_driver_and_pass_through),
        cmocka_unit_test(test_bin_cue_toc_and_raw_reads_match_the_bin),
        cmocka_unit_test(test_dvd_image_structures_and_media_type),
        cmocka_unit_test(test_eject_refused_while_prevented_and_change_notified_to_handles),
        cmocka_unit_test(test_media_change_by_another_initiator_found_by_gesn_polling),
        cmocka_unit_test(test_exclusive_access_from_two_handles),
        cmocka_unit_test(test_set_speed_both_request_types_reported_by_get_performance),
        cmocka_unit_test(test_streaming_handle_reads_with_read12_streaming),
        cmocka_unit_test(test_security_descriptor_checks_opens_and_privileged_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
