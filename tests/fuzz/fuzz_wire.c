/*
 * libFuzzer target for the management socket's decoders (api/wire.c): the input is a byte
 * stream as the server would read it from a client, decoded frame by frame until it is used up
 * or a frame is rejected; the same bytes are also decoded as a response header, as the client
 * would. The decoders must never read outside the input, and any frame they accept must have
 * every length within the limits the server relies on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    const char *reason;

    while (at < size) {
        struct wire_request req;
        const uint8_t *payload = NULL;
        long n = wire_decode_request_frame(data + at, size - at, &req, &payload, &reason);
        if (n <= 0)
            break;
        if (req.payload_length > WIRE_MAX_PAYLOAD ||
            (req.op == WIRE_OP_READ && req.arg0 > WIRE_MAX_PAYLOAD) ||
            (req.op == WIRE_OP_IOCTL && req.arg1 > WIRE_MAX_PAYLOAD) ||
            (req.op == WIRE_OP_OPEN && req.payload_length > WIRE_MAX_NAME) ||
            (req.op == WIRE_OP_CANCEL && (req.arg0 || req.arg1 || req.payload_length)) ||
            (req.op == WIRE_OP_REG_GET_STRING &&
             (req.arg0 >= req.payload_length || req.arg1 > WIRE_MAX_REG_OUT)) ||
            payload + req.payload_length > data + size)
            abort();
        at += (size_t)n;
    }
    if (size >= WIRE_RESPONSE_HEADER_SIZE) {
        struct wire_response rsp;
        if (wire_decode_response(data, &rsp, &reason) == 0 && rsp.payload_length > WIRE_MAX_PAYLOAD)
            abort();
    }
    return 0;
}
