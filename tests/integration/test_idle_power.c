/*
 * Storport idle power management: a vminiport disk with IdleTimeoutSeconds = 1. After about 2 s
 * without I/O the unit is in D3 (the tree shows it, and Storport's event log has the power-down,
 * START STOP UNIT START=0 sent through its own SRB path); a read then is held, not failed: it wakes
 * the unit (START STOP UNIT START=1), succeeds with the data written before, and the unit is D0.
 * With testport: the miniport counts the START=0 and START=1 it gets; a read arriving while the
 * power-down is held at the miniport waits and succeeds; a set-power IRP from above works too.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <storstack/storage/storevents.h>
#include <storstack/storage/storport.h>

#include <storstack/wdm/io.h>

#include "integ.h"
#include "kernel/executive.h"
#include "testport.h"

static const char tp_config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                "HardwareID = multi:ROOT\\TESTPORT\n"
                                "[Enum\\Root\\TESTPORT\\0000\\Device Parameters]\n"
                                "IdleTimeoutSeconds = dword:1\n";

static const char *unit_power(storstack_t *s, char *out)
{
    char *json = NULL, *p;
    assert_status(storstack_get_tree(s, &json), STATUS_SUCCESS);
    /* the disk unit's devnode: Storport's PDO for Target 0 LUN 0 */
    p = strstr(json, "\"location\":\"Bus Number 0, Target Id 0, LUN 0\"");
    if (!p)
        fail_msg("no unit in the tree:\n%s", json);
    p = strstr(p, "\"power\":\""); /* follows the location in the devnode's object */
    if (!p)
        fail_msg("no power field:\n%s", json);
    memcpy(out, p + 9, 2);
    out[2] = 0;
    free(json);
    return out;
}

/* Counts the power events (and which state each reached) in the adapter's event log. */
static int power_events(storstack_t *s, int *downs, int *ups)
{
    storstack_handle_t *h = integ_open(s, "Scsi0:", INTEG_RW);
    STORSTACK_GET_EVENTS in = {0};
    size_t size = sizeof(STORSTACK_EVENTS) + 256 * sizeof(STORSTACK_EVENT);
    PSTORSTACK_EVENTS ev = calloc(1, size);
    uint32_t got = 0;
    assert_status(
        storstack_ioctl(h, IOCTL_STORSTACK_GET_EVENTS, &in, sizeof(in), ev, (uint32_t)size, &got),
        STATUS_SUCCESS);
    *downs = *ups = 0;
    for (ULONG i = 0; i < ev->Count; i++) {
        if (ev->Events[i].ErrorCode != STORP_EVENT_POWER)
            continue;
        if (ev->Events[i].UniqueId == 4)
            ++*downs;
        else if (ev->Events[i].UniqueId == 1)
            ++*ups;
    }
    free(ev);
    storstack_close(h);
    return *downs + *ups;
}

static void test_idle_unit_powers_down_and_wakes_on_read(void **state)
{
    char *cfg = integ_config("IdleTimeoutSeconds = dword:1\n", "Backend = ram\nSize = 16M\n");
    storstack_t *s = integ_boot(cfg);
    storstack_handle_t *h;
    char power[3];
    int downs, ups;

    free(cfg);
    h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 1 * MIB, 64 * KIB, 77);
    assert_string_equal(unit_power(s, power), "D0");

    /* idle: within ~2-3 s the tick powers it down */
    for (int i = 0; i < 60 && strcmp(unit_power(s, power), "D3") != 0; i++)
        usleep(100000);
    assert_string_equal(power, "D3");
    power_events(s, &downs, &ups);
    assert_int_equal(downs, 1);
    assert_int_equal(ups, 0);

    /* the read is held, wakes the unit and gets the data written before */
    integ_verify_pattern(h, 1 * MIB, 64 * KIB, 77);
    assert_string_equal(unit_power(s, power), "D0");
    power_events(s, &downs, &ups);
    assert_int_equal(downs, 1);
    assert_int_equal(ups, 1);

    /* and it goes down again once idle */
    for (int i = 0; i < 60 && strcmp(unit_power(s, power), "D3") != 0; i++)
        usleep(100000);
    assert_string_equal(power, "D3");
    integ_write_pattern(h, 2 * MIB, 4 * KIB, 78);
    assert_string_equal(unit_power(s, power), "D0");

    storstack_close(h);
    storstack_destroy(s);
}

static void test_idle_timeout_zero_keeps_d0(void **state)
{
    char *cfg = integ_config("IdleTimeoutSeconds = dword:0\n", "Backend = ram\nSize = 16M\n");
    storstack_t *s = integ_boot(cfg);
    char power[3];
    int downs, ups;
    free(cfg);
    sleep(3);
    assert_string_equal(unit_power(s, power), "D0");
    assert_int_equal(power_events(s, &downs, &ups), 0);
    storstack_destroy(s);
}

static void wait_for_power(storstack_t *s, const char *want)
{
    char power[3];
    for (int i = 0; i < 60 && strcmp(unit_power(s, power), want) != 0; i++)
        usleep(100000);
    assert_string_equal(power, want);
}

/* The miniport sees START STOP UNIT START=0 at the power-down, START=1 before the held read,
 * and after each transition HwStorUnitControl ScsiUnitPower with the new state; the unit's
 * ScsiUnitStart came at boot and its ScsiUnitRemove comes at teardown. */
static void test_device_sees_stop_then_start(void **state)
{
    storstack_t *s;
    storstack_handle_t *h;
    int reads;
    int starts = atomic_load(&testport_faults.unit_starts);
    int powers = atomic_load(&testport_faults.unit_powers);
    int removes = atomic_load(&testport_faults.unit_removes);

    testport_reset_faults();
    s = integ_boot_ex(tp_config, &testport_package, 1);
    assert_int_equal(atomic_load(&testport_faults.unit_starts), starts + 1);
    h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 0, 32 * KIB, 5);
    wait_for_power(s, "D3");
    assert_int_equal(atomic_load(&testport_faults.stops_seen), 1);
    assert_int_equal(atomic_load(&testport_faults.starts_seen), 0);
    assert_int_equal(atomic_load(&testport_faults.unit_powers), powers + 1);
    assert_int_equal(atomic_load(&testport_faults.unit_power_state), StorPowerDeviceD3);
    reads = atomic_load(&testport_faults.reads_seen);
    integ_verify_pattern(h, 0, 32 * KIB, 5);
    assert_int_equal(atomic_load(&testport_faults.starts_seen), 1);
    assert_int_equal(atomic_load(&testport_faults.reads_seen), reads + 1);
    assert_int_equal(atomic_load(&testport_faults.unit_powers), powers + 2);
    assert_int_equal(atomic_load(&testport_faults.unit_power_state), StorPowerDeviceD0);
    char power[3];
    assert_string_equal(unit_power(s, power), "D0");
    storstack_close(h);
    storstack_destroy(s);
    assert_int_equal(atomic_load(&testport_faults.unit_removes), removes + 1);
    assert_int_equal(atomic_load(&testport_faults.unit_address_bad), 0);
}

struct async_read {
    atomic_int done;
    storstack_status_t status;
    uint64_t information;
};

static void read_done(void *context, storstack_status_t status, uint64_t information)
{
    struct async_read *r = context;
    r->status = status;
    r->information = information;
    atomic_store(&r->done, 1);
}

/* A read arriving while the unit powers down (its START STOP UNIT held by the miniport) waits;
 * when the power-down ends the unit powers up again and the read succeeds. */
static void test_read_during_power_down_is_held(void **state)
{
    storstack_t *s;
    storstack_handle_t *h;
    struct async_read r = {0};
    void *buf = integ_alloc(16 * KIB, 0);

    testport_reset_faults();
    s = integ_boot_ex(tp_config, &testport_package, 1);
    h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 64 * KIB, 16 * KIB, 9);
    atomic_store(&testport_faults.hold_ios, 1);
    for (int i = 0; i < 60 && atomic_load(&testport_faults.stops_seen) == 0; i++)
        usleep(100000);
    assert_int_equal(atomic_load(&testport_faults.stops_seen), 1);
    assert_int_equal(atomic_load(&testport_faults.held), 1); /* the STOP, at the miniport */

    int reads = atomic_load(&testport_faults.reads_seen);
    assert_status(storstack_read_async(h, buf, 16 * KIB, 64 * KIB, read_done, &r), STATUS_PENDING);
    usleep(300000);
    assert_int_equal(atomic_load(&r.done), 0); /* held by Storport, not failed */
    assert_int_equal(atomic_load(&testport_faults.reads_seen), reads);

    atomic_store(&testport_faults.hold_ios, 0);
    assert_int_equal(testport_release_held(), 1);
    for (int i = 0; i < 100 && !atomic_load(&r.done); i++)
        usleep(50000);
    assert_int_equal(atomic_load(&r.done), 1);
    assert_status(r.status, STATUS_SUCCESS);
    assert_int_equal(r.information, 16 * KIB);
    assert_int_equal(integ_find_mismatch(buf, 64 * KIB, 16 * KIB, 9), -1);
    assert_int_equal(atomic_load(&testport_faults.starts_seen), 1);
    char power[3];
    assert_string_equal(unit_power(s, power), "D0");
    integ_free(buf);
    storstack_close(h);
    storstack_destroy(s);
}

struct power_done {
    atomic_int calls;
    NTSTATUS status;
};

static void power_done(PDEVICE_OBJECT DeviceObject, UCHAR MinorFunction, POWER_STATE PowerState,
                       PVOID Context, PIO_STATUS_BLOCK IoStatus)
{
    struct power_done *p = Context;
    p->status = IoStatus->Status;
    atomic_fetch_add(&p->calls, 1);
}

/* Sends a power IRP down the PDO's stack and waits for its callback; returns its status. */
static NTSTATUS request_power(PDEVICE_OBJECT pdo, UCHAR minor, POWER_STATE ps,
                              struct power_done *done)
{
    int before = atomic_load(&done->calls);
    assert_status(PoRequestPowerIrp(pdo, minor, ps, power_done, done, NULL), STATUS_PENDING);
    for (int i = 0; i < 100 && atomic_load(&done->calls) == before; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&done->calls), before + 1);
    return done->status;
}

/* A D3 set-power IRP from above (not Storport's idle timer) goes down the unit's stack, stops the
 * unit and holds the next read, which powers it up; QUERY_POWER for D2 is refused. */
static void test_set_power_from_above(void **state)
{
    static const char config[] = "[Enum\\Root\\TESTPORT\\0000]\n"
                                 "HardwareID = multi:ROOT\\TESTPORT\n";
    struct power_done done = {0};
    POWER_STATE d3 = {.DeviceState = PowerDeviceD3}, d2 = {.DeviceState = PowerDeviceD2};
    PDEVICE_OBJECT pdo = NULL;
    storstack_t *s;
    storstack_handle_t *h;
    char power[3];

    testport_reset_faults();
    s = integ_boot_ex(config, &testport_package, 1);
    h = integ_open(s, "PhysicalDrive0", INTEG_RW);
    integ_write_pattern(h, 0, 8 * KIB, 3);
    assert_status(
        IoGetDeviceObjectPointer(storstack_local_executive(s), "\\Device\\RaidPort0\\P0T0L0", &pdo),
        STATUS_SUCCESS);
    assert_status(request_power(pdo, IRP_MN_QUERY_POWER, d2, &done), STATUS_INVALID_PARAMETER);
    assert_status(request_power(pdo, IRP_MN_SET_POWER, d3, &done), STATUS_SUCCESS);
    assert_int_equal(atomic_load(&testport_faults.stops_seen), 1);
    assert_string_equal(unit_power(s, power), "D3");

    integ_verify_pattern(h, 0, 8 * KIB, 3);
    assert_int_equal(atomic_load(&testport_faults.starts_seen), 1);
    assert_string_equal(unit_power(s, power), "D0");
    ObDereferenceObject(pdo);
    storstack_close(h);
    storstack_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_unit_powers_down_and_wakes_on_read),
        cmocka_unit_test(test_idle_timeout_zero_keeps_d0),
        cmocka_unit_test(test_device_sees_stop_then_start),
        cmocka_unit_test(test_read_during_power_down_is_held),
        cmocka_unit_test(test_set_power_from_above),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
