/*
 * SPC-4 commands every logical unit of the device server answers the same way whatever its type:
 * TEST UNIT READY (SPC-4 6.47), REQUEST SENSE (6.39), INQUIRY with its VPD pages (6.6, 7.8),
 * REPORT SUPPORTED OPERATION CODES (6.35) from the command table itself, and REPORT LUNS (6.33) for
 * an LU addressed on its own. The VPD pages listed in page 00h are exactly
 * the entries of vpd_pages[], so the list can never claim a page that is not built. Responses are
 * built in a stack buffer and cut to the allocation length and to the initiator's buffer
 * (SPC-4 4.2.5.6); an allocation length of zero is not an error.
 */
#include <string.h>

#include "devices/scsi_lu_p.h"

/* T10 version descriptors (SPC-4 table 148): SAM-5, SPC-4, SBC-3, no version claimed. */
static const uint16_t version_descriptors[] = {0x00A0, 0x0460, 0x04C0};

/* Our NAA IEEE COMPANY_ID: a locally administered value (the X bit of a CID set) chosen for this
 * project; it is not registered with the IEEE RA. */
#define SCSI_NAA_COMPANY_ID 0x0A5353u

/* One target port in one target port group, always active/optimized (SPC-4 5.16). */
#define SPC_RELATIVE_TARGET_PORT 1
#define SPC_TARGET_PORT_GROUP    1

static void pad_ascii(uint8_t *dst, const char *src, size_t width)
{
    size_t n = strlen(src);
    memset(dst, ' ', width);
    memcpy(dst, src, n < width ? n : width);
}

static int spc_test_unit_ready(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    /* NOT READY while stopped is the dispatcher's (SCSI_F_MEDIA). */
    scsi_good(cmd);
    return SCSI_DONE;
}

/* ---- INQUIRY ---------------------------------------------------------------------------- */

static uint8_t peripheral_byte(const struct scsi_lu *lu)
{
    return (uint8_t)(DEVICE_QUALIFIER_ACTIVE << 5 | lu->device_type);
}

static uint32_t vpd_serial(const struct scsi_lu *lu, uint8_t *b)
{
    size_t n = strlen(lu->serial);
    memcpy(b + 4, lu->serial, n);
    return (uint32_t)(4 + n);
}

void spc_naa(const struct scsi_lu *lu, uint8_t naa[16])
{
    uint64_t vsid = lu->device_id >> 28; /* 36 bits of VENDOR SPECIFIC IDENTIFIER */
    naa[0] = (uint8_t)(NAA_IEEE_REGISTERED_EXTENDED << 4 | (SCSI_NAA_COMPANY_ID >> 20));
    naa[1] = (uint8_t)(SCSI_NAA_COMPANY_ID >> 12);
    naa[2] = (uint8_t)(SCSI_NAA_COMPANY_ID >> 4);
    naa[3] = (uint8_t)((SCSI_NAA_COMPANY_ID & 0x0F) << 4 | ((vsid >> 32) & 0x0F));
    scsi_put_be32(naa + 4, (uint32_t)vsid);
    scsi_put_be64(naa + 8, lu->device_id); /* VENDOR SPECIFIC IDENTIFIER EXTENSION */
}

/* SPC-4 7.8.6: an NAA IEEE Registered Extended designator (7.8.6.6.5) from the device id, and a
 * T10 vendor ID based designator (7.8.6.4) of vendor, product and serial. */
static uint32_t vpd_device_id(const struct scsi_lu *lu, uint8_t *b)
{
    uint32_t len = 4;
    uint8_t *d = b + len;
    d[0] = VpdCodeSetBinary;
    d[1] = (uint8_t)(VpdAssocDevice << 4 | VpdIdentifierTypeFCPHName);
    d[3] = 16;
    spc_naa(lu, d + 4);
    len += 4 + 16;

    d = b + len;
    size_t sn = strlen(lu->serial);
    d[0] = VpdCodeSetAscii;
    d[1] = (uint8_t)(VpdAssocDevice << 4 | VpdIdentifierTypeVendorId);
    d[3] = (uint8_t)(8 + 16 + sn);
    pad_ascii(d + 4, lu->vendor, 8);
    pad_ascii(d + 12, lu->product, 16);
    memcpy(d + 28, lu->serial, sn);
    len += 4 + 8 + 16 + (uint32_t)sn;

    /* The port the device server is reached through, as REPORT TARGET PORT GROUPS describes it:
     * relative target port 1 (7.8.6.7) in target port group 1 (7.8.6.8). */
    d = b + len;
    d[0] = VpdCodeSetBinary;
    d[1] = (uint8_t)(1 << 4 | 0x4); /* ASSOCIATION target port, RELATIVE TARGET PORT */
    d[3] = 4;
    scsi_put_be16(d + 6, SPC_RELATIVE_TARGET_PORT);
    len += 8;
    d = b + len;
    d[0] = VpdCodeSetBinary;
    d[1] = (uint8_t)(1 << 4 | 0x5); /* ASSOCIATION target port, TARGET PORT GROUP */
    d[3] = 4;
    scsi_put_be16(d + 6, SPC_TARGET_PORT_GROUP);
    len += 8;
    return len;
}

static uint32_t vpd_supported(const struct scsi_lu *lu, uint8_t *b);

/* Each builder fills bytes 4.. of the page (b is zeroed) and returns the page's total length. */
static const struct {
    uint8_t page;
    uint32_t (*build)(const struct scsi_lu *lu, uint8_t *b);
} vpd_pages[] = {
    {VPD_SUPPORTED_PAGES, vpd_supported},
    {VPD_SERIAL_NUMBER, vpd_serial},
    {VPD_DEVICE_IDENTIFIERS, vpd_device_id},
    {VPD_THIRD_PARTY_COPY, xcopy_vpd},
    {VPD_BLOCK_LIMITS, sbc_vpd_block_limits},
    {VPD_BLOCK_DEVICE_CHARACTERISTICS, sbc_vpd_block_characteristics},
    {VPD_LOGICAL_BLOCK_PROVISIONING, sbc_vpd_provisioning},
};

static uint32_t vpd_supported(const struct scsi_lu *lu, uint8_t *b)
{
    uint32_t n = 0;
    for (size_t i = 0; i < RTL_NUMBER_OF(vpd_pages); i++)
        b[4 + n++] = vpd_pages[i].page;
    return 4 + n;
}

int spc_inquiry(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint16_t alloc = scsi_get_be16(cdb + 3);
    uint8_t buf[512];
    memset(buf, 0, sizeof(buf));

    if (!(cdb[1] & CDB_INQUIRY_EVPD)) {
        /* SPC-4 6.6.1: a PAGE CODE other than zero with EVPD zero is an error. */
        if (cdb[2] != 0) {
            scsi_check_cdb_field(cmd, lu, 2, -1);
            return SCSI_DONE;
        }
        INQUIRYDATA *id = (INQUIRYDATA *)buf;
        id->DeviceType = lu->device_type;
        id->DeviceTypeQualifier = DEVICE_QUALIFIER_ACTIVE;
        id->RemovableMedia = lu->removable;
        id->Versions = SCSI_VERSION_SPC4;
        id->ResponseDataFormat = 2;
        id->CommandQueue = 1;
        /* TPGS 01b: implicit asymmetric access (REPORT TARGET PORT GROUPS, no SET); 3PC: the
         * copy manager of EXTENDED COPY (LID1). */
        buf[5] |= 0x10 | 0x08;
        pad_ascii(id->VendorId, lu->vendor, 8);
        pad_ascii(id->ProductId, lu->product, 16);
        pad_ascii(id->ProductRevisionLevel, lu->revision, 4);
        /* Bytes 58..73: version descriptors; the standard data is 74 bytes long. */
        for (size_t i = 0; i < RTL_NUMBER_OF(version_descriptors); i++)
            scsi_put_be16(buf + 58 + 2 * i, version_descriptors[i]);
        if (lu->command_set_version) /* another command set than SBC (the MMC device) */
            scsi_put_be16(buf + 62, lu->command_set_version);
        uint32_t len = 74;
        id->AdditionalLength = (uint8_t)(len - 5);
        scsi_respond(cmd, buf, len, alloc);
        return SCSI_DONE;
    }

    for (size_t i = 0; i < RTL_NUMBER_OF(vpd_pages); i++) {
        if (vpd_pages[i].page != cdb[2])
            continue;
        uint32_t len = vpd_pages[i].build(lu, buf);
        buf[0] = peripheral_byte(lu);
        buf[1] = cdb[2];
        scsi_put_be16(buf + 2, (uint16_t)(len - 4));
        scsi_respond(cmd, buf, len, alloc);
        return SCSI_DONE;
    }
    scsi_check_cdb_field(cmd, lu, 2, -1);
    return SCSI_DONE;
}

/* ---- REQUEST SENSE ------------------------------------------------------------------------ */

/* SPC-4 6.39: the sense data of a pending unit attention (which this clears), else of the
 * condition that would fail a media access (stopped unit), else NO SENSE. DESC selects the
 * format; it is independent of D_SENSE. The command itself completes with GOOD. */
int spc_request_sense(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    bool desc = cmd->cdb[1] & 0x01;
    struct scsi_sense_info si = {.key = SCSI_SENSE_NO_SENSE};
    uint8_t asc, ascq;
    if (scsi_lu_ua_take_cmd(lu, cmd, &asc, &ascq)) {
        si.key = SCSI_SENSE_UNIT_ATTENTION;
        si.asc = asc;
        si.ascq = ascq;
    } else if (lu->type_not_ready && lu->type_not_ready(lu, &asc, &ascq)) {
        si.key = SCSI_SENSE_NOT_READY; /* no medium, or one becoming ready (MMC) */
        si.asc = asc;
        si.ascq = ascq;
    } else if (atomic_load_explicit(&lu->stopped, memory_order_acquire)) {
        si.key = SCSI_SENSE_NOT_READY;
        si.asc = SCSI_ADSENSE_LUN_NOT_READY;
        si.ascq = SCSI_SENSEQ_INIT_COMMAND_REQUIRED;
    }
    uint8_t buf[SCSI_SENSE_MAX];
    uint8_t len = scsi_sense_build(buf, desc, &si);
    scsi_respond(cmd, buf, len, cmd->cdb[4]);
    return SCSI_DONE;
}

/* ---- REPORT LUNS -------------------------------------------------------------------------- */

bool spc_report_luns_check(struct scsi_cmd *cmd, const struct scsi_lu *lu)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t sel = cdb[2];
    if (sel != SCSI_REPORT_LUNS_SELECT_ALL_LOGICAL_UNITS &&
        sel != SCSI_REPORT_LUNS_SELECT_WELL_KNOWN_ONLY &&
        sel != SCSI_REPORT_LUNS_SELECT_ALL_ACCESSIBLE) {
        scsi_check_cdb_field(cmd, lu, 2, -1);
        return false;
    }
    /* SPC-4 6.33: an ALLOCATION LENGTH below 16 is an error. */
    if (scsi_get_be32(cdb + 6) < 16) {
        scsi_check_cdb_field(cmd, lu, 6, -1);
        return false;
    }
    return true;
}

/* Single level LUN structure (SAM-5 4.7.3): peripheral device addressing below 256, flat space
 * addressing up to 16383. Well-known LUNs: none, so SELECT REPORT 01h returns an empty list. */
void spc_report_luns_emit(struct scsi_cmd *cmd, const struct scsi_lu *lu, const uint64_t *luns,
                          uint32_t nluns)
{
    uint32_t alloc = scsi_get_be32(cmd->cdb + 6);
    if (cmd->cdb[2] == SCSI_REPORT_LUNS_SELECT_WELL_KNOWN_ONLY)
        nluns = 0;
    uint8_t hdr[8] = {0};
    uint64_t list_len = (uint64_t)nluns * 8;
    scsi_put_be32(hdr, (uint32_t)list_len);
    uint64_t total = 8 + list_len;
    uint32_t limit = total < alloc ? (uint32_t)total : alloc;

    uint32_t moved = scsi_data_in(cmd, 0, hdr, limit < 8 ? limit : 8);
    for (uint32_t i = 0; i < nluns && 8 + i * 8 < limit; i++) {
        uint8_t e[8] = {0};
        if (luns[i] < 256) {
            e[1] = (uint8_t)luns[i];
        } else {
            e[0] = (uint8_t)(0x40 | ((luns[i] >> 8) & 0x3F));
            e[1] = (uint8_t)luns[i];
        }
        uint32_t off = 8 + i * 8;
        uint32_t n = limit - off < 8 ? limit - off : 8;
        moved += scsi_data_in(cmd, off, e, n);
    }
    cmd->transferred = moved;
    scsi_good(cmd);
}

/* An LU executed on its own (no target) reports itself as LUN 0. */
int spc_report_luns_self(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    if (!spc_report_luns_check(cmd, lu))
        return SCSI_DONE;
    static const uint64_t self = 0;
    spc_report_luns_emit(cmd, lu, &self, 1);
    return SCSI_DONE;
}

/* ---- REPORT SUPPORTED OPERATION CODES ---------------------------------------------------- */

/* Writes one command descriptor (SPC-4 6.35.3, table 258) for d; returns its length. */
static uint32_t rsoc_descriptor(const struct scsi_cmd_desc *d, bool rctd, uint8_t *p)
{
    memset(p, 0, 20);
    p[0] = d->opcode;
    if (d->flags & SCSI_F_SA) {
        scsi_put_be16(p + 2, d->sa);
        p[5] |= 0x01; /* SERVACTV */
    }
    scsi_put_be16(p + 6, d->cdb_len);
    if (!rctd)
        return 8;
    p[5] |= 0x02;             /* CTDP */
    scsi_put_be16(p + 8, 10); /* command timeouts descriptor, both timeouts unspecified */
    return 20;
}

/* The CDB usage data of SPC-4 6.35.4: the table's mask, with the service action filled in. */
static uint32_t rsoc_usage(const struct scsi_cmd_desc *d, uint8_t *p)
{
    memcpy(p, d->usage, d->cdb_len);
    p[0] = d->opcode;
    if (d->flags & SCSI_F_SA)
        p[1] = (uint8_t)((p[1] & ~0x1F) | d->sa);
    return d->cdb_len;
}

/*
 * MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), straight from the command
 * table, so what is reported is exactly what is executed. REPORTING OPTIONS 000b lists every
 * command; 001b, 010b and 011b describe one with its CDB usage data.
 */
static int spc_report_supported_opcodes(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    bool rctd = cdb[2] & 0x80;
    uint8_t options = cdb[2] & 0x07;
    uint8_t op = cdb[3];
    uint16_t sa = scsi_get_be16(cdb + 4);
    uint32_t alloc = scsi_get_be32(cdb + 6);
    uint8_t buf[4096];
    uint32_t len = 0;

    if (options == 0) {
        len = 4;
        for (unsigned o = 0; o < 256; o++) {
            const struct scsi_cmd_desc *d = lu->op[o];
            for (; d && d->handler && d->opcode == o; d++) {
                if (len + 20 > sizeof(buf))
                    break;
                len += rsoc_descriptor(d, rctd, buf + len);
                if (!(d->flags & SCSI_F_SA))
                    break;
            }
        }
        scsi_put_be32(buf, len - 4);
        scsi_respond(cmd, buf, len, alloc);
        return SCSI_DONE;
    }
    if (options > 3) {
        scsi_check_cdb_field(cmd, lu, 2, 2);
        return SCSI_DONE;
    }
    const struct scsi_cmd_desc *d = lu->op[op];
    bool has_sa = d && (d->flags & SCSI_F_SA);
    /* 001b asks for a command without service actions, 010b for one with them. */
    if ((options == 1 && has_sa) || (options == 2 && d && !has_sa)) {
        scsi_check_cdb_field(cmd, lu, 2, 2);
        return SCSI_DONE;
    }
    if (has_sa && options != 1) {
        const struct scsi_cmd_desc *e = d;
        d = NULL;
        for (; e->handler && e->opcode == op; e++) {
            if (e->sa == sa) {
                d = e;
                break;
            }
        }
    }
    memset(buf, 0, 4);
    len = 4;
    if (d) {
        buf[1] = 0x03; /* SUPPORT: supported as in the standard */
        scsi_put_be16(buf + 2, d->cdb_len);
        len += rsoc_usage(d, buf + 4);
        if (rctd) {
            buf[1] |= 0x80; /* CTDP */
            memset(buf + len, 0, 12);
            scsi_put_be16(buf + len, 10);
            len += 12;
        }
    } else {
        buf[1] = 0x01; /* not supported */
    }
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

/* ---- REPORT TARGET PORT GROUPS, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS ------------------ */

/* MAINTENANCE IN / REPORT TARGET PORT GROUPS (SPC-4 6.36): one group with our one port, in the
 * active/optimized state and supporting no other (AO_SUP only). PARAMETER DATA FORMAT 000b
 * (length only) or 001b (extended header, implicit transition time 0). */
static int spc_report_target_port_groups(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint8_t format = cdb[1] >> 5;
    uint32_t alloc = scsi_get_be32(cdb + 6);
    if (format > 1) {
        scsi_check_cdb_field(cmd, lu, 1, 7);
        return SCSI_DONE;
    }
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    uint32_t hdr = format == 1 ? 8 : 4;
    uint8_t *g = buf + hdr;
    g[0] = 0x80 | 0x0; /* PREF, ASYMMETRIC ACCESS STATE active/optimized */
    g[1] = 0x01;       /* AO_SUP */
    scsi_put_be16(g + 2, SPC_TARGET_PORT_GROUP);
    g[5] = 0x00; /* STATUS CODE: no status available */
    g[7] = 1;    /* TARGET PORT COUNT */
    scsi_put_be16(g + 8 + 2, SPC_RELATIVE_TARGET_PORT);
    uint32_t len = hdr + 12;
    scsi_put_be32(buf, len - 4);
    if (format == 1)
        buf[4] = 0x10; /* FORMAT TYPE 001b */
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

/* MAINTENANCE IN / REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.40): ABORT TASK, ABORT TASK
 * SET, CLEAR TASK SET, LOGICAL UNIT RESET and TARGET RESET, the functions the iSCSI target maps;
 * REPD=1 returns the extended 16-byte form (no timeouts given). */
static int spc_report_supported_tmfs(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    bool repd = cdb[2] & 0x80;
    uint32_t alloc = scsi_get_be32(cdb + 6);
    /* SPC-4 6.40: an ALLOCATION LENGTH below 4 is an error. */
    if (alloc < 4) {
        scsi_check_cdb_field(cmd, lu, 6, -1);
        return SCSI_DONE;
    }
    uint8_t buf[16];
    memset(buf, 0, sizeof(buf));
    buf[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02; /* ATS ATSS CTSS LURS TRS */
    uint32_t len = 4;
    if (repd) {
        buf[3] = 0x0C; /* ADDITIONAL DATA LENGTH */
        len = 16;
    }
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

/* ---- table -------------------------------------------------------------------------------- */

/* Usage masks: byte 0 is the opcode; the CONTROL byte allows only its vendor-specific bits 7..6
 * (NACA is not supported: NormACA is zero in INQUIRY, so NACA=1 is an invalid field). */
#define CTL 0xC0

const struct scsi_cmd_desc spc_commands[] = {
    {SCSIOP_TEST_UNIT_READY,
     0,
     6,
     SCSI_DIR_NONE,
     SCSI_F_MEDIA,
     {0xFF, 0, 0, 0, 0, CTL},
     spc_test_unit_ready,
     "TEST UNIT READY"},
    {SCSIOP_REQUEST_SENSE,
     0,
     6,
     SCSI_DIR_IN,
     SCSI_F_UA_OK | SCSI_F_DATA_IN,
     {0xFF, 0x01, 0, 0, 0xFF, CTL},
     spc_request_sense,
     "REQUEST SENSE"},
    {SCSIOP_INQUIRY,
     0,
     6,
     SCSI_DIR_IN,
     SCSI_F_UA_OK | SCSI_F_DATA_IN,
     {0xFF, 0x01, 0xFF, 0xFF, 0xFF, CTL},
     spc_inquiry,
     "INQUIRY",
     .field_msb = {[1] = 0x02}}, /* reserved 7..2, obsolete CMDDT */
    {SCSIOP_MODE_SELECT,
     0,
     6,
     SCSI_DIR_OUT,
     0,
     {0xFF, 0x11, 0, 0, 0xFF, CTL},
     spc_mode_select6,
     "MODE SELECT(6)"},
    {SCSIOP_MODE_SENSE,
     0,
     6,
     SCSI_DIR_IN,
     SCSI_F_DATA_IN,
     {0xFF, 0x08, 0xFF, 0xFF, 0xFF, CTL},
     spc_mode_sense6,
     "MODE SENSE(6)"},
    {SCSIOP_MODE_SELECT10,
     0,
     10,
     SCSI_DIR_OUT,
     0,
     {0xFF, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, CTL},
     spc_mode_select10,
     "MODE SELECT(10)"},
    {SCSIOP_MODE_SENSE10,
     0,
     10,
     SCSI_DIR_IN,
     SCSI_F_DATA_IN,
     {0xFF, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, CTL},
     spc_mode_sense10,
     "MODE SENSE(10)"},
    {SCSIOP_MAINTENANCE_IN,
     SERVICE_ACTION_REPORT_SUPPORTED_OPERATION_CODES,
     12,
     SCSI_DIR_IN,
     SCSI_F_SA | SCSI_F_DATA_IN,
     {0xFF, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_report_supported_opcodes,
     "REPORT SUPPORTED OPERATION CODES"},
    {SCSIOP_MAINTENANCE_IN,
     SERVICE_ACTION_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS,
     12,
     SCSI_DIR_IN,
     SCSI_F_SA | SCSI_F_DATA_IN,
     {0xFF, 0x1F, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_report_supported_tmfs,
     "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS"},
    {SCSIOP_MAINTENANCE_IN,
     SERVICE_ACTION_REPORT_TARGET_PORT_GROUPS,
     12,
     SCSI_DIR_IN,
     SCSI_F_SA | SCSI_F_DATA_IN,
     {0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_report_target_port_groups,
     "REPORT TARGET PORT GROUPS"},
    {SCSIOP_RESERVE_UNIT,
     0,
     6,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0, 0, 0, 0, CTL},
     spc_reserve,
     "RESERVE(6)",
     .field_msb = {[1] = 0x19}}, /* obsolete 7..5, 3RDPTY, THIRD-PARTY DEVICE ID 3..1, EXTENT */
    {SCSIOP_RELEASE_UNIT,
     0,
     6,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0, 0, 0, 0, CTL},
     spc_release,
     "RELEASE(6)",
     .field_msb = {[1] = 0x19}}, /* obsolete 7..5, 3RDPTY, THIRD-PARTY DEVICE ID 3..1, EXTENT */
    {SCSIOP_RESERVE_UNIT10,
     0,
     10,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0, 0, 0, 0, 0, 0, 0, 0, CTL},
     spc_reserve,
     "RESERVE(10)",
     .field_msb = {[1] = 0x1B}}, /* reserved 7..5, 3RDPTY, reserved 3..2, LONGID, obsolete 0 */
    {SCSIOP_RELEASE_UNIT10,
     0,
     10,
     SCSI_DIR_NONE,
     0,
     {0xFF, 0, 0, 0, 0, 0, 0, 0, 0, CTL},
     spc_release,
     "RELEASE(10)",
     .field_msb = {[1] = 0x1B}}, /* reserved 7..5, 3RDPTY, reserved 3..2, LONGID, obsolete 0 */
    {SCSIOP_EXTENDED_COPY,
     0x00,
     16,
     SCSI_DIR_OUT,
     SCSI_F_SA | SCSI_F_MEDIA,
     {0xFF, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_extended_copy,
     "EXTENDED COPY(LID1)"},
#define RCR(sa, name)                                                                              \
    {                                                                                              \
        SCSIOP_RECEIVE_COPY_RESULTS, sa, 16, SCSI_DIR_IN, SCSI_F_SA | SCSI_F_DATA_IN,              \
            {0xFF, 0x1F, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},               \
            spc_receive_copy_results, name                                                         \
    }
    RCR(0x00, "RECEIVE COPY RESULTS / COPY STATUS"),
    RCR(0x03, "RECEIVE COPY RESULTS / OPERATING PARAMETERS"),
    RCR(0x04, "RECEIVE COPY RESULTS / FAILED SEGMENT DETAILS"),
#define PRIN(sa, name)                                                                             \
    {                                                                                              \
        SCSIOP_PERSISTENT_RESERVE_IN, sa, 10, SCSI_DIR_IN, SCSI_F_SA | SCSI_F_DATA_IN,             \
            {0xFF, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, CTL}, spc_pr_in, name                          \
    }
    PRIN(0x00, "PERSISTENT RESERVE IN / READ KEYS"),
    PRIN(0x01, "PERSISTENT RESERVE IN / READ RESERVATION"),
    PRIN(0x02, "PERSISTENT RESERVE IN / REPORT CAPABILITIES"),
    PRIN(0x03, "PERSISTENT RESERVE IN / READ FULL STATUS"),
#define PROUT(sa, name)                                                                            \
    {                                                                                              \
        SCSIOP_PERSISTENT_RESERVE_OUT, sa, 10, SCSI_DIR_OUT, SCSI_F_SA,                            \
            {0xFF, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, CTL}, spc_pr_out, name                \
    }
    PROUT(0x00, "PERSISTENT RESERVE OUT / REGISTER"),
    PROUT(0x01, "PERSISTENT RESERVE OUT / RESERVE"),
    PROUT(0x02, "PERSISTENT RESERVE OUT / RELEASE"),
    PROUT(0x03, "PERSISTENT RESERVE OUT / CLEAR"),
    PROUT(0x04, "PERSISTENT RESERVE OUT / PREEMPT"),
    PROUT(0x05, "PERSISTENT RESERVE OUT / PREEMPT AND ABORT"),
    PROUT(0x06, "PERSISTENT RESERVE OUT / REGISTER AND IGNORE EXISTING KEY"),
    PROUT(0x07, "PERSISTENT RESERVE OUT / REGISTER AND MOVE"),
    {SCSIOP_REPORT_LUNS,
     0,
     12,
     SCSI_DIR_IN,
     SCSI_F_UA_OK | SCSI_F_DATA_IN,
     {0xFF, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, CTL},
     spc_report_luns_self,
     "REPORT LUNS"},
    {0},
};
