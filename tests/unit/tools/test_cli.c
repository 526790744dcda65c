/*
 * The storstack command's pieces: size and pattern parsing, the SCSI decoders (bytes in, text
 * out), the JSON reader and tree rendering, the latency histogram, and the verbs run in-process
 * against a management server that serves the RAM test double of tests/unit/api.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/server.h"
#include "tests/unit/api/ramstack.h"
#include "tools/cli.h"

static char *render(void (*fn)(const uint8_t *, size_t, FILE *), const uint8_t *d, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fn(d, n, f);
    fclose(f);
    return text;
}

static void test_sizes_accept_binary_suffixes(void **state)
{
    uint64_t v;
    assert_int_equal(cli_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cli_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cli_parse_size("4K", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cli_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cli_parse_size("1M", &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(cli_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(cli_parse_size("3T", &v), 0);
    assert_int_equal(v, 3ull << 40);
}

static void test_sizes_reject_bad_values(void **state)
{
    uint64_t v;
    assert_int_not_equal(cli_parse_size("", &v), 0);
    assert_int_not_equal(cli_parse_size("-1", &v), 0);
    assert_int_not_equal(cli_parse_size("1.5M", &v), 0);
    assert_int_not_equal(cli_parse_size("12Q", &v), 0);
    assert_int_not_equal(cli_parse_size("K", &v), 0);
    assert_int_not_equal(cli_parse_size("99999999999T", &v), 0);
    assert_int_not_equal(cli_parse_size("99999999999999999999", &v), 0);
    assert_int_not_equal(cli_parse_uint("0x100", 0, 255, &v), 0);
    assert_int_equal(cli_parse_uint("0xff", 0, 255, &v), 0);
    assert_int_equal(v, 255);
    assert_int_not_equal(cli_parse_uint("-3", 0, 255, &v), 0);
}

static void test_patterns_are_reproducible_per_block(void **state)
{
    struct cli_pattern p;
    uint8_t a[2048], b[512];
    assert_int_equal(cli_pattern_parse("0xAA", &p), 0);
    cli_pattern_fill(&p, 0, a, 512);
    assert_int_equal(a[0], 0xAA);
    assert_int_equal(a[511], 0xAA);
    assert_int_equal(cli_pattern_parse("lba:7", &p), 0);
    cli_pattern_fill(&p, 4096, a, 1024);
    assert_int_equal(a[0], 8);   /* LBA 8 */
    assert_int_equal(a[8], 7);   /* seed */
    assert_int_equal(a[512], 9); /* next block */
    assert_int_equal(cli_pattern_parse("random:42", &p), 0);
    cli_pattern_fill(&p, 0, a, 2048);
    cli_pattern_fill(&p, 1024, b, 512); /* the same block from another starting offset */
    assert_memory_equal(a + 1024, b, 512);
    assert_memory_not_equal(a, a + 512, 512);
    assert_int_not_equal(cli_pattern_parse("0x100", &p), 0);
    assert_int_not_equal(cli_pattern_parse("random:", &p), 0);
    assert_int_not_equal(cli_pattern_parse("zeros", &p), 0);
}

static void test_inquiry_standard_fields_decoded(void **state)
{
    uint8_t inq[36] = {0x00, 0x80, 0x06, 0x12, 31, 0x00, 0x10, 0x02};
    memcpy(inq + 8, "STORSTAKRAMDISK         0001", 28);
    char *t = render(cli_inquiry_print, inq, sizeof(inq));
    assert_non_null(strstr(t, "PDT=0 (disk)"));
    assert_non_null(strstr(t, "RMB=1"));
    assert_non_null(strstr(t, "version=0x06"));
    assert_non_null(strstr(t, "HiSup=1"));
    assert_non_null(strstr(t, "Resp_data_format=2"));
    assert_non_null(strstr(t, "MultiP=1"));
    assert_non_null(strstr(t, "CmdQue=1"));
    assert_non_null(strstr(t, "Vendor identification: STORSTAK\n"));
    assert_non_null(strstr(t, "Product identification: RAMDISK\n"));
    assert_non_null(strstr(t, "Product revision level: 0001\n"));
    free(t);
    t = render(cli_inquiry_print_json, inq, sizeof(inq));
    assert_non_null(strstr(t, "\"vendor\": \"STORSTAK\""));
    assert_non_null(strstr(t, "\"peripheral_device_type\": 0"));
    free(t);
    t = render(cli_inquiry_print, inq, 3);
    assert_non_null(strstr(t, "too short"));
    free(t);
}

static void test_vpd_pages_decoded(void **state)
{
    uint8_t p00[] = {0, 0x00, 0, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2};
    char *t = render(cli_vpd_print, p00, sizeof(p00));
    assert_non_null(strstr(t, "Supported VPD pages"));
    assert_non_null(strstr(t, "0xb0  Block limits"));
    assert_non_null(strstr(t, "0xb2  Logical block provisioning"));
    free(t);

    uint8_t p80[] = {0, 0x80, 0, 8, 'S', 'N', '1', '2', '3', '4', ' ', ' '};
    t = render(cli_vpd_print, p80, sizeof(p80));
    assert_non_null(strstr(t, "Unit serial number: SN1234\n"));
    free(t);

    uint8_t p83[] = {0, 0x83, 0, 32,
                     /* NAA 6, binary, LU */
                     0x01, 0x03, 0, 16, 0x60, 0x01, 0x40, 0x5f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                     12,
                     /* T10 vendor id, ASCII */
                     0x02, 0x01, 0, 8, 'S', 'T', 'O', 'R', 'S', 'T', 'A', 'K'};
    t = render(cli_vpd_print, p83, sizeof(p83));
    assert_non_null(strstr(t, "Addressed logical unit, NAA"));
    assert_non_null(strstr(t, "[0x6001405f0102030405060708090a0b0c]  NAA=6"));
    assert_non_null(strstr(t, "T10 vendor identification"));
    assert_non_null(strstr(t, "vendor id: STORSTAK"));
    free(t);
    /* a descriptor that claims more than the page holds is reported, not read past */
    uint8_t bad83[] = {0, 0x83, 0, 8, 0x01, 0x03, 0, 200, 0x60, 0x01, 0x02, 0x03};
    t = render(cli_vpd_print, bad83, sizeof(bad83));
    assert_non_null(strstr(t, "overruns"));
    free(t);

    uint8_t b0[64] = {0, 0xB0, 0, 60};
    b0[7] = 8;     /* optimal granularity 8 */
    b0[10] = 0x10; /* max transfer 0x1000 */
    b0[20] = b0[21] = b0[22] = b0[23] = 0xFF;
    t = render(cli_vpd_print, b0, sizeof(b0));
    assert_non_null(strstr(t, "Optimal transfer length granularity: 8 blocks"));
    assert_non_null(strstr(t, "Maximum transfer length: 4096 blocks"));
    assert_non_null(strstr(t, "Maximum unmap LBA count: 4294967295 [unbounded]"));
    free(t);

    uint8_t b1[64] = {0, 0xB1, 0, 60, 0, 1, 0, 0x03};
    t = render(cli_vpd_print, b1, sizeof(b1));
    assert_non_null(strstr(t, "non rotating medium"));
    assert_non_null(strstr(t, "2.5 inch"));
    free(t);

    uint8_t b2[8] = {0, 0xB2, 0, 4, 0, 0xE4, 0x02, 0};
    t = render(cli_vpd_print, b2, sizeof(b2));
    assert_non_null(strstr(t, "(LBPU): 1"));
    assert_non_null(strstr(t, "(LBPWS): 1"));
    assert_non_null(strstr(t, "(LBPRZ): 1"));
    assert_non_null(strstr(t, "thin provisioned"));
    free(t);

    uint8_t other[] = {0, 0x89, 0, 2, 0xAB, 0xCD};
    t = render(cli_vpd_print, other, sizeof(other));
    assert_non_null(strstr(t, "ATA information"));
    assert_non_null(strstr(t, "ab cd"));
    free(t);
}

static void test_sense_fixed_and_descriptor_decoded(void **state)
{
    uint8_t fixed[18] = {0xF0, 0, 0x05, 0,    0,    0x10, 0x00, 10,   0,
                         0,    0, 0,    0x24, 0x00, 0,    0xC0, 0x00, 0x02};
    struct cli_sense s;
    assert_int_equal(cli_sense_parse(fixed, sizeof(fixed), &s), 0);
    assert_false(s.descriptor);
    assert_int_equal(s.key, 5);
    assert_int_equal(s.asc, 0x24);
    assert_true(s.info_valid);
    assert_int_equal(s.info, 0x1000);
    char *t = render(cli_sense_print, fixed, sizeof(fixed));
    assert_non_null(strstr(t, "Fixed format, current; Sense key: Illegal Request"));
    assert_non_null(strstr(t, "Invalid field in cdb"));
    assert_non_null(strstr(t, "Field pointer: CDB byte 2"));
    assert_non_null(strstr(t, "Info fld=0x1000"));
    free(t);

    uint8_t desc[20] = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0x00, 0x0A,
                        0x80, 0,    0,    0,    0, 0, 0, 0,  0x12, 0x34};
    assert_int_equal(cli_sense_parse(desc, sizeof(desc), &s), 0);
    assert_true(s.descriptor);
    assert_int_equal(s.key, 3);
    assert_int_equal(s.info, 0x1234);
    t = render(cli_sense_print, desc, sizeof(desc));
    assert_non_null(strstr(t, "Descriptor format, current; Sense key: Medium Error"));
    assert_non_null(strstr(t, "Unrecovered read error"));
    assert_non_null(strstr(t, "Info fld=0x1234"));
    free(t);

    uint8_t ua[14] = {0x70, 0, 0x06, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0x29, 0x00};
    t = render(cli_sense_print, ua, sizeof(ua));
    assert_non_null(strstr(t, "Unit Attention"));
    assert_non_null(strstr(t, "Power on, reset, or bus device reset occurred"));
    free(t);
    uint8_t vendor[14] = {0x70, 0, 0x04, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0x80, 0x01};
    t = render(cli_sense_print, vendor, sizeof(vendor));
    assert_non_null(strstr(t, "vendor specific ASC=0x80 ASCQ=0x01"));
    free(t);
    /* truncated and garbage */
    assert_int_not_equal(cli_sense_parse(fixed, 2, &s), 0);
    uint8_t junk[4] = {0x12, 1, 2, 3};
    t = render(cli_sense_print, junk, sizeof(junk));
    assert_non_null(strstr(t, "not in a recognized format"));
    free(t);
    assert_string_equal(cli_sense_key_name(2), "Not Ready");
    assert_string_equal(cli_asc_name(0x3A, 0x00), "Medium not present");
    assert_null(cli_asc_name(0x7F, 0x7F));
}

static void rc16(const uint8_t *d, size_t n, FILE *f)
{
    cli_readcap16_print(d, n, 0, f);
}

static void test_read_capacity_decoded(void **state)
{
    uint8_t d[32] = {0, 0, 0, 0, 0, 0x1F, 0xFF, 0xFF, 0, 0, 0x02, 0, 0, 0x03, 0x80, 0};
    char *t = render(rc16, d, sizeof(d));
    assert_non_null(strstr(t, "Last LBA=2097151 (0x1fffff), Number of logical blocks=2097152"));
    assert_non_null(strstr(t, "Logical block length=512 bytes"));
    assert_non_null(strstr(t, "physical block length=4096 bytes"));
    assert_non_null(strstr(t, "lbpme=1"));
    assert_non_null(strstr(t, "Device size: 1073741824 bytes"));
    free(t);
}

static void test_json_reader_and_tree_render(void **state)
{
    const char *json =
        "{\"root\": {\"instance_path\": \"HTREE\\\\ROOT\\\\0\", \"state\": \"started\", "
        "\"children\": [{\"instance_path\": \"ROOT\\\\VMINIPORT\\\\0000\", \"service\": "
        "\"vminiport\", \"state\": \"started\", \"hardware_ids\": [\"ROOT\\\\VMINIPORT\"], "
        "\"names\": [\"Scsi0:\"], \"stack\": [{\"driver\": \"storport\", \"device\": "
        "\"\\\\Device\\\\RaidPort0\", \"role\": \"FDO\"}], \"children\": [{\"instance_path\": "
        "\"SCSI\\\\Disk&Ven_STORSTAK\\\\1&0&0\", \"description\": \"Disk \\u00e9\", "
        "\"service\": \"disk\", \"state\": \"started\", \"compatible_ids\": [\"GenDisk\"], "
        "\"location\": \"Bus 0, Target 0, LUN 0\", \"power\": \"D3\", "
        "\"names\": [\"PhysicalDrive0\", "
        "\"\\\\Device\\\\Harddisk0\\\\DR0\"], \"stack\": [{\"driver\": \"partmgr\", \"device\": "
        "\"\", \"role\": \"UpperFilter\"}, {\"driver\": \"disk\", \"device\": "
        "\"\\\\Device\\\\Harddisk0\\\\DR0\", \"role\": \"FDO\"}, {\"driver\": \"storport\", "
        "\"device\": \"\\\\Device\\\\00000001\", \"role\": \"PDO\"}], \"children\": []}]}]}}";
    char err[128], *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(cli_tree_render(json, f, err, sizeof(err)), 0);
    fclose(f);
    assert_non_null(strstr(text, "HTREE\\ROOT\\0 [started]"));
    assert_non_null(strstr(text, "`-- ROOT\\VMINIPORT\\0000 [started]"));
    assert_non_null(strstr(text, "    `-- SCSI\\Disk&Ven_STORSTAK\\1&0&0 [started]"));
    assert_non_null(strstr(text, "names       PhysicalDrive0, \\Device\\Harddisk0\\DR0"));
    assert_non_null(strstr(text, "stack       UpperFilter partmgr"));
    assert_non_null(strstr(text, "power       D3"));
    assert_non_null(strstr(text, "FDO         disk         \\Device\\Harddisk0\\DR0"));
    assert_non_null(strstr(text, "PDO         storport"));
    assert_non_null(strstr(text, "Disk \xc3\xa9"));
    free(text);

    assert_null(cli_json_parse("{\"a\": [1, 2,]}", err, sizeof(err)));
    assert_non_null(strstr(err, "byte"));
    assert_null(cli_json_parse("{\"a\": \"x", err, sizeof(err)));
    assert_null(cli_json_parse("[1] x", err, sizeof(err)));
    char deep[200];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = 0;
    assert_null(cli_json_parse(deep, err, sizeof(err)));
    assert_int_not_equal(cli_tree_render("{\"nope\": 1}", stdout, err, sizeof(err)), 0);
    struct cli_json *v =
        cli_json_parse(" {\"n\": -1.5e2, \"t\": true, \"z\": null} ", err, sizeof(err));
    assert_non_null(v);
    assert_true(cli_json_get(v, "n")->number == -150.0);
    assert_int_equal(cli_json_get(v, "t")->boolean, 1);
    assert_int_equal(cli_json_get(v, "z")->type, CLI_JSON_NULL);
    cli_json_free(v);
}

static void test_histogram_quantiles_within_bucket_width(void **state)
{
    static struct cli_hist h;
    memset(&h, 0, sizeof(h));
    for (uint64_t i = 1; i <= 100000; i++)
        cli_hist_add(&h, i * 100); /* 100 ns .. 10 ms, uniform */
    uint64_t p50 = cli_hist_quantile(&h, 0.5), p99 = cli_hist_quantile(&h, 0.99);
    assert_true(p50 >= 5000000 && p50 <= 5000000 * 1.02);
    assert_true(p99 >= 9900000 && p99 <= 9900000 * 1.02);
    assert_int_equal(h.count, 100000);
    static struct cli_hist small;
    memset(&small, 0, sizeof(small));
    cli_hist_add(&small, 7);
    assert_int_equal(cli_hist_quantile(&small, 0.999), 7);
    cli_hist_add(&small, UINT64_MAX);
    assert_true(cli_hist_quantile(&small, 0.999) > 7);
}

/* ---- the verbs against a served RAM double ---- */

struct served {
    char dir[64], path[128];
    storstack_t *stack;
    struct storstack_server *server;
};

static int serve_setup(void **state)
{
    struct served *s = calloc(1, sizeof(*s));
    char err[256];
    strcpy(s->dir, "/tmp/ss-cli-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/s.sock", s->dir);
    s->stack = ramstack_create(4u << 20);
    assert_int_equal(storstack_server_start(s->stack, s->path, &s->server, err, sizeof(err)), 0);
    *state = s;
    return 0;
}

static int serve_teardown(void **state)
{
    struct served *s = *state;
    storstack_server_stop(s->server);
    storstack_destroy(s->stack);
    rmdir(s->dir);
    free(s);
    return 0;
}

/* Runs a verb with stdout captured into a string (freed by the caller). */
static int run(int (*verb)(int, char **), char **out, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, out);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    char tmpl[] = "/tmp/ss-cli-out-XXXXXX";
    int fd = mkstemp(tmpl), saved;
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    int rc = verb(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    pread(fd, text, (size_t)n, 0);
    close(fd);
    unlink(tmpl);
    if (out)
        *out = text;
    else
        free(text);
    return rc;
}

static void test_verbs_reject_bad_arguments_with_status_2(void **state)
{
    assert_int_equal(run(cli_io, NULL, "io", "PhysicalDrive0", "write", "--offset", "100",
                         "--length", "512", NULL),
                     2);
    assert_int_equal(run(cli_io, NULL, "io", "PhysicalDrive0", "write", "--offset", "0", "--length",
                         "1000", NULL),
                     2);
    assert_int_equal(run(cli_io, NULL, "io", "PhysicalDrive0", "scribble", "--offset", "0",
                         "--length", "512", NULL),
                     2);
    assert_int_equal(run(cli_io, NULL, "io", "PhysicalDrive0", "write", "--offset", "0", NULL), 2);
    assert_int_equal(
        run(cli_bench, NULL, "bench", "PhysicalDrive0", "--rw", "randread", "--bs", "1000", NULL),
        2);
    assert_int_equal(run(cli_bench, NULL, "bench", "PhysicalDrive0", "--qd", "0", NULL), 2);
    assert_int_equal(run(cli_bench, NULL, "bench", "PhysicalDrive0", "--bogus", NULL), 2);
    /* --prefill is an option like the others: bad values beside it are still refused */
    assert_int_equal(run(cli_bench, NULL, "bench", "PhysicalDrive0", "--rw", "randread",
                         "--prefill", "--qd", "0", NULL),
                     2);
    assert_int_equal(run(cli_bench, NULL, "bench", "PhysicalDrive0", "--prefill", "--rw",
                         "randread", "--bs", "1000", NULL),
                     2);
    assert_int_equal(
        run(cli_bench, NULL, "bench", "PhysicalDrive0", "--prefill=yes", "--rw", "randread", NULL),
        2);
    assert_int_equal(run(cli_scsi, NULL, "scsi", "PhysicalDrive0", "frobnicate", NULL), 2);
    assert_int_equal(run(cli_scsi, NULL, "scsi", "PhysicalDrive0", "raw", "zz", NULL), 2);
    assert_int_equal(
        run(cli_scsi, NULL, "scsi", "PhysicalDrive0", "inquiry", "--vpd", "0x100", NULL), 2);
    assert_int_equal(run(cli_tree, NULL, "tree", "extra", NULL), 2);
    char *out;
    assert_int_equal(run(cli_bench, &out, "bench", "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: storstack bench"));
    free(out);
}

static void test_verbs_against_a_running_server(void **state)
{
    struct served *s = *state;
    char *out;

    assert_int_equal(run(cli_tree, &out, "tree", "--server", s->path, NULL), 0);
    assert_non_null(strstr(out, "HTREE\\ROOT\\0"));
    free(out);
    assert_int_equal(run(cli_tree, &out, "tree", "--server", s->path, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"root\""));
    free(out);

    assert_int_equal(
        run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "inquiry", NULL), 0);
    assert_non_null(strstr(out, "Vendor identification: STORSTAK"));
    free(out);
    assert_int_equal(run(cli_scsi, &out, "scsi", "PhysicalDrive0", "inquiry", "--json", "--server",
                         s->path, NULL),
                     0);
    assert_non_null(strstr(out, "\"vendor\": \"STORSTAK\""));
    free(out);
    /* the double answers TEST UNIT READY with NOT READY: status 1 and the sense on stderr */
    assert_int_equal(
        run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "tur", "--json", NULL),
        1);
    assert_non_null(strstr(out, "\"sense_key_name\": \"Not Ready\""));
    free(out);
    assert_int_equal(run(cli_scsi, &out, "scsi", "--server", s->path, "PhysicalDrive0", "raw",
                         "12 00 00 00 24 00", "--in", "36", NULL),
                     0);
    assert_non_null(strstr(out, "Received 36 bytes"));
    free(out);

    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "write",
                         "--offset", "1M", "--length", "1536K", "--pattern", "random:5", "--chunk",
                         "64K", NULL),
                     0);
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "verify",
                         "--offset", "1M", "--length", "1536K", "--pattern", "random:5", NULL),
                     0);
    /* corrupt one byte: verify names its offset */
    ramstack_data(s->stack)[(1u << 20) + 70000] ^= 0xFF;
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "verify",
                         "--offset", "1M", "--length", "1536K", "--pattern", "random:5", NULL),
                     1);
    assert_int_equal(run(cli_io, NULL, "io", "--server", s->path, "PhysicalDrive0", "verify",
                         "--offset", "1M", "--length", "1536K", "--pattern", "random:6", NULL),
                     1);

    assert_int_equal(run(cli_bench, &out, "bench", "--server", s->path, "PhysicalDrive0", "--rw",
                         "randwrite", "--bs", "4K", "--qd", "16", "--threads", "2", "--seconds",
                         "1", "--size", "4M", "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"errors\": 0"));
    assert_non_null(strstr(out, "\"remote\": true"));
    free(out);
    assert_int_equal(run(cli_bench, &out, "bench", "--server", s->path, "PhysicalDrive0", "--rw",
                         "read", "--bs", "64K", "--qd", "4", "--seconds", "1", "--size", "4M",
                         NULL),
                     0);
    assert_non_null(strstr(out, "IOPS"));
    free(out);
    /* no such server: a runtime failure */
    assert_int_equal(run(cli_tree, NULL, "tree", "--server", "/nonexistent/x.sock", NULL), 1);
}

static void test_bench_prefill_writes_the_range_before_reading_it(void **state)
{
    struct served *s = *state;
    const uint8_t *data = ramstack_data(s->stack);
    size_t zeros = 0;
    char *out;

    /* the double starts all zeros; a read bench with --prefill leaves random bytes behind */
    assert_int_equal(run(cli_bench, &out, "bench", "--server", s->path, "PhysicalDrive0", "--rw",
                         "randread", "--qd", "4", "--seconds", "1", "--size", "3584K", "--prefill",
                         "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"prefill\": true"));
    assert_non_null(strstr(out, "\"errors\": 0"));
    free(out);
    for (size_t i = 0; i < (3584u << 10); i++)
        zeros += data[i] == 0;
    assert_true(zeros < (3584u << 10) / 128); /* random bytes: about 1 in 256 is zero */
    /* past --size nothing was written */
    for (size_t i = 3584u << 10; i < 4u << 20; i++)
        assert_int_equal(data[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_accept_binary_suffixes),
        cmocka_unit_test(test_sizes_reject_bad_values),
        cmocka_unit_test(test_patterns_are_reproducible_per_block),
        cmocka_unit_test(test_inquiry_standard_fields_decoded),
        cmocka_unit_test(test_vpd_pages_decoded),
        cmocka_unit_test(test_sense_fixed_and_descriptor_decoded),
        cmocka_unit_test(test_read_capacity_decoded),
        cmocka_unit_test(test_json_reader_and_tree_render),
        cmocka_unit_test(test_histogram_quantiles_within_bucket_width),
        cmocka_unit_test(test_verbs_reject_bad_arguments_with_status_2),
        cmocka_unit_test_setup_teardown(test_verbs_against_a_running_server, serve_setup,
                                        serve_teardown),
        cmocka_unit_test_setup_teardown(test_bench_prefill_writes_the_range_before_reading_it,
                                        serve_setup, serve_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
