/*
 * The configuration manager: the registry as a tree of keys with typed values, rooted at
 * CurrentControlSet. Keys and value names compare case-insensitively, as on Windows. INI files
 * load into it: a section names a key path, each line a value (docs/config.md has the syntax).
 * One mutex guards the tree; the registry is read at device start and configuration time, never
 * on the I/O path.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel/executive_p.h"

typedef struct _REG_VALUE {
    struct _REG_VALUE *Next;
    char Name[64];
    ULONG Type;
    ULONG Length;
    UCHAR *Data;
} REG_VALUE, *PREG_VALUE;

struct _REG_KEY {
    struct _REG_KEY *Next;  /* sibling */
    struct _REG_KEY *Child; /* first subkey */
    char Name[128];
    PREG_VALUE Values;
};

static PREG_KEY CmpNewKey(PCSTR name, size_t len)
{
    PREG_KEY k;
    if (len >= sizeof(k->Name))
        return NULL; /* CmpPathValid refuses such paths first */
    k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    memcpy(k->Name, name, len);
    return k;
}

static void CmpFreeKey(PREG_KEY k)
{
    while (k) {
        PREG_KEY next = k->Next;
        CmpFreeKey(k->Child);
        for (PREG_VALUE v = k->Values; v;) {
            PREG_VALUE nv = v->Next;
            free(v->Data);
            free(v);
            v = nv;
        }
        free(k);
        k = next;
    }
}

void CmpFreeRegistry(PEXECUTIVE ex)
{
    CmpFreeKey(ex->Registry);
    ex->Registry = NULL;
}

/* Strips a leading "HKLM\SYSTEM\CurrentControlSet\" (or "\Registry\Machine\System\...") prefix. */
static PCSTR CmpRelativePath(PCSTR path)
{
    static const char *const prefixes[] = {
        "HKLM\\SYSTEM\\CurrentControlSet\\",
        "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\",
        "\\Registry\\Machine\\System\\CurrentControlSet\\",
    };
    for (size_t i = 0; i < RTL_NUMBER_OF(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncasecmp(path, prefixes[i], n))
            return path + n;
    }
    while (*path == '\\')
        path++;
    return path;
}

/* Walks a path from the root; creates missing keys when create is set. Lock held. */
static PREG_KEY CmpLookup(PEXECUTIVE ex, PCSTR path, BOOLEAN create)
{
    PREG_KEY key;
    PCSTR p = CmpRelativePath(path);

    if (!ex->Registry) {
        if (!create)
            return NULL;
        ex->Registry = CmpNewKey("CurrentControlSet", 17);
        if (!ex->Registry)
            return NULL;
    }
    key = ex->Registry;
    while (*p) {
        PCSTR end = strchr(p, '\\');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        PREG_KEY child;
        if (len == 0) {
            p++;
            continue;
        }
        for (child = key->Child; child; child = child->Next)
            if (strlen(child->Name) == len && !strncasecmp(child->Name, p, len))
                break;
        if (!child) {
            if (!create)
                return NULL;
            child = CmpNewKey(p, len);
            if (!child)
                return NULL;
            /* keep subkeys in creation order: enumeration order is what users wrote */
            PREG_KEY *pp = &key->Child;
            while (*pp)
                pp = &(*pp)->Next;
            *pp = child;
        }
        key = child;
        p += len;
    }
    return key;
}

/* Every component of a key path fits a key name. */
static BOOLEAN CmpPathValid(PCSTR path)
{
    for (PCSTR p = CmpRelativePath(path); *p;) {
        size_t len = strcspn(p, "\\");
        if (len >= sizeof(((REG_KEY *)0)->Name))
            return FALSE;
        p += len;
        while (*p == '\\')
            p++;
    }
    return TRUE;
}

NTSTATUS CmCreateKey(PEXECUTIVE Executive, PCSTR KeyPath)
{
    NTSTATUS status;
    if (!CmpPathValid(KeyPath))
        return STATUS_OBJECT_NAME_INVALID;
    pthread_mutex_lock(&Executive->RegistryLock);
    status = CmpLookup(Executive, KeyPath, TRUE) ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
    pthread_mutex_unlock(&Executive->RegistryLock);
    return status;
}

BOOLEAN CmKeyExists(PEXECUTIVE Executive, PCSTR KeyPath)
{
    BOOLEAN exists;
    pthread_mutex_lock(&Executive->RegistryLock);
    exists = CmpLookup(Executive, KeyPath, FALSE) != NULL;
    pthread_mutex_unlock(&Executive->RegistryLock);
    return exists;
}

NTSTATUS CmSetValue(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, ULONG Type,
                    const void *Data, ULONG DataLength)
{
    PREG_KEY key;
    PREG_VALUE v;
    UCHAR *copy;

    if (strlen(ValueName) >= sizeof(v->Name) || !CmpPathValid(KeyPath))
        return STATUS_OBJECT_NAME_INVALID;
    copy = malloc(DataLength ? DataLength : 1);
    if (!copy)
        return STATUS_INSUFFICIENT_RESOURCES;
    memcpy(copy, Data, DataLength);
    pthread_mutex_lock(&Executive->RegistryLock);
    key = CmpLookup(Executive, KeyPath, TRUE);
    if (!key) {
        pthread_mutex_unlock(&Executive->RegistryLock);
        free(copy);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    for (v = key->Values; v; v = v->Next)
        if (!strcasecmp(v->Name, ValueName))
            break;
    if (!v) {
        v = calloc(1, sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&Executive->RegistryLock);
            free(copy);
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        snprintf(v->Name, sizeof(v->Name), "%s", ValueName);
        PREG_VALUE *pp = &key->Values;
        while (*pp)
            pp = &(*pp)->Next;
        *pp = v;
    }
    free(v->Data);
    v->Data = copy;
    v->Type = Type;
    v->Length = DataLength;
    pthread_mutex_unlock(&Executive->RegistryLock);
    return STATUS_SUCCESS;
}

NTSTATUS CmQueryValue(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, PULONG Type,
                      PVOID Buffer, ULONG BufferLength, PULONG ResultLength)
{
    PREG_KEY key;
    PREG_VALUE v = NULL;
    NTSTATUS status = STATUS_OBJECT_NAME_NOT_FOUND;

    pthread_mutex_lock(&Executive->RegistryLock);
    key = CmpLookup(Executive, KeyPath, FALSE);
    if (key)
        for (v = key->Values; v; v = v->Next)
            if (!strcasecmp(v->Name, ValueName))
                break;
    if (v) {
        if (Type)
            *Type = v->Type;
        if (ResultLength)
            *ResultLength = v->Length;
        if (v->Length > BufferLength) {
            status = STATUS_BUFFER_TOO_SMALL;
        } else {
            if (Buffer)
                memcpy(Buffer, v->Data, v->Length);
            status = STATUS_SUCCESS;
        }
    }
    pthread_mutex_unlock(&Executive->RegistryLock);
    return status;
}

NTSTATUS CmEnumerateKey(PEXECUTIVE Executive, PCSTR KeyPath, ULONG Index, char *Name,
                        ULONG NameLength)
{
    PREG_KEY key, child;
    NTSTATUS status = STATUS_NO_MORE_ENTRIES;
    pthread_mutex_lock(&Executive->RegistryLock);
    key = CmpLookup(Executive, KeyPath, FALSE);
    if (!key) {
        status = STATUS_OBJECT_NAME_NOT_FOUND;
    } else {
        for (child = key->Child; child && Index; child = child->Next)
            Index--;
        if (child) {
            if (strlen(child->Name) >= NameLength) {
                status = STATUS_BUFFER_TOO_SMALL;
            } else {
                strcpy(Name, child->Name);
                status = STATUS_SUCCESS;
            }
        }
    }
    pthread_mutex_unlock(&Executive->RegistryLock);
    return status;
}

/* Parses "123", "0x1F", "4K", "1G", "2T" (binary multiples). Returns FALSE when not a number. */
BOOLEAN RtlStringToUlonglong(PCSTR s, BOOLEAN allow_suffix, PULONGLONG out)
{
    char *end;
    unsigned long long v;
    int shift = 0;
    if (!*s || *s == '-' || isspace((unsigned char)*s))
        return FALSE;
    errno = 0;
    /* decimal, or hexadecimal with 0x: a leading zero is not octal in a configuration file */
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        v = strtoull(s + 2, &end, 16), end = end == s + 2 ? (char *)s : end;
    else
        v = strtoull(s, &end, 10);
    if (errno || end == s)
        return FALSE;
    if (allow_suffix && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        case 'T':
            shift = 40;
            break;
        default:
            return FALSE;
        }
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
        if (shift && v > (~0ull >> shift))
            return FALSE;
        v <<= shift;
    }
    if (*end)
        return FALSE;
    *out = v;
    return TRUE;
}

NTSTATUS RtlQueryRegistryUlonglong(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName,
                                   PULONGLONG Value)
{
    char buf[64];
    ULONG type, len;
    NTSTATUS status =
        CmQueryValue(Executive, KeyPath, ValueName, &type, buf, sizeof(buf) - 1, &len);
    if (!NT_SUCCESS(status))
        return status == STATUS_BUFFER_TOO_SMALL ? STATUS_INVALID_PARAMETER : status;
    if (type == REG_DWORD && len == 4) {
        ULONG d;
        memcpy(&d, buf, 4);
        *Value = d;
        return STATUS_SUCCESS;
    }
    if (type == REG_QWORD && len == 8) {
        memcpy(Value, buf, 8);
        return STATUS_SUCCESS;
    }
    if (type == REG_SZ) {
        buf[len] = 0;
        if (RtlStringToUlonglong(buf, TRUE, Value))
            return STATUS_SUCCESS;
    }
    return STATUS_INVALID_PARAMETER;
}

NTSTATUS RtlQueryRegistryString(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, char *Buffer,
                                ULONG BufferLength)
{
    ULONG type, len = 0, need;
    NTSTATUS status;
    char *raw, text[24];

    if (!BufferLength)
        return STATUS_BUFFER_TOO_SMALL;
    status = CmQueryValue(Executive, KeyPath, ValueName, &type, NULL, 0, &len);
    if (!NT_SUCCESS(status) && status != STATUS_BUFFER_TOO_SMALL)
        return status;
    raw = malloc(len + 2);
    if (!raw)
        return STATUS_INSUFFICIENT_RESOURCES;
    status = CmQueryValue(Executive, KeyPath, ValueName, &type, raw, len, &len);
    if (!NT_SUCCESS(status)) {
        free(raw);
        return status;
    }
    raw[len] = raw[len + 1] = 0;
    switch (type) {
    case REG_SZ:
        break;
    case REG_MULTI_SZ: /* joined with ',' */
        for (ULONG i = 0; i + 1 < len; i++)
            if (!raw[i] && raw[i + 1])
                raw[i] = ',';
        break;
    case REG_DWORD:
    case REG_QWORD: {
        ULONGLONG q = 0;
        if (len != (type == REG_DWORD ? 4u : 8u)) {
            free(raw);
            return STATUS_INVALID_PARAMETER;
        }
        memcpy(&q, raw, len);
        snprintf(text, sizeof(text), "%llu", (unsigned long long)q);
        free(raw);
        raw = strdup(text);
        if (!raw)
            return STATUS_INSUFFICIENT_RESOURCES;
        break;
    }
    default:
        free(raw);
        return STATUS_INVALID_PARAMETER;
    }
    need = (ULONG)strlen(raw) + 1;
    status = need > BufferLength ? STATUS_BUFFER_TOO_SMALL : STATUS_SUCCESS;
    if (NT_SUCCESS(status))
        memcpy(Buffer, raw, need);
    free(raw);
    return status;
}

/* ---- INI loading ----------------------------------------------------------------------------- */

struct CmpIniContext {
    PEXECUTIVE Executive;
    char Error[256]; /* the first error's reason (inih goes on parsing after one) */
    char **Values;   /* values of long lines, indexed by the "\x01N" token inih sees */
    ULONG ValueCount;
    char LastSection[256];
    char **Sections; /* section names, indexed by the short token inih sees */
    ULONG SectionCount;
};

/* Value syntax: dword:N, qword:N, multi:a,b,c, hex:0a0b.., str:text; a bare number is REG_DWORD
 * (REG_QWORD when it needs 64 bits); anything else REG_SZ. Surrounding quotes are removed. */
static int CmpIniHandler(void *user, const char *section, const char *name, const char *value)
{
    struct CmpIniContext *ctx = user;
    PEXECUTIVE ex = ctx->Executive;
    char text[1024];
    ULONGLONG number;
    NTSTATUS status;
    size_t len;

    if (!section[0]) {
        snprintf(ctx->Error, sizeof(ctx->Error), "value '%s' is outside any [key] section", name);
        return 0;
    }
    /* inih keeps 50 characters of a section name; CmLoadIniText passed "#N" tokens instead */
    if (section[0] == '#') {
        unsigned long index = strtoul(section + 1, NULL, 10);
        if (index < ctx->SectionCount)
            section = ctx->Sections[index];
    }
    if (value && value[0] == '\x01') {
        unsigned long index = strtoul(value + 1, NULL, 10);
        if (index < ctx->ValueCount)
            value = ctx->Values[index];
    }
    if (ctx->Error[0])
        return 0; /* after the first error, report that one */
    snprintf(ctx->LastSection, sizeof(ctx->LastSection), "%s", section);
    if (!name) { /* a section with no values still creates its key (inih calls with NULL name) */
        return NT_SUCCESS(CmCreateKey(ex, section));
    }
    len = strlen(value);
    if (len >= sizeof(text)) {
        snprintf(ctx->Error, sizeof(ctx->Error), "value '%s' is longer than %zu bytes", name,
                 sizeof(text) - 1);
        return 0;
    }
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        memcpy(text, value + 1, len - 2);
        text[len - 2] = 0;
        status = CmSetValue(ex, section, name, REG_SZ, text, (ULONG)strlen(text) + 1);
    } else if (!strncasecmp(value, "dword:", 6)) {
        if (!RtlStringToUlonglong(value + 6, TRUE, &number) || number > 0xFFFFFFFFull) {
            snprintf(ctx->Error, sizeof(ctx->Error), "value '%s': '%s' is not a 32-bit number",
                     name, value + 6);
            return 0;
        }
        ULONG d = (ULONG)number;
        status = CmSetValue(ex, section, name, REG_DWORD, &d, 4);
    } else if (!strncasecmp(value, "qword:", 6)) {
        if (!RtlStringToUlonglong(value + 6, TRUE, &number)) {
            snprintf(ctx->Error, sizeof(ctx->Error), "value '%s': '%s' is not a number", name,
                     value + 6);
            return 0;
        }
        status = CmSetValue(ex, section, name, REG_QWORD, &number, 8);
    } else if (!strncasecmp(value, "multi:", 6)) {
        size_t n = 0;
        for (PCSTR p = value + 6; *p; p++) {
            if (n + 2 >= sizeof(text))
                break;
            if (*p == ',' && (n == 0 || text[n - 1] == 0))
                continue; /* an empty entry would end the list early */
            text[n++] = *p == ',' ? 0 : *p;
        }
        if (n && text[n - 1] == 0)
            n--;
        text[n++] = 0;
        text[n++] = 0;
        status = CmSetValue(ex, section, name, REG_MULTI_SZ, text, (ULONG)n);
    } else if (!strncasecmp(value, "hex:", 4)) {
        PCSTR p = value + 4;
        size_t n = 0;
        while (*p) {
            unsigned b;
            if (*p == ',' || *p == ' ') {
                p++;
                continue;
            }
            if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
                sscanf(p, "%2x", &b) != 1 || n >= sizeof(text)) {
                snprintf(ctx->Error, sizeof(ctx->Error), "value '%s': bad hex data", name);
                return 0;
            }
            text[n++] = (char)b;
            p += 2;
        }
        status = CmSetValue(ex, section, name, REG_BINARY, text, (ULONG)n);
    } else if (!strncasecmp(value, "str:", 4)) {
        status = CmSetValue(ex, section, name, REG_SZ, value + 4, (ULONG)strlen(value + 4) + 1);
    } else if (RtlStringToUlonglong(value, FALSE, &number)) {
        if (number <= 0xFFFFFFFFull) {
            ULONG d = (ULONG)number;
            status = CmSetValue(ex, section, name, REG_DWORD, &d, 4);
        } else {
            status = CmSetValue(ex, section, name, REG_QWORD, &number, 8);
        }
    } else {
        status = CmSetValue(ex, section, name, REG_SZ, value, (ULONG)len + 1);
    }
    if (!NT_SUCCESS(status)) {
        snprintf(ctx->Error, sizeof(ctx->Error), "value '%s' could not be stored (0x%08X)", name,
                 (unsigned)status);
        return 0;
    }
    return 1;
}

/* Debian's inih keeps 50 characters of a section name and 200 of a line; registry paths and
 * some values are longer. So the text inih sees is a copy in which every "[Key\Path]" line is
 * "[#N]" and the value of every long line is "\x01N", with the real text kept in tables the
 * handler reads back. The copy keeps the line numbers. Every section's key is created here,
 * since inih (as built) calls the handler for none without values. Lines that are neither a
 * section, a comment nor "name = value" are the first error, with their line number. */
static char *CmpTokenize(PCSTR Text, struct CmpIniContext *ctx, ULONG *ErrorLine)
{
    size_t len = strlen(Text);
    /* a token may be longer than what it replaces ("[x]" is 3, "[#N]" up to 13) */
    char *out = malloc(len * 5 + 16), *o = out;
    PCSTR p = Text;
    ULONG line = 0;
    if (!out)
        return NULL;
    while (*p) {
        PCSTR eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        PCSTR a = p, b = p + n, close;
        line++;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (a < b && *a == '[' && (close = memchr(a, ']', (size_t)(b - a))) != NULL) {
            PCSTR rest = close + 1;
            while (rest < b && (*rest == ' ' || *rest == '\t'))
                rest++;
            if (rest < b && *rest != ';' && *rest != '#') {
                if (!*ErrorLine) {
                    *ErrorLine = line;
                    snprintf(ctx->Error, sizeof(ctx->Error), "text after the section's ']'");
                }
            }
            char **grown = realloc(ctx->Sections, (ctx->SectionCount + 1) * sizeof(char *));
            if (!grown)
                goto fail;
            ctx->Sections = grown;
            ctx->Sections[ctx->SectionCount] = strndup(a + 1, (size_t)(close - a - 1));
            if (!ctx->Sections[ctx->SectionCount])
                goto fail;
            if (!NT_SUCCESS(CmCreateKey(ctx->Executive, ctx->Sections[ctx->SectionCount])) &&
                !*ErrorLine) {
                *ErrorLine = line;
                snprintf(ctx->Error, sizeof(ctx->Error),
                         "key path '%.160s' has a name of 128 characters or more",
                         ctx->Sections[ctx->SectionCount]);
            }
            o += sprintf(o, "[#%u]", ctx->SectionCount++);
        } else if (a == b || *a == ';' || *a == '#') {
            memcpy(o, p, n);
            o += n;
        } else {
            PCSTR eq = memchr(a, '=', (size_t)(b - a));
            if (!eq)
                eq = memchr(a, ':', (size_t)(b - a));
            if (!eq) {
                if (!*ErrorLine) {
                    *ErrorLine = line;
                    snprintf(ctx->Error, sizeof(ctx->Error),
                             "syntax error (expected [Key\\Path] or Name = Value)");
                }
                memcpy(o, p, n);
                o += n;
            } else if (n > 190) {
                PCSTR v = eq + 1;
                while (v < b && (*v == ' ' || *v == '\t'))
                    v++;
                char **grown = realloc(ctx->Values, (ctx->ValueCount + 1) * sizeof(char *));
                if (!grown)
                    goto fail;
                ctx->Values = grown;
                ctx->Values[ctx->ValueCount] = strndup(v, (size_t)(b - v));
                if (!ctx->Values[ctx->ValueCount])
                    goto fail;
                memcpy(o, p, (size_t)(eq + 1 - p));
                o += eq + 1 - p;
                o += sprintf(o, " \x01%u", ctx->ValueCount++);
            } else {
                /* trimmed: inih would take an indented line as the previous value's
                 * continuation */
                memcpy(o, a, (size_t)(b - a));
                o += b - a;
            }
        }
        if (!eol)
            break;
        *o++ = '\n';
        p = eol + 1;
    }
    *o = 0;
    return out;
fail:
    free(out);
    return NULL;
}

NTSTATUS CmLoadIniText(PEXECUTIVE Executive, PCSTR Text, PCSTR Name, char *Error,
                       size_t ErrorLength)
{
    struct CmpIniContext ctx = {.Executive = Executive};
    ULONG error_line = 0;
    char *tokenized;
    int line = -2;

    tokenized = CmpTokenize(Text, &ctx, &error_line);
    if (tokenized && !error_line)
        line = ini_parse_string(tokenized, CmpIniHandler, &ctx);
    else if (tokenized)
        line = (int)error_line;
    free(tokenized);
    for (ULONG i = 0; i < ctx.SectionCount; i++)
        free(ctx.Sections[i]);
    free(ctx.Sections);
    for (ULONG i = 0; i < ctx.ValueCount; i++)
        free(ctx.Values[i]);
    free(ctx.Values);
    if (line == -2) {
        if (Error)
            snprintf(Error, ErrorLength, "%s: out of memory", Name);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (line == 0)
        return STATUS_SUCCESS;
    if (Error)
        snprintf(Error, ErrorLength, "%s:%d: %s", Name, line,
                 ctx.Error[0] ? ctx.Error : "syntax error (expected [Key\\Path] or Name = Value)");
    return STATUS_INVALID_PARAMETER;
}

NTSTATUS CmLoadIniFile(PEXECUTIVE Executive, PCSTR Path, char *Error, size_t ErrorLength)
{
    FILE *f = fopen(Path, "r");
    char *text;
    long size;
    NTSTATUS status;

    if (!f) {
        if (Error)
            snprintf(Error, ErrorLength, "%s: %s", Path, strerror(errno));
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || size > (16 << 20) ||
        fseek(f, 0, SEEK_SET)) {
        fclose(f);
        if (Error)
            snprintf(Error, ErrorLength, "%s: not a readable configuration file (16 MiB at most)",
                     Path);
        return STATUS_INVALID_PARAMETER;
    }
    text = malloc((size_t)size + 1);
    if (!text) {
        fclose(f);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(text);
        if (Error)
            snprintf(Error, ErrorLength, "%s: read error", Path);
        return STATUS_IO_DEVICE_ERROR;
    }
    text[size] = 0;
    fclose(f);
    status = CmLoadIniText(Executive, text, Path, Error, ErrorLength);
    free(text);
    return status;
}
