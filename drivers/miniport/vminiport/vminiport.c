/*
 * vminiport: a Storport virtual miniport (Storage Virtual Miniport Drivers) that presents SCSI
 * logical units emulated by devices/ over byte-store backends (RAM, files through io_uring).
 * Its targets and LUNs come from the adapter's Device Parameters key, one subkey per unit
 * ("Target0\Lun0": Type, Backend, Size, Path, BlockSize, ...). Commands run in HwStorBuildIo,
 * with no Storport lock held, straight into the device and its backend; BuildIo returns FALSE
 * and the command completes (StorPortNotification RequestComplete) in whichever thread the
 * backend finishes it: inline for RAM, the io_uring reaper for files. Management SRBs (flush,
 * shutdown, resets) go through HwStorStartIo.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <storstack/storage/storport.h>

#include <storstack/wdm/pnp.h>

#include <storstack/storage/ntddcdrm.h>

#include "backends/nbd.h"
#include "devices/scsi_lu.h"
#include "drivers/miniport/vminiport/vminiport.h"
#include "drivers/miniport/vminiport/vmpfault.h"

#define VMP_MAX_TARGETS   16
#define VMP_MAX_LUNS      16
#define VMP_MAX_SG        4
#define VMP_RESET_WAIT_MS 30000

typedef struct _VMP_UNIT {
    struct backend *Backend;
    struct scsi_lu *Lu;
} VMP_UNIT;

typedef struct _VMP_ADAPTER {
    ULONG MaxTargets;
    ULONG MaxLuns;
    ULONG MaxTransferLength; /* bytes: the adapter's limit, advertised in each unit's VPD B0h */
    struct scsi_target *Targets[VMP_MAX_TARGETS];
    VMP_UNIT Units[VMP_MAX_TARGETS][VMP_MAX_LUNS];
    ULONG UnitCount;
    atomic_int InFlight; /* commands in the device or backend */
    PVMP_FAULTS Faults;  /* fault hooks (vmpfault.c), NULL when none is configured */
} VMP_ADAPTER, *PVMP_ADAPTER;

typedef struct _VMP_SRB_EXTENSION {
    struct scsi_cmd Cmd;
    struct iovec Iov[VMP_MAX_SG];
    PVMP_ADAPTER Adapter;
    PSCSI_REQUEST_BLOCK Srb;
} VMP_SRB_EXTENSION, *PVMP_SRB_EXTENSION;

/* Reads one value of the adapter key (or a subkey) as text; FALSE when absent. A value longer
 * than the buffer is a configuration error, reported, and clears *ok. */
static BOOLEAN VmpReadText(PVOID ext, PCSTR subkey, PCSTR name, char *buf, USHORT len, BOOLEAN *ok)
{
    PVOID data = buf;
    USHORT n = len;
    ULONG status = StorPortRegistryReadAdapterKey(ext, subkey, name, MINIPORT_REG_SZ, &data, &n);
    if (status == STOR_STATUS_BUFFER_TOO_SMALL) {
        StorPortLogErrorText(ext, "%s%s%s is longer than %u characters", subkey ? subkey : "",
                             subkey ? "\\" : "", name, (unsigned)len - 1);
        *ok = FALSE;
    }
    return status == STOR_STATUS_SUCCESS;
}

static BOOLEAN VmpReadString(PVOID ext, PCSTR subkey, PCSTR name, char *buf, USHORT len)
{
    BOOLEAN ok = TRUE;
    return VmpReadText(ext, subkey, name, buf, len, &ok);
}

/* Reads a number (K/M/G/T suffixes allowed); *ok is cleared when present but malformed. */
static ULONGLONG VmpReadNumber(PVOID ext, PCSTR subkey, PCSTR name, ULONGLONG fallback, BOOLEAN *ok)
{
    char buf[64];
    ULONGLONG v;
    if (!VmpReadString(ext, subkey, name, buf, sizeof(buf)))
        return fallback;
    if (!RtlStringToUlonglong(buf, TRUE, &v)) {
        StorPortLogErrorText(ext, "%s%s%s: '%s' is not a number", subkey ? subkey : "",
                             subkey ? "\\" : "", name, buf);
        *ok = FALSE;
        return fallback;
    }
    return v;
}

static uint64_t VmpHash(PCSTR a, ULONG t, ULONG l)
{
    uint64_t h = 1469598103934665603ull;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ull;
    h = (h ^ t) * 1099511628211ull;
    h = (h ^ l) * 1099511628211ull;
    return h;
}

static BOOLEAN VmpAddToTarget(PVMP_ADAPTER a, ULONG t, ULONG l)
{
    if (!a->Targets[t]) {
        a->Targets[t] = scsi_target_create();
        if (!a->Targets[t])
            return FALSE;
    }
    scsi_target_add_lu(a->Targets[t], l, a->Units[t][l].Lu);
    a->UnitCount++;
    return TRUE;
}

/* Type = cdrom: an MMC drive; Image names its disc (empty or absent: no disc), ReadyDelay the
 * milliseconds it spends becoming ready after a load. */
static BOOLEAN VmpCreateCdrom(PVMP_ADAPTER a, PVOID ext, ULONG t, ULONG l, PCSTR subkey,
                              PCSTR instance, const struct scsi_disk_config *ident)
{
    char image[STORSTACK_CDROM_PATH_MAX] = "", err[256] = "";
    BOOLEAN ok = TRUE;
    struct scsi_cdrom_config cfg = {.vendor = ident->vendor,
                                    .product = ident->product,
                                    .revision = ident->revision,
                                    .serial = ident->serial};
    VmpReadText(ext, subkey, "Image", image, sizeof(image), &ok);
    ULONGLONG delay = VmpReadNumber(ext, subkey, "ReadyDelay", 0, &ok);
    if (!ok)
        return FALSE;
    if (delay > 60000) {
        StorPortLogErrorText(ext, "%s: ReadyDelay must be at most 60000 ms", subkey);
        return FALSE;
    }
    cfg.device_id = VmpHash(instance, t, l);
    cfg.image = image;
    cfg.ready_delay_ms = (uint32_t)delay;
    int rc = scsi_cdrom_create(&cfg, &a->Units[t][l].Lu, err, sizeof(err));
    if (rc < 0) {
        StorPortLogErrorText(ext, "%s: cannot create the CD-ROM drive: %s", subkey,
                             err[0] ? err : strerror(-rc));
        return FALSE;
    }
    return VmpAddToTarget(a, t, l);
}

/* Builds one logical unit from its subkey. Returns FALSE on a configuration error. */
static BOOLEAN VmpCreateUnit(PVMP_ADAPTER a, PVOID ext, ULONG t, ULONG l, PCSTR subkey,
                             PCSTR instance)
{
    char type[32] = "disk", kind[32] = "ram", path[512] = "", uri[512] = "", vendor[9], product[17],
         revision[5], serial[64];
    struct scsi_disk_config cfg = {0};
    BOOLEAN ok = TRUE;
    ULONGLONG size, block, ro, wce, direct, create, removable, physical;
    const char *detail = NULL;
    int rc;

    VmpReadText(ext, subkey, "Type", type, sizeof(type), &ok);
    VmpReadText(ext, subkey, "Backend", kind, sizeof(kind), &ok);
    VmpReadText(ext, subkey, "Path", path, sizeof(path), &ok);
    VmpReadText(ext, subkey, "Uri", uri, sizeof(uri), &ok);
    /* T10 field sizes (SPC-4 6.6.2): vendor 8, product 16, revision 4 */
    cfg.vendor = VmpReadText(ext, subkey, "Vendor", vendor, sizeof(vendor), &ok) ? vendor : NULL;
    cfg.product =
        VmpReadText(ext, subkey, "Product", product, sizeof(product), &ok) ? product : NULL;
    cfg.revision =
        VmpReadText(ext, subkey, "Revision", revision, sizeof(revision), &ok) ? revision : NULL;
    cfg.serial = VmpReadText(ext, subkey, "Serial", serial, sizeof(serial), &ok) ? serial : NULL;
    size = VmpReadNumber(ext, subkey, "Size", 0, &ok);
    block = VmpReadNumber(ext, subkey, "BlockSize", 512, &ok);
    ro = VmpReadNumber(ext, subkey, "ReadOnly", 0, &ok);
    wce = VmpReadNumber(ext, subkey, "WriteCache", 1, &ok);
    direct = VmpReadNumber(ext, subkey, "Direct", 0, &ok);
    create = VmpReadNumber(ext, subkey, "Create", 1, &ok);
    removable = VmpReadNumber(ext, subkey, "Removable", 0, &ok);
    /* 0: one logical block per physical block */
    physical = VmpReadNumber(ext, subkey, "PhysicalBlockSize", 0, &ok);
    if (!ok)
        return FALSE;
    if (!strcasecmp(type, "cdrom"))
        return VmpCreateCdrom(a, ext, t, l, subkey, instance, &cfg);
    if (strcasecmp(type, "disk") != 0) {
        StorPortLogErrorText(ext, "%s: Type '%s' is not supported (disk, cdrom)", subkey, type);
        return FALSE;
    }
    if (block != 512 && block != 4096) {
        StorPortLogErrorText(ext, "%s: BlockSize must be 512 or 4096, not %llu", subkey,
                             (unsigned long long)block);
        return FALSE;
    }
    if (physical == 0)
        physical = block;
    if (physical < block || physical > 65536 || (physical & (physical - 1))) {
        StorPortLogErrorText(ext,
                             "%s: PhysicalBlockSize must be a power-of-two multiple of "
                             "BlockSize (%llu) up to 65536, not %llu",
                             subkey, (unsigned long long)block, (unsigned long long)physical);
        return FALSE;
    }
    if (!strcasecmp(kind, "ram") || !strcasecmp(kind, "null")) {
        BOOLEAN ram = !strcasecmp(kind, "ram");
        if (size == 0 || size % block) {
            StorPortLogErrorText(ext,
                                 "%s: a %s disk needs a Size that is a nonzero "
                                 "multiple of %llu bytes",
                                 subkey, ram ? "RAM" : "null", (unsigned long long)block);
            return FALSE;
        }
        /* null: no data kept or moved, the stack's own cost per I/O (docs/benchmarks.md) */
        rc = ram ? be_ram_create(size, &a->Units[t][l].Backend)
                 : be_null_create(size, &a->Units[t][l].Backend);
    } else if (!strcasecmp(kind, "file")) {
        if (!path[0]) {
            StorPortLogErrorText(ext, "%s: Backend file needs a Path", subkey);
            return FALSE;
        }
        if (size % block) {
            StorPortLogErrorText(ext, "%s: Size must be a multiple of %llu bytes", subkey,
                                 (unsigned long long)block);
            return FALSE;
        }
        rc = be_file_create(path, size,
                            (create ? BE_FILE_CREATE : 0) | (direct ? BE_FILE_DIRECT : 0) |
                                (ro ? BE_FILE_READONLY : 0),
                            &a->Units[t][l].Backend, &detail);
    } else if (!strcasecmp(kind, "nbd")) {
        /* the NBD virtual miniport (docs/remote.md): an NBD export, with reconnection */
        struct be_nbd_config nc = {.uri = uri};
        nc.reconnect_ms = (uint32_t)VmpReadNumber(ext, subkey, "ReconnectTimeoutMs", 30000, &ok);
        nc.connect_ms = (uint32_t)VmpReadNumber(ext, subkey, "ConnectTimeoutMs", 5000, &ok);
        if (!ok)
            return FALSE;
        if (!uri[0]) {
            StorPortLogErrorText(ext, "%s: Backend nbd needs a Uri (nbd://HOST:PORT/EXPORT)",
                                 subkey);
            return FALSE;
        }
#ifdef STORSTACK_HAVE_LIBNBD
        rc = be_nbd_create(&nc, &a->Units[t][l].Backend, &detail);
        snprintf(path, sizeof(path), "%s", uri);
#else
        StorPortLogErrorText(ext, "%s: Backend nbd: storstack was built without libnbd", subkey);
        return FALSE;
#endif
    } else {
        StorPortLogErrorText(ext, "%s: Backend '%s' is not known (ram, file, nbd, null)", subkey,
                             kind);
        return FALSE;
    }
    if (rc < 0) {
        StorPortLogErrorText(ext, "%s: %s backend%s%s: %s%s%s", subkey, kind, path[0] ? " " : "",
                             path, detail ? detail : "", detail ? ": " : "", strerror(-rc));
        return FALSE;
    }
    if (a->Units[t][l].Backend->size < block) {
        StorPortLogErrorText(ext, "%s: the backend holds less than one block", subkey);
        return FALSE;
    }
    /* Stable across restarts: the identity of a file-backed disk must not change. */
    cfg.device_id = VmpHash(instance, t, l);
    cfg.block_size = (uint32_t)block;
    /* VPD B0h tells initiators (over pass-through, or the iSCSI target) the adapter's limit */
    cfg.max_transfer_blocks = (uint32_t)(a->MaxTransferLength / block);
    cfg.write_cache = wce != 0;
    cfg.read_only = ro != 0;
    cfg.removable = removable != 0;
    cfg.physical_block_size = (uint32_t)physical;
    rc = scsi_disk_create(&cfg, a->Units[t][l].Backend, &a->Units[t][l].Lu);
    if (rc < 0) {
        StorPortLogErrorText(ext, "%s: cannot create the disk: %s", subkey, strerror(-rc));
        return FALSE;
    }
    return VmpAddToTarget(a, t, l);
}

static void VmpFreeResources(PVOID DeviceExtension)
{
    PVMP_ADAPTER a = DeviceExtension;
    VmpFaultDestroy(a->Faults);
    a->Faults = NULL;
    for (ULONG t = 0; t < VMP_MAX_TARGETS; t++) {
        if (a->Targets[t]) {
            scsi_target_destroy(a->Targets[t]);
            a->Targets[t] = NULL;
        }
        for (ULONG l = 0; l < VMP_MAX_LUNS; l++) {
            /* the backend first: destroying it waits for its in-flight requests */
            if (a->Units[t][l].Backend)
                be_destroy(a->Units[t][l].Backend);
            if (a->Units[t][l].Lu)
                scsi_lu_destroy(a->Units[t][l].Lu);
            a->Units[t][l].Backend = NULL;
            a->Units[t][l].Lu = NULL;
        }
    }
}

/* HwStorFindAdapter (virtual form): reads the configuration, creates the units, fills
 * PORT_CONFIGURATION_INFORMATION. */
static ULONG VmpHwFindAdapter(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                              PVOID LowerDevice, PCSTR ArgumentString,
                              PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Again)
{
    PVMP_ADAPTER a = DeviceExtension;
    BOOLEAN ok = TRUE;
    char instance[256] = "", subkey[64];
    ULONGLONG max_transfer, breaks, depth, max_io;

    memset(a, 0, sizeof(*a));
    a->MaxTargets = (ULONG)VmpReadNumber(DeviceExtension, NULL, "MaximumTargets", 8, &ok);
    a->MaxLuns = (ULONG)VmpReadNumber(DeviceExtension, NULL, "MaximumLuns", 8, &ok);
    max_transfer = VmpReadNumber(DeviceExtension, NULL, "MaximumTransferLength", 256 * 1024, &ok);
    breaks = VmpReadNumber(DeviceExtension, NULL, "NumberOfPhysicalBreaks", 65, &ok);
    depth = VmpReadNumber(DeviceExtension, NULL, "QueueDepth", 64, &ok);
    max_io = VmpReadNumber(DeviceExtension, NULL, "MaxNumberOfIO", 1024, &ok);
    /* The adapter's instance path names its units stably (NAA identifiers, serial numbers). */
    if (LowerDevice)
        IoGetDeviceRegistryKeyPath((PDEVICE_OBJECT)LowerDevice, PLUGPLAY_REGKEY_DRIVER, instance,
                                   sizeof(instance));
    if (!ok)
        return SP_RETURN_BAD_CONFIG;
    if (a->MaxTargets == 0 || a->MaxTargets > VMP_MAX_TARGETS || a->MaxLuns == 0 ||
        a->MaxLuns > VMP_MAX_LUNS) {
        StorPortLogErrorText(DeviceExtension, "MaximumTargets and MaximumLuns must be 1..%u",
                             VMP_MAX_TARGETS);
        return SP_RETURN_BAD_CONFIG;
    }
    if (max_transfer < 4096 || max_transfer > 16u * 1024 * 1024 || max_transfer % 512) {
        StorPortLogErrorText(DeviceExtension, "MaximumTransferLength must be a multiple of 512 "
                                              "from 4K to 16M");
        return SP_RETURN_BAD_CONFIG;
    }
    if (breaks < 2 || breaks > SCSI_MAXIMUM_PHYSICAL_BREAKS || depth == 0 || depth > 254 ||
        max_io == 0) {
        StorPortLogErrorText(DeviceExtension, "NumberOfPhysicalBreaks must be 2..255, QueueDepth "
                                              "1..254 and MaxNumberOfIO positive");
        return SP_RETURN_BAD_CONFIG;
    }
    a->MaxTransferLength = (ULONG)max_transfer;
    a->Faults = VmpFaultCreate(DeviceExtension, &ok);
    if (!ok)
        return SP_RETURN_BAD_CONFIG;
    if (!instance[0])
        snprintf(instance, sizeof(instance), "vminiport");
    /* A unit configured past the limits would silently not exist: say so. */
    for (ULONG t = 0; t < VMP_MAX_TARGETS; t++) {
        for (ULONG l = 0; l < VMP_MAX_LUNS; l++) {
            char probe[16];
            if (t < a->MaxTargets && l < a->MaxLuns)
                continue;
            snprintf(subkey, sizeof(subkey), "Target%u\\Lun%u", t, l);
            if (VmpReadString(DeviceExtension, subkey, "Type", probe, sizeof(probe)) ||
                VmpReadString(DeviceExtension, subkey, "Backend", probe, sizeof(probe))) {
                StorPortLogErrorText(DeviceExtension,
                                     "%s is beyond MaximumTargets %u / MaximumLuns %u", subkey,
                                     a->MaxTargets, a->MaxLuns);
                VmpFreeResources(a);
                return SP_RETURN_BAD_CONFIG;
            }
        }
    }
    for (ULONG t = 0; t < a->MaxTargets; t++) {
        for (ULONG l = 0; l < a->MaxLuns; l++) {
            char probe[16];
            snprintf(subkey, sizeof(subkey), "Target%u\\Lun%u", t, l);
            if (!VmpReadString(DeviceExtension, subkey, "Type", probe, sizeof(probe)) &&
                !VmpReadString(DeviceExtension, subkey, "Backend", probe, sizeof(probe)))
                continue;
            if (!VmpCreateUnit(a, DeviceExtension, t, l, subkey, instance)) {
                VmpFreeResources(a);
                return SP_RETURN_BAD_CONFIG;
            }
        }
    }
    ConfigInfo->MaximumTransferLength = (ULONG)max_transfer;
    ConfigInfo->NumberOfPhysicalBreaks = (ULONG)breaks;
    ConfigInfo->AlignmentMask = 0;
    ConfigInfo->NumberOfBuses = 1;
    ConfigInfo->MaximumNumberOfTargets = (UCHAR)a->MaxTargets;
    ConfigInfo->MaximumNumberOfLogicalUnits = (UCHAR)a->MaxLuns;
    ConfigInfo->ScatterGather = TRUE;
    ConfigInfo->CachesData = FALSE;
    ConfigInfo->TaggedQueuing = TRUE;
    ConfigInfo->MultipleRequestPerLu = TRUE;
    ConfigInfo->AutoRequestSense = TRUE;
    ConfigInfo->SynchronizationModel = StorSynchronizeFullDuplex;
    ConfigInfo->InitialLunQueueDepth = (ULONG)depth;
    ConfigInfo->MaxNumberOfIO = (ULONG)max_io;
    ConfigInfo->VirtualDevice = TRUE;
    *Again = FALSE;
    return SP_RETURN_FOUND;
}

static BOOLEAN VmpHwInitialize(PVOID DeviceExtension)
{
    return TRUE;
}

/* The device finished a command: translate SAM status and sense into the SRB, complete it. */
static void VmpCommandDone(struct scsi_cmd *cmd)
{
    PVMP_SRB_EXTENSION x = CONTAINING_RECORD(cmd, VMP_SRB_EXTENSION, Cmd);
    PSCSI_REQUEST_BLOCK srb = x->Srb;
    PVMP_ADAPTER a = x->Adapter;

    srb->ScsiStatus = cmd->status;
    if (cmd->status == SAM_STAT_GOOD || cmd->status == SAM_STAT_CONDITION_MET) {
        if (cmd->transferred < srb->DataTransferLength) {
            srb->DataTransferLength = cmd->transferred;
            srb->SrbStatus = SRB_STATUS_DATA_OVERRUN; /* an underrun, as Storport reports it */
        } else {
            srb->SrbStatus = SRB_STATUS_SUCCESS;
        }
    } else {
        srb->SrbStatus = SRB_STATUS_ERROR;
        srb->DataTransferLength = cmd->transferred;
        if (cmd->status == SAM_STAT_CHECK_CONDITION && cmd->sense_len &&
            !(srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE) && srb->SenseInfoBuffer &&
            srb->SenseInfoBufferLength) {
            UCHAR n = cmd->sense_len < srb->SenseInfoBufferLength ? cmd->sense_len
                                                                  : srb->SenseInfoBufferLength;
            memcpy(srb->SenseInfoBuffer, cmd->sense, n);
            srb->SenseInfoBufferLength = n;
            srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
        }
    }
    atomic_fetch_sub(&a->InFlight, 1);
    StorPortNotification(RequestComplete, a, srb); /* `a` is the HwDeviceExtension */
}

static void VmpExecute(PVMP_ADAPTER a, PSCSI_REQUEST_BLOCK srb)
{
    PVMP_SRB_EXTENSION x = srb->SrbExtension;
    struct scsi_cmd *cmd = &x->Cmd;
    PSTOR_SCATTER_GATHER_LIST sg;
    ULONGLONG nexus;
    PCSTR transport_id;

    if (srb->TargetId >= a->MaxTargets || !a->Targets[srb->TargetId] || srb->PathId != 0) {
        srb->SrbStatus = SRB_STATUS_SELECTION_TIMEOUT;
        StorPortNotification(RequestComplete, a, srb);
        return;
    }
    memset(cmd, 0, offsetof(struct scsi_cmd, status));
    x->Adapter = a;
    x->Srb = srb;
    cmd->cdb = srb->Cdb;
    cmd->cdb_len = srb->CdbLength;
    cmd->dir = (srb->SrbFlags & SRB_FLAGS_UNSPECIFIED_DIRECTION) == SRB_FLAGS_DATA_IN ? SCSI_DIR_IN
               : (srb->SrbFlags & SRB_FLAGS_UNSPECIFIED_DIRECTION) == SRB_FLAGS_DATA_OUT
                   ? SCSI_DIR_OUT
               : srb->DataTransferLength ? SCSI_DIR_UNSPECIFIED /* the CDB decides */
                                         : SCSI_DIR_NONE;
    cmd->xfer_len = srb->DataTransferLength;
    StorPortGetRequestInitiator(a, srb, &nexus, &transport_id, NULL);
    cmd->nexus = nexus;
    cmd->transport_id = transport_id;
    cmd->done = VmpCommandDone;
    if (srb->DataTransferLength) {
        sg = StorPortGetScatterGatherList(a, srb);
        if (!sg || sg->NumberOfElements == 0 || sg->NumberOfElements > VMP_MAX_SG) {
            srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
            StorPortNotification(RequestComplete, a, srb);
            return;
        }
        /* Physical addresses are host addresses: the S/G list is the device's iovec. */
        for (ULONG i = 0; i < sg->NumberOfElements; i++) {
            x->Iov[i].iov_base = (void *)(ULONG_PTR)sg->List[i].PhysicalAddress.QuadPart;
            x->Iov[i].iov_len = sg->List[i].Length;
        }
        cmd->iov = x->Iov;
        cmd->iovcnt = (int)sg->NumberOfElements;
    }
    atomic_fetch_add(&a->InFlight, 1);
    scsi_target_execute(a->Targets[srb->TargetId], srb->Lun, cmd);
}

/* HwStorBuildIo: runs unsynchronized; SCSI commands execute here and never reach StartIo. */
static BOOLEAN VmpHwBuildIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    if (Srb->Function != SRB_FUNCTION_EXECUTE_SCSI)
        return TRUE;
    if (VmpFaultDrop(((PVMP_ADAPTER)DeviceExtension)->Faults, Srb))
        return FALSE; /* completed by an abort or a reset */
    VmpExecute(DeviceExtension, Srb);
    return FALSE;
}

/* Waits (bounded) until the devices have finished every command. */
static BOOLEAN VmpDrain(PVMP_ADAPTER a)
{
    for (int ms = 0; ms < VMP_RESET_WAIT_MS; ms++) {
        if (atomic_load(&a->InFlight) == 0)
            return TRUE;
        usleep(1000);
    }
    return FALSE;
}

/* 29h/03h BUS DEVICE RESET FUNCTION OCCURRED after a LUN or target reset, 29h/02h SCSI BUS
 * RESET OCCURRED after a bus reset (SPC-4 table of ASC/ASCQ assignments). */
static void VmpSetUnitAttention(PVMP_ADAPTER a, LONG target, LONG lun, UCHAR ascq)
{
    for (ULONG t = 0; t < a->MaxTargets; t++)
        for (ULONG l = 0; l < a->MaxLuns; l++)
            if (a->Units[t][l].Lu && (target < 0 || (ULONG)target == t) &&
                (lun < 0 || (ULONG)lun == l))
                scsi_lu_set_unit_attention(a->Units[t][l].Lu, 0x29, ascq);
}

/* SRB_FUNCTION_IO_CONTROL with the STORSTAK signature: the cdrom class driver's operator
 * requests (ntddcdrm.h) for the MMC unit the SRB addresses. */
static void VmpIoControl(PVMP_ADAPTER a, PSCSI_REQUEST_BLOCK Srb)
{
    PSRB_IO_CONTROL io = Srb->DataBuffer;
    struct scsi_lu *lu = Srb->TargetId < a->MaxTargets && Srb->Lun < a->MaxLuns
                             ? a->Units[Srb->TargetId][Srb->Lun].Lu
                             : NULL;
    ULONG need;
    if (!io || Srb->DataTransferLength < sizeof(*io) || io->HeaderLength != sizeof(*io) ||
        memcmp(io->Signature, STORSTACK_SRB_SIGNATURE, 8) != 0 || !lu) {
        Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        return;
    }
    need = io->ControlCode == STORSTACK_SRB_CDROM_LOAD_IMAGE   ? sizeof(STORSTACK_CDROM_LOAD_IMAGE)
           : io->ControlCode == STORSTACK_SRB_CDROM_GET_STATUS ? sizeof(STORSTACK_CDROM_STATUS)
                                                               : 0;
    if (!need || io->Length < need || Srb->DataTransferLength - sizeof(*io) < io->Length) {
        Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        return;
    }
    /* the body follows the 28-byte header unaligned: copy it in and out */
    PUCHAR body = (PUCHAR)(io + 1);
    int rc;
    if (io->ControlCode == STORSTACK_SRB_CDROM_LOAD_IMAGE) {
        STORSTACK_CDROM_LOAD_IMAGE li;
        char err[sizeof(li.Path)] = "";
        memcpy(&li, body, sizeof(li));
        li.Path[sizeof(li.Path) - 1] = '\0';
        rc = scsi_cdrom_load(lu, li.Path, err, sizeof(err));
        /* the reason goes back in place of the path */
        snprintf(li.Path, sizeof(li.Path), "%s", rc ? (err[0] ? err : strerror(-rc)) : "");
        memcpy(body, &li, sizeof(li));
    } else {
        struct scsi_cdrom_status s;
        STORSTACK_CDROM_STATUS st;
        rc = scsi_cdrom_status(lu, &s);
        memset(&st, 0, sizeof(st));
        if (!rc) {
            st.Loaded = s.loaded;
            st.TrayOpen = s.tray_open;
            st.Prevented = s.prevented;
            st.Dvd = s.dvd;
            st.Sectors = s.sectors;
            st.Tracks = s.tracks;
            st.ReadSpeed = s.read_speed_kbs;
            st.MediaChangeCount = (ULONG)s.media_changes;
            st.StreamingReads = s.streaming_reads;
            snprintf(st.Image, sizeof(st.Image), "%s", s.image);
        }
        memcpy(body, &st, sizeof(st));
    }
    io->ReturnCode = (ULONG)-rc;
    Srb->SrbStatus = SRB_STATUS_SUCCESS;
}

/* HwStorStartIo: the management SRBs. Called with the StartIo lock held. */
static BOOLEAN VmpHwStartIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    PVMP_ADAPTER a = DeviceExtension;
    switch (Srb->Function) {
    case SRB_FUNCTION_EXECUTE_SCSI:
        VmpExecute(a, Srb);
        return TRUE;
    case SRB_FUNCTION_FLUSH:
    case SRB_FUNCTION_SHUTDOWN:
        /* no adapter cache: the class driver's SYNCHRONIZE CACHE already reached the device */
        Srb->SrbStatus = SRB_STATUS_SUCCESS;
        break;
    case SRB_FUNCTION_RESET_LOGICAL_UNIT:
    case SRB_FUNCTION_RESET_DEVICE:
        /* A virtual device cannot recall a backend request: the reset waits for them, then
         * raises POWER ON, RESET OR BUS DEVICE RESET OCCURRED (SAM-5 6.3.4). */
        Srb->SrbStatus =
            VmpDrain(a) && VmpFaultReset(a->Faults, Srb->TargetId,
                                         Srb->Function == SRB_FUNCTION_RESET_DEVICE ? -1 : Srb->Lun)
                ? SRB_STATUS_SUCCESS
                : SRB_STATUS_ERROR;
        VmpSetUnitAttention(a, Srb->TargetId,
                            Srb->Function == SRB_FUNCTION_RESET_DEVICE ? -1 : Srb->Lun, 0x03);
        break;
    case SRB_FUNCTION_ABORT_COMMAND:
        /* a dropped command (fault hooks) is aborted; others run to completion */
        Srb->SrbStatus =
            VmpFaultAbort(a->Faults, Srb->NextSrb) ? SRB_STATUS_SUCCESS : SRB_STATUS_ABORT_FAILED;
        break;
    case SRB_FUNCTION_IO_CONTROL:
        VmpIoControl(a, Srb);
        break;
    default:
        Srb->SrbStatus = SRB_STATUS_INVALID_REQUEST;
        break;
    }
    StorPortNotification(RequestComplete, DeviceExtension, Srb);
    return TRUE;
}

/* HwStorResetBus: finish what is in flight, then report the reset. */
static BOOLEAN VmpHwResetBus(PVOID DeviceExtension, ULONG PathId)
{
    PVMP_ADAPTER a = DeviceExtension;
    BOOLEAN drained = VmpDrain(a);
    if (drained && !VmpFaultReset(a->Faults, -1, -1))
        return FALSE; /* an injected failure (vmpfault.c) */
    if (!drained) {
        /* A backend still holds commands: completing their SRBs now would let the device write
         * into buffers the class driver has freed. The reset fails; they complete later. */
        StorPortLogErrorText(DeviceExtension,
                             "bus reset: commands still in the backend after %u ms",
                             VMP_RESET_WAIT_MS);
        return FALSE;
    }
    StorPortCompleteRequest(DeviceExtension, (UCHAR)PathId, 0xFF, 0xFF, SRB_STATUS_BUS_RESET);
    VmpSetUnitAttention(a, -1, -1, 0x02);
    StorPortNotification(ResetDetected, DeviceExtension, 0);
    return drained;
}

static SCSI_ADAPTER_CONTROL_STATUS
VmpHwAdapterControl(PVOID DeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = Parameters;
    switch (ControlType) {
    case ScsiQuerySupportedControlTypes:
        for (ULONG i = 0; i < list->MaxControlType && i < ScsiAdapterControlMax; i++)
            list->SupportedTypeList[i] = i == ScsiQuerySupportedControlTypes ||
                                         i == ScsiStopAdapter || i == ScsiRestartAdapter;
        return ScsiAdapterControlSuccess;
    case ScsiStopAdapter:
        return VmpDrain(DeviceExtension) ? ScsiAdapterControlSuccess
                                         : ScsiAdapterControlUnsuccessful;
    case ScsiRestartAdapter:
        /* a restart gives back the dropped commands (Storport completes what is left) */
        return VmpFaultReset(((PVMP_ADAPTER)DeviceExtension)->Faults, -1, -1)
                   ? ScsiAdapterControlSuccess
                   : ScsiAdapterControlUnsuccessful;
    default:
        return ScsiAdapterControlUnsuccessful;
    }
}

/* HwStorUnitControl: ScsiUnitNexusLoss (a storstack extension) ends what the unit's device keeps
 * for the I_T nexus (its SPC-2 reservation, its prevention of medium removal). */
static SCSI_UNIT_CONTROL_STATUS
VmpHwUnitControl(PVOID DeviceExtension, STOR_UNIT_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PVMP_ADAPTER a = DeviceExtension;
    PSTOR_UNIT_NEXUS_LOSS loss = Parameters;
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = Parameters;
    switch (ControlType) {
    case ScsiQuerySupportedUnitControlTypes:
        /* the devices keep no state that unit start, power or removal would change */
        for (ULONG i = 0; i < list->MaxControlType && i < STOR_MAX_CONTROL_TYPES; i++)
            list->SupportedTypeList[i] =
                i == ScsiQuerySupportedUnitControlTypes || i == ScsiUnitNexusLoss;
        return ScsiUnitControlSuccess;
    case ScsiUnitNexusLoss:
        if (!loss || loss->PathId != 0 || loss->TargetId >= VMP_MAX_TARGETS ||
            loss->Lun >= VMP_MAX_LUNS || !a->Units[loss->TargetId][loss->Lun].Lu)
            return ScsiUnitControlUnsuccessful;
        scsi_lu_nexus_loss(a->Units[loss->TargetId][loss->Lun].Lu, loss->Nexus,
                           loss->TransportId && loss->TransportId[0] ? loss->TransportId : NULL);
        return ScsiUnitControlSuccess;
    default:
        return ScsiUnitControlUnsuccessful;
    }
}

NTSTATUS VminiportDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    VIRTUAL_HW_INITIALIZATION_DATA init;
    memset(&init, 0, sizeof(init));
    init.HwInitializationDataSize = sizeof(init);
    init.AdapterInterfaceType = Internal;
    init.HwInitialize = VmpHwInitialize;
    init.HwStartIo = VmpHwStartIo;
    init.HwFindAdapter = VmpHwFindAdapter;
    init.HwResetBus = VmpHwResetBus;
    init.HwAdapterControl = VmpHwAdapterControl;
    init.HwUnitControl = VmpHwUnitControl;
    init.HwBuildIo = VmpHwBuildIo;
    init.HwFreeAdapterResources = VmpFreeResources;
    init.DeviceExtensionSize = sizeof(VMP_ADAPTER);
    init.SpecificLuExtensionSize = 0;
    init.SrbExtensionSize = sizeof(VMP_SRB_EXTENSION);
    init.TaggedQueuing = TRUE;
    init.AutoRequestSense = TRUE;
    init.MultipleRequestPerLu = TRUE;
    return (NTSTATUS)StorPortInitialize(DriverObject, (PVOID)RegistryPath, &init, NULL);
}

const char VminiportInf[] =
    "[Version]\n"
    "Signature = \"$Windows NT$\"\n"
    "Class = SCSIAdapter\n"
    "ClassGuid = {4d36e97b-e325-11ce-bfc1-08002be10318}\n"
    "Provider = storstack\n"
    "[Models]\n"
    "storstack virtual storage adapter = vminiport_Install, ROOT\\VMINIPORT\n"
    "[vminiport_Install.Services]\n"
    "AddService = vminiport, 0x00000002, vminiport_Service_Inst\n"
    "[vminiport_Service_Inst]\n"
    "ServiceType = 1\n"
    "StartType = 0\n";
