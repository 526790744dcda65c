/*
 * Logical block provisioning of the block device (SBC-4 4.7): UNMAP (5.32), WRITE SAME (10)/(16)
 * with UNMAP and NDOB (5.48, 5.50), GET LBA STATUS (5.8), and the VPD pages
 * that describe them: block limits B0h (6.6.4), block device characteristics B1h (6.6.2) and
 * logical block provisioning B2h (6.6.6). INQUIRY (spc.c) calls the page builders.
 *
 * A logical unit is thin provisioned (LBPME=1) when its backend can deallocate (can_trim), and
 * its deallocated blocks read as zeros (LBPRZ=1) when the backend says so (trim_zeroes). Mapped
 * or deallocated is read from the backend's allocation map (be_extents): a block is deallocated
 * only when every byte of it lies in a hole. Anchored blocks are not supported (ANC_SUP=0), so
 * ANCHOR=1 is an invalid field. Every limit in B0h is the one the handlers here enforce.
 */
#include <string.h>

#include "devices/sbc_p.h"

/* ---- UNMAP -------------------------------------------------------------------------------- */

/*
 * SBC-4 5.32. The whole parameter list is checked before anything is deallocated: a short header,
 * more descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT, more blocks than MAXIMUM UNMAP LBA
 * COUNT (INVALID FIELD IN PARAMETER LIST), a range off the medium (LBA OUT OF RANGE). Then one
 * backend discard per descriptor of nonzero length, all holding the write gate shared.
 */
int sbc_unmap(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    /* Only a thin LU has UNMAP in its table (sbc_lu_init). */
    if (cdb[1] & 0x01) { /* ANCHOR with ANC_SUP=0 */
        scsi_check_cdb_field(cmd, lu, 1, 0);
        return SCSI_DONE;
    }
    uint16_t plen = scsi_get_be16(cdb + 7);
    if (plen == 0) {
        scsi_good(cmd); /* no parameter data: nothing to unmap */
        return SCSI_DONE;
    }
    if (plen < 8) {
        scsi_check_simple(cmd, lu, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ADSENSE_PARAMETER_LIST_LENGTH,
                          0);
        return SCSI_DONE;
    }
    if (scsi_out_capacity(cmd) < plen) {
        scsi_check_cdb_field(cmd, lu, 7, -1);
        return SCSI_DONE;
    }
    uint8_t hdr[8];
    scsi_data_out(cmd, 0, hdr, sizeof(hdr));
    /* The descriptors are what both the list and the header's length cover; a partial
     * descriptor at the end is not one. */
    uint32_t bd_len = scsi_get_be16(hdr + 2);
    if (bd_len > (uint32_t)plen - 8)
        bd_len = (uint32_t)plen - 8;
    uint32_t count = bd_len / 16;
    if (count > SBC_MAX_UNMAP_DESCRIPTORS) {
        scsi_check_param_field(cmd, lu, 2, -1);
        return SCSI_DONE;
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t d[16];
        scsi_data_out(cmd, 8 + 16 * i, d, sizeof(d));
        uint64_t lba = scsi_get_be64(d);
        uint32_t n = scsi_get_be32(d + 8);
        sum += n;
        if (sum > sbc_max_unmap_blocks(lu)) {
            scsi_check_param_field(cmd, lu, (uint16_t)(8 + 16 * i + 8), -1);
            return SCSI_DONE;
        }
        if (!sbc_range_ok(cmd, lu, lba, n))
            return SCSI_DONE;
    }
    cmd->transferred = plen;
    if (sum == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    return sbc_start(cmd, SBC_IO_UNMAP, 0, count, 0);
}

/* ---- WRITE SAME --------------------------------------------------------------------------- */

/*
 * SBC-4 5.48/5.50. NUMBER OF LOGICAL BLOCKS 0 means to the end of the medium (WSNZ=0); more than
 * MAXIMUM WRITE SAME LENGTH is an invalid field. UNMAP=1 on a thin LU is an unmap request
 * (SBC-4 4.7.3.4): the range is deallocated whatever the data-out block holds, and then reads as
 * LBPRZ says (zeros here) - as Linux LIO does and as libiscsi's UnmapUntilEnd expects, which
 * sends a block of FFh with UNMAP=1 and reads zeros back. With UNMAP=0 (or a fully provisioned
 * LU) the pattern is written, so the blocks stay mapped, repeated through a bounce slot, 64 KiB
 * per backend write; NDOB=1 writes zeros without a data-out buffer.
 */
int sbc_write_same(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    bool sixteen = cdb[0] == SCSIOP_WRITE_SAME16;
    uint64_t lba = sixteen ? scsi_get_be64(cdb + 2) : scsi_get_be32(cdb + 2);
    uint64_t n = sixteen ? scsi_get_be32(cdb + 10) : scsi_get_be16(cdb + 7);
    uint16_t len_field = sixteen ? 10 : 7;
    bool unmap = cdb[1] & 0x08;
    bool ndob = sixteen && (cdb[1] & 0x01);

    if (cdb[1] & 0x10) { /* ANCHOR: anchored blocks are not supported (ANC_SUP=0) */
        scsi_check_cdb_field(cmd, lu, 1, 4);
        return SCSI_DONE;
    }
    if (lba > lu->nblocks) {
        sbc_range_ok(cmd, lu, lba, 0);
        return SCSI_DONE;
    }
    if (n == 0)
        n = lu->nblocks - lba; /* WSNZ=0: to the last block */
    if (n > sbc_max_write_same_blocks(lu)) {
        scsi_check_cdb_field(cmd, lu, len_field, -1);
        return SCSI_DONE;
    }
    if (!sbc_range_ok(cmd, lu, lba, n))
        return SCSI_DONE;
    if (!ndob && (scsi_out_capacity(cmd) != lu->block_size || cmd->xfer_len != lu->block_size)) {
        /* The data-out buffer is the one block to repeat: shorter or longer means the initiator
         * and the CDB disagree about the command. */
        scsi_check_cdb_field(cmd, lu, len_field, -1);
        return SCSI_DONE;
    }
    cmd->transferred = ndob ? 0 : lu->block_size;
    if (n == 0) {
        scsi_good(cmd);
        return SCSI_DONE;
    }
    uint64_t bytes = n << lu->block_shift;
    if (unmap && lu->lbpme)
        return sbc_start(cmd, SBC_IO_DISCARD, lba << lu->block_shift, bytes, 0);
    if (!sbc_slot_claim(cmd, lu))
        return SCSI_DONE;
    sbc_slot_fill(cmd, lu, bytes, ndob); /* NDOB: the block is all zeros */
    return sbc_start(cmd, SBC_IO_PATTERN, lba << lu->block_shift, bytes,
                     sbc_write_flags(lu, false));
}

/* ---- GET LBA STATUS ----------------------------------------------------------------------- */

struct lba_runs {
    uint8_t *buf; /* descriptors from byte 8 */
    uint32_t max, count;
    uint64_t start;  /* first block of the open run */
    uint64_t blocks; /* its length; 0 = no open run */
    uint8_t status;  /* 0 mapped (or unknown), 1 deallocated */
};

/* Appends blocks [first, first + n) of `status`, closing the open run when the status changes.
 * Returns false once the descriptor list is full. */
static bool runs_add(struct lba_runs *r, uint64_t first, uint64_t n, uint8_t status)
{
    if (n == 0)
        return true;
    if (r->blocks && r->status == status && r->start + r->blocks == first &&
        r->blocks + n <= UINT32_MAX) {
        r->blocks += n;
        return true;
    }
    if (r->blocks) {
        uint8_t *d = r->buf + 8 + 16 * r->count;
        scsi_put_be64(d, r->start);
        scsi_put_be32(d + 8, (uint32_t)r->blocks);
        d[12] = r->status;
        if (++r->count == r->max) {
            r->blocks = 0;
            return false;
        }
    }
    if (n > UINT32_MAX) {
        /* NUMBER OF LOGICAL BLOCKS is 32 bits: a longer run takes several descriptors. */
        r->start = first;
        r->blocks = UINT32_MAX;
        r->status = status;
        return runs_add(r, first + UINT32_MAX, n - UINT32_MAX, status);
    }
    r->start = first;
    r->blocks = n;
    r->status = status;
    return true;
}

/* One backend extent in blocks: a hole deallocates only the blocks wholly inside it; an
 * allocated run maps every block it touches. */
static bool runs_extent(struct lba_runs *r, const struct scsi_lu *lu, uint64_t off, uint64_t len,
                        bool hole)
{
    uint64_t bs = lu->block_size;
    uint64_t first, end;
    if (hole) {
        first = (off + bs - 1) >> lu->block_shift;
        end = (off + len) >> lu->block_shift;
    } else {
        first = off >> lu->block_shift;
        end = (off + len + bs - 1) >> lu->block_shift;
    }
    if (end <= first)
        return true;
    /* Blocks an earlier extent already claimed (a mapped block straddling into a hole). */
    uint64_t covered = r->blocks ? r->start + r->blocks : first;
    if (first < covered)
        first = covered;
    return end > first ? runs_add(r, first, end - first, hole ? 1 : 0) : true;
}

/*
 * SBC-4 5.8: LBA status descriptors from STARTING LBA onwards, as many as fit the allocation
 * length (at most SBC_GET_LBA_STATUS_MAX_DESC), each a run of mapped or deallocated blocks. A
 * backend without an allocation map reports everything mapped (status 0 is "mapped or unknown").
 */
int sbc_get_lba_status(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    const uint8_t *cdb = cmd->cdb;
    uint64_t lba = scsi_get_be64(cdb + 2);
    uint32_t alloc = scsi_get_be32(cdb + 10);
    if (lba >= lu->nblocks) {
        sbc_range_ok(cmd, lu, lba, 1);
        return SCSI_DONE;
    }
    uint8_t buf[8 + 16 * SBC_GET_LBA_STATUS_MAX_DESC];
    memset(buf, 0, sizeof(buf));
    uint32_t max = alloc > 8 ? (alloc - 8 + 15) / 16 : 1;
    if (max > SBC_GET_LBA_STATUS_MAX_DESC)
        max = SBC_GET_LBA_STATUS_MAX_DESC;
    struct lba_runs r = {.buf = buf, .max = max};

    uint64_t pos = lba << lu->block_shift;
    uint64_t end = lu->nblocks << lu->block_shift;
    bool more = true;
    if (!lu->be->caps.can_extents) {
        more = runs_add(&r, lba, lu->nblocks - lba, 0);
        pos = end;
    }
    /* The extent in hand is kept until the next one shows whether the run goes on: a hole cut
     * by the backend's answer window must not lose the block it ends inside. */
    uint64_t cur_off = pos, cur_len = 0;
    bool cur_hole = false;
    while (more && pos < end) {
        struct be_extent ext[16];
        int got = be_extents(lu->be, pos, end - pos, ext, 16);
        if (got <= 0) {
            scsi_check_simple(cmd, lu, SCSI_SENSE_HARDWARE_ERROR,
                              SCSI_ADSENSE_INTERNAL_TARGET_FAILURE, 0);
            return SCSI_DONE;
        }
        for (int i = 0; i < got && more; i++) {
            bool hole = ext[i].flags & BE_EXTENT_HOLE;
            if (cur_len && hole == cur_hole) {
                cur_len += ext[i].length;
            } else {
                if (cur_len)
                    more = runs_extent(&r, lu, cur_off, cur_len, cur_hole);
                cur_off = ext[i].offset;
                cur_len = ext[i].length;
                cur_hole = hole;
            }
            pos = ext[i].offset + ext[i].length;
        }
    }
    if (more && cur_len)
        more = runs_extent(&r, lu, cur_off, cur_len, cur_hole);
    if (more && r.blocks)
        runs_add(&r, UINT64_MAX, 1, 2); /* closes the last run */
    uint32_t len = 8 + 16 * r.count;
    scsi_put_be32(buf, len - 4);
    scsi_respond(cmd, buf, len, alloc);
    return SCSI_DONE;
}

/* ---- VPD pages ---------------------------------------------------------------------------- */

/* SBC-4 6.6.4: exactly the limits the handlers enforce. */
uint32_t sbc_vpd_block_limits(const struct scsi_lu *lu, uint8_t *b)
{
    VPD_BLOCK_LIMITS_PAGE *p = (VPD_BLOCK_LIMITS_PAGE *)b;
    /* Transfers are best in whole physical blocks (READ CAPACITY (16) LBPPBE); deallocation
     * works in 4 KiB pages (RAM) or filesystem blocks (file), and never in less than a physical
     * block. Both are powers of two, so the larger is a multiple of the smaller. */
    uint32_t pbs = lu->block_size << lu->lbppb_exp;
    uint32_t gran = (pbs > 4096 ? pbs : 4096) >> lu->block_shift;
    p->MaximumCompareAndWriteLength = (uint8_t)sbc_max_caw_blocks(lu);
    scsi_put_be16(p->OptimalTransferLengthGranularity, (uint16_t)(1u << lu->lbppb_exp));
    scsi_put_be32(p->MaximumTransferLength, lu->max_transfer_blocks);
    scsi_put_be32(p->OptimalTransferLength, lu->max_transfer_blocks);
    if (lu->lbpme) {
        scsi_put_be32(p->MaximumUnmapLBACount, sbc_max_unmap_blocks(lu));
        scsi_put_be32(p->MaximumUnmapBlockDescriptorCount, SBC_MAX_UNMAP_DESCRIPTORS);
        /* A smaller unmap zeroes in place and stays mapped. UGAVALID=1, alignment 0 (the
         * lowest aligned LBA of READ CAPACITY (16) is 0 too). */
        scsi_put_be32(p->OptimalUnmapGranularity, gran);
        scsi_put_be32(p->UnmapGranularityAlignment, 0x80000000u);
    }
    scsi_put_be64(p->MaxWriteSameLength, sbc_max_write_same_blocks(lu));
    return sizeof(*p);
}

/* SBC-4 6.6.2: a solid-state medium; WACEREQ 00b (no CRYPTOGRAPHIC ERASE). */
uint32_t sbc_vpd_block_characteristics(const struct scsi_lu *lu, uint8_t *b)
{
    VPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE *p = (VPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE *)b;
    (void)lu;
    p->MediumRotationRateMsb = 0x00;
    p->MediumRotationRateLsb = 0x01; /* non-rotating medium */
    b[7] = 0x40; /* WABEREQ 01b: a read after SANITIZE BLOCK ERASE succeeds (and reads zeros) */
    return sizeof(*p);
}

/* SBC-4 6.6.6: UNMAP and WRITE SAME (10)/(16) with UNMAP=1 deallocate on a thin LU. No threshold
 * (exponent 0), no anchored state, no provisioning group descriptor (DP=0). */
uint32_t sbc_vpd_provisioning(const struct scsi_lu *lu, uint8_t *b)
{
    VPD_LOGICAL_BLOCK_PROVISIONING_PAGE *p = (VPD_LOGICAL_BLOCK_PROVISIONING_PAGE *)b;
    if (lu->lbpme) {
        p->LBPU = 1;
        p->LBPWS = 1;
        p->LBPWS10 = 1;
        p->LBPRZ = lu->lbprz;
        p->ProvisioningType = 0x02; /* thin provisioned */
    }
    return sizeof(*p);
}
