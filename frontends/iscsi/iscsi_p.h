/*
 * Private structures of the iSCSI target: the portal (portal.c), a connection with its session
 * (conn.c; MaxConnections=1, so a session is one connection), its logical units and its task
 * pool (session.c).
 *
 * Threads: one per connection runs an event loop over two descriptors, the socket and an
 * eventfd. Commands go down with storstack_ioctl_async; their callbacks only queue the task: on
 * local_head when they run on the connection's own thread (an inline completion: no lock, no
 * wakeup), else on cq_head under cq_lock, signalling the eventfd when the list was empty. The
 * connection's thread does everything else: it alone reads and writes the socket and touches the
 * tasks. The portal's lock guards only its list of connections.
 */
#ifndef STORSTACK_FRONTENDS_ISCSI_ISCSI_P_H
#define STORSTACK_FRONTENDS_ISCSI_ISCSI_P_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <time.h>

#include <storstack/storage/ntddscsi.h>

#include "frontends/iscsi/iscsi.h"
#include "frontends/iscsi/login.h"

#define ISCSI_TASKS         64     /* task slots: the CmdSN window is the free ones */
#define ISCSI_OUR_MRDSL     262144 /* our MaxRecvDataSegmentLength */
#define ISCSI_MAX_CONNS     256
#define ISCSI_XFER_FALLBACK 65536        /* pass-through limit when the adapter does not say */
#define ISCSI_MAX_CMD       (64u << 20)  /* the largest command; VPD B0h says so to initiators */
#define ISCSI_SESSION_BUF   (128u << 20) /* task buffers of one session, all together */
#define ISCSI_SENSE_MAX     96
#define ISCSI_BUF_MIN       65536 /* a task buffer's smallest size */
#define ISCSI_RECV_TIMEOUT  30    /* s a PDU may take to arrive, or a send to make progress */
#define ISCSI_TRIM_MS       1000  /* ms idle before a session gives its task buffers back */
/* The receive buffer holds the largest PDU whole: BHS, AHS (at most 1020), header digest, our
 * MaxRecvDataSegmentLength, padding and data digest. */
#define ISCSI_RX_CAP (ISCSI_OUR_MRDSL + 2048)
_Static_assert(ISCSI_RX_CAP >= 48 + 1020 + 4 + ISCSI_OUR_MRDSL + 3 + 4, "a whole PDU fits");
#define ISCSI_TXQ       64  /* PDUs queued for one gathered send */
#define ISCSI_TX_INLINE 160 /* data up to this is copied into the queue (sense, REPORT LUNS) */
#define ISCSI_TXQ_IOV   (ISCSI_TXQ * 3)

struct iscsi_sptd {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t pad;
    uint8_t sense[ISCSI_SENSE_MAX];
};

/* A mapped LUN, opened for this session (its own I_T nexus). */
struct iscsi_lu {
    uint32_t lun;
    storstack_handle_t *h; /* NULL when the device's security descriptor denied the initiator */
    uint32_t block_size;   /* from IOCTL_DISK_GET_DRIVE_GEOMETRY, 0 unknown */
    uint32_t max_xfer;     /* the adapter's MaximumTransferLength: larger READ/WRITE are split */
};

enum iscsi_task_state {
    ISCSI_TASK_FREE,
    ISCSI_TASK_DATA,    /* a write gathering its data (immediate, unsolicited, R2T) */
    ISCSI_TASK_RUNNING, /* a pass-through down the stack */
};

struct iscsi_task {
    enum iscsi_task_state state;
    bool aborted;      /* by task management: no response (11.5.1) */
    bool unsol_open;   /* unsolicited Data-Out still to come (InitialR2T=No, F=0) */
    bool r2t_open;     /* an R2T outstanding (MaxOutstandingR2T=1) */
    bool data_error;   /* a Data-Out out of sequence: the rest is dropped, CHECK CONDITION */
    uint8_t data_ascq; /* 4Bh/00h DATA PHASE ERROR or 4Bh/05h DATA OFFSET ERROR */
    uint32_t itt;
    uint8_t lun[8];
    struct iscsi_lu *lu;
    uint8_t cdb[16];  /* as received */
    uint8_t xcdb[16]; /* as sent down (one piece of a split READ/WRITE) */
    uint8_t dir;      /* SCSI_IOCTL_DATA_* */
    uint32_t edtl;
    uint32_t len;    /* bytes to move */
    uint32_t wanted; /* what the CDB asks for, for residuals (UINT32_MAX unknown) */
    uint32_t moved;  /* done so far */
    uint32_t piece;  /* bytes of the pass-through in flight */
    bool split;
    uint64_t lba;
    uint32_t received; /* write data in buf, from offset 0 (DataPDUInOrder=Yes) */
    uint32_t unsol_end;
    uint32_t r2t_ttt;
    uint32_t r2t_end;
    uint32_t r2tsn;
    uint32_t datasn; /* expected DataSN in the current sequence */
    storstack_status_t status;
    struct iscsi_sptd s;
    uint8_t *buf; /* cap bytes, allocated on first use, grown, released when the session idles */
    uint32_t cap;
    struct iscsi_task *next_done;
    struct iscsi_conn *conn;
};

/* A PDU queued for the next gathered send: header and header digest, then either a copy of a
 * small data segment (with its padding and digest, all one iovec) or a pointer to a task buffer
 * (which stays put until the queue is flushed) and a tail of padding and data digest. */
struct iscsi_tx {
    uint8_t head[ISCSI_BHS_LEN + 4 + ISCSI_TX_INLINE + 8];
    uint8_t tail[8];
};

/* A task management request waiting for the tasks it aborted to come back. */
struct iscsi_tmf_wait {
    bool active;
    bool close_after; /* TARGET COLD RESET: the connection ends after the response */
    uint32_t itt;
    uint8_t response;
    uint8_t lun[8];
};

struct iscsi_conn {
    struct iscsi_target *target;
    struct iscsi_conn *next;
    pthread_t thread;
    int fd;
    int efd;   /* eventfd the completions signal */
    bool done; /* thread finished (portal lock) */

    pthread_mutex_t cq_lock; /* cq_head only */
    struct iscsi_task *cq_head;
    /* Completions that ran on this connection's own thread (the stack completed the IRP inline,
     * within storstack_ioctl_async or storstack_cancel): no lock, no eventfd. */
    struct iscsi_task *local_head;

    struct iscsi_params params;
    const struct iscsi_target_def *tdef; /* NULL for a discovery session */
    uint64_t nexus;
    uint8_t isid[6];
    unsigned nlus;
    struct iscsi_lu lus[ISCSI_MAX_LUNS];
    uint32_t statsn;
    uint32_t exp_cmdsn;
    uint32_t next_ttt;
    unsigned used;    /* task slots not free */
    unsigned running; /* pass-throughs in flight */
    struct iscsi_tmf_wait tmf;
    bool ping_out; /* a target NOP-In waits for its NOP-Out */
    uint32_t ping_ttt;
    struct timespec last_rx, ping_sent;
    bool trimmed;       /* task buffers released since the last command */
    uint64_t buf_bytes; /* task buffers allocated, at most ISCSI_SESSION_BUF */
    uint8_t *rx;        /* the login's data segment + padding + digest (in rxbuf) */
    uint8_t ahs[1024];
    /* Full feature phase: bytes received, rxbuf[rx_start, rx_end), parsed as whole PDUs. */
    uint8_t *rxbuf; /* ISCSI_RX_CAP */
    uint32_t rx_start, rx_end;
    bool rx_partial; /* a PDU has started to arrive, since rx_partial_since */
    struct timespec rx_partial_since;
    /* Responses queued for one sendmsg, flushed before the loop waits again. */
    unsigned ntx, niov;
    struct iscsi_tx tx[ISCSI_TXQ];
    struct iovec txiov[ISCSI_TXQ_IOV];
    struct iscsi_task tasks[ISCSI_TASKS];
    uint8_t txt[ISCSI_LOGIN_TEXT_MAX];
};

struct iscsi_target {
    storstack_t *stack;
    struct iscsi_target_config cfg;
    struct iscsi_login_target login_targets[ISCSI_MAX_TARGETS];
    char address[96];
    struct iscsi_login_config login_cfg;
    int lfd;
    int wake[2];
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock; /* conns, next_tsih, nexus_used, each connection's tdef */
    struct iscsi_conn *conns;
    uint16_t next_tsih;
    bool nexus_used[ISCSI_MAX_CONNS]; /* nexus id i + 1 belongs to a live session */
};

/* config.c */
int iscsi_config_check(const struct iscsi_target_config *cfg, char *err, size_t errlen);

/* conn.c */
/* The connection whose loop runs on this thread (NULL on any other thread). */
extern _Thread_local struct iscsi_conn *iscsi_conn_self;
void *iscsi_conn_main(void *arg);
int iscsi_conn_send(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                    uint32_t len);
int iscsi_conn_send_status(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                           uint32_t len);
/* As iscsi_conn_send(_status), but data is referenced, not copied: a task buffer, which stays
 * as it is until iscsi_conn_flush() (the loop flushes before it reads or reuses any task). */
int iscsi_conn_send_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                        uint32_t len);
int iscsi_conn_send_status_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                               uint32_t len);
/* Sends every queued PDU in one gathered write: 0, or -EPIPE. */
int iscsi_conn_flush(struct iscsi_conn *c);
int iscsi_conn_reject(struct iscsi_conn *c, const uint8_t *bad_bhs, uint8_t reason);
uint32_t iscsi_conn_max_cmdsn(const struct iscsi_conn *c);
/* TARGET COLD RESET: ends every other connection to the same target. */
void iscsi_conn_drop_target(struct iscsi_conn *c);

/* session.c: returns 0, or a negative errno when the connection must close (ERL 0). */
int iscsi_session_open(struct iscsi_conn *c);
void iscsi_session_close(struct iscsi_conn *c);
int iscsi_session_scsi_cmd(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_data_out(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_tmf(struct iscsi_conn *c, const struct iscsi_pdu *p);
/* A completed pass-through taken off cq_head. */
int iscsi_session_complete(struct iscsi_conn *c, struct iscsi_task *t);
/* Releases the buffers of free task slots (the session is idle). */
void iscsi_session_trim(struct iscsi_conn *c);

#endif
