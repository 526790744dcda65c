/*
 * `storstack tree`: the PnP device tree of a stack (storstack_get_tree), as an indented text tree
 * or, with --json, the JSON exactly as the stack produced it. Each devnode shows its instance
 * path and state, then description, service, hardware and compatible IDs, location, device
 * power state (D0..D3, from the PDO), Windows names and its device stack from top (upper
 * filters) to bottom (PDO).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static void tree_list(FILE *out, const char *prefix, const char *label,
                      const struct cli_json *array)
{
    int first = 1;
    if (!array || array->type != CLI_JSON_ARRAY || !array->child)
        return;
    fprintf(out, "%s%-12s", prefix, label);
    for (const struct cli_json *e = array->child; e; e = e->next) {
        if (e->type != CLI_JSON_STRING)
            continue;
        fprintf(out, "%s%s", first ? "" : ", ", e->string);
        first = 0;
    }
    fputc('\n', out);
}

static void tree_node(FILE *out, const struct cli_json *node, const char *indent, int last,
                      int root)
{
    char head[512], body[512], child_indent[512];
    const struct cli_json *stack, *children;
    const char *s;

    snprintf(head, sizeof(head), "%s%s", indent, root ? "" : (last ? "`-- " : "|-- "));
    snprintf(child_indent, sizeof(child_indent), "%s%s", indent,
             root ? "" : (last ? "    " : "|   "));
    fprintf(out, "%s%s [%s]\n", head, cli_json_str(node, "instance_path", "?"),
            cli_json_str(node, "state", "?"));
    children = cli_json_get(node, "children");
    int has_children = children && children->type == CLI_JSON_ARRAY && children->child;
    snprintf(body, sizeof(body), "%s%s", child_indent, has_children ? "|     " : "      ");
    if ((s = cli_json_str(node, "description", NULL)) && *s)
        fprintf(out, "%s%-12s%s\n", body, "description", s);
    if ((s = cli_json_str(node, "service", NULL)) && *s)
        fprintf(out, "%s%-12s%s\n", body, "service", s);
    tree_list(out, body, "hardware", cli_json_get(node, "hardware_ids"));
    tree_list(out, body, "compatible", cli_json_get(node, "compatible_ids"));
    if ((s = cli_json_str(node, "location", NULL)) && *s)
        fprintf(out, "%s%-12s%s\n", body, "location", s);
    if ((s = cli_json_str(node, "power", NULL)) && *s)
        fprintf(out, "%s%-12s%s\n", body, "power", s); /* the PDO's device power state */
    tree_list(out, body, "names", cli_json_get(node, "names"));
    stack = cli_json_get(node, "stack");
    if (stack && stack->type == CLI_JSON_ARRAY && stack->child) {
        int first = 1;
        for (const struct cli_json *e = stack->child; e; e = e->next) {
            fprintf(out, "%s%-12s%-11s %-12s %s\n", body, first ? "stack" : "",
                    cli_json_str(e, "role", "?"), cli_json_str(e, "driver", "?"),
                    cli_json_str(e, "device", ""));
            first = 0;
        }
    }
    if (!has_children)
        return;
    for (const struct cli_json *c = children->child; c; c = c->next)
        tree_node(out, c, child_indent, c->next == NULL, 0);
}

int cli_tree_render(const char *json, FILE *out, char *err, size_t errlen)
{
    struct cli_json *doc = cli_json_parse(json, err, errlen);
    const struct cli_json *root;
    if (!doc)
        return -1;
    root = cli_json_get(doc, "root");
    if (!root || root->type != CLI_JSON_OBJECT) {
        snprintf(err, errlen, "tree JSON has no \"root\" object");
        cli_json_free(doc);
        return -1;
    }
    tree_node(out, root, "", 1, 1);
    cli_json_free(doc);
    return 0;
}

static void tree_usage(FILE *out)
{
    fputs("usage: storstack tree [--json] [--config FILE] [--server PATH]\n"
          "  Prints the PnP device tree: devnodes, IDs, Windows names and device stacks.\n"
          "  --json          the tree as JSON (the schema in tools/README.md)\n"
          "  --config FILE   boot a stack in this process from FILE\n"
          "  --server PATH   ask the storstack serve listening on PATH\n",
          out);
}

int cli_tree(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"server", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_common common = {0};
    storstack_t *stack;
    storstack_status_t st;
    char *json = NULL, err[256];
    int c, rc = CLI_EXIT_OK;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            tree_usage(stdout);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, optarg, &common))
                break;
            return cli_usage_error("tree", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("tree", "unexpected argument '%s'", argv[optind]);
    stack = cli_open_stack("tree", &common);
    if (!stack)
        return CLI_EXIT_FAILURE;
    st = storstack_get_tree(stack, &json);
    if (st != 0) {
        rc = cli_fail("tree", "cannot get the device tree: %s", storstack_status_name(st));
    } else if (common.json) {
        fputs(json, stdout);
        if (!*json || json[strlen(json) - 1] != '\n')
            fputc('\n', stdout);
    } else if (cli_tree_render(json, stdout, err, sizeof(err))) {
        rc = cli_fail("tree", "%s", err);
    }
    free(json);
    storstack_destroy(stack);
    return rc;
}
