/*
 * `storstack io DEVICE write|read|verify`: moves a byte range through the class device with
 * storstack_read/storstack_write in chunks (1 MiB by default), the data coming from a pattern or
 * a file; verify reads back and reports the first byte that differs. Patterns are reproducible
 * from any offset, so a range written in one run can be verified in another: a byte, `lba`
 * (every 16 bytes of each 512-byte block hold its LBA and the seed, little-endian) or
 * `random:SEED` (xorshift64* keyed by the seed and the LBA). Progress goes to stderr on a TTY.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <storstack/nt/ntstatus.h>

#include "tools/cli.h"

#define IO_BLOCK 512u

int cli_pattern_parse(const char *text, struct cli_pattern *out)
{
    uint64_t v;
    memset(out, 0, sizeof(*out));
    if (!strcmp(text, "lba")) {
        out->kind = CLI_PATTERN_LBA;
        return 0;
    }
    if (!strncmp(text, "lba:", 4)) {
        out->kind = CLI_PATTERN_LBA;
        return cli_parse_uint(text + 4, 0, UINT64_MAX, &out->seed);
    }
    if (!strncmp(text, "random:", 7)) {
        out->kind = CLI_PATTERN_RANDOM;
        return cli_parse_uint(text + 7, 0, UINT64_MAX, &out->seed);
    }
    if (cli_parse_uint(text, 0, 255, &v))
        return -EINVAL;
    out->kind = CLI_PATTERN_BYTE;
    out->byte = (uint8_t)v;
    return 0;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void cli_pattern_fill(const struct cli_pattern *p, uint64_t offset, uint8_t *buf, size_t len)
{
    if (p->kind == CLI_PATTERN_BYTE) {
        memset(buf, p->byte, len);
        return;
    }
    for (size_t at = 0; at < len; at += IO_BLOCK) {
        uint64_t lba = (offset + at) / IO_BLOCK;
        uint8_t *b = buf + at;
        if (p->kind == CLI_PATTERN_LBA) {
            for (unsigned i = 0; i < IO_BLOCK; i += 16) {
                put_le64(b + i, lba);
                put_le64(b + i + 8, p->seed);
            }
        } else {
            uint64_t x = (p->seed ^ (lba * 0x9E3779B97F4A7C15ull)) | 1;
            for (unsigned i = 0; i < IO_BLOCK; i += 8) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                put_le64(b + i, x * 0x2545F4914F6CDD1Dull);
            }
        }
    }
}

static void io_usage(FILE *out)
{
    fputs("usage: storstack io DEVICE write|read|verify --offset N --length N\n"
          "                   [--pattern P | --file F] [--chunk N]\n"
          "  write    writes the pattern (default lba) or the file's bytes\n"
          "  read     reads; with --file saves to F, else raw bytes to stdout (hex on a TTY)\n"
          "  verify   reads and compares with the pattern or file; reports the first mismatch\n"
          "  --offset N, --length N   bytes, multiples of 512; K/M/G/T suffixes\n"
          "  --pattern P   0xAA (a byte), lba[:SEED], random:SEED\n"
          "  --chunk N     bytes per request (default 1M)\n"
          "  --config FILE, --server PATH   which stack (see storstack --help)\n",
          out);
}

static void io_progress(int tty, uint64_t done, uint64_t total, int final)
{
    if (!tty)
        return;
    fprintf(stderr, "\r  %3u%%  %" PRIu64 " / %" PRIu64 " MiB", (unsigned)(done * 100 / total),
            done >> 20, total >> 20);
    if (final)
        fputc('\n', stderr);
}

int cli_io(int argc, char **argv)
{
    static const struct option opts[] = {{"offset", required_argument, NULL, 'o'},
                                         {"length", required_argument, NULL, 'l'},
                                         {"pattern", required_argument, NULL, 'p'},
                                         {"file", required_argument, NULL, 'f'},
                                         {"chunk", required_argument, NULL, 'k'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"server", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    struct cli_pattern pattern = {.kind = CLI_PATTERN_LBA};
    const char *file = NULL;
    uint64_t offset = 0, length = 0, chunk = 1u << 20;
    int have_offset = 0, have_length = 0, have_pattern = 0, c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (cli_parse_size(optarg, &offset))
                return cli_usage_error("io", "--offset: not a size: '%s'", optarg);
            have_offset = 1;
            break;
        case 'l':
            if (cli_parse_size(optarg, &length) || length == 0)
                return cli_usage_error("io", "--length: not a size above 0: '%s'", optarg);
            have_length = 1;
            break;
        case 'p':
            if (cli_pattern_parse(optarg, &pattern))
                return cli_usage_error("io",
                                       "--pattern: expected 0xNN, lba[:SEED] or "
                                       "random:SEED, got '%s'",
                                       optarg);
            have_pattern = 1;
            break;
        case 'f':
            file = optarg;
            break;
        case 'k':
            if (cli_parse_size(optarg, &chunk) || chunk == 0 || chunk % IO_BLOCK ||
                chunk > (64u << 20))
                return cli_usage_error("io", "--chunk: a multiple of 512 up to 64M: '%s'", optarg);
            break;
        case 'h':
            io_usage(stdout);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, optarg, &common))
                break;
            return cli_usage_error("io", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("io",
                               argc - optind < 1 ? "missing DEVICE" : "missing write|read|verify");
    if (argc - optind > 2)
        return cli_usage_error("io", "unexpected argument '%s'", argv[optind + 2]);
    const char *device = argv[optind], *op = argv[optind + 1];
    int write = !strcmp(op, "write"), verify = !strcmp(op, "verify"), read = !strcmp(op, "read");
    if (!write && !verify && !read)
        return cli_usage_error("io", "unknown operation '%s' (write, read, verify)", op);
    if (!have_offset)
        return cli_usage_error("io", "--offset: required");
    if (!have_length)
        return cli_usage_error("io", "--length: required");
    if (offset % IO_BLOCK)
        return cli_usage_error("io", "--offset: %" PRIu64 " is not a multiple of 512", offset);
    if (length % IO_BLOCK)
        return cli_usage_error("io", "--length: %" PRIu64 " is not a multiple of 512", length);
    if (have_pattern && file)
        return cli_usage_error("io", "--pattern and --file: choose one");
    if (read && have_pattern)
        return cli_usage_error("io", "--pattern: not with read");

    FILE *f = NULL;
    if (file) {
        f = fopen(file, read ? "wb" : "rb");
        if (!f)
            return cli_fail("io", "%s: %s", file, strerror(errno));
    }
    storstack_t *stack = cli_open_stack("io", &common);
    if (!stack) {
        if (f)
            fclose(f);
        return CLI_EXIT_FAILURE;
    }
    storstack_handle_t *h = NULL;
    storstack_status_t st = storstack_open(
        stack, device,
        write ? STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE : STORSTACK_GENERIC_READ, &h);
    if (!NT_SUCCESS(st)) {
        storstack_destroy(stack);
        if (f)
            fclose(f);
        return cli_fail("io", "cannot open %s: %s", device, storstack_status_name(st));
    }

    uint8_t *buf = malloc(chunk), *want = verify ? malloc(chunk) : NULL;
    int tty = isatty(STDERR_FILENO), out_tty = isatty(STDOUT_FILENO), rc = CLI_EXIT_OK;
    uint64_t done = 0;
    if (!buf || (verify && !want)) {
        rc = cli_fail("io", "out of memory");
        goto out;
    }
    while (done < length) {
        uint32_t n = (uint32_t)(length - done < chunk ? length - done : chunk), got = 0;
        uint64_t at = offset + done;
        uint8_t *src = verify ? want : buf;
        if (!read) {
            if (f) {
                if (fread(src, 1, n, f) != n) {
                    rc = cli_fail("io", "%s: shorter than --length (%" PRIu64 " bytes)", file,
                                  length);
                    goto out;
                }
            } else {
                cli_pattern_fill(&pattern, at, src, n);
            }
        }
        if (write)
            st = storstack_write(h, buf, n, at, &got);
        else
            st = storstack_read(h, buf, n, at, &got);
        if (!NT_SUCCESS(st) || got != n) {
            io_progress(tty, done, length, 1);
            rc = cli_fail("io", "%s at offset %" PRIu64 " (%u bytes) failed: %s",
                          write ? "write" : "read", at, n,
                          NT_SUCCESS(st) ? "short transfer" : storstack_status_name(st));
            goto out;
        }
        if (verify && memcmp(buf, want, n)) {
            uint32_t i = 0;
            while (buf[i] == want[i])
                i++;
            io_progress(tty, done, length, 1);
            fprintf(stderr,
                    "storstack io: verify: mismatch at offset %" PRIu64 " (LBA %" PRIu64
                    "): read 0x%02x, expected 0x%02x\n",
                    at + i, (at + i) / IO_BLOCK, buf[i], want[i]);
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        if (read) {
            if (f) {
                if (fwrite(buf, 1, n, f) != n) {
                    rc = cli_fail("io", "%s: %s", file, strerror(errno));
                    goto out;
                }
            } else if (out_tty) {
                cli_hexdump(buf, n, stdout);
            } else if (fwrite(buf, 1, n, stdout) != n) {
                rc = cli_fail("io", "stdout: %s", strerror(errno));
                goto out;
            }
        }
        done += n;
        io_progress(tty, done, length, 0);
    }
    io_progress(tty, done, length, 1);
    if (write && storstack_flush(h) != STATUS_SUCCESS)
        fprintf(stderr, "storstack io: warning: flush failed\n");
    if (!read || f)
        fprintf(read ? stderr : stdout, "%s %" PRIu64 " bytes at offset %" PRIu64 ": ok\n",
                write ? "wrote" : (verify ? "verified" : "read"), length, offset);
out:
    free(buf);
    free(want);
    if (f && fclose(f) && rc == CLI_EXIT_OK)
        rc = cli_fail("io", "%s: %s", file, strerror(errno));
    storstack_close(h);
    storstack_destroy(stack);
    return rc;
}
