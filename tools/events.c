/*
 * `storstack events`: shows an adapter's Storport event log (storevents.h) — miniport
 * StorPortLogError entries and Storport's timeouts, aborts, resets, restarts, state changes and
 * verifier findings — read with IOCTL_STORSTACK_GET_EVENTS on the adapter (Scsi<N>:), locally or
 * over the management socket. --follow keeps polling and prints new events as they come.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>

#include "tools/cli.h"

#define EVENTS_BATCH 64u

static volatile sig_atomic_t events_stop;

static void events_on_signal(int sig)
{
    (void)sig;
    events_stop = 1;
}

static const char *events_code_name(uint32_t code)
{
    static const struct {
        uint32_t code;
        const char *name;
    } names[] = {
        {SP_BUS_PARITY_ERROR, "BUS_PARITY_ERROR"},
        {SP_UNEXPECTED_DISCONNECT, "UNEXPECTED_DISCONNECT"},
        {SP_INVALID_RESELECTION, "INVALID_RESELECTION"},
        {SP_BUS_TIME_OUT, "BUS_TIME_OUT"},
        {SP_PROTOCOL_ERROR, "PROTOCOL_ERROR"},
        {SP_INTERNAL_ADAPTER_ERROR, "INTERNAL_ADAPTER_ERROR"},
        {SP_REQUEST_TIMEOUT, "REQUEST_TIMEOUT"},
        {SP_IRQ_NOT_RESPONDING, "IRQ_NOT_RESPONDING"},
        {SP_BAD_FW_WARNING, "BAD_FW_WARNING"},
        {SP_BAD_FW_ERROR, "BAD_FW_ERROR"},
        {SP_LOST_WMI_MINIPORT_REQUEST, "LOST_WMI_MINIPORT_REQUEST"},
        {STORP_EVENT_ABORT, "ABORT"},
        {STORP_EVENT_LUN_RESET, "LUN_RESET"},
        {STORP_EVENT_TARGET_RESET, "TARGET_RESET"},
        {STORP_EVENT_BUS_RESET, "BUS_RESET"},
        {STORP_EVENT_ADAPTER_RESTART, "ADAPTER_RESTART"},
        {STORP_EVENT_RECOVERY_FAILED, "RECOVERY_FAILED"},
        {STORP_EVENT_STATE_CHANGE, "STATE_CHANGE"},
        {STORP_EVENT_POWER, "POWER"},
        {STORP_EVENT_VERIFIER, "VERIFIER"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].code == code)
            return names[i].name;
    return "EVENT";
}

/* One line per event; the address parts that are 0xFF (not one) print as '*'. */
static void cli_events_print(FILE *out, const char *adapter, const STORSTACK_EVENT *e)
{
    char when[32], addr[16], part[3][4];
    time_t secs = (time_t)(e->TimeStamp / 10000000ull);
    struct tm tm;
    const UCHAR a[3] = {e->PathId, e->TargetId, e->Lun};

    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    for (int i = 0; i < 3; i++)
        snprintf(part[i], sizeof(part[i]), a[i] == 0xFF ? "*" : "%u", a[i]);
    snprintf(addr, sizeof(addr), "%s:%s:%s", part[0], part[1], part[2]);
    fprintf(out, "#%llu %s.%03uZ %s %s %s %s(0x%04X) unique 0x%X", (unsigned long long)e->Sequence,
            when, (unsigned)((e->TimeStamp / 10000u) % 1000u), adapter, addr, e->Source,
            events_code_name(e->ErrorCode), e->ErrorCode, e->UniqueId);
    if (e->HasSrb) {
        fprintf(out, " srb function 0x%02X status 0x%02X scsi 0x%02X", e->Function, e->SrbStatus,
                e->ScsiStatus);
        if (e->CdbLength) {
            fputs(" cdb", out);
            for (unsigned i = 0; i < e->CdbLength && i < sizeof(e->Cdb); i++)
                fprintf(out, "%s%02X", i ? "" : " ", e->Cdb[i]);
        }
    }
    if (e->HasSense)
        fprintf(out, " sense %X/%02X/%02X", e->SenseKey, e->Asc, e->Ascq);
    if (e->Text[0])
        fprintf(out, ": %.*s", (int)sizeof(e->Text), e->Text);
    fputc('\n', out);
}

static void events_usage(FILE *out)
{
    fputs("usage: storstack events [--adapter NAME] [--after N] [--follow] [--config FILE]\n"
          "                        [--server PATH]\n"
          "  Prints an adapter's Storport event log: StorPortLogError entries, request timeouts,\n"
          "  aborts, LUN/target/bus resets, adapter restarts, device state changes, verifier\n"
          "  findings; one line each: #sequence time adapter path:target:lun source code unique\n"
          "  [srb status, CDB] [sense key/ASC/ASCQ]: text.\n"
          "  --adapter NAME  the adapter's name (default Scsi0:)\n"
          "  --after N       only events after sequence number N\n"
          "  --follow        keep printing new events until interrupted\n",
          out);
}

int cli_events(int argc, char **argv)
{
    static const struct option opts[] = {{"adapter", required_argument, NULL, 'a'},
                                         {"after", required_argument, NULL, 'n'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"server", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    const char *adapter = "Scsi0:";
    uint64_t after = 0;
    int follow = 0, c, rc = CLI_EXIT_OK;
    size_t len = sizeof(STORSTACK_EVENTS) + EVENTS_BATCH * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS out;
    storstack_t *stack;
    storstack_handle_t *h = NULL;
    storstack_status_t st;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            events_usage(stdout);
            return CLI_EXIT_OK;
        case 'a':
            adapter = optarg;
            break;
        case 'n':
            if (cli_parse_uint(optarg, 0, UINT64_MAX, &after))
                return cli_usage_error("events", "--after wants a sequence number, not '%s'",
                                       optarg);
            break;
        case 'f':
            follow = 1;
            break;
        default:
            if (cli_common_option(c, optarg, &common))
                break;
            return cli_usage_error("events", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("events", "unexpected argument '%s'", argv[optind]);
    out = malloc(len);
    if (!out)
        return cli_fail("events", "out of memory");
    stack = cli_open_stack("events", &common);
    if (!stack) {
        free(out);
        return CLI_EXIT_FAILURE;
    }
    st = storstack_open(stack, adapter, STORSTACK_GENERIC_READ, &h);
    if (st != 0) {
        rc = cli_fail("events", "cannot open %s: %s", adapter, storstack_status_name(st));
        goto done;
    }
    if (follow) {
        signal(SIGINT, events_on_signal);
        signal(SIGTERM, events_on_signal);
    }
    while (!events_stop) {
        STORSTACK_GET_EVENTS in = {.AfterSequence = after};
        uint32_t returned = 0;
        st = storstack_ioctl(h, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), out, (uint32_t)len,
                             &returned);
        if (st != 0) {
            rc = cli_fail("events", "cannot read the event log of %s: %s", adapter,
                          storstack_status_name(st));
            break;
        }
        if (returned < sizeof(STORSTACK_EVENTS) ||
            out->Count > (returned - sizeof(STORSTACK_EVENTS)) / sizeof(STORSTACK_EVENT)) {
            rc = cli_fail("events", "the event log answer of %s is malformed", adapter);
            break;
        }
        if (out->Lost)
            printf("(%u older events were overwritten)\n", out->Lost);
        for (uint32_t i = 0; i < out->Count; i++) {
            cli_events_print(stdout, adapter, &out->Events[i]);
            after = out->Events[i].Sequence;
        }
        fflush(stdout);
        if (out->Count == EVENTS_BATCH)
            continue; /* more are waiting */
        if (!follow)
            break;
        usleep(200000);
    }
done:
    if (h)
        storstack_close(h);
    storstack_destroy(stack);
    free(out);
    return rc;
}
