/*
 * iSCSI login (RFC 7143 6.3, 11.12-13) and key negotiation (RFC 7143 13): a state machine that
 * takes one Login Request at a time and produces the Login Response header and text, without
 * sockets, so tests and the fuzzer drive it directly. Security stage with AuthMethod=None, or CHAP
 * (one-way or mutual) when the target has a CHAP user; operational negotiation with this
 * target's limits (CRC32C digests included), discovery and normal sessions, several targets on
 * one portal. The caller owns StatSN/ExpCmdSN/MaxCmdSN.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_LOGIN_H
#define STORSTACK_FRONTENDS_ISCSI_LOGIN_H

#include "frontends/iscsi/auth.h"
#include "frontends/iscsi/pdu.h"
#include "frontends/iscsi/text.h"

#define ISCSI_NAME_MAX       224  /* 4.2.7.1: iSCSI names are at most 223 bytes */
#define ISCSI_LOGIN_TEXT_MAX 8192 /* login text gathered over C-bit PDUs */

/* What this target offers; the negotiated values never exceed these. */
struct iscsi_target_limits {
    uint32_t max_recv_dsl; /* our MaxRecvDataSegmentLength (declared) */
    uint32_t max_burst;
    uint32_t first_burst;
    bool immediate_data;
    bool initial_r2t;
    bool digests; /* CRC32C may be negotiated (else only None) */
};

/* The session's operational parameters (RFC 7143 13), defaults until negotiated. */
struct iscsi_params {
    uint32_t max_xmit_dsl; /* the initiator's MaxRecvDataSegmentLength: our Data-In limit */
    uint32_t max_recv_dsl; /* ours */
    uint32_t first_burst;
    uint32_t max_burst;
    uint32_t max_outstanding_r2t;
    uint32_t time2wait;
    uint32_t time2retain;
    bool immediate_data;
    bool initial_r2t;
    bool data_pdu_in_order;
    bool data_seq_in_order;
    uint8_t erl;
    bool header_digest; /* CRC32C after the BHS and AHS */
    bool data_digest;   /* CRC32C after the padded data segment */
    bool discovery;
    int target; /* index in the login config's targets; -1 for a discovery session */
    char initiator_name[ISCSI_NAME_MAX];
    char target_name[ISCSI_NAME_MAX];
};

/* One target of the portal: its name and, when chap->user is set, the CHAP it demands. */
struct iscsi_login_target {
    const char *iqn;
    const struct iscsi_chap_config *chap; /* NULL: AuthMethod=None */
};

struct iscsi_login_config {
    const struct iscsi_login_target *targets;
    unsigned ntargets;
    const char *address; /* for SendTargets: "127.0.0.1:3260" */
    uint16_t tpgt;       /* TargetPortalGroupTag */
    struct iscsi_target_limits limits;
};

/* What one login text said about security (values point into the login's text). */
struct iscsi_auth_keys {
    bool auth_method, offer_none, offer_chap;
    bool has_a, has_i, has_c, has_n, has_r;
    struct iscsi_kv a, i, c, n, r;
};

enum iscsi_auth_state {
    ISCSI_AUTH_START,  /* no AuthMethod agreed yet */
    ISCSI_AUTH_WAIT_A, /* AuthMethod=CHAP: the initiator's CHAP_A next */
    ISCSI_AUTH_WAIT_R, /* challenge sent: CHAP_N and CHAP_R next */
    ISCSI_AUTH_DONE,
};

struct iscsi_login {
    const struct iscsi_login_config *cfg;
    enum iscsi_auth_state auth;
    uint8_t chap_id;
    uint8_t chap_challenge[ISCSI_CHAP_CHALLENGE];
    struct iscsi_params params;
    uint8_t stage;   /* current stage: ISCSI_STAGE_* */
    bool started;    /* first request seen */
    bool secured;    /* security stage passed, or skipped */
    bool sent_mrdsl; /* our MaxRecvDataSegmentLength declared */
    bool sent_tpgt;
    bool saw_initiator_name;
    uint16_t tsih; /* the caller sets the value to hand out on success */
    uint8_t isid[6];
    uint32_t itt;
    size_t text_len; /* gathered so far under the C bit */
    uint8_t text[ISCSI_LOGIN_TEXT_MAX];
};

enum iscsi_login_result {
    ISCSI_LOGIN_MORE, /* send the response, expect another request */
    ISCSI_LOGIN_DONE, /* send the response: full feature phase */
    ISCSI_LOGIN_FAIL, /* send the response (a failure status), then close */
};

void iscsi_params_default(struct iscsi_params *p, const struct iscsi_target_limits *limits);
void iscsi_login_init(struct iscsi_login *l, const struct iscsi_login_config *cfg, uint16_t tsih);

/*
 * One Login Request (header checked by iscsi_pdu_parse, data its data segment). Writes the
 * response header into rsp (StatSN fields left to the caller) and its text into out.
 */
enum iscsi_login_result iscsi_login_step(struct iscsi_login *l, const struct iscsi_pdu *req,
                                         const uint8_t *data, struct iscsi_text_out *out,
                                         uint8_t rsp[ISCSI_BHS_LEN]);

/*
 * Negotiates the keys of one text (login or full-feature Text request) into p and answers them
 * into out. Returns ISCSI_LOGIN_OK or a login status (a malformed text, a missing security
 * method). With auth (the login state machine), AuthMethod and the CHAP_* keys are collected
 * there, unanswered, for the security stage to decide; without it AuthMethod is answered None
 * (or fails when None is not offered). Exposed for the unit tests and the fuzzer.
 */
int iscsi_negotiate(struct iscsi_params *p, const struct iscsi_login_config *cfg, bool login,
                    const uint8_t *text, size_t len, struct iscsi_text_out *out, bool *sent_mrdsl,
                    struct iscsi_auth_keys *auth);

/* Answers SendTargets (Appendix C) with this portal's targets. */
void iscsi_send_targets(const struct iscsi_login_config *cfg, const struct iscsi_kv *kv,
                        struct iscsi_text_out *out);

#endif
