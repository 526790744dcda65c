/*
 * Integrity and authentication of the iSCSI target: CRC32C for header and data digests (RFC 7143
 * 11.1, 13.1; the Castagnoli polynomial, reflected, as in RFC 3720 B.4) and CHAP (RFC 7143
 * 12.1.3, RFC 1994) with MD5 from OpenSSL's libcrypto. No sockets and no allocation: the login
 * state machine (login.c) and the connection (conn.c) call in, and the tests check both against
 * the RFC's test vectors.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_AUTH_H
#define STORSTACK_FRONTENDS_ISCSI_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC32C of len bytes, continuing from crc (start with 0). */
uint32_t iscsi_crc32c(uint32_t crc, const void *buf, size_t len);

#define ISCSI_CHAP_SECRET_MIN 12  /* 12.1.3: shorter secrets are refused */
#define ISCSI_CHAP_SECRET_MAX 256 /* the longest secret this target keeps */
#define ISCSI_CHAP_NAME_MAX   256
#define ISCSI_CHAP_CHALLENGE  16   /* bytes of the challenge we send */
#define ISCSI_CHAP_BIN_MAX    1024 /* the longest CHAP_C/CHAP_R we decode */
#define ISCSI_MD5_LEN         16

/* A target's CHAP settings: user empty = no CHAP; mutual_user empty = one-way only. */
struct iscsi_chap_config {
    char user[ISCSI_CHAP_NAME_MAX];
    char secret[ISCSI_CHAP_SECRET_MAX];
    size_t secret_len;
    char mutual_user[ISCSI_CHAP_NAME_MAX];
    char mutual_secret[ISCSI_CHAP_SECRET_MAX];
    size_t mutual_secret_len;
};

/* MD5(id || secret || challenge): the CHAP response (RFC 1994 4.1). */
void iscsi_chap_response(uint8_t id, const void *secret, size_t secret_len,
                         const uint8_t *challenge, size_t challenge_len,
                         uint8_t out[ISCSI_MD5_LEN]);

/*
 * Decodes a CHAP binary value (RFC 7143 6.1: "0x" hex or "0b" base64) into out[cap]. Returns the
 * byte count, or -1 for a malformed value, an empty one, or one that does not fit.
 */
int iscsi_chap_decode(const char *value, size_t len, uint8_t *out, size_t cap);

/* Encodes bin as "0x" + lowercase hex into out (2 * len + 3 bytes with the NUL). */
void iscsi_chap_encode(const uint8_t *bin, size_t len, char *out);

/* Constant-time comparison of two equal-length byte strings. */
bool iscsi_chap_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* Fills buf with len unpredictable bytes (getrandom). 0, or -1 when the kernel cannot. */
int iscsi_random(void *buf, size_t len);

#endif
