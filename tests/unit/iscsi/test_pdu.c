/*
 * Unit tests of the iSCSI PDU layer, the text reader/writer and key negotiation
 * (frontends/iscsi/pdu.c, text.c, login.c), without sockets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frontends/iscsi/login.h"

static void test_parse_accepts_initiator_opcodes_and_reports_lengths(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {0};
    struct iscsi_pdu p;

    bhs[0] = ISCSI_BHS_IMMEDIATE | ISCSI_OP_NOP_OUT;
    bhs[1] = ISCSI_FLAG_FINAL;
    bhs[4] = 2; /* 8 bytes of AHS */
    iscsi_put24(bhs + 5, 13);
    iscsi_put32(bhs + 16, 0x1234);
    assert_int_equal(iscsi_pdu_parse(bhs, 8192, &p), 0);
    assert_int_equal(p.opcode, ISCSI_OP_NOP_OUT);
    assert_true(p.immediate);
    assert_true(p.final);
    assert_int_equal(p.ahs_len, 8);
    assert_int_equal(p.data_len, 13);
    assert_int_equal(p.itt, 0x1234);
    assert_int_equal(iscsi_pdu_tail_len(&p), 8 + 13 + 3);
}

static void test_parse_rejects_data_segment_over_limit(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {ISCSI_OP_SCSI_CMD};
    struct iscsi_pdu p;

    iscsi_put24(bhs + 5, 8193);
    assert_int_equal(iscsi_pdu_parse(bhs, 8192, &p), -EMSGSIZE);
    iscsi_put24(bhs + 5, ISCSI_MAX_DSL);
    assert_int_equal(iscsi_pdu_parse(bhs, 262144, &p), -EMSGSIZE);
    iscsi_put24(bhs + 5, 8192);
    assert_int_equal(iscsi_pdu_parse(bhs, 8192, &p), 0);
}

static void test_parse_rejects_target_and_unknown_opcodes(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {0};
    struct iscsi_pdu p;
    const uint8_t bad[] = {
        ISCSI_OP_SCSI_RSP, ISCSI_OP_DATA_IN, ISCSI_OP_R2T, ISCSI_OP_REJECT, 0x1e, 0x07};

    for (size_t i = 0; i < sizeof(bad); i++) {
        bhs[0] = bad[i];
        assert_int_equal(iscsi_pdu_parse(bhs, 8192, &p), -EOPNOTSUPP);
    }
}

static void test_scsi_cmd_fields(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE | 1};
    struct iscsi_scsi_cmd c;
    struct iscsi_pdu p;

    iscsi_put32(bhs + 16, 7);
    iscsi_put32(bhs + 20, 4096);
    iscsi_put32(bhs + 24, 100);
    bhs[32] = 0x2a;
    assert_int_equal(iscsi_pdu_parse(bhs, 8192, &p), 0);
    iscsi_pdu_scsi_cmd(&p, &c);
    assert_true(c.write);
    assert_false(c.read);
    assert_true(c.final);
    assert_int_equal(c.attr, 1);
    assert_int_equal(c.itt, 7);
    assert_int_equal(c.edtl, 4096);
    assert_int_equal(c.cmdsn, 100);
    assert_int_equal(c.cdb[0], 0x2a);
}

static void test_lun_encoding_round_trips(void **state)
{
    uint8_t lun[8];

    iscsi_lun_encode(lun, 0);
    assert_int_equal(iscsi_lun_decode(lun), 0);
    iscsi_lun_encode(lun, 5);
    assert_int_equal(iscsi_lun_decode(lun), 5);
    iscsi_lun_encode(lun, 300);
    assert_int_equal(lun[0], 0x41);
    assert_int_equal(iscsi_lun_decode(lun), 300);
    lun[5] = 1; /* second level */
    assert_int_equal(iscsi_lun_decode(lun), UINT32_MAX);
}

static void test_scsi_rsp_underflow_and_overflow(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN];

    iscsi_build_scsi_rsp(bhs, 9, ISCSI_RESPONSE_COMPLETED, 0, 0, 4096, 512, 512);
    assert_int_equal(bhs[0], ISCSI_OP_SCSI_RSP);
    assert_int_equal(bhs[1], ISCSI_FLAG_FINAL | ISCSI_RSP_UNDERFLOW);
    assert_int_equal(iscsi_get32(bhs + 44), 3584);
    assert_int_equal(iscsi_get24(bhs + 5), 0);

    iscsi_build_scsi_rsp(bhs, 9, ISCSI_RESPONSE_COMPLETED, 2, 18, 512, 4096, 512);
    assert_int_equal(bhs[1], ISCSI_FLAG_FINAL | ISCSI_RSP_OVERFLOW);
    assert_int_equal(iscsi_get32(bhs + 44), 3584);
    assert_int_equal(iscsi_get24(bhs + 5), 20); /* SenseLength + sense */
    assert_int_equal(bhs[3], 2);

    iscsi_build_scsi_rsp(bhs, 9, ISCSI_RESPONSE_COMPLETED, 0, 0, 512, 512, 512);
    assert_int_equal(bhs[1], ISCSI_FLAG_FINAL);
    assert_int_equal(iscsi_get32(bhs + 44), 0);
}

static void test_data_in_phase_collapse(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN], lun[8] = {0};

    iscsi_build_data_in(bhs, 3, lun, 2, 16384, 8192, false);
    assert_int_equal(bhs[0], ISCSI_OP_DATA_IN);
    assert_int_equal(bhs[1], 0);
    assert_int_equal(iscsi_get32(bhs + 20), ISCSI_RESERVED_TAG);
    assert_int_equal(iscsi_get32(bhs + 36), 2);
    assert_int_equal(iscsi_get32(bhs + 40), 16384);
    iscsi_data_in_set_status(bhs, 0, 32768, 24576, 24576);
    assert_int_equal(bhs[1], ISCSI_FLAG_FINAL | ISCSI_DATA_IN_STATUS | ISCSI_RSP_UNDERFLOW);
    assert_int_equal(iscsi_get32(bhs + 44), 8192);
}

static void test_r2t_and_reject(void **state)
{
    uint8_t bhs[ISCSI_BHS_LEN], lun[8] = {0};

    iscsi_build_r2t(bhs, 5, lun, 77, 1, 65536, 131072);
    assert_int_equal(bhs[0], ISCSI_OP_R2T);
    assert_int_equal(iscsi_get32(bhs + 20), 77);
    assert_int_equal(iscsi_get32(bhs + 36), 1);
    assert_int_equal(iscsi_get32(bhs + 40), 65536);
    assert_int_equal(iscsi_get32(bhs + 44), 131072);
    iscsi_build_reject(bhs, ISCSI_REJECT_CMD_NOT_SUPPORTED);
    assert_int_equal(bhs[0], ISCSI_OP_REJECT);
    assert_int_equal(bhs[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
    assert_int_equal(iscsi_get24(bhs + 5), ISCSI_BHS_LEN);
    assert_int_equal(iscsi_get32(bhs + 16), ISCSI_RESERVED_TAG);
}

static void test_pad_and_serial_numbers(void **state)
{
    assert_int_equal(iscsi_pad4(0), 0);
    assert_int_equal(iscsi_pad4(1), 3);
    assert_int_equal(iscsi_pad4(4), 0);
    assert_true(iscsi_sn_lt(0xfffffffe, 1));
    assert_false(iscsi_sn_lt(1, 0xfffffffe));
}

static void test_text_reader_walks_pairs_and_rejects_malformed(void **state)
{
    static const uint8_t ok[] = "A=1\0Bee=two\0Empty=\0Last=x";
    static const uint8_t noeq[] = "A=1\0junk\0";
    static const uint8_t emptykey[] = "=1\0";
    struct iscsi_kv kv;
    size_t pos = 0;

    assert_int_equal(iscsi_text_next(ok, sizeof(ok) - 1, &pos, &kv), 1);
    assert_true(iscsi_kv_key_is(&kv, "A") && iscsi_kv_value_is(&kv, "1"));
    assert_int_equal(iscsi_text_next(ok, sizeof(ok) - 1, &pos, &kv), 1);
    assert_true(iscsi_kv_key_is(&kv, "Bee") && iscsi_kv_value_is(&kv, "two"));
    assert_int_equal(iscsi_text_next(ok, sizeof(ok) - 1, &pos, &kv), 1);
    assert_int_equal(kv.value_len, 0);
    assert_int_equal(iscsi_text_next(ok, sizeof(ok) - 1, &pos, &kv), 1);
    assert_true(iscsi_kv_value_is(&kv, "x"));
    assert_int_equal(iscsi_text_next(ok, sizeof(ok) - 1, &pos, &kv), 0);

    pos = 0;
    assert_int_equal(iscsi_text_next(noeq, sizeof(noeq) - 1, &pos, &kv), 1);
    assert_int_equal(iscsi_text_next(noeq, sizeof(noeq) - 1, &pos, &kv), -EINVAL);
    pos = 0;
    assert_int_equal(iscsi_text_next(emptykey, sizeof(emptykey) - 1, &pos, &kv), -EINVAL);
}

static void test_numbers_decimal_hex_and_range(void **state)
{
    struct iscsi_kv kv = {.key = "K", .key_len = 1};
    uint64_t v;

    kv.value = "8192", kv.value_len = 4;
    assert_int_equal(iscsi_kv_number(&kv, 512, 16777215, &v), 0);
    assert_int_equal(v, 8192);
    kv.value = "0x2000", kv.value_len = 6;
    assert_int_equal(iscsi_kv_number(&kv, 512, 16777215, &v), 0);
    assert_int_equal(v, 8192);
    kv.value = "100", kv.value_len = 3;
    assert_int_equal(iscsi_kv_number(&kv, 512, 16777215, &v), -EINVAL);
    kv.value = "12a", kv.value_len = 3;
    assert_int_equal(iscsi_kv_number(&kv, 0, 16777215, &v), -EINVAL);
    kv.value = "99999999999999999999999", kv.value_len = 23;
    assert_int_equal(iscsi_kv_number(&kv, 0, UINT64_MAX, &v), -EINVAL);
}

static const struct iscsi_login_target targets[] = {{.iqn = "iqn.2026-11.org.storstack:default"}};
static const struct iscsi_login_config cfg = {
    .targets = targets,
    .ntargets = 1,
    .address = "127.0.0.1:3260",
    .tpgt = 1,
    .limits = {.max_recv_dsl = 262144,
               .max_burst = 262144,
               .first_burst = 65536,
               .immediate_data = true,
               .initial_r2t = false},
};

/* Finds key in a response text; returns its value or NULL. */
static const char *answer(const struct iscsi_text_out *out, const char *key)
{
    struct iscsi_kv kv;
    size_t pos = 0;
    static char value[256];

    while (iscsi_text_next(out->buf, out->len, &pos, &kv) == 1)
        if (iscsi_kv_key_is(&kv, key)) {
            memcpy(value, kv.value, kv.value_len);
            value[kv.value_len] = 0;
            return value;
        }
    return NULL;
}

static void test_negotiation_takes_min_max_or_and(void **state)
{
    static const uint8_t offer[] = "HeaderDigest=CRC32C,None\0DataDigest=CRC32C\0"
                                   "MaxRecvDataSegmentLength=8192\0FirstBurstLength=262144\0"
                                   "MaxBurstLength=131072\0ImmediateData=No\0InitialR2T=No\0"
                                   "MaxOutstandingR2T=8\0ErrorRecoveryLevel=2\0"
                                   "DefaultTime2Wait=0\0DefaultTime2Retain=60\0"
                                   "MaxConnections=4\0DataPDUInOrder=No\0X-vendor.key=1\0";
    uint8_t buf[1024];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_params p;
    bool sent = false;

    iscsi_params_default(&p, &cfg.limits);
    assert_int_equal(iscsi_negotiate(&p, &cfg, true, offer, sizeof(offer) - 1, &out, &sent, NULL),
                     0);
    assert_string_equal(answer(&out, "HeaderDigest"), "None");
    assert_string_equal(answer(&out, "DataDigest"), "Reject");
    assert_string_equal(answer(&out, "MaxRecvDataSegmentLength"), "262144");
    assert_true(sent);
    assert_int_equal(p.max_xmit_dsl, 8192);
    assert_string_equal(answer(&out, "MaxBurstLength"), "131072");
    /* FirstBurstLength never exceeds MaxBurstLength, whatever the order of the keys. */
    assert_string_equal(answer(&out, "FirstBurstLength"), "65536");
    assert_int_equal(p.first_burst, 65536);
    assert_string_equal(answer(&out, "ImmediateData"), "No");
    assert_false(p.immediate_data);
    assert_string_equal(answer(&out, "InitialR2T"), "No");
    assert_false(p.initial_r2t);
    assert_string_equal(answer(&out, "MaxOutstandingR2T"), "1");
    assert_string_equal(answer(&out, "ErrorRecoveryLevel"), "0");
    assert_string_equal(answer(&out, "DefaultTime2Wait"), "2");
    assert_string_equal(answer(&out, "DefaultTime2Retain"), "20");
    assert_string_equal(answer(&out, "MaxConnections"), "1");
    assert_string_equal(answer(&out, "DataPDUInOrder"), "Yes");
    assert_string_equal(answer(&out, "X-vendor.key"), "NotUnderstood");
}

static void test_negotiation_rejects_out_of_range_values(void **state)
{
    static const uint8_t offer[] = "MaxBurstLength=100\0ImmediateData=Maybe\0";
    uint8_t buf[256];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_params p;
    bool sent = false;

    iscsi_params_default(&p, &cfg.limits);
    assert_int_equal(iscsi_negotiate(&p, &cfg, true, offer, sizeof(offer) - 1, &out, &sent, NULL),
                     0);
    assert_string_equal(answer(&out, "MaxBurstLength"), "Reject");
    assert_string_equal(answer(&out, "ImmediateData"), "Reject");
    assert_int_equal(p.max_burst, 262144);
}

static void test_chap_only_offer_fails_authentication(void **state)
{
    static const uint8_t offer[] = "InitiatorName=iqn.x\0AuthMethod=CHAP\0";
    uint8_t buf[256];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_params p;
    bool sent = false;

    iscsi_params_default(&p, &cfg.limits);
    assert_int_equal(iscsi_negotiate(&p, &cfg, true, offer, sizeof(offer) - 1, &out, &sent, NULL),
                     ISCSI_LOGIN_AUTH_FAILED);
}

static void test_send_targets_lists_the_target(void **state)
{
    static const uint8_t req[] = "SendTargets=All\0";
    uint8_t buf[256];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_params p;
    bool sent = true;

    iscsi_params_default(&p, &cfg.limits);
    assert_int_equal(iscsi_negotiate(&p, &cfg, false, req, sizeof(req) - 1, &out, &sent, NULL), 0);
    assert_string_equal(answer(&out, "TargetName"), targets[0].iqn);
    assert_string_equal(answer(&out, "TargetAddress"), "127.0.0.1:3260,1");
}

static void login_req(uint8_t bhs[ISCSI_BHS_LEN], uint8_t flags, uint32_t len)
{
    memset(bhs, 0, ISCSI_BHS_LEN);
    bhs[0] = ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
    bhs[1] = flags;
    iscsi_put24(bhs + 5, len);
    bhs[8] = 0x80; /* ISID */
    iscsi_put32(bhs + 16, 1);
}

static void test_login_security_then_operational_then_full_feature(void **state)
{
    static const uint8_t sec[] = "InitiatorName=iqn.test\0TargetName=iqn.2026-11.org.storstack:"
                                 "default\0SessionType=Normal\0AuthMethod=CHAP,None\0";
    static const uint8_t op[] = "MaxRecvDataSegmentLength=65536\0";
    uint8_t bhs[ISCSI_BHS_LEN], rsp[ISCSI_BHS_LEN], buf[1024];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_login l;
    struct iscsi_pdu p;

    iscsi_login_init(&l, &cfg, 42);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (0 << 2) | 1, sizeof(sec) - 1);
    assert_int_equal(iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p), 0);
    assert_int_equal(iscsi_login_step(&l, &p, sec, &out, rsp), ISCSI_LOGIN_MORE);
    assert_int_equal(rsp[0], ISCSI_OP_LOGIN_RSP);
    assert_int_equal(rsp[1], ISCSI_LOGIN_TRANSIT | 1);
    assert_int_equal(rsp[36], 0);
    assert_string_equal(answer(&out, "AuthMethod"), "None");
    assert_string_equal(answer(&out, "TargetPortalGroupTag"), "1");

    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3, sizeof(op) - 1);
    assert_int_equal(iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p), 0);
    assert_int_equal(iscsi_login_step(&l, &p, op, &out, rsp), ISCSI_LOGIN_DONE);
    assert_int_equal(rsp[1], ISCSI_LOGIN_TRANSIT | (1 << 2) | 3);
    assert_int_equal(iscsi_get16(rsp + 14), 42);
    assert_int_equal(l.params.max_xmit_dsl, 65536);
}

static void test_login_rejects_wrong_target_and_stage_violations(void **state)
{
    static const uint8_t wrong[] = "InitiatorName=iqn.test\0TargetName=iqn.nope\0";
    static const uint8_t noname[] = "TargetName=iqn.2026-11.org.storstack:default\0";
    static const uint8_t good[] = "InitiatorName=iqn.test\0SessionType=Discovery\0";
    uint8_t bhs[ISCSI_BHS_LEN], rsp[ISCSI_BHS_LEN], buf[1024];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_login l;
    struct iscsi_pdu p;

    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3, sizeof(wrong) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, wrong, &out, rsp), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(rsp + 36), ISCSI_LOGIN_NOT_FOUND);

    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3, sizeof(noname) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, noname, &out, rsp), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(rsp + 36), ISCSI_LOGIN_MISSING_PARAMETER);

    /* T with C, and a next stage behind the current one */
    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | ISCSI_LOGIN_CONTINUE | (1 << 2) | 3, sizeof(good) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, good, &out, rsp), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(rsp + 36), ISCSI_LOGIN_INITIATOR_ERROR);
    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 0, sizeof(good) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, good, &out, rsp), ISCSI_LOGIN_FAIL);

    /* a discovery session needs no TargetName */
    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3, sizeof(good) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, good, &out, rsp), ISCSI_LOGIN_DONE);
    assert_true(l.params.discovery);
}

static void test_login_gathers_text_over_continue(void **state)
{
    static const uint8_t part1[] = "InitiatorName=iqn.te";
    static const uint8_t part2[] = "st\0SessionType=Discovery\0";
    uint8_t bhs[ISCSI_BHS_LEN], rsp[ISCSI_BHS_LEN], buf[1024];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_login l;
    struct iscsi_pdu p;

    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, ISCSI_LOGIN_CONTINUE | (1 << 2), sizeof(part1) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, part1, &out, rsp), ISCSI_LOGIN_MORE);
    assert_int_equal(out.len, 0);
    login_req(bhs, ISCSI_LOGIN_TRANSIT | (1 << 2) | 3, sizeof(part2) - 1);
    iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p);
    assert_int_equal(iscsi_login_step(&l, &p, part2, &out, rsp), ISCSI_LOGIN_DONE);
    assert_string_equal(l.params.initiator_name, "iqn.test");
}

/* An answer that overflows the response fails the login, also without T: the keys it would have
 * negotiated (HeaderDigest among them) must not be in force unsaid. */
static void test_login_answer_too_long_fails_even_without_transit(void **state)
{
    static const uint8_t req[] = "InitiatorName=iqn.test\0SessionType=Discovery\0X-a=1\0X-b=1\0"
                                 "X-c=1\0X-d=1\0HeaderDigest=CRC32C\0";
    uint8_t bhs[ISCSI_BHS_LEN], rsp[ISCSI_BHS_LEN], buf[48];
    struct iscsi_text_out out = {.buf = buf, .cap = sizeof(buf)};
    struct iscsi_login l;
    struct iscsi_pdu p;

    iscsi_login_init(&l, &cfg, 1);
    login_req(bhs, 1 << 2, sizeof(req) - 1); /* operational stage, T=0 */
    assert_int_equal(iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p), 0);
    assert_int_equal(iscsi_login_step(&l, &p, req, &out, rsp), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(rsp + 36), ISCSI_LOGIN_TARGET_ERROR);

    /* the same text fits a response of ordinary size */
    uint8_t big[1024];
    struct iscsi_text_out out2 = {.buf = big, .cap = sizeof(big)};
    iscsi_login_init(&l, &cfg, 1);
    assert_int_equal(iscsi_login_step(&l, &p, req, &out2, rsp), ISCSI_LOGIN_MORE);
    assert_false(out2.overflow);
    assert_string_equal(answer(&out2, "X-a"), "NotUnderstood");
    assert_non_null(answer(&out2, "HeaderDigest"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_initiator_opcodes_and_reports_lengths),
        cmocka_unit_test(test_parse_rejects_data_segment_over_limit),
        cmocka_unit_test(test_parse_rejects_target_and_unknown_opcodes),
        cmocka_unit_test(test_scsi_cmd_fields),
        cmocka_unit_test(test_lun_encoding_round_trips),
        cmocka_unit_test(test_scsi_rsp_underflow_and_overflow),
        cmocka_unit_test(test_data_in_phase_collapse),
        cmocka_unit_test(test_r2t_and_reject),
        cmocka_unit_test(test_pad_and_serial_numbers),
        cmocka_unit_test(test_text_reader_walks_pairs_and_rejects_malformed),
        cmocka_unit_test(test_numbers_decimal_hex_and_range),
        cmocka_unit_test(test_negotiation_takes_min_max_or_and),
        cmocka_unit_test(test_negotiation_rejects_out_of_range_values),
        cmocka_unit_test(test_chap_only_offer_fails_authentication),
        cmocka_unit_test(test_send_targets_lists_the_target),
        cmocka_unit_test(test_login_security_then_operational_then_full_feature),
        cmocka_unit_test(test_login_rejects_wrong_target_and_stage_violations),
        cmocka_unit_test(test_login_gathers_text_over_continue),
        cmocka_unit_test(test_login_answer_too_long_fails_even_without_transit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
