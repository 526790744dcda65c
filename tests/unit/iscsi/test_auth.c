/*
 * CRC32C against RFC 3720 B.4's vectors, CHAP (RFC 7143 12.1.3) through the login state machine
 * without sockets: one-way and mutual, wrong responses, a reflected challenge, a skipped
 * security stage, algorithms other than MD5; digest negotiation; and the configuration checks
 * on secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontends/iscsi/auth.h"
#include "frontends/iscsi/iscsi_p.h"
#include "frontends/iscsi/login.h"

#define IQN "iqn.2026-11.org.storstack:secure"

static void test_crc32c_rfc3720_vectors(void **state)
{
    uint8_t buf[48];

    memset(buf, 0, 32);
    assert_int_equal(iscsi_crc32c(0, buf, 32), 0x8a9136aa);
    memset(buf, 0xff, 32);
    assert_int_equal(iscsi_crc32c(0, buf, 32), 0x62a8ab43);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(iscsi_crc32c(0, buf, 32), 0x46dd794e);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(iscsi_crc32c(0, buf, 32), 0x113fdb5c);
    /* B.4's iSCSI read command PDU */
    static const uint8_t pdu[48] = {[0] = 0x01,  [1] = 0xc0,  [16] = 0x14, [22] = 0x04,
                                    [27] = 0x14, [31] = 0x18, [32] = 0x28, [40] = 0x02};
    assert_int_equal(iscsi_crc32c(0, pdu, 48), 0xd9963a56);
    /* continuing over pieces, at any alignment, is the same as at once */
    memcpy(buf + 1, pdu, 47);
    assert_int_equal(iscsi_crc32c(iscsi_crc32c(0, pdu, 13), pdu + 13, 35), 0xd9963a56);
    assert_int_equal(iscsi_crc32c(0, buf + 1, 47), iscsi_crc32c(0, pdu, 47));
}

static void test_chap_value_codec(void **state)
{
    uint8_t out[8];
    char hex[2 * ISCSI_MD5_LEN + 3];

    assert_int_equal(iscsi_chap_decode("0x0102ff", 8, out, sizeof(out)), 3);
    assert_int_equal(out[2], 0xff);
    assert_int_equal(iscsi_chap_decode("0x102", 5, out, sizeof(out)), 2); /* odd: 01 02 */
    assert_int_equal(out[0], 0x01);
    assert_int_equal(iscsi_chap_decode("0bAQL/", 6, out, sizeof(out)), 3);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0x02);
    assert_int_equal(out[2], 0xff);
    assert_int_equal(iscsi_chap_decode("0x", 2, out, sizeof(out)), -1);
    assert_int_equal(iscsi_chap_decode("0xzz", 4, out, sizeof(out)), -1);
    assert_int_equal(iscsi_chap_decode("1234", 4, out, sizeof(out)), -1);
    assert_int_equal(iscsi_chap_decode("0x000000000000000000", 20, out, sizeof(out)), -1);
    iscsi_chap_encode((const uint8_t *)"\x01\xab", 2, hex);
    assert_string_equal(hex, "0x01ab");
    /* RFC 1994 MD5(id || secret || challenge), checked against a known value */
    uint8_t md[16], c[1] = {0};
    iscsi_chap_response(0, "", 0, c, 0, md);
    iscsi_chap_encode(md, 16, hex);
    assert_string_equal(hex, "0x93b885adfe0da089cdf634904fd59f71"); /* MD5("\0") */
}

static struct iscsi_chap_config chap = {.user = "alice",
                                        .secret = "0123456789ab",
                                        .secret_len = 12,
                                        .mutual_user = "bob",
                                        .mutual_secret = "the other one",
                                        .mutual_secret_len = 13};
static struct iscsi_login_target targets[] = {{.iqn = IQN, .chap = &chap}};
static const struct iscsi_login_config cfg = {
    .targets = targets,
    .ntargets = 1,
    .address = "127.0.0.1:3260",
    .tpgt = 1,
    .limits = {.max_recv_dsl = 262144,
               .max_burst = 262144,
               .first_burst = 65536,
               .immediate_data = true,
               .digests = true},
};

struct step {
    uint8_t rsp[ISCSI_BHS_LEN];
    uint8_t buf[2048];
    struct iscsi_text_out out;
};

static enum iscsi_login_result step(struct iscsi_login *l, uint8_t flags, const char *text,
                                    size_t len, struct step *s)
{
    uint8_t bhs[ISCSI_BHS_LEN] = {0};
    struct iscsi_pdu p;

    bhs[0] = ISCSI_BHS_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
    bhs[1] = flags;
    iscsi_put24(bhs + 5, (uint32_t)len);
    bhs[8] = 0x80;
    iscsi_put32(bhs + 16, 1);
    assert_int_equal(iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p), 0);
    s->out = (struct iscsi_text_out){.buf = s->buf, .cap = sizeof(s->buf)};
    return iscsi_login_step(l, &p, (const uint8_t *)text, &s->out, s->rsp);
}

static const char *answer(const struct step *s, const char *key)
{
    static char value[512];
    struct iscsi_kv kv;
    size_t pos = 0;

    while (iscsi_text_next(s->out.buf, s->out.len, &pos, &kv) == 1)
        if (iscsi_kv_key_is(&kv, key)) {
            memcpy(value, kv.value, kv.value_len);
            value[kv.value_len] = 0;
            return value;
        }
    return NULL;
}

#define SEC(t) (0 << 2 | (t ? ISCSI_LOGIN_TRANSIT | 1 : 0))
#define OPS    (ISCSI_LOGIN_TRANSIT | 1 << 2 | 3)

static const char first[] =
    "InitiatorName=iqn.test\0TargetName=" IQN "\0SessionType=Normal\0AuthMethod=CHAP,None\0";

/* Runs the login up to our challenge; returns its id and challenge. */
static void to_challenge(struct iscsi_login *l, uint8_t *id, uint8_t challenge[16])
{
    struct step s;
    static const char a[] = "CHAP_A=7,5\0";

    iscsi_login_init(l, &cfg, 9);
    assert_int_equal(step(l, SEC(0), first, sizeof(first) - 1, &s), ISCSI_LOGIN_MORE);
    assert_string_equal(answer(&s, "AuthMethod"), "CHAP");
    assert_int_equal(step(l, SEC(0), a, sizeof(a) - 1, &s), ISCSI_LOGIN_MORE);
    assert_string_equal(answer(&s, "CHAP_A"), "5");
    *id = (uint8_t)atoi(answer(&s, "CHAP_I"));
    const char *c = answer(&s, "CHAP_C");
    assert_int_equal(strlen(c), 34);
    assert_int_equal(iscsi_chap_decode(c, strlen(c), challenge, 16), 16);
}

static size_t chap_reply(char *text, uint8_t id, const uint8_t challenge[16], const char *secret,
                         const char *extra)
{
    uint8_t md[16];
    char hex[40];
    iscsi_chap_response(id, secret, strlen(secret), challenge, 16, md);
    iscsi_chap_encode(md, 16, hex);
    int n = sprintf(text, "CHAP_N=alice%cCHAP_R=%s%c", 0, hex, 0);
    if (extra) {
        size_t e = strlen(extra);
        memcpy(text + n, extra, e + 1);
        for (size_t i = 0; i < e; i++)
            if (text[n + i] == '|')
                text[n + i] = 0;
        n += (int)e + 1;
    }
    return (size_t)n;
}

static void test_mutual_chap_then_operational(void **state)
{
    struct iscsi_login l;
    struct step s;
    uint8_t id, challenge[16], md[16], mine[16] = "initiator-chal!";
    char text[512], hex[40];

    to_challenge(&l, &id, challenge);
    iscsi_chap_encode(mine, 16, hex);
    char extra[128];
    snprintf(extra, sizeof(extra), "CHAP_I=77|CHAP_C=%s", hex);
    size_t n = chap_reply(text, id, challenge, "0123456789ab", extra);
    assert_int_equal(step(&l, SEC(1), text, n, &s), ISCSI_LOGIN_MORE);
    assert_int_equal(s.rsp[1], ISCSI_LOGIN_TRANSIT | 1);
    assert_string_equal(answer(&s, "CHAP_N"), "bob");
    iscsi_chap_response(77, "the other one", 13, mine, 16, md);
    iscsi_chap_encode(md, 16, hex);
    assert_string_equal(answer(&s, "CHAP_R"), hex);
    static const char ops[] = "HeaderDigest=CRC32C,None\0DataDigest=None,CRC32C\0";
    assert_int_equal(step(&l, OPS, ops, sizeof(ops) - 1, &s), ISCSI_LOGIN_DONE);
    assert_string_equal(answer(&s, "HeaderDigest"), "CRC32C");
    assert_string_equal(answer(&s, "DataDigest"), "None");
    assert_true(l.params.header_digest);
    assert_false(l.params.data_digest);
}

static void test_chap_failures(void **state)
{
    struct iscsi_login l;
    struct step s;
    uint8_t id, challenge[16];
    char text[512], hex[40], extra[128];
    size_t n;

    /* a wrong secret */
    to_challenge(&l, &id, challenge);
    n = chap_reply(text, id, challenge, "0123456789ac", "CHAP_I=1|CHAP_C=0x0102030405060708");
    assert_int_equal(step(&l, SEC(1), text, n, &s), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(s.rsp + 36), ISCSI_LOGIN_AUTH_FAILED);
    /* the right one, but our challenge reflected back */
    to_challenge(&l, &id, challenge);
    iscsi_chap_encode(challenge, 16, hex);
    snprintf(extra, sizeof(extra), "CHAP_I=%u|CHAP_C=%s", id, hex);
    n = chap_reply(text, id, challenge, "0123456789ab", extra);
    assert_int_equal(step(&l, SEC(1), text, n, &s), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(s.rsp + 36), ISCSI_LOGIN_AUTH_FAILED);
    /* mutual CHAP configured, the initiator does not ask the target to prove itself */
    to_challenge(&l, &id, challenge);
    n = chap_reply(text, id, challenge, "0123456789ab", NULL);
    assert_int_equal(step(&l, SEC(1), text, n, &s), ISCSI_LOGIN_FAIL);
    /* another user */
    to_challenge(&l, &id, challenge);
    n = chap_reply(text, id, challenge, "0123456789ab", "CHAP_I=1|CHAP_C=0x0102030405060708");
    memcpy(text + 7, "alicf", 5);
    assert_int_equal(step(&l, SEC(1), text, n, &s), ISCSI_LOGIN_FAIL);

    /* only MD5 is an algorithm */
    static const char a7[] = "CHAP_A=7\0";
    iscsi_login_init(&l, &cfg, 9);
    assert_int_equal(step(&l, SEC(0), first, sizeof(first) - 1, &s), ISCSI_LOGIN_MORE);
    assert_int_equal(step(&l, SEC(0), a7, sizeof(a7) - 1, &s), ISCSI_LOGIN_FAIL);
    /* None offered to a target that demands CHAP */
    static const char none[] = "InitiatorName=iqn.test\0TargetName=" IQN "\0AuthMethod=None\0";
    iscsi_login_init(&l, &cfg, 9);
    assert_int_equal(step(&l, SEC(1), none, sizeof(none) - 1, &s), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(s.rsp + 36), ISCSI_LOGIN_AUTH_FAILED);
    /* straight to the operational stage, skipping security */
    static const char skip[] = "InitiatorName=iqn.test\0TargetName=" IQN "\0";
    iscsi_login_init(&l, &cfg, 9);
    assert_int_equal(step(&l, OPS, skip, sizeof(skip) - 1, &s), ISCSI_LOGIN_FAIL);
    assert_int_equal(iscsi_get16(s.rsp + 36), ISCSI_LOGIN_AUTH_FAILED);
    /* transit asked in the middle of CHAP: the target holds the stage (T=0) */
    static const char a5[] = "CHAP_A=5\0";
    iscsi_login_init(&l, &cfg, 9);
    assert_int_equal(step(&l, SEC(0), first, sizeof(first) - 1, &s), ISCSI_LOGIN_MORE);
    assert_int_equal(step(&l, SEC(1), a5, sizeof(a5) - 1, &s), ISCSI_LOGIN_MORE);
    assert_int_equal(s.rsp[1] & ISCSI_LOGIN_TRANSIT, 0);
    /* CHAP keys before CHAP was chosen */
    iscsi_login_init(&l, &cfg, 9);
    static const char early[] = "InitiatorName=iqn.test\0TargetName=" IQN "\0CHAP_N=alice\0";
    assert_int_equal(step(&l, SEC(0), early, sizeof(early) - 1, &s), ISCSI_LOGIN_FAIL);
}

static void test_config_refuses_short_or_shared_secrets(void **state)
{
    static struct iscsi_target_config c;
    char err[256];

    iscsi_config_default(&c);
    c.ntargets = 1;
    strcpy(c.targets[0].iqn, IQN);
    c.targets[0].nluns = 1;
    strcpy(c.targets[0].luns[0].device, "PhysicalDrive0");
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), 0);
    strcpy(c.targets[0].chap.user, "alice");
    strcpy(c.targets[0].chap.secret, "short");
    c.targets[0].chap.secret_len = 5;
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "at least 12"));
    strcpy(c.targets[0].chap.secret, "long enough!");
    c.targets[0].chap.secret_len = 12;
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), 0);
    strcpy(c.targets[0].chap.mutual_user, "bob");
    strcpy(c.targets[0].chap.mutual_secret, "long enough!");
    c.targets[0].chap.mutual_secret_len = 12;
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "differ"));
    /* LUN maps: a LUN twice, a name twice */
    c.targets[0].chap.mutual_user[0] = 0;
    c.targets[0].chap.mutual_secret_len = 0;
    c.targets[0].nluns = 2;
    strcpy(c.targets[0].luns[1].device, "PhysicalDrive1");
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), -EINVAL);
    c.targets[0].luns[1].lun = 1;
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), 0);
    c.ntargets = 2;
    c.targets[1] = c.targets[0];
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), -EINVAL);
    strcpy(c.targets[1].iqn, "not-an-iqn");
    assert_int_equal(iscsi_config_check(&c, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_rfc3720_vectors),
        cmocka_unit_test(test_chap_value_codec),
        cmocka_unit_test(test_mutual_chap_then_operational),
        cmocka_unit_test(test_chap_failures),
        cmocka_unit_test(test_config_refuses_short_or_shared_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
