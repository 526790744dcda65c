/*
 * Storport's life cycle of an adapter (Life Cycle of a Storport Driver): StorPortInitialize
 * takes over the miniport's driver object; AddDevice creates the adapter FDO; START_DEVICE
 * calls HwStorFindAdapter (the virtual form for virtual miniports, with the DriverParameter
 * string as ArgumentString) and HwStorInitialize, then starts the tick; QUERY_DEVICE_RELATIONS
 * scans the bus with INQUIRY and REPORT LUNS and reports one PDO per logical unit; REMOVE_DEVICE
 * stops the adapter (HwStorAdapterControl ScsiStopAdapter, HwStorFreeAdapterResources).
 */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/port/storport/storport_p.h"

static NTSTATUS StorpDispatchCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    STORP_COMMON *common = DeviceObject->DeviceExtension;
    /* storstack: the cleanup of a handle that carries an I_T nexus, at a unit PDO, ends that
     * nexus for the unit: HwStorUnitControl ScsiUnitNexusLoss. */
    if (sp->MajorFunction == IRP_MJ_CLEANUP && sp->FileObject && sp->FileObject->Caller.Nexus &&
        common->Signature == STORP_UNIT_SIGNATURE) {
        PSTORP_UNIT unit = ((PSTORP_PDO_EXTENSION)common)->Unit;
        STOR_UNIT_NEXUS_LOSS loss = {.PathId = unit->PathId,
                                     .TargetId = unit->TargetId,
                                     .Lun = unit->Lun,
                                     .Nexus = sp->FileObject->Caller.Nexus,
                                     .TransportId = sp->FileObject->Caller.TransportId};
        StorpUnitControl(unit, ScsiUnitNexusLoss, &loss);
    }
    Irp->IoStatus.Status = STATUS_SUCCESS;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

/* IRP_MJ_FLUSH_BUFFERS / IRP_MJ_SHUTDOWN reaching the port: nothing is cached
 * at this level; the class driver sends SYNCHRONIZE CACHE itself. */
static NTSTATUS StorpDispatchSucceed(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    return StorpDispatchCreateClose(DeviceObject, Irp);
}

PSTORP_UNIT StorpFindUnit(PSTORP_ADAPTER Adapter, UCHAR PathId, UCHAR TargetId, UCHAR Lun)
{
    ULONG targets = Adapter->Config.MaximumNumberOfTargets;
    ULONG luns = Adapter->Config.MaximumNumberOfLogicalUnits;
    if (PathId >= Adapter->Config.NumberOfBuses || TargetId >= targets || Lun >= luns ||
        !Adapter->UnitTable)
        return NULL;
    return Adapter->UnitTable[((ULONG)PathId * targets + TargetId) * luns + Lun];
}

static NTSTATUS StorpAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT PhysicalDeviceObject)
{
    PSTORP_DRIVER driver = IoGetDriverObjectExtension(DriverObject);
    PEXECUTIVE ex = DriverObject->Executive;
    PDEVICE_OBJECT fdo = NULL;
    PSTORP_ADAPTER adapter;
    char name[64];
    NTSTATUS status = STATUS_OBJECT_NAME_COLLISION;
    ULONG port;

    /* The port number is the first free \Device\RaidPort<N>; the adapter is Scsi<N>: too. */
    for (port = 0; port < 256 && status == STATUS_OBJECT_NAME_COLLISION; port++) {
        snprintf(name, sizeof(name), "\\Device\\RaidPort%u", port);
        status = IoCreateDevice(DriverObject, sizeof(STORP_ADAPTER), name, FILE_DEVICE_CONTROLLER,
                                FILE_DEVICE_SECURE_OPEN, FALSE, &fdo);
    }
    if (!NT_SUCCESS(status))
        return status;
    port--;
    adapter = fdo->DeviceExtension;
    adapter->Common.Signature = STORP_ADAPTER_SIGNATURE;
    adapter->DeviceObject = fdo;
    adapter->PhysicalDeviceObject = PhysicalDeviceObject;
    adapter->Driver = driver;
    adapter->Executive = ex;
    adapter->PortNumber = port;
    snprintf(adapter->DeviceName, sizeof(adapter->DeviceName), "%s", name);
    snprintf(adapter->LinkName, sizeof(adapter->LinkName), "Scsi%u:", port);
    KeInitializeSpinLock(&adapter->StartIoLock);
    KeInitializeSpinLock(&adapter->InterruptLock);
    KeInitializeSpinLock(&adapter->UnitLock);
    KeInitializeEvent(&adapter->ResetDone, NotificationEvent, TRUE);
    KeInitializeSpinLock(&adapter->EventLock);
    KeInitializeSpinLock(&adapter->AbandonedLock);
    InitializeListHead(&adapter->AbandonedResets);
    adapter->LowerDevice = IoAttachDeviceToDeviceStack(fdo, PhysicalDeviceObject);
    fdo->Flags |= DO_DIRECT_IO;
    fdo->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

/* Fills the configuration defaults a miniport sees in HwStorFindAdapter. */
static void StorpInitConfig(PSTORP_ADAPTER adapter)
{
    PPORT_CONFIGURATION_INFORMATION c = &adapter->Config;
    PHW_INITIALIZATION_DATA init = &adapter->Driver->Init;
    memset(c, 0, sizeof(*c));
    c->Length = sizeof(*c);
    c->AdapterInterfaceType = init->AdapterInterfaceType;
    c->MaximumTransferLength = SP_UNINITIALIZED_VALUE;
    c->NumberOfPhysicalBreaks = SP_UNINITIALIZED_VALUE;
    c->NumberOfBuses = 1;
    c->InitiatorBusId[0] = (CCHAR)SP_UNINITIALIZED_VALUE;
    c->ScatterGather = TRUE;
    c->Master = TRUE;
    c->Dma64BitAddresses = 1;
    c->MapBuffers = init->MapBuffers;
    c->NeedPhysicalAddresses = init->NeedPhysicalAddresses;
    c->TaggedQueuing = init->TaggedQueuing;
    c->AutoRequestSense = init->AutoRequestSense;
    c->MultipleRequestPerLu = init->MultipleRequestPerLu;
    c->MaximumNumberOfTargets = 8;
    c->MaximumNumberOfLogicalUnits = 8;
    c->DeviceExtensionSize = init->DeviceExtensionSize;
    c->SpecificLuExtensionSize = init->SpecificLuExtensionSize;
    c->SrbExtensionSize = init->SrbExtensionSize;
    c->SynchronizationModel = StorSynchronizeHalfDuplex;
    c->MaxNumberOfIO = 1000;
    c->InitialLunQueueDepth = STORP_DEFAULT_QUEUE_DEPTH;
    c->VirtualDevice = adapter->Driver->Virtual;
}

static NTSTATUS StorpStartAdapter(PSTORP_ADAPTER adapter)
{
    PHW_INITIALIZATION_DATA init = &adapter->Driver->Init;
    PEXECUTIVE ex = adapter->Executive;
    char key[128], argument[512] = "";
    BOOLEAN again = FALSE;
    ULONG result;
    STORP_HW_HEADER *hw;
    PPORT_CONFIGURATION_INFORMATION c = &adapter->Config;
    ULONGLONG value;

    StorpInitConfig(adapter);
    hw = aligned_alloc(16, (sizeof(STORP_HW_HEADER) + init->DeviceExtensionSize + 15u) & ~15u);
    if (!hw)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(hw, 0, sizeof(*hw) + init->DeviceExtensionSize);
    hw->Adapter = adapter;
    adapter->HwDeviceExtension = hw + 1;

    /* Registry Entries for StorPort Miniport Drivers: Parameters\Device holds DriverParameter
     * (the ArgumentString), BusType, and limits that override what the miniport sets. */
    snprintf(key, sizeof(key), "Services\\%s\\Parameters\\Device", adapter->Driver->ServiceName);
    RtlQueryRegistryString(ex, key, "DriverParameter", argument, sizeof(argument));
    adapter->BusType = BusTypeScsi;
    if (NT_SUCCESS(RtlQueryRegistryUlonglong(ex, key, "BusType", &value)))
        adapter->BusType = (ULONG)value;
    snprintf(key, sizeof(key), "Services\\%s\\Parameters", adapter->Driver->ServiceName);
    if (NT_SUCCESS(RtlQueryRegistryUlonglong(ex, key, "BusType", &value)))
        adapter->BusType = (ULONG)value;

    /* The verifier: Control\Storport\Verifier, on unless 0. */
    adapter->Verifier = TRUE;
    if (NT_SUCCESS(RtlQueryRegistryUlonglong(ex, "Control\\Storport", "Verifier", &value)))
        adapter->Verifier = value != 0;
    STORP_CONTEXT previous = StorpEnterContext(StorpContextFindAdapter);
    if (adapter->Driver->Virtual)
        result = adapter->Driver->VirtualFindAdapter(adapter->HwDeviceExtension,
                                                     adapter->Driver->HwContext, NULL,
                                                     adapter->LowerDevice, argument, c, &again);
    else
        result = init->HwFindAdapter(adapter->HwDeviceExtension, adapter->Driver->HwContext, NULL,
                                     argument, c, &again);
    StorpLeaveContext(previous);
    if (result != SP_RETURN_FOUND) {
        IoSetDeviceProblemText(adapter->DeviceObject, "HwStorFindAdapter returned %s",
                               result == SP_RETURN_BAD_CONFIG ? "SP_RETURN_BAD_CONFIG"
                               : result == SP_RETURN_ERROR    ? "SP_RETURN_ERROR"
                                                              : "SP_RETURN_NOT_FOUND");
        return STATUS_DEVICE_DOES_NOT_EXIST;
    }
    /* Limits the miniport left unset, and the registry's MaxNumberOfIO override. */
    if (c->MaximumTransferLength == SP_UNINITIALIZED_VALUE || c->MaximumTransferLength == 0)
        c->MaximumTransferLength = 128 * 1024;
    if (c->NumberOfPhysicalBreaks == SP_UNINITIALIZED_VALUE || c->NumberOfPhysicalBreaks == 0)
        c->NumberOfPhysicalBreaks = SCSI_MINIMUM_PHYSICAL_BREAKS;
    if (c->NumberOfBuses == 0 || c->NumberOfBuses > SCSI_MAXIMUM_BUSES)
        c->NumberOfBuses = 1;
    if (c->MaximumNumberOfTargets == 0)
        c->MaximumNumberOfTargets = 1;
    if (c->MaximumNumberOfLogicalUnits == 0)
        c->MaximumNumberOfLogicalUnits = 1;
    snprintf(key, sizeof(key), "Services\\%s\\Parameters\\Device", adapter->Driver->ServiceName);
    if (NT_SUCCESS(RtlQueryRegistryUlonglong(ex, key, "MaxNumberOfIO", &value)) && value)
        c->MaxNumberOfIO = (ULONG)value;
    if (c->MaxNumberOfIO == 0)
        c->MaxNumberOfIO = 1000;
    if (c->InitialLunQueueDepth == 0 || c->InitialLunQueueDepth > 254)
        c->InitialLunQueueDepth = STORP_DEFAULT_QUEUE_DEPTH;

    adapter->UnitTableSize =
        (ULONG)c->NumberOfBuses * c->MaximumNumberOfTargets * c->MaximumNumberOfLogicalUnits;
    adapter->UnitTable = calloc(adapter->UnitTableSize, sizeof(PSTORP_UNIT));
    if (!adapter->UnitTable)
        return STATUS_INSUFFICIENT_RESOURCES;
    adapter->RequestSize = (ULONG)((sizeof(STORP_REQUEST) + c->SrbExtensionSize + 15u) & ~15u);
    ExInitializeNPagedLookasideList(&adapter->RequestLookaside, NULL, NULL, 0, adapter->RequestSize,
                                    0x71527453 /* 'StRq' */, 1024);
    ExInitializeNPagedLookasideList(&adapter->PassThroughLookaside, NULL, NULL, 0,
                                    StorpPassThroughContextSize(), 0x74507453 /* 'StPt' */, 256);

    /* HwStorInitialize runs synchronized with the interrupt (the interrupt lock). */
    StorpEnterLock();
    KeAcquireSpinLock(&adapter->InterruptLock, NULL);
    previous = StorpEnterContext(StorpContextInitialize);
    BOOLEAN ok = init->HwInitialize ? init->HwInitialize(adapter->HwDeviceExtension) : TRUE;
    StorpLeaveContext(previous);
    KeReleaseSpinLock(&adapter->InterruptLock, 0);
    StorpLeaveLock();
    if (!ok) {
        IoSetDeviceProblemText(adapter->DeviceObject, "HwStorInitialize failed");
        return STATUS_ADAPTER_HARDWARE_ERROR;
    }
    if (adapter->PassiveInitEnabled && adapter->HwPassiveInitialize &&
        !adapter->HwPassiveInitialize(adapter->HwDeviceExtension)) {
        fprintf(stderr, "storstack: %s: HwStorPassiveInitializeRoutine failed\n",
                adapter->LinkName);
        return STATUS_ADAPTER_HARDWARE_ERROR;
    }
    adapter->Started = TRUE;
    StorpQueryUnitControl(adapter);
    IoCreateSymbolicLink(ex, adapter->LinkName, adapter->DeviceName);
    IoSetDeviceUserName(adapter->DeviceObject, adapter->LinkName);
    StorpInitializeRecovery(adapter);
    StorpStartTick(adapter);
    return STATUS_SUCCESS;
}

static PSTORP_UNIT StorpNewUnit(PSTORP_ADAPTER adapter, UCHAR path, UCHAR target, UCHAR lun)
{
    size_t lu = (adapter->Config.SpecificLuExtensionSize + 15u) & ~15u;
    PSTORP_UNIT unit = aligned_alloc(16, (sizeof(STORP_UNIT) + lu + 15u) & ~15u);
    if (!unit)
        return NULL;
    memset(unit, 0, sizeof(*unit) + lu);
    unit->Common.Signature = STORP_UNIT_SIGNATURE;
    unit->Adapter = adapter;
    unit->PathId = path;
    unit->TargetId = target;
    unit->Lun = lun;
    unit->LuExtension = lu ? (PUCHAR)unit + ((sizeof(STORP_UNIT) + 15u) & ~15u) : NULL;
    unit->QueueDepth = adapter->Config.InitialLunQueueDepth;
    if (!adapter->Config.MultipleRequestPerLu && !adapter->Config.TaggedQueuing)
        unit->QueueDepth = 1;
    KeInitializeSpinLock(&unit->Lock);
    InitializeListHead(&unit->Pending);
    InitializeListHead(&unit->OutstandingList);
    StorpInitializeUnitPower(unit);
    return unit;
}

static void StorpSetUnit(PSTORP_ADAPTER adapter, PSTORP_UNIT unit, PSTORP_UNIT value)
{
    ULONG targets = adapter->Config.MaximumNumberOfTargets;
    ULONG luns = adapter->Config.MaximumNumberOfLogicalUnits;
    KeAcquireSpinLock(&adapter->UnitLock, NULL);
    adapter->UnitTable[((ULONG)unit->PathId * targets + unit->TargetId) * luns + unit->Lun] = value;
    KeReleaseSpinLock(&adapter->UnitLock, 0);
}

/* Sends INQUIRY (EVPD page when evpd) to a unit; returns the bytes received or 0. */
ULONG StorpInquiry(PSTORP_UNIT unit, BOOLEAN evpd, UCHAR page, PUCHAR buf, ULONG len,
                   PUCHAR srb_status)
{
    SCSI_REQUEST_BLOCK srb = {0};
    UCHAR sense[SENSE_BUFFER_SIZE];
    srb.Length = sizeof(srb);
    srb.Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb.CdbLength = 6;
    srb.SrbFlags = SRB_FLAGS_DATA_IN | SRB_FLAGS_NO_QUEUE_FREEZE;
    srb.DataTransferLength = len;
    srb.DataBuffer = buf;
    srb.SenseInfoBuffer = sense;
    srb.SenseInfoBufferLength = sizeof(sense);
    srb.TimeOutValue = 5;
    srb.Cdb[0] = SCSIOP_INQUIRY;
    srb.Cdb[1] = evpd ? 1 : 0;
    srb.Cdb[2] = page;
    srb.Cdb[4] = (UCHAR)(len > 255 ? 255 : len);
    memset(buf, 0, len);
    StorpSendSrbSynchronous(unit, &srb);
    if (srb_status)
        *srb_status = SRB_STATUS(srb.SrbStatus);
    if (SRB_STATUS(srb.SrbStatus) != SRB_STATUS_SUCCESS &&
        SRB_STATUS(srb.SrbStatus) != SRB_STATUS_DATA_OVERRUN)
        return 0;
    return srb.DataTransferLength;
}

/* REPORT LUNS to LUN 0 of a target: fills luns[] (single-level LUNs below max), returns count,
 * or -1 when the target does not support it. */
static int StorpReportLuns(PSTORP_UNIT unit0, UCHAR *luns, int max)
{
    SCSI_REQUEST_BLOCK srb = {0};
    UCHAR sense[SENSE_BUFFER_SIZE];
    UCHAR data[8 + 8 * 256];
    ULONG listlen, count = 0;

    srb.Length = sizeof(srb);
    srb.Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb.CdbLength = 12;
    srb.SrbFlags = SRB_FLAGS_DATA_IN | SRB_FLAGS_NO_QUEUE_FREEZE;
    srb.DataTransferLength = sizeof(data);
    srb.DataBuffer = data;
    srb.SenseInfoBuffer = sense;
    srb.SenseInfoBufferLength = sizeof(sense);
    srb.TimeOutValue = 5;
    srb.Cdb[0] = SCSIOP_REPORT_LUNS;
    scsi_put_be32(&srb.Cdb[6], sizeof(data));
    memset(data, 0, sizeof(data));
    StorpSendSrbSynchronous(unit0, &srb);
    if (SRB_STATUS(srb.SrbStatus) != SRB_STATUS_SUCCESS &&
        SRB_STATUS(srb.SrbStatus) != SRB_STATUS_DATA_OVERRUN)
        return -1;
    if (srb.DataTransferLength < 8)
        return -1;
    listlen = scsi_get_be32(data);
    if (listlen > srb.DataTransferLength - 8)
        listlen = srb.DataTransferLength - 8;
    for (ULONG off = 8; off + 8 <= 8 + listlen && (int)count < max; off += 8) {
        /* peripheral device addressing, bus 0: byte 1 is the LUN */
        if ((data[off] & 0xC0) == 0 && data[off] == 0)
            luns[count++] = data[off + 1];
    }
    return (int)count;
}

/* Scans one LUN: a unit structure exists for the duration; kept only when a device is there. */
static void StorpScanLun(PSTORP_ADAPTER adapter, UCHAR path, UCHAR target, UCHAR lun,
                         BOOLEAN *target_present)
{
    PSTORP_UNIT unit = StorpFindUnit(adapter, path, target, lun);
    BOOLEAN fresh = FALSE;
    UCHAR inq[96], vpd[255], srb_status = 0;
    ULONG got;

    if (!unit) {
        unit = StorpNewUnit(adapter, path, target, lun);
        if (!unit)
            return;
        fresh = TRUE;
        StorpSetUnit(adapter, unit, unit);
        unit->Present = TRUE; /* the scan's own requests must reach the miniport */
    }
    got = StorpInquiry(unit, FALSE, 0, inq, sizeof(inq), &srb_status);
    if (target_present)
        *target_present = got >= 5 || srb_status == SRB_STATUS_ERROR;
    /* SPC-4 6.6.2: peripheral qualifier 000b is a connected LU; others are not reported. */
    if (got < 5 || (inq[0] >> 5) != 0) {
        if (fresh) {
            StorpSetUnit(adapter, unit, NULL);
            free(unit);
        } else {
            unit->Present = FALSE;
        }
        return;
    }
    unit->Present = TRUE;
    unit->Seen = TRUE;
    memcpy(unit->InquiryData, inq, got);
    unit->InquiryLength = got;
    unit->DeviceType = inq[0] & 0x1F;
    if (got >= 36) {
        memcpy(unit->VendorId, inq + 8, 8);
        memcpy(unit->ProductId, inq + 16, 16);
        memcpy(unit->Revision, inq + 32, 4);
    }
    /* The unit serial number (VPD 80h) when page 00h lists it. */
    got = StorpInquiry(unit, TRUE, 0x00, vpd, sizeof(vpd), NULL);
    for (ULONG i = 4; i < got && i < 4u + vpd[3]; i++) {
        if (vpd[i] == 0x80) {
            ULONG n = StorpInquiry(unit, TRUE, 0x80, vpd, sizeof(vpd), NULL);
            if (n >= 4) {
                ULONG l = vpd[3] < n - 4 ? vpd[3] : n - 4;
                if (l >= sizeof(unit->SerialNumber))
                    l = sizeof(unit->SerialNumber) - 1;
                memcpy(unit->SerialNumber, vpd + 4, l);
                unit->SerialNumber[l] = 0;
            }
            break;
        }
    }
    if (!unit->DeviceObject && !NT_SUCCESS(StorpCreateUnitPdo(unit))) {
        unit->Present = FALSE;
        unit->Seen = FALSE;
        if (fresh) {
            StorpSetUnit(adapter, unit, NULL);
            free(unit);
        }
    }
}

/* The bus scan: every target on every path; REPORT LUNS where LUN 0 answers, else LUN 0. */
static void StorpScanBus(PSTORP_ADAPTER adapter)
{
    PPORT_CONFIGURATION_INFORMATION c = &adapter->Config;
    /* Mark and sweep: a unit stays Present (and takes I/O) while the scan runs; only one the
     * scan did not find again is marked gone at the end. */
    for (ULONG i = 0; i < adapter->UnitTableSize; i++)
        if (adapter->UnitTable[i])
            adapter->UnitTable[i]->Seen = FALSE;
    for (UCHAR path = 0; path < c->NumberOfBuses; path++) {
        for (UCHAR target = 0; target < c->MaximumNumberOfTargets; target++) {
            UCHAR luns[256];
            BOOLEAN present = FALSE;
            int count;
            StorpScanLun(adapter, path, target, 0, &present);
            if (!present)
                continue;
            PSTORP_UNIT unit0 = StorpFindUnit(adapter, path, target, 0);
            if (!unit0) {
                /* LUN 0 answers but holds no device (PQ 1 or 3): address it for REPORT LUNS */
                unit0 = StorpNewUnit(adapter, path, target, 0);
                if (!unit0)
                    continue;
                StorpSetUnit(adapter, unit0, unit0);
                unit0->Present = TRUE;
                count = StorpReportLuns(unit0, luns, (int)RTL_NUMBER_OF(luns));
                StorpSetUnit(adapter, unit0, NULL);
                free(unit0);
            } else {
                count = StorpReportLuns(unit0, luns, (int)RTL_NUMBER_OF(luns));
            }
            if (count < 0) {
                for (UCHAR l = 1; l < c->MaximumNumberOfLogicalUnits; l++)
                    StorpScanLun(adapter, path, target, l, NULL);
            } else {
                for (int i = 0; i < count; i++)
                    if (luns[i] != 0 && luns[i] < c->MaximumNumberOfLogicalUnits)
                        StorpScanLun(adapter, path, target, luns[i], NULL);
            }
        }
    }
    for (ULONG i = 0; i < adapter->UnitTableSize; i++)
        if (adapter->UnitTable[i])
            adapter->UnitTable[i]->Present = adapter->UnitTable[i]->Seen;
}

static NTSTATUS StorpQueryBusRelations(PSTORP_ADAPTER adapter, PIRP Irp)
{
    PDEVICE_RELATIONS rel;
    ULONG count = 0, n = 0;

    if (!adapter->Started)
        return STATUS_DEVICE_NOT_READY;
    StorpScanBus(adapter);
    for (ULONG i = 0; i < adapter->UnitTableSize; i++)
        if (adapter->UnitTable[i] && adapter->UnitTable[i]->Present &&
            adapter->UnitTable[i]->DeviceObject)
            count++;
    rel = ExAllocatePoolWithTag(NonPagedPool, sizeof(*rel) + count * sizeof(PDEVICE_OBJECT), 0);
    if (!rel)
        return STATUS_INSUFFICIENT_RESOURCES;
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (unit && unit->Present && unit->DeviceObject) {
            ObReferenceObject(unit->DeviceObject);
            rel->Objects[n++] = unit->DeviceObject;
            unit->Reported = TRUE;
        }
    }
    rel->Count = n;
    Irp->IoStatus.Information = (ULONG_PTR)rel;
    return STATUS_SUCCESS;
}

static void StorpStopAdapter(PSTORP_ADAPTER adapter)
{
    PHW_INITIALIZATION_DATA init = &adapter->Driver->Init;
    if (!adapter->HwDeviceExtension)
        return;
    if (adapter->Started) {
        StorpStopTick(adapter);
        StorpStopRecovery(adapter);
        IoDeleteSymbolicLink(adapter->Executive, adapter->LinkName);
        if (init->HwAdapterControl) {
            SCSI_SUPPORTED_CONTROL_TYPE_LIST list = {.MaxControlType = ScsiAdapterControlMax};
            init->HwAdapterControl(adapter->HwDeviceExtension, ScsiQuerySupportedControlTypes,
                                   &list);
            if (list.SupportedTypeList[ScsiStopAdapter]) {
                StorpEnterLock();
                KeAcquireSpinLock(&adapter->InterruptLock, NULL);
                init->HwAdapterControl(adapter->HwDeviceExtension, ScsiStopAdapter, NULL);
                KeReleaseSpinLock(&adapter->InterruptLock, 0);
                StorpLeaveLock();
            }
        }
        /* a stopped adapter completes nothing more: Storport ends what it never completed */
        StorpEndAbandonedResets(adapter);
    }
    adapter->Started = FALSE;
    if (init->HwFreeAdapterResources)
        init->HwFreeAdapterResources(adapter->HwDeviceExtension);
    for (ULONG i = 0; i < adapter->UnitTableSize; i++) {
        PSTORP_UNIT unit = adapter->UnitTable[i];
        if (unit) {
            adapter->UnitTable[i] = NULL;
            StorpDeleteUnit(unit);
        }
    }
    free(adapter->UnitTable);
    adapter->UnitTable = NULL;
    ExDeleteNPagedLookasideList(&adapter->RequestLookaside);
    ExDeleteNPagedLookasideList(&adapter->PassThroughLookaside);
    free((STORP_HW_HEADER *)adapter->HwDeviceExtension - 1);
    adapter->HwDeviceExtension = NULL;
    free(adapter->UncachedExtension);
    adapter->UncachedExtension = NULL;
}

static NTSTATUS StorpAdapterDispatchPnp(PSTORP_ADAPTER adapter, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    NTSTATUS status;

    switch (sp->MinorFunction) {
    case IRP_MN_START_DEVICE:
        status = IoForwardIrpSynchronously(adapter->LowerDevice, Irp);
        if (NT_SUCCESS(status))
            status = StorpStartAdapter(adapter);
        Irp->IoStatus.Status = status;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return status;
    case IRP_MN_QUERY_DEVICE_RELATIONS:
        if (sp->Parameters.QueryDeviceRelations.Type != BusRelations)
            break;
        status = StorpQueryBusRelations(adapter, Irp);
        Irp->IoStatus.Status = status;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return status;
    case IRP_MN_QUERY_DEVICE_TEXT:
        if (sp->Parameters.QueryDeviceText.DeviceTextType == DeviceTextDescription) {
            static const char desc[] = "Storport virtual adapter";
            PVOID text = ExAllocatePoolWithTag(NonPagedPool, sizeof(desc), 0);
            if (text && !adapter->Driver->Virtual)
                memcpy(text, "Storport adapter", sizeof("Storport adapter"));
            else if (text)
                memcpy(text, desc, sizeof(desc));
            Irp->IoStatus.Information = (ULONG_PTR)text;
            Irp->IoStatus.Status = text ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
            IoCompleteRequest(Irp, IO_NO_INCREMENT);
            return Irp->IoStatus.Status;
        }
        break;
    case IRP_MN_REMOVE_DEVICE: {
        PDEVICE_OBJECT lower = adapter->LowerDevice;
        adapter->Removed = TRUE;
        StorpStopAdapter(adapter);
        IoSkipCurrentIrpStackLocation(Irp);
        status = IoCallDriver(lower, Irp);
        IoDetachDevice(lower);
        IoDeleteDevice(adapter->DeviceObject);
        return status;
    }
    case IRP_MN_QUERY_REMOVE_DEVICE:
    case IRP_MN_CANCEL_REMOVE_DEVICE:
    case IRP_MN_SURPRISE_REMOVAL:
        Irp->IoStatus.Status = STATUS_SUCCESS;
        break;
    default:
        break;
    }
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(adapter->LowerDevice, Irp);
}

NTSTATUS StorpDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    STORP_COMMON *common = DeviceObject->DeviceExtension;
    if (common->Signature == STORP_ADAPTER_SIGNATURE)
        return StorpAdapterDispatchPnp(DeviceObject->DeviceExtension, Irp);
    return StorpUnitDispatchPnp(((PSTORP_PDO_EXTENSION)DeviceObject->DeviceExtension)->Unit, Irp);
}

static void StorpUnload(PDRIVER_OBJECT DriverObject)
{
    /* the driver object extension is freed by the I/O manager */
}

ULONG StorPortInitialize(PVOID Argument1, PVOID Argument2, PVOID HwInitializationData,
                         PVOID HwContext)
{
    PDRIVER_OBJECT drv = Argument1;
    PCSTR registry_path = Argument2;
    PHW_INITIALIZATION_DATA init = HwInitializationData;
    PSTORP_DRIVER driver;
    PCSTR service;

    if (!drv || !init)
        return (ULONG)STATUS_INVALID_PARAMETER;
    if (init->HwInitializationDataSize != sizeof(HW_INITIALIZATION_DATA) &&
        init->HwInitializationDataSize != sizeof(VIRTUAL_HW_INITIALIZATION_DATA))
        return (ULONG)STATUS_REVISION_MISMATCH;
    if (!init->HwFindAdapter || !init->HwStartIo)
        return (ULONG)STATUS_INVALID_PARAMETER;
    _Static_assert(offsetof(HW_INITIALIZATION_DATA, HwFindAdapter) ==
                       offsetof(VIRTUAL_HW_INITIALIZATION_DATA, HwFindAdapter),
                   "both initialization structures keep HwFindAdapter in one place");
    /* A virtual miniport says so with the virtual structure and no interrupt routine. */
    driver = IoGetDriverObjectExtension(drv);
    if (!driver)
        driver = IoAllocateDriverObjectExtension(drv, sizeof(STORP_DRIVER));
    if (!driver)
        return (ULONG)STATUS_INSUFFICIENT_RESOURCES;
    memcpy(&driver->Init, init, sizeof(HW_INITIALIZATION_DATA));
    driver->Virtual = init->HwInterrupt == NULL;
    if (driver->Virtual) {
        driver->VirtualFindAdapter =
            ((PVIRTUAL_HW_INITIALIZATION_DATA)HwInitializationData)->HwFindAdapter;
        driver->Init.HwFindAdapter = NULL;
    }
    driver->HwContext = HwContext;
    service = strrchr(registry_path ? registry_path : drv->DriverName, '\\');
    snprintf(driver->ServiceName, sizeof(driver->ServiceName), "%s",
             service ? service + 1 : drv->DriverName);

    drv->DriverExtension->AddDevice = StorpAddDevice;
    drv->DriverUnload = StorpUnload;
    drv->MajorFunction[IRP_MJ_CREATE] = StorpDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_CLOSE] = StorpDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_CLEANUP] = StorpDispatchCreateClose;
    drv->MajorFunction[IRP_MJ_PNP] = StorpDispatchPnp;
    drv->MajorFunction[IRP_MJ_SCSI] = StorpDispatchScsi;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = StorpDispatchDeviceControl;
    drv->MajorFunction[IRP_MJ_FLUSH_BUFFERS] = StorpDispatchSucceed;
    drv->MajorFunction[IRP_MJ_SHUTDOWN] = StorpDispatchSucceed;
    drv->MajorFunction[IRP_MJ_POWER] = StorpDispatchPower;
    return STATUS_SUCCESS;
}
