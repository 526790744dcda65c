/*
 * iSCSI text key=value reader and writer (RFC 7143 6.1). The reader is a boundary for outside
 * bytes (login and text data segments, already bounded by the PDU layer): every pair is checked
 * for its '=', its key length (1..63) and its value length (<= 8192) before it is handed out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frontends/iscsi/text.h"

int iscsi_text_next(const uint8_t *buf, size_t len, size_t *pos, struct iscsi_kv *kv)
{
    size_t start = *pos, end, eq;

    if (start >= len)
        return 0;
    /* Trailing NULs after the last pair (padding some initiators leave) end the segment. */
    for (end = start; end < len && buf[end] == 0; end++)
        ;
    if (end == len) {
        *pos = len;
        return 0;
    }
    if (end != start)
        return -EINVAL;
    for (end = start; end < len && buf[end] != 0; end++)
        ;
    const uint8_t *eqp = memchr(buf + start, '=', end - start);
    if (!eqp)
        return -EINVAL;
    eq = (size_t)(eqp - buf);
    if (eq == start || eq - start > ISCSI_KEY_MAX || end - eq - 1 > ISCSI_VALUE_MAX)
        return -EINVAL;
    kv->key = (const char *)buf + start;
    kv->key_len = eq - start;
    kv->value = (const char *)buf + eq + 1;
    kv->value_len = end - eq - 1;
    *pos = end < len ? end + 1 : len;
    return 1;
}

bool iscsi_kv_key_is(const struct iscsi_kv *kv, const char *key)
{
    return strlen(key) == kv->key_len && memcmp(kv->key, key, kv->key_len) == 0;
}

bool iscsi_kv_value_is(const struct iscsi_kv *kv, const char *value)
{
    return strlen(value) == kv->value_len && memcmp(kv->value, value, kv->value_len) == 0;
}

int iscsi_kv_number(const struct iscsi_kv *kv, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *p = kv->value, *e = kv->value + kv->value_len;
    unsigned base = 10;
    uint64_t v = 0;

    /* 6.1: decimal, or hex with 0x; at most 64 bits. */
    if (e - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (p == e || e - p > 20)
        return -EINVAL;
    for (; p < e; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            return -EINVAL;
        if (v > (UINT64_MAX - d) / base)
            return -EINVAL;
        v = v * base + d;
    }
    if (v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static void iscsi_text_append(struct iscsi_text_out *out, const char *key, size_t key_len,
                              const char *value)
{
    size_t vlen = strlen(value), need = key_len + 1 + vlen + 1;

    if (out->overflow || need > out->cap - out->len) {
        out->overflow = true;
        return;
    }
    memcpy(out->buf + out->len, key, key_len);
    out->buf[out->len + key_len] = '=';
    memcpy(out->buf + out->len + key_len + 1, value, vlen + 1);
    out->len += need;
}

void iscsi_text_add(struct iscsi_text_out *out, const char *key, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value)) {
        out->overflow = true;
        return;
    }
    iscsi_text_append(out, key, strlen(key), value);
}

void iscsi_text_add_kv(struct iscsi_text_out *out, const struct iscsi_kv *kv, const char *value)
{
    iscsi_text_append(out, kv->key, kv->key_len, value);
}
