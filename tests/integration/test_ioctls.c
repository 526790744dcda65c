/*
 * The storage IOCTLs of a whole stack, answered by the disk class driver, the class library or
 * Storport: disk geometry and length match the configured size; IOCTL_STORAGE_QUERY_PROPERTY
 * returns the device descriptor (vendor, product, revision and serial strings at their offsets;
 * a short buffer gets the header with the full Size), the adapter descriptor (the configured
 * MaximumTransferLength), the device identifiers (an NAA designator of 16 bytes), the DUID (both
 * offsets), the write cache property (following the WriteCache value, and a MODE SELECT that
 * clears WCE through pass-through), PropertyExistsQuery, and an error for an unknown property;
 * IOCTL_SCSI_GET_ADDRESS, _GET_CAPABILITIES, _GET_INQUIRY_DATA on Scsi0:,
 * IOCTL_STORAGE_GET_DEVICE_NUMBER; and the device tree JSON shows adapter → LUN → disk with the
 * names PhysicalDrive0 and Scsi0:.
 */
#include <stdlib.h>
#include <string.h>

#include <storstack/storage/ntdddisk.h>
#include <storstack/storage/ntddstor.h>

#include "integ.h"

#define DISK_SIZE    (96ull * MIB)
#define MAX_TRANSFER (128u * KIB)

struct io_fixture {
    storstack_t *stack;
    storstack_handle_t *disk;
    storstack_handle_t *port;
};

static int boot_with(void **state, const char *write_cache)
{
    struct io_fixture *f = calloc(1, sizeof(*f));
    char lun[256];
    snprintf(lun, sizeof(lun),
             "Backend = ram\nSize = 96M\nVendor = ACME\nProduct = ROADRUNNER\nRevision = 7.1\n"
             "Serial = SN-0042\nWriteCache = %s\n",
             write_cache);
    char *cfg = integ_config("MaximumTransferLength = 128K\n", lun);
    f->stack = integ_boot(cfg);
    free(cfg);
    f->disk = integ_open(f->stack, "PhysicalDrive0", INTEG_RW);
    f->port = integ_open(f->stack, "Scsi0:", INTEG_RW);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return boot_with(state, "1");
}

static int setup_wc_off(void **state)
{
    return boot_with(state, "0");
}

static int teardown(void **state)
{
    struct io_fixture *f = *state;
    storstack_close(f->disk);
    storstack_close(f->port);
    storstack_destroy(f->stack);
    free(f);
    return 0;
}

static storstack_status_t query(storstack_handle_t *h, uint32_t id, uint32_t type, void *out,
                                uint32_t out_len, uint32_t *ret)
{
    STORAGE_PROPERTY_QUERY q;
    memset(&q, 0, sizeof(q));
    q.PropertyId = id;
    q.QueryType = type;
    return storstack_ioctl(h, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), out, out_len, ret);
}

static void test_geometry_and_length_match_the_configured_size(void **state)
{
    struct io_fixture *f = *state;
    DISK_GEOMETRY_EX gx;
    GET_LENGTH_INFORMATION li;
    uint32_t ret;
    memset(&gx, 0xAA, sizeof(gx));
    assert_status(
        storstack_ioctl(f->disk, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, NULL, 0, &gx, sizeof(gx), &ret),
        STATUS_SUCCESS);
    assert_int_equal(ret, offsetof(DISK_GEOMETRY_EX, Data));
    assert_int_equal(gx.DiskSize.QuadPart, DISK_SIZE);
    assert_int_equal(gx.Geometry.BytesPerSector, 512);
    assert_int_equal(gx.Geometry.MediaType, FixedMedia);
    assert_true((uint64_t)gx.Geometry.Cylinders.QuadPart * gx.Geometry.TracksPerCylinder *
                    gx.Geometry.SectorsPerTrack * 512 <=
                DISK_SIZE);
    assert_status(
        storstack_ioctl(f->disk, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &ret),
        STATUS_SUCCESS);
    assert_int_equal(ret, sizeof(li));
    assert_int_equal(li.Length.QuadPart, DISK_SIZE);
    assert_status(storstack_ioctl(f->disk, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, 4, &ret),
                  STATUS_BUFFER_TOO_SMALL);
}

static void test_device_descriptor_has_strings_at_their_offsets(void **state)
{
    struct io_fixture *f = *state;
    uint8_t buf[1024];
    STORAGE_DEVICE_DESCRIPTOR *d = (STORAGE_DEVICE_DESCRIPTOR *)buf;
    uint32_t ret;
    memset(buf, 0xCC, sizeof(buf));
    assert_status(
        query(f->disk, StorageDeviceProperty, PropertyStandardQuery, buf, sizeof(buf), &ret),
        STATUS_SUCCESS);
    assert_int_equal(ret, d->Size);
    assert_true(d->Size <= sizeof(buf));
    assert_int_equal(d->DeviceType, 0);
    assert_false(d->RemovableMedia);
    assert_true(d->VendorIdOffset && d->ProductIdOffset && d->ProductRevisionOffset &&
                d->SerialNumberOffset);
    assert_true(d->VendorIdOffset < d->Size && d->ProductIdOffset < d->Size &&
                d->ProductRevisionOffset < d->Size && d->SerialNumberOffset < d->Size);
    /* Windows pads vendor and product with spaces; compare the meaningful part */
    assert_memory_equal(buf + d->VendorIdOffset, "ACME", 4);
    assert_memory_equal(buf + d->ProductIdOffset, "ROADRUNNER", 10);
    assert_memory_equal(buf + d->ProductRevisionOffset, "7.1", 3);
    assert_string_equal((char *)buf + d->SerialNumberOffset, "SN-0042");
    assert_true(memchr(buf + d->VendorIdOffset, 0, d->Size - d->VendorIdOffset) != NULL);
    assert_true(memchr(buf + d->ProductIdOffset, 0, d->Size - d->ProductIdOffset) != NULL);

    /* a buffer of 8 bytes gets the header, with the full size */
    uint8_t small[8];
    STORAGE_DESCRIPTOR_HEADER hdr;
    memset(small, 0, sizeof(small));
    assert_status(query(f->disk, StorageDeviceProperty, PropertyStandardQuery, small, 8, &ret),
                  STATUS_SUCCESS);
    memcpy(&hdr, small, sizeof(hdr));
    assert_int_equal(ret, 8);
    assert_int_equal(hdr.Size, d->Size);
    assert_int_equal(hdr.Version, d->Version);
    assert_status(query(f->disk, StorageDeviceProperty, PropertyStandardQuery, small, 4, &ret),
                  STATUS_INFO_LENGTH_MISMATCH);
}

static void test_adapter_descriptor_reports_configured_maximum_transfer(void **state)
{
    struct io_fixture *f = *state;
    STORAGE_ADAPTER_DESCRIPTOR a;
    uint32_t ret;
    storstack_handle_t *hs[2] = {f->disk, f->port};
    for (int i = 0; i < 2; i++) {
        memset(&a, 0, sizeof(a));
        assert_status(
            query(hs[i], StorageAdapterProperty, PropertyStandardQuery, &a, sizeof(a), &ret),
            STATUS_SUCCESS);
        assert_int_equal(ret, sizeof(a));
        assert_int_equal(a.Size, sizeof(a));
        assert_int_equal(a.MaximumTransferLength, MAX_TRANSFER);
        assert_true(a.CommandQueueing);
    }
}

static void test_device_id_property_has_a_16_byte_naa_identifier(void **state)
{
    struct io_fixture *f = *state;
    uint8_t buf[1024];
    STORAGE_DEVICE_ID_DESCRIPTOR *d = (STORAGE_DEVICE_ID_DESCRIPTOR *)buf;
    uint32_t ret;
    int found = 0;
    memset(buf, 0, sizeof(buf));
    assert_status(
        query(f->disk, StorageDeviceIdProperty, PropertyStandardQuery, buf, sizeof(buf), &ret),
        STATUS_SUCCESS);
    assert_true(d->NumberOfIdentifiers >= 1);
    assert_int_equal(ret, d->Size);
    uint32_t off = offsetof(STORAGE_DEVICE_ID_DESCRIPTOR, Identifiers);
    for (uint32_t i = 0; i < d->NumberOfIdentifiers; i++) {
        assert_true(off + offsetof(STORAGE_IDENTIFIER, Identifier) <= d->Size);
        STORAGE_IDENTIFIER *id = (STORAGE_IDENTIFIER *)(buf + off);
        assert_true(off + offsetof(STORAGE_IDENTIFIER, Identifier) + id->IdentifierSize <= d->Size);
        if (id->Type == StorageIdTypeFCPHName && id->CodeSet == StorageIdCodeSetBinary &&
            id->IdentifierSize == 16 && (id->Identifier[0] >> 4) == 6)
            found = 1;
        if (!id->NextOffset)
            break;
        off += id->NextOffset;
    }
    if (!found)
        fail_msg("no NAA 6 identifier of 16 bytes among %u identifiers", d->NumberOfIdentifiers);
}

static void test_device_unique_id_has_both_offsets(void **state)
{
    struct io_fixture *f = *state;
    uint8_t buf[2048];
    STORAGE_DEVICE_UNIQUE_IDENTIFIER *u = (STORAGE_DEVICE_UNIQUE_IDENTIFIER *)buf;
    uint32_t ret;
    memset(buf, 0, sizeof(buf));
    assert_status(query(f->disk, StorageDeviceUniqueIdProperty, PropertyStandardQuery, buf,
                        sizeof(buf), &ret),
                  STATUS_SUCCESS);
    assert_int_equal(u->Version, DUID_VERSION_1);
    assert_int_equal(ret, u->Size);
    assert_true(u->StorageDeviceIdOffset >= sizeof(*u) && u->StorageDeviceIdOffset < u->Size);
    assert_true(u->StorageDeviceOffset >= sizeof(*u) && u->StorageDeviceOffset < u->Size);
    STORAGE_DEVICE_ID_DESCRIPTOR *ids =
        (STORAGE_DEVICE_ID_DESCRIPTOR *)(buf + u->StorageDeviceIdOffset);
    STORAGE_DEVICE_DESCRIPTOR *dev = (STORAGE_DEVICE_DESCRIPTOR *)(buf + u->StorageDeviceOffset);
    assert_true(ids->NumberOfIdentifiers >= 1);
    assert_true(u->StorageDeviceOffset + dev->Size <= u->Size);
    assert_true(dev->SerialNumberOffset != 0);
    assert_string_equal((char *)dev + dev->SerialNumberOffset, "SN-0042");
}

static void expect_write_cache(storstack_handle_t *h, uint32_t enabled)
{
    STORAGE_WRITE_CACHE_PROPERTY p;
    uint32_t ret;
    memset(&p, 0, sizeof(p));
    assert_status(
        query(h, StorageDeviceWriteCacheProperty, PropertyStandardQuery, &p, sizeof(p), &ret),
        STATUS_SUCCESS);
    assert_int_equal(ret, sizeof(p));
    if (p.WriteCacheEnabled != enabled)
        fail_msg("WriteCacheEnabled %u, expected %u", p.WriteCacheEnabled, enabled);
    assert_int_equal(p.WriteCacheChangeable, WriteCacheChangeable);
    assert_true(p.FlushCacheSupported);
}

static void test_write_cache_property_follows_config_and_mode_select(void **state)
{
    struct io_fixture *f = *state;
    expect_write_cache(f->disk, WriteCacheEnabled);

    /* MODE SENSE(6) caching page, clear WCE, MODE SELECT(6) it back (PF=1) */
    uint8_t ms[6] = {0x1A, 0x08, 0x08, 0, 64, 0}, page[64];
    struct integ_spt r;
    memset(page, 0, sizeof(page));
    integ_pass_through(f->disk, 0, 0, 0, ms, 6, INTEG_DATA_IN, page, sizeof(page), &r);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.scsi_status, 0);
    uint32_t len = page[0] + 1u;
    assert_true(len >= 4 + 2 && len <= sizeof(page));
    uint8_t *p = page + 4 + page[3];
    assert_int_equal(p[0] & 0x3F, 0x08);
    assert_true(p[2] & 0x04);
    p[0] &= 0x3F; /* PS is reserved in MODE SELECT */
    p[2] &= (uint8_t)~0x04;
    page[0] = 0;               /* MODE DATA LENGTH is reserved in MODE SELECT */
    page[2] &= (uint8_t)~0x80; /* WP is ignored/reserved too */
    uint8_t sel[6] = {0x15, 0x10, 0, 0, (uint8_t)len, 0};
    integ_pass_through(f->disk, 0, 0, 0, sel, 6, INTEG_DATA_OUT, page, len, &r);
    if (r.status != STATUS_SUCCESS || r.scsi_status != 0)
        fail_msg("MODE SELECT: %s, status %02Xh sense %Xh/%02Xh/%02Xh",
                 storstack_status_name(r.status), r.scsi_status, r.sense[2] & 0xF, r.sense[12],
                 r.sense[13]);
    expect_write_cache(f->disk, WriteCacheDisabled);
    /* writes still work with write-through */
    integ_write_pattern(f->disk, 1 * MIB, 64 * KIB, 3);
    integ_verify_pattern(f->disk, 1 * MIB, 64 * KIB, 3);
}

static void test_write_cache_property_disabled_when_configured_off(void **state)
{
    struct io_fixture *f = *state;
    expect_write_cache(f->disk, WriteCacheDisabled);
}

static void test_property_exists_query_and_unknown_property(void **state)
{
    struct io_fixture *f = *state;
    uint8_t buf[256];
    uint32_t ret;
    const uint32_t known[] = {StorageDeviceProperty, StorageAdapterProperty,
                              StorageDeviceIdProperty, StorageDeviceUniqueIdProperty,
                              StorageDeviceWriteCacheProperty};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        storstack_status_t st =
            query(f->disk, known[i], PropertyExistsQuery, buf, sizeof(buf), &ret);
        if (st != STATUS_SUCCESS)
            fail_msg("PropertyExistsQuery for property %u: %s", known[i],
                     storstack_status_name(st));
    }
    assert_error_status(query(f->disk, 0x7777, PropertyStandardQuery, buf, sizeof(buf), &ret));
    assert_error_status(query(f->disk, 0x7777, PropertyExistsQuery, buf, sizeof(buf), &ret));
    assert_error_status(query(f->disk, StorageDeviceProperty, 7, buf, sizeof(buf), &ret));
    /* an input shorter than the query */
    uint32_t id = StorageDeviceProperty;
    assert_error_status(
        storstack_ioctl(f->disk, IOCTL_STORAGE_QUERY_PROPERTY, &id, 4, buf, sizeof(buf), &ret));
}

static void test_scsi_address_capabilities_and_device_number(void **state)
{
    struct io_fixture *f = *state;
    SCSI_ADDRESS a;
    IO_SCSI_CAPABILITIES c;
    STORAGE_DEVICE_NUMBER n;
    uint32_t ret;
    memset(&a, 0xFF, sizeof(a));
    assert_status(storstack_ioctl(f->disk, IOCTL_SCSI_GET_ADDRESS, NULL, 0, &a, sizeof(a), &ret),
                  STATUS_SUCCESS);
    assert_int_equal(ret, sizeof(a));
    assert_int_equal(a.Length, sizeof(a));
    assert_int_equal(a.PortNumber, 0);
    assert_int_equal(a.PathId, 0);
    assert_int_equal(a.TargetId, 0);
    assert_int_equal(a.Lun, 0);

    memset(&c, 0, sizeof(c));
    assert_status(
        storstack_ioctl(f->port, IOCTL_SCSI_GET_CAPABILITIES, NULL, 0, &c, sizeof(c), &ret),
        STATUS_SUCCESS);
    assert_int_equal(c.Length, sizeof(c));
    assert_int_equal(c.MaximumTransferLength, MAX_TRANSFER);
    assert_true(c.MaximumPhysicalPages >= 2);
    assert_status(storstack_ioctl(f->port, IOCTL_SCSI_GET_CAPABILITIES, NULL, 0, &c, 8, &ret),
                  STATUS_BUFFER_TOO_SMALL);

    memset(&n, 0xFF, sizeof(n));
    assert_status(
        storstack_ioctl(f->disk, IOCTL_STORAGE_GET_DEVICE_NUMBER, NULL, 0, &n, sizeof(n), &ret),
        STATUS_SUCCESS);
    assert_int_equal(n.DeviceType, FILE_DEVICE_DISK);
    assert_int_equal(n.DeviceNumber, 0);
    assert_int_equal(n.PartitionNumber, 0);
}

static void test_get_inquiry_data_on_scsi0_lists_the_one_logical_unit(void **state)
{
    struct io_fixture *f = *state;
    uint8_t buf[4096];
    uint32_t ret;
    memset(buf, 0xCC, sizeof(buf));
    assert_status(
        storstack_ioctl(f->port, IOCTL_SCSI_GET_INQUIRY_DATA, NULL, 0, buf, sizeof(buf), &ret),
        STATUS_SUCCESS);
    SCSI_ADAPTER_BUS_INFO *bi = (SCSI_ADAPTER_BUS_INFO *)buf;
    assert_int_equal(bi->NumberOfBuses, 1);
    assert_int_equal(bi->BusData[0].NumberOfLogicalUnits, 1);
    uint32_t off = bi->BusData[0].InquiryDataOffset;
    assert_true(off > 0 && off + sizeof(SCSI_INQUIRY_DATA) <= ret);
    SCSI_INQUIRY_DATA *d = (SCSI_INQUIRY_DATA *)(buf + off);
    assert_int_equal(d->PathId, 0);
    assert_int_equal(d->TargetId, 0);
    assert_int_equal(d->Lun, 0);
    assert_true(d->DeviceClaimed); /* the disk class driver claimed it */
    assert_true(d->InquiryDataLength >= 36);
    assert_true(off + offsetof(SCSI_INQUIRY_DATA, InquiryData) + d->InquiryDataLength <= ret);
    assert_int_equal(d->InquiryData[0] & 0x1F, 0);
    assert_memory_equal(d->InquiryData + 8, "ACME    ", 8);
    assert_memory_equal(d->InquiryData + 16, "ROADRUNNER      ", 16);
    assert_int_equal(d->NextInquiryDataOffset, 0);
    assert_status(storstack_ioctl(f->port, IOCTL_SCSI_GET_INQUIRY_DATA, NULL, 0, buf, 16, &ret),
                  STATUS_BUFFER_TOO_SMALL);
}

static void test_tree_json_shows_adapter_lun_and_disk_with_their_names(void **state)
{
    struct io_fixture *f = *state;
    char *json = NULL;
    assert_status(storstack_get_tree(f->stack, &json), STATUS_SUCCESS);
    assert_non_null(json);
    const char *adapter = strstr(json, "ROOT\\\\VMINIPORT");
    const char *scsi0 = strstr(json, "Scsi0:");
    const char *lun = strstr(json, "GenDisk");
    const char *drive = strstr(json, "PhysicalDrive0");
    if (!adapter || !scsi0 || !lun || !drive)
        fail_msg("the tree lacks %s%s%s%s:\n%s", adapter ? "" : "ROOT\\VMINIPORT ",
                 scsi0 ? "" : "Scsi0: ", lun ? "" : "GenDisk ", drive ? "" : "PhysicalDrive0 ",
                 json);
    /* nesting: the adapter's devnode comes before its LUN, which carries the disk */
    if (!(adapter < lun && scsi0 < drive))
        fail_msg("unexpected order in the tree:\n%s", json);
    assert_non_null(strstr(json, "\"disk\""));
    assert_non_null(strstr(json, "\"vminiport\""));
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_geometry_and_length_match_the_configured_size, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_descriptor_has_strings_at_their_offsets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_adapter_descriptor_reports_configured_maximum_transfer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_id_property_has_a_16_byte_naa_identifier, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_unique_id_has_both_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_cache_property_follows_config_and_mode_select,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_cache_property_disabled_when_configured_off,
                                        setup_wc_off, teardown),
        cmocka_unit_test_setup_teardown(test_property_exists_query_and_unknown_property, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scsi_address_capabilities_and_device_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_inquiry_data_on_scsi0_lists_the_one_logical_unit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_json_shows_adapter_lun_and_disk_with_their_names,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
