/*
 * iSCSI PDU layer (RFC 7143 11): the 48-byte Basic Header Segment of every PDU, its opcodes and
 * field offsets, a parser that checks a received header once (opcode known, AHS and data segment
 * lengths within the negotiated limits) before any byte after it is read, and builders for the
 * target's PDUs. Nothing here allocates or touches a socket; multi-byte fields are big-endian.
 * Contract: iscsi_pdu_parse() is the only place where lengths from the wire are trusted; after it
 * returns 0, ahs_len + data_len (+ padding) is exactly what follows the header on the wire.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_PDU_H
#define STORSTACK_FRONTENDS_ISCSI_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_BHS_LEN       48
#define ISCSI_RESERVED_TAG  0xffffffffu
#define ISCSI_MAX_DSL       0xffffffu /* 24-bit DataSegmentLength */
#define ISCSI_LOGIN_MAX_DSL 8192u     /* MaxRecvDataSegmentLength during login (RFC 7143 13.12) */

/* Opcodes (RFC 7143 11.1.1). */
enum iscsi_opcode {
    ISCSI_OP_NOP_OUT = 0x00,
    ISCSI_OP_SCSI_CMD = 0x01,
    ISCSI_OP_TMF_REQ = 0x02,
    ISCSI_OP_LOGIN_REQ = 0x03,
    ISCSI_OP_TEXT_REQ = 0x04,
    ISCSI_OP_DATA_OUT = 0x05,
    ISCSI_OP_LOGOUT_REQ = 0x06,
    ISCSI_OP_SNACK_REQ = 0x10,
    ISCSI_OP_NOP_IN = 0x20,
    ISCSI_OP_SCSI_RSP = 0x21,
    ISCSI_OP_TMF_RSP = 0x22,
    ISCSI_OP_LOGIN_RSP = 0x23,
    ISCSI_OP_TEXT_RSP = 0x24,
    ISCSI_OP_DATA_IN = 0x25,
    ISCSI_OP_LOGOUT_RSP = 0x26,
    ISCSI_OP_R2T = 0x31,
    ISCSI_OP_ASYNC_MSG = 0x32,
    ISCSI_OP_REJECT = 0x3f,
};

#define ISCSI_BHS_IMMEDIATE 0x40 /* byte 0 */
#define ISCSI_BHS_OPCODE    0x3f
#define ISCSI_FLAG_FINAL    0x80 /* byte 1 */

/* SCSI Command byte 1 (11.3.1). */
#define ISCSI_CMD_READ  0x40
#define ISCSI_CMD_WRITE 0x20
#define ISCSI_CMD_ATTR  0x07

/* SCSI Response / Data-In byte 1 (11.4.1, 11.7.1). */
#define ISCSI_RSP_BIDI_OVERFLOW  0x10
#define ISCSI_RSP_BIDI_UNDERFLOW 0x08
#define ISCSI_RSP_OVERFLOW       0x04
#define ISCSI_RSP_UNDERFLOW      0x02
#define ISCSI_DATA_IN_STATUS     0x01 /* S bit: status is in this Data-In */

/* SCSI Response "Response" field (11.4.3). */
#define ISCSI_RESPONSE_COMPLETED      0x00
#define ISCSI_RESPONSE_TARGET_FAILURE 0x01

/* Login byte 1 (11.12.1). */
#define ISCSI_LOGIN_TRANSIT  0x80
#define ISCSI_LOGIN_CONTINUE 0x40
#define ISCSI_LOGIN_CSG(b)   (((b) >> 2) & 3)
#define ISCSI_LOGIN_NSG(b)   ((b)&3)
enum iscsi_stage {
    ISCSI_STAGE_SECURITY = 0,
    ISCSI_STAGE_OPERATIONAL = 1,
    ISCSI_STAGE_FULL_FEATURE = 3,
};

/* Login response Status-Class / Status-Detail, as one 16-bit value (11.13.5). */
enum iscsi_login_status {
    ISCSI_LOGIN_OK = 0x0000,
    ISCSI_LOGIN_INITIATOR_ERROR = 0x0200,
    ISCSI_LOGIN_AUTH_FAILED = 0x0201,
    ISCSI_LOGIN_NOT_FOUND = 0x0203,
    ISCSI_LOGIN_UNSUPPORTED_VERSION = 0x0205,
    ISCSI_LOGIN_MISSING_PARAMETER = 0x0207,
    ISCSI_LOGIN_SESSION_TYPE = 0x0209,
    ISCSI_LOGIN_NO_SESSION = 0x020a,
    ISCSI_LOGIN_INVALID_DURING_LOGIN = 0x020b,
    ISCSI_LOGIN_TARGET_ERROR = 0x0300,
    ISCSI_LOGIN_OUT_OF_RESOURCES = 0x0302,
};

/* Reject reasons (11.17.1). */
enum iscsi_reject_reason {
    ISCSI_REJECT_PROTOCOL_ERROR = 0x04,
    ISCSI_REJECT_CMD_NOT_SUPPORTED = 0x05,
    ISCSI_REJECT_INVALID_PDU_FIELD = 0x09,
    ISCSI_REJECT_OUT_OF_RESOURCES = 0x0a,
};

/* Task management functions (11.5.1) and responses (11.6.1). */
enum iscsi_tmf {
    ISCSI_TMF_ABORT_TASK = 1,
    ISCSI_TMF_ABORT_TASK_SET = 2,
    ISCSI_TMF_CLEAR_ACA = 3,
    ISCSI_TMF_CLEAR_TASK_SET = 4,
    ISCSI_TMF_LUN_RESET = 5,
    ISCSI_TMF_TARGET_WARM_RESET = 6,
    ISCSI_TMF_TARGET_COLD_RESET = 7,
    ISCSI_TMF_TASK_REASSIGN = 8,
};
enum iscsi_tmf_response {
    ISCSI_TMF_RSP_COMPLETE = 0,
    ISCSI_TMF_RSP_NO_TASK = 1,
    ISCSI_TMF_RSP_NO_LUN = 2,
    ISCSI_TMF_RSP_REASSIGN_UNSUPPORTED = 4,
    ISCSI_TMF_RSP_NOT_SUPPORTED = 5,
    ISCSI_TMF_RSP_REJECTED = 255,
};

/* Field offsets shared by several PDUs. */
#define ISCSI_OFF_AHS_LEN   4
#define ISCSI_OFF_DSL       5
#define ISCSI_OFF_LUN       8
#define ISCSI_OFF_ITT       16
#define ISCSI_OFF_TTT       20 /* also EDTL (SCSI Command), Referenced Task Tag (TMF) */
#define ISCSI_OFF_CMDSN     24 /* initiator PDUs; StatSN in target PDUs */
#define ISCSI_OFF_EXPSTATSN 28 /* initiator PDUs; ExpCmdSN in target PDUs */
#define ISCSI_OFF_MAXCMDSN  32
#define ISCSI_OFF_DATASN    36 /* DataSN, R2TSN, ExpDataSN */
#define ISCSI_OFF_BUFOFF    40 /* Buffer Offset */
#define ISCSI_OFF_RESIDUAL  44 /* Residual Count, Desired Data Transfer Length */
#define ISCSI_OFF_CDB       32

static inline uint32_t iscsi_get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}
static inline uint32_t iscsi_get24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t iscsi_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void iscsi_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void iscsi_put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}
static inline void iscsi_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
/* Padding after a data segment or AHS to a 4-byte boundary (RFC 7143 11.1). */
static inline uint32_t iscsi_pad4(uint32_t len)
{
    return (4u - (len & 3u)) & 3u;
}
/* Serial number arithmetic, 32 bits (RFC 1982, used by RFC 7143 4.2.2.1). */
static inline bool iscsi_sn_lt(uint32_t a, uint32_t b)
{
    return a != b && (int32_t)(a - b) < 0;
}

/* A received header, checked. bhs points into the caller's 48-byte buffer. */
struct iscsi_pdu {
    const uint8_t *bhs;
    uint8_t opcode;
    bool immediate;
    bool final;
    uint32_t ahs_len;  /* bytes (TotalAHSLength * 4) */
    uint32_t data_len; /* DataSegmentLength, without padding */
    uint32_t itt;
};

/*
 * Checks a header received from an initiator: returns 0; -EOPNOTSUPP for an opcode a target does
 * not accept (the lengths are still valid, so the caller can skip the PDU and Reject it);
 * -EMSGSIZE when the data segment is over max_data (the caller cannot trust the stream: Reject,
 * then close). RFC 7143 11.2.
 */
int iscsi_pdu_parse(const uint8_t bhs[ISCSI_BHS_LEN], uint32_t max_data, struct iscsi_pdu *out);

/* Total bytes after the header on the wire: AHS + data segment + padding. */
static inline uint64_t iscsi_pdu_tail_len(const struct iscsi_pdu *p)
{
    return (uint64_t)p->ahs_len + p->data_len + iscsi_pad4(p->data_len);
}

/* The SCSI Command fields (11.3). */
struct iscsi_scsi_cmd {
    bool read, write, final;
    uint8_t attr;
    const uint8_t *lun; /* 8 bytes */
    uint32_t itt, edtl, cmdsn, expstatsn;
    const uint8_t *cdb; /* 16 bytes */
};
void iscsi_pdu_scsi_cmd(const struct iscsi_pdu *p, struct iscsi_scsi_cmd *c);

/*
 * The LUN field in SAM-5 single-level form, as the number the target maps (peripheral and flat
 * addressing); UINT32_MAX when it uses a form or a level this target does not have.
 */
uint32_t iscsi_lun_decode(const uint8_t lun[8]);
void iscsi_lun_encode(uint8_t lun[8], uint32_t lun_id);

/*
 * Builders: each clears the header and fills the fields it names; the caller sets StatSN,
 * ExpCmdSN and MaxCmdSN with iscsi_bhs_set_sn() before sending.
 */
void iscsi_bhs_init(uint8_t bhs[ISCSI_BHS_LEN], uint8_t opcode, uint8_t flags, uint32_t data_len,
                    uint32_t itt);
void iscsi_bhs_set_sn(uint8_t bhs[ISCSI_BHS_LEN], uint32_t statsn, uint32_t expcmdsn,
                      uint32_t maxcmdsn);
void iscsi_build_scsi_rsp(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, uint8_t response,
                          uint8_t status, uint32_t sense_len, uint32_t edtl, uint32_t wanted,
                          uint32_t moved);
void iscsi_build_data_in(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, const uint8_t lun[8],
                         uint32_t datasn, uint32_t offset, uint32_t len, bool final);
void iscsi_data_in_set_status(uint8_t bhs[ISCSI_BHS_LEN], uint8_t status, uint32_t edtl,
                              uint32_t wanted, uint32_t moved);
void iscsi_build_r2t(uint8_t bhs[ISCSI_BHS_LEN], uint32_t itt, const uint8_t lun[8], uint32_t ttt,
                     uint32_t r2tsn, uint32_t offset, uint32_t len);
void iscsi_build_reject(uint8_t bhs[ISCSI_BHS_LEN], uint8_t reason);

#endif
