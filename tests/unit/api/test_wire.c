/* The wire format's encoders and its decoders' checks (api/wire.c). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "api/wire.h"

static void test_request_round_trips_little_endian(void **state)
{
    struct wire_request in = {.magic = WIRE_MAGIC_REQUEST,
                              .op = WIRE_OP_IOCTL,
                              .tag = 0x1122334455667788ull,
                              .handle = 0x0000000200000001ull,
                              .offset = 0xA0B0C0D0E0F00102ull,
                              .arg0 = 0x4D014,
                              .arg1 = 512,
                              .payload_length = 56};
    struct wire_request out;
    uint8_t b[WIRE_REQUEST_HEADER_SIZE];
    wire_encode_request(&in, b);
    assert_int_equal(b[0], 'S');
    assert_int_equal(b[1], 'S');
    assert_int_equal(b[2], 'R');
    assert_int_equal(b[3], 'Q');
    assert_int_equal(b[8], 0x88);
    assert_int_equal(b[15], 0x11);
    assert_int_equal(wire_decode_request(b, &out, NULL), 0);
    assert_memory_equal(&in, &out, sizeof(in));
}

static int decode(struct wire_request r)
{
    uint8_t b[WIRE_REQUEST_HEADER_SIZE];
    struct wire_request out;
    const char *why = NULL;
    r.magic = r.magic ? r.magic : WIRE_MAGIC_REQUEST;
    wire_encode_request(&r, b);
    int rc = wire_decode_request(b, &out, &why);
    if (rc)
        assert_non_null(why);
    return rc;
}

static void test_request_limits_are_checked_at_decode(void **state)
{
    assert_int_equal(decode((struct wire_request){.magic = 1, .op = WIRE_OP_FLUSH}), -EPROTO);
    assert_int_equal(decode((struct wire_request){.op = 0}), -EPROTO);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_MAX_}), -EPROTO);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_FLUSH, .flags = 1}), -EPROTO);
    assert_int_equal(
        decode((struct wire_request){.op = WIRE_OP_WRITE, .payload_length = WIRE_MAX_PAYLOAD}), 0);
    assert_int_equal(
        decode((struct wire_request){.op = WIRE_OP_WRITE, .payload_length = WIRE_MAX_PAYLOAD + 1}),
        -EMSGSIZE);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_READ, .arg0 = WIRE_MAX_PAYLOAD}),
                     0);
    assert_int_equal(
        decode((struct wire_request){.op = WIRE_OP_READ, .arg0 = WIRE_MAX_PAYLOAD + 1}), -EMSGSIZE);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_READ, .payload_length = 1}),
                     -EPROTO);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_OPEN}), -EMSGSIZE);
    assert_int_equal(
        decode((struct wire_request){.op = WIRE_OP_OPEN, .payload_length = WIRE_MAX_NAME + 1}),
        -EMSGSIZE);
    assert_int_equal(decode((struct wire_request){.op = WIRE_OP_IOCTL, .arg1 = 0xFFFFFFFF}),
                     -EMSGSIZE);
    assert_int_equal(decode((struct wire_request){
                         .op = WIRE_OP_REG_GET_STRING, .arg0 = 5, .arg1 = 64, .payload_length = 5}),
                     -EMSGSIZE);
    assert_int_equal(decode((struct wire_request){
                         .op = WIRE_OP_REG_GET_STRING, .arg0 = 5, .arg1 = 64, .payload_length = 9}),
                     0);
}

static void test_frame_decoder_needs_every_byte(void **state)
{
    uint8_t b[WIRE_REQUEST_HEADER_SIZE + 14];
    struct wire_request r = {.magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_OPEN, .payload_length = 14};
    const uint8_t *payload;
    wire_encode_request(&r, b);
    memcpy(b + WIRE_REQUEST_HEADER_SIZE, "PhysicalDrive0", 14);
    for (size_t len = 0; len < sizeof(b); len++)
        assert_int_equal(wire_decode_request_frame(b, len, &r, &payload, NULL), -EAGAIN);
    assert_int_equal(wire_decode_request_frame(b, sizeof(b), &r, &payload, NULL), sizeof(b));
    assert_memory_equal(payload, "PhysicalDrive0", 14);
    b[WIRE_REQUEST_HEADER_SIZE + 3] = 0;
    assert_int_equal(wire_decode_request_frame(b, sizeof(b), &r, &payload, NULL), -EPROTO);
}

static void test_response_checks_magic_and_length(void **state)
{
    struct wire_response r = {.magic = WIRE_MAGIC_RESPONSE,
                              .status = (int32_t)0xC0000034,
                              .tag = 7,
                              .information = 9,
                              .payload_length = 3};
    struct wire_response out;
    uint8_t b[WIRE_RESPONSE_HEADER_SIZE];
    wire_encode_response(&r, b);
    assert_int_equal(wire_decode_response(b, &out, NULL), 0);
    assert_memory_equal(&r, &out, sizeof(r));
    r.payload_length = WIRE_MAX_PAYLOAD + 1;
    wire_encode_response(&r, b);
    assert_int_equal(wire_decode_response(b, &out, NULL), -EMSGSIZE);
    b[0] ^= 1;
    assert_int_equal(wire_decode_response(b, &out, NULL), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trips_little_endian),
        cmocka_unit_test(test_request_limits_are_checked_at_decode),
        cmocka_unit_test(test_frame_decoder_needs_every_byte),
        cmocka_unit_test(test_response_checks_magic_and_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
