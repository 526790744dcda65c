/*
 * CRC32C (slice-by-8 over tables built once) and the CHAP helpers of auth.h. The CRC tables are
 * built on first use under pthread_once; everything else is pure.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "frontends/iscsi/auth.h"

#define CRC32C_POLY 0x82f63b78u /* Castagnoli, reflected */

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? c >> 1 ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] =
                crc32c_table[t - 1][i] >> 8 ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

uint32_t iscsi_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = crc >> 8 ^ crc32c_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][lo >> 8 & 0xff] ^
              crc32c_table[5][lo >> 16 & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][hi & 0xff] ^ crc32c_table[2][hi >> 8 & 0xff] ^
              crc32c_table[1][hi >> 16 & 0xff] ^ crc32c_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc >> 8 ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

void iscsi_chap_response(uint8_t id, const void *secret, size_t secret_len,
                         const uint8_t *challenge, size_t challenge_len, uint8_t out[ISCSI_MD5_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;

    /* EVP_MD_CTX_new fails only without memory; then the response is all zeros, which never
     * matches a real one (the caller compares against what the peer sent). */
    memset(out, 0, ISCSI_MD5_LEN);
    if (!ctx)
        return;
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 || EVP_DigestUpdate(ctx, &id, 1) != 1 ||
        EVP_DigestUpdate(ctx, secret, secret_len) != 1 ||
        EVP_DigestUpdate(ctx, challenge, challenge_len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != ISCSI_MD5_LEN)
        memset(out, 0, ISCSI_MD5_LEN);
    EVP_MD_CTX_free(ctx);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64_digit(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int iscsi_chap_decode(const char *value, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;

    if (len < 3 || value[0] != '0')
        return -1;
    if (value[1] == 'x' || value[1] == 'X') {
        const char *p = value + 2;
        size_t digits = len - 2;
        if (digits % 2) { /* an odd count: the first digit stands alone (6.1) */
            int d = hex_digit(*p++);
            if (d < 0 || n >= cap)
                return -1;
            out[n++] = (uint8_t)d;
            digits--;
        }
        for (; digits; digits -= 2, p += 2) {
            int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
            if (hi < 0 || lo < 0 || n >= cap)
                return -1;
            out[n++] = (uint8_t)(hi << 4 | lo);
        }
        return (int)n;
    }
    if (value[1] == 'b' || value[1] == 'B') {
        uint32_t acc = 0;
        int bits = 0;
        size_t i = 2;
        for (; i < len && value[i] != '='; i++) {
            int d = b64_digit(value[i]);
            if (d < 0)
                return -1;
            acc = acc << 6 | (uint32_t)d;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                if (n >= cap)
                    return -1;
                out[n++] = (uint8_t)(acc >> bits);
            }
        }
        for (; i < len; i++) /* only padding may follow */
            if (value[i] != '=')
                return -1;
        return n ? (int)n : -1;
    }
    return -1;
}

void iscsi_chap_encode(const uint8_t *bin, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '0';
    *out++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *out++ = hex[bin[i] >> 4];
        *out++ = hex[bin[i] & 15];
    }
    *out = 0;
}

bool iscsi_chap_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

int iscsi_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
