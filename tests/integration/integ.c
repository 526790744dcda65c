/*
 * Shared helpers of the integration tests (see integ.h): booting, patterns, pass-through and
 * temporary directories.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdatomic.h>

#include <storstack/wdm/io.h>

#include "integ.h"

storstack_t *integ_try_boot(const char *config_text, char *err, size_t errlen)
{
    return storstack_create_ex(NULL, config_text, NULL, 0, err, errlen);
}

storstack_t *integ_boot_ex(const char *config_text, const DRIVER_PACKAGE *extra, size_t count)
{
    char err[512] = "";
    storstack_t *s = storstack_create_ex(NULL, config_text, extra, count, err, sizeof(err));
    if (!s)
        fail_msg("the stack did not boot: %s", err);
    return s;
}

storstack_t *integ_boot(const char *config_text)
{
    return integ_boot_ex(config_text, NULL, 0);
}

storstack_handle_t *integ_open(storstack_t *stack, const char *name, uint32_t access)
{
    storstack_handle_t *h = NULL;
    storstack_status_t st = storstack_open(stack, name, access, &h);
    if (st != STATUS_SUCCESS)
        fail_msg("open %s: %s", name, storstack_status_name(st));
    return h;
}

char *integ_config(const char *adapter_extra, const char *lun_extra)
{
    char *text = NULL;
    if (asprintf(&text,
                 "[Enum\\Root\\VMINIPORT\\0000]\n"
                 "HardwareID = multi:ROOT\\VMINIPORT\n"
                 "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters]\n"
                 "%s"
                 "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
                 "Type = disk\n"
                 "%s",
                 adapter_extra ? adapter_extra : "", lun_extra ? lun_extra : "") < 0)
        fail_msg("out of memory");
    return text;
}

/* xorshift64*, seeded per 512-byte piece from its position and the seed */
static inline uint64_t integ_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

static void integ_piece(uint64_t *w, uint64_t sector, uint64_t seed)
{
    uint64_t x = (sector * 0x9E3779B97F4A7C15ull) ^ (seed * 0xC2B2AE3D27D4EB4Full) ^ 1;
    w[0] = sector;
    w[1] = seed;
    for (int i = 2; i < 64; i++)
        w[i] = integ_next(&x);
}

void integ_fill(void *buf, uint64_t offset, uint32_t length, uint64_t seed)
{
    uint64_t piece[64];
    for (uint32_t done = 0; done < length; done += 512) {
        integ_piece(piece, (offset + done) / 512, seed);
        memcpy((uint8_t *)buf + done, piece, length - done < 512 ? length - done : 512);
    }
}

long integ_find_mismatch(const void *buf, uint64_t offset, uint32_t length, uint64_t seed)
{
    uint64_t piece[64];
    for (uint32_t done = 0; done < length; done += 512) {
        integ_piece(piece, (offset + done) / 512, seed);
        if (memcmp((const uint8_t *)buf + done, piece, length - done < 512 ? length - done : 512))
            return (long)done;
    }
    return -1;
}

void *integ_alloc(size_t length, size_t misalign)
{
    uint8_t *p = NULL;
    if (posix_memalign((void **)&p, 4096, length + 8192) != 0)
        fail_msg("out of memory");
    /* the base is remembered just before the returned pointer */
    uint8_t *user = p + 4096 + misalign % 4096;
    memcpy(user - sizeof(void *), &p, sizeof(void *));
    return user;
}

void integ_free(void *p)
{
    void *base;
    if (!p)
        return;
    memcpy(&base, (uint8_t *)p - sizeof(void *), sizeof(void *));
    free(base);
}

void integ_write_pattern(storstack_handle_t *h, uint64_t offset, uint32_t length, uint64_t seed)
{
    uint8_t *buf = integ_alloc(length, 0);
    uint32_t n = 0;
    integ_fill(buf, offset, length, seed);
    storstack_status_t st = storstack_write(h, buf, length, offset, &n);
    integ_free(buf);
    if (st != STATUS_SUCCESS || n != length)
        fail_msg("write of %u bytes at %llu: %s, %u bytes", length, (unsigned long long)offset,
                 storstack_status_name(st), n);
}

void integ_verify_pattern(storstack_handle_t *h, uint64_t offset, uint32_t length, uint64_t seed)
{
    uint8_t *buf = integ_alloc(length, 0);
    uint32_t n = 0;
    memset(buf, 0xEE, length);
    storstack_status_t st = storstack_read(h, buf, length, offset, &n);
    if (st != STATUS_SUCCESS || n != length) {
        integ_free(buf);
        fail_msg("read of %u bytes at %llu: %s, %u bytes", length, (unsigned long long)offset,
                 storstack_status_name(st), n);
    }
    long bad = integ_find_mismatch(buf, offset, length, seed);
    if (bad >= 0) {
        uint64_t got_lba, got_seed;
        memcpy(&got_lba, buf + bad, 8);
        memcpy(&got_seed, buf + bad + 8, 8);
        integ_free(buf);
        fail_msg("data mismatch at byte %llu (read of %u at %llu, seed %llu): the piece says "
                 "sector %llu seed %llu",
                 (unsigned long long)(offset + (uint64_t)bad), length, (unsigned long long)offset,
                 (unsigned long long)seed, (unsigned long long)got_lba,
                 (unsigned long long)got_seed);
    }
    integ_free(buf);
}

void integ_pass_through(storstack_handle_t *h, int direct, uint8_t target, uint8_t lun,
                        const uint8_t *cdb, uint8_t cdb_len, int dir, void *data, uint32_t length,
                        struct integ_spt *r)
{
    /* header, then sense (32 bytes at offset 56, leaving 8 for alignment), then data */
    const uint32_t sense_off = 64, data_off = 96;
    uint32_t total = direct ? data_off : data_off + length;
    uint8_t *buf = calloc(1, total);
    SCSI_PASS_THROUGH *spt = (SCSI_PASS_THROUGH *)buf;
    SCSI_PASS_THROUGH_DIRECT *sptd = (SCSI_PASS_THROUGH_DIRECT *)buf;

    assert_non_null(buf);
    memset(r, 0, sizeof(*r));
    spt->Length = direct ? sizeof(SCSI_PASS_THROUGH_DIRECT) : sizeof(SCSI_PASS_THROUGH);
    spt->TargetId = target;
    spt->Lun = lun;
    spt->CdbLength = cdb_len;
    spt->SenseInfoLength = 32;
    spt->SenseInfoOffset = sense_off;
    spt->DataIn = dir == INTEG_DATA_NONE ? SCSI_IOCTL_DATA_UNSPECIFIED
                  : dir == INTEG_DATA_IN ? SCSI_IOCTL_DATA_IN
                                         : SCSI_IOCTL_DATA_OUT;
    if (dir == INTEG_DATA_NONE)
        length = 0;
    spt->DataTransferLength = length;
    spt->TimeOutValue = 10;
    memcpy(spt->Cdb, cdb, cdb_len > 16 ? 16 : cdb_len);
    if (direct) {
        sptd->DataBuffer = length ? data : NULL;
    } else {
        spt->DataBufferOffset = length ? data_off : 0;
        if (length && dir == INTEG_DATA_OUT)
            memcpy(buf + data_off, data, length);
    }
    r->status =
        storstack_ioctl(h, direct ? IOCTL_SCSI_PASS_THROUGH_DIRECT : IOCTL_SCSI_PASS_THROUGH, buf,
                        total, buf, total, &r->returned);
    r->scsi_status = spt->ScsiStatus;
    r->sense_len = spt->SenseInfoLength;
    memcpy(r->sense, buf + sense_off, sizeof(r->sense));
    r->transferred = spt->DataTransferLength;
    if (!direct && length && dir == INTEG_DATA_IN && r->status == STATUS_SUCCESS)
        memcpy(data, buf + data_off, r->transferred < length ? r->transferred : length);
    free(buf);
}

void integ_assert_sense(const struct integ_spt *r, uint8_t key, uint8_t asc, uint8_t ascq, long sks,
                        const char *what)
{
    if (r->status != STATUS_SUCCESS)
        fail_msg("%s: the IOCTL returned %s, expected STATUS_SUCCESS with CHECK CONDITION", what,
                 storstack_status_name(r->status));
    if (r->scsi_status != 0x02)
        fail_msg("%s: ScsiStatus %02Xh, expected CHECK CONDITION (02h)", what, r->scsi_status);
    if (r->sense_len < 18 || (r->sense[0] & 0x7F) != 0x70)
        fail_msg("%s: sense length %u, response code %02Xh: expected fixed sense of 18 bytes", what,
                 r->sense_len, r->sense[0]);
    if ((r->sense[2] & 0x0F) != key || r->sense[12] != asc || r->sense[13] != ascq)
        fail_msg("%s: sense %Xh/%02Xh/%02Xh, expected %Xh/%02Xh/%02Xh", what, r->sense[2] & 0x0F,
                 r->sense[12], r->sense[13], key, asc, ascq);
    if (sks >= 0) {
        long got = (long)r->sense[15] << 16 | (long)r->sense[16] << 8 | r->sense[17];
        if (got != sks)
            fail_msg("%s: sense-key specific bytes %06lXh, expected %06lXh", what, got, sks);
    }
}

void integ_mkdtemp(char *path, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(path, len, "%s/storstack-integ-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(path))
        fail_msg("mkdtemp %s failed", path);
}

static int integ_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void integ_rmtree(const char *path)
{
    nftw(path, integ_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static NTSTATUS integ_irp_done(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    struct integ_irp *t = Context;
    t->status = Irp->IoStatus.Status;
    atomic_fetch_add(&t->completions, 1);
    return STATUS_MORE_PROCESSING_REQUIRED; /* the test frees the IRP */
}

void integ_irp_read(PEXECUTIVE exec, PDEVICE_OBJECT top, struct integ_irp *t, uint32_t lba,
                    uint32_t timeout)
{
    PIO_STACK_LOCATION sp;
    memset(t, 0, sizeof(*t));
    t->spt.sptd.Length = sizeof(t->spt.sptd);
    t->spt.sptd.CdbLength = 10;
    t->spt.sptd.SenseInfoLength = sizeof(t->spt.sense);
    t->spt.sptd.SenseInfoOffset = offsetof(__typeof__(t->spt), sense);
    t->spt.sptd.DataIn = SCSI_IOCTL_DATA_IN;
    t->spt.sptd.DataTransferLength = sizeof(t->data);
    t->spt.sptd.DataBuffer = t->data;
    t->spt.sptd.TimeOutValue = timeout;
    t->spt.sptd.Cdb[0] = 0x28; /* READ(10) */
    integ_put_be32(&t->spt.sptd.Cdb[2], lba);
    t->spt.sptd.Cdb[8] = 8;
    t->irp = IoAllocateIrpEx(exec, top->StackSize, FALSE);
    assert_non_null(t->irp);
    t->irp->AssociatedIrp.SystemBuffer = &t->spt;
    sp = IoGetNextIrpStackLocation(t->irp);
    sp->MajorFunction = IRP_MJ_DEVICE_CONTROL;
    sp->Parameters.DeviceIoControl.IoControlCode = IOCTL_SCSI_PASS_THROUGH_DIRECT;
    sp->Parameters.DeviceIoControl.InputBufferLength = sizeof(t->spt);
    sp->Parameters.DeviceIoControl.OutputBufferLength = sizeof(t->spt);
    IoSetCompletionRoutine(t->irp, integ_irp_done, t, TRUE, TRUE, TRUE);
    IoCallDriver(top, t->irp);
}

void integ_irp_free(struct integ_irp *t)
{
    IoFreeIrp(t->irp);
    t->irp = NULL;
}

int integ_sh(char **out, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, p);
    text[n] = 0;
    int status = pclose(p);
    if (out)
        *out = text;
    else
        free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
