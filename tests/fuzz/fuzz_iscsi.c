/*
 * libFuzzer target for the iSCSI target's parsers of outside bytes (frontends/iscsi): the Basic
 * Header Segment checks (pdu.c), the key=value text reader and number parser (text.c), key
 * negotiation and the login state machine (login.c) with its CHAP exchange (auth.c; a second
 * target demands mutual CHAP), the CHAP value decoder and CRC32C. The input's first 48 bytes are
 * a header and the rest its data segment; the whole input is also negotiated as text. Nothing may
 * read past the input or the lengths the parser accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/iscsi/login.h"

static const struct iscsi_chap_config chap = {.user = "alice",
                                              .secret = "0123456789ab",
                                              .secret_len = 12,
                                              .mutual_user = "bob",
                                              .mutual_secret = "the other one",
                                              .mutual_secret_len = 13};
static const struct iscsi_login_target targets[] = {
    {.iqn = "iqn.2026-11.org.storstack:default"},
    {.iqn = "iqn.2026-11.org.storstack:chap", .chap = &chap}};
static const struct iscsi_login_config cfg = {
    .targets = targets,
    .ntargets = 2,
    .address = "127.0.0.1:3260",
    .tpgt = 1,
    .limits = {.max_recv_dsl = 262144,
               .max_burst = 262144,
               .first_burst = 65536,
               .immediate_data = true,
               .initial_r2t = false,
               .digests = true},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct iscsi_login login;
    uint8_t out_buf[ISCSI_LOGIN_TEXT_MAX], rsp[ISCSI_BHS_LEN];
    struct iscsi_text_out out = {.buf = out_buf, .cap = sizeof(out_buf)};
    struct iscsi_params params;
    bool sent = false;

    uint8_t bin[ISCSI_CHAP_BIN_MAX];
    (void)iscsi_chap_decode((const char *)data, size, bin, sizeof(bin));
    (void)iscsi_crc32c(0, data, size);
    iscsi_params_default(&params, &cfg.limits);
    iscsi_negotiate(&params, &cfg, true, data, size, &out, &sent, NULL);
    out.len = 0;
    out.overflow = false;
    iscsi_negotiate(&params, &cfg, false, data, size, &out, &sent, NULL);

    if (size < ISCSI_BHS_LEN)
        return 0;
    /* The header is copied so the parser sees exactly 48 bytes, as from the socket. */
    uint8_t bhs[ISCSI_BHS_LEN];
    struct iscsi_pdu p;
    memcpy(bhs, data, sizeof(bhs));
    if (iscsi_pdu_parse(bhs, ISCSI_LOGIN_MAX_DSL, &p) != 0)
        return 0;
    size_t avail = size - ISCSI_BHS_LEN;
    if (p.data_len > avail)
        return 0; /* the connection would still be waiting for the rest */
    /* An exact-size copy, so ASan sees any read past the data segment. */
    uint8_t *seg = malloc(p.data_len ? p.data_len : 1);
    if (!seg)
        return 0;
    memcpy(seg, data + ISCSI_BHS_LEN, p.data_len);
    if (p.opcode == ISCSI_OP_SCSI_CMD) {
        struct iscsi_scsi_cmd c;
        iscsi_pdu_scsi_cmd(&p, &c);
        (void)iscsi_lun_decode(c.lun);
    }
    if (p.opcode == ISCSI_OP_LOGIN_REQ) {
        /* A session's login goes on over several PDUs: keep the state until it ends. */
        if (!login.started || login.stage == ISCSI_STAGE_FULL_FEATURE)
            iscsi_login_init(&login, &cfg, 1);
        out.len = 0;
        out.overflow = false;
        if (iscsi_login_step(&login, &p, seg, &out, rsp) == ISCSI_LOGIN_FAIL)
            iscsi_login_init(&login, &cfg, 1);
    }
    free(seg);
    return 0;
}
