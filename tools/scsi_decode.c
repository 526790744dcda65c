/*
 * Decoders for what `storstack scsi` gets back from a device: standard INQUIRY data (SPC-5
 * 6.7.2), the VPD pages 00h/80h/83h (SPC-5 7.7) and B0h/B1h/B2h (SBC-4 6.6), READ CAPACITY (10)
 * and (16) data (SBC-4 5.20/5.21), and sense data in fixed and descriptor format (SPC-5 4.4),
 * with names for the sense keys and the common additional sense codes (SPC-5 Annex F / table
 * 51). Text output follows the layout storage engineers know from the usual Linux SCSI tools:
 * one field per line, names as the standards spell them. Every routine checks the length it is
 * given before reading a byte; short data prints what is there.
 */
#include <inttypes.h>
#include <string.h>

#include "tools/cli.h"

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

const char *cli_sense_key_name(uint8_t key)
{
    static const char *const names[16] = {
        "No Sense",         "Recovered Error", "Not Ready",      "Medium Error",
        "Hardware Error",   "Illegal Request", "Unit Attention", "Data Protect",
        "Blank Check",      "Vendor Specific", "Copy Aborted",   "Aborted Command",
        "Equal (obsolete)", "Volume Overflow", "Miscompare",     "Completed",
    };
    return names[key & 0x0F];
}

/* ASC/ASCQ pairs; ascq 0xFF in the table means "any ASCQ" for that ASC. */
static const struct {
    uint8_t asc, ascq;
    const char *name;
} asc_names[] = {
    {0x00, 0x00, "No additional sense information"},
    {0x00, 0x06, "I/O process terminated"},
    {0x00, 0x16, "Operation in progress"},
    {0x02, 0x00, "No seek complete"},
    {0x03, 0x00, "Peripheral device write fault"},
    {0x04, 0x00, "Logical unit not ready, cause not reportable"},
    {0x04, 0x01, "Logical unit is in process of becoming ready"},
    {0x04, 0x02, "Logical unit not ready, initializing command required"},
    {0x04, 0x03, "Logical unit not ready, manual intervention required"},
    {0x04, 0x04, "Logical unit not ready, format in progress"},
    {0x04, 0x07, "Logical unit not ready, operation in progress"},
    {0x04, 0x09, "Logical unit not ready, self-test in progress"},
    {0x04, 0x0A, "Logical unit not accessible, asymmetric access state transition"},
    {0x04, 0x0B, "Logical unit not accessible, target port in standby state"},
    {0x04, 0x0C, "Logical unit not accessible, target port in unavailable state"},
    {0x04, 0x1B, "Logical unit not ready, sanitize in progress"},
    {0x05, 0x00, "Logical unit does not respond to selection"},
    {0x08, 0x00, "Logical unit communication failure"},
    {0x08, 0x01, "Logical unit communication time-out"},
    {0x0C, 0x00, "Write error"},
    {0x0C, 0x02, "Write error - auto reallocation failed"},
    {0x10, 0x01, "Logical block guard check failed"},
    {0x10, 0x02, "Logical block application tag check failed"},
    {0x10, 0x03, "Logical block reference tag check failed"},
    {0x11, 0x00, "Unrecovered read error"},
    {0x14, 0x01, "Record not found"},
    {0x1A, 0x00, "Parameter list length error"},
    {0x1D, 0x00, "Miscompare during verify operation"},
    {0x20, 0x00, "Invalid command operation code"},
    {0x20, 0x02, "Access denied - no access rights"},
    {0x21, 0x00, "Logical block address out of range"},
    {0x21, 0x01, "Invalid element address"},
    {0x21, 0x02, "Invalid address for write"},
    {0x24, 0x00, "Invalid field in cdb"},
    {0x25, 0x00, "Logical unit not supported"},
    {0x26, 0x00, "Invalid field in parameter list"},
    {0x26, 0x01, "Parameter not supported"},
    {0x26, 0x02, "Parameter value invalid"},
    {0x27, 0x00, "Write protected"},
    {0x27, 0x01, "Hardware write protected"},
    {0x27, 0x02, "Logical unit software write protected"},
    {0x27, 0x07, "Space allocation failed write protect"},
    {0x28, 0x00, "Not ready to ready change, medium may have changed"},
    {0x29, 0x00, "Power on, reset, or bus device reset occurred"},
    {0x29, 0x01, "Power on occurred"},
    {0x29, 0x02, "SCSI bus reset occurred"},
    {0x29, 0x03, "Bus device reset function occurred"},
    {0x29, 0x07, "I_T nexus loss occurred"},
    {0x2A, 0x01, "Mode parameters changed"},
    {0x2A, 0x03, "Reservations preempted"},
    {0x2A, 0x04, "Reservations released"},
    {0x2A, 0x05, "Registrations preempted"},
    {0x2A, 0x06, "Asymmetric access state changed"},
    {0x2A, 0x09, "Capacity data has changed"},
    {0x2C, 0x00, "Command sequence error"},
    {0x2F, 0x00, "Commands cleared by another initiator"},
    {0x30, 0x00, "Incompatible medium installed"},
    {0x30, 0x03, "Cleaning cartridge installed"},
    {0x31, 0x00, "Medium format corrupted"},
    {0x35, 0x00, "Enclosure services failure"},
    {0x38, 0x07, "Thin provisioning soft threshold reached"},
    {0x39, 0x00, "Saving parameters not supported"},
    {0x3A, 0x00, "Medium not present"},
    {0x3A, 0x01, "Medium not present - tray closed"},
    {0x3A, 0x02, "Medium not present - tray open"},
    {0x3B, 0x0D, "Medium destination element full"},
    {0x3B, 0x0E, "Medium source element empty"},
    {0x3D, 0x00, "Invalid bits in identify message"},
    {0x3E, 0x00, "Logical unit has not self-configured yet"},
    {0x3F, 0x01, "Microcode has been changed"},
    {0x3F, 0x0E, "Reported luns data has changed"},
    {0x44, 0x00, "Internal target failure"},
    {0x47, 0x00, "SCSI parity error"},
    {0x49, 0x00, "Invalid message error"},
    {0x4B, 0x00, "Data phase error"},
    {0x4E, 0x00, "Overlapped commands attempted"},
    {0x53, 0x02, "Medium removal prevented"},
    {0x55, 0x03, "Insufficient resources"},
    {0x55, 0x04, "Insufficient registration resources"},
    {0x5D, 0x00, "Failure prediction threshold exceeded"},
    {0x64, 0x00, "Illegal mode for this track"},
    {0x74, 0x71, "Logical unit access not authorized"},
};

const char *cli_asc_name(uint8_t asc, uint8_t ascq)
{
    for (size_t i = 0; i < sizeof(asc_names) / sizeof(asc_names[0]); i++)
        if (asc_names[i].asc == asc && asc_names[i].ascq == ascq)
            return asc_names[i].name;
    return NULL;
}

const char *cli_peripheral_type_name(uint8_t type)
{
    static const char *const names[32] = {
        [0x00] = "disk",
        [0x01] = "tape",
        [0x02] = "printer",
        [0x03] = "processor",
        [0x04] = "write once optical disk",
        [0x05] = "cd/dvd",
        [0x07] = "optical memory device",
        [0x08] = "medium changer",
        [0x0C] = "storage array controller",
        [0x0D] = "enclosure services device",
        [0x0E] = "simplified direct access device",
        [0x0F] = "optical card reader/writer",
        [0x11] = "object based storage",
        [0x12] = "automation/driver interface",
        [0x14] = "host managed zoned block device",
        [0x1E] = "well known logical unit",
        [0x1F] = "unknown or no device type",
    };
    const char *n = names[type & 0x1F];
    return n ? n : "reserved";
}

const char *cli_scsi_status_name(uint8_t status)
{
    switch (status) {
    case 0x00:
        return "GOOD";
    case 0x02:
        return "CHECK CONDITION";
    case 0x04:
        return "CONDITION MET";
    case 0x08:
        return "BUSY";
    case 0x18:
        return "RESERVATION CONFLICT";
    case 0x28:
        return "TASK SET FULL";
    case 0x30:
        return "ACA ACTIVE";
    case 0x40:
        return "TASK ABORTED";
    default:
        return "reserved";
    }
}

int cli_sense_parse(const uint8_t *s, size_t len, struct cli_sense *o)
{
    memset(o, 0, sizeof(*o));
    if (len < 1)
        return -1;
    uint8_t code = s[0] & 0x7F;
    if (code == 0x70 || code == 0x71) {
        o->deferred = code == 0x71;
        if (len < 3)
            return -1;
        o->valid = 1;
        o->key = s[2] & 0x0F;
        size_t end = len;
        if (len >= 8 && (size_t)8 + s[7] < end)
            end = (size_t)8 + s[7];
        if (end >= 13)
            o->asc = s[12];
        if (end >= 14)
            o->ascq = s[13];
        if (len >= 7 && (s[0] & 0x80)) {
            o->info_valid = 1;
            o->info = be32(s + 3);
        }
        if (end >= 18 && (s[15] & 0x80)) {
            o->sks_valid = 1;
            memcpy(o->sks, s + 15, 3);
        }
        return 0;
    }
    if (code == 0x72 || code == 0x73) {
        o->descriptor = 1;
        o->deferred = code == 0x73;
        if (len < 4)
            return -1;
        o->valid = 1;
        o->key = s[1] & 0x0F;
        o->asc = s[2];
        o->ascq = s[3];
        size_t end = len;
        if (len >= 8 && (size_t)8 + s[7] < end)
            end = (size_t)8 + s[7];
        for (size_t at = 8; at + 2 <= end;) {
            const uint8_t *d = s + at;
            size_t dlen = (size_t)2 + d[1];
            if (at + dlen > end)
                break;
            if (d[0] == 0x00 && dlen >= 12) {
                o->info_valid = (d[2] & 0x80) != 0;
                o->info = be64(d + 4);
            } else if (d[0] == 0x02 && dlen >= 8 && (d[4] & 0x80)) {
                o->sks_valid = 1;
                memcpy(o->sks, d + 4, 3);
            }
            at += dlen;
        }
        return 0;
    }
    return -1;
}

void cli_sense_print(const uint8_t *sense, size_t len, FILE *out)
{
    struct cli_sense s;
    if (cli_sense_parse(sense, len, &s)) {
        fprintf(out, "Sense data not in a recognized format (response code 0x%02x), %zu bytes:\n",
                len ? sense[0] & 0x7F : 0, len);
        cli_hexdump(sense, len, out);
        return;
    }
    const char *asc = cli_asc_name(s.asc, s.ascq);
    fprintf(out, "%s, %s; Sense key: %s\n", s.descriptor ? "Descriptor format" : "Fixed format",
            s.deferred ? "deferred" : "current", cli_sense_key_name(s.key));
    if (asc)
        fprintf(out, " Additional sense: %s\n", asc);
    else if (s.asc >= 0x80 || s.ascq >= 0x80)
        fprintf(out, " Additional sense: vendor specific ASC=0x%02x ASCQ=0x%02x\n", s.asc, s.ascq);
    else
        fprintf(out, " Additional sense: ASC=0x%02x ASCQ=0x%02x\n", s.asc, s.ascq);
    if (s.info_valid)
        fprintf(out, "  Info fld=0x%" PRIx64 " [%" PRIu64 "]\n", s.info, s.info);
    if (s.sks_valid) {
        if (s.key == 0x05) /* ILLEGAL REQUEST: field pointer (SPC-5 4.4.2.4.2) */
            fprintf(out, "  Field pointer: %s byte %u%s\n",
                    (s.sks[0] & 0x40) ? "CDB" : "parameter list", be16(s.sks + 1),
                    (s.sks[0] & 0x08) ? "" : " (bit pointer not valid)");
        else if (s.key == 0x02 || s.key == 0x00) /* progress indication */
            fprintf(out, "  Progress indication: %.2f%%\n", be16(s.sks + 1) * 100.0 / 65536);
        else
            fprintf(out, "  Sense key specific: 0x%02x%02x%02x\n", s.sks[0], s.sks[1], s.sks[2]);
    }
}

void cli_sense_print_json(const uint8_t *sense, size_t len, FILE *out)
{
    struct cli_sense s;
    if (cli_sense_parse(sense, len, &s)) {
        fputs("null", out);
        return;
    }
    const char *asc = cli_asc_name(s.asc, s.ascq);
    fprintf(out, "{\"format\": \"%s\", \"deferred\": %s, \"sense_key\": %u, ",
            s.descriptor ? "descriptor" : "fixed", s.deferred ? "true" : "false", s.key);
    fputs("\"sense_key_name\": ", out);
    cli_json_write_string(out, cli_sense_key_name(s.key));
    fprintf(out, ", \"asc\": %u, \"ascq\": %u, \"asc_name\": ", s.asc, s.ascq);
    if (asc)
        cli_json_write_string(out, asc);
    else
        fputs("null", out);
    if (s.info_valid)
        fprintf(out, ", \"information\": %" PRIu64, s.info);
    fputc('}', out);
}

void cli_hexdump(const uint8_t *data, size_t len, FILE *out)
{
    for (size_t at = 0; at < len; at += 16) {
        fprintf(out, " %02zx    ", at);
        for (size_t i = 0; i < 16; i++) {
            if (at + i < len)
                fprintf(out, "%02x ", data[at + i]);
            else
                fputs("   ", out);
            if (i == 7)
                fputc(' ', out);
        }
        fputs("   ", out);
        for (size_t i = 0; i < 16 && at + i < len; i++) {
            uint8_t c = data[at + i];
            fputc(c >= 0x20 && c < 0x7F ? c : '.', out);
        }
        fputc('\n', out);
    }
}

/* Prints a fixed-width ASCII field of INQUIRY data without trailing blanks. */
static void print_ascii(FILE *out, const uint8_t *p, size_t n)
{
    while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
        n--;
    for (size_t i = 0; i < n; i++)
        fputc(p[i] >= 0x20 && p[i] < 0x7F ? p[i] : '.', out);
}

static void json_ascii(FILE *out, const uint8_t *p, size_t n)
{
    while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
        n--;
    cli_json_write_bytes(out, p, n);
}

void cli_inquiry_print(const uint8_t *d, size_t len, FILE *out)
{
    if (len < 5) {
        fprintf(out, "INQUIRY data too short (%zu bytes)\n", len);
        return;
    }
    fprintf(out, "standard INQUIRY:\n");
    fprintf(out, "  PQual=%u  PDT=%u (%s)  RMB=%u  LU_CONG=%u  version=0x%02x\n", d[0] >> 5,
            d[0] & 0x1F, cli_peripheral_type_name(d[0] & 0x1F), d[1] >> 7, (d[1] >> 6) & 1, d[2]);
    fprintf(out, "  NormACA=%u  HiSup=%u  Resp_data_format=%u  additional length=%u\n",
            (d[3] >> 5) & 1, (d[3] >> 4) & 1, d[3] & 0x0F, d[4]);
    if (len >= 8) {
        fprintf(out, "  SCCS=%u  ACC=%u  TPGS=%u  3PC=%u  Protect=%u\n", d[5] >> 7, (d[5] >> 6) & 1,
                (d[5] >> 4) & 3, (d[5] >> 3) & 1, d[5] & 1);
        fprintf(out, "  EncServ=%u  MultiP=%u  CmdQue=%u\n", (d[6] >> 6) & 1, (d[6] >> 4) & 1,
                (d[7] >> 1) & 1);
    }
    if (len >= 16) {
        fputs(" Vendor identification: ", out);
        print_ascii(out, d + 8, 8);
        fputc('\n', out);
    }
    if (len >= 32) {
        fputs(" Product identification: ", out);
        print_ascii(out, d + 16, 16);
        fputc('\n', out);
    }
    if (len >= 36) {
        fputs(" Product revision level: ", out);
        print_ascii(out, d + 32, 4);
        fputc('\n', out);
    }
}

void cli_inquiry_print_json(const uint8_t *d, size_t len, FILE *out)
{
    if (len < 8) {
        fputs("null", out);
        return;
    }
    fprintf(out,
            "{\"peripheral_qualifier\": %u, \"peripheral_device_type\": %u, "
            "\"device_type_name\": \"%s\", \"rmb\": %u, \"version\": %u, "
            "\"response_data_format\": %u, \"hisup\": %u, \"tpgs\": %u, \"3pc\": %u, "
            "\"protect\": %u, \"cmdque\": %u",
            d[0] >> 5, d[0] & 0x1F, cli_peripheral_type_name(d[0] & 0x1F), d[1] >> 7, d[2],
            d[3] & 0x0F, (d[3] >> 4) & 1, (d[5] >> 4) & 3, (d[5] >> 3) & 1, d[5] & 1,
            (d[7] >> 1) & 1);
    if (len >= 16) {
        fputs(", \"vendor\": ", out);
        json_ascii(out, d + 8, 8);
    }
    if (len >= 32) {
        fputs(", \"product\": ", out);
        json_ascii(out, d + 16, 16);
    }
    if (len >= 36) {
        fputs(", \"revision\": ", out);
        json_ascii(out, d + 32, 4);
    }
    fputc('}', out);
}

static const char *vpd_page_name(uint8_t page)
{
    switch (page) {
    case 0x00:
        return "Supported VPD pages";
    case 0x80:
        return "Unit serial number";
    case 0x83:
        return "Device identification";
    case 0x86:
        return "Extended INQUIRY data";
    case 0x87:
        return "Mode page policy";
    case 0x88:
        return "SCSI ports";
    case 0x89:
        return "ATA information";
    case 0x8F:
        return "Third party copy";
    case 0xB0:
        return "Block limits";
    case 0xB1:
        return "Block device characteristics";
    case 0xB2:
        return "Logical block provisioning";
    case 0xB3:
        return "Referrals";
    case 0xB6:
        return "Zoned block device characteristics";
    default:
        return NULL;
    }
}

static const char *designator_type_name(uint8_t t)
{
    static const char *const names[16] = {
        "vendor specific",
        "T10 vendor identification",
        "EUI-64 based",
        "NAA",
        "relative target port",
        "target port group",
        "logical unit group",
        "MD5 logical unit",
        "SCSI name string",
        "protocol specific port identifier",
        "UUID",
    };
    const char *n = names[t & 0x0F];
    return n ? n : "reserved";
}

static const char *association_name(uint8_t a)
{
    static const char *const names[4] = {"Addressed logical unit", "Target port",
                                         "Target device that contains addressed lu", "reserved"};
    return names[a & 3];
}

static void vpd83_print(const uint8_t *d, size_t len, FILE *out)
{
    for (size_t at = 4; at + 4 <= len;) {
        const uint8_t *e = d + at;
        size_t n = e[3];
        if (at + 4 + n > len) {
            fprintf(out, "  designation descriptor at %zu overruns the page\n", at);
            return;
        }
        uint8_t code_set = e[0] & 0x0F, type = e[1] & 0x0F, assoc = (e[1] >> 4) & 3;
        const uint8_t *v = e + 4;
        fprintf(out, "  Designation descriptor: %s, %s\n", association_name(assoc),
                designator_type_name(type));
        fprintf(out, "    code_set=%u  PIV=%u  length=%zu\n", code_set, e[1] >> 7, n);
        switch (type) {
        case 1: /* T10 vendor ID: 8-byte vendor then vendor specific */
            fputs("    vendor id: ", out);
            print_ascii(out, v, n < 8 ? n : 8);
            if (n > 8) {
                fputs("\n    vendor specific: ", out);
                print_ascii(out, v + 8, n - 8);
            }
            fputc('\n', out);
            break;
        case 2:
        case 3:
        case 10:
            fputs(type == 3 ? "    [0x" : "    0x", out);
            for (size_t i = 0; i < n; i++)
                fprintf(out, "%02x", v[i]);
            if (type == 3 && n)
                fprintf(out, "]  NAA=%u", v[0] >> 4);
            else if (type == 3)
                fputc(']', out);
            fputc('\n', out);
            break;
        case 4:
            if (n >= 4)
                fprintf(out, "    Relative target port: 0x%x\n", be16(v + 2));
            break;
        case 5:
            if (n >= 4)
                fprintf(out, "    Target port group: 0x%x\n", be16(v + 2));
            break;
        case 6:
            if (n >= 4)
                fprintf(out, "    Logical unit group: 0x%x\n", be16(v + 2));
            break;
        case 8:
            fputs("    SCSI name string: ", out);
            print_ascii(out, v, n);
            fputc('\n', out);
            break;
        default:
            cli_hexdump(v, n, out);
        }
        at += 4 + n;
    }
}

static void vpd_b0_print(const uint8_t *d, size_t len, FILE *out)
{
    if (len < 16) {
        cli_hexdump(d, len, out);
        return;
    }
    fprintf(out, "  Write same non-zero (WSNZ): %u\n", d[4] & 1);
    fprintf(out, "  Maximum compare and write length: %u blocks\n", d[5]);
    fprintf(out, "  Optimal transfer length granularity: %u blocks\n", be16(d + 6));
    fprintf(out, "  Maximum transfer length: %u blocks%s\n", be32(d + 8),
            be32(d + 8) ? "" : " [not reported]");
    fprintf(out, "  Optimal transfer length: %u blocks%s\n", be32(d + 12),
            be32(d + 12) ? "" : " [not reported]");
    if (len < 64)
        return;
    fprintf(out, "  Maximum prefetch transfer length: %u blocks\n", be32(d + 16));
    fprintf(out, "  Maximum unmap LBA count: %u%s\n", be32(d + 20),
            be32(d + 20) == 0xFFFFFFFFu ? " [unbounded]" : "");
    fprintf(out, "  Maximum unmap block descriptor count: %u%s\n", be32(d + 24),
            be32(d + 24) == 0xFFFFFFFFu ? " [unbounded]" : "");
    fprintf(out, "  Optimal unmap granularity: %u blocks\n", be32(d + 28));
    fprintf(out, "  Unmap granularity alignment valid: %u\n", d[32] >> 7);
    fprintf(out, "  Unmap granularity alignment: %u\n", be32(d + 32) & 0x7FFFFFFFu);
    fprintf(out, "  Maximum write same length: 0x%" PRIx64 " blocks\n", be64(d + 36));
    fprintf(out, "  Maximum atomic transfer length: %u blocks\n", be32(d + 44));
    fprintf(out, "  Atomic alignment: %u\n", be32(d + 48));
    fprintf(out, "  Atomic transfer length granularity: %u\n", be32(d + 52));
}

static void vpd_b1_print(const uint8_t *d, size_t len, FILE *out)
{
    static const char *const form[16] = {"not reported", "5.25 inch", "3.5 inch",
                                         "2.5 inch",     "1.8 inch",  "less then 1.8 inch"};
    if (len < 9) {
        cli_hexdump(d, len, out);
        return;
    }
    uint16_t rate = be16(d + 4);
    if (rate == 0)
        fprintf(out, "  Nominal rotation rate: not reported\n");
    else if (rate == 1)
        fprintf(out, "  Nominal rotation rate: 1 (non rotating medium)\n");
    else
        fprintf(out, "  Nominal rotation rate: %u rpm\n", rate);
    fprintf(out, "  Product type: %u\n", d[6]);
    fprintf(out, "  WABEREQ=%u  WACEREQ=%u\n", d[7] >> 6, (d[7] >> 4) & 3);
    fprintf(out, "  Nominal form factor: %s\n", form[d[7] & 0x0F] ? form[d[7] & 0x0F] : "reserved");
    fprintf(out, "  ZONED=%u  FUAB=%u  VBULS=%u\n", (d[8] >> 4) & 3, (d[8] >> 1) & 1, d[8] & 1);
}

static void vpd_b2_print(const uint8_t *d, size_t len, FILE *out)
{
    static const char *const ptype[8] = {"not reported", "resource provisioned",
                                         "thin provisioned"};
    if (len < 8) {
        cli_hexdump(d, len, out);
        return;
    }
    fprintf(out, "  Threshold exponent: %u\n", d[4]);
    fprintf(out, "  Unmap command supported (LBPU): %u\n", d[5] >> 7);
    fprintf(out, "  Write same (16) with unmap bit supported (LBPWS): %u\n", (d[5] >> 6) & 1);
    fprintf(out, "  Write same (10) with unmap bit supported (LBPWS10): %u\n", (d[5] >> 5) & 1);
    fprintf(out, "  Logical block provisioning read zeros (LBPRZ): %u\n", (d[5] >> 2) & 7);
    fprintf(out, "  Anchored LBAs supported (ANC_SUP): %u\n", (d[5] >> 1) & 1);
    fprintf(out, "  Descriptor present (DP): %u\n", d[5] & 1);
    fprintf(out, "  Minimum percentage: %u\n", d[6] >> 3);
    fprintf(out, "  Provisioning type: %u (%s)\n", d[6] & 7,
            ptype[d[6] & 7] ? ptype[d[6] & 7] : "reserved");
    fprintf(out, "  Threshold percentage: %u\n", d[7]);
}

void cli_vpd_print(const uint8_t *d, size_t len, FILE *out)
{
    if (len < 4) {
        fprintf(out, "VPD page too short (%zu bytes)\n", len);
        return;
    }
    uint8_t page = d[1];
    size_t page_len = (size_t)4 + be16(d + 2);
    if (page_len < len)
        len = page_len;
    const char *name = vpd_page_name(page);
    fprintf(out, "VPD INQUIRY: %s page (0x%02x)\n", name ? name : "unknown", page);
    switch (page) {
    case 0x00:
        for (size_t i = 4; i < len; i++) {
            const char *n = vpd_page_name(d[i]);
            fprintf(out, "  0x%02x  %s\n", d[i], n ? n : "");
        }
        break;
    case 0x80:
        fputs("  Unit serial number: ", out);
        print_ascii(out, d + 4, len - 4);
        fputc('\n', out);
        break;
    case 0x83:
        vpd83_print(d, len, out);
        break;
    case 0xB0:
        vpd_b0_print(d, len, out);
        break;
    case 0xB1:
        vpd_b1_print(d, len, out);
        break;
    case 0xB2:
        vpd_b2_print(d, len, out);
        break;
    default:
        cli_hexdump(d, len, out);
    }
}

void cli_vpd_print_json(const uint8_t *d, size_t len, FILE *out)
{
    if (len < 4) {
        fputs("null", out);
        return;
    }
    uint8_t page = d[1];
    size_t page_len = (size_t)4 + be16(d + 2);
    if (page_len < len)
        len = page_len;
    fprintf(out, "{\"page\": %u", page);
    switch (page) {
    case 0x00:
        fputs(", \"supported_pages\": [", out);
        for (size_t i = 4; i < len; i++)
            fprintf(out, "%s%u", i > 4 ? ", " : "", d[i]);
        fputc(']', out);
        break;
    case 0x80:
        fputs(", \"serial_number\": ", out);
        json_ascii(out, d + 4, len - 4);
        break;
    case 0x83:
        fputs(", \"designators\": [", out);
        for (size_t at = 4, first = 1; at + 4 <= len && at + 4 + d[at + 3] <= len;
             at += 4 + (size_t)d[at + 3], first = 0) {
            fprintf(out, "%s{\"association\": %u, \"type\": %u, \"code_set\": %u, \"value\": \"",
                    first ? "" : ", ", (d[at + 1] >> 4) & 3, d[at + 1] & 0x0F, d[at] & 0x0F);
            for (size_t i = 0; i < d[at + 3]; i++)
                fprintf(out, "%02x", d[at + 4 + i]);
            fputs("\"}", out);
        }
        fputc(']', out);
        break;
    case 0xB0:
        if (len >= 16)
            fprintf(out,
                    ", \"optimal_transfer_length_granularity\": %u, "
                    "\"maximum_transfer_length\": %u, \"optimal_transfer_length\": %u",
                    be16(d + 6), be32(d + 8), be32(d + 12));
        if (len >= 44)
            fprintf(out,
                    ", \"maximum_unmap_lba_count\": %u, "
                    "\"maximum_unmap_block_descriptor_count\": %u, "
                    "\"optimal_unmap_granularity\": %u, \"maximum_write_same_length\": %" PRIu64,
                    be32(d + 20), be32(d + 24), be32(d + 28), be64(d + 36));
        break;
    case 0xB1:
        if (len >= 9)
            fprintf(out, ", \"rotation_rate\": %u, \"form_factor\": %u", be16(d + 4), d[7] & 0x0F);
        break;
    case 0xB2:
        if (len >= 8)
            fprintf(out,
                    ", \"lbpu\": %u, \"lbpws\": %u, \"lbpws10\": %u, \"lbprz\": %u, "
                    "\"provisioning_type\": %u",
                    d[5] >> 7, (d[5] >> 6) & 1, (d[5] >> 5) & 1, (d[5] >> 2) & 7, d[6] & 7);
        break;
    default:
        break;
    }
    fputs(", \"hex\": \"", out);
    for (size_t i = 0; i < len; i++)
        fprintf(out, "%02x", d[i]);
    fputs("\"}", out);
}

void cli_readcap10_print(const uint8_t *d, size_t len, int json, FILE *out)
{
    if (len < 8) {
        fputs(json ? "null" : "READ CAPACITY (10) data too short\n", out);
        return;
    }
    uint64_t last = be32(d), block = be32(d + 4), blocks = last + 1;
    if (json) {
        fprintf(out,
                "{\"command\": \"READ CAPACITY (10)\", \"last_lba\": %" PRIu64
                ", \"block_length\": %" PRIu64 ", \"bytes\": %" PRIu64 "}",
                last, block, blocks * block);
        return;
    }
    fprintf(out, "Read Capacity results:\n");
    fprintf(out, "   Last LBA=%" PRIu64 " (0x%" PRIx64 "), Number of logical blocks=%" PRIu64 "\n",
            last, last, blocks);
    fprintf(out, "   Logical block length=%" PRIu64 " bytes\n", block);
    fprintf(out, "Hence:\n   Device size: %" PRIu64 " bytes, %.1f MiB, %.2f GB\n", blocks * block,
            (double)(blocks * block) / (1024.0 * 1024.0), (double)(blocks * block) / 1e9);
}

void cli_readcap16_print(const uint8_t *d, size_t len, int json, FILE *out)
{
    if (len < 32) {
        fputs(json ? "null" : "READ CAPACITY (16) data too short\n", out);
        return;
    }
    uint64_t last = be64(d), block = be32(d + 8), blocks = last + 1;
    unsigned prot_en = d[12] & 1, p_type = (d[12] >> 1) & 7, p_i_exp = d[13] >> 4;
    unsigned lbppbe = d[13] & 0x0F, lbpme = d[14] >> 7, lbprz = (d[14] >> 6) & 1;
    unsigned lowest = ((d[14] & 0x3F) << 8) | d[15];
    if (json) {
        fprintf(out,
                "{\"command\": \"READ CAPACITY (16)\", \"last_lba\": %" PRIu64
                ", \"block_length\": %" PRIu64 ", \"bytes\": %" PRIu64
                ", \"prot_en\": %u, \"p_type\": %u, \"p_i_exponent\": %u, "
                "\"logical_blocks_per_physical_block_exponent\": %u, \"lbpme\": %u, "
                "\"lbprz\": %u, \"lowest_aligned_lba\": %u}",
                last, block, blocks * block, prot_en, p_type, p_i_exp, lbppbe, lbpme, lbprz,
                lowest);
        return;
    }
    fprintf(out, "Read Capacity results:\n");
    fprintf(out, "   Protection: prot_en=%u, p_type=%u, p_i_exponent=%u\n", prot_en, p_type,
            p_i_exp);
    fprintf(out, "   Logical block provisioning: lbpme=%u, lbprz=%u\n", lbpme, lbprz);
    fprintf(out, "   Last LBA=%" PRIu64 " (0x%" PRIx64 "), Number of logical blocks=%" PRIu64 "\n",
            last, last, blocks);
    fprintf(out, "   Logical block length=%" PRIu64 " bytes\n", block);
    fprintf(out, "   Logical blocks per physical block exponent=%u", lbppbe);
    if (lbppbe)
        fprintf(out, " [so physical block length=%" PRIu64 " bytes]", block << lbppbe);
    fprintf(out, "\n   Lowest aligned LBA=%u\n", lowest);
    fprintf(out, "Hence:\n   Device size: %" PRIu64 " bytes, %.1f MiB, %.2f GB\n", blocks * block,
            (double)(blocks * block) / (1024.0 * 1024.0), (double)(blocks * block) / 1e9);
}
