/*
 * iSCSI text data segments (RFC 7143 6.1): key=value pairs, each ended by a NUL, as carried by
 * Login and Text PDUs. The reader walks a segment in place without copying; the writer appends
 * pairs to a caller's fixed buffer and remembers whether anything did not fit.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_TEXT_H
#define STORSTACK_FRONTENDS_ISCSI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_KEY_MAX   63   /* 6.1: key names up to 63 bytes */
#define ISCSI_VALUE_MAX 8192 /* the longest value a receiver must accept (6.1) */

struct iscsi_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/*
 * The next pair of buf[0..len) from *pos: 1 with kv filled and *pos advanced, 0 at the end,
 * -EINVAL for a pair without '=', an empty or over-long key, an over-long value, or a stray NUL.
 * The last pair may lack its NUL. Values are not NUL-terminated in place: use value_len.
 */
int iscsi_text_next(const uint8_t *buf, size_t len, size_t *pos, struct iscsi_kv *kv);

bool iscsi_kv_key_is(const struct iscsi_kv *kv, const char *key);
bool iscsi_kv_value_is(const struct iscsi_kv *kv, const char *value);

/* A numerical value (decimal, or 0x hex) within [min, max]: 0, else -EINVAL. */
int iscsi_kv_number(const struct iscsi_kv *kv, uint64_t min, uint64_t max, uint64_t *out);

struct iscsi_text_out {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;
};

/* Appends "key=value\0" (value from printf-style arguments); a pair that does not fit is dropped
 * and overflow set. */
void iscsi_text_add(struct iscsi_text_out *out, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "key=value\0" with the key given as a pointer and length (a key echoed back). */
void iscsi_text_add_kv(struct iscsi_text_out *out, const struct iscsi_kv *kv, const char *value);

#endif
