/*
 * The iSCSI target frontend (RFC 7143): one portal serving one target whose LUN 0 is a device of
 * a storstack stack (by default PhysicalDrive0), reached with IOCTL_SCSI_PASS_THROUGH_DIRECT.
 * iscsi_target_start() binds and listens before it returns (port 0 picks a free port, read back
 * with iscsi_target_port()); iscsi_target_stop() closes the portal and every connection and
 * waits for their threads; call it before storstack_destroy(). Errors are negative errno with a
 * one-line reason in err.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_ISCSI_H
#define STORSTACK_FRONTENDS_ISCSI_ISCSI_H

#include <stddef.h>
#include <stdint.h>

#include <storstack/storstack.h>

#define ISCSI_DEFAULT_PORTAL "127.0.0.1:3260"
#define ISCSI_DEFAULT_IQN    "iqn.2026-11.org.storstack:default"
#define ISCSI_DEFAULT_DEVICE "PhysicalDrive0"

struct iscsi_target_config {
    const char *portal; /* "ADDR:PORT" or "[ADDR6]:PORT"; NULL: ISCSI_DEFAULT_PORTAL */
    const char *iqn;    /* NULL: ISCSI_DEFAULT_IQN */
    const char *device; /* LUN 0; NULL: ISCSI_DEFAULT_DEVICE */
};

struct iscsi_target;

int iscsi_target_start(storstack_t *stack, const struct iscsi_target_config *cfg,
                       struct iscsi_target **out, char *err, size_t errlen);
uint16_t iscsi_target_port(const struct iscsi_target *t);
/* The bound portal as "ADDR:PORT" (what SendTargets reports). */
const char *iscsi_target_address(const struct iscsi_target *t);
void iscsi_target_stop(struct iscsi_target *t);

#endif
