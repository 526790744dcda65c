/*
 * `storstack serve`: boots a stack in this process (storstack_create), serves it on the
 * management socket (api/server.c) and runs until SIGINT or SIGTERM, which the main thread takes
 * with sigwait (both are blocked before any thread starts, so every thread inherits the mask and
 * none is interrupted). Then it stops the server, which waits for requests in flight, and
 * destroys the stack, which flushes and removes its devices. The socket is --socket PATH, else
 * the registry value ManagementSocket under Control\Storstack, else the per-user default.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

#include "api/server.h"
#include "tools/cli.h"

static void serve_usage(FILE *out)
{
    fputs(
        "usage: storstack serve [--config FILE] [--socket PATH]\n"
        "  Boots a stack (from FILE, or the built-in default: a 1 GiB RAM disk), prints its\n"
        "  device tree and serves it on the management socket until SIGINT/SIGTERM.\n"
        "  --socket PATH   default: registry Control\\Storstack\\ManagementSocket, else\n"
        "                  /run/storstack/storstack.sock (root) or\n"
        "                  $XDG_RUNTIME_DIR/storstack.sock or /tmp/storstack-$UID/storstack.sock\n",
        out);
}

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *socket = NULL;
    char path[512], err[512];
    struct storstack_server *server = NULL;
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
        case 'h':
            serve_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("serve", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);

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

    char *json = NULL;
    if (storstack_get_tree(stack, &json) == STATUS_SUCCESS &&
        cli_tree_render(json, stdout, err, sizeof(err)))
        fprintf(stderr, "storstack serve: cannot show the device tree: %s\n", err);
    free(json);
    printf("storstack: serving on %s\n", path);
    fflush(stdout);

    sigwait(&set, &sig);
    fprintf(stderr, "storstack: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    storstack_server_stop(server);
    storstack_destroy(stack);
    return CLI_EXIT_OK;
}
