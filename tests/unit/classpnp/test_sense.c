/*
 * Unit tests of the class library's pure decision logic: ClassInterpretSenseInfo's table (for each
 * SRB status, SCSI status and sense key/ASC/ASCQ, in fixed 70h/71h and descriptor 72h/73h sense,
 * the NTSTATUS, whether to retry and after what interval) and ClassFindModePage over 6- and
 * 10-byte mode parameter headers with block descriptors, including lengths that run past the
 * buffer (NULL, never a read beyond it; buffers are allocated to their exact size so ASan sees
 * any over-read). Fdo is NULL where the routine allows it; a minimal fake FDO (extension with a
 * device descriptor and a ClassError hook, no lower device) covers what needs one. Where the
 * table in sense.c departs from Windows classpnp, the expectation here is Windows's, marked
 * "Windows:" (intervals are sense.c's 100 ms units).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <storstack/storage/classpnp.h>

#ifndef STATUS_DEVICE_NOT_CONNECTED
#define STATUS_DEVICE_NOT_CONNECTED ((NTSTATUS)0xC000009D)
#endif

enum sense_format { NO_SENSE_DATA, FIXED, DESCRIPTOR, FIXED_DEFERRED, DESCRIPTOR_DEFERRED };

struct outcome {
    NTSTATUS status;
    BOOLEAN retry;
    ULONG interval;
};

static struct outcome interpret_ex(PDEVICE_OBJECT fdo, UCHAR srb_status, UCHAR scsi_status,
                                   enum sense_format format, UCHAR key, UCHAR asc, UCHAR ascq,
                                   ULONG retry_count, ULONG internal_status)
{
    SCSI_REQUEST_BLOCK srb;
    UCHAR sense[32];
    struct outcome o = {.status = 0x12345678, .interval = 0xFFFF};
    memset(&srb, 0, sizeof(srb));
    memset(sense, 0, sizeof(sense));
    srb.Length = sizeof(srb);
    srb.Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb.SrbStatus = srb_status;
    srb.ScsiStatus = scsi_status;
    srb.InternalStatus = internal_status;
    srb.CdbLength = 10;
    srb.Cdb[0] = SCSIOP_READ;
    switch (format) {
    case NO_SENSE_DATA:
        break;
    case FIXED:
    case FIXED_DEFERRED:
        sense[0] = format == FIXED ? 0x70 : 0x71;
        sense[2] = key;
        sense[7] = 10;
        sense[12] = asc;
        sense[13] = ascq;
        break;
    case DESCRIPTOR:
    case DESCRIPTOR_DEFERRED:
        sense[0] = format == DESCRIPTOR ? 0x72 : 0x73;
        sense[1] = key;
        sense[2] = asc;
        sense[3] = ascq;
        break;
    }
    if (format != NO_SENSE_DATA) {
        srb.SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
        srb.SenseInfoBuffer = sense;
        srb.SenseInfoBufferLength = 18;
    }
    o.retry =
        ClassInterpretSenseInfo(fdo, &srb, IRP_MJ_SCSI, 0, retry_count, &o.status, &o.interval);
    return o;
}

static struct outcome interpret(UCHAR srb_status, UCHAR scsi_status, enum sense_format format,
                                UCHAR key, UCHAR asc, UCHAR ascq)
{
    return interpret_ex(NULL, srb_status, scsi_status, format, key, asc, ascq, 0, 0);
}

static void check(const char *what, struct outcome got, NTSTATUS status, BOOLEAN retry,
                  ULONG interval)
{
    if (got.status != status || got.retry != retry || (retry && got.interval != interval))
        fail_msg("%s: got status 0x%08X retry %d interval %u; expected 0x%08X retry %d interval %u",
                 what, (unsigned)got.status, got.retry, (unsigned)got.interval, (unsigned)status,
                 retry, (unsigned)interval);
}

/* ---- Sense keys ---------------------------------------------------------------------------- */

struct sense_case {
    const char *name;
    UCHAR key, asc, ascq;
    NTSTATUS status;
    BOOLEAN retry;
    ULONG interval;
};

static const struct sense_case sense_table[] = {
    {"NO SENSE", SCSI_SENSE_NO_SENSE, 0x00, 0x00, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"RECOVERED ERROR", SCSI_SENSE_RECOVERED_ERROR, 0x17, 0x01, STATUS_SUCCESS, FALSE, 0},
    {"NOT READY, becoming ready", SCSI_SENSE_NOT_READY, 0x04, 0x01, STATUS_DEVICE_NOT_READY, TRUE,
     3},
    {"NOT READY, initializing command required", SCSI_SENSE_NOT_READY, 0x04, 0x02,
     STATUS_DEVICE_NOT_READY, TRUE, 1},
    {"NOT READY, operation in progress", SCSI_SENSE_NOT_READY, 0x04, 0x07, STATUS_DEVICE_NOT_READY,
     TRUE, 3},
    {"NOT READY, LUN not ready other ASCQ", SCSI_SENSE_NOT_READY, 0x04, 0x09,
     STATUS_DEVICE_NOT_READY, TRUE, 3},
    {"NOT READY, medium not present", SCSI_SENSE_NOT_READY, 0x3A, 0x00, STATUS_NO_MEDIA_IN_DEVICE,
     FALSE, 0},
    {"NOT READY, medium not present tray open", SCSI_SENSE_NOT_READY, 0x3A, 0x02,
     STATUS_NO_MEDIA_IN_DEVICE, FALSE, 0},
    {"NOT READY, other ASC", SCSI_SENSE_NOT_READY, 0x30, 0x00, STATUS_DEVICE_NOT_READY, TRUE, 0},
    {"HARDWARE ERROR", SCSI_SENSE_HARDWARE_ERROR, 0x44, 0x00, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"ILLEGAL REQUEST, invalid opcode", SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0x00,
     STATUS_INVALID_DEVICE_REQUEST, FALSE, 0},
    {"ILLEGAL REQUEST, LBA out of range", SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00,
     STATUS_NONEXISTENT_SECTOR, FALSE, 0},
    {"ILLEGAL REQUEST, invalid field in CDB", SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00,
     STATUS_INVALID_DEVICE_REQUEST, FALSE, 0},
    {"ILLEGAL REQUEST, LUN not supported", SCSI_SENSE_ILLEGAL_REQUEST, 0x25, 0x00,
     STATUS_NO_SUCH_DEVICE, FALSE, 0},
    {"UNIT ATTENTION, reset", SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00, STATUS_IO_DEVICE_ERROR, TRUE,
     0},
    {"UNIT ATTENTION, medium changed (no FDO)", SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00,
     STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"UNIT ATTENTION, parameters changed", SCSI_SENSE_UNIT_ATTENTION, 0x2A, 0x01,
     STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"DATA PROTECT", SCSI_SENSE_DATA_PROTECT, 0x27, 0x00, STATUS_MEDIA_WRITE_PROTECTED, FALSE, 0},
    {"BLANK CHECK", SCSI_SENSE_BLANK_CHECK, 0x00, 0x05, STATUS_NO_DATA_DETECTED, FALSE, 0},
    {"ABORTED COMMAND", SCSI_SENSE_ABORTED_COMMAND, 0x47, 0x00, STATUS_IO_DEVICE_ERROR, TRUE, 1},
    {"MISCOMPARE", SCSI_SENSE_MISCOMPARE, 0x1D, 0x00, STATUS_DEVICE_DATA_ERROR, FALSE, 0},
    {"VOLUME OVERFLOW", SCSI_SENSE_VOL_OVERFLOW, 0x00, 0x02, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"vendor specific key", SCSI_SENSE_UNIQUE, 0x80, 0x00, STATUS_IO_DEVICE_ERROR, TRUE, 0},
};

static void run_sense_table(enum sense_format format)
{
    for (size_t i = 0; i < sizeof(sense_table) / sizeof(sense_table[0]); i++) {
        const struct sense_case *c = &sense_table[i];
        char what[128];
        snprintf(what, sizeof(what), "%s (format %d, %02X/%02X/%02X)", c->name, format, c->key,
                 c->asc, c->ascq);
        check(
            what,
            interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, format, c->key, c->asc, c->ascq),
            c->status, c->retry, c->interval);
    }
}

static void test_sense_keys_in_fixed_format(void **state)
{
    run_sense_table(FIXED);
}

static void test_sense_keys_in_descriptor_format(void **state)
{
    run_sense_table(DESCRIPTOR);
}

static void test_sense_keys_in_deferred_formats(void **state)
{
    run_sense_table(FIXED_DEFERRED);
    run_sense_table(DESCRIPTOR_DEFERRED);
}

/* Windows: NOT READY / LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED is reported as no
 * media (STATUS_NO_MEDIA_IN_DEVICE), not retried. */
static void test_not_ready_manual_intervention_is_no_media_without_retry(void **state)
{
    check("04/03", interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x02, 0x04, 0x03),
          STATUS_NO_MEDIA_IN_DEVICE, FALSE, 0);
}

/* Windows: FORMAT IN PROGRESS (04/04) is not retried: a format takes far longer than the class
 * driver's retries. */
static void test_not_ready_format_in_progress_is_not_retried(void **state)
{
    check("04/04", interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x02, 0x04, 0x04),
          STATUS_DEVICE_NOT_READY, FALSE, 0);
}

/* Windows: CAUSE NOT REPORTABLE (04/00) is not retried (drives return it with no medium). */
static void test_not_ready_cause_not_reportable_is_not_retried(void **state)
{
    check("04/00", interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x02, 0x04, 0x00),
          STATUS_DEVICE_NOT_READY, FALSE, 0);
}

/* Windows: a MEDIUM ERROR is a bad block: STATUS_DEVICE_DATA_ERROR and no retry. */
static void test_medium_error_is_data_error_without_retry(void **state)
{
    check("03/11/00", interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x03, 0x11, 0),
          STATUS_DEVICE_DATA_ERROR, FALSE, 0);
    check("03/11/00 desc",
          interpret(SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, DESCRIPTOR, 0x03, 0x11, 0),
          STATUS_DEVICE_DATA_ERROR, FALSE, 0);
}

/* ---- SRB and SCSI status without sense ----------------------------------------------------- */

struct srb_case {
    const char *name;
    UCHAR srb_status, scsi_status;
    NTSTATUS status;
    BOOLEAN retry;
    ULONG interval;
};

static const struct srb_case srb_table[] = {
    {"SUCCESS", SRB_STATUS_SUCCESS, SCSISTAT_GOOD, STATUS_SUCCESS, FALSE, 0},
    {"ERROR, QUEUE FULL", SRB_STATUS_ERROR, SCSISTAT_QUEUE_FULL, STATUS_DEVICE_BUSY, TRUE, 1},
    {"ERROR, RESERVATION CONFLICT", SRB_STATUS_ERROR, SCSISTAT_RESERVATION_CONFLICT,
     STATUS_DEVICE_BUSY, FALSE, 0},
    {"ERROR, CHECK CONDITION without sense", SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION,
     STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"ERROR, GOOD", SRB_STATUS_ERROR, SCSISTAT_GOOD, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"BUSY", SRB_STATUS_BUSY, 0, STATUS_DEVICE_BUSY, TRUE, 1},
    {"INVALID_LUN", SRB_STATUS_INVALID_LUN, 0, STATUS_NO_SUCH_DEVICE, FALSE, 0},
    {"INVALID_TARGET_ID", SRB_STATUS_INVALID_TARGET_ID, 0, STATUS_NO_SUCH_DEVICE, FALSE, 0},
    {"NO_DEVICE", SRB_STATUS_NO_DEVICE, 0, STATUS_NO_SUCH_DEVICE, FALSE, 0},
    {"NO_HBA", SRB_STATUS_NO_HBA, 0, STATUS_NO_SUCH_DEVICE, FALSE, 0},
    {"TIMEOUT", SRB_STATUS_TIMEOUT, 0, STATUS_IO_TIMEOUT, TRUE, 0},
    {"COMMAND_TIMEOUT", SRB_STATUS_COMMAND_TIMEOUT, 0, STATUS_IO_TIMEOUT, TRUE, 0},
    {"BUS_RESET", SRB_STATUS_BUS_RESET, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"PARITY_ERROR", SRB_STATUS_PARITY_ERROR, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"UNEXPECTED_BUS_FREE", SRB_STATUS_UNEXPECTED_BUS_FREE, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"REQUEST_FLUSHED", SRB_STATUS_REQUEST_FLUSHED, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"DATA_OVERRUN", SRB_STATUS_DATA_OVERRUN, 0, STATUS_DATA_OVERRUN, FALSE, 0},
    {"INVALID_REQUEST", SRB_STATUS_INVALID_REQUEST, 0, STATUS_INVALID_DEVICE_REQUEST, FALSE, 0},
    {"BAD_FUNCTION", SRB_STATUS_BAD_FUNCTION, 0, STATUS_INVALID_DEVICE_REQUEST, FALSE, 0},
    {"BAD_SRB_BLOCK_LENGTH", SRB_STATUS_BAD_SRB_BLOCK_LENGTH, 0, STATUS_INVALID_DEVICE_REQUEST,
     FALSE, 0},
    {"LINK_DOWN (unlisted)", SRB_STATUS_LINK_DOWN, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
    {"PENDING (unlisted)", SRB_STATUS_PENDING, 0, STATUS_IO_DEVICE_ERROR, TRUE, 0},
};

static void test_srb_status_table(void **state)
{
    for (size_t i = 0; i < sizeof(srb_table) / sizeof(srb_table[0]); i++) {
        const struct srb_case *c = &srb_table[i];
        check(c->name, interpret(c->srb_status, c->scsi_status, NO_SENSE_DATA, 0, 0, 0), c->status,
              c->retry, c->interval);
        /* a frozen queue changes nothing in the answer (no FDO: nothing to release) */
        check(c->name,
              interpret(c->srb_status | SRB_STATUS_QUEUE_FROZEN, c->scsi_status, NO_SENSE_DATA, 0,
                        0, 0),
              c->status, c->retry, c->interval);
    }
}

/* Windows: SCSI status BUSY is STATUS_DEVICE_NOT_READY (an error), retried. STATUS_DEVICE_BUSY
 * is a warning, so a request that ran out of retries would not look failed to NT_ERROR. */
static void test_scsi_busy_is_device_not_ready_and_retried(void **state)
{
    struct outcome o = interpret(SRB_STATUS_ERROR, SCSISTAT_BUSY, NO_SENSE_DATA, 0, 0, 0);
    assert_int_equal(o.status, STATUS_DEVICE_NOT_READY);
    assert_true(o.retry);
}

/* Windows: a selection timeout means the device did not answer: STATUS_DEVICE_NOT_CONNECTED. */
static void test_selection_timeout_is_device_not_connected_without_retry(void **state)
{
    check("SELECTION_TIMEOUT", interpret(SRB_STATUS_SELECTION_TIMEOUT, 0, NO_SENSE_DATA, 0, 0, 0),
          STATUS_DEVICE_NOT_CONNECTED, FALSE, 0);
}

/* Windows: an invalid path ID is a device that does not exist, like an invalid target or LUN. */
static void test_invalid_path_id_is_no_such_device_without_retry(void **state)
{
    check("INVALID_PATH_ID", interpret(SRB_STATUS_INVALID_PATH_ID, 0, NO_SENSE_DATA, 0, 0, 0),
          STATUS_NO_SUCH_DEVICE, FALSE, 0);
}

/* Windows: an aborted SRB (the port aborted it, e.g. after a reset) is STATUS_IO_TIMEOUT, retried
 * after an interval. */
static void test_aborted_srb_is_io_timeout_and_retried_after_an_interval(void **state)
{
    struct outcome o = interpret(SRB_STATUS_ABORTED, 0, NO_SENSE_DATA, 0, 0, 0);
    assert_int_equal(o.status, STATUS_IO_TIMEOUT);
    assert_true(o.retry);
    assert_true(o.interval >= 1);
}

/* Windows: phase sequence failures are retried only for the first retries (RetryCount <= 1). */
static void test_phase_sequence_failure_retry_is_limited(void **state)
{
    struct outcome o =
        interpret_ex(NULL, SRB_STATUS_PHASE_SEQUENCE_FAILURE, 0, NO_SENSE_DATA, 0, 0, 0, 0, 0);
    assert_int_equal(o.status, STATUS_IO_DEVICE_ERROR);
    assert_true(o.retry);
    o = interpret_ex(NULL, SRB_STATUS_PHASE_SEQUENCE_FAILURE, 0, NO_SENSE_DATA, 0, 0, 0, 2, 0);
    assert_int_equal(o.status, STATUS_IO_DEVICE_ERROR);
    assert_false(o.retry);
}

/* Windows: SRB_STATUS_INTERNAL_ERROR carries the port's NTSTATUS in InternalStatus; it is
 * returned as is, without retry. */
static void test_internal_error_returns_the_ports_status(void **state)
{
    struct outcome o = interpret_ex(NULL, SRB_STATUS_INTERNAL_ERROR, 0, NO_SENSE_DATA, 0, 0, 0, 0,
                                    (ULONG)STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(o.status, STATUS_INSUFFICIENT_RESOURCES);
    assert_false(o.retry);
}

/* ---- Unusable sense ------------------------------------------------------------------------ */

static void test_unusable_sense_is_treated_as_no_sense(void **state)
{
    SCSI_REQUEST_BLOCK srb;
    UCHAR sense[18];
    NTSTATUS status;
    ULONG interval = 99;
    BOOLEAN retry;

    /* an unknown response code */
    memset(&srb, 0, sizeof(srb));
    memset(sense, 0, sizeof(sense));
    sense[0] = 0x7F;
    sense[2] = SCSI_SENSE_ILLEGAL_REQUEST;
    srb.SrbStatus = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
    srb.ScsiStatus = SCSISTAT_CHECK_CONDITION;
    srb.SenseInfoBuffer = sense;
    srb.SenseInfoBufferLength = sizeof(sense);
    retry = ClassInterpretSenseInfo(NULL, &srb, IRP_MJ_SCSI, 0, 0, &status, &interval);
    assert_int_equal(status, STATUS_IO_DEVICE_ERROR);
    assert_true(retry);

    /* fixed sense cut before the ASC: not read past the buffer (exact-size allocation) */
    UCHAR *cut = malloc(8);
    memcpy(cut, "\x70\x00\x05\x00\x00\x00\x00\x00", 8);
    srb.SenseInfoBuffer = cut;
    srb.SenseInfoBufferLength = 8;
    retry = ClassInterpretSenseInfo(NULL, &srb, IRP_MJ_SCSI, 0, 0, &status, NULL);
    assert_int_equal(status, STATUS_IO_DEVICE_ERROR);
    assert_true(retry);
    /* descriptor sense of 3 bytes */
    cut[0] = 0x72;
    srb.SenseInfoBufferLength = 3;
    retry = ClassInterpretSenseInfo(NULL, &srb, IRP_MJ_SCSI, 0, 0, &status, NULL);
    assert_int_equal(status, STATUS_IO_DEVICE_ERROR);
    /* no sense buffer at all, though AUTOSENSE_VALID says there is */
    srb.SenseInfoBuffer = NULL;
    srb.SenseInfoBufferLength = 0;
    retry = ClassInterpretSenseInfo(NULL, &srb, IRP_MJ_SCSI, 0, 0, &status, NULL);
    assert_int_equal(status, STATUS_IO_DEVICE_ERROR);
    free(cut);
}

/* ---- With an FDO --------------------------------------------------------------------------- */

static BOOLEAN g_hook_called;
static void class_error_hook(PDEVICE_OBJECT DeviceObject, PSCSI_REQUEST_BLOCK Srb, NTSTATUS *Status,
                             BOOLEAN *Retry)
{
    g_hook_called = TRUE;
    if (*Status == STATUS_IO_DEVICE_ERROR) {
        *Status = STATUS_NOT_SUPPORTED;
        *Retry = FALSE;
    }
}

struct fake_fdo {
    DEVICE_OBJECT Fdo;
    FUNCTIONAL_DEVICE_EXTENSION Fdx;
    CLASS_DEV_INFO DevInfo;
    STORAGE_DEVICE_DESCRIPTOR Descriptor;
};

static void fake_fdo_init(struct fake_fdo *f, BOOLEAN removable, CLASS_ERROR *hook)
{
    memset(f, 0, sizeof(*f));
    f->Fdo.DeviceExtension = &f->Fdx;
    f->Fdx.Signature = CLASS_FDO_SIGNATURE;
    f->Fdx.DeviceObject = &f->Fdo;
    f->Fdx.DevInfo = &f->DevInfo;
    f->Fdx.DeviceDescriptor = &f->Descriptor;
    f->Descriptor.RemovableMedia = removable;
    f->DevInfo.ClassError = hook;
}

static void test_medium_changed_on_removable_media_needs_verify(void **state)
{
    struct fake_fdo f;
    fake_fdo_init(&f, TRUE, NULL);
    check("28/00 removable",
          interpret_ex(&f.Fdo, SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x06, 0x28, 0, 0,
                       0),
          STATUS_VERIFY_REQUIRED, FALSE, 0);
    fake_fdo_init(&f, FALSE, NULL);
    check("28/00 fixed",
          interpret_ex(&f.Fdo, SRB_STATUS_ERROR, SCSISTAT_CHECK_CONDITION, FIXED, 0x06, 0x28, 0, 0,
                       0),
          STATUS_IO_DEVICE_ERROR, TRUE, 0);
}

static void test_class_error_routine_gets_the_last_word(void **state)
{
    struct fake_fdo f;
    fake_fdo_init(&f, FALSE, class_error_hook);
    g_hook_called = FALSE;
    check("hooked", interpret_ex(&f.Fdo, SRB_STATUS_BUS_RESET, 0, NO_SENSE_DATA, 0, 0, 0, 0, 0),
          STATUS_NOT_SUPPORTED, FALSE, 0);
    assert_true(g_hook_called);
    g_hook_called = FALSE;
    check("unchanged", interpret_ex(&f.Fdo, SRB_STATUS_SUCCESS, 0, NO_SENSE_DATA, 0, 0, 0, 0, 0),
          STATUS_SUCCESS, FALSE, 0);
    assert_true(g_hook_called);
}

/* ---- ClassFindModePage --------------------------------------------------------------------- */

/* Copies bytes into an exact-size heap buffer so that any over-read is an ASan error. */
static PUCHAR exact(const UCHAR *bytes, size_t len)
{
    PUCHAR p = malloc(len ? len : 1);
    memcpy(p, bytes, len);
    return p;
}

static void test_find_mode_page_six_byte_header(void **state)
{
    UCHAR data[4 + 2 + 0x12 + 2 + 0x0A];
    memset(data, 0, sizeof(data));
    data[0] = sizeof(data) - 1; /* mode data length excludes itself */
    data[4] = 0x08 | 0x80;      /* caching page, PS set */
    data[5] = 0x12;
    data[4 + 2 + 0x12] = 0x1C;
    data[4 + 2 + 0x12 + 1] = 0x0A;
    PUCHAR buf = exact(data, sizeof(data));
    assert_ptr_equal(ClassFindModePage(buf, sizeof(data), 0x08, TRUE), buf + 4);
    assert_ptr_equal(ClassFindModePage(buf, sizeof(data), 0x1C, TRUE), buf + 4 + 2 + 0x12);
    assert_null(ClassFindModePage(buf, sizeof(data), 0x0A, TRUE));
    free(buf);
}

static void test_find_mode_page_skips_block_descriptors(void **state)
{
    UCHAR data[4 + 8 + 2 + 0x0A];
    memset(data, 0, sizeof(data));
    data[0] = sizeof(data) - 1;
    data[3] = 8;
    memset(data + 4, 0x08, 8); /* a block descriptor full of bytes that look like page 08 */
    data[12] = 0x0A;
    data[13] = 0x0A;
    PUCHAR buf = exact(data, sizeof(data));
    assert_ptr_equal(ClassFindModePage(buf, sizeof(data), 0x0A, TRUE), buf + 12);
    assert_null(ClassFindModePage(buf, sizeof(data), 0x08, TRUE));
    free(buf);
}

static void test_find_mode_page_ten_byte_header_with_long_descriptor(void **state)
{
    UCHAR data[8 + 16 + 2 + 0x12];
    memset(data, 0, sizeof(data));
    scsi_put_be16(data, sizeof(data) - 2);
    data[4] = 0x01; /* LONGLBA */
    scsi_put_be16(data + 6, 16);
    data[24] = 0x08;
    data[25] = 0x12;
    PUCHAR buf = exact(data, sizeof(data));
    assert_ptr_equal(ClassFindModePage(buf, sizeof(data), 0x08, FALSE), buf + 24);
    /* the same bytes read with the 6-byte layout do not find it there */
    assert_ptr_not_equal(ClassFindModePage(buf, sizeof(data), 0x08, TRUE), buf + 24);
    free(buf);
}

static void test_find_mode_page_running_past_the_buffer_is_null(void **state)
{
    UCHAR data[20];
    memset(data, 0, sizeof(data));
    data[0] = 19;
    data[4] = 0x08;
    data[5] = 30; /* claims 30 bytes, 14 remain */
    PUCHAR buf = exact(data, sizeof(data));
    assert_null(ClassFindModePage(buf, sizeof(data), 0x08, TRUE));
    free(buf);

    /* the header claims more data than the buffer holds: bounded by the buffer */
    UCHAR big[4 + 2 + 4];
    memset(big, 0, sizeof(big));
    big[0] = 0xFF;
    big[4] = 0x1C;
    big[5] = 4;
    buf = exact(big, sizeof(big));
    assert_ptr_equal(ClassFindModePage(buf, sizeof(big), 0x1C, TRUE), buf + 4);
    assert_null(ClassFindModePage(buf, sizeof(big), 0x08, TRUE));
    free(buf);

    UCHAR big10[8 + 2 + 2];
    memset(big10, 0, sizeof(big10));
    scsi_put_be16(big10, 0xFFFF);
    big10[8] = 0x0A;
    big10[9] = 4; /* 2 of its 4 bytes are missing */
    buf = exact(big10, sizeof(big10));
    assert_null(ClassFindModePage(buf, sizeof(big10), 0x0A, FALSE));
    free(buf);
}

static void test_find_mode_page_respects_the_mode_data_length(void **state)
{
    /* the buffer is larger than the mode data; bytes after the data are not pages */
    UCHAR data[32];
    memset(data, 0, sizeof(data));
    data[0] = 4 + 2 + 2 - 1; /* header + one 2-byte page */
    data[4] = 0x1C;
    data[5] = 2;
    data[8] = 0x08; /* stale bytes after the mode data */
    data[9] = 2;
    PUCHAR buf = exact(data, sizeof(data));
    assert_ptr_equal(ClassFindModePage(buf, sizeof(data), 0x1C, TRUE), buf + 4);
    assert_null(ClassFindModePage(buf, sizeof(data), 0x08, TRUE));
    free(buf);
}

static void test_find_mode_page_with_truncated_headers_is_null(void **state)
{
    UCHAR data[12];
    PUCHAR buf;
    memset(data, 0, sizeof(data));
    /* shorter than the header */
    buf = exact(data, 3);
    assert_null(ClassFindModePage(buf, 3, 0x08, TRUE));
    free(buf);
    buf = exact(data, 7);
    assert_null(ClassFindModePage(buf, 7, 0x08, FALSE));
    free(buf);
    /* block descriptor length past the end */
    data[0] = 11;
    data[3] = 200;
    buf = exact(data, sizeof(data));
    assert_null(ClassFindModePage(buf, sizeof(data), 0x00, TRUE));
    free(buf);
    /* one lone byte of a page header at the end: its length byte is not read */
    memset(data, 0, sizeof(data));
    data[0] = 4;
    data[4] = 0x08;
    buf = exact(data, 5);
    assert_null(ClassFindModePage(buf, 5, 0x08, TRUE));
    free(buf);
    /* a zero-length page is found, and the search steps past it */
    memset(data, 0, sizeof(data));
    data[0] = 4 + 2 + 2 + 2 - 1;
    data[4] = 0x02;
    data[5] = 0;
    data[6] = 0x08;
    data[7] = 2;
    buf = exact(data, 10);
    assert_ptr_equal(ClassFindModePage(buf, 10, 0x02, TRUE), buf + 4);
    assert_ptr_equal(ClassFindModePage(buf, 10, 0x08, TRUE), buf + 6);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sense_keys_in_fixed_format),
        cmocka_unit_test(test_sense_keys_in_descriptor_format),
        cmocka_unit_test(test_sense_keys_in_deferred_formats),
        cmocka_unit_test(test_not_ready_manual_intervention_is_no_media_without_retry),
        cmocka_unit_test(test_not_ready_format_in_progress_is_not_retried),
        cmocka_unit_test(test_not_ready_cause_not_reportable_is_not_retried),
        cmocka_unit_test(test_medium_error_is_data_error_without_retry),
        cmocka_unit_test(test_srb_status_table),
        cmocka_unit_test(test_scsi_busy_is_device_not_ready_and_retried),
        cmocka_unit_test(test_selection_timeout_is_device_not_connected_without_retry),
        cmocka_unit_test(test_invalid_path_id_is_no_such_device_without_retry),
        cmocka_unit_test(test_aborted_srb_is_io_timeout_and_retried_after_an_interval),
        cmocka_unit_test(test_phase_sequence_failure_retry_is_limited),
        cmocka_unit_test(test_internal_error_returns_the_ports_status),
        cmocka_unit_test(test_unusable_sense_is_treated_as_no_sense),
        cmocka_unit_test(test_medium_changed_on_removable_media_needs_verify),
        cmocka_unit_test(test_class_error_routine_gets_the_last_word),
        cmocka_unit_test(test_find_mode_page_six_byte_header),
        cmocka_unit_test(test_find_mode_page_skips_block_descriptors),
        cmocka_unit_test(test_find_mode_page_ten_byte_header_with_long_descriptor),
        cmocka_unit_test(test_find_mode_page_running_past_the_buffer_is_null),
        cmocka_unit_test(test_find_mode_page_respects_the_mode_data_length),
        cmocka_unit_test(test_find_mode_page_with_truncated_headers_is_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
