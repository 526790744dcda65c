/*
 * Private structures of the iSCSI target: the portal (portal.c), its event loops and a connection
 * with its session (conn.c; MaxConnections=1, so a session is one connection), its logical units
 * and its task pool (session.c).
 *
 * Threads: the portal's acceptor, and one event loop per CPU (ISCSI_MAX_LOOPS at most). The
 * acceptor gives each new connection to the loop with the fewest; from then on that loop alone
 * reads and writes its socket (non-blocking) and touches its tasks, through login, full feature
 * phase and teardown. A loop waits in epoll on its connections' sockets and eventfds. Commands go
 * down with storstack_ioctl_async; their callbacks only queue the task: on local_head when they
 * run on the connection's own loop (an inline completion: no lock, no wakeup; the connection goes
 * on the loop's ready list), else on cq_head under cq_lock, signalling the connection's eventfd
 * when the list was empty. The portal's lock guards its list of connections and the loops'
 * connection counts; a loop's lock only its incoming list and stop flag.
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
#define ISCSI_MAX_LOOPS     16    /* event loops: one per CPU, at most this many */
#define ISCSI_TICK_MS       200   /* how often a loop looks at its connections' timers */
#define ISCSI_TRIM_MS       1000  /* ms idle before a session gives its task buffers back */
/* The receive buffer holds the largest PDU whole: BHS, AHS (at most 1020), header digest, our
 * MaxRecvDataSegmentLength, padding and data digest. */
#define ISCSI_RX_CAP (ISCSI_OUR_MRDSL + 2048)
_Static_assert(ISCSI_RX_CAP >= 48 + 1020 + 4 + ISCSI_OUR_MRDSL + 3 + 4, "a whole PDU fits");
/* The send queue: producers (answers, PDUs read) stop once ISCSI_TXQ_HIGH PDUs wait; one step
 * past it (a response, the status of a Data-In sequence, a TMF response) stays within ISCSI_TXQ. */
#define ISCSI_TXQ_HIGH  64
#define ISCSI_TXQ       (ISCSI_TXQ_HIGH + 16)
#define ISCSI_TX_INLINE 160 /* data up to this is copied into the queue (sense, REPORT LUNS) */
#define ISCSI_TXQ_IOV   (ISCSI_TXQ * 3)
#define ISCSI_AGAIN     1 /* an answer stopped for room in the send queue: call again */

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
    uint32_t datasn;  /* expected DataSN in the current sequence */
    uint32_t din_off; /* Data-In queued so far, when the answer had to stop for room */
    uint32_t din_sn;  /* the next Data-In's DataSN */
    storstack_status_t status;
    struct iscsi_sptd s;
    uint8_t *buf; /* cap bytes, allocated on first use, grown, released when the session idles */
    uint32_t cap;
    struct iscsi_task *next_done;
    struct iscsi_conn *conn;
};

/* A PDU queued for the next gathered send: header and header digest, then either a copy of a
 * small data segment (with its padding and digest, all in head) or a pointer to the data (a task
 * buffer, which stays put until the queue has drained, or own: a copy of a large segment the
 * caller does not keep) and a tail of padding and data digest. */
struct iscsi_tx {
    uint8_t head[ISCSI_BHS_LEN + 4 + ISCSI_TX_INLINE + 8];
    uint8_t tail[8];
    uint16_t hlen;
    uint8_t tlen;
    uint32_t dlen;
    const uint8_t *data;
    uint8_t *own;
};

enum iscsi_conn_phase {
    ISCSI_CONN_LOGIN,   /* Login Requests only (6.3) */
    ISCSI_CONN_FULL,    /* full feature phase */
    ISCSI_CONN_CLOSING, /* socket shut down; waiting for the commands still down the stack */
    ISCSI_CONN_ENDED,   /* on the loop's ended list, about to be let go of */
};

/* What an epoll event of a connection stands for. */
struct iscsi_ev {
    struct iscsi_conn *c;
    bool efd; /* the completion eventfd, else the socket */
};

struct iscsi_loop {
    struct iscsi_target *target;
    pthread_t thread;
    int epfd;
    int wake;             /* eventfd: a connection is incoming, or stop */
    pthread_mutex_t lock; /* incoming, stop */
    struct iscsi_conn *incoming;
    bool stop;
    unsigned nconns;           /* the portal's lock: for the acceptor's choice */
    struct iscsi_conn *conns;  /* this loop's connections (loop thread only) */
    struct iscsi_conn *ready;  /* with inline completions to answer (loop thread only) */
    struct iscsi_conn *ended;  /* ended during this turn of the loop (loop thread only) */
    struct timespec next_tick; /* the next look at the connections' timers */
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
    struct iscsi_conn *next; /* the portal's list */
    struct iscsi_loop *loop;
    struct iscsi_conn *loop_next, *ready_next;
    bool ready; /* on loop->ready */
    int fd;
    int efd;   /* eventfd the completions signal */
    bool done; /* ended, the loop lets go of it (portal lock) */
    enum iscsi_conn_phase phase;
    struct iscsi_ev ev_sock, ev_efd;
    uint32_t ev_mask;          /* what epoll waits for on the socket */
    struct iscsi_login *login; /* during login */
    bool tx_stuck;             /* the socket took not all of the queue at the last flush */
    struct timespec tx_since;  /* ... since then, with no progress */

    pthread_mutex_t cq_lock; /* cq_head only */
    struct iscsi_task *cq_head;
    /* Completions that ran on this connection's own loop (the stack completed the IRP inline,
     * within storstack_ioctl_async or storstack_cancel): no lock, no eventfd. */
    struct iscsi_task *local_head;
    /* Completed tasks whose responses wait for room in the send queue, in completion order. */
    struct iscsi_task *answer_head, *answer_tail;

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
    uint8_t *rx;        /* the data segment of the PDU being taken (in rxbuf) */
    /* Full feature phase: bytes received, rxbuf[rx_start, rx_end), parsed as whole PDUs. */
    uint8_t *rxbuf; /* ISCSI_RX_CAP */
    uint32_t rx_start, rx_end;
    bool rx_partial; /* a PDU has started to arrive, since rx_partial_since */
    struct timespec rx_partial_since;
    /* Responses queued for one sendmsg, flushed before the loop waits again; tx_off bytes of
     * tx[0] have gone already. */
    unsigned ntx;
    uint32_t tx_off;
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
    unsigned nloops;
    struct iscsi_loop loops[ISCSI_MAX_LOOPS];
    pthread_mutex_t lock; /* conns, next_tsih, nexus_used, each connection's tdef, loop counts */
    struct iscsi_conn *conns;
    uint16_t next_tsih;
    bool nexus_used[ISCSI_MAX_CONNS]; /* nexus id i + 1 belongs to a live session */
};

/* config.c */
int iscsi_config_check(const struct iscsi_target_config *cfg, char *err, size_t errlen);

/* conn.c */
/* The event loop running on this thread (NULL on any other thread). */
extern _Thread_local struct iscsi_loop *iscsi_loop_self;
void *iscsi_loop_main(void *arg);
/* A task completed on this connection's own loop: answered when the loop next looks. */
void iscsi_conn_local_done(struct iscsi_conn *c, struct iscsi_task *t);
/* Room in the send queue for another answer. */
static inline bool iscsi_conn_room(const struct iscsi_conn *c)
{
    return c->ntx < ISCSI_TXQ_HIGH;
}
int iscsi_conn_send(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                    uint32_t len);
int iscsi_conn_send_status(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                           uint32_t len);
/* As iscsi_conn_send(_status), but data is referenced, not copied: a task buffer, which stays
 * as it is until the queue has drained (the loop reads no PDU, which could reuse the task, and
 * gives no buffer back while anything is queued). */
int iscsi_conn_send_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                        uint32_t len);
int iscsi_conn_send_status_ref(struct iscsi_conn *c, uint8_t bhs[ISCSI_BHS_LEN], const void *data,
                               uint32_t len);
/* Sends what the socket takes of the queue, in gathered writes: 0 (c->ntx says what is left), or
 * -EPIPE. */
int iscsi_conn_flush(struct iscsi_conn *c);
int iscsi_conn_reject(struct iscsi_conn *c, const uint8_t *bad_bhs, uint8_t reason);
uint32_t iscsi_conn_max_cmdsn(const struct iscsi_conn *c);
/* TARGET COLD RESET: ends every other connection to the same target. */
void iscsi_conn_drop_target(struct iscsi_conn *c);

/* session.c: returns 0, or a negative errno when the connection must close (ERL 0). */
int iscsi_session_open(struct iscsi_conn *c);
/* Cancels every command down the stack; they still come back (c->running counts them). */
void iscsi_session_cancel(struct iscsi_conn *c);
/* Ends the session once nothing is down the stack: buffers, handles, nexus id. */
void iscsi_session_close(struct iscsi_conn *c);
int iscsi_session_scsi_cmd(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_data_out(struct iscsi_conn *c, const struct iscsi_pdu *p, const uint8_t *data);
int iscsi_session_tmf(struct iscsi_conn *c, const struct iscsi_pdu *p);
/* A pass-through back from the stack: 0 when nothing is to be said (aborted, or the next piece
 * of a split command went down), 1 when the task waits for iscsi_session_answer, or negative. */
int iscsi_session_complete(struct iscsi_conn *c, struct iscsi_task *t);
/* Sends a completed task's response (Data-In and status) and frees its slot: 0, ISCSI_AGAIN when
 * the send queue filled in the middle of its Data-In (call again once it has drained), or
 * negative. */
int iscsi_session_answer(struct iscsi_conn *c, struct iscsi_task *t);
/* Releases the buffers of free task slots (the session is idle). */
void iscsi_session_trim(struct iscsi_conn *c);

#endif
