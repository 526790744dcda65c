/*
 * Transfer packets (classpnp's xferpkt.c role): a read or write IRP is split into pieces of at
 * most ClassMaximumTransferBytes (Storage Class Driver's SplitTransferRequest Routine), each
 * carried by a preallocated packet with its own IRP, SRB and sense buffer, so the steady-state
 * path allocates nothing. Up to CLASSP_MAX_PACKETS_PER_IRP packets of one IRP are in flight.
 * A failed packet is retried as ClassInterpretSenseInfo decides (Storage Class Driver's
 * RetryRequest Routine), at once or after a delay on a timer; the first permanent failure ends
 * the IRP. Packets may complete inline, inside IoCallDriver: one thread at a time issues
 * packets for an IRP (the Submitting flag), so completions never recurse into submission.
 */
#include <stdlib.h>

#include "drivers/class/classpnp/classp.h"

static NTSTATUS ClasspPacketComplete(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context);

static PTRANSFER_PACKET ClasspNewPacket(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PTRANSFER_PACKET pkt = calloc(1, sizeof(*pkt));
    if (!pkt)
        return NULL;
    pkt->Irp = IoAllocateIrpEx(IoGetExecutive(Fdo), fdx->LowerDeviceObject->StackSize, FALSE);
    if (!pkt->Irp) {
        free(pkt);
        return NULL;
    }
    pkt->Fdo = Fdo;
    KeInitializeTimerEx(IoGetExecutive(Fdo), &pkt->RetryTimer);
    return pkt;
}

NTSTATUS ClasspInitializePackets(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCLASS_PRIVATE_FDO_DATA pd = fdx->PrivateFdoData;
    KeInitializeSpinLock(&pd->PacketLock);
    InitializeListHead(&pd->AllPackets);
    pd->FreePackets.Next = NULL;
    for (ULONG i = 0; i < CLASSP_MIN_PACKETS; i++) {
        PTRANSFER_PACKET pkt = ClasspNewPacket(Fdo);
        if (!pkt)
            return STATUS_INSUFFICIENT_RESOURCES;
        InsertTailList(&pd->AllPackets, &pkt->AllPktsLink);
        pkt->FreeLink.Next = pd->FreePackets.Next;
        pd->FreePackets.Next = &pkt->FreeLink;
        pd->NumTotalPackets++;
        pd->NumFreePackets++;
    }
    return STATUS_SUCCESS;
}

void ClasspFreePackets(PDEVICE_OBJECT Fdo)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCLASS_PRIVATE_FDO_DATA pd = fdx->PrivateFdoData;
    if (!pd || !pd->AllPackets.Flink)
        return;
    while (!IsListEmpty(&pd->AllPackets)) {
        PTRANSFER_PACKET pkt =
            CONTAINING_RECORD(RemoveHeadList(&pd->AllPackets), TRANSFER_PACKET, AllPktsLink);
        KeCancelTimer(&pkt->RetryTimer);
        KeDeleteEvent(&pkt->RetryTimer.Signal);
        IoFreeIrp(pkt->Irp);
        free(pkt);
    }
    KeDeleteSpinLock(&pd->PacketLock);
}

/* A free packet, or a new one when all are busy (the pool grows to the peak and stays). */
static PTRANSFER_PACKET ClasspDequeueFreePacket(PDEVICE_OBJECT Fdo)
{
    PCLASS_PRIVATE_FDO_DATA pd =
        ((PFUNCTIONAL_DEVICE_EXTENSION)Fdo->DeviceExtension)->PrivateFdoData;
    PTRANSFER_PACKET pkt = NULL;
    KeAcquireSpinLock(&pd->PacketLock, NULL);
    if (pd->FreePackets.Next) {
        pkt = CONTAINING_RECORD(pd->FreePackets.Next, TRANSFER_PACKET, FreeLink);
        pd->FreePackets.Next = pkt->FreeLink.Next;
        pd->NumFreePackets--;
    }
    KeReleaseSpinLock(&pd->PacketLock, 0);
    if (pkt)
        return pkt;
    pkt = ClasspNewPacket(Fdo);
    if (pkt) {
        KeAcquireSpinLock(&pd->PacketLock, NULL);
        InsertTailList(&pd->AllPackets, &pkt->AllPktsLink);
        pd->NumTotalPackets++;
        KeReleaseSpinLock(&pd->PacketLock, 0);
    }
    return pkt;
}

static void ClasspEnqueueFreePacket(PTRANSFER_PACKET pkt)
{
    PCLASS_PRIVATE_FDO_DATA pd =
        ((PFUNCTIONAL_DEVICE_EXTENSION)pkt->Fdo->DeviceExtension)->PrivateFdoData;
    KeAcquireSpinLock(&pd->PacketLock, NULL);
    pkt->FreeLink.Next = pd->FreePackets.Next;
    pd->FreePackets.Next = &pkt->FreeLink;
    pd->NumFreePackets++;
    KeReleaseSpinLock(&pd->PacketLock, 0);
}

/* Fills the packet's SRB and CDB for its piece (Storage Class Driver's BuildRequest Routine):
 * READ/WRITE (10) when the LBA and block count fit, (16) otherwise; FUA from SL_WRITE_THROUGH. */
static void ClasspSetupPacket(PTRANSFER_PACKET pkt)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = pkt->Fdo->DeviceExtension;
    PSCSI_REQUEST_BLOCK srb = &pkt->Srb;
    ULONGLONG lba = pkt->TargetLocation >> fdx->SectorShift;
    ULONG blocks = pkt->BufLen >> fdx->SectorShift;
    BOOLEAN write = pkt->MajorFunction == IRP_MJ_WRITE;

    memset(srb, 0, sizeof(*srb));
    srb->Length = sizeof(*srb);
    srb->Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb->QueueAction = SRB_SIMPLE_TAG_REQUEST;
    srb->SrbFlags = fdx->SrbFlags | SRB_FLAGS_QUEUE_ACTION_ENABLE |
                    (write ? SRB_FLAGS_DATA_OUT : SRB_FLAGS_DATA_IN);
    srb->TimeOutValue = fdx->TimeOutValue;
    srb->DataBuffer = pkt->BufPtr;
    srb->DataTransferLength = pkt->BufLen;
    srb->SenseInfoBuffer = pkt->SenseBuffer;
    srb->SenseInfoBufferLength = sizeof(pkt->SenseBuffer);
    if (lba <= 0xFFFFFFFFull && lba + blocks <= 0x100000000ull && blocks <= 0xFFFF) {
        srb->CdbLength = 10;
        srb->Cdb[0] = write ? SCSIOP_WRITE : SCSIOP_READ;
        srb->Cdb[1] = pkt->Fua ? 0x08 : 0;
        scsi_put_be32(&srb->Cdb[2], (uint32_t)lba);
        scsi_put_be16(&srb->Cdb[7], (uint16_t)blocks);
    } else {
        srb->CdbLength = 16;
        srb->Cdb[0] = write ? SCSIOP_WRITE16 : SCSIOP_READ16;
        srb->Cdb[1] = pkt->Fua ? 0x08 : 0;
        scsi_put_be64(&srb->Cdb[2], lba);
        scsi_put_be32(&srb->Cdb[10], blocks);
    }
}

static void ClasspSubmitPacket(PTRANSFER_PACKET pkt)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = pkt->Fdo->DeviceExtension;
    PIO_STACK_LOCATION sp;
    IoReuseIrp(pkt->Irp, STATUS_NOT_SUPPORTED);
    sp = IoGetNextIrpStackLocation(pkt->Irp);
    sp->MajorFunction = IRP_MJ_SCSI;
    sp->Parameters.Scsi.Srb = &pkt->Srb;
    IoSetCompletionRoutine(pkt->Irp, ClasspPacketComplete, pkt, TRUE, TRUE, TRUE);
    IoCallDriver(fdx->LowerDeviceObject, pkt->Irp);
}

static void ClasspRetryDpc(PKDPC Dpc, PVOID Context, PVOID A1, PVOID A2)
{
    PTRANSFER_PACKET pkt = Context;
    ClasspSetupPacket(pkt);
    ClasspSubmitPacket(pkt);
}

/* Drops a reference on the original IRP; the last one completes it. Whoever holds a reference
 * may touch the IRP, so no thread reads it after another completed it. */
static void ClasspDereferenceOriginal(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PCLASSP_RW_CONTEXT ctx = ClasspRwContext(Irp);
    if (atomic_fetch_sub(&ctx->References, 1) != 1)
        return;
    Irp->IoStatus.Status = atomic_load(&ctx->Status);
    Irp->IoStatus.Information =
        NT_SUCCESS(Irp->IoStatus.Status) ? atomic_load(&ctx->Transferred) : 0;
    IoCompleteRequest(Irp, IO_DISK_INCREMENT);
    ClasspReleaseRemoveLock(Fdo->DeviceExtension);
}

/* Issues packets for the IRP while pieces remain and the per-IRP limit allows. The caller
 * holds a reference on the IRP. */
static void ClasspIssuePackets(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo->DeviceExtension;
    PCLASSP_RW_CONTEXT ctx = ClasspRwContext(Irp);
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG total = sp->Parameters.Read.Length;
    ULONG max = fdx->PrivateFdoData->MaxTransferBytes;
    PUCHAR base = total ? MmGetSystemAddressForMdlSafe(Irp->MdlAddress, NormalPagePriority) : NULL;

    for (;;) {
        if (atomic_exchange(&ctx->Submitting, 1))
            return; /* another thread is issuing; it looks again after letting go */
        for (;;) {
            ULONG next = atomic_load(&ctx->NextOffset);
            if (next >= total)
                break;
            if (!NT_SUCCESS(atomic_load(&ctx->Status))) {
                atomic_store(&ctx->NextOffset, total); /* stop: the IRP has failed */
                break;
            }
            if (atomic_load(&ctx->InFlight) >= CLASSP_MAX_PACKETS_PER_IRP)
                break;
            PTRANSFER_PACKET pkt = ClasspDequeueFreePacket(Fdo);
            if (!pkt) {
                int ok = STATUS_SUCCESS;
                atomic_compare_exchange_strong(&ctx->Status, &ok, STATUS_INSUFFICIENT_RESOURCES);
                continue;
            }
            ULONG len = total - next < max ? total - next : max;
            pkt->OriginalIrp = Irp;
            pkt->MajorFunction = sp->MajorFunction;
            pkt->Fua = (sp->Flags & SL_WRITE_THROUGH) != 0;
            pkt->BufPtr = base + next;
            pkt->BufLen = len;
            pkt->TargetLocation = (ULONGLONG)sp->Parameters.Read.ByteOffset.QuadPart + next;
            pkt->NumRetries = MAXIMUM_RETRIES;
            ClasspSetupPacket(pkt);
            atomic_fetch_add(&ctx->References, 1);
            atomic_fetch_add(&ctx->InFlight, 1);
            atomic_store(&ctx->NextOffset, next + len);
            ClasspSubmitPacket(pkt);
        }
        atomic_store(&ctx->Submitting, 0);
        /* A completion that came while we held the flag may have made room or failed the IRP. */
        ULONG next = atomic_load(&ctx->NextOffset);
        if (next < total && (!NT_SUCCESS(atomic_load(&ctx->Status)) ||
                             atomic_load(&ctx->InFlight) < CLASSP_MAX_PACKETS_PER_IRP))
            continue;
        break;
    }
}

static NTSTATUS ClasspPacketComplete(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    PTRANSFER_PACKET pkt = Context;
    PDEVICE_OBJECT fdo = pkt->Fdo;
    PIRP original = pkt->OriginalIrp;
    PCLASSP_RW_CONTEXT ctx = ClasspRwContext(original);
    PSCSI_REQUEST_BLOCK srb = &pkt->Srb;
    NTSTATUS status = STATUS_SUCCESS;

    if (SRB_STATUS(srb->SrbStatus) == SRB_STATUS_SUCCESS) {
        atomic_fetch_add(&ctx->Transferred, srb->DataTransferLength);
    } else {
        ULONG interval = 0;
        BOOLEAN retry = ClassInterpretSenseInfo(
            fdo, srb, pkt->MajorFunction, 0, MAXIMUM_RETRIES - pkt->NumRetries, &status, &interval);
        if (SRB_STATUS(srb->SrbStatus) == SRB_STATUS_DATA_OVERRUN)
            retry = TRUE; /* a short transfer on a block device: try again */
        if (NT_SUCCESS(status)) {
            atomic_fetch_add(&ctx->Transferred, pkt->BufLen); /* recovered error */
        } else if (retry && pkt->NumRetries > 0) {
            pkt->NumRetries--;
            if (interval) {
                LARGE_INTEGER due = {.QuadPart = -(LONGLONG)interval * 1000000LL};
                KeInitializeDpcEx(IoGetExecutive(fdo), &pkt->RetryDpc, ClasspRetryDpc, pkt);
                KeSetTimer(&pkt->RetryTimer, due, &pkt->RetryDpc);
            } else {
                ClasspSetupPacket(pkt);
                ClasspSubmitPacket(pkt);
            }
            return STATUS_MORE_PROCESSING_REQUIRED;
        } else {
            int ok = STATUS_SUCCESS;
            atomic_compare_exchange_strong(&ctx->Status, &ok, status);
        }
    }
    ClasspEnqueueFreePacket(pkt);
    atomic_fetch_sub(&ctx->InFlight, 1);
    ClasspIssuePackets(fdo, original); /* this packet's reference is still held */
    ClasspDereferenceOriginal(fdo, original);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* Starts a validated read or write. The remove lock is held; released when the IRP completes. */
NTSTATUS ClasspServiceReadWrite(PDEVICE_OBJECT Fdo, PIRP Irp)
{
    PCLASSP_RW_CONTEXT ctx = ClasspRwContext(Irp);
    memset(ctx, 0, sizeof(*ctx));
    atomic_store(&ctx->Status, STATUS_SUCCESS);
    atomic_store(&ctx->References, 1);
    IoMarkIrpPending(Irp);
    ClasspIssuePackets(Fdo, Irp);
    ClasspDereferenceOriginal(Fdo, Irp);
    return STATUS_PENDING;
}
