/*
 * The error detection and correction bytes of a CD-ROM Mode 1 sector (ECMA-130 14.3, annex A),
 * for sectors an image stores without them (2048-byte ISO images): EDC is a 32-bit CRC with
 * P(x) = (x^16 + x^15 + x^2 + 1)(x^16 + x^2 + x + 1) over bytes 0..2063, stored least significant
 * byte first at 2064; eight zero bytes follow; then the Reed-Solomon product code over GF(2^8)
 * with P(x) = x^8 + x^4 + x^3 + x^2 + 1: P parity, 86 RS(26,24) codewords over the columns of
 * bytes 12..2075 seen as 24 rows of 43 16-bit words (each byte plane apart), at 2076; Q parity,
 * 52 RS(45,43) codewords over the diagonals of the 26 rows (P parity included), at 2248. Each
 * codeword's two parity bytes make both syndromes zero (the check matrix [1 ... 1; a^(n-1) ...
 * a 1]). The tables are computed once; they never change.
 */
#include <pthread.h>
#include <string.h>

#include "devices/mmc_p.h"

static uint32_t edc_table[256];
static uint8_t gf_mul2[256]; /* x * a */
static uint8_t gf_div3[256]; /* x / (1 + a) */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t edc = i;
        for (int k = 0; k < 8; k++)
            edc = (edc >> 1) ^ (edc & 1 ? 0xD8018001u : 0);
        edc_table[i] = edc;
        uint8_t m = (uint8_t)((i << 1) ^ (i & 0x80 ? 0x11D : 0));
        gf_mul2[i] = m;
        gf_div3[i ^ m] = (uint8_t)i; /* i * (1 + a) = i ^ m */
    }
}

uint32_t mmc_edc(const uint8_t *p, size_t len)
{
    uint32_t edc = 0;
    pthread_once(&tables_once, tables_init);
    while (len--)
        edc = (edc >> 8) ^ edc_table[(edc ^ *p++) & 0xFF];
    return edc;
}

/* `major` codewords of `minor` data bytes each: codeword j starts at byte (j/2)*mult + j%2 of
 * src and steps `inc` bytes (modulo major*minor); its parity goes to dst[j] and dst[j+major]. */
static void rs_parity(const uint8_t *src, uint32_t major, uint32_t minor, uint32_t mult,
                      uint32_t inc, uint8_t *dst)
{
    uint32_t size = major * minor;
    for (uint32_t j = 0; j < major; j++) {
        uint32_t idx = (j >> 1) * mult + (j & 1);
        uint8_t a = 0, b = 0; /* a = sum d_i a^(minor-i), b = sum d_i */
        for (uint32_t i = 0; i < minor; i++) {
            uint8_t d = src[idx];
            idx += inc;
            if (idx >= size)
                idx -= size;
            a = gf_mul2[a ^ d];
            b ^= d;
        }
        uint8_t p0 = gf_div3[gf_mul2[a] ^ b];
        dst[j] = p0;
        dst[j + major] = p0 ^ b;
    }
}

void mmc_mode1_edc_ecc(uint8_t *sector)
{
    uint32_t edc = mmc_edc(sector, 2064);
    sector[2064] = (uint8_t)edc;
    sector[2065] = (uint8_t)(edc >> 8);
    sector[2066] = (uint8_t)(edc >> 16);
    sector[2067] = (uint8_t)(edc >> 24);
    memset(sector + 2068, 0, 8);
    rs_parity(sector + 12, 86, 24, 2, 86, sector + 2076);  /* P */
    rs_parity(sector + 12, 52, 43, 86, 88, sector + 2248); /* Q */
}
