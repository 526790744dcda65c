/*
 * Sense data for the SCSI device server (SPC-4 4.5). A CHECK CONDITION carries its sense data in
 * the command (autosense: SAM-5 5.13), in fixed format (SPC-4 4.5.3, 18 bytes) or, when the
 * control mode page's D_SENSE bit is one, in descriptor format (SPC-4 4.5.2) with an information
 * descriptor (4.5.2.2) and a sense-key-specific descriptor (4.5.2.4). For ILLEGAL REQUEST the
 * sense-key-specific bytes are the field pointer of SPC-4 4.5.2.4.2: SKSV, C/D (CDB or parameter
 * list), BPV and a bit pointer, and the big-endian byte offset of the offending field. A
 * multi-bit field is pointed at by its most significant bit; a whole-byte (or multi-byte) field
 * by its first byte with BPV zero.
 */
#include <string.h>

#include "devices/scsi_lu_p.h"

static void sense_sks(uint8_t *p, const struct scsi_sense_info *si)
{
    p[0] = SCSI_SENSEKEY_SPECIFIC_SKSV;
    if (si->sks_cd)
        p[0] |= SCSI_SENSEKEY_SPECIFIC_CD;
    if (si->sks_bpv)
        p[0] |= SCSI_SENSEKEY_SPECIFIC_BPV | (si->bit_pointer & 0x07);
    scsi_put_be16(p + 1, si->field_pointer);
}

uint8_t scsi_sense_build(uint8_t *buf, bool descriptor, const struct scsi_sense_info *si)
{
    memset(buf, 0, SENSE_BUFFER_SIZE + 24);
    if (!descriptor) {
        buf[0] = SCSI_SENSE_ERRORCODE_FIXED_CURRENT;
        /* The fixed format INFORMATION field has 4 bytes; a larger value cannot be reported
         * there, so VALID stays zero (SPC-4 4.5.3). */
        if (si->info_valid && si->info <= UINT32_MAX) {
            buf[0] |= 0x80;
            scsi_put_be32(buf + 3, (uint32_t)si->info);
        }
        buf[2] = si->key & 0x0F;
        buf[7] = SENSE_BUFFER_SIZE - 8;
        buf[12] = si->asc;
        buf[13] = si->ascq;
        if (si->sks_valid)
            sense_sks(buf + 15, si);
        return SENSE_BUFFER_SIZE;
    }

    uint8_t len = 8;
    buf[0] = SCSI_SENSE_ERRORCODE_DESCRIPTOR_CURRENT;
    buf[1] = si->key & 0x0F;
    buf[2] = si->asc;
    buf[3] = si->ascq;
    if (si->info_valid) {
        uint8_t *d = buf + len;
        d[0] = SCSI_SENSE_DESCRIPTOR_TYPE_INFORMATION;
        d[1] = 0x0A;
        d[2] = 0x80; /* VALID */
        scsi_put_be64(d + 4, si->info);
        len += 12;
    }
    if (si->sks_valid) {
        uint8_t *d = buf + len;
        d[0] = SCSI_SENSE_DESCRIPTOR_TYPE_SENSE_KEY_SPECIFIC;
        d[1] = 0x06;
        sense_sks(d + 4, si);
        len += 8;
    }
    buf[7] = (uint8_t)(len - 8);
    return len;
}

void scsi_check(struct scsi_cmd *cmd, const struct scsi_lu *lu, const struct scsi_sense_info *si)
{
    bool desc = lu && atomic_load_explicit(&((struct scsi_lu *)lu)->d_sense, memory_order_relaxed);
    cmd->status = SAM_STAT_CHECK_CONDITION;
    cmd->sense_len = scsi_sense_build(cmd->sense, desc, si);
}

void scsi_check_simple(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint8_t key, uint8_t asc,
                       uint8_t ascq)
{
    struct scsi_sense_info si = {.key = key, .asc = asc, .ascq = ascq};
    scsi_check(cmd, lu, &si);
}

static void check_field(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint8_t asc, bool cd,
                        uint16_t byte, int bit)
{
    struct scsi_sense_info si = {
        .key = SCSI_SENSE_ILLEGAL_REQUEST,
        .asc = asc,
        .sks_valid = true,
        .sks_cd = cd,
        .sks_bpv = bit >= 0,
        .bit_pointer = (uint8_t)(bit >= 0 ? bit : 0),
        .field_pointer = byte,
    };
    scsi_check(cmd, lu, &si);
}

void scsi_check_cdb_field(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint16_t byte, int bit)
{
    check_field(cmd, lu, SCSI_ADSENSE_INVALID_CDB, true, byte, bit);
}

void scsi_check_param_field(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint16_t byte, int bit)
{
    check_field(cmd, lu, SCSI_ADSENSE_INVALID_FIELD_PARAMETER_LIST, false, byte, bit);
}

int scsi_high_bit(uint8_t v)
{
    int bit = 7;
    while (bit > 0 && !(v & (1u << bit)))
        bit--;
    return bit;
}

void scsi_good(struct scsi_cmd *cmd)
{
    cmd->status = SAM_STAT_GOOD;
    cmd->sense_len = 0;
}
