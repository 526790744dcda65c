/*
 * `storstack cdrom DEVICE load IMAGE | eject | status | toc | speed N`: media handling for a
 * CD-ROM class device (CdRom0 ...), in this process or against a running server. load and
 * status are storstack's extension IOCTLs (IOCTL_STORSTACK_CDROM_LOAD_IMAGE, _GET_STATUS in
 * ntddcdrm.h); eject is IOCTL_STORAGE_EJECT_MEDIA, toc IOCTL_CDROM_READ_TOC_EX, speed
 * IOCTL_CDROM_SET_SPEED. An image path is made absolute here, since the server resolves it in
 * its own working directory.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>
#include <storstack/storage/ntddcdrm.h>

#include "tools/cli.h"

static void cdrom_usage(FILE *out)
{
    fputs("usage: storstack cdrom DEVICE load IMAGE | eject | status | toc | speed N\n"
          "  load IMAGE  put an ISO/UDF image or a .cue sheet in the drive (replaces the disc)\n"
          "  eject       open the tray (refused while medium removal is prevented)\n"
          "  status      the image, medium, lock, speed and media change count\n"
          "  toc         the table of contents: tracks, their type and start, the lead-out\n"
          "  speed N     read speed in kB/s, Nx (multiples of 176 kB/s), or max\n"
          "  --config FILE, --server PATH, --json   (see storstack --help)\n",
          out);
}

static int cdrom_status(storstack_handle_t *h, const char *device, int json)
{
    STORSTACK_CDROM_STATUS st;
    uint32_t got = 0;
    storstack_status_t s =
        storstack_ioctl(h, IOCTL_STORSTACK_CDROM_GET_STATUS, NULL, 0, &st, sizeof(st), &got);
    if (NT_ERROR(s) || got < sizeof(st))
        return cli_fail("cdrom", "%s: status: %s", device, storstack_status_name(s));
    st.Image[sizeof(st.Image) - 1] = '\0';
    st.Message[sizeof(st.Message) - 1] = '\0';
    if (json) {
        printf("{\"device\": ");
        cli_json_write_string(stdout, device);
        printf(", \"image\": ");
        cli_json_write_string(stdout, st.Image);
        printf(", \"loaded\": %s, \"tray_open\": %s, \"prevented\": %s, \"media\": \"%s\", "
               "\"sectors\": %u, \"tracks\": %u, \"read_speed_kbs\": %u, "
               "\"media_change_count\": %u, \"streaming_reads\": %llu, \"last_error\": ",
               st.Loaded ? "true" : "false", st.TrayOpen ? "true" : "false",
               st.Prevented ? "true" : "false",
               !st.Loaded || st.TrayOpen ? "none"
               : st.Dvd                  ? "dvd-rom"
                                         : "cd-rom",
               st.Sectors, st.Tracks, st.ReadSpeed, st.MediaChangeCount,
               (unsigned long long)st.StreamingReads);
        cli_json_write_string(stdout, st.Message);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("%s:\n", device);
    printf("  image        %s\n", st.Loaded ? st.Image : "(none)");
    printf("  medium       %s\n", !st.Loaded    ? "none"
                                  : st.TrayOpen ? "none (tray open)"
                                  : st.Dvd      ? "DVD-ROM"
                                                : "CD-ROM");
    if (st.Loaded && !st.TrayOpen)
        printf("  capacity     %u sectors of 2048 bytes, %u track%s\n", st.Sectors, st.Tracks,
               st.Tracks == 1 ? "" : "s");
    printf("  removal      %s\n", st.Prevented ? "prevented" : "allowed");
    if (st.ReadSpeed)
        printf("  read speed   %u kB/s\n", st.ReadSpeed);
    else
        printf("  read speed   maximum\n");
    printf("  changes      %u\n", st.MediaChangeCount);
    printf("  streaming    %llu reads\n", (unsigned long long)st.StreamingReads);
    if (st.Message[0])
        printf("  last error   %s\n", st.Message);
    return CLI_EXIT_OK;
}

static int cdrom_toc(storstack_handle_t *h, const char *device, int json)
{
    CDROM_READ_TOC_EX in;
    CDROM_TOC toc;
    uint32_t got = 0;
    memset(&in, 0, sizeof(in));
    in.Format = CDROM_READ_TOC_EX_FORMAT_TOC;
    storstack_status_t s =
        storstack_ioctl(h, IOCTL_CDROM_READ_TOC_EX, &in, sizeof(in), &toc, sizeof(toc), &got);
    if (NT_ERROR(s))
        return cli_fail("cdrom", "%s: toc: %s", device, storstack_status_name(s));
    if (got < 4)
        return cli_fail("cdrom", "%s: toc: %u bytes is not a TOC", device, got);
    uint32_t len = (uint32_t)(toc.Length[0] << 8 | toc.Length[1]) + 2;
    uint32_t n = ((len < got ? len : got) - 4) / sizeof(TRACK_DATA);
    if (json) {
        printf("{\"device\": ");
        cli_json_write_string(stdout, device);
        printf(", \"first_track\": %u, \"last_track\": %u, \"tracks\": [", toc.FirstTrack,
               toc.LastTrack);
    } else {
        printf("%s: tracks %u..%u\n", device, toc.FirstTrack, toc.LastTrack);
        printf("  track  type   start LBA  MSF\n");
    }
    for (uint32_t i = 0; i < n; i++) {
        const TRACK_DATA *t = &toc.TrackData[i];
        uint32_t lba = (uint32_t)t->Address[0] << 24 | (uint32_t)t->Address[1] << 16 |
                       (uint32_t)t->Address[2] << 8 | t->Address[3];
        uint32_t f = lba + 150;
        const char *type = (t->Control & 0x4) ? "data" : "audio";
        if (json) {
            printf("%s{\"track\": %u, \"type\": \"%s\", \"lba\": %u}", i ? ", " : "",
                   t->TrackNumber, t->TrackNumber == 0xAA ? "leadout" : type, lba);
        } else if (t->TrackNumber == 0xAA) {
            printf("  lead-out      %9u  %02u:%02u:%02u\n", lba, f / 4500, f / 75 % 60, f % 75);
        } else {
            printf("  %5u  %-5s %10u  %02u:%02u:%02u\n", t->TrackNumber, type, lba, f / 4500,
                   f / 75 % 60, f % 75);
        }
    }
    if (json)
        printf("]}\n");
    return CLI_EXIT_OK;
}

int cli_cdrom(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"server", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            cdrom_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (!cli_common_option(c, optarg, &common))
            return cli_usage_error("cdrom", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (argc - optind < 2)
        return cli_usage_error("cdrom", argc - optind < 1 ? "missing DEVICE" : "missing COMMAND");
    const char *device = argv[optind], *command = argv[optind + 1];
    int nargs = argc - optind - 2;
    char **args = argv + optind + 2;
    STORSTACK_CDROM_LOAD_IMAGE load;
    CDROM_SET_SPEED speed;
    int want_args = !strcmp(command, "load") || !strcmp(command, "speed") ? 1 : 0;

    if (strcmp(command, "load") && strcmp(command, "eject") && strcmp(command, "status") &&
        strcmp(command, "toc") && strcmp(command, "speed"))
        return cli_usage_error("cdrom", "unknown command '%s' (load, eject, status, toc, speed)",
                               command);
    if (nargs != want_args)
        return cli_usage_error(
            "cdrom", nargs < want_args ? "%s: missing argument" : "%s: unexpected argument",
            command);
    memset(&load, 0, sizeof(load));
    memset(&speed, 0, sizeof(speed));
    if (!strcmp(command, "load")) {
        char abs[PATH_MAX];
        const char *path = args[0];
        /* the server resolves relative paths in its own directory: send an absolute one */
        if (path[0] != '/' && realpath(path, abs))
            path = abs;
        if (!path[0] || strlen(path) >= sizeof(load.Path))
            return cli_usage_error("cdrom", "IMAGE: a path of 1..%zu bytes", sizeof(load.Path) - 1);
        memcpy(load.Path, path, strlen(path) + 1);
    } else if (!strcmp(command, "speed")) {
        uint64_t v;
        size_t n = strlen(args[0]);
        speed.RequestType = CdromSetSpeed;
        speed.WriteSpeed = 0xFFFF;
        if (!strcmp(args[0], "max")) {
            speed.ReadSpeed = 0xFFFF;
        } else if (n > 1 && (args[0][n - 1] == 'x' || args[0][n - 1] == 'X')) {
            char num[32];
            if (n - 1 >= sizeof(num))
                return cli_usage_error("cdrom", "speed: '%s' is not a speed", args[0]);
            memcpy(num, args[0], n - 1);
            num[n - 1] = '\0';
            if (cli_parse_uint(num, 1, 372, &v))
                return cli_usage_error("cdrom", "speed: '%s' is not 1x..372x", args[0]);
            speed.ReadSpeed = (uint16_t)(v * 176);
        } else {
            if (cli_parse_uint(args[0], 1, 0xFFFE, &v))
                return cli_usage_error("cdrom", "speed: '%s' is not 1..65534 kB/s, Nx or max",
                                       args[0]);
            speed.ReadSpeed = (uint16_t)v;
        }
    }

    storstack_t *stack = cli_open_stack("cdrom", &common);
    if (!stack)
        return CLI_EXIT_FAILURE;
    uint32_t access = STORSTACK_GENERIC_READ;
    if (!strcmp(command, "load"))
        access |= STORSTACK_GENERIC_WRITE;
    storstack_handle_t *h = NULL;
    storstack_status_t s = storstack_open(stack, device, access, &h);
    if (NT_ERROR(s)) {
        storstack_destroy(stack);
        return cli_fail("cdrom", "%s: open: %s", device, storstack_status_name(s));
    }
    int rc = CLI_EXIT_OK;
    uint32_t got = 0;
    if (!strcmp(command, "status")) {
        rc = cdrom_status(h, device, common.json);
    } else if (!strcmp(command, "toc")) {
        rc = cdrom_toc(h, device, common.json);
    } else if (!strcmp(command, "load")) {
        s = storstack_ioctl(h, IOCTL_STORSTACK_CDROM_LOAD_IMAGE, &load,
                            (uint32_t)strlen(load.Path) + 1, NULL, 0, &got);
        if (NT_ERROR(s)) {
            STORSTACK_CDROM_STATUS st;
            memset(&st, 0, sizeof(st));
            storstack_ioctl(h, IOCTL_STORSTACK_CDROM_GET_STATUS, NULL, 0, &st, sizeof(st), &got);
            st.Message[sizeof(st.Message) - 1] = '\0';
            rc = cli_fail("cdrom", "%s: load %s: %s%s%s", device, load.Path,
                          storstack_status_name(s), st.Message[0] ? ": " : "", st.Message);
        } else if (!common.json) {
            printf("%s: loaded %s\n", device, load.Path);
        }
    } else if (!strcmp(command, "eject")) {
        s = storstack_ioctl(h, IOCTL_STORAGE_EJECT_MEDIA, NULL, 0, NULL, 0, &got);
        if (NT_ERROR(s) || s == STATUS_DEVICE_BUSY)
            rc = cli_fail("cdrom", "%s: eject: %s%s", device, storstack_status_name(s),
                          s == STATUS_DEVICE_BUSY ? " (medium removal is prevented)" : "");
        else if (!common.json)
            printf("%s: ejected\n", device);
    } else {
        s = storstack_ioctl(h, IOCTL_CDROM_SET_SPEED, &speed, sizeof(speed), NULL, 0, &got);
        if (NT_ERROR(s))
            rc = cli_fail("cdrom", "%s: speed: %s", device, storstack_status_name(s));
        else if (!common.json)
            printf("%s: read speed set to %s\n", device,
                   speed.ReadSpeed == 0xFFFF ? "maximum" : args[0]);
    }
    storstack_close(h);
    storstack_destroy(stack);
    return rc;
}
