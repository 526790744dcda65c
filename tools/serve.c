/*
 * `storstack serve`: boots a stack in this process (storstack_create), serves it on the
 * management socket (api/server.c) and runs until SIGINT or SIGTERM, which the main thread takes
 * with sigwait (both are blocked before any thread starts, so every thread inherits the mask and
 * none is interrupted). Then it stops the server, which waits for requests in flight, and
 * destroys the stack, which flushes and removes its devices. The socket is --socket PATH, else
 * the registry value ManagementSocket under Control\Storstack, else the per-user default.
 * It also starts the iSCSI target (frontends/iscsi) with the targets, LUN maps and CHAP settings
 * of the registry (Control\Storstack\iSCSI\Target<n>; none: one target exporting PhysicalDrive0
 * as LUN 0) on --iscsi-portal ADDR:PORT, else the registry value Portal under
 * Control\Storstack\iSCSI, else 127.0.0.1:3260; --no-iscsi leaves it off. A bad iSCSI setting
 * in the registry is an error. A portal that was asked for and cannot be bound is an
 * error; the default one only warns (another serve may hold it), and the stack is served anyway.
 * The target stops before the stack is destroyed.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

#include "api/server.h"
#include "frontends/iscsi/iscsi.h"
#include "tools/cli.h"

static void serve_usage(FILE *out)
{
    fputs(
        "usage: storstack serve [--config FILE] [--socket PATH] [--iscsi-portal ADDR:PORT |\n"
        "                       --no-iscsi]\n"
        "  Boots a stack (from FILE, or the built-in default: a 1 GiB RAM disk), prints its\n"
        "  device tree and serves it on the management socket until SIGINT/SIGTERM.\n"
        "  --socket PATH   default: registry Control\\Storstack\\ManagementSocket, else\n"
        "                  /run/storstack/storstack.sock (root) or\n"
        "                  $XDG_RUNTIME_DIR/storstack.sock or /tmp/storstack-$UID/storstack.sock\n"
        "  --iscsi-portal ADDR:PORT  the iSCSI target's portal (port 0: any free port); default:\n"
        "                  registry Control\\Storstack\\iSCSI\\Portal, else 127.0.0.1:3260\n"
        "  --no-iscsi      do not start the iSCSI target\n",
        out);
}

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"iscsi-portal", required_argument, NULL, 'P'},
                                         {"no-iscsi", no_argument, NULL, 'N'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *socket = NULL, *portal_arg = NULL;
    char path[512], err[512], portal[128];
    struct storstack_server *server = NULL;
    struct iscsi_target *iscsi = NULL;
    bool no_iscsi = false, portal_asked = true;
    storstack_t *stack;
    sigset_t set;
    int c, sig = 0;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'S':
            socket = optarg;
            if (!*socket)
                return cli_usage_error("serve", "--socket: empty path");
            break;
        case 'P':
            portal_arg = optarg;
            if (!*portal_arg)
                return cli_usage_error("serve", "--iscsi-portal: empty address");
            break;
        case 'N':
            no_iscsi = true;
            break;
        case 'h':
            serve_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("serve", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (no_iscsi && portal_arg)
        return cli_usage_error("serve", "--iscsi-portal and --no-iscsi exclude each other");

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    stack = storstack_create(config, err, sizeof(err));
    if (!stack)
        return cli_fail("serve", "cannot boot a stack%s%s: %s", config ? " from " : "",
                        config ? config : "", err);
    if (socket)
        snprintf(path, sizeof(path), "%s", socket);
    else if (storstack_reg_get_string(stack, "Control\\Storstack", "ManagementSocket", path,
                                      sizeof(path)) != STATUS_SUCCESS ||
             !*path)
        cli_default_socket(path, sizeof(path));

    if (storstack_server_start(stack, path, &server, err, sizeof(err))) {
        storstack_destroy(stack);
        return cli_fail("serve", "%s", err);
    }

    static struct iscsi_target_config icfg; /* 50 KiB: not on the stack */
    if (!no_iscsi) {
        iscsi_config_default(&icfg);
        if (iscsi_config_from_registry(stack, &icfg, portal, sizeof(portal), err, sizeof(err))) {
            storstack_server_stop(server);
            storstack_destroy(stack);
            return cli_fail("serve", "%s", err);
        }
        if (portal_arg) {
            snprintf(portal, sizeof(portal), "%s", portal_arg);
            icfg.portal = portal;
        } else if (!icfg.portal) {
            snprintf(portal, sizeof(portal), "%s", ISCSI_DEFAULT_PORTAL);
            icfg.portal = portal;
            portal_asked = false;
        }
        if (iscsi_target_start(stack, &icfg, &iscsi, err, sizeof(err))) {
            if (portal_asked) {
                storstack_server_stop(server);
                storstack_destroy(stack);
                return cli_fail("serve", "%s", err);
            }
            fprintf(stderr, "storstack serve: iSCSI target not started: %s\n", err);
        }
    }

    char *json = NULL;
    if (storstack_get_tree(stack, &json) == STATUS_SUCCESS &&
        cli_tree_render(json, stdout, err, sizeof(err)))
        fprintf(stderr, "storstack serve: cannot show the device tree: %s\n", err);
    free(json);
    if (iscsi) {
        /* one "iSCSI target NAME on ADDR" line (scripts read the portal from it), then the rest */
        printf("storstack: iSCSI target %s on %s\n", iscsi_target_name(iscsi, 0),
               iscsi_target_address(iscsi));
        for (unsigned i = 1; iscsi_target_name(iscsi, i); i++)
            printf("storstack: iSCSI also serves %s\n", iscsi_target_name(iscsi, i));
    }
    printf("storstack: serving on %s\n", path);
    fflush(stdout);

    sigwait(&set, &sig);
    fprintf(stderr, "storstack: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    iscsi_target_stop(iscsi);
    storstack_server_stop(server);
    storstack_destroy(stack);
    return CLI_EXIT_OK;
}
