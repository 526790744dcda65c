/*
 * A small JSON reader and string writer for the command's own formats (the device tree from
 * storstack_get_tree, its --json outputs). The reader builds a tree of cli_json nodes; it accepts
 * RFC 8259 JSON (with \uXXXX escapes, surrogate pairs encoded to UTF-8) and limits nesting to 64
 * levels so a hostile input cannot exhaust the stack.
 */
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

#define JSON_MAX_DEPTH 64

struct json_parser {
    const char *text;
    size_t pos;
    const char *error;
};

static void json_skip(struct json_parser *p)
{
    while (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' || p->text[p->pos] == '\n' ||
           p->text[p->pos] == '\r')
        p->pos++;
}

static struct cli_json *json_value(struct json_parser *p, int depth);

static int json_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *json_string(struct json_parser *p)
{
    size_t start = ++p->pos, cap = 16, len = 0;
    char *s = malloc(cap);
    (void)start;
    if (!s)
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)p->text[p->pos];
        char enc[4];
        size_t n = 1;
        if (c == 0 || c < 0x20) {
            p->error = "unterminated string";
            free(s);
            return NULL;
        }
        p->pos++;
        if (c == '"')
            break;
        enc[0] = (char)c;
        if (c == '\\') {
            char e = p->text[p->pos++];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                enc[0] = e;
                break;
            case 'b':
                enc[0] = '\b';
                break;
            case 'f':
                enc[0] = '\f';
                break;
            case 'n':
                enc[0] = '\n';
                break;
            case 'r':
                enc[0] = '\r';
                break;
            case 't':
                enc[0] = '\t';
                break;
            case 'u': {
                unsigned cp, lo;
                if (json_hex4(p->text + p->pos, &cp)) {
                    p->error = "bad \\u escape";
                    free(s);
                    return NULL;
                }
                p->pos += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p->text[p->pos] == '\\' &&
                    p->text[p->pos + 1] == 'u' && !json_hex4(p->text + p->pos + 2, &lo) &&
                    lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->pos += 6;
                }
                if (cp == 0)
                    cp = '?'; /* no NUL inside our C strings */
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xC0 | cp >> 6);
                    enc[1] = (char)(0x80 | (cp & 0x3F));
                    n = 2;
                } else if (cp < 0x10000) {
                    enc[0] = (char)(0xE0 | cp >> 12);
                    enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[2] = (char)(0x80 | (cp & 0x3F));
                    n = 3;
                } else {
                    enc[0] = (char)(0xF0 | cp >> 18);
                    enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[3] = (char)(0x80 | (cp & 0x3F));
                    n = 4;
                }
                break;
            }
            default:
                p->error = "bad escape";
                free(s);
                return NULL;
            }
        }
        if (len + n + 1 > cap) {
            cap = cap * 2 + n;
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        memcpy(s + len, enc, n);
        len += n;
    }
    s[len] = 0;
    return s;
}

static int json_literal(struct json_parser *p, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(p->text + p->pos, word, n))
        return 0;
    p->pos += n;
    return 1;
}

static struct cli_json *json_container(struct json_parser *p, int depth, int object)
{
    struct cli_json *v = calloc(1, sizeof(*v)), **tail;
    char close = object ? '}' : ']';
    if (!v)
        return NULL;
    v->type = object ? CLI_JSON_OBJECT : CLI_JSON_ARRAY;
    tail = &v->child;
    p->pos++;
    json_skip(p);
    if (p->text[p->pos] == close) {
        p->pos++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        struct cli_json *item;
        json_skip(p);
        if (object) {
            if (p->text[p->pos] != '"') {
                p->error = "expected a member name";
                goto fail;
            }
            key = json_string(p);
            if (!key)
                goto fail;
            json_skip(p);
            if (p->text[p->pos] != ':') {
                free(key);
                p->error = "expected ':'";
                goto fail;
            }
            p->pos++;
        }
        item = json_value(p, depth + 1);
        if (!item) {
            free(key);
            goto fail;
        }
        item->key = key;
        *tail = item;
        tail = &item->next;
        json_skip(p);
        if (p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->text[p->pos] == close) {
            p->pos++;
            return v;
        }
        p->error = object ? "expected ',' or '}'" : "expected ',' or ']'";
        goto fail;
    }
fail:
    cli_json_free(v);
    return NULL;
}

static struct cli_json *json_value(struct json_parser *p, int depth)
{
    struct cli_json *v;
    char c;

    if (depth > JSON_MAX_DEPTH) {
        p->error = "nested too deep";
        return NULL;
    }
    json_skip(p);
    c = p->text[p->pos];
    if (c == '{' || c == '[')
        return json_container(p, depth, c == '{');
    v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    if (c == '"') {
        v->type = CLI_JSON_STRING;
        v->string = json_string(p);
        if (!v->string) {
            free(v);
            return NULL;
        }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        v->type = CLI_JSON_NUMBER;
        v->number = strtod(p->text + p->pos, &end);
        if (end == p->text + p->pos) {
            p->error = "bad number";
            free(v);
            return NULL;
        }
        p->pos = (size_t)(end - p->text);
    } else if (json_literal(p, "true")) {
        v->type = CLI_JSON_BOOL;
        v->boolean = 1;
    } else if (json_literal(p, "false")) {
        v->type = CLI_JSON_BOOL;
    } else if (json_literal(p, "null")) {
        v->type = CLI_JSON_NULL;
    } else {
        p->error = c ? "unexpected character" : "unexpected end";
        free(v);
        return NULL;
    }
    return v;
}

struct cli_json *cli_json_parse(const char *text, char *err, size_t errlen)
{
    struct json_parser p = {.text = text, .pos = 0, .error = NULL};
    struct cli_json *v = json_value(&p, 0);
    if (v) {
        json_skip(&p);
        if (p.text[p.pos]) {
            p.error = "trailing characters";
            cli_json_free(v);
            v = NULL;
        }
    }
    if (!v && err)
        snprintf(err, errlen, "bad JSON at byte %zu: %s", p.pos,
                 p.error ? p.error : "out of memory");
    return v;
}

void cli_json_free(struct cli_json *v)
{
    while (v) {
        struct cli_json *next = v->next;
        cli_json_free(v->child);
        free(v->key);
        free(v->string);
        free(v);
        v = next;
    }
}

const struct cli_json *cli_json_get(const struct cli_json *object, const char *key)
{
    if (!object || object->type != CLI_JSON_OBJECT)
        return NULL;
    for (const struct cli_json *m = object->child; m; m = m->next)
        if (m->key && !strcmp(m->key, key))
            return m;
    return NULL;
}

const char *cli_json_str(const struct cli_json *object, const char *key, const char *fallback)
{
    const struct cli_json *m = cli_json_get(object, key);
    return m && m->type == CLI_JSON_STRING ? m->string : fallback;
}

void cli_json_write_bytes(FILE *out, const uint8_t *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c < 0x20 || c >= 0x7F)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

void cli_json_write_string(FILE *out, const char *s)
{
    cli_json_write_bytes(out, (const uint8_t *)s, strlen(s));
}
