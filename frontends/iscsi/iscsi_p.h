/*
 * Private structures of the iSCSI target: the portal (portal.c), a connection with its session
 * (conn.c; MaxConnections=1, so a session is one connection) and the write tasks waiting for
 * Data-Out (session.c). One thread per connection owns everything in struct iscsi_conn; the
 * portal's lock guards only its list of connections.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_ISCSI_P_H
#define STORSTACK_FRONTENDS_ISCSI_ISCSI_P_H

#include <pthread.h>
#include <stdbool.h>

#include "frontends/iscsi/iscsi.h"
#include "frontends/iscsi/login.h"

#define ISCSI_TASKS         16     /* commands in the CmdSN window (MaxCmdSN - ExpCmdSN + 1) */
#define ISCSI_OUR_MRDSL     262144 /* our MaxRecvDataSegmentLength */
#define ISCSI_MAX_CONNS     64
#define ISCSI_XFER_FALLBACK 65536      /* pass-through limit when the adapter does not say */
#define ISCSI_MAX_CMD       (4u << 20) /* the largest command; VPD B0h says so to initiators */

/* A write command gathering its data (immediate, unsolicited, then solicited by R2T). */
struct iscsi_task {
    bool used;
    bool unsol_open; /* unsolicited Data-Out still to come (InitialR2T=No, F=0) */
    bool r2t_open;   /* an R2T outstanding (MaxOutstandingR2T=1) */
    uint32_t itt;
    uint8_t lun[8];
    uint8_t cdb[16];
    uint32_t edtl;
    uint32_t received; /* bytes in buf, from offset 0 (DataPDUInOrder=Yes) */
    uint32_t unsol_end;
    uint32_t r2t_ttt;
    uint32_t r2t_end;
    uint32_t r2tsn;
    uint32_t datasn; /* expected DataSN in the current sequence */
    uint8_t *buf;    /* ISCSI_MAX_CMD bytes, allocated on first use and kept */
};

struct iscsi_conn {
    struct iscsi_target *target;
    struct iscsi_conn *next;
    pthread_t thread;
    int fd;
    bool done; /* thread finished (portal lock) */

    struct iscsi_params params;
    storstack_handle_t *dev;
    uint32_t block_size; /* from IOCTL_DISK_GET_DRIVE_GEOMETRY, 0 unknown */
    uint32_t max_xfer;   /* the adapter's MaximumTransferLength: larger I/O is split */
    uint32_t statsn;
    uint32_t exp_cmdsn;
    uint32_t next_ttt;
    uint8_t *rx;   /* one data segment, params.max_recv_dsl bytes */
    uint8_t *rbuf; /* data-in of the command being executed, ISCSI_MAX_CMD bytes */
    struct iscsi_task tasks[ISCSI_TASKS];
    uint8_t txt[ISCSI_LOGIN_TEXT_MAX];
};

struct iscsi_target {
    storstack_t *stack;
    char iqn[ISCSI_NAME_MAX];
    char device[128];
    char address[96];
    struct iscsi_login_config login_cfg;
    int lfd;
    int wake[2];
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock; /* conns, next_tsih */
    struct iscsi_conn *conns;
    uint16_t next_tsih;
};

/* conn.c */
void *iscsi_conn_main(void *arg);
int iscsi_conn_send(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                    uint32_t len);
int iscsi_conn_send_status(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                           uint32_t len);
int iscsi_conn_reject(struct iscsi_conn *c, const uint8_t *bad_bhs, uint8_t reason);
uint32_t iscsi_conn_max_cmdsn(const struct iscsi_conn *c);

/* session.c: returns 0, or a negative errno when the connection must close (ERL 0). */
int iscsi_session_open(struct iscsi_conn *c);
void iscsi_session_close(struct iscsi_conn *c);
int iscsi_session_scsi_cmd(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_data_out(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_tmf(struct iscsi_conn *c, const struct iscsi_pdu *p);
unsigned iscsi_session_free_tasks(const struct iscsi_conn *c);

#endif
