/*
 * libFuzzer target for the bytes a caller hands Storport and classpnp in DeviceIoControl:
 * SCSI_PASS_THROUGH(_DIRECT) headers with their offsets and lengths, storage property queries
 * and the other IOCTLs, to PhysicalDrive0 and to Scsi0:. A stack with a 64 MiB RAM disk is
 * booted once. Input: byte 0 selects the device and IOCTL, bytes 1-4 the output length, then
 * the input buffer. For the DIRECT form the DataBuffer pointer is replaced by a scratch buffer
 * (or NULL), since a pointer from outside the process means nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddscsi.h>
#include <storstack/storage/ntddstor.h>
#include <storstack/storstack.h>

#include "api/local.h"
#include "kernel/executive.h"

static const char config[] = "[Enum\\Root\\VMINIPORT\\0000]\n"
                             "HardwareID = multi:ROOT\\VMINIPORT\n"
                             "[Enum\\Root\\VMINIPORT\\0000\\Device Parameters\\Target0\\Lun0]\n"
                             "Backend = ram\n"
                             "Size = 64M\n";

static const uint32_t codes[] = {
    IOCTL_SCSI_PASS_THROUGH,          IOCTL_SCSI_PASS_THROUGH_DIRECT,
    IOCTL_STORAGE_QUERY_PROPERTY,     IOCTL_SCSI_GET_INQUIRY_DATA,
    IOCTL_SCSI_GET_CAPABILITIES,      IOCTL_SCSI_GET_ADDRESS,
    IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, IOCTL_DISK_GET_LENGTH_INFO,
    IOCTL_STORAGE_GET_DEVICE_NUMBER,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static storstack_t *stack;
    static storstack_handle_t *disk, *port;
    static uint8_t scratch[256 * 1024];
    uint8_t *in, *out;
    uint32_t out_len, in_len, returned, code;

    if (!stack) {
        char err[256];
        stack = storstack_create_ex(NULL, config, NULL, 0, err, sizeof(err));
        if (!stack ||
            storstack_open(stack, "PhysicalDrive0",
                           STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &disk) ||
            storstack_open(stack, "Scsi0:", STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE,
                           &port))
            abort();
    }
    if (size < 5)
        return 0;
    code = codes[(data[0] & 0x7F) % (sizeof(codes) / sizeof(codes[0]))];
    memcpy(&out_len, data + 1, 4);
    out_len %= 64 * 1024;
    in_len = (uint32_t)(size - 5);
    in = malloc(in_len ? in_len : 1);
    out = malloc(out_len ? out_len : 1);
    if (!in || !out)
        abort();
    memcpy(in, data + 5, in_len);
    if (code == IOCTL_SCSI_PASS_THROUGH_DIRECT && in_len >= sizeof(SCSI_PASS_THROUGH_DIRECT)) {
        SCSI_PASS_THROUGH_DIRECT *sptd = (SCSI_PASS_THROUGH_DIRECT *)in;
        sptd->DataBuffer = (sptd->Cdb[15] & 1) ? NULL : scratch;
        if (sptd->DataTransferLength > sizeof(scratch))
            sptd->DataTransferLength = sizeof(scratch);
    }
    storstack_ioctl((data[0] & 0x80) ? port : disk, code, in, in_len, out, out_len, &returned);
    if (returned > out_len)
        abort(); /* the I/O manager never reports more than the caller's buffer */
    EXECUTIVE_COUNTERS counters;
    ExQueryCounters(storstack_local_executive(stack), &counters);
    if (counters.Violations)
        abort(); /* a driver claimed to return more than the caller's output buffer */
    free(in);
    free(out);
    return 0;
}
