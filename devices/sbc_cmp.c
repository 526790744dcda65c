/*
 * Block commands that compare with the medium or read-modify-write it: VERIFY (10)/(12)/(16)
 * (SBC-4 5.33-5.35), WRITE AND VERIFY (10)/(12)/(16) (5.42-5.44), COMPARE AND WRITE (5.3) and
 * ORWRITE (16) (5.12). The medium's data is read into one of the LU's 64 KiB bounce slots and
 * compared or combined there; with every slot in use the command ends with BUSY, which the
 * initiator retries. COMPARE AND WRITE and ORWRITE hold the LU's write gate exclusive, so no other
 * write lands between their read and their write. A miscompare is MISCOMPARE / MISCOMPARE DURING
 * VERIFY OPERATION (0Eh, 1Dh/00h) with INFORMATION = the offset of the first byte that differs.
 */
#include <string.h>

#include "devices/sbc_p.h"

/*
 * VERIFY: BYTCHK 00b checks the medium only (a store without media errors passes: GOOD after the
 * range check); 01b compares the blocks with the data-out buffer; 11b compares every block with
 * the single block of the data-out buffer; 10b is reserved.
 */
int sbc_verify(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    uint8_t bytchk = (cmd->cdb[1] >> 1) & 0x03;
    if (bytchk == 2) {
        scsi_check_cdb_field(cmd, lu, 1, 2);
        return SCSI_DONE;
    }
    if (bytchk == 1 && !sbc_xfer_ok(cmd, lu, rw.nblocks, rw.len_field))
        return SCSI_DONE;
    if (!sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    if (!bytchk || rw.nblocks == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint64_t bytes = (uint64_t)rw.nblocks << lu->block_shift;
    uint64_t need = bytchk == 1 ? bytes : lu->block_size;
    if (scsi_out_capacity(cmd) < need) {
        scsi_check_cdb_field(cmd, lu, rw.len_field, -1);
        return SCSI_DONE;
    }
    if (!sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    if (bytchk == 3)
        cmd->transferred = lu->block_size;
    return sbc_start(cmd, bytchk == 1 ? SBC_IO_VERIFY : SBC_IO_VERIFY_SAME,
                     rw.lba << lu->block_shift, bytes, 0);
}

/*
 * WRITE AND VERIFY: the write, then with BYTCHK=01b a read-back compared with the data-out
 * buffer; with 00b a medium verification, which a store without media errors passes; with 11b
 * the one data-out block is written to every LBA, then every block read back is compared with
 * it. The write goes through to the medium before the verification (SBC-4 5.42), so it is
 * written FUA. BYTCHK 10b is reserved.
 */
static int write_verify_same(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    sbc_parse_rw(cmd->cdb, &rw);
    if (!sbc_xfer_ok(cmd, lu, rw.nblocks, rw.len_field) ||
        !sbc_range_ok(cmd, lu, rw.lba, rw.nblocks))
        return SCSI_DONE;
    if (rw.nblocks == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (scsi_out_capacity(cmd) < lu->block_size) {
        scsi_check_cdb_field(cmd, lu, rw.len_field, -1);
        return SCSI_DONE;
    }
    uint64_t bytes = (uint64_t)rw.nblocks << lu->block_shift;
    if (!sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    sbc_slot_fill(cmd, lu, bytes, false);
    cmd->transferred = lu->block_size;
    return sbc_start(cmd, SBC_IO_PATTERN, rw.lba << lu->block_shift, bytes,
                     sbc_write_flags(lu, true) | SBC_IO_THEN_VERIFY);
}

int sbc_write_verify(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    uint64_t bytes;
    uint8_t bytchk = (cmd->cdb[1] >> 1) & 0x03;
    if (bytchk == 2) {
        scsi_check_cdb_field(cmd, lu, 1, 2);
        return SCSI_DONE;
    }
    if (bytchk == 3)
        return write_verify_same(lu, cmd);
    if (!sbc_write_checks(lu, cmd, &rw, &bytes))
        return SCSI_DONE;
    uint8_t flags = sbc_write_flags(lu, true);
    if (bytchk) {
        if (!sbc_slot_claim(cmd, lu))
            return SCSI_DONE;
        flags |= SBC_IO_THEN_VERIFY;
    }
    return sbc_start(cmd, SBC_IO_WRITE, rw.lba << lu->block_shift, bytes, flags);
}

/*
 * COMPARE AND WRITE (SBC-4 5.3): the data-out buffer is NUMBER OF LOGICAL BLOCKS of compare data
 * followed as many of write data, exactly; a buffer of any other size is an invalid field at
 * NUMBER OF LOGICAL BLOCKS (the command cannot tell which half is short, and a count that
 * disagrees with the data is what a 256 truncated to 0 looks like). NUMBER OF LOGICAL BLOCKS 0
 * with no data does nothing; above MAXIMUM COMPARE AND WRITE LENGTH it is an invalid field.
 */
int sbc_compare_and_write(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint64_t lba = scsi_get_be64(cdb + 2);
    uint32_t n = cdb[13];
    bool fua = cdb[1] & CDB_FORCE_MEDIA_ACCESS;
    if (n > sbc_max_caw_blocks(lu)) {
        scsi_check_cdb_field(cmd, lu, 13, -1);
        return SCSI_DONE;
    }
    if (!sbc_range_ok(cmd, lu, lba, n))
        return SCSI_DONE;
    uint32_t bytes = n << lu->block_shift;
    if (cmd->xfer_len != 2 * bytes || scsi_out_capacity(cmd) != 2 * bytes) {
        scsi_check_cdb_field(cmd, lu, 13, -1);
        return SCSI_DONE;
    }
    if (n == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (!sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    cmd->transferred = 2 * bytes;
    return sbc_start(cmd, SBC_IO_CAW, lba << lu->block_shift, bytes, sbc_write_flags(lu, fua));
}

/* ORWRITE (16) (SBC-4 5.12): each block becomes the bitwise OR of the medium and the data-out
 * buffer, read and written back 64 KiB at a time while the write gate is held exclusive. */
int sbc_orwrite(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    struct sbc_rw rw;
    uint64_t bytes;
    if (!sbc_write_checks(lu, cmd, &rw, &bytes) || !sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    cmd->transferred = (uint32_t)bytes;
    return sbc_start(cmd, SBC_IO_ORWRITE, rw.lba << lu->block_shift, bytes,
                     sbc_write_flags(lu, rw.fua));
}
