/*
 * The target's configuration from the registry (docs/iscsi.md, docs/config.md):
 *
 *   [Control\Storstack\iSCSI]           Portal, NopInterval, NopTimeout, Digests (0 = None only)
 *   [Control\Storstack\iSCSI\Target<n>] Name = iqn..., Lun<l> = device name, ChapUser,
 *                                       ChapSecret, MutualChapUser, MutualChapSecret
 *
 * Targets are read from Target0 up to the first one missing; LUNs Lun0..Lun255 of each. Every
 * value is checked here, once, so the portal and the login trust what they get.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

#include "frontends/iscsi/iscsi.h"

#define ISCSI_REG_KEY "Control\\Storstack\\iSCSI"

void iscsi_config_default(struct iscsi_target_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nop_interval = ISCSI_DEFAULT_NOP_INTERVAL;
    cfg->nop_timeout = ISCSI_DEFAULT_NOP_TIMEOUT;
}

/* A registry string: 1 when present, 0 when absent, -1 when it does not fit. */
static int iscsi_reg(storstack_t *stack, const char *key, const char *name, char *out, size_t len)
{
    storstack_status_t st = storstack_reg_get_string(stack, key, name, out, len);
    if (st == STATUS_SUCCESS)
        return 1;
    if (st == STATUS_BUFFER_TOO_SMALL)
        return -1;
    out[0] = 0;
    return 0;
}

static int iscsi_reg_u32(storstack_t *stack, const char *name, uint32_t max, uint32_t *out,
                         char *err, size_t errlen)
{
    char v[32], *end;
    int rc = iscsi_reg(stack, ISCSI_REG_KEY, name, v, sizeof(v));
    if (rc == 0)
        return 0;
    unsigned long n = rc > 0 ? strtoul(v, &end, 0) : 0;
    if (rc < 0 || !v[0] || *end || n > max) {
        snprintf(err, errlen, "%s\\%s: expected a number 0..%u", ISCSI_REG_KEY, name, max);
        return -EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

/* The checks of a whole configuration, whichever way it was built. */
int iscsi_config_check(const struct iscsi_target_config *cfg, char *err, size_t errlen);
int iscsi_config_check(const struct iscsi_target_config *cfg, char *err, size_t errlen)
{
    if (cfg->ntargets > ISCSI_MAX_TARGETS) {
        snprintf(err, errlen, "iSCSI: at most %d targets", ISCSI_MAX_TARGETS);
        return -EINVAL;
    }
    if (cfg->device && (!cfg->device[0] || strlen(cfg->device) >= ISCSI_DEVICE_MAX)) {
        snprintf(err, errlen, "iSCSI: device name empty or longer than %d bytes",
                 ISCSI_DEVICE_MAX - 1);
        return -EINVAL;
    }
    if (cfg->nop_interval && !cfg->nop_timeout) {
        snprintf(err, errlen, "iSCSI: NopTimeout must not be 0 when NopInterval is set");
        return -EINVAL;
    }
    for (unsigned i = 0; i < cfg->ntargets; i++) {
        const struct iscsi_target_def *t = &cfg->targets[i];
        const struct iscsi_chap_config *c = &t->chap;
        /* 4.2.7: iqn., eui. or naa. names */
        if (strncmp(t->iqn, "iqn.", 4) && strncmp(t->iqn, "eui.", 4) &&
            strncmp(t->iqn, "naa.", 4)) {
            snprintf(err, errlen, "iSCSI target %u: name '%s' is not an iqn./eui./naa. name", i,
                     t->iqn);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(cfg->targets[j].iqn, t->iqn) == 0) {
                snprintf(err, errlen, "iSCSI target %u: name '%s' used twice", i, t->iqn);
                return -EINVAL;
            }
        if (t->nluns == 0 || t->nluns > ISCSI_MAX_LUNS) {
            snprintf(err, errlen, "iSCSI target %s: 1..%d LUNs", t->iqn, ISCSI_MAX_LUNS);
            return -EINVAL;
        }
        for (unsigned j = 0; j < t->nluns; j++) {
            if (t->luns[j].lun > ISCSI_LUN_ID_MAX || !t->luns[j].device[0]) {
                snprintf(err, errlen, "iSCSI target %s: LUN %u: bad number or empty device", t->iqn,
                         t->luns[j].lun);
                return -EINVAL;
            }
            for (unsigned k = 0; k < j; k++)
                if (t->luns[k].lun == t->luns[j].lun) {
                    snprintf(err, errlen, "iSCSI target %s: LUN %u mapped twice", t->iqn,
                             t->luns[j].lun);
                    return -EINVAL;
                }
        }
        /* 12.1.3: CHAP secrets of at least 12 bytes; mutual CHAP needs one-way CHAP, and the
         * two directions may not share a secret. */
        if (c->user[0] && c->secret_len < ISCSI_CHAP_SECRET_MIN) {
            snprintf(err, errlen, "iSCSI target %s: ChapSecret must be at least %d bytes", t->iqn,
                     ISCSI_CHAP_SECRET_MIN);
            return -EINVAL;
        }
        if (!c->user[0] && c->secret_len) {
            snprintf(err, errlen, "iSCSI target %s: ChapSecret without ChapUser", t->iqn);
            return -EINVAL;
        }
        if (c->mutual_user[0] && (!c->user[0] || c->mutual_secret_len < ISCSI_CHAP_SECRET_MIN)) {
            snprintf(err, errlen,
                     "iSCSI target %s: mutual CHAP needs ChapUser and a MutualChapSecret of at "
                     "least %d bytes",
                     t->iqn, ISCSI_CHAP_SECRET_MIN);
            return -EINVAL;
        }
        if (!c->mutual_user[0] && c->mutual_secret_len) {
            snprintf(err, errlen, "iSCSI target %s: MutualChapSecret without MutualChapUser",
                     t->iqn);
            return -EINVAL;
        }
        if (c->mutual_user[0] && c->mutual_secret_len == c->secret_len &&
            memcmp(c->secret, c->mutual_secret, c->secret_len) == 0) {
            snprintf(err, errlen, "iSCSI target %s: ChapSecret and MutualChapSecret must differ",
                     t->iqn);
            return -EINVAL;
        }
    }
    return 0;
}

int iscsi_config_from_registry(storstack_t *stack, struct iscsi_target_config *cfg, char *portal,
                               size_t portal_len, char *err, size_t errlen)
{
    uint32_t digests = 1;
    int rc;

    if (portal && portal_len) {
        rc = iscsi_reg(stack, ISCSI_REG_KEY, "Portal", portal, portal_len);
        if (rc < 0) {
            snprintf(err, errlen, "%s\\Portal: too long", ISCSI_REG_KEY);
            return -EINVAL;
        }
        if (rc > 0 && portal[0])
            cfg->portal = portal;
    }
    if ((rc = iscsi_reg_u32(stack, "NopInterval", 3600, &cfg->nop_interval, err, errlen)) ||
        (rc = iscsi_reg_u32(stack, "NopTimeout", 3600, &cfg->nop_timeout, err, errlen)) ||
        (rc = iscsi_reg_u32(stack, "Digests", 1, &digests, err, errlen)))
        return rc;
    cfg->digests_off = !digests;

    for (unsigned i = 0;; i++) {
        char key[96], name[16], v[ISCSI_CHAP_SECRET_MAX];
        struct iscsi_target_def *t;
        snprintf(key, sizeof(key), "%s\\Target%u", ISCSI_REG_KEY, i);
        rc = iscsi_reg(stack, key, "Name", v, sizeof(v));
        if (rc == 0)
            break;
        if (i >= ISCSI_MAX_TARGETS) {
            snprintf(err, errlen, "%s: at most %d targets", ISCSI_REG_KEY, ISCSI_MAX_TARGETS);
            return -EINVAL;
        }
        if (rc < 0 || strlen(v) >= ISCSI_IQN_MAX || !v[0]) {
            snprintf(err, errlen, "%s\\Name: empty or longer than %d bytes", key,
                     ISCSI_IQN_MAX - 1);
            return -EINVAL;
        }
        t = &cfg->targets[i];
        memset(t, 0, sizeof(*t));
        snprintf(t->iqn, sizeof(t->iqn), "%s", v);
        for (unsigned lun = 0; lun <= ISCSI_LUN_ID_MAX; lun++) {
            snprintf(name, sizeof(name), "Lun%u", lun);
            rc = iscsi_reg(stack, key, name, v, sizeof(v));
            if (rc == 0)
                continue;
            if (rc < 0 || strlen(v) >= ISCSI_DEVICE_MAX || !v[0] || t->nluns == ISCSI_MAX_LUNS) {
                snprintf(err, errlen, "%s\\%s: empty, too long, or over %d LUNs", key, name,
                         ISCSI_MAX_LUNS);
                return -EINVAL;
            }
            t->luns[t->nluns].lun = lun;
            snprintf(t->luns[t->nluns].device, ISCSI_DEVICE_MAX, "%s", v);
            t->nluns++;
        }
        static const char *const names[4] = {"ChapUser", "ChapSecret", "MutualChapUser",
                                             "MutualChapSecret"};
        char *dst[4] = {t->chap.user, t->chap.secret, t->chap.mutual_user, t->chap.mutual_secret};
        for (int k = 0; k < 4; k++) {
            rc = iscsi_reg(stack, key, names[k], dst[k], ISCSI_CHAP_SECRET_MAX);
            if (rc < 0) {
                snprintf(err, errlen, "%s\\%s: longer than %d bytes", key, names[k],
                         ISCSI_CHAP_SECRET_MAX - 1);
                return -EINVAL;
            }
        }
        t->chap.secret_len = strlen(t->chap.secret);
        t->chap.mutual_secret_len = strlen(t->chap.mutual_secret);
        cfg->ntargets = i + 1;
    }
    return iscsi_config_check(cfg, err, errlen);
}
