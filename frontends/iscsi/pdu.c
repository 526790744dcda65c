/*
 * iSCSI Basic Header Segment parsing and building (RFC 7143 11). The parser is the boundary where
 * an initiator's bytes become trusted lengths: it accepts only initiator opcodes and a data
 * segment no longer than the limit the caller passes (8192 during login, the negotiated
 * MaxRecvDataSegmentLength after it). The builders write target PDUs into a caller's 48 bytes.
 */
#include <errno.h>
#include <string.h>

#include "frontends/iscsi/pdu.h"

int iscsi_pdu_parse(const uint8_t bhs[ISCSI_BHS_LEN], uint32_t max_data, struct iscsi_pdu *out)
{
    memset(out, 0, sizeof(*out));
    out->bhs = bhs;
    out->opcode = bhs[0] & ISCSI_BHS_OPCODE;
    out->immediate = (bhs[0] & ISCSI_BHS_IMMEDIATE) != 0;
    out->final = (bhs[1] & ISCSI_FLAG_FINAL) != 0;
    out->ahs_len = (uint32_t)bhs[ISCSI_OFF_AHS_LEN] * 4u;
    out->data_len = iscsi_get24(bhs + ISCSI_OFF_DSL);
    out->itt = iscsi_get32(bhs + ISCSI_OFF_ITT);
    /* 11.2.1.1 and 13.12: a data segment over the receiver's limit is a protocol error. */
    if (out->data_len > max_data)
        return -EMSGSIZE;
    switch (out->opcode) {
    case ISCSI_OP_NOP_OUT:
    case ISCSI_OP_SCSI_CMD:
    case ISCSI_OP_TMF_REQ:
    case ISCSI_OP_LOGIN_REQ:
    case ISCSI_OP_TEXT_REQ:
    case ISCSI_OP_DATA_OUT:
    case ISCSI_OP_LOGOUT_REQ:
    case ISCSI_OP_SNACK_REQ:
        return 0;
    default:
        return -EOPNOTSUPP;
    }
}

void iscsi_pdu_scsi_cmd(const struct iscsi_pdu *p, struct iscsi_scsi_cmd *c)
{
    const uint8_t *b = p->bhs;

    c->final = (b[1] & ISCSI_FLAG_FINAL) != 0;
    c->read = (b[1] & ISCSI_CMD_READ) != 0;
    c->write = (b[1] & ISCSI_CMD_WRITE) != 0;
    c->attr = b[1] & ISCSI_CMD_ATTR;
    c->lun = b + ISCSI_OFF_LUN;
    c->itt = iscsi_get32(b + ISCSI_OFF_ITT);
    c->edtl = iscsi_get32(b + ISCSI_OFF_TTT);
    c->cmdsn = iscsi_get32(b + ISCSI_OFF_CMDSN);
    c->expstatsn = iscsi_get32(b + ISCSI_OFF_EXPSTATSN);
    c->cdb = b + ISCSI_OFF_CDB;
}

uint32_t iscsi_lun_decode(const uint8_t lun[8])
{
    /* SAM-5 4.7: only the first level is used; the others must be zero. */
    for (int i = 2; i < 8; i++)
        if (lun[i])
            return UINT32_MAX;
    switch (lun[0] >> 6) {
    case 0: /* peripheral device addressing: bus 0 only */
        return (lun[0] & 0x3f) ? UINT32_MAX : lun[1];
    case 1: /* flat space addressing */
        return (uint32_t)(lun[0] & 0x3f) << 8 | lun[1];
    default:
        return UINT32_MAX;
    }
}

void iscsi_lun_encode(uint8_t lun[8], uint32_t lun_id)
{
    memset(lun, 0, 8);
    if (lun_id < 256) {
        lun[1] = (uint8_t)lun_id;
    } else {
        lun[0] = (uint8_t)(0x40 | ((lun_id >> 8) & 0x3f));
        lun[1] = (uint8_t)lun_id;
    }
}

void iscsi_bhs_init(uint8_t bhs[ISCSI_BHS_LEN], uint8_t opcode, uint8_t flags, uint32_t data_len,
                    uint32_t itt)
{
    memset(bhs, 0, ISCSI_BHS_LEN);
    bhs[0] = opcode;
    bhs[1] = flags;
    iscsi_put24(bhs + ISCSI_OFF_DSL, data_len);
    iscsi_put32(bhs + ISCSI_OFF_ITT, itt);
}

void iscsi_bhs_set_sn(uint8_t bhs[ISCSI_BHS_LEN], uint32_t statsn, uint32_t expcmdsn,
                      uint32_t maxcmdsn)
{
    iscsi_put32(bhs + ISCSI_OFF_CMDSN, statsn);
    iscsi_put32(bhs + ISCSI_OFF_EXPSTATSN, expcmdsn);
    iscsi_put32(bhs + ISCSI_OFF_MAXCMDSN, maxcmdsn);
}

/*
 * Residuals (11.4.5): overflow when the command wanted more than the Expected Data Transfer
 * Length, else underflow when fewer bytes moved than expected.
 */
static void iscsi_residual(uint8_t *flags, uint8_t *field, uint32_t edtl, uint32_t wanted,
                           uint32_t moved)
{
    if (wanted > edtl) {
        *flags |= ISCSI_RSP_OVERFLOW;
        iscsi_put32(field, wanted - edtl);
    } else if (moved < edtl) {
        *flags |= ISCSI_RSP_UNDERFLOW;
        iscsi_put32(field, edtl - moved);
    }
}

void iscsi_build_scsi_rsp(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, uint8_t response,
                          uint8_t status, uint32_t sense_len, uint32_t edtl, uint32_t wanted,
                          uint32_t moved)
{
    /* Sense data is preceded by its 2-byte SenseLength (11.4.7). */
    iscsi_bhs_init(bhs, ISCSI_OP_SCSI_RSP, ISCSI_FLAG_FINAL, sense_len ? sense_len + 2 : 0, itt);
    bhs[2] = response;
    bhs[3] = status;
    if (response == ISCSI_RESPONSE_COMPLETED)
        iscsi_residual(&bhs[1], bhs + ISCSI_OFF_RESIDUAL, edtl, wanted, moved);
}

void iscsi_build_data_in(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, const uint8_t lun[8],
                         uint32_t datasn, uint32_t offset, uint32_t len, bool final)
{
    iscsi_bhs_init(bhs, ISCSI_OP_DATA_IN, final ? ISCSI_FLAG_FINAL : 0, len, itt);
    memcpy(bhs + ISCSI_OFF_LUN, lun, 8);
    iscsi_put32(bhs + ISCSI_OFF_TTT, ISCSI_RESERVED_TAG);
    iscsi_put32(bhs + ISCSI_OFF_DATASN, datasn);
    iscsi_put32(bhs + ISCSI_OFF_BUFOFF, offset);
}

void iscsi_data_in_set_status(uint8_t bhs[ISCSI_BHS_LEN], uint8_t status, uint32_t edtl,
                              uint32_t wanted, uint32_t moved)
{
    /* Phase collapse (11.7.3): the last Data-In carries the status, F and S both set. */
    bhs[1] |= ISCSI_FLAG_FINAL | ISCSI_DATA_IN_STATUS;
    bhs[3] = status;
    iscsi_residual(&bhs[1], bhs + ISCSI_OFF_RESIDUAL, edtl, wanted, moved);
}

void iscsi_build_r2t(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, const uint8_t lun[8], uint32_t ttt,
                     uint32_t r2tsn, uint32_t offset, uint32_t len)
{
    iscsi_bhs_init(bhs, ISCSI_OP_R2T, ISCSI_FLAG_FINAL, 0, itt);
    memcpy(bhs + ISCSI_OFF_LUN, lun, 8);
    iscsi_put32(bhs + ISCSI_OFF_TTT, ttt);
    iscsi_put32(bhs + ISCSI_OFF_DATASN, r2tsn);
    iscsi_put32(bhs + ISCSI_OFF_BUFOFF, offset);
    iscsi_put32(bhs + ISCSI_OFF_RESIDUAL, len);
}

void iscsi_build_reject(uint8_t bhs[ISCSI_BHS_LEN], uint8_t reason)
{
    /* The data segment is the rejected PDU's header (11.17). */
    iscsi_bhs_init(bhs, ISCSI_OP_REJECT, ISCSI_FLAG_FINAL, ISCSI_BHS_LEN, ISCSI_RESERVED_TAG);
    bhs[2] = reason;
}
