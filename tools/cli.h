/*
 * The storstack command's internals, shared by its verbs (one file per verb) and by the unit
 * tests: argument helpers (args.c), the small JSON reader/writer for our own tree format
 * (json.c), the SCSI decoders (scsi_decode.c), the I/O patterns (io.c) and the latency histogram
 * (bench.c). Each verb is `int cli_<verb>(int argc, char **argv)` returning the exit status:
 * CLI_EXIT_OK, CLI_EXIT_FAILURE (a runtime failure) or CLI_EXIT_USAGE (a bad argument, reported
 * in one line on stderr naming the argument).
 */
#ifndef STORSTACK_TOOLS_CLI_H
#define STORSTACK_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <storstack/storstack.h>

#define CLI_EXIT_OK      0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE   2

/* ---- args.c ---- */

/* "4096", "4K", "1.5M" (no: integers only), "2G", "1T": binary suffixes K/M/G/T (also KiB...). */
int cli_parse_size(const char *text, uint64_t *out);
/* Decimal or 0x-hex unsigned integer in [min, max]. */
int cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);
/* Prints "storstack VERB: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "storstack VERB: MESSAGE" on stderr; returns CLI_EXIT_FAILURE. */
int cli_fail(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The default management socket: root /run/storstack/storstack.sock, else per user. */
void cli_default_socket(char *out, size_t outlen);

struct cli_common {
    const char *config; /* --config FILE */
    const char *server; /* --server PATH */
    int json;           /* --json */
};

/*
 * The stack a client verb acts on: --server PATH (must answer); else, without --config, a server
 * listening on the default socket; else a stack booted in this process from --config or the
 * built-in default. Returns NULL after printing the reason.
 */
storstack_t *cli_open_stack(const char *verb, const struct cli_common *common);
/* The options every client verb shares (-c/--config, -s/--server, -j/--json): 1 when opt was one
 * of them and is now in common, 0 otherwise. */
int cli_common_option(int opt, const char *arg, struct cli_common *common);

/* ---- json.c: a minimal reader for our own tree format, and string escaping for writers ---- */

enum cli_json_type {
    CLI_JSON_NULL,
    CLI_JSON_BOOL,
    CLI_JSON_NUMBER,
    CLI_JSON_STRING,
    CLI_JSON_ARRAY,
    CLI_JSON_OBJECT
};

struct cli_json {
    enum cli_json_type type;
    char *key;    /* member name when inside an object */
    char *string; /* STRING (unescaped, UTF-8) */
    double number;
    int boolean;
    struct cli_json *child; /* first element / member */
    struct cli_json *next;  /* next sibling */
};

/* Parses text; NULL and a reason (with the byte offset) on error. Free with cli_json_free. */
struct cli_json *cli_json_parse(const char *text, char *err, size_t errlen);
void cli_json_free(struct cli_json *value);
/* Member of an object by name, or NULL. */
const struct cli_json *cli_json_get(const struct cli_json *object, const char *key);
/* String member's text, or fallback. */
const char *cli_json_str(const struct cli_json *object, const char *key, const char *fallback);
/* Writes s as a JSON string literal (quoted, escaped). */
void cli_json_write_string(FILE *out, const char *s);
void cli_json_write_bytes(FILE *out, const uint8_t *s, size_t len); /* as a JSON string */

/* ---- tree.c ---- */

/* Renders the tree JSON (storstack_get_tree's schema) as an indented text tree. */
int cli_tree_render(const char *json, FILE *out, char *err, size_t errlen);

/* ---- scsi_decode.c ---- */

const char *cli_sense_key_name(uint8_t key);
/* "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED", or NULL when not in the table. */
const char *cli_asc_name(uint8_t asc, uint8_t ascq);
const char *cli_peripheral_type_name(uint8_t type);
const char *cli_scsi_status_name(uint8_t status);

struct cli_sense {
    int valid;
    int descriptor; /* descriptor format (0x72/0x73) rather than fixed (0x70/0x71) */
    int deferred;
    uint8_t key, asc, ascq;
    int info_valid;
    uint64_t info;
    int sks_valid; /* sense-key specific */
    uint8_t sks[3];
};

/* Parses fixed or descriptor sense (SPC-5 4.4). */
int cli_sense_parse(const uint8_t *sense, size_t len, struct cli_sense *out);
void cli_sense_print(const uint8_t *sense, size_t len, FILE *out);
void cli_sense_print_json(const uint8_t *sense, size_t len, FILE *out);

void cli_inquiry_print(const uint8_t *data, size_t len, FILE *out);
void cli_inquiry_print_json(const uint8_t *data, size_t len, FILE *out);
/* A VPD page (data starts with its 4-byte header); unknown pages are hex dumped. */
void cli_vpd_print(const uint8_t *data, size_t len, FILE *out);
void cli_vpd_print_json(const uint8_t *data, size_t len, FILE *out);
void cli_readcap10_print(const uint8_t *data, size_t len, int json, FILE *out);
void cli_readcap16_print(const uint8_t *data, size_t len, int json, FILE *out);
void cli_hexdump(const uint8_t *data, size_t len, FILE *out);

/* ---- io.c ---- */

enum cli_pattern_kind { CLI_PATTERN_BYTE, CLI_PATTERN_LBA, CLI_PATTERN_RANDOM };

struct cli_pattern {
    enum cli_pattern_kind kind;
    uint8_t byte;
    uint64_t seed;
};

/* "0xAA", "170", "lba", "lba:SEED", "random:SEED". */
int cli_pattern_parse(const char *text, struct cli_pattern *out);
/* Fills buf with the pattern's bytes for [offset, offset+len); offset and len multiples of 512. */
void cli_pattern_fill(const struct cli_pattern *p, uint64_t offset, uint8_t *buf, size_t len);

/* ---- bench.c: log-linear latency histogram (no allocation per sample) ---- */

#define CLI_HIST_SUB     64 /* linear buckets per power of two */
#define CLI_HIST_BUCKETS (64 * CLI_HIST_SUB)

struct cli_hist {
    uint64_t count;
    uint64_t buckets[CLI_HIST_BUCKETS];
};

void cli_hist_add(struct cli_hist *h, uint64_t ns);
void cli_hist_merge(struct cli_hist *into, const struct cli_hist *from);
/* The value at quantile q (0..1): the upper edge of the bucket holding it. */
uint64_t cli_hist_quantile(const struct cli_hist *h, double q);

/* ---- the verbs ---- */

int cli_serve(int argc, char **argv);
int cli_tree(int argc, char **argv);
int cli_scsi(int argc, char **argv);
int cli_io(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_events(int argc, char **argv);
int cli_cdrom(int argc, char **argv);

#endif
