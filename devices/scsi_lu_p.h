/*
 * Private face of the SCSI device server: the logical unit object, the command table entry, the
 * per-command scratch layout, and the helpers the command-set files share (sense building, bounded
 * data-buffer copies, the unit attention store). Nothing here is visible outside devices/.
 *
 * Contract of a command handler: it runs on the submitting thread with no lock held. It either
 * finishes the command (sets status/sense/transferred) and returns SCSI_DONE, and the dispatcher
 * then calls cmd->done; or it hands the command to the backend and returns SCSI_PENDING, and the
 * backend completion path calls cmd->done exactly once. A handler never reads or writes the
 * initiator's buffer except through scsi_data_in()/scsi_data_out(), which are bounded by both
 * xfer_len and the iov lengths.
 */
#ifndef STORSTACK_DEVICES_SCSI_LU_P_H
#define STORSTACK_DEVICES_SCSI_LU_P_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <storstack/storage/scsi.h>

#include "devices/scsi_lu.h"

enum {
    SCSI_DONE = 0,    /* the handler finished the command; the dispatcher calls done() */
    SCSI_PENDING = 1, /* the backend owns the command; its completion calls done() */
};

/* Flags of a command table entry */
#define SCSI_F_MEDIA   0x0001u /* needs the unit started (NOT READY 04/02 while stopped) */
#define SCSI_F_WRITE   0x0002u /* changes the medium (DATA PROTECT 27/00 when read-only) */
#define SCSI_F_UA_OK   0x0004u /* runs with a unit attention pending (SAM-5 5.14) */
#define SCSI_F_SA      0x0008u /* byte 1 bits 4..0 hold a service action, matched by `sa` */
#define SCSI_F_DATA_IN 0x0010u /* returns parameter data (informational, for the README table) */

struct scsi_lu;

typedef int (*scsi_handler_fn)(struct scsi_lu *lu, struct scsi_cmd *cmd);

/*
 * One command of a device type. `usage` is the CDB usage data of SPC-4 6.35 (REPORT SUPPORTED
 * OPERATION CODES): a 1 bit is a bit the device server looks at, a 0 bit is reserved (or an
 * unsupported field such as RDPROTECT) and must be zero in the CDB, else ILLEGAL REQUEST,
 * INVALID FIELD IN CDB with a field pointer to that bit.
 */
struct scsi_cmd_desc {
    uint8_t opcode;
    uint8_t sa; /* service action, when SCSI_F_SA */
    uint8_t cdb_len;
    uint8_t dir; /* enum scsi_dir the command moves data in */
    uint16_t flags;
    uint8_t usage[16];
    scsi_handler_fn handler;
    const char *name;
    /* Where a run of bits the device server does not look at holds more than one field (a
     * reserved bit beside an obsolete one, say): a 1 bit is the most significant bit of a field
     * inside such a run. Zero (the usual case): each run is one field. The CONTROL byte's layout
     * (SAM-5 5.2: reserved 5..3, NACA, obsolete 1, 0) is known without it. */
    uint8_t field_msb[16];
};

/* The unit attention store (SAM-5 5.14, SPC-4 5.14): a short log of events, each pending for every
 * I_T nexus that has not seen it, minus the nexus that caused it (MODE SELECT by that nexus). */
#define SCSI_UA_EVENTS 8
#define SCSI_UA_NEXUS  32

struct scsi_ua_event {
    uint64_t gen;
    uint64_t except_nexus;
    bool has_except;
    uint8_t asc, ascq;
};

struct scsi_ua_nexus {
    uint64_t nexus;
    uint64_t seen_gen; /* every event with gen <= seen_gen has been reported to this nexus */
    bool used;
};

struct scsi_ua_store {
    uint64_t gen; /* gen of the newest event; 0 = none ever */
    /* Lock-free fast path for scsi_lu_ua_take: a nexus that has seen everything up to
     * quiet_gen. Written under the lock in the order gen_pub (on raise); quiet_nexus then
     * quiet_gen (on a take that found nothing); read in the reverse order. */
    _Atomic uint64_t gen_pub;
    _Atomic uint64_t quiet_nexus;
    _Atomic uint64_t quiet_gen;
    struct scsi_ua_event ev[SCSI_UA_EVENTS];
    struct scsi_ua_nexus nx[SCSI_UA_NEXUS];
};

/* Prevention of medium removal (SBC-4 5.12) is kept per I_T nexus, as many as the unit
 * attention store tracks. */
#define SCSI_PREVENT_NEXUS SCSI_UA_NEXUS

/* Bounce buffers for VERIFY with BYTCHK=1 (the medium's data has to land somewhere to be
 * compared); allocated with the LU, taken per command with an atomic bitmap. */
#define SCSI_VERIFY_SLOTS     4
#define SCSI_VERIFY_SLOT_SIZE (64u * 1024u)

/* ---- reservations (pr.c): SPC-2 RESERVE/RELEASE and SPC-4 persistent reservations ---- */
#define SCSI_TID_MAX    256 /* text TransportID, NUL included */
#define SCSI_PR_MAX_REG 64  /* registrations per LU */
#define SCSI_PR_MAX_UA  64  /* pending reservation unit attentions per LU */

/* Who sent a command: its TransportID when the transport gave one, else its I_T nexus. */
struct scsi_ident {
    uint64_t nexus;
    char tid[SCSI_TID_MAX]; /* "" = identified by nexus */
};

struct scsi_cmd;
/* The command's initiator (pr.c), and whether id names it. */
void scsi_ident_of(const struct scsi_cmd *cmd, struct scsi_ident *id);
bool scsi_ident_match(const struct scsi_ident *id, const struct scsi_cmd *cmd);

struct scsi_pr_reg {
    bool used;
    bool all_tg_pt;
    uint64_t key;
    struct scsi_ident id;
};

/* The persistent part: what APTPL keeps in the backend's metadata. */
struct scsi_pr_state {
    uint32_t generation; /* PRgeneration */
    bool aptpl;
    bool reserved;
    uint8_t type;   /* PR_TYPE_* when reserved */
    int16_t holder; /* reg[] index of the holder (not used by the all-registrants types) */
    struct scsi_pr_reg reg[SCSI_PR_MAX_REG];
};

struct scsi_pr_ua {
    bool used;
    uint8_t ascq; /* of ASC 2Ah */
    struct scsi_ident id;
};

struct scsi_pr {
    struct scsi_pr_state s;
    bool spc2; /* an SPC-2 RESERVE is held by spc2_holder */
    struct scsi_ident spc2_holder;
    struct scsi_pr_ua ua[SCSI_PR_MAX_UA];
    /* Read lock-free by the dispatcher: a reservation exists (PR or SPC-2), or a unit attention
     * of ua[] is pending. Written under the LU lock. */
    atomic_bool active;
    atomic_uint ua_count;
};

/* ---- third-party copy (xcopy.c): results of EXTENDED COPY kept for RECEIVE COPY RESULTS ---- */
#define SCSI_XCOPY_RESULTS 8

struct scsi_xcopy_result {
    bool used;
    uint8_t list_id;
    uint8_t status; /* COPY MANAGER STATUS: 01h completed good, 02h completed with error */
    uint8_t sense_len;
    uint16_t segments; /* SEGMENTS PROCESSED */
    uint64_t bytes;    /* TRANSFER COUNT, bytes */
    uint64_t seq;      /* age, for replacement */
    struct scsi_ident id;
    uint8_t sense[32];
};

/*
 * The write gate of a block device (sbc.c): writes hold it shared, COMPARE AND WRITE and ORWRITE
 * exclusive, so a compare-and-write (and the read-modify-write of ORWRITE) is atomic with respect
 * to every other write of the LU (SBC-4 5.3). `state` is the fast path (an atomic add per write);
 * `lock` guards the list of commands waiting their turn, linked through their idle bio.context.
 * It models no Storport lock: it is the device server's own command ordering, and it is never
 * held across a backend submission.
 */
#define SCSI_GATE_EXCL 0x80000000u

struct scsi_write_gate {
    atomic_uint state; /* SCSI_GATE_EXCL | number of shared holders */
    pthread_mutex_t lock;
    struct scsi_cmd *excl_waiting; /* holds EXCL, waits for the shared holders to drain */
    struct scsi_cmd *head, *tail;  /* waiting for EXCL to clear */
};

struct scsi_lu {
    /* The command table, indexed by opcode (NULL = unsupported). For an opcode with service
     * actions this is its first entry; the rest follow it in the same list. */
    const struct scsi_cmd_desc *op[256];
    struct backend *be;
    uint8_t device_type;

    /* Identity, fixed at creation */
    char vendor[8 + 1];
    char product[16 + 1];
    char revision[4 + 1];
    char serial[64 + 1];
    uint64_t device_id;
    uint32_t block_size;
    uint32_t block_shift;
    uint64_t nblocks; /* capacity in logical blocks */
    uint32_t max_transfer_blocks;
    uint8_t lbppb_exp; /* log2(physical block size / block size) */
    bool read_only;
    bool default_wce;

    /* Changeable state. The mode page bits and `stopped` are read lock-free on the I/O path;
     * `lock` serialises MODE SELECT and the unit attention store. It models no Storport lock: it
     * is the logical unit's own device-server state lock and is never held across a backend
     * submission. */
    atomic_bool wce;
    atomic_bool d_sense;
    atomic_bool stopped;
    pthread_mutex_t lock;
    struct scsi_ua_store ua;

    /* Third-party copy (xcopy.c): the registry of LUs by NAA designator (a copy may name any
     * of them), the references copies in flight hold, and copy results under `lock`. */
    uint8_t naa[16];
    struct scsi_lu *xc_next;
    atomic_int xc_refs;
    uint64_t xc_seq;
    struct scsi_xcopy_result xc[SCSI_XCOPY_RESULTS];

    /* Reservations (pr.c), under `lock`; software write protect (control mode page SWP). */
    struct scsi_pr pr;
    atomic_bool swp;

    atomic_uint verify_busy; /* bit i set: verify slot i taken */
    uint8_t *verify_buf;     /* SCSI_VERIFY_SLOTS * SCSI_VERIFY_SLOT_SIZE bytes */

    /* INQUIRY: RMB, and the command set's version descriptor (0: SBC-3) */
    bool removable;
    uint16_t command_set_version;
    /* A removable disk's medium (sbc.c): `no_medium` (read lock-free by the dispatcher, set only
     * with `stopped`) once START STOP UNIT ejected it; the I_T nexuses preventing its removal,
     * under `lock`. */
    atomic_bool no_medium;
    uint32_t nprevent;
    uint64_t prevent[SCSI_PREVENT_NEXUS];

    /* Block device state of sbc*.c, set by sbc_lu_init(). */
    bool lbpme; /* thin provisioned (SBC-4 4.7.3): the backend can deallocate (can_trim) */
    bool lbprz; /* a deallocated block reads as zeros (trim_zeroes) */
    struct scsi_write_gate gate;

    /* A device type's own state (the MMC device's medium), freed by type_destroy. */
    void *type_priv;
    void (*type_destroy)(struct scsi_lu *lu);
    /* Why a device type with a medium is not ready (REQUEST SENSE reports it); NULL: disk. */
    bool (*type_not_ready)(struct scsi_lu *lu, uint8_t *asc, uint8_t *ascq);
};

/*
 * The per-command scratch, laid over cmd->dev_priv. A chained backend transfer (more than one
 * submission: an initiator iov that does not fit bio_iov[], a VERIFY compare in chunks, a write
 * followed by a flush for FUA) keeps its progress here.
 */
struct scsi_cmd_priv {
    struct scsi_lu *lu;
    uint64_t offset; /* backend byte offset of the transfer's start */
    uint64_t total;  /* bytes the transfer moves (UNMAP: descriptors) */
    uint64_t done;   /* bytes completed so far (UNMAP: descriptors) */
    _Atomic uint8_t phase;
    uint8_t kind;   /* enum sbc_io_kind */
    int8_t slot;    /* verify bounce slot, -1 = none */
    uint8_t flags;  /* SBC_IO_* */
    int32_t result; /* the last backend result */
};

_Static_assert(sizeof(struct scsi_cmd_priv) <= sizeof(((struct scsi_cmd *)0)->dev_priv),
               "the command scratch fits dev_priv");

static inline struct scsi_cmd_priv *scsi_priv(struct scsi_cmd *cmd)
{
    return (struct scsi_cmd_priv *)(void *)cmd->dev_priv;
}

/* ---- lu.c: dispatch ---- */
void scsi_cmd_complete(struct scsi_cmd *cmd);
/* The bit pointer for an unsupported bit `bit` of CDB byte i: the most significant bit of the
 * field holding it (SPC-4 4.5.2.4.2), from the usage mask, the entry's field_msb and the CONTROL
 * byte's layout. The second form is for a bare usage mask (field_msb may be NULL). */
int scsi_field_msb(const struct scsi_cmd_desc *d, uint8_t i, int bit);
int scsi_usage_field_msb(const uint8_t *usage, const uint8_t *field_msb, uint8_t cdb_len, uint8_t i,
                         int bit);
void scsi_lu_ua_raise(struct scsi_lu *lu, uint8_t asc, uint8_t ascq, const uint64_t *except_nexus);
/* The same with lu->lock already held. */
void scsi_lu_ua_raise_locked(struct scsi_lu *lu, uint8_t asc, uint8_t ascq,
                             const uint64_t *except_nexus);
bool scsi_lu_ua_take(struct scsi_lu *lu, uint64_t nexus, uint8_t *asc, uint8_t *ascq);
const struct scsi_cmd_desc *scsi_lu_lookup(const struct scsi_lu *lu, const uint8_t *cdb,
                                           uint8_t cdb_len);
/* For device types other than the disk: a zeroed LU with its identity (T10 strings checked as
 * scsi_disk_create does), lock and power-on unit attention, and no commands; the caller adds its
 * table with scsi_lu_add_commands (the first entry for an opcode wins). */
int scsi_lu_alloc(uint8_t device_type, const char *vendor, const char *product,
                  const char *revision, const char *serial, uint64_t device_id,
                  struct scsi_lu **out);
void scsi_lu_add_commands(struct scsi_lu *lu, const struct scsi_cmd_desc *list);

/* ---- sense.c ---- */
struct scsi_sense_info {
    uint8_t key, asc, ascq;
    bool info_valid;
    uint64_t info;  /* INFORMATION field */
    bool sks_valid; /* a field pointer follows */
    bool sks_cd;    /* the field is in the CDB (else in the parameter list) */
    bool sks_bpv;   /* bit_pointer is valid */
    uint8_t bit_pointer;
    uint16_t field_pointer;
};

/* Builds sense data into buf (at least SCSI_SENSE_MAX bytes); returns its length. */
uint8_t scsi_sense_build(uint8_t *buf, bool descriptor, const struct scsi_sense_info *si);
/* CHECK CONDITION with the given sense, in the LU's current format (D_SENSE). lu may be NULL
 * (target-level answers): fixed format. */
void scsi_check(struct scsi_cmd *cmd, const struct scsi_lu *lu, const struct scsi_sense_info *si);
void scsi_check_simple(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint8_t key, uint8_t asc,
                       uint8_t ascq);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB; bit < 0 means no bit pointer. */
void scsi_check_cdb_field(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint16_t byte, int bit);
/* ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST, pointing into the data-out buffer. */
void scsi_check_param_field(struct scsi_cmd *cmd, const struct scsi_lu *lu, uint16_t byte, int bit);
/* Highest set bit of a nonzero byte: the bit pointer for a group of offending bits. */
int scsi_high_bit(uint8_t v);
void scsi_good(struct scsi_cmd *cmd);

/* ---- data buffer helpers (lu.c) ---- */
/* Bytes of data-in the initiator can take: xfer_len when dir is IN (or UNSPECIFIED), else 0,
 * never more than the iov holds; likewise for data-out. */
uint32_t scsi_in_capacity(const struct scsi_cmd *cmd);
uint32_t scsi_out_capacity(const struct scsi_cmd *cmd);
/* Copies len bytes of src to the data-in buffer at offset; bounded; returns bytes copied. */
uint32_t scsi_data_in(struct scsi_cmd *cmd, uint32_t offset, const void *src, uint32_t len);
/* Copies up to len bytes of the data-out buffer at offset into dst; returns bytes copied. */
uint32_t scsi_data_out(const struct scsi_cmd *cmd, uint32_t offset, void *dst, uint32_t len);
/* Compares len bytes of the data-out buffer at offset with mem: the index of the first byte that
 * differs, or the number of bytes compared when all are equal. */
uint32_t scsi_data_out_cmp(const struct scsi_cmd *cmd, uint32_t offset, const void *mem,
                           uint32_t len);
/* ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR (1Ah/00h): a parameter list shorter than its
 * own contents say. */
void scsi_check_param_list_length(struct scsi_cmd *cmd, const struct scsi_lu *lu);
/* Sends a parameter-data response of data_len bytes, cut to alloc_len (SPC-4 4.2.5.6). */
void scsi_respond(struct scsi_cmd *cmd, const void *data, uint32_t data_len, uint32_t alloc_len);

/* ---- pr.c: reservations ---- */
/* The dispatcher's check, when pr.active: true (status RESERVATION CONFLICT set) when the
 * command conflicts with the SPC-2 or persistent reservation (SPC-4 5.9.1, table 61). */
bool pr_conflict(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_cmd_desc *d);
/* A pending reservation unit attention (2Ah/03h, 04h, 05h) for the command's initiator. */
bool pr_ua_take(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t *asc, uint8_t *ascq);
/* A LUN or target reset: releases the SPC-2 reservation, drops reservation UAs (superseded). */
void pr_reset_locked(struct scsi_lu *lu);
/* The I_T nexus is gone (logout, connection loss): its SPC-2 reservation ends. */
void pr_nexus_loss_locked(struct scsi_lu *lu, uint64_t nexus, const char *transport_id);
/* Loads APTPL state from the backend's metadata at creation (absent: none). */
int pr_load(struct scsi_lu *lu);
int spc_reserve(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_release(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_pr_in(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_pr_out(struct scsi_lu *lu, struct scsi_cmd *cmd);
/* Any unit attention for the command's initiator: the LU's store, then reservation UAs. */
bool scsi_lu_ua_take_cmd(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t *asc,
                         uint8_t *ascq);

/* ---- xcopy.c: EXTENDED COPY (LID1), RECEIVE COPY RESULTS, VPD 8Fh ---- */
void xcopy_register(struct scsi_lu *lu);
/* Removes the LU from the registry and waits until no copy uses it. */
void xcopy_unregister(struct scsi_lu *lu);
uint32_t xcopy_vpd(const struct scsi_lu *lu, uint8_t *b);
int spc_extended_copy(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_receive_copy_results(struct scsi_lu *lu, struct scsi_cmd *cmd);
/* The 16-byte NAA IEEE Registered Extended designator of the LU (VPD 83h). */
void spc_naa(const struct scsi_lu *lu, uint8_t naa[16]);

/* ---- spc.c / sbc.c command tables ---- */
extern const struct scsi_cmd_desc spc_commands[];
extern const struct scsi_cmd_desc sbc_commands[];

/* ---- sbc*.c: block device state and its VPD pages ---- */
/* A reset (29h) or the loss of an I_T nexus (the nexus given) ends prevention of medium removal
 * (SBC-4 5.12); with lu->lock held. */
void sbc_prevent_reset_locked(struct scsi_lu *lu, const uint64_t *nexus);
/* Sets the LU's block device state from its backend; 0 or a negative errno. */
int sbc_lu_init(struct scsi_lu *lu);
void sbc_lu_fini(struct scsi_lu *lu);
/* VPD B0h (block limits), B1h (characteristics), B2h (logical block provisioning) for INQUIRY:
 * each fills bytes 4.. of a zeroed buffer and returns the page's total length. */
uint32_t sbc_vpd_block_limits(const struct scsi_lu *lu, uint8_t *b);
uint32_t sbc_vpd_block_characteristics(const struct scsi_lu *lu, uint8_t *b);
uint32_t sbc_vpd_provisioning(const struct scsi_lu *lu, uint8_t *b);

int spc_inquiry(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_mode_sense6(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_mode_sense10(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_mode_select6(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_mode_select10(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_request_sense(struct scsi_lu *lu, struct scsi_cmd *cmd);
int spc_report_luns_self(struct scsi_lu *lu, struct scsi_cmd *cmd);
/* REPORT LUNS body shared with the target: validates the CDB, writes the list. */
void spc_report_luns_emit(struct scsi_cmd *cmd, const struct scsi_lu *lu, const uint64_t *luns,
                          uint32_t nluns);
bool spc_report_luns_check(struct scsi_cmd *cmd, const struct scsi_lu *lu);

#endif
