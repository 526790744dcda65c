/*
 * `storstack scsi DEVICE inquiry|readcap|tur|raw`: SCSI commands sent as
 * IOCTL_SCSI_PASS_THROUGH_DIRECT through storstack_ioctl to an opened device (a disk, a CD-ROM,
 * a tape, or a port's "Scsi0:" name), decoded by scsi_decode.c. The exit status is 0 for GOOD,
 * 1 for any other SCSI status (CHECK CONDITION with its sense decoded on stderr) or a transport
 * failure (the NTSTATUS named on stderr), 2 for a bad argument.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

#include <storstack/storage/ntddscsi.h>
#include "tools/cli.h"

#define SCSI_SENSE_MAX 64

struct scsi_sptd_sense {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t pad;
    uint8_t sense[SCSI_SENSE_MAX];
};

struct scsi_result {
    storstack_status_t status; /* transport */
    uint8_t scsi_status;
    uint32_t data_length; /* bytes actually transferred */
    uint8_t sense[SCSI_SENSE_MAX];
    uint32_t sense_length;
};

static void scsi_exec(storstack_handle_t *h, const uint8_t *cdb, uint8_t cdb_length,
                      uint8_t direction, void *data, uint32_t length, uint32_t timeout,
                      struct scsi_result *r)
{
    struct scsi_sptd_sense s;
    uint32_t returned = 0;

    memset(&s, 0, sizeof(s));
    memset(r, 0, sizeof(*r));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = cdb_length;
    s.sptd.SenseInfoLength = SCSI_SENSE_MAX;
    s.sptd.SenseInfoOffset = offsetof(struct scsi_sptd_sense, sense);
    s.sptd.DataIn = direction;
    s.sptd.DataTransferLength = length;
    s.sptd.DataBuffer = length ? data : NULL;
    s.sptd.TimeOutValue = timeout;
    memcpy(s.sptd.Cdb, cdb, cdb_length);
    r->status =
        storstack_ioctl(h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s, sizeof(s), &returned);
    r->scsi_status = s.sptd.ScsiStatus;
    r->data_length = s.sptd.DataTransferLength;
    r->sense_length =
        s.sptd.SenseInfoLength < SCSI_SENSE_MAX ? s.sptd.SenseInfoLength : SCSI_SENSE_MAX;
    memcpy(r->sense, s.sense, r->sense_length);
}

/* Reports a failed command on stderr; returns the exit status (0 when GOOD). */
static int scsi_report(const char *what, const struct scsi_result *r)
{
    if (NT_ERROR(r->status))
        return cli_fail("scsi", "%s: pass-through failed: %s", what,
                        storstack_status_name(r->status));
    if (r->scsi_status == 0)
        return CLI_EXIT_OK;
    fprintf(stderr, "storstack scsi: %s: SCSI status %s (0x%02x)\n", what,
            cli_scsi_status_name(r->scsi_status), r->scsi_status);
    if (r->sense_length)
        cli_sense_print(r->sense, r->sense_length, stderr);
    return CLI_EXIT_FAILURE;
}

static void scsi_json_head(const char *device, const char *command, const struct scsi_result *r)
{
    fputs("{\"device\": ", stdout);
    cli_json_write_string(stdout, device);
    fprintf(stdout, ", \"command\": \"%s\", \"transport_status\": \"%s\", \"scsi_status\": %u",
            command, storstack_status_name(r->status), r->scsi_status);
    if (r->scsi_status == 2 && r->sense_length) {
        fputs(", \"sense\": ", stdout);
        cli_sense_print_json(r->sense, r->sense_length, stdout);
    }
}

/* Hex CDB from the remaining words: "12 00 00 00 24 00", "120000002400", "12,00,...". */
static int scsi_parse_cdb(int argc, char **argv, uint8_t *cdb, uint8_t *length)
{
    int n = 0, half = -1;
    for (int i = 0; i < argc; i++) {
        for (const char *p = argv[i]; *p; p++) {
            int v;
            if (*p == ' ' || *p == ',' || *p == ':')
                continue;
            if (*p >= '0' && *p <= '9')
                v = *p - '0';
            else if (*p >= 'a' && *p <= 'f')
                v = *p - 'a' + 10;
            else if (*p >= 'A' && *p <= 'F')
                v = *p - 'A' + 10;
            else
                return -EINVAL;
            if (half < 0) {
                half = v;
            } else {
                if (n == 16)
                    return -EINVAL;
                cdb[n++] = (uint8_t)(half << 4 | v);
                half = -1;
            }
        }
        if (half >= 0) /* a single digit word is one byte: "0" */
        {
            if (n == 16)
                return -EINVAL;
            cdb[n++] = (uint8_t)half;
            half = -1;
        }
    }
    if (n == 0)
        return -EINVAL;
    *length = (uint8_t)n;
    return 0;
}

static void scsi_usage(FILE *out)
{
    fputs("usage: storstack scsi DEVICE COMMAND [options]\n"
          "  inquiry [--vpd PAGE]             standard INQUIRY or a VPD page (00 80 83 B0 B1 B2\n"
          "                                   decoded, others hex dumped)\n"
          "  readcap                          READ CAPACITY (16), falling back to (10)\n"
          "  tur                              TEST UNIT READY\n"
          "  raw CDB_HEX [--in N [--out FILE] | --send FILE]\n"
          "                                   any CDB; --in N bytes of data-in (hex dump, or\n"
          "                                   written to FILE), --send FILE as data-out\n"
          "  --timeout S   command timeout in seconds (default 30)\n"
          "  --json        machine-readable output\n"
          "  --config FILE, --server PATH     which stack (see storstack --help)\n"
          "DEVICE is a Windows name: PhysicalDrive0, CdRom0, Tape0, Scsi0:, \\Device\\...\n",
          out);
}

static int scsi_read_file(const char *path, uint8_t **data, uint32_t *length)
{
    FILE *f = fopen(path, "rb");
    long size;
    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || size > (64l << 20) ||
        fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return -EFBIG;
    }
    *data = malloc(size ? (size_t)size : 1);
    if (!*data || fread(*data, 1, (size_t)size, f) != (size_t)size) {
        free(*data);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *length = (uint32_t)size;
    return 0;
}

int cli_scsi(int argc, char **argv)
{
    static const struct option opts[] = {
        {"vpd", required_argument, NULL, 'v'},     {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},     {"send", required_argument, NULL, 'S'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},  {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    const char *out_file = NULL, *send_file = NULL;
    uint64_t vpd = 0, in_length = 0, timeout = 30;
    int have_vpd = 0, have_in = 0, c, rc;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            if (cli_parse_uint(optarg, 0, 255, &vpd))
                return cli_usage_error("scsi", "--vpd: not a page number 0..0xff: '%s'", optarg);
            have_vpd = 1;
            break;
        case 'i':
            if (cli_parse_size(optarg, &in_length) || in_length == 0 || in_length > (16u << 20))
                return cli_usage_error("scsi", "--in: not a length 1..16M: '%s'", optarg);
            have_in = 1;
            break;
        case 'o':
            out_file = optarg;
            break;
        case 'S':
            send_file = optarg;
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, 3600, &timeout))
                return cli_usage_error("scsi", "--timeout: not 1..3600 seconds: '%s'", optarg);
            break;
        case 'h':
            scsi_usage(stdout);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, optarg, &common))
                break;
            return cli_usage_error("scsi", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("scsi", argc - optind < 1 ? "missing DEVICE" : "missing COMMAND");
    const char *device = argv[optind], *command = argv[optind + 1];
    int nargs = argc - optind - 2;
    char **args = argv + optind + 2;
    uint8_t cdb[16];
    uint8_t cdb_length = 0;

    if (!strcmp(command, "raw")) {
        if (scsi_parse_cdb(nargs, args, cdb, &cdb_length))
            return cli_usage_error("scsi", "CDB_HEX: expected 1..16 hex bytes");
        if (have_in && send_file)
            return cli_usage_error("scsi", "--in and --send: a command moves data one way");
        if (out_file && !have_in)
            return cli_usage_error("scsi", "--out: needs --in N");
    } else if (!strcmp(command, "inquiry") || !strcmp(command, "readcap") ||
               !strcmp(command, "tur")) {
        if (nargs)
            return cli_usage_error("scsi", "unexpected argument '%s'", args[0]);
        if (have_vpd && strcmp(command, "inquiry"))
            return cli_usage_error("scsi", "--vpd: only with inquiry");
        if (have_in || out_file || send_file)
            return cli_usage_error("scsi", "--in/--out/--send: only with raw");
    } else {
        return cli_usage_error("scsi", "unknown command '%s' (inquiry, readcap, tur, raw)",
                               command);
    }

    storstack_t *stack = cli_open_stack("scsi", &common);
    storstack_handle_t *h = NULL;
    struct scsi_result r;
    uint8_t *buf = NULL;
    if (!stack)
        return CLI_EXIT_FAILURE;
    storstack_status_t st =
        storstack_open(stack, device, STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &h);
    if (!NT_SUCCESS(st)) {
        storstack_destroy(stack);
        return cli_fail("scsi", "cannot open %s: %s", device, storstack_status_name(st));
    }

    if (!strcmp(command, "inquiry")) {
        uint32_t alloc = have_vpd ? 4096 : 255;
        uint8_t inq[6] = {0x12,           (uint8_t)(have_vpd ? 1 : 0),
                          (uint8_t)vpd,   (uint8_t)(alloc >> 8),
                          (uint8_t)alloc, 0};
        buf = calloc(1, alloc);
        scsi_exec(h, inq, 6, SCSI_IOCTL_DATA_IN, buf, alloc, (uint32_t)timeout, &r);
        rc = scsi_report("INQUIRY", &r);
        if (common.json) {
            scsi_json_head(device, have_vpd ? "inquiry-vpd" : "inquiry", &r);
            fputs(", \"data\": ", stdout);
            if (rc == 0 && have_vpd)
                cli_vpd_print_json(buf, r.data_length, stdout);
            else if (rc == 0)
                cli_inquiry_print_json(buf, r.data_length, stdout);
            else
                fputs("null", stdout);
            fputs("}\n", stdout);
        } else if (rc == 0 && have_vpd) {
            cli_vpd_print(buf, r.data_length, stdout);
        } else if (rc == 0) {
            cli_inquiry_print(buf, r.data_length, stdout);
        }
    } else if (!strcmp(command, "readcap")) {
        uint8_t rc16[16] = {0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0};
        uint8_t rc10[10] = {0x25};
        buf = calloc(1, 32);
        scsi_exec(h, rc16, 16, SCSI_IOCTL_DATA_IN, buf, 32, (uint32_t)timeout, &r);
        int sixteen = !NT_ERROR(r.status) && r.scsi_status == 0;
        if (!sixteen) {
            scsi_exec(h, rc10, 10, SCSI_IOCTL_DATA_IN, buf, 8, (uint32_t)timeout, &r);
        }
        rc = scsi_report(sixteen ? "READ CAPACITY (16)" : "READ CAPACITY (10)", &r);
        if (common.json) {
            scsi_json_head(device, "readcap", &r);
            fputs(", \"data\": ", stdout);
            if (rc)
                fputs("null", stdout);
            else if (sixteen)
                cli_readcap16_print(buf, r.data_length, 1, stdout);
            else
                cli_readcap10_print(buf, r.data_length, 1, stdout);
            fputs("}\n", stdout);
        } else if (rc == 0) {
            if (sixteen)
                cli_readcap16_print(buf, r.data_length, 0, stdout);
            else
                cli_readcap10_print(buf, r.data_length, 0, stdout);
        }
    } else if (!strcmp(command, "tur")) {
        uint8_t tur[6] = {0};
        scsi_exec(h, tur, 6, SCSI_IOCTL_DATA_UNSPECIFIED, NULL, 0, (uint32_t)timeout, &r);
        rc = scsi_report("TEST UNIT READY", &r);
        if (common.json) {
            scsi_json_head(device, "tur", &r);
            fprintf(stdout, ", \"ready\": %s}\n", rc ? "false" : "true");
        } else if (rc == 0) {
            printf("TEST UNIT READY: ready\n");
        }
    } else {
        uint32_t length = 0;
        uint8_t direction = SCSI_IOCTL_DATA_UNSPECIFIED;
        if (send_file) {
            int e = scsi_read_file(send_file, &buf, &length);
            if (e) {
                storstack_close(h);
                storstack_destroy(stack);
                return cli_fail("scsi", "--send %s: %s", send_file, strerror(-e));
            }
            direction = SCSI_IOCTL_DATA_OUT;
        } else if (have_in) {
            length = (uint32_t)in_length;
            buf = calloc(1, length);
            direction = SCSI_IOCTL_DATA_IN;
        }
        scsi_exec(h, cdb, cdb_length, direction, buf, length, (uint32_t)timeout, &r);
        rc = scsi_report("raw command", &r);
        if (common.json) {
            scsi_json_head(device, "raw", &r);
            fprintf(stdout, ", \"data_length\": %u", r.data_length);
            if (direction == SCSI_IOCTL_DATA_IN && !out_file) {
                fputs(", \"data\": \"", stdout);
                for (uint32_t i = 0; i < r.data_length && i < length; i++)
                    fprintf(stdout, "%02x", buf[i]);
                fputc('"', stdout);
            }
            fputs("}\n", stdout);
        } else if (direction == SCSI_IOCTL_DATA_IN && !out_file && !NT_ERROR(r.status)) {
            printf("Received %u bytes of data:\n", r.data_length);
            cli_hexdump(buf, r.data_length < length ? r.data_length : length, stdout);
        } else if (rc == 0 && direction != SCSI_IOCTL_DATA_IN) {
            printf("SCSI status: GOOD\n");
        }
        if (out_file && direction == SCSI_IOCTL_DATA_IN && !NT_ERROR(r.status)) {
            FILE *f = fopen(out_file, "wb");
            uint32_t n = r.data_length < length ? r.data_length : length;
            if (!f || fwrite(buf, 1, n, f) != n) {
                rc = cli_fail("scsi", "--out %s: %s", out_file, strerror(errno));
            }
            if (f && fclose(f) && rc == 0)
                rc = cli_fail("scsi", "--out %s: %s", out_file, strerror(errno));
        }
    }
    free(buf);
    storstack_close(h);
    storstack_destroy(stack);
    return rc;
}
