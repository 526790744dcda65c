/*
 * The SCSI device server: logical units that a virtual miniport (or the iSCSI target, through
 * Storport pass-through) presents. A logical unit has a device type, a command table and a
 * backend; it returns data, status and sense exactly as SPC/SBC require. A target groups logical
 * units by LUN and answers what belongs to the target (REPORT LUNS, commands to absent LUNs).
 *
 * Contract of scsi_target_execute()/scsi_lu_execute(): the command is owned by the device until
 * cmd->done runs, exactly once, possibly inside the call (RAM backend) or on a backend thread.
 * Nothing is allocated per command: backend requests live in the command's scratch space.
 * Thread safety: commands may be executed concurrently from several threads.
 */
#ifndef STORSTACK_DEVICES_SCSI_LU_H
#define STORSTACK_DEVICES_SCSI_LU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/backend.h"

#define SCSI_SENSE_MAX 252

enum scsi_dir {
    SCSI_DIR_NONE,
    SCSI_DIR_IN,  /* device to initiator */
    SCSI_DIR_OUT, /* initiator to device */
    /* Either way: the buffer may be read or written and the CDB decides, as Windows'
     * SRB_FLAGS_UNSPECIFIED_DIRECTION. */
    SCSI_DIR_UNSPECIFIED,
};

/* SAM-5 status codes */
#define SAM_STAT_GOOD                 0x00
#define SAM_STAT_CHECK_CONDITION      0x02
#define SAM_STAT_CONDITION_MET        0x04
#define SAM_STAT_BUSY                 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL        0x28
#define SAM_STAT_ACA_ACTIVE           0x30
#define SAM_STAT_TASK_ABORTED         0x40

struct scsi_cmd {
    /* Filled by the submitter. */
    const uint8_t *cdb;
    uint8_t cdb_len;
    enum scsi_dir dir;       /* the data direction the initiator set up */
    const struct iovec *iov; /* the initiator's data buffer */
    int iovcnt;
    uint32_t xfer_len; /* its length in bytes (the expected data transfer length) */
    uint64_t nexus;    /* I_T nexus identity (0 for the local port) */
    /* The initiator's SPC-4 TransportID in text form (iSCSI: "NAME,i,0xISID"), for persistent
     * reservations; NULL or "" when the transport gave none. Valid until done(). */
    const char *transport_id;
    void (*done)(struct scsi_cmd *cmd);
    void *context;

    /* Filled by the device before done(). */
    uint8_t status;       /* SAM_STAT_* */
    uint8_t sense_len;    /* valid bytes in sense[] when status is CHECK CONDITION */
    uint32_t transferred; /* bytes moved to/from the buffer (residual = xfer_len - this) */
    uint8_t sense[SCSI_SENSE_MAX];

    /* The device's scratch: no allocation per command. */
    struct be_io bio;
    struct iovec bio_iov[4];
    uint64_t dev_priv[5];
};

struct scsi_lu;
struct scsi_target;

struct scsi_disk_config {
    const char *vendor;   /* T10 vendor, up to 8 chars; default "STORSTAK" */
    const char *product;  /* up to 16; default "VIRTUAL DISK" */
    const char *revision; /* up to 4; default "0001" */
    const char *serial;   /* unit serial number (VPD 80h); default derived from the device id */
    uint64_t device_id;   /* seeds the NAA identifier in VPD 83h; unique per LU */
    uint32_t block_size;  /* 512 or 4096; default 512 */
    uint32_t max_transfer_blocks; /* VPD B0h MAXIMUM TRANSFER LENGTH; 0 = no limit advertised */
    bool write_cache;             /* WCE initial value (caching mode page); default true */
    bool read_only;               /* write-protected medium */
    /* Removable medium (RMB=1): START STOP UNIT LOEJ ejects and loads it, PREVENT ALLOW MEDIUM
     * REMOVAL locks it per I_T nexus. The data stays in the backend while the medium is out. */
    bool removable;
    /* Physical block size in bytes: a power-of-two multiple of block_size, at most 64 KiB
     * (READ CAPACITY (16) LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT); 0 = block_size. */
    uint32_t physical_block_size;
};

struct scsi_cdrom_config {
    const char *vendor;      /* default "STORSTAK" */
    const char *product;     /* default "VIRTUAL CDROM" */
    const char *revision;    /* default "0001" */
    const char *serial;      /* default derived from the device id */
    uint64_t device_id;      /* seeds the NAA identifier in VPD 83h */
    const char *image;       /* ISO/UDF image or .cue sheet; NULL or "" = no medium */
    uint32_t ready_delay_ms; /* NOT READY, BECOMING READY (04/01) this long after a load */
};

struct scsi_cdrom_status {
    bool loaded, tray_open, prevented, dvd;
    char image[4096];
    uint32_t sectors, tracks;
    uint32_t read_speed_kbs;  /* selected by SET CD SPEED / SET STREAMING; 0 = maximum */
    uint64_t media_changes;   /* loads and removals so far */
    uint64_t streaming_reads; /* READ (12) commands with STREAMING=1 */
};

/* Creates an MMC CD/DVD-ROM drive (peripheral type 05h, devices/mmc.c). err gets a reason when
 * the image cannot be used. */
int scsi_cdrom_create(const struct scsi_cdrom_config *cfg, struct scsi_lu **out, char *err,
                      size_t errlen);
/* The operator puts a disc in (image) or takes it out (NULL or ""): NewMedia or MediaRemoval
 * events, 28/00 unit attention on a load. -EBUSY while medium removal is prevented. */
int scsi_cdrom_load(struct scsi_lu *lu, const char *image, char *err, size_t errlen);
int scsi_cdrom_status(struct scsi_lu *lu, struct scsi_cdrom_status *st);

/* Creates a direct-access block device (peripheral type 00h) over a backend it does not own. */
int scsi_disk_create(const struct scsi_disk_config *cfg, struct backend *be, struct scsi_lu **out);
void scsi_lu_destroy(struct scsi_lu *lu);
void scsi_lu_execute(struct scsi_lu *lu, struct scsi_cmd *cmd);
/*
 * Establishes a unit attention condition with the given additional sense code and qualifier for
 * every I_T nexus (SAM-5 5.14), e.g. 29h/00h after a LUN or target reset, 2Ah/09h after the
 * backend's capacity changed. Each nexus sees it once, on its next command other than INQUIRY,
 * REPORT LUNS or REQUEST SENSE (or in the data of a REQUEST SENSE). A reset supersedes the unit
 * attentions established before it. Safe to call from any thread.
 */
void scsi_lu_set_unit_attention(struct scsi_lu *lu, uint8_t asc, uint8_t ascq);
/*
 * The transport lost an I_T nexus (iSCSI logout or connection loss, SAM-5 6.3.4): what the LU
 * kept for it ends: an SPC-2 reservation it held, its prevention of medium removal (SBC-4 5.12).
 * Persistent reservations are not affected. transport_id may be NULL. A LUN or target reset is
 * scsi_lu_set_unit_attention(lu, 0x29, ...): it also ends the SPC-2 reservation and every
 * prevention. Safe to call from any thread.
 */
void scsi_lu_nexus_loss(struct scsi_lu *lu, uint64_t nexus, const char *transport_id);

struct scsi_target *scsi_target_create(void);
/* The target does not own the LUs; destroy them after the target. */
int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu);
void scsi_target_destroy(struct scsi_target *t);
/* REPORT LUNS, and absent-LUN answers (INQUIRY PQ=3, other commands LOGICAL UNIT NOT SUPPORTED),
 * are the target's; everything else goes to the LU. */
void scsi_target_execute(struct scsi_target *t, uint64_t lun, struct scsi_cmd *cmd);

#endif
