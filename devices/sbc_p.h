/*
 * Private face of the block command set, shared by sbc.c (the transfer engine, READ/WRITE,
 * SYNCHRONIZE CACHE, READ CAPACITY, START STOP UNIT and the command table), sbc_lbp.c (thin
 * provisioning: UNMAP, WRITE SAME, GET LBA STATUS, the VPD pages), sbc_format.c (FORMAT UNIT,
 * SANITIZE) and sbc_cmp.c
 * (commands that compare or read-modify-write: VERIFY, WRITE AND VERIFY, COMPARE AND WRITE,
 * ORWRITE). Handlers validate the CDB and data-out, then start a chain of backend submissions with
 * sbc_start(); the engine runs the chain and finishes the command.
 */
#ifndef STORSTACK_DEVICES_SBC_P_H
#define STORSTACK_DEVICES_SBC_P_H

#include "devices/scsi_lu_p.h"

/* Opcodes the shared scsi.h does not name. */
#define SBC_OP_PREFETCH10         0x34
#define SBC_OP_READ_DEFECT_DATA10 0x37
#define SBC_OP_ORWRITE16          0x8B
#define SBC_OP_SANITIZE           0x48

/* Additional sense code qualifiers the shared scsi.h does not name. */
#define SBC_SENSEQ_TRAY_OPEN         0x02 /* 3Ah: MEDIUM NOT PRESENT - TRAY OPEN */
#define SBC_SENSEQ_REMOVAL_PREVENTED 0x02 /* 53h: MEDIUM REMOVAL PREVENTED */

/* SANITIZE service actions (SBC-4 5.30.1) */
#define SANITIZE_BLOCK_ERASE       0x02
#define SANITIZE_EXIT_FAILURE_MODE 0x1F

/*
 * Limits the engine enforces and VPD B0h advertises (SBC-4 6.6.4). A WRITE SAME writes its
 * pattern 64 KiB at a time, so its length is capped at 1 GiB per command; an UNMAP is one backend
 * discard per descriptor, capped at 256 descriptors and 2^20 blocks in total (initiators split
 * larger discards; libiscsi calls more than 2^20 insane); COMPARE AND WRITE reads
 * the blocks to compare into one bounce slot.
 */
#define SBC_MAX_WRITE_SAME_BYTES    (1ull << 30)
#define SBC_MAX_UNMAP_DESCRIPTORS   256u
#define SBC_MAX_UNMAP_BLOCKS        (1u << 20)
#define SBC_GET_LBA_STATUS_MAX_DESC 64u

enum sbc_io_kind {
    SBC_IO_READ,
    SBC_IO_WRITE,
    SBC_IO_VERIFY,      /* BYTCHK=01b: read into a bounce slot, compare with the data-out buffer */
    SBC_IO_VERIFY_SAME, /* BYTCHK=11b: compare every block read with the one data-out block */
    SBC_IO_SYNC,        /* SYNCHRONIZE CACHE */
    SBC_IO_STOP,        /* START STOP UNIT with START=0: flush, then stop */
    SBC_IO_EJECT,       /* START STOP UNIT LOEJ=1 START=0: the medium is out; flush */
    SBC_IO_DISCARD,     /* one BE_OP_DISCARD of the range */
    SBC_IO_ZEROES,      /* one BE_OP_WRITE_ZEROES of the range */
    SBC_IO_PATTERN,     /* write the bounce slot (a repeated block) over the range */
    SBC_IO_UNMAP,       /* one BE_OP_DISCARD per UNMAP block descriptor */
    SBC_IO_CAW,         /* read, compare with the first half of data-out, write the second */
    SBC_IO_ORWRITE,     /* per slot-sized chunk: read, OR with data-out, write */
};

#define SBC_IO_FLUSH_AFTER 0x01u /* FUA wanted and the backend has none: flush after writing */
#define SBC_IO_FLUSHING    0x02u /* the current submission is that flush */
#define SBC_IO_FUA         0x04u /* pass BE_IO_FUA on the writes */
#define SBC_IO_STEP2       0x08u /* CAW/ORWRITE: the current submission is the write */
#define SBC_IO_THEN_VERIFY 0x10u /* WRITE AND VERIFY BYTCHK=01b/11b: compare after writing */
#define SBC_IO_GATE_SH     0x20u /* holds the write gate shared */
#define SBC_IO_GATE_EX     0x40u /* holds (or waits for) the write gate exclusive */
#define SBC_IO_WHOLE       0x80u /* FORMAT UNIT, SANITIZE: take the write gate exclusive */

/* The LBA and length fields of a READ, WRITE, VERIFY, WRITE AND VERIFY, ORWRITE or PRE-FETCH. */
struct sbc_rw {
    uint64_t lba;
    uint32_t nblocks;
    uint16_t len_field; /* CDB byte of TRANSFER LENGTH, for the field pointer */
    bool fua;
};

void sbc_parse_rw(const uint8_t *cdb, struct sbc_rw *rw);
/* The checks of a command that writes its data-out buffer (WRITE, WRITE AND VERIFY, ORWRITE):
 * MAXIMUM TRANSFER LENGTH, the range, then a zero length (GOOD, nothing to do) and a data-out
 * shorter than the CDB asks (INVALID FIELD IN CDB at the length). True when the command goes on
 * with *bytes to write; false when it is finished (status set). */
bool sbc_write_checks(struct scsi_lu *lu, struct scsi_cmd *cmd, struct sbc_rw *rw, uint64_t *bytes);

/* Starts the chain (taking the write gate when the kind writes) and returns SCSI_PENDING: the
 * engine finishes the command. The caller has set scsi_priv(cmd)->slot when it took one. */
int sbc_start(struct scsi_cmd *cmd, enum sbc_io_kind kind, uint64_t offset, uint64_t total,
              uint8_t flags);
/* The FUA handling of a write: SBC_IO_FUA, SBC_IO_FLUSH_AFTER or 0 (WCE=0 forces write-through). */
uint8_t sbc_write_flags(const struct scsi_lu *lu, bool fua);

/* LBA OUT OF RANGE (21h/00h) unless [lba, lba + n) lies on the medium. */
bool sbc_range_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint64_t n);
/* INVALID FIELD IN CDB at len_field when n exceeds MAXIMUM TRANSFER LENGTH. */
bool sbc_xfer_ok(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t n, uint16_t len_field);
/* A verify bounce slot (SCSI_VERIFY_SLOT_SIZE bytes), or -1 when all are taken. */
int sbc_slot_take(struct scsi_lu *lu);
uint8_t *sbc_slot_buf(struct scsi_lu *lu, int slot);
/* Takes a slot into the command's scratch; false (status BUSY set) when none is free. */
bool sbc_slot_claim(struct scsi_cmd *cmd, struct scsi_lu *lu);
/* Fills the command's slot (up to `bytes`) with the first data-out block, or zeros, repeated. */
void sbc_slot_fill(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t bytes, bool zeros);

/* Blocks a slot holds; at least one, since the largest block size is the slot size. */
static inline uint32_t sbc_slot_blocks(const struct scsi_lu *lu)
{
    return SCSI_VERIFY_SLOT_SIZE >> lu->block_shift;
}

/* MAXIMUM COMPARE AND WRITE LENGTH: one slot of blocks, at most 255 (a one-byte field). */
static inline uint32_t sbc_max_caw_blocks(const struct scsi_lu *lu)
{
    uint32_t n = sbc_slot_blocks(lu);
    return n > 255 ? 255 : n;
}

static inline uint64_t sbc_max_write_same_blocks(const struct scsi_lu *lu)
{
    return SBC_MAX_WRITE_SAME_BYTES >> lu->block_shift;
}

static inline uint32_t sbc_max_unmap_blocks(const struct scsi_lu *lu)
{
    (void)lu;
    return SBC_MAX_UNMAP_BLOCKS;
}

/* Handlers of sbc_lbp.c and sbc_cmp.c, entered in sbc.c's table. */
int sbc_unmap(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_write_same(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_get_lba_status(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_format_unit(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_sanitize(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_verify(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_write_verify(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_compare_and_write(struct scsi_lu *lu, struct scsi_cmd *cmd);
int sbc_orwrite(struct scsi_lu *lu, struct scsi_cmd *cmd);

#endif
