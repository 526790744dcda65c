/*
 * Commands that act on the whole medium: FORMAT UNIT (SBC-4 5.4) and SANITIZE (5.30) with BLOCK
 * ERASE and EXIT FAILURE MODE. Both leave every block reading zeros by the cheapest means the
 * backend offers: deallocation on a thin LU with LBPRZ, else the backend's WRITE_ZEROES, else
 * zeros written 64 KiB at a time. They hold the LU's write gate exclusive, so no write lands in
 * the middle of the erase. OVERWRITE and CRYPTOGRAPHIC ERASE are not advertised (SANITIZE with
 * those service actions is INVALID FIELD IN CDB at the SERVICE ACTION, from the dispatcher).
 */
#include <string.h>

#include "devices/sbc_p.h"

static int erase_all(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    uint64_t bytes = lu->nblocks << lu->block_shift;
    if (lu->lbpme && lu->lbprz)
        return sbc_start(cmd, SBC_IO_DISCARD, 0, bytes, SBC_IO_WHOLE);
    if (lu->be->caps.can_zero)
        return sbc_start(cmd, SBC_IO_ZEROES, 0, bytes, SBC_IO_WHOLE);
    if (!sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    memset(sbc_slot_buf(lu, scsi_priv(cmd)->slot), 0, SCSI_VERIFY_SLOT_SIZE);
    return sbc_start(cmd, SBC_IO_PATTERN, 0, bytes, sbc_write_flags(lu, false) | SBC_IO_WHOLE);
}

/* ---- FORMAT UNIT -------------------------------------------------------------------------- */

/*
 * SBC-4 5.4 without protection information and without defect lists: FMTPINFO=0, and with
 * FMTDATA=1 a short (4-byte) or long (8-byte) parameter list header with no initialization
 * pattern (IP=0), no protection fields and a DEFECT LIST LENGTH of zero. The format leaves every
 * block reading zeros (erase_all). IMMED is accepted; the command still ends when the format has.
 */
int sbc_format_unit(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    bool fmtdata = cdb[1] & 0x10;
    bool longlist = cdb[1] & 0x20;
    if (!fmtdata && (cdb[1] & 0x2F)) {
        /* Without a parameter list, CMPLST, LONGLIST and DEFECT LIST FORMAT mean nothing and
         * must be zero. */
        /* The bit pointer names the field's most significant bit (SPC-4 4.5.2.4.2). */
        scsi_check_cdb_field(cmd, lu, 1, (cdb[1] & 0x20) ? 5 : (cdb[1] & 0x08) ? 3 : 2);
        return SCSI_DONE;
    }
    if (fmtdata) {
        uint32_t hlen = longlist ? 8 : 4;
        if (scsi_out_capacity(cmd) < hlen) {
            scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST,
                              SCSI_ADSENSE_PARAMETER_LIST_LENGTH, 0);
            return SCSI_DONE;
        }
        uint8_t h[8] = {0};
        scsi_data_out(cmd, 0, h, hlen);
        if (h[0] & 0x07) { /* PROTECTION FIELD USAGE */
            scsi_check_param_field(cmd, lu, 0, 2);
            return SCSI_DONE;
        }
        if (h[1] & 0x08) { /* IP: no initialization pattern support */
            scsi_check_param_field(cmd, lu, 1, 3);
            return SCSI_DONE;
        }
        if (h[1] & 0x04) { /* obsolete */
            scsi_check_param_field(cmd, lu, 1, 2);
            return SCSI_DONE;
        }
        if (longlist && h[3]) { /* P_I_INFORMATION / PROTECTION INTERVAL EXPONENT */
            scsi_check_param_field(cmd, lu, 3, -1);
            return SCSI_DONE;
        }
        uint32_t dl = longlist ? scsi_get_be32(h + 4) : scsi_get_be16(h + 2);
        if (dl) {
            scsi_check_param_field(cmd, lu, longlist ? 4 : 2, -1);
            return SCSI_DONE;
        }
        cmd->transferred = hlen;
    }
    return erase_all(lu, cmd);
}

/* ---- SANITIZE ----------------------------------------------------------------------------- */

/*
 * SBC-4 5.30. BLOCK ERASE takes no parameter list: the medium is erased as FORMAT UNIT does and
 * reads as zeros afterwards, which VPD B1h says with WABEREQ=01b (a read after a block erase
 * succeeds). A sanitize that fails reports its error and leaves no failure mode behind, so EXIT
 * FAILURE MODE (no parameter list either) has nothing to leave and completes with GOOD. IMMED
 * and AUSE are accepted; the command ends when the erase has.
 */
int sbc_sanitize(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    if (scsi_get_be16(cdb + 7) != 0) {
        scsi_check_cdb_field(cmd, lu, 7, -1);
        return SCSI_DONE;
    }
    if ((cdb[1] & 0x1F) == SANITIZE_EXIT_FAILURE_MODE) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    return erase_all(lu, cmd);
}
