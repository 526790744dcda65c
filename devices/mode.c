/*
 * Mode parameters of a direct-access logical unit: MODE SENSE(6/10) and MODE SELECT(6/10)
 * (SPC-4 6.11-6.14, 7.5) over a table of mode pages. Pages: power condition (1Ah) and
 * informational exceptions control (1Ch), nothing changeable; caching (SBC-4 6.5.5) with WCE
 * changeable, control (SPC-4 7.5.8) with D_SENSE and SWP (software write protect: the
 * dispatcher then fails every medium-changing command with DATA PROTECT 27h/02h) changeable. Saved
 * values are not implemented: MODE SENSE with PC=11b fails with SAVING PARAMETERS NOT SUPPORTED
 * (39h/00h, SPC-4 6.13), and MODE SELECT with SP=1 with INVALID FIELD IN CDB as SPC-4 6.11 requires
 * for a logical unit that has no saved pages. MODE SELECT checks the whole parameter list before
 * changing anything; a change takes effect at once and establishes MODE PARAMETERS CHANGED
 * (2Ah/01h) for every other I_T nexus (SPC-4 7.5.1). The LU lock serialises MODE SELECTs; the I/O
 * path reads the bits with atomic loads.
 */
#include <string.h>

#include "devices/scsi_lu_p.h"

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

#define CACHING_PAGE_LEN 20 /* PAGE LENGTH 12h */
#define CONTROL_PAGE_LEN 12 /* PAGE LENGTH 0Ah */
#define CACHING_WCE      0x04
#define CONTROL_SWP      0x08 /* byte 4: software write protect */

static void caching_page(const struct scsi_lu *lu, int pc, uint8_t *p)
{
    memset(p, 0, CACHING_PAGE_LEN);
    p[0] = MODE_PAGE_CACHING;
    p[1] = CACHING_PAGE_LEN - 2;
    bool wce = false;
    if (pc == PC_CURRENT)
        wce = atomic_load(&((struct scsi_lu *)lu)->wce);
    else if (pc == PC_CHANGEABLE)
        wce = true;
    else
        wce = lu->default_wce;
    if (wce)
        p[2] |= CACHING_WCE;
}

static void control_page(const struct scsi_lu *lu, int pc, uint8_t *p)
{
    memset(p, 0, CONTROL_PAGE_LEN);
    p[0] = MODE_PAGE_CONTROL;
    p[1] = CONTROL_PAGE_LEN - 2;
    if (pc == PC_CHANGEABLE) {
        p[2] = MODE_CONTROL_D_SENSE;
        p[4] = CONTROL_SWP;
        return;
    }
    /* GLTSD: no log parameters are saved. QUEUE ALGORITHM MODIFIER 1: commands may be reordered
     * (the backends promise no ordering). */
    p[2] = MODE_CONTROL_GLTSD;
    if (pc == PC_CURRENT && atomic_load(&((struct scsi_lu *)lu)->d_sense))
        p[2] |= MODE_CONTROL_D_SENSE;
    p[3] = 0x10;
    if (pc == PC_CURRENT && atomic_load(&((struct scsi_lu *)lu)->swp))
        p[4] |= CONTROL_SWP;
}

/* Power condition (SPC-4 7.5.13): the logical unit has no idle or standby timers, and none can
 * be set: every field zero and unchangeable. */
#define POWER_PAGE_LEN 40 /* PAGE LENGTH 26h */
static void power_condition_page(const struct scsi_lu *lu, int pc, uint8_t *p)
{
    memset(p, 0, POWER_PAGE_LEN);
    p[0] = 0x1A;
    p[1] = POWER_PAGE_LEN - 2;
}

/* Informational exceptions control (SPC-4 7.5.11): no failure prediction, so exception reporting
 * is disabled (DEXCPT=1, MRIE 0) and not changeable. */
#define IE_PAGE_LEN 12 /* PAGE LENGTH 0Ah */
static void ie_control_page(const struct scsi_lu *lu, int pc, uint8_t *p)
{
    memset(p, 0, IE_PAGE_LEN);
    p[0] = 0x1C;
    p[1] = IE_PAGE_LEN - 2;
    if (pc != PC_CHANGEABLE)
        p[2] = 0x08; /* DEXCPT */
}

static const struct mode_page_desc {
    uint8_t code;
    uint8_t len;
    void (*fill)(const struct scsi_lu *lu, int pc, uint8_t *p);
} mode_pages[] = {
    {MODE_PAGE_CACHING, CACHING_PAGE_LEN, caching_page},
    {MODE_PAGE_CONTROL, CONTROL_PAGE_LEN, control_page},
    {0x1A, POWER_PAGE_LEN, power_condition_page},
    {0x1C, IE_PAGE_LEN, ie_control_page},
};

static const struct mode_page_desc *mode_page_find(uint8_t code)
{
    for (size_t i = 0; i < RTL_NUMBER_OF(mode_pages); i++) {
        if (mode_pages[i].code == code)
            return &mode_pages[i];
    }
    return NULL;
}

static uint8_t device_specific(const struct scsi_lu *lu)
{
    bool wp = lu->read_only || atomic_load(&((struct scsi_lu *)lu)->swp);
    return (uint8_t)((wp ? MODE_DSP_WRITE_PROTECT : 0) | MODE_DSP_FUA_SUPPORTED);
}

/* ---- MODE SENSE --------------------------------------------------------------------------- */

static int mode_sense(struct scsi_lu *lu, struct scsi_cmd *cmd, bool ten)
{
    const uint8_t *cdb = cmd->cdb;
    bool dbd = cdb[1] & 0x08;
    bool llbaa = ten && (cdb[1] & 0x10);
    int pc = cdb[2] >> 6;
    uint8_t page = cdb[2] & 0x3F;
    uint8_t sub = cdb[3];
    uint32_t alloc = ten ? scsi_get_be16(cdb + 7) : cdb[4];

    if (pc == PC_SAVED) {
        struct scsi_sense_info si = {
            .key = SCSI_SENSE_ILLEGAL_REQUEST,
            .asc = SCSI_ADSENSE_SAVING_PARAMETERS_NOT_SUPPORTED,
            .sks_valid = true,
            .sks_cd = true,
            .sks_bpv = true,
            .bit_pointer = 7,
            .field_pointer = 2,
        };
        scsi_check(cmd, lu, &si);
        return SCSI_DONE;
    }
    const struct mode_page_desc *one = NULL;
    if (page == MODE_SENSE_RETURN_ALL) {
        /* 3Fh/00h: all pages; 3Fh/FFh: all pages and subpages (we have no subpages). */
        if (sub != 0x00 && sub != 0xFF) {
            scsi_check_cdb_field(cmd, lu, 3, -1);
            return SCSI_DONE;
        }
    } else {
        one = mode_page_find(page);
        if (!one) {
            scsi_check_cdb_field(cmd, lu, 2, 5);
            return SCSI_DONE;
        }
        if (sub != 0) {
            scsi_check_cdb_field(cmd, lu, 3, -1);
            return SCSI_DONE;
        }
    }

    uint8_t buf[256];
    memset(buf, 0, sizeof(buf));
    uint32_t pos = ten ? 8 : 4;
    uint32_t bdlen = 0;
    if (!dbd) {
        uint8_t *bd = buf + pos;
        if (llbaa) {
            bdlen = 16;
            if (pc != PC_CHANGEABLE) {
                scsi_put_be64(bd, lu->nblocks);
                scsi_put_be32(bd + 12, lu->block_size);
            }
        } else {
            bdlen = 8;
            if (pc != PC_CHANGEABLE) {
                /* SBC-4 6.5.2.2: FFFFFFFFh when the capacity does not fit. */
                scsi_put_be32(bd, lu->nblocks > UINT32_MAX ? UINT32_MAX : (uint32_t)lu->nblocks);
                scsi_put_be24(bd + 5, lu->block_size);
            }
        }
        pos += bdlen;
    }
    for (size_t i = 0; i < RTL_NUMBER_OF(mode_pages); i++) {
        const struct mode_page_desc *m = &mode_pages[i];
        if (one && one != m)
            continue;
        m->fill(lu, pc, buf + pos);
        pos += m->len;
    }
    if (ten) {
        scsi_put_be16(buf, (uint16_t)(pos - 2));
        buf[3] = device_specific(lu);
        buf[4] = llbaa && bdlen ? 0x01 : 0x00; /* LONGLBA */
        scsi_put_be16(buf + 6, (uint16_t)bdlen);
    } else {
        buf[0] = (uint8_t)(pos - 1);
        buf[2] = device_specific(lu);
        buf[3] = (uint8_t)bdlen;
    }
    scsi_respond(cmd, buf, pos, alloc);
    return SCSI_DONE;
}

int spc_mode_sense6(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mode_sense(lu, cmd, false);
}

int spc_mode_sense10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mode_sense(lu, cmd, true);
}

/* ---- MODE SELECT -------------------------------------------------------------------------- */

#define MODE_SELECT_MAX 512 /* longest parameter list accepted: header, descriptor, pages */

/* Checks the block descriptor: NUMBER OF BLOCKS zero or the current capacity (we cannot resize),
 * BLOCK LENGTH the current one (we cannot reformat). Returns false with sense set. */
static bool check_block_descriptor(struct scsi_cmd *cmd, struct scsi_lu *lu, const uint8_t *bd,
                                   uint32_t off, bool longlba)
{
    if (longlba) {
        uint64_t nb = scsi_get_be64(bd);
        if (nb != 0 && nb != lu->nblocks) {
            scsi_check_param_field(cmd, lu, (uint16_t)off, -1);
            return false;
        }
        for (uint32_t i = 8; i < 12; i++) {
            if (bd[i]) {
                scsi_check_param_field(cmd, lu, (uint16_t)(off + i), scsi_high_bit(bd[i]));
                return false;
            }
        }
        if (scsi_get_be32(bd + 12) != lu->block_size) {
            scsi_check_param_field(cmd, lu, (uint16_t)(off + 12), -1);
            return false;
        }
        return true;
    }
    uint32_t nb = scsi_get_be32(bd);
    uint32_t cur = lu->nblocks > UINT32_MAX ? UINT32_MAX : (uint32_t)lu->nblocks;
    if (nb != 0 && nb != cur) {
        scsi_check_param_field(cmd, lu, (uint16_t)off, -1);
        return false;
    }
    if (bd[4]) {
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 4), scsi_high_bit(bd[4]));
        return false;
    }
    if (scsi_get_be24(bd + 5) != lu->block_size) {
        scsi_check_param_field(cmd, lu, (uint16_t)(off + 5), -1);
        return false;
    }
    return true;
}

static int mode_select(struct scsi_lu *lu, struct scsi_cmd *cmd, bool ten)
{
    const uint8_t *cdb = cmd->cdb;
    uint32_t plen = ten ? scsi_get_be16(cdb + 7) : cdb[4];
    uint16_t plen_field = ten ? 7 : 4;
    uint32_t hdr = ten ? 8 : 4;

    if (cdb[1] & MODE_SELECT_SAVE_PAGES) {
        scsi_check_cdb_field(cmd, lu, 1, 0);
        return SCSI_DONE;
    }
    if (plen == 0) { /* SPC-4 6.11: not an error */
        scsi_good(cmd);
        return SCSI_DONE;
    }
    if (!(cdb[1] & MODE_SELECT_PAGE_FORMAT)) {
        /* PF=0 would mean vendor-specific pages; we only have the standard ones. */
        scsi_check_cdb_field(cmd, lu, 1, 4);
        return SCSI_DONE;
    }
    if (plen > MODE_SELECT_MAX) {
        scsi_check_cdb_field(cmd, lu, plen_field, -1);
        return SCSI_DONE;
    }
    uint8_t buf[MODE_SELECT_MAX];
    if (scsi_data_out(cmd, 0, buf, plen) < plen) {
        /* The initiator sent less than the CDB announces. */
        scsi_check_cdb_field(cmd, lu, plen_field, -1);
        return SCSI_DONE;
    }
    cmd->transferred = plen;
    if (plen < hdr) {
        scsi_check_param_list_length(cmd, lu);
        return SCSI_DONE;
    }

    /* Mode parameter header (SPC-4 7.5.4/7.5.5): MODE DATA LENGTH is reserved in MODE SELECT,
     * MEDIUM TYPE is 00h for a disk, the DEVICE-SPECIFIC PARAMETER's WP and DPOFUA are ignored. */
    uint32_t bdlen;
    bool longlba = false;
    if (ten) {
        if (buf[0] || buf[1]) {
            scsi_check_param_field(cmd, lu, buf[0] ? 0 : 1, -1);
            return SCSI_DONE;
        }
        if (buf[2]) {
            scsi_check_param_field(cmd, lu, 2, -1);
            return SCSI_DONE;
        }
        if (buf[4] & 0xFE) {
            scsi_check_param_field(cmd, lu, 4, scsi_high_bit(buf[4] & 0xFE));
            return SCSI_DONE;
        }
        if (buf[5]) {
            scsi_check_param_field(cmd, lu, 5, scsi_high_bit(buf[5]));
            return SCSI_DONE;
        }
        longlba = buf[4] & 0x01;
        bdlen = scsi_get_be16(buf + 6);
        if (bdlen != 0 && bdlen != (longlba ? 16u : 8u)) {
            scsi_check_param_field(cmd, lu, 6, -1);
            return SCSI_DONE;
        }
    } else {
        if (buf[0]) {
            scsi_check_param_field(cmd, lu, 0, -1);
            return SCSI_DONE;
        }
        if (buf[1]) {
            scsi_check_param_field(cmd, lu, 1, -1);
            return SCSI_DONE;
        }
        bdlen = buf[3];
        if (bdlen != 0 && bdlen != 8) {
            scsi_check_param_field(cmd, lu, 3, -1);
            return SCSI_DONE;
        }
    }
    if (hdr + bdlen > plen) {
        scsi_check_param_list_length(cmd, lu);
        return SCSI_DONE;
    }
    if (bdlen && !check_block_descriptor(cmd, lu, buf + hdr, hdr, longlba))
        return SCSI_DONE;

    pthread_mutex_lock(&lu->lock);
    bool wce = atomic_load(&lu->wce);
    bool d_sense = atomic_load(&lu->d_sense);
    bool swp = atomic_load(&lu->swp);
    bool new_wce = wce, new_d_sense = d_sense, new_swp = swp;
    uint32_t pos = hdr + bdlen;
    while (pos < plen) {
        if (plen - pos < 2) {
            pthread_mutex_unlock(&lu->lock);
            scsi_check_param_list_length(cmd, lu);
            return SCSI_DONE;
        }
        uint8_t *pg = buf + pos;
        /* PS is reserved in MODE SELECT (SPC-4 7.5.7) and ignored: initiators often echo the
         * byte MODE SENSE returned. SPF=1 would be a subpage: we have none. */
        if (pg[0] & 0x40) {
            pthread_mutex_unlock(&lu->lock);
            scsi_check_param_field(cmd, lu, (uint16_t)pos, 6);
            return SCSI_DONE;
        }
        const struct mode_page_desc *m = mode_page_find(pg[0] & 0x3F);
        if (!m) {
            pthread_mutex_unlock(&lu->lock);
            scsi_check_param_field(cmd, lu, (uint16_t)pos, 5);
            return SCSI_DONE;
        }
        if (pg[1] != m->len - 2) {
            pthread_mutex_unlock(&lu->lock);
            scsi_check_param_field(cmd, lu, (uint16_t)(pos + 1), -1);
            return SCSI_DONE;
        }
        if (plen - pos < m->len) {
            pthread_mutex_unlock(&lu->lock);
            scsi_check_param_list_length(cmd, lu);
            return SCSI_DONE;
        }
        uint8_t cur[64], chg[64];
        m->fill(lu, PC_CURRENT, cur);
        m->fill(lu, PC_CHANGEABLE, chg);
        for (uint32_t i = 2; i < m->len; i++) {
            uint8_t diff = (uint8_t)((pg[i] ^ cur[i]) & ~chg[i]);
            if (diff) {
                pthread_mutex_unlock(&lu->lock);
                scsi_check_param_field(cmd, lu, (uint16_t)(pos + i), scsi_high_bit(diff));
                return SCSI_DONE;
            }
        }
        if (m->code == MODE_PAGE_CACHING)
            new_wce = pg[2] & CACHING_WCE;
        else if (m->code == MODE_PAGE_CONTROL) {
            new_d_sense = pg[2] & MODE_CONTROL_D_SENSE;
            new_swp = pg[4] & CONTROL_SWP;
        }
        pos += m->len;
    }
    if (new_wce != wce || new_d_sense != d_sense || new_swp != swp) {
        atomic_store(&lu->wce, new_wce);
        atomic_store(&lu->d_sense, new_d_sense);
        atomic_store(&lu->swp, new_swp);
        scsi_lu_ua_raise_locked(lu, SCSI_ADSENSE_PARAMETERS_CHANGED,
                                SCSI_SENSEQ_MODE_PARAMETERS_CHANGED, &cmd->nexus);
    }
    pthread_mutex_unlock(&lu->lock);
    scsi_good(cmd);
    return SCSI_DONE;
}

int spc_mode_select6(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mode_select(lu, cmd, false);
}

int spc_mode_select10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
    return mode_select(lu, cmd, true);
}
