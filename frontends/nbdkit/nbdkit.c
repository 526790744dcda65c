/*
 * The nbdkit plugin (storstack-nbdkit.so): exports one disk class device of a storstack stack
 * over NBD. `nbdkit storstack-nbdkit.so config=FILE device=PhysicalDrive0` boots the stack in
 * the nbdkit process (or `server=SOCKET` reaches a running `storstack serve`), and every NBD
 * request becomes what a Windows program would send the disk: reads and writes are
 * IRP_MJ_READ/IRP_MJ_WRITE through the user API, flush is IRP_MJ_FLUSH_BUFFERS (SYNCHRONIZE
 * CACHE), and trim, zero and extents are UNMAP, WRITE SAME(16) and GET LBA STATUS sent as
 * IOCTL_SCSI_PASS_THROUGH_DIRECT, offered only when the unit reports them (REPORT SUPPORTED
 * OPERATION CODES, VPD B0h/B2h). FUA is emulated by nbdkit as a flush after the write, because
 * the user API has no write-through flag. Unaligned requests are read-modify-written in whole
 * sectors. Documented with its parameters in docs/nbd.md.
 *
 * nbdkit runs this plugin in the parallel thread model: the stack is thread-safe, each NBD
 * connection has its own handle (CreateFile), and every connection reaches the same disk, so a
 * flush on any of them is a SYNCHRONIZE CACHE of the whole device and multi-conn is safe.
 */
#define NBDKIT_API_VERSION 2
#include <errno.h>
#include <nbdkit-plugin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storstack.h>

#define NBDKIT_SS_SENSE     64
#define NBDKIT_SS_TIMEOUT   60                  /* seconds, for each pass-through */
#define NBDKIT_SS_WS_CHUNK  (1u << 16)          /* blocks per WRITE SAME when B0h names none */
#define NBDKIT_SS_LBAS_DESC 128                 /* GET LBA STATUS descriptors asked at once */
#define NBDKIT_SS_MAX_IO    (32u * 1024 * 1024) /* nbdkit's largest request */

struct nbdkit_ss_config {
    char *config;
    char *server;
    char *device;
    bool trim, zero, extents; /* the user may switch each off */
};

/* What the unit offers, read once when nbdkit is ready. */
struct nbdkit_ss_disk {
    uint64_t size;
    uint32_t block;
    bool read_only;
    bool unmap;         /* UNMAP supported and VPD B2h LBPU */
    bool write_same;    /* WRITE SAME(16) supported */
    bool ws_unmap;      /* VPD B2h LBPWS: WRITE SAME(16) may unmap */
    bool lbprz;         /* unmapped blocks read as zeros */
    bool lba_status;    /* GET LBA STATUS supported */
    uint32_t max_unmap; /* blocks per UNMAP descriptor */
    uint64_t max_ws;    /* blocks per WRITE SAME */
};

static struct nbdkit_ss_config cfg = {.trim = true, .zero = true, .extents = true};
static struct nbdkit_ss_disk disk;
static storstack_t *stack;
static pthread_mutex_t rmw_lock = PTHREAD_MUTEX_INITIALIZER; /* unaligned writes, one at a time */

struct nbdkit_ss_sptd {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t pad;
    uint8_t sense[NBDKIT_SS_SENSE];
};

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* One NTSTATUS to the errno NBD carries (the NBD protocol knows EPERM, EIO, ENOMEM, EINVAL,
 * ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN). */
static int status_errno(storstack_status_t st)
{
    switch (st) {
    case STATUS_INVALID_PARAMETER:
    case STATUS_INVALID_USER_BUFFER:
    case STATUS_INVALID_BLOCK_LENGTH:
        return EINVAL;
    case STATUS_NONEXISTENT_SECTOR:
    case STATUS_END_OF_FILE:
        return ENOSPC;
    case STATUS_MEDIA_WRITE_PROTECTED:
    case STATUS_ACCESS_DENIED:
        return EPERM;
    case STATUS_INSUFFICIENT_RESOURCES:
        return ENOMEM;
    case STATUS_NOT_SUPPORTED:
    case STATUS_INVALID_DEVICE_REQUEST:
        return ENOTSUP;
    default:
        return EIO;
    }
}

static int fail_status(const char *what, storstack_status_t st)
{
    nbdkit_error("storstack: %s: %s", what, storstack_status_name(st));
    nbdkit_set_error(status_errno(st));
    return -1;
}

/* Sends one CDB as IOCTL_SCSI_PASS_THROUGH_DIRECT. Returns 0 for GOOD, -1 with the error set. */
static int scsi(storstack_handle_t *h, const char *what, const uint8_t *cdb, uint8_t cdb_len,
                uint8_t dir, void *data, uint32_t len, uint32_t *got)
{
    struct nbdkit_ss_sptd s;
    uint32_t returned = 0;
    storstack_status_t st;

    memset(&s, 0, sizeof(s));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = cdb_len;
    s.sptd.SenseInfoLength = NBDKIT_SS_SENSE;
    s.sptd.SenseInfoOffset = offsetof(struct nbdkit_ss_sptd, sense);
    s.sptd.DataIn = dir;
    s.sptd.DataTransferLength = len;
    s.sptd.DataBuffer = len ? data : NULL;
    s.sptd.TimeOutValue = NBDKIT_SS_TIMEOUT;
    memcpy(s.sptd.Cdb, cdb, cdb_len);
    st =
        storstack_ioctl(h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s, sizeof(s), &returned);
    if (NT_ERROR(st))
        return fail_status(what, st);
    if (s.sptd.ScsiStatus != 0) {
        uint8_t key = 0, asc = 0, ascq = 0;
        if (s.sptd.SenseInfoLength >= 14 && (s.sense[0] & 0x7e) == 0x70) {
            key = s.sense[2] & 0x0f;
            asc = s.sense[12];
            ascq = s.sense[13];
        } else if (s.sptd.SenseInfoLength >= 4 && (s.sense[0] & 0x7e) == 0x72) {
            key = s.sense[1] & 0x0f;
            asc = s.sense[2];
            ascq = s.sense[3];
        }
        nbdkit_debug("storstack: %s: SCSI status 0x%02x, sense %x/%02x/%02x", what,
                     s.sptd.ScsiStatus, key, asc, ascq);
        /* ILLEGAL REQUEST: the unit does not do it; DATA PROTECT: read-only */
        nbdkit_set_error(key == 0x05 ? ENOTSUP : key == 0x07 ? EPERM : EIO);
        return -1;
    }
    if (got)
        *got = s.sptd.DataTransferLength;
    return 0;
}

/* REPORT SUPPORTED OPERATION CODES, one command (SPC-4 6.35): true when SUPPORT is 011b. */
static bool supports(storstack_handle_t *h, uint8_t opcode, int sa)
{
    uint8_t cdb[12] = {0xa3, 0x0c, sa < 0 ? 0x01 : 0x02, opcode};
    uint8_t data[64];
    uint32_t got = 0;
    if (sa >= 0) {
        cdb[4] = (uint8_t)(sa >> 8);
        cdb[5] = (uint8_t)sa;
    }
    put_be32(cdb + 6, sizeof(data));
    memset(data, 0, sizeof(data));
    if (scsi(h, "REPORT SUPPORTED OPERATION CODES", cdb, 12, SCSI_IOCTL_DATA_IN, data, sizeof(data),
             &got) < 0 ||
        got < 2)
        return false;
    return (data[1] & 0x07) == 0x03;
}

/* VPD page into buf; returns its length or 0 when the unit has none. */
static uint32_t vpd(storstack_handle_t *h, uint8_t page, uint8_t *buf, uint32_t len)
{
    uint8_t cdb[6] = {0x12, 0x01, page, (uint8_t)(len >> 8), (uint8_t)len, 0};
    uint32_t got = 0;
    memset(buf, 0, len);
    if (scsi(h, "INQUIRY", cdb, 6, SCSI_IOCTL_DATA_IN, buf, len, &got) < 0 || got < 4 ||
        buf[1] != page)
        return 0;
    return got;
}

/* Reads what the unit offers: size and sector from the disk class, provisioning from SCSI. */
static int probe(storstack_handle_t *h)
{
    DISK_GEOMETRY_EX geo;
    uint8_t b0[64], b2[8], rc16[32];
    uint32_t returned = 0, got = 0;
    storstack_status_t st;
    uint8_t cdb[16] = {0x9e, 0x10};

    memset(&disk, 0, sizeof(disk));
    st =
        storstack_ioctl(h, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, NULL, 0, &geo, sizeof(geo), &returned);
    if (NT_ERROR(st))
        return fail_status("IOCTL_DISK_GET_DRIVE_GEOMETRY_EX", st);
    disk.size = (uint64_t)geo.DiskSize.QuadPart;
    disk.block = geo.Geometry.BytesPerSector;
    if (disk.block < 512 || disk.block > 65536 || (disk.block & (disk.block - 1))) {
        nbdkit_error("storstack: %s reports a sector of %u bytes", cfg.device, disk.block);
        return -1;
    }
    put_be32(cdb + 10, sizeof(rc16));
    if (scsi(h, "READ CAPACITY(16)", cdb, 16, SCSI_IOCTL_DATA_IN, rc16, sizeof(rc16), &got) == 0 &&
        got >= 15)
        disk.lbprz = (rc16[14] & 0x40) != 0; /* SBC-4 5.20.2 */
    if (vpd(h, 0xb2, b2, sizeof(b2)) >= 6) {
        disk.unmap = (b2[5] & 0x80) && supports(h, 0x42, -1);
        disk.ws_unmap = (b2[5] & 0x40) != 0;
    }
    disk.write_same = supports(h, 0x93, -1);
    disk.lba_status = supports(h, 0x9e, 0x12);
    disk.max_unmap = 0xffffffffu;
    disk.max_ws = NBDKIT_SS_WS_CHUNK;
    if (vpd(h, 0xb0, b0, sizeof(b0)) >= 44) {
        uint32_t mu = (uint32_t)get_be(b0 + 20, 4);
        uint64_t mws = get_be(b0 + 36, 8);
        if (mu)
            disk.max_unmap = mu;
        if (mws && mws < disk.max_ws)
            disk.max_ws = mws;
    }
    if (!cfg.trim)
        disk.unmap = false;
    if (!cfg.zero)
        disk.write_same = false;
    if (!cfg.extents)
        disk.lba_status = false;
    nbdkit_debug("storstack: %s: %llu bytes, %u-byte sectors, unmap %d, write same %d (unmap %d), "
                 "lbprz %d, get lba status %d",
                 cfg.device, (unsigned long long)disk.size, disk.block, disk.unmap, disk.write_same,
                 disk.ws_unmap, disk.lbprz, disk.lba_status);
    return 0;
}

static void ss_unload(void)
{
    if (stack)
        storstack_destroy(stack);
    stack = NULL;
    free(cfg.config);
    free(cfg.server);
    free(cfg.device);
}

static int ss_config(const char *key, const char *value)
{
    char **slot = !strcmp(key, "config")   ? &cfg.config
                  : !strcmp(key, "server") ? &cfg.server
                  : !strcmp(key, "device") ? &cfg.device
                                           : NULL;
    if (slot) {
        free(*slot);
        *slot = strdup(value);
        return *slot ? 0 : -1;
    }
    if (!strcmp(key, "trim") || !strcmp(key, "zero") || !strcmp(key, "extents")) {
        int b = nbdkit_parse_bool(value);
        if (b < 0)
            return -1;
        *(key[0] == 't' ? &cfg.trim : key[0] == 'z' ? &cfg.zero : &cfg.extents) = b;
        return 0;
    }
    nbdkit_error("storstack: unknown parameter '%s' (config, server, device, trim, zero, extents)",
                 key);
    return -1;
}

static int ss_config_complete(void)
{
    if (cfg.config && cfg.server) {
        nbdkit_error("storstack: config= and server= exclude each other");
        return -1;
    }
    if (!cfg.device && !(cfg.device = strdup("PhysicalDrive0")))
        return -1;
    return 0;
}

/* The stack's threads must be born in the process that serves, after nbdkit has forked. */
static int ss_after_fork(void)
{
    char err[512] = "";
    storstack_handle_t *h;
    storstack_status_t st;

    stack = cfg.server ? storstack_connect(cfg.server, err, sizeof(err))
                       : storstack_create(cfg.config, err, sizeof(err));
    if (!stack) {
        nbdkit_error("storstack: %s", err);
        return -1;
    }
    st = storstack_open(stack, cfg.device, STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &h);
    if (NT_ERROR(st)) {
        nbdkit_error("storstack: cannot open %s: %s", cfg.device, storstack_status_name(st));
        return -1;
    }
    if (probe(h) < 0) {
        storstack_close(h);
        return -1;
    }
    storstack_close(h);
    return 0;
}

static void *ss_open(int readonly)
{
    storstack_handle_t *h;
    storstack_status_t st = storstack_open(
        stack, cfg.device, STORSTACK_GENERIC_READ | (readonly ? 0 : STORSTACK_GENERIC_WRITE), &h);
    if (NT_ERROR(st)) {
        fail_status(cfg.device, st);
        return NULL;
    }
    return h;
}

static void ss_close(void *handle)
{
    storstack_close(handle);
}

static int64_t ss_get_size(void *handle)
{
    return (int64_t)disk.size;
}

static int ss_block_size(void *handle, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
    *minimum = disk.block;
    *preferred = disk.block > 4096 ? disk.block : 4096;
    *maximum = NBDKIT_SS_MAX_IO;
    return 0;
}

static int ss_can_write(void *handle)
{
    return 1;
}

static int ss_can_flush(void *handle)
{
    return 1;
}

static int ss_can_fua(void *handle)
{
    return NBDKIT_FUA_EMULATE; /* nbdkit flushes after the write */
}

static int ss_can_trim(void *handle)
{
    return disk.unmap;
}

static int ss_can_zero(void *handle)
{
    return disk.write_same; /* when false nbdkit writes zeros itself */
}

/* Fast only when the zeroing can unmap blocks that then read as zeros. */
static int ss_can_fast_zero(void *handle)
{
    return disk.write_same && disk.ws_unmap && disk.lbprz;
}

static int ss_can_extents(void *handle)
{
    return disk.lba_status;
}

/* Every connection reaches the one disk: a flush on any is a SYNCHRONIZE CACHE of all. */
static int ss_can_multi_conn(void *handle)
{
    return 1;
}

static int rw_aligned(void *handle, void *buf, uint32_t count, uint64_t offset, bool write)
{
    uint32_t done = 0;
    storstack_status_t st = write ? storstack_write(handle, buf, count, offset, &done)
                                  : storstack_read(handle, buf, count, offset, &done);
    if (NT_ERROR(st))
        return fail_status(write ? "write" : "read", st);
    if (done != count) {
        nbdkit_error("storstack: %s of %u bytes at %llu moved %u", write ? "write" : "read", count,
                     (unsigned long long)offset, done);
        nbdkit_set_error(EIO);
        return -1;
    }
    return 0;
}

/* A request that does not start and end on sector boundaries goes through a bounce buffer of
 * the whole sectors it touches (read-modify-write for writes, serialized). */
static int rw_unaligned(void *handle, void *buf, uint32_t count, uint64_t offset, bool write)
{
    uint64_t start = offset - offset % disk.block;
    uint64_t end = offset + count;
    uint8_t *bounce;
    uint32_t len;
    int r = -1;

    end += (disk.block - end % disk.block) % disk.block;
    len = (uint32_t)(end - start);
    bounce = malloc(len);
    if (!bounce) {
        nbdkit_set_error(ENOMEM);
        return -1;
    }
    if (write)
        pthread_mutex_lock(&rmw_lock);
    /* the first and last sectors are all a write needs to read; a read reads everything */
    if (!write) {
        r = rw_aligned(handle, bounce, len, start, false);
        if (r == 0)
            memcpy(buf, bounce + (offset - start), count);
    } else if (rw_aligned(handle, bounce, disk.block, start, false) == 0 &&
               rw_aligned(handle, bounce + len - disk.block, disk.block, end - disk.block, false) ==
                   0) {
        memcpy(bounce + (offset - start), buf, count);
        r = rw_aligned(handle, bounce, len, start, true);
    }
    if (write)
        pthread_mutex_unlock(&rmw_lock);
    free(bounce);
    return r;
}

static int rw(void *handle, void *buf, uint32_t count, uint64_t offset, bool write)
{
    if (offset % disk.block || count % disk.block)
        return rw_unaligned(handle, buf, count, offset, write);
    return rw_aligned(handle, buf, count, offset, write);
}

static int ss_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    return rw(handle, buf, count, offset, false);
}

static int ss_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    return rw(handle, (void *)buf, count, offset, true);
}

static int ss_flush(void *handle, uint32_t flags)
{
    storstack_status_t st = storstack_flush(handle);
    return NT_ERROR(st) ? fail_status("flush", st) : 0;
}

/* UNMAP (SBC-4 5.30) of the whole sectors inside the range: trim is advisory, so the partial
 * sectors at its edges are left as they are. */
static int ss_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    uint64_t lba = (offset + disk.block - 1) / disk.block;
    uint64_t end = (offset + count) / disk.block;
    while (lba < end) {
        uint8_t cdb[10] = {0x42}, param[24] = {0};
        uint64_t n = end - lba < disk.max_unmap ? end - lba : disk.max_unmap;
        cdb[8] = sizeof(param);       /* PARAMETER LIST LENGTH */
        param[1] = sizeof(param) - 2; /* UNMAP DATA LENGTH */
        param[3] = 16;                /* BLOCK DESCRIPTOR DATA LENGTH */
        put_be64(param + 8, lba);
        put_be32(param + 16, (uint32_t)n);
        if (scsi(handle, "UNMAP", cdb, 10, SCSI_IOCTL_DATA_OUT, param, sizeof(param), NULL) < 0)
            return -1;
        lba += n;
    }
    if (flags & NBDKIT_FLAG_FUA)
        return ss_flush(handle, 0);
    return 0;
}

/* WRITE SAME(16) of a zero sector (SBC-4 5.49), with UNMAP when the client allows holes. */
static int ss_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    bool may_trim = (flags & NBDKIT_FLAG_MAY_TRIM) != 0;
    uint64_t lba = (offset + disk.block - 1) / disk.block;
    uint64_t end = (offset + count) / disk.block;
    uint8_t zeros[65536];

    if ((flags & NBDKIT_FLAG_FAST_ZERO) && !(may_trim && ss_can_fast_zero(handle))) {
        nbdkit_set_error(ENOTSUP);
        return -1;
    }
    memset(zeros, 0, disk.block);
    if (lba > end) /* inside one sector */
        return rw(handle, zeros, count, offset, true);
    /* partial sectors at the edges are written as data */
    if (lba * disk.block > offset &&
        rw(handle, zeros, (uint32_t)(lba * disk.block - offset), offset, true) < 0)
        return -1;
    if (end * disk.block < offset + count &&
        rw(handle, zeros, (uint32_t)(offset + count - end * disk.block), end * disk.block, true) <
            0)
        return -1;
    while (lba < end) {
        uint8_t cdb[16] = {0x93};
        uint64_t n = end - lba < disk.max_ws ? end - lba : disk.max_ws;
        if (may_trim && disk.ws_unmap)
            cdb[1] = 0x08; /* UNMAP */
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, (uint32_t)n);
        if (scsi(handle, "WRITE SAME(16)", cdb, 16, SCSI_IOCTL_DATA_OUT, zeros, disk.block, NULL) <
            0)
            return -1;
        lba += n;
    }
    if (flags & NBDKIT_FLAG_FUA)
        return ss_flush(handle, 0);
    return 0;
}

/* GET LBA STATUS (SBC-4 5.7): each descriptor's provisioning status says mapped (0), or
 * deallocated/anchored (1, 2), which reads as zeros when LBPRZ is set. */
static int ss_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                      struct nbdkit_extents *extents)
{
    uint64_t lba = offset / disk.block;
    uint64_t end = (offset + count + disk.block - 1) / disk.block;
    uint8_t data[8 + 16 * NBDKIT_SS_LBAS_DESC];

    while (lba < end) {
        uint8_t cdb[16] = {0x9e, 0x12};
        uint32_t got = 0, n;
        uint64_t next = lba;
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, sizeof(data));
        if (scsi(handle, "GET LBA STATUS", cdb, 16, SCSI_IOCTL_DATA_IN, data, sizeof(data), &got) <
            0)
            return -1;
        if (got < 8) {
            nbdkit_error("storstack: GET LBA STATUS returned %u bytes", got);
            nbdkit_set_error(EIO);
            return -1;
        }
        n = (uint32_t)get_be(data, 4) + 4;
        n = (n < got ? n : got);
        n = n < 8 ? 0 : (n - 8) / 16;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *d = data + 8 + 16 * i;
            uint64_t start = get_be(d, 8), blocks = get_be(d + 8, 4);
            uint32_t type = 0;
            if (start != next || blocks == 0)
                break; /* descriptors must be contiguous from the LBA asked */
            if ((d[12] & 0x0f) == 1 || (d[12] & 0x0f) == 2)
                type = NBDKIT_EXTENT_HOLE | (disk.lbprz ? NBDKIT_EXTENT_ZERO : 0);
            if (nbdkit_add_extent(extents, start * disk.block, blocks * disk.block, type) < 0)
                return -1;
            next = start + blocks;
        }
        if (next == lba) {
            nbdkit_error("storstack: GET LBA STATUS described nothing at LBA %llu",
                         (unsigned long long)lba);
            nbdkit_set_error(EIO);
            return -1;
        }
        if (flags & NBDKIT_FLAG_REQ_ONE)
            break;
        lba = next;
    }
    return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "storstack",
    .longname = "storstack disk class device",
    .version = "1.0",
    .description = "Exports a disk of a storstack stack (Windows storage driver model)",
    .unload = ss_unload,
    .config = ss_config,
    .config_complete = ss_config_complete,
    .config_help = "config=FILE      stack configuration (default: 1 GiB RAM disk)\n"
                   "server=SOCKET    a running `storstack serve` instead of config=\n"
                   "device=NAME      the disk to export (default PhysicalDrive0)\n"
                   "trim=BOOL zero=BOOL extents=BOOL  switch UNMAP, WRITE SAME, GET LBA STATUS off",
    .magic_config_key = "config",
    .after_fork = ss_after_fork,
    .open = ss_open,
    .close = ss_close,
    .get_size = ss_get_size,
    .block_size = ss_block_size,
    .can_write = ss_can_write,
    .can_flush = ss_can_flush,
    .can_fua = ss_can_fua,
    .can_trim = ss_can_trim,
    .can_zero = ss_can_zero,
    .can_fast_zero = ss_can_fast_zero,
    .can_extents = ss_can_extents,
    .can_multi_conn = ss_can_multi_conn,
    .pread = ss_pread,
    .pwrite = ss_pwrite,
    .flush = ss_flush,
    .trim = ss_trim,
    .zero = ss_zero,
    .extents = ss_extents,
    .errno_is_preserved = 0,
};

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
NBDKIT_REGISTER_PLUGIN(plugin)
