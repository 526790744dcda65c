/*
 * The storstack command: dispatches the verb (serve, tree, scsi, io, bench) to its file. Exit
 * status: 0 success, 1 runtime failure, 2 bad arguments.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} verbs[] = {
    {"serve", cli_serve, "boot a stack and serve it on the management socket"},
    {"tree", cli_tree, "print the PnP device tree and device stacks"},
    {"scsi", cli_scsi, "send SCSI commands (inquiry, readcap, tur, raw) by pass-through"},
    {"io", cli_io, "write, read or verify a byte range with a pattern or a file"},
    {"bench", cli_bench, "measure IOPS, bandwidth and latency at a queue depth"},
    {"events", cli_events, "show (and follow) an adapter's Storport event log"},
    {"cdrom", cli_cdrom, "load, eject, status, toc and speed of a CD-ROM drive"},
};

static void usage(FILE *out)
{
    fputs("usage: storstack VERB [options]    (storstack VERB --help for each)\n", out);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(out, "  %-7s %s\n", verbs[i].name, verbs[i].summary);
    fputs("Common options:\n"
          "  --config FILE   boot a stack in this process from a registry INI file\n"
          "  --server PATH   talk to the storstack serve listening on PATH\n"
          "Without either, tree/scsi/io/bench use the server on the default socket if one\n"
          "listens there, else boot the built-in default stack in this process.\n"
          "Exit status: 0 ok, 1 failure, 2 bad arguments.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr), CLI_EXIT_USAGE;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].run(argc - 1, argv + 1);
    return cli_usage_error(NULL, "unknown verb '%s' (try storstack --help)", argv[1]);
}
