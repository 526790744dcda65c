/*
 * sessions: opens N logged-in iSCSI sessions (one connection each, a distinct initiator name
 * each, so the target cannot take one for the reinstatement of another) to one target and holds
 * them idle, answering the target's NOP-In pings, until its standard input closes or it gets
 * SIGINT/SIGTERM; then logs every session out. bench/memory.sh measures the target's resident
 * memory before and after, and divides the growth by N. Prints "ready N" on standard output
 * once all N are logged in. Not part of the CMake build: bench/run.sh compiles it against
 * libiscsi.
 *
 * Usage: sessions --portal ADDR:PORT --target IQN --count N [--lun L]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <iscsi/iscsi.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SESSIONS 1000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > MAX_SESSIONS)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sessions --portal ADDR:PORT --target IQN --count N [--lun L]\n"
            "  N from 1 to %d\n",
            MAX_SESSIONS);
}

int main(int argc, char **argv)
{
    const char *portal = NULL, *target = NULL;
    long count = 0, lun = 0;

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "sessions: option '%s' needs a value\n", argv[i]);
            usage();
            return 2;
        }
        if (!strcmp(argv[i], "--portal"))
            portal = argv[++i];
        else if (!strcmp(argv[i], "--target"))
            target = argv[++i];
        else if (!strcmp(argv[i], "--count")) {
            if (parse_count(argv[++i], &count)) {
                fprintf(stderr, "sessions: bad --count '%s'\n", argv[i]);
                usage();
                return 2;
            }
        } else if (!strcmp(argv[i], "--lun")) {
            char *end;
            errno = 0;
            lun = strtol(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end || lun < 0 || lun > 255) {
                fprintf(stderr, "sessions: bad --lun '%s' (0..255)\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "sessions: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (!portal || !target || !count) {
        usage();
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct iscsi_context **ctx = calloc((size_t)count, sizeof(*ctx));
    struct pollfd *pfd = calloc((size_t)count + 1, sizeof(*pfd));
    if (!ctx || !pfd) {
        fprintf(stderr, "sessions: out of memory\n");
        return 1;
    }
    int rc = 0;
    long opened = 0;
    for (; opened < count && !stop; opened++) {
        char name[128];
        snprintf(name, sizeof(name), "iqn.2026-11.org.storstack:bench-session-%ld-%ld",
                 (long)getpid(), opened);
        struct iscsi_context *c = iscsi_create_context(name);
        if (!c) {
            fprintf(stderr, "sessions: cannot create context %ld\n", opened);
            rc = 1;
            break;
        }
        if (iscsi_set_targetname(c, target) || iscsi_set_session_type(c, ISCSI_SESSION_NORMAL) ||
            iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE) ||
            iscsi_full_connect_sync(c, portal, (int)lun)) {
            fprintf(stderr, "sessions: session %ld to %s %s: %s\n", opened, portal, target,
                    iscsi_get_error(c));
            iscsi_destroy_context(c);
            rc = 1;
            break;
        }
        ctx[opened] = c;
    }
    if (!rc && !stop) {
        printf("ready %ld\n", opened);
        fflush(stdout);
    }

    /* hold them: answer pings until stdin closes or a signal */
    while (!rc && !stop) {
        pfd[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        for (long i = 0; i < opened; i++)
            pfd[i + 1] = (struct pollfd){.fd = iscsi_get_fd(ctx[i]),
                                         .events = (short)iscsi_which_events(ctx[i])};
        int n = poll(pfd, (nfds_t)opened + 1, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("sessions: poll");
            rc = 1;
            break;
        }
        if (pfd[0].revents) {
            char buf[64];
            if (read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
                break;
        }
        for (long i = 0; i < opened; i++) {
            if (iscsi_service(ctx[i], pfd[i + 1].revents) < 0) {
                fprintf(stderr, "sessions: session %ld lost: %s\n", i, iscsi_get_error(ctx[i]));
                rc = 1;
                break;
            }
        }
    }
    for (long i = 0; i < opened; i++) {
        iscsi_logout_sync(ctx[i]);
        iscsi_destroy_context(ctx[i]);
    }
    free(ctx);
    free(pfd);
    return rc;
}
