/*
 * The management socket's wire format: the user API (storstack.h) as length-prefixed binary
 * frames over a Unix stream socket. Every field is little-endian and fixed width. A connection
 * starts with a HELLO request (magic + version); after that the client sends requests, each with a
 * 64-bit tag, and the server answers each with one response carrying the same tag, the NTSTATUS,
 * IoStatus.Information and a payload, in any order. The decoders here are the only place where
 * lengths that arrived from the socket are checked: against the WIRE_MAX_* limits and against the
 * bytes present. They return 0 or a negative errno (-EPROTO for a bad frame, -EMSGSIZE for a
 * length over a limit) and fill a static reason string. docs/protocol.md is the reference.
 */
#ifndef STORSTACK_API_WIRE_H
#define STORSTACK_API_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC_REQUEST  0x51525353u /* "SSRQ" little-endian */
#define WIRE_MAGIC_RESPONSE 0x53525353u /* "SSRS" */
#define WIRE_VERSION        1u

#define WIRE_REQUEST_HEADER_SIZE  48u
#define WIRE_RESPONSE_HEADER_SIZE 40u

#define WIRE_MAX_PAYLOAD  (64u << 20) /* data of READ/WRITE/IOCTL, the tree JSON */
#define WIRE_MAX_NAME     4096u       /* device names, registry keys and value names */
#define WIRE_MAX_IDENTITY 512u        /* an OPEN's principal and TransportID, each under half */
#define WIRE_MAX_REG_OUT  (64u << 10) /* a registry value as text */

enum wire_op {
    WIRE_OP_HELLO = 1,
    WIRE_OP_OPEN = 2,
    WIRE_OP_CLOSE = 3,
    WIRE_OP_READ = 4,
    WIRE_OP_WRITE = 5,
    WIRE_OP_FLUSH = 6,
    WIRE_OP_IOCTL = 7,
    WIRE_OP_GET_TREE = 8,
    WIRE_OP_REG_GET_STRING = 9,
    WIRE_OP_CANCEL = 10,
    WIRE_OP_MAX_ = 11,
};

/*
 * A request frame header. The meaning of handle/offset/arg0/arg1 depends on op:
 *   HELLO           arg0 = WIRE_VERSION
 *   OPEN            arg0 = access mask, payload = device name (no NUL); with an identity
 *                   (storstack_open_ex): arg1 = name length, handle = principal length,
 *                   offset = nexus, payload = name, principal, TransportID
 *   CLOSE, FLUSH    handle
 *   READ            handle, offset, arg0 = length
 *   WRITE           handle, offset, payload = data
 *   IOCTL           handle, arg0 = IOCTL code, arg1 = out length, payload = in bytes
 *   GET_TREE        -
 *   REG_GET_STRING  arg0 = key length, arg1 = out length, payload = key bytes then name bytes
 *   CANCEL          handle, offset = tag of the request to cancel; arg0, arg1 zero, no payload
 */
struct wire_request {
    uint32_t magic;
    uint16_t op;
    uint16_t flags;
    uint64_t tag;
    uint64_t handle;
    uint64_t offset;
    uint32_t arg0;
    uint32_t arg1;
    uint32_t payload_length;
    uint32_t reserved;
};

/* A response frame header; for OPEN, handle is the new handle id; payload_length bytes follow. */
struct wire_response {
    uint32_t magic;
    int32_t status;
    uint64_t tag;
    uint64_t information;
    uint64_t handle;
    uint32_t payload_length;
    uint32_t reserved;
};

void wire_encode_request(const struct wire_request *req, uint8_t out[WIRE_REQUEST_HEADER_SIZE]);
void wire_encode_response(const struct wire_response *rsp, uint8_t out[WIRE_RESPONSE_HEADER_SIZE]);

/*
 * Decodes and checks a request header: magic, a known op, reserved fields zero, payload_length and
 * op-specific lengths within their limits (READ length, IOCTL out length, OPEN name, registry key
 * and name). Payload bytes are checked separately by wire_check_request_payload.
 */
int wire_decode_request(const uint8_t in[WIRE_REQUEST_HEADER_SIZE], struct wire_request *req,
                        const char **reason);

/* Checks a request's payload once it has arrived (no NUL inside names, key length within). */
int wire_check_request_payload(const struct wire_request *req, const uint8_t *payload,
                               const char **reason);

/*
 * Decodes one whole request from a buffer (header, then payload) as the server would see it;
 * returns the bytes consumed, or a negative errno (-EAGAIN when more bytes are needed). Used by
 * the fuzzer and tests.
 */
long wire_decode_request_frame(const uint8_t *buf, size_t len, struct wire_request *req,
                               const uint8_t **payload, const char **reason);

/* Decodes and checks a response header: magic, payload_length within WIRE_MAX_PAYLOAD. */
int wire_decode_response(const uint8_t in[WIRE_RESPONSE_HEADER_SIZE], struct wire_response *rsp,
                         const char **reason);

/* Little-endian field access, shared with the pass-through conversion. */
static inline void wire_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void wire_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wire_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t wire_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t wire_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t wire_get64(const uint8_t *p)
{
    return (uint64_t)wire_get32(p) | (uint64_t)wire_get32(p + 4) << 32;
}

/* Status <-> errno at the one boundary: a negative errno from this module as an NTSTATUS. */
int32_t wire_errno_to_status(int err);

/* Socket helpers shared by the client and the server. */
struct iovec;
int wire_send_all(int fd, struct iovec *iov, int iovcnt);
int wire_recv_all(int fd, void *buf, size_t len);

/* A stream read in batches: one recv fills buf (capacity bytes) with as many frames as have
 * arrived; a read of half the capacity or more goes straight to its destination. One thread
 * reads a given reader. before_block (may be NULL) runs before any recv that may block. */
struct wire_reader {
    int fd;
    uint32_t capacity, pos, end;
    uint8_t *buf;
};
int wire_reader_read(struct wire_reader *r, void *dst, size_t len, void (*before_block)(void *),
                     void *context);

#endif
