/*
 * ClassInterpretSenseInfo (Storage Class Driver's InterpretRequestSense Routine): from an SRB's
 * status, SCSI status and autosense data, the NTSTATUS for the request and whether (and after
 * how long) to retry it. Fixed (70h/71h) and descriptor (72h/73h) sense formats are read.
 * The class driver's ClassError routine may then adjust both.
 */
#include "drivers/class/classpnp/classp.h"

/* Sense key, ASC and ASCQ from either sense format; FALSE when there is no usable sense. */
static BOOLEAN ClasspParseSense(const UCHAR *sense, ULONG len, UCHAR *key, UCHAR *asc, UCHAR *ascq)
{
    if (len < 1)
        return FALSE;
    switch (sense[0] & 0x7F) {
    case 0x70:
    case 0x71:
        if (len < 14)
            return FALSE;
        *key = sense[2] & 0x0F;
        *asc = sense[12];
        *ascq = sense[13];
        return TRUE;
    case 0x72:
    case 0x73:
        if (len < 4)
            return FALSE;
        *key = sense[1] & 0x0F;
        *asc = sense[2];
        *ascq = sense[3];
        return TRUE;
    default:
        return FALSE;
    }
}

/* Retry intervals are in 100 ms units here (Windows uses seconds; our devices settle faster). */
BOOLEAN ClassInterpretSenseInfo(PDEVICE_OBJECT Fdo, PSCSI_REQUEST_BLOCK Srb,
                                UCHAR MajorFunctionCode, ULONG IoDeviceCode, ULONG RetryCount,
                                NTSTATUS *Status, ULONG *RetryInterval)
{
    PFUNCTIONAL_DEVICE_EXTENSION fdx = Fdo ? Fdo->DeviceExtension : NULL;
    BOOLEAN retry = TRUE;
    ULONG interval = 0;
    NTSTATUS status = STATUS_IO_DEVICE_ERROR;
    UCHAR key = 0, asc = 0, ascq = 0;

    if (Srb->SrbStatus & SRB_STATUS_QUEUE_FROZEN)
        ClasspReleaseQueueAsync(Fdo);

    switch (SRB_STATUS(Srb->SrbStatus)) {
    case SRB_STATUS_SUCCESS:
        status = STATUS_SUCCESS;
        retry = FALSE;
        break;
    case SRB_STATUS_ERROR:
        if (Srb->ScsiStatus == SCSISTAT_BUSY) {
            /* as Windows classpnp: an error (not the BUSY warning) once retries run out */
            status = STATUS_DEVICE_NOT_READY;
            interval = 1;
            break;
        }
        if (Srb->ScsiStatus == SCSISTAT_QUEUE_FULL) {
            status = STATUS_DEVICE_BUSY;
            interval = 1;
            break;
        }
        if (Srb->ScsiStatus == SCSISTAT_RESERVATION_CONFLICT) {
            status = STATUS_DEVICE_BUSY;
            retry = FALSE;
            break;
        }
        if (Srb->ScsiStatus != SCSISTAT_CHECK_CONDITION ||
            !(Srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID) ||
            !ClasspParseSense(Srb->SenseInfoBuffer, Srb->SenseInfoBufferLength, &key, &asc, &ascq))
            break; /* an error without sense: retry as an I/O error */
        switch (key) {
        case SCSI_SENSE_NO_SENSE:
            status = STATUS_IO_DEVICE_ERROR;
            break;
        case SCSI_SENSE_RECOVERED_ERROR:
            /* the device recovered: the data is good */
            status = STATUS_SUCCESS;
            retry = FALSE;
            break;
        case SCSI_SENSE_NOT_READY:
            status = STATUS_DEVICE_NOT_READY;
            if (asc == SCSI_ADSENSE_NO_MEDIA_IN_DEVICE) {
                status = STATUS_NO_MEDIA_IN_DEVICE;
                retry = FALSE;
            } else if (asc == SCSI_ADSENSE_LUN_NOT_READY) {
                switch (ascq) {
                case 0x01: /* becoming ready */
                case 0x07: /* operation in progress */
                    interval = 3;
                    break;
                case 0x00: /* cause not reportable */
                case 0x04: /* format in progress: it will not be ready soon */
                    retry = FALSE;
                    break;
                case 0x02: /* initializing command required: START UNIT, then retry */
                    interval = 1;
                    if (Fdo)
                        ClassSendStartUnit(Fdo);
                    break;
                case 0x03: /* manual intervention required: as Windows, no usable medium */
                    status = STATUS_NO_MEDIA_IN_DEVICE;
                    retry = FALSE;
                    break;
                default:
                    interval = 3;
                    break;
                }
            }
            break;
        case SCSI_SENSE_MEDIUM_ERROR:
            /* the medium cannot give this data back: retrying reads it the same way */
            status = STATUS_DEVICE_DATA_ERROR;
            retry = FALSE;
            break;
        case SCSI_SENSE_HARDWARE_ERROR:
            status = STATUS_IO_DEVICE_ERROR;
            break;
        case SCSI_SENSE_ILLEGAL_REQUEST:
            retry = FALSE;
            status = asc == SCSI_ADSENSE_ILLEGAL_BLOCK ? STATUS_NONEXISTENT_SECTOR
                     : asc == SCSI_ADSENSE_INVALID_LUN ? STATUS_NO_SUCH_DEVICE
                                                       : STATUS_INVALID_DEVICE_REQUEST;
            break;
        case SCSI_SENSE_UNIT_ATTENTION:
            /* reset, mode parameters changed, medium changed: the request did not run; retry */
            status = STATUS_IO_DEVICE_ERROR;
            if (asc == 0x28 && fdx && fdx->DeviceDescriptor &&
                fdx->DeviceDescriptor->RemovableMedia) {
                status = STATUS_VERIFY_REQUIRED;
                retry = FALSE;
            }
            break;
        case SCSI_SENSE_DATA_PROTECT:
            status = STATUS_MEDIA_WRITE_PROTECTED;
            retry = FALSE;
            break;
        case SCSI_SENSE_BLANK_CHECK:
            status = STATUS_NO_DATA_DETECTED;
            retry = FALSE;
            break;
        case SCSI_SENSE_ABORTED_COMMAND:
            status = STATUS_IO_DEVICE_ERROR;
            interval = 1;
            break;
        case SCSI_SENSE_MISCOMPARE:
            status = STATUS_DEVICE_DATA_ERROR;
            retry = FALSE;
            break;
        default:
            status = STATUS_IO_DEVICE_ERROR;
            break;
        }
        break;
    case SRB_STATUS_BUSY:
        status = STATUS_DEVICE_BUSY;
        interval = 1;
        break;
    case SRB_STATUS_INVALID_LUN:
    case SRB_STATUS_INVALID_TARGET_ID:
    case SRB_STATUS_NO_DEVICE:
    case SRB_STATUS_NO_HBA:
    case SRB_STATUS_INVALID_PATH_ID:
        status = STATUS_NO_SUCH_DEVICE;
        retry = FALSE;
        break;
    case SRB_STATUS_SELECTION_TIMEOUT:
        status = STATUS_DEVICE_NOT_CONNECTED;
        retry = FALSE;
        break;
    case SRB_STATUS_COMMAND_TIMEOUT:
    case SRB_STATUS_TIMEOUT:
        status = STATUS_IO_TIMEOUT;
        break;
    case SRB_STATUS_BUS_RESET:
    case SRB_STATUS_PARITY_ERROR:
    case SRB_STATUS_UNEXPECTED_BUS_FREE:
        status = STATUS_IO_DEVICE_ERROR;
        break;
    case SRB_STATUS_PHASE_SEQUENCE_FAILURE:
        /* a bus protocol failure that repeats is not transient */
        status = STATUS_IO_DEVICE_ERROR;
        retry = RetryCount <= 1;
        break;
    case SRB_STATUS_ABORTED:
        /* aborted by the port, typically after a timeout: retry after a pause */
        status = STATUS_IO_TIMEOUT;
        interval = 1;
        break;
    case SRB_STATUS_REQUEST_FLUSHED:
        status = STATUS_IO_DEVICE_ERROR;
        break;
    case SRB_STATUS_INTERNAL_ERROR:
        /* the port put the real status in InternalStatus */
        status = (NTSTATUS)Srb->InternalStatus;
        if (NT_SUCCESS(status))
            status = STATUS_IO_DEVICE_ERROR;
        retry = FALSE;
        break;
    case SRB_STATUS_DATA_OVERRUN:
        status = STATUS_DATA_OVERRUN;
        retry = FALSE;
        break;
    case SRB_STATUS_INVALID_REQUEST:
    case SRB_STATUS_BAD_FUNCTION:
    case SRB_STATUS_BAD_SRB_BLOCK_LENGTH:
        status = STATUS_INVALID_DEVICE_REQUEST;
        retry = FALSE;
        break;
    default:
        status = STATUS_IO_DEVICE_ERROR;
        break;
    }
    if (fdx && fdx->DevInfo && fdx->DevInfo->ClassError)
        fdx->DevInfo->ClassError(Fdo, Srb, &status, &retry);
    *Status = status;
    if (RetryInterval)
        *RetryInterval = interval;
    return retry;
}
