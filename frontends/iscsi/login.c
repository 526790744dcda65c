/*
 * iSCSI login phase (RFC 7143 6.3, 11.12, 11.13) and the negotiation of the keys of section 13.
 * Contract: iscsi_login_step() answers exactly one Login Request; it never reads past the data
 * segment it is given, and a state violation (stage out of order, changed ISID, T with C, a next
 * stage that goes backwards) ends the login with an initiator-error status, after which the caller
 * closes the connection (6.3: a failed login ends the connection).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "frontends/iscsi/login.h"

/* What this target answers for the keys whose value is its own choice. */
#define ISCSI_OUR_TIME2WAIT   2
#define ISCSI_OUR_TIME2RETAIN 20

void iscsi_params_default(struct iscsi_params *p, const struct iscsi_target_limits *limits)
{
    /* Section 13 defaults; they hold for any key a login does not mention. */
    memset(p, 0, sizeof(*p));
    p->max_xmit_dsl = 8192;
    p->max_recv_dsl = limits->max_recv_dsl;
    p->first_burst = 65536;
    p->max_burst = 262144;
    p->max_outstanding_r2t = 1;
    p->time2wait = 2;
    p->time2retain = 20;
    p->immediate_data = true;
    p->initial_r2t = true;
    p->data_pdu_in_order = true;
    p->data_seq_in_order = true;
    p->erl = 0;
    p->target = -1;
    if (p->first_burst > limits->first_burst)
        p->first_burst = limits->first_burst;
    if (p->max_burst > limits->max_burst)
        p->max_burst = limits->max_burst;
    if (!limits->immediate_data)
        p->immediate_data = false;
}

void iscsi_login_init(struct iscsi_login *l, const struct iscsi_login_config *cfg, uint16_t tsih)
{
    memset(l, 0, sizeof(*l));
    l->cfg = cfg;
    l->tsih = tsih;
    iscsi_params_default(&l->params, &cfg->limits);
}

/* True when a comma-separated list value holds item. */
static bool iscsi_list_has(const struct iscsi_kv *kv, const char *item)
{
    size_t n = strlen(item), i = 0;

    while (i <= kv->value_len) {
        size_t j = i;
        while (j < kv->value_len && kv->value[j] != ',')
            j++;
        if (j - i == n && memcmp(kv->value + i, item, n) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static int iscsi_bool(const struct iscsi_kv *kv, bool *out)
{
    if (iscsi_kv_value_is(kv, "Yes"))
        *out = true;
    else if (iscsi_kv_value_is(kv, "No"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static void iscsi_copy_name(char *dst, const struct iscsi_kv *kv)
{
    size_t n = kv->value_len < ISCSI_NAME_MAX - 1 ? kv->value_len : ISCSI_NAME_MAX - 1;
    memcpy(dst, kv->value, n);
    dst[n] = 0;
}

void iscsi_send_targets(const struct iscsi_login_config *cfg, const struct iscsi_kv *kv,
                        struct iscsi_text_out *out)
{
    /* Appendix C: All, a target name, or empty (the session's own target). */
    for (unsigned i = 0; i < cfg->ntargets; i++) {
        const char *iqn = cfg->targets[i].iqn;
        if (iscsi_kv_value_is(kv, "All") || kv->value_len == 0 || iscsi_kv_value_is(kv, iqn)) {
            iscsi_text_add(out, "TargetName", "%s", iqn);
            iscsi_text_add(out, "TargetAddress", "%s,%u", cfg->address, cfg->tpgt);
        }
    }
}

/* The first of the offered digests this target takes (13.1: the responder picks in the offer's
 * order): 1 CRC32C, 0 None, -1 neither. */
static int iscsi_pick_digest(const struct iscsi_kv *kv, bool crc_ok)
{
    size_t i = 0;

    while (i <= kv->value_len) {
        size_t j = i;
        while (j < kv->value_len && kv->value[j] != ',')
            j++;
        if (j - i == 6 && memcmp(kv->value + i, "CRC32C", 6) == 0 && crc_ok)
            return 1;
        if (j - i == 4 && memcmp(kv->value + i, "None", 4) == 0)
            return 0;
        i = j + 1;
    }
    return -1;
}

/* A numerical key (13): range-checked, answered with the result function's value. */
static void iscsi_number_key(const struct iscsi_kv *kv, uint64_t min, uint64_t max, uint32_t *param,
                             uint32_t ours, bool take_max, struct iscsi_text_out *out)
{
    uint64_t v;

    if (iscsi_kv_number(kv, min, max, &v)) {
        iscsi_text_add_kv(out, kv, "Reject");
        return;
    }
    if (take_max)
        *param = v > ours ? (uint32_t)v : ours;
    else
        *param = v < ours ? (uint32_t)v : ours;
    char value[16];
    snprintf(value, sizeof(value), "%u", *param);
    iscsi_text_add_kv(out, kv, value);
}

static bool iscsi_is_answer(const struct iscsi_kv *kv)
{
    return iscsi_kv_value_is(kv, "NotUnderstood") || iscsi_kv_value_is(kv, "Reject") ||
           iscsi_kv_value_is(kv, "Irrelevant");
}

int iscsi_negotiate(struct iscsi_params *p, const struct iscsi_login_config *cfg, bool login,
                    const uint8_t *text, size_t len, struct iscsi_text_out *out, bool *sent_mrdsl,
                    struct iscsi_auth_keys *auth)
{
    const struct iscsi_target_limits *lim = &cfg->limits;
    struct iscsi_kv kv;
    size_t pos = 0;
    uint64_t v;
    bool b;
    int rc;

    /* FirstBurstLength may not exceed MaxBurstLength (13.14): take MaxBurstLength first. */
    while (login && (rc = iscsi_text_next(text, len, &pos, &kv)) == 1)
        if (iscsi_kv_key_is(&kv, "MaxBurstLength") &&
            iscsi_kv_number(&kv, 512, ISCSI_MAX_DSL, &v) == 0)
            p->max_burst = v < lim->max_burst ? (uint32_t)v : lim->max_burst;
    pos = 0;
    while ((rc = iscsi_text_next(text, len, &pos, &kv)) == 1) {
        if (iscsi_is_answer(&kv))
            continue;
        if (iscsi_kv_key_is(&kv, "SendTargets")) {
            iscsi_send_targets(cfg, &kv, out);
            continue;
        }
        if (!login) {
            if (iscsi_kv_key_is(&kv, "MaxRecvDataSegmentLength") &&
                iscsi_kv_number(&kv, 512, ISCSI_MAX_DSL, &v) == 0)
                p->max_xmit_dsl = (uint32_t)v; /* declarative, no answer (13.12) */
            else
                iscsi_text_add_kv(out, &kv, "NotUnderstood");
            continue;
        }
        if (iscsi_kv_key_is(&kv, "InitiatorName")) {
            if (kv.value_len == 0 || kv.value_len >= ISCSI_NAME_MAX)
                return ISCSI_LOGIN_INITIATOR_ERROR;
            iscsi_copy_name(p->initiator_name, &kv);
        } else if (iscsi_kv_key_is(&kv, "TargetName")) {
            if (kv.value_len == 0 || kv.value_len >= ISCSI_NAME_MAX)
                return ISCSI_LOGIN_NOT_FOUND;
            iscsi_copy_name(p->target_name, &kv);
        } else if (iscsi_kv_key_is(&kv, "InitiatorAlias") || iscsi_kv_key_is(&kv, "TargetAlias") ||
                   iscsi_kv_key_is(&kv, "TargetAddress") ||
                   iscsi_kv_key_is(&kv, "TargetPortalGroupTag")) {
            /* declarative, nothing to answer */
        } else if (iscsi_kv_key_is(&kv, "SessionType")) {
            if (iscsi_kv_value_is(&kv, "Discovery"))
                p->discovery = true;
            else if (iscsi_kv_value_is(&kv, "Normal"))
                p->discovery = false;
            else
                return ISCSI_LOGIN_SESSION_TYPE;
        } else if (iscsi_kv_key_is(&kv, "AuthMethod")) {
            if (auth) { /* the security stage answers, once it knows the target */
                auth->auth_method = true;
                auth->offer_none = iscsi_list_has(&kv, "None");
                auth->offer_chap = iscsi_list_has(&kv, "CHAP");
                continue;
            }
            if (!iscsi_list_has(&kv, "None"))
                return ISCSI_LOGIN_AUTH_FAILED;
            iscsi_text_add_kv(out, &kv, "None");
        } else if (auth && kv.key_len == 6 && memcmp(kv.key, "CHAP_", 5) == 0 &&
                   strchr("AICNR", kv.key[5])) {
            struct iscsi_kv *slot = kv.key[5] == 'A'   ? &auth->a
                                    : kv.key[5] == 'I' ? &auth->i
                                    : kv.key[5] == 'C' ? &auth->c
                                    : kv.key[5] == 'N' ? &auth->n
                                                       : &auth->r;
            bool *has = kv.key[5] == 'A'   ? &auth->has_a
                        : kv.key[5] == 'I' ? &auth->has_i
                        : kv.key[5] == 'C' ? &auth->has_c
                        : kv.key[5] == 'N' ? &auth->has_n
                                           : &auth->has_r;
            if (*has) /* 6.2: a key once per text */
                return ISCSI_LOGIN_INITIATOR_ERROR;
            *has = true;
            *slot = kv;
        } else if (iscsi_kv_key_is(&kv, "HeaderDigest") || iscsi_kv_key_is(&kv, "DataDigest")) {
            int d = iscsi_pick_digest(&kv, lim->digests);
            iscsi_text_add_kv(out, &kv, d < 0 ? "Reject" : d ? "CRC32C" : "None");
            if (d >= 0) {
                if (kv.key[0] == 'H')
                    p->header_digest = d == 1;
                else
                    p->data_digest = d == 1;
            }
        } else if (iscsi_kv_key_is(&kv, "MaxConnections")) {
            iscsi_number_key(&kv, 1, 65535, &(uint32_t){0}, 1, false, out);
        } else if (iscsi_kv_key_is(&kv, "InitialR2T")) {
            /* 13.10: result function OR */
            if (iscsi_bool(&kv, &b)) {
                iscsi_text_add_kv(out, &kv, "Reject");
                continue;
            }
            p->initial_r2t = b || lim->initial_r2t;
            iscsi_text_add_kv(out, &kv, p->initial_r2t ? "Yes" : "No");
        } else if (iscsi_kv_key_is(&kv, "ImmediateData")) {
            /* 13.11: result function AND */
            if (iscsi_bool(&kv, &b)) {
                iscsi_text_add_kv(out, &kv, "Reject");
                continue;
            }
            p->immediate_data = b && lim->immediate_data;
            iscsi_text_add_kv(out, &kv, p->immediate_data ? "Yes" : "No");
        } else if (iscsi_kv_key_is(&kv, "MaxRecvDataSegmentLength")) {
            if (iscsi_kv_number(&kv, 512, ISCSI_MAX_DSL, &v))
                return ISCSI_LOGIN_INITIATOR_ERROR;
            p->max_xmit_dsl = (uint32_t)v;
            if (!*sent_mrdsl) {
                iscsi_text_add(out, "MaxRecvDataSegmentLength", "%u", p->max_recv_dsl);
                *sent_mrdsl = true;
            }
        } else if (iscsi_kv_key_is(&kv, "MaxBurstLength")) {
            iscsi_number_key(&kv, 512, ISCSI_MAX_DSL, &p->max_burst, p->max_burst, false, out);
        } else if (iscsi_kv_key_is(&kv, "FirstBurstLength")) {
            uint32_t ours = lim->first_burst < p->max_burst ? lim->first_burst : p->max_burst;
            iscsi_number_key(&kv, 512, ISCSI_MAX_DSL, &p->first_burst, ours, false, out);
        } else if (iscsi_kv_key_is(&kv, "DefaultTime2Wait")) {
            iscsi_number_key(&kv, 0, 3600, &p->time2wait, ISCSI_OUR_TIME2WAIT, true, out);
        } else if (iscsi_kv_key_is(&kv, "DefaultTime2Retain")) {
            iscsi_number_key(&kv, 0, 3600, &p->time2retain, ISCSI_OUR_TIME2RETAIN, false, out);
        } else if (iscsi_kv_key_is(&kv, "MaxOutstandingR2T")) {
            iscsi_number_key(&kv, 1, 65535, &p->max_outstanding_r2t, 1, false, out);
        } else if (iscsi_kv_key_is(&kv, "DataPDUInOrder") ||
                   iscsi_kv_key_is(&kv, "DataSequenceInOrder")) {
            /* 13.18, 13.19: result function OR; we answer Yes, so the result is Yes */
            if (iscsi_bool(&kv, &b))
                iscsi_text_add_kv(out, &kv, "Reject");
            else
                iscsi_text_add_kv(out, &kv, "Yes");
        } else if (iscsi_kv_key_is(&kv, "ErrorRecoveryLevel")) {
            uint32_t erl = 0;
            iscsi_number_key(&kv, 0, 2, &erl, 0, false, out);
            p->erl = (uint8_t)erl;
        } else if (iscsi_kv_key_is(&kv, "IFMarker") || iscsi_kv_key_is(&kv, "OFMarker")) {
            /* RFC 3720 markers, gone from RFC 7143: an older initiator still offers them */
            iscsi_text_add_kv(out, &kv, "No");
        } else if (iscsi_kv_key_is(&kv, "IFMarkInt") || iscsi_kv_key_is(&kv, "OFMarkInt")) {
            iscsi_text_add_kv(out, &kv, "Irrelevant");
        } else {
            iscsi_text_add_kv(out, &kv, "NotUnderstood"); /* 6.2.1 */
        }
    }
    if (rc < 0)
        return ISCSI_LOGIN_INITIATOR_ERROR;
    return ISCSI_LOGIN_OK;
}

static enum iscsi_login_result iscsi_login_fail(struct iscsi_login *l, uint8_t rsp[ISCSI_BHS_LEN],
                                                uint16_t status, struct iscsi_text_out *out)
{
    out->len = 0;
    iscsi_put24(rsp + ISCSI_OFF_DSL, 0);
    rsp[1] = (uint8_t)(l->stage << 2);
    rsp[36] = (uint8_t)(status >> 8);
    rsp[37] = (uint8_t)status;
    iscsi_put16(rsp + 14, 0);
    return ISCSI_LOGIN_FAIL;
}

static const struct iscsi_chap_config *iscsi_login_chap(const struct iscsi_login *l)
{
    const struct iscsi_chap_config *chap;

    if (l->params.discovery || l->params.target < 0)
        return NULL;
    chap = l->cfg->targets[l->params.target].chap;
    return chap && chap->user[0] ? chap : NULL;
}

static bool iscsi_kv_equals(const struct iscsi_kv *kv, const char *s)
{
    return kv->value_len == strlen(s) && memcmp(kv->value, s, kv->value_len) == 0;
}

/*
 * The security stage (12.1): AuthMethod, then for CHAP (12.1.3) CHAP_A, our CHAP_I/CHAP_C, the
 * initiator's CHAP_N/CHAP_R and, for mutual CHAP, its CHAP_I/CHAP_C answered with our
 * CHAP_N/CHAP_R. Returns ISCSI_LOGIN_OK or a failure status.
 */
static int iscsi_login_security(struct iscsi_login *l, const struct iscsi_auth_keys *k,
                                struct iscsi_text_out *out)
{
    const struct iscsi_chap_config *chap = iscsi_login_chap(l);
    bool any_chap = k->has_a || k->has_i || k->has_c || k->has_n || k->has_r;

    if (k->auth_method) {
        if (l->auth != ISCSI_AUTH_START)
            return ISCSI_LOGIN_INITIATOR_ERROR; /* negotiated once (6.2) */
        if (chap && k->offer_chap) {
            iscsi_text_add(out, "AuthMethod", "CHAP");
            l->auth = ISCSI_AUTH_WAIT_A;
        } else if (!chap && k->offer_none) {
            iscsi_text_add(out, "AuthMethod", "None");
            l->auth = ISCSI_AUTH_DONE;
        } else {
            return ISCSI_LOGIN_AUTH_FAILED; /* nothing offered that this target accepts */
        }
    }
    if (!any_chap)
        return ISCSI_LOGIN_OK;
    if (l->auth == ISCSI_AUTH_WAIT_A) {
        if (!k->has_a || k->has_i || k->has_c || k->has_n || k->has_r)
            return ISCSI_LOGIN_AUTH_FAILED;
        /* CHAP_A: a list of algorithms; 5 (MD5) is the one there is (RFC 1994). */
        if (!iscsi_list_has(&k->a, "5"))
            return ISCSI_LOGIN_AUTH_FAILED;
        char hex[2 * ISCSI_CHAP_CHALLENGE + 3];
        if (iscsi_random(&l->chap_id, 1) ||
            iscsi_random(l->chap_challenge, sizeof(l->chap_challenge)))
            return ISCSI_LOGIN_TARGET_ERROR;
        iscsi_chap_encode(l->chap_challenge, sizeof(l->chap_challenge), hex);
        iscsi_text_add(out, "CHAP_A", "5");
        iscsi_text_add(out, "CHAP_I", "%u", l->chap_id);
        iscsi_text_add(out, "CHAP_C", "%s", hex);
        l->auth = ISCSI_AUTH_WAIT_R;
        return ISCSI_LOGIN_OK;
    }
    if (l->auth != ISCSI_AUTH_WAIT_R || !chap || !k->has_n || !k->has_r || k->has_a)
        return ISCSI_LOGIN_AUTH_FAILED;
    uint8_t want[ISCSI_MD5_LEN], got[ISCSI_CHAP_BIN_MAX];
    int n = iscsi_chap_decode(k->r.value, k->r.value_len, got, sizeof(got));
    iscsi_chap_response(l->chap_id, chap->secret, chap->secret_len, l->chap_challenge,
                        sizeof(l->chap_challenge), want);
    if (!iscsi_kv_equals(&k->n, chap->user) || n != ISCSI_MD5_LEN ||
        !iscsi_chap_equal(got, want, ISCSI_MD5_LEN))
        return ISCSI_LOGIN_AUTH_FAILED;
    if (k->has_i != k->has_c)
        return ISCSI_LOGIN_AUTH_FAILED;
    if (chap->mutual_user[0] && !k->has_c) /* mutual CHAP configured: the target proves too */
        return ISCSI_LOGIN_AUTH_FAILED;
    if (k->has_c) {
        uint64_t id;
        uint8_t challenge[ISCSI_CHAP_BIN_MAX], rsp[ISCSI_MD5_LEN];
        char hex[2 * ISCSI_MD5_LEN + 3];
        if (!chap->mutual_user[0]) /* no secret to answer with */
            return ISCSI_LOGIN_AUTH_FAILED;
        int cn = iscsi_chap_decode(k->c.value, k->c.value_len, challenge, sizeof(challenge));
        if (iscsi_kv_number(&k->i, 0, 255, &id) || cn <= 0)
            return ISCSI_LOGIN_AUTH_FAILED;
        /* 12.1.3: a challenge equal to ours is a reflection attack. */
        if (cn == ISCSI_CHAP_CHALLENGE && memcmp(challenge, l->chap_challenge, (size_t)cn) == 0)
            return ISCSI_LOGIN_AUTH_FAILED;
        iscsi_chap_response((uint8_t)id, chap->mutual_secret, chap->mutual_secret_len, challenge,
                            (size_t)cn, rsp);
        iscsi_chap_encode(rsp, sizeof(rsp), hex);
        iscsi_text_add(out, "CHAP_N", "%s", chap->mutual_user);
        iscsi_text_add(out, "CHAP_R", "%s", hex);
    }
    l->auth = ISCSI_AUTH_DONE;
    return ISCSI_LOGIN_OK;
}

enum iscsi_login_result iscsi_login_step(struct iscsi_login *l, const struct iscsi_pdu *req,
                                         const uint8_t *data, struct iscsi_text_out *out,
                                         uint8_t rsp[ISCSI_BHS_LEN])
{
    const uint8_t *b = req->bhs;
    bool transit = (b[1] & ISCSI_LOGIN_TRANSIT) != 0, cont = (b[1] & ISCSI_LOGIN_CONTINUE) != 0;
    uint8_t csg = ISCSI_LOGIN_CSG(b[1]), nsg = ISCSI_LOGIN_NSG(b[1]);
    bool first = !l->started;
    struct iscsi_auth_keys keys;
    int status;

    iscsi_bhs_init(rsp, ISCSI_OP_LOGIN_RSP, 0, 0, req->itt);
    memcpy(rsp + 8, b + 8, 6); /* ISID */
    out->len = 0;
    if (req->opcode != ISCSI_OP_LOGIN_REQ)
        return iscsi_login_fail(l, rsp, ISCSI_LOGIN_INVALID_DURING_LOGIN, out);
    if (first) {
        l->started = true;
        l->stage = csg;
        memcpy(l->isid, b + 8, 6);
        /* 11.12.4: this target speaks version 0 only */
        if (b[3] > 0)
            return iscsi_login_fail(l, rsp, ISCSI_LOGIN_UNSUPPORTED_VERSION, out);
        /* A non-zero TSIH adds a connection to a session: MaxConnections=1, none to join. */
        if (iscsi_get16(b + 14) != 0)
            return iscsi_login_fail(l, rsp, ISCSI_LOGIN_NO_SESSION, out);
    }
    /* 6.3: stages in order, one ISID, T never with C, never backwards. */
    if (memcmp(l->isid, b + 8, 6) != 0 || csg != l->stage || csg > ISCSI_STAGE_OPERATIONAL ||
        (transit && cont) || (transit && (nsg <= csg || nsg == 2)))
        return iscsi_login_fail(l, rsp, ISCSI_LOGIN_INITIATOR_ERROR, out);
    if (req->data_len > sizeof(l->text) - l->text_len)
        return iscsi_login_fail(l, rsp, ISCSI_LOGIN_OUT_OF_RESOURCES, out);
    if (req->data_len)
        memcpy(l->text + l->text_len, data, req->data_len);
    l->text_len += req->data_len;
    rsp[1] = (uint8_t)(csg << 2);
    if (cont)
        return ISCSI_LOGIN_MORE; /* 6.3: an empty response asks for the rest of the text */

    memset(&keys, 0, sizeof(keys));
    status =
        iscsi_negotiate(&l->params, l->cfg, true, l->text, l->text_len, out, &l->sent_mrdsl, &keys);
    if (status == ISCSI_LOGIN_OK && first) {
        /* 13.4, 13.5: the first request names the initiator, and the target of a normal
         * session, which must be one of ours. */
        l->params.target = -1;
        if (!l->params.initiator_name[0])
            status = ISCSI_LOGIN_MISSING_PARAMETER;
        else if (!l->params.discovery && !l->params.target_name[0])
            status = ISCSI_LOGIN_MISSING_PARAMETER;
        else if (!l->params.discovery) {
            for (unsigned i = 0; i < l->cfg->ntargets && l->params.target < 0; i++)
                if (strcmp(l->params.target_name, l->cfg->targets[i].iqn) == 0)
                    l->params.target = (int)i;
            if (l->params.target < 0)
                status = ISCSI_LOGIN_NOT_FOUND;
        }
    }
    /* The security keys belong to the security stage (12). An AuthMethod in the operational
     * stage (some initiators send one when they skip security) is answered None when None is
     * all this target needs, else fails authentication; CHAP keys there are an error. */
    if (status == ISCSI_LOGIN_OK) {
        bool chap_keys = keys.has_a || keys.has_i || keys.has_c || keys.has_n || keys.has_r;
        if (csg == ISCSI_STAGE_SECURITY)
            status = iscsi_login_security(l, &keys, out);
        else if (chap_keys)
            status = ISCSI_LOGIN_INITIATOR_ERROR;
        else if (keys.auth_method && (iscsi_login_chap(l) || !keys.offer_none))
            status = ISCSI_LOGIN_AUTH_FAILED;
        else if (keys.auth_method)
            iscsi_text_add(out, "AuthMethod", "None");
    }
    l->text_len = 0;
    if (status == ISCSI_LOGIN_OK && csg == ISCSI_STAGE_OPERATIONAL && !l->secured &&
        iscsi_login_chap(l))
        status = ISCSI_LOGIN_AUTH_FAILED; /* 12: straight to operational skips required CHAP */
    if (status != ISCSI_LOGIN_OK)
        return iscsi_login_fail(l, rsp, (uint16_t)status, out);
    if (first && !l->params.discovery && !l->sent_tpgt) {
        /* 13.9: the first response of a normal session names the portal group. */
        iscsi_text_add(out, "TargetPortalGroupTag", "%u", l->cfg->tpgt);
        l->sent_tpgt = true;
    }
    if (csg == ISCSI_STAGE_SECURITY && transit) {
        if (l->auth == ISCSI_AUTH_START && iscsi_login_chap(l))
            return iscsi_login_fail(l, rsp, ISCSI_LOGIN_AUTH_FAILED, out);
        if (l->auth == ISCSI_AUTH_WAIT_A || l->auth == ISCSI_AUTH_WAIT_R)
            transit = false; /* 6.3: CHAP is not over; the target answers T=0 */
        else
            l->secured = true;
    }
    if (transit && nsg == ISCSI_STAGE_FULL_FEATURE && !l->sent_mrdsl) {
        iscsi_text_add(out, "MaxRecvDataSegmentLength", "%u", l->params.max_recv_dsl);
        l->sent_mrdsl = true;
    }
    /* An answer that does not fit one response: the keys it negotiated (digests among them)
     * would be in force without the initiator having been told, so the login ends, with or
     * without T (answers are not continued over C-bit responses here). */
    if (out->overflow)
        return iscsi_login_fail(l, rsp, ISCSI_LOGIN_TARGET_ERROR, out);
    if (!transit) {
        iscsi_put24(rsp + ISCSI_OFF_DSL, (uint32_t)out->len);
        return ISCSI_LOGIN_MORE;
    }
    rsp[1] = (uint8_t)(ISCSI_LOGIN_TRANSIT | csg << 2 | nsg);
    iscsi_put24(rsp + ISCSI_OFF_DSL, (uint32_t)out->len);
    l->stage = nsg;
    if (nsg != ISCSI_STAGE_FULL_FEATURE)
        return ISCSI_LOGIN_MORE;
    iscsi_put16(rsp + 14, l->tsih);
    return ISCSI_LOGIN_DONE;
}
