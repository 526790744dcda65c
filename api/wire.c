/*
 * Encoding and checking of management-socket frames (api/wire.h). Decoding is the single place
 * where lengths from the socket are validated: a frame that passes wire_decode_request and
 * wire_check_request_payload can be acted on without further bounds checks. Errors are negative
 * errno with a static reason string for the server's log.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <storstack/nt/ntstatus.h>

#include "api/wire.h"

void wire_encode_request(const struct wire_request *req, uint8_t out[WIRE_REQUEST_HEADER_SIZE])
{
    wire_put32(out + 0, req->magic);
    wire_put16(out + 4, req->op);
    wire_put16(out + 6, req->flags);
    wire_put64(out + 8, req->tag);
    wire_put64(out + 16, req->handle);
    wire_put64(out + 24, req->offset);
    wire_put32(out + 32, req->arg0);
    wire_put32(out + 36, req->arg1);
    wire_put32(out + 40, req->payload_length);
    wire_put32(out + 44, req->reserved);
}

void wire_encode_response(const struct wire_response *rsp, uint8_t out[WIRE_RESPONSE_HEADER_SIZE])
{
    wire_put32(out + 0, rsp->magic);
    wire_put32(out + 4, (uint32_t)rsp->status);
    wire_put64(out + 8, rsp->tag);
    wire_put64(out + 16, rsp->information);
    wire_put64(out + 24, rsp->handle);
    wire_put32(out + 32, rsp->payload_length);
    wire_put32(out + 36, rsp->reserved);
}

static int fail(const char **reason, const char *why, int err)
{
    if (reason)
        *reason = why;
    return err;
}

int wire_decode_request(const uint8_t in[WIRE_REQUEST_HEADER_SIZE], struct wire_request *req,
                        const char **reason)
{
    req->magic = wire_get32(in + 0);
    req->op = wire_get16(in + 4);
    req->flags = wire_get16(in + 6);
    req->tag = wire_get64(in + 8);
    req->handle = wire_get64(in + 16);
    req->offset = wire_get64(in + 24);
    req->arg0 = wire_get32(in + 32);
    req->arg1 = wire_get32(in + 36);
    req->payload_length = wire_get32(in + 40);
    req->reserved = wire_get32(in + 44);

    if (req->magic != WIRE_MAGIC_REQUEST)
        return fail(reason, "bad request magic", -EPROTO);
    if (req->op == 0 || req->op >= WIRE_OP_MAX_)
        return fail(reason, "unknown request op", -EPROTO);
    if (req->flags || req->reserved)
        return fail(reason, "reserved request fields not zero", -EPROTO);
    if (req->payload_length > WIRE_MAX_PAYLOAD)
        return fail(reason, "request payload over 64 MiB", -EMSGSIZE);

    switch (req->op) {
    case WIRE_OP_OPEN:
        if (req->payload_length == 0 || req->payload_length > WIRE_MAX_NAME + WIRE_MAX_IDENTITY)
            return fail(reason, "OPEN name length out of range", -EMSGSIZE);
        if (req->arg1 == 0
                ? req->payload_length > WIRE_MAX_NAME || req->handle
                : req->arg1 > WIRE_MAX_NAME || req->handle == 0 ||
                      req->handle >= WIRE_MAX_IDENTITY / 2 ||
                      req->payload_length - req->arg1 < req->handle ||
                      req->payload_length - req->arg1 - req->handle >= WIRE_MAX_IDENTITY / 2 ||
                      req->arg1 >= req->payload_length)
            return fail(reason, "OPEN identity lengths out of range", -EMSGSIZE);
        break;
    case WIRE_OP_READ:
        if (req->arg0 > WIRE_MAX_PAYLOAD)
            return fail(reason, "READ length over 64 MiB", -EMSGSIZE);
        __attribute__((fallthrough)); /* and takes no payload */
    case WIRE_OP_HELLO:
    case WIRE_OP_CLOSE:
    case WIRE_OP_FLUSH:
    case WIRE_OP_GET_TREE:
        if (req->payload_length)
            return fail(reason, "payload on a request that takes none", -EPROTO);
        break;
    case WIRE_OP_CANCEL:
        if (req->arg0 || req->arg1)
            return fail(reason, "CANCEL with arguments it does not take", -EPROTO);
        if (req->payload_length)
            return fail(reason, "payload on a request that takes none", -EPROTO);
        break;
    case WIRE_OP_WRITE:
        break;
    case WIRE_OP_IOCTL:
        if (req->arg1 > WIRE_MAX_PAYLOAD)
            return fail(reason, "IOCTL out length over 64 MiB", -EMSGSIZE);
        break;
    case WIRE_OP_REG_GET_STRING:
        if (req->arg0 == 0 || req->arg0 > WIRE_MAX_NAME || req->arg0 >= req->payload_length ||
            req->payload_length - req->arg0 > WIRE_MAX_NAME)
            return fail(reason, "registry key/name length out of range", -EMSGSIZE);
        if (req->arg1 == 0 || req->arg1 > WIRE_MAX_REG_OUT)
            return fail(reason, "registry out length out of range", -EMSGSIZE);
        break;
    }
    return 0;
}

int wire_check_request_payload(const struct wire_request *req, const uint8_t *payload,
                               const char **reason)
{
    if ((req->op == WIRE_OP_OPEN || req->op == WIRE_OP_REG_GET_STRING) &&
        memchr(payload, 0, req->payload_length))
        return fail(reason, "NUL inside a name", -EPROTO);
    return 0;
}

long wire_decode_request_frame(const uint8_t *buf, size_t len, struct wire_request *req,
                               const uint8_t **payload, const char **reason)
{
    int rc;

    if (len < WIRE_REQUEST_HEADER_SIZE)
        return fail(reason, "truncated request header", -EAGAIN);
    rc = wire_decode_request(buf, req, reason);
    if (rc)
        return rc;
    if (len - WIRE_REQUEST_HEADER_SIZE < req->payload_length)
        return fail(reason, "truncated request payload", -EAGAIN);
    *payload = buf + WIRE_REQUEST_HEADER_SIZE;
    rc = wire_check_request_payload(req, *payload, reason);
    if (rc)
        return rc;
    return (long)(WIRE_REQUEST_HEADER_SIZE + req->payload_length);
}

int wire_decode_response(const uint8_t in[WIRE_RESPONSE_HEADER_SIZE], struct wire_response *rsp,
                         const char **reason)
{
    rsp->magic = wire_get32(in + 0);
    rsp->status = (int32_t)wire_get32(in + 4);
    rsp->tag = wire_get64(in + 8);
    rsp->information = wire_get64(in + 16);
    rsp->handle = wire_get64(in + 24);
    rsp->payload_length = wire_get32(in + 32);
    rsp->reserved = wire_get32(in + 36);
    if (rsp->magic != WIRE_MAGIC_RESPONSE)
        return fail(reason, "bad response magic", -EPROTO);
    if (rsp->payload_length > WIRE_MAX_PAYLOAD)
        return fail(reason, "response payload over 64 MiB", -EMSGSIZE);
    return 0;
}

int32_t wire_errno_to_status(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return STATUS_SUCCESS;
    case ENOMEM:
        return STATUS_INSUFFICIENT_RESOURCES;
    case ECONNREFUSED:
    case ENOENT:
        return STATUS_CONNECTION_REFUSED;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
    case EPROTO:
    case EMSGSIZE:
        return STATUS_CONNECTION_DISCONNECTED;
    case EINVAL:
    case ENAMETOOLONG:
        return STATUS_INVALID_PARAMETER;
    case EACCES:
    case EPERM:
        return STATUS_ACCESS_DENIED;
    default:
        return STATUS_UNSUCCESSFUL;
    }
}

/* Sends every byte of the iovec (advancing it), retrying on EINTR; 0 or -errno. */
int wire_send_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Receives exactly len bytes; -ECONNRESET when the peer closes first; 0 or -errno. */
int wire_recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int wire_reader_read(struct wire_reader *r, void *dst, size_t len, void (*before_block)(void *),
                     void *context)
{
    uint8_t *p = dst;
    size_t have = r->end - r->pos;

    if (have) {
        size_t n = have < len ? have : len;
        memcpy(p, r->buf + r->pos, n);
        r->pos += (uint32_t)n;
        p += n;
        len -= n;
    }
    if (!len)
        return 0;
    if (before_block)
        before_block(context);
    if (len >= r->capacity / 2)
        return wire_recv_all(r->fd, p, len); /* large payloads go straight to their place */
    r->pos = r->end = 0;
    while (r->end < len) {
        ssize_t n = recv(r->fd, r->buf + r->end, r->capacity - r->end, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        r->end += (uint32_t)n;
    }
    memcpy(p, r->buf, len);
    r->pos = (uint32_t)len;
    return 0;
}
