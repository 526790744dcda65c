/*
 * Argument helpers of the storstack command: sizes with binary suffixes, bounded integers, the
 * one-line error convention (exit 2 for a bad argument, 1 for a runtime failure), the default
 * management socket path, and choosing the stack a verb acts on (a running server or a stack
 * booted in this process).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli.h"

int cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoull(text, &end, 0);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cli_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } suffixes[] = {
        {"", 0},     {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
        {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
    };
    char *end;
    unsigned long long v;

    if (!text || *text < '0' || *text > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcasecmp(end, suffixes[i].suffix))
            continue;
        if (suffixes[i].shift && v > (UINT64_MAX >> suffixes[i].shift))
            return -ERANGE;
        *out = (uint64_t)v << suffixes[i].shift;
        return 0;
    }
    return -EINVAL;
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "storstack%s%s: ", verb ? " " : "", verb ? verb : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "storstack%s%s: ", verb ? " " : "", verb ? verb : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

void cli_default_socket(char *out, size_t outlen)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(out, outlen, "/run/storstack/storstack.sock");
    else if (xdg && *xdg == '/')
        snprintf(out, outlen, "%s/storstack.sock", xdg);
    else
        snprintf(out, outlen, "/tmp/storstack-%u/storstack.sock", (unsigned)geteuid());
}

storstack_t *cli_open_stack(const char *verb, const struct cli_common *common)
{
    char err[512], path[256];
    storstack_t *stack;
    struct stat st;

    if (common->server) {
        stack = storstack_connect(common->server, err, sizeof(err));
        if (!stack)
            cli_fail(verb, "%s", err);
        return stack;
    }
    if (!common->config) {
        cli_default_socket(path, sizeof(path));
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            stack = storstack_connect(path, err, sizeof(err));
            if (stack)
                return stack;
        }
    }
    stack = storstack_create(common->config, err, sizeof(err));
    if (!stack)
        cli_fail(verb, "cannot boot a stack%s%s: %s", common->config ? " from " : "",
                 common->config ? common->config : "", err);
    return stack;
}

int cli_common_option(int opt, const char *arg, struct cli_common *common)
{
    switch (opt) {
    case 'c':
        common->config = arg;
        return 1;
    case 's':
        common->server = arg;
        return 1;
    case 'j':
        common->json = 1;
        return 1;
    default:
        return 0;
    }
}
