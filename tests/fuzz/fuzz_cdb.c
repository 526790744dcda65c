/*
 * libFuzzer target for the SCSI device server: arbitrary CDB bytes, data direction, transfer
 * length, initiator iov layout, backend faults and deferred completion, fed to a disk (or to a
 * target with two disks and absent LUNs) over the in-memory mock backend. It checks the device
 * contract on every input: done() runs exactly once, `transferred` never exceeds xfer_len, sense
 * data is present and bounded on CHECK CONDITION, and (under ASan) nothing is read or written
 * outside the initiator's buffer.
 *
 * Input layout: [0] flags: bits 1..0 direction (0 none, 1 in, 2 out, 3 unspecified), bit 2 deferred
 * completion, bits 4..3 fault (none, READ -EIO, WRITE -ENOSPC, FLUSH -EIO), bit 5 go through the
 * target, bits 7..6 iov split (1, 3, 7 or 40 segments); [1] CDB length mod 17; [2..3] xfer_len
 * (big-endian); [4] bit 0 nexus, bit 1 LUN 2 (absent), bit 2 write cache off, bit 3 4096-byte
 * blocks, bit 4 read-only, bit 5 raise a unit attention first, bit 6 FUA, bit 7 a thin backend
 * (trim, zeroes, allocation map); [5..20] the CDB; the rest fills the data-out buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/scsi_lu.h"
#include "mock_backend.h"

#define HDR       21
#define DISK_SIZE (128 * 512)

struct fz_cmd {
    struct scsi_cmd cmd;
    int ndone;
};

static void fz_done(struct scsi_cmd *c)
{
    ((struct fz_cmd *)c->context)->ndone++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR)
        return 0;
    uint8_t flags = data[0];
    uint8_t cdb_len = data[1] % 17;
    uint32_t xfer = (uint32_t)data[2] << 8 | data[3];
    uint8_t opt = data[4];
    uint8_t cdb[16];
    memcpy(cdb, data + 5, 16);
    const uint8_t *payload = data + HDR;
    size_t plen = size - HDR;

    bool thin = (opt & 0x80) != 0;
    struct be_caps caps = {.can_flush = true,
                           .can_fua = (opt & 0x40) != 0,
                           .can_trim = thin,
                           .trim_zeroes = thin,
                           .can_zero = thin,
                           .can_extents = thin};
    struct mock_backend *mb = mock_backend_create(DISK_SIZE, &caps);
    struct mock_backend *mb2 = mock_backend_create(DISK_SIZE, &caps);
    if (!mb || !mb2)
        abort();
    mock_backend_enable_meta(mb); /* APTPL paths of PERSISTENT RESERVE OUT */
    struct scsi_disk_config cfg = {
        .device_id = 42,
        .block_size = (opt & 0x08) ? 4096 : 512,
        .max_transfer_blocks = 64,
        .write_cache = !(opt & 0x04),
        .read_only = (opt & 0x10) != 0,
        /* opt bit 1 (the absent LUN when routed through a target) also makes the disk removable
         * with 16 KiB physical blocks */
        .removable = (opt & 0x02) != 0,
        .physical_block_size = (opt & 0x02) ? 16384 : 0,
    };
    struct scsi_lu *lu = NULL, *lu2 = NULL;
    if (scsi_disk_create(&cfg, &mb->be, &lu) != 0 || scsi_disk_create(NULL, &mb2->be, &lu2) != 0)
        abort();
    if (opt & 0x20)
        scsi_lu_set_unit_attention(lu, 0x29, 0x02);

    static const enum be_op fault_op[4] = {BE_OP_READ, BE_OP_READ, BE_OP_WRITE, BE_OP_FLUSH};
    static const int fault_err[4] = {0, -EIO, -ENOSPC, -EIO};
    int f = (flags >> 3) & 3;
    mock_backend_fail(mb, fault_op[f], fault_err[f]);
    mb->deferred = (flags & 0x04) != 0;

    /* The initiator's buffer: exactly xfer_len bytes, so ASan sees any overrun. */
    uint8_t *buf = malloc(xfer ? xfer : 1);
    if (!buf)
        abort();
    for (uint32_t i = 0; i < xfer; i++)
        buf[i] = plen ? payload[i % plen] : 0;
    static const int splits[4] = {1, 3, 7, 40};
    int nseg = splits[flags >> 6];
    struct iovec iov[40];
    uint32_t off = 0;
    for (int i = 0; i < nseg; i++) {
        uint32_t len = (i == nseg - 1) ? xfer - off : xfer / (uint32_t)nseg;
        iov[i].iov_base = buf + off;
        iov[i].iov_len = len;
        off += len;
    }

    static const enum scsi_dir dirs[4] = {SCSI_DIR_NONE, SCSI_DIR_IN, SCSI_DIR_OUT,
                                          SCSI_DIR_UNSPECIFIED};
    struct fz_cmd fc;
    memset(&fc, 0, sizeof(fc));
    fc.cmd.cdb = cdb;
    fc.cmd.cdb_len = cdb_len;
    fc.cmd.dir = dirs[flags & 3];
    fc.cmd.iov = iov;
    fc.cmd.iovcnt = nseg;
    fc.cmd.xfer_len = xfer;
    fc.cmd.nexus = opt & 0x01;
    /* nexus 1 also names itself by an iSCSI TransportID (persistent reservations) */
    fc.cmd.transport_id = (opt & 0x01) ? "iqn.2026-11.org.example:fuzz,i,0x230000000001" : NULL;
    fc.cmd.done = fz_done;
    fc.cmd.context = &fc;

    if (flags & 0x20) {
        struct scsi_target *t = scsi_target_create();
        if (!t || scsi_target_add_lu(t, 0, lu) || scsi_target_add_lu(t, 1, lu2))
            abort();
        scsi_target_execute(t, (opt & 0x02) ? 2 : 0, &fc.cmd);
        mock_backend_release(mb);
        scsi_target_destroy(t);
    } else {
        scsi_lu_execute(lu, &fc.cmd);
        mock_backend_release(mb);
    }

    if (fc.ndone != 1)
        abort();
    if (fc.cmd.transferred > xfer)
        abort();
    if (fc.cmd.status == SAM_STAT_CHECK_CONDITION &&
        (fc.cmd.sense_len < 8 || fc.cmd.sense_len > SCSI_SENSE_MAX))
        abort();
    if (fc.cmd.status != SAM_STAT_CHECK_CONDITION && fc.cmd.sense_len != 0)
        abort();

    free(buf);
    scsi_lu_destroy(lu);
    scsi_lu_destroy(lu2);
    be_destroy(&mb->be);
    be_destroy(&mb2->be);
    return 0;
}
