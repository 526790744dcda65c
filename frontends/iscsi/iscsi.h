/*
 * The iSCSI target frontend (RFC 7143): one portal serving one or more targets, each a map of
 * LUNs to devices of a storstack stack, reached with IOCTL_SCSI_PASS_THROUGH_DIRECT (by default
 * one target whose LUN 0 is PhysicalDrive0). iscsi_target_start() binds and listens before it
 * returns (port 0 picks a free port, read back with iscsi_target_port()); iscsi_target_stop()
 * closes the portal and every connection and waits for their threads and their commands in
 * flight; call it before storstack_destroy(). Errors are negative errno with a one-line reason in
 * err. The configuration is copied: the caller's may go once start returns.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_ISCSI_H
#define STORSTACK_FRONTENDS_ISCSI_ISCSI_H

#include <stddef.h>
#include <stdint.h>

#include <storstack/storstack.h>

#include "frontends/iscsi/auth.h"

#define ISCSI_DEFAULT_PORTAL "127.0.0.1:3260"
#define ISCSI_DEFAULT_IQN    "iqn.2026-11.org.storstack:default"
#define ISCSI_DEFAULT_DEVICE "PhysicalDrive0"
#define ISCSI_MAX_TARGETS    16
#define ISCSI_MAX_LUNS       16  /* mapped LUNs per target */
#define ISCSI_LUN_ID_MAX     255 /* LUN numbers 0..255 (peripheral/flat addressing) */
#define ISCSI_DEVICE_MAX     128
#define ISCSI_IQN_MAX        224

struct iscsi_lun_def {
    uint32_t lun;
    char device[ISCSI_DEVICE_MAX]; /* "PhysicalDrive0", "CdRom0", ... */
};

struct iscsi_target_def {
    char iqn[ISCSI_IQN_MAX];
    unsigned nluns;
    struct iscsi_lun_def luns[ISCSI_MAX_LUNS];
    struct iscsi_chap_config chap; /* chap.user empty: no CHAP */
};

struct iscsi_target_config {
    const char *portal; /* "ADDR:PORT" or "[ADDR6]:PORT"; NULL: ISCSI_DEFAULT_PORTAL */
    /* No targets: one, ISCSI_DEFAULT_IQN with LUN 0 = device (NULL: ISCSI_DEFAULT_DEVICE). */
    const char *device;
    unsigned ntargets;
    struct iscsi_target_def targets[ISCSI_MAX_TARGETS];
    uint32_t nop_interval; /* s of silence before a NOP-In ping; 0: no pings */
    uint32_t nop_timeout;  /* s to answer it before the connection is dropped */
    uint32_t digests_off;  /* nonzero: negotiate HeaderDigest/DataDigest None only */
};

#define ISCSI_DEFAULT_NOP_INTERVAL 30
#define ISCSI_DEFAULT_NOP_TIMEOUT  15

/*
 * Reads the target configuration from the stack's registry (docs/iscsi.md): Portal, NopInterval,
 * NopTimeout, Digests under Control\Storstack\iSCSI, and Target0, Target1, ... below it (Name,
 * Lun0..Lun255, ChapUser/ChapSecret, MutualChapUser/MutualChapSecret). Absent values keep what
 * cfg holds (call iscsi_config_default first). -EINVAL with a reason for a bad value (a secret
 * under 12 bytes, a target without a name or LUNs, a duplicate name).
 */
void iscsi_config_default(struct iscsi_target_config *cfg);
int iscsi_config_from_registry(storstack_t *stack, struct iscsi_target_config *cfg, char *portal,
                               size_t portal_len, char *err, size_t errlen);

struct iscsi_target;

int iscsi_target_start(storstack_t *stack, const struct iscsi_target_config *cfg,
                       struct iscsi_target **out, char *err, size_t errlen);
uint16_t iscsi_target_port(const struct iscsi_target *t);
/* The bound portal as "ADDR:PORT" (what SendTargets reports). */
const char *iscsi_target_address(const struct iscsi_target *t);
/* The names of the targets served, index 0 .. count-1 (NULL past the end). */
const char *iscsi_target_name(const struct iscsi_target *t, unsigned index);
void iscsi_target_stop(struct iscsi_target *t);

#endif
