/*
 * Unit tests of the PnP manager (kernel/pnp.c) with in-test drivers: a root-enumerated bus driver
 * (testbus) whose FDO reports child PDOs in IRP_MN_QUERY_DEVICE_RELATIONS and answers
 * IRP_MN_QUERY_ID for them, function drivers matched through their manifests' [Models] IDs, and
 * filter services. It checks the AddDevice order of LowerFilters/UpperFilters from the device's
 * Enum key and from Control\Class\{guid} (device lower, class lower, function, device upper, class
 * upper) both as recorded and by walking AttachedDevice; hardware IDs matching before compatible
 * IDs; a device without a driver staying "stopped" without failing the system; a failing AddDevice
 * leaving the devnode "failed"; re-enumeration adding a new child and removing a vanished one (its
 * stack getting IRP_MN_REMOVE_DEVICE); the tree JSON's shape; manifest checks on registration;
 * and ExDestroyExecutive removing every devnode and device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/executive.h"

#define TEST_CLASS_GUID "{5e1f0000-1111-2222-3333-444455556666}"

enum kind { KIND_FILTER, KIND_BUS_FDO, KIND_CHILD_PDO };

typedef struct _PNP_TEST_EXT {
    enum kind Kind;
    PDEVICE_OBJECT Lower;
    PDEVICE_OBJECT Pdo;
    int Child;
} PNP_TEST_EXT;

struct child {
    PCSTR DeviceId;
    PCSTR InstanceId;
    PCSTR HardwareIds;   /* multi-sz */
    PCSTR CompatibleIds; /* multi-sz */
    BOOLEAN Present;
    PDEVICE_OBJECT Pdo;
    int Removes; /* IRP_MN_REMOVE_DEVICE seen by the PDO */
};

struct record {
    char Service[32];
    PDEVICE_OBJECT Pdo;
};

static struct {
    struct child Children[8];
    int ChildCount;
    struct record Adds[32];
    int AddCount;
    struct record Removes[32];
    int RemoveCount;
    int LiveDevices; /* devices the test drivers created and have not deleted */
    PDEVICE_OBJECT BusPdo;
    BOOLEAN Unloaded;
    EXECUTIVE_COUNTERS AtUnload;
} g;

static PCSTR service_of(PDEVICE_OBJECT dev)
{
    return dev->DriverObject->DriverName + 8; /* "\Driver\" */
}

static void record(struct record *list, int *count, PDEVICE_OBJECT dev, PDEVICE_OBJECT pdo)
{
    if (*count < 32) {
        snprintf(list[*count].Service, sizeof(list[*count].Service), "%s", service_of(dev));
        list[*count].Pdo = pdo;
        (*count)++;
    }
}

static size_t multi_sz_length(PCSTR s)
{
    size_t n = 0;
    while (s[n])
        n += strlen(s + n) + 1;
    return n + 1;
}

static PVOID pool_copy(PCSTR s, size_t len)
{
    PVOID p = ExAllocatePoolWithTag(NonPagedPool, len + 1, 0);
    if (p)
        memcpy(p, s, len);
    return p;
}

static NTSTATUS complete(PIRP Irp, NTSTATUS status)
{
    Irp->IoStatus.Status = status;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

static void delete_device(PDEVICE_OBJECT dev)
{
    g.LiveDevices--;
    IoDeleteDevice(dev);
}

static NTSTATUS forward(PNP_TEST_EXT *ext, PIRP Irp)
{
    IoSkipCurrentIrpStackLocation(Irp);
    return IoCallDriver(ext->Lower, Irp);
}

/* IRP_MN_REMOVE_DEVICE the WDK way: pass it down, detach, delete. The reference held across it
 * keeps the lower device valid until the detach even if the I/O manager frees a deleted device
 * that still has one attached (test_irp checks that contract on its own). */
static NTSTATUS forward_remove_and_delete(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PNP_TEST_EXT *ext = DeviceObject->DeviceExtension;
    PDEVICE_OBJECT lower = ext->Lower;
    NTSTATUS status;
    ObReferenceObject(lower);
    status = forward(ext, Irp);
    IoDetachDevice(lower);
    ObDereferenceObject(lower);
    delete_device(DeviceObject);
    return status;
}

/* The child PDOs' PnP handling: IDs from the test's table; on REMOVE the PDO goes away only when
 * the bus no longer reports it (the rule for bus drivers). */
static NTSTATUS child_pnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PNP_TEST_EXT *ext = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    struct child *c = &g.Children[ext->Child];
    PCSTR s;

    switch (sp->MinorFunction) {
    case IRP_MN_START_DEVICE:
        return complete(Irp, STATUS_SUCCESS);
    case IRP_MN_QUERY_ID:
        switch (sp->Parameters.QueryId.IdType) {
        case BusQueryDeviceID:
            Irp->IoStatus.Information = (ULONG_PTR)pool_copy(c->DeviceId, strlen(c->DeviceId) + 1);
            return complete(Irp, STATUS_SUCCESS);
        case BusQueryInstanceID:
            Irp->IoStatus.Information =
                (ULONG_PTR)pool_copy(c->InstanceId, strlen(c->InstanceId) + 1);
            return complete(Irp, STATUS_SUCCESS);
        case BusQueryHardwareIDs:
        case BusQueryCompatibleIDs:
            s = sp->Parameters.QueryId.IdType == BusQueryHardwareIDs ? c->HardwareIds
                                                                     : c->CompatibleIds;
            if (!s)
                break;
            Irp->IoStatus.Information = (ULONG_PTR)pool_copy(s, multi_sz_length(s));
            return complete(Irp, STATUS_SUCCESS);
        default:
            break;
        }
        break;
    case IRP_MN_REMOVE_DEVICE:
        c->Removes++;
        record(g.Removes, &g.RemoveCount, DeviceObject, DeviceObject);
        Irp->IoStatus.Status = STATUS_SUCCESS;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        if (!c->Present) {
            c->Pdo = NULL;
            delete_device(DeviceObject);
        }
        return STATUS_SUCCESS;
    default:
        break;
    }
    return complete(Irp, Irp->IoStatus.Status);
}

static NTSTATUS bus_fdo_pnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PNP_TEST_EXT *ext = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);

    if (sp->MinorFunction == IRP_MN_QUERY_DEVICE_RELATIONS &&
        sp->Parameters.QueryDeviceRelations.Type == BusRelations) {
        PDEVICE_RELATIONS rel = ExAllocatePoolWithTag(
            NonPagedPool, sizeof(DEVICE_RELATIONS) + 8 * sizeof(PDEVICE_OBJECT), 0);
        for (int i = 0; i < g.ChildCount; i++) {
            struct child *c = &g.Children[i];
            if (!c->Present)
                continue;
            if (!c->Pdo) {
                PDEVICE_OBJECT pdo;
                if (!NT_SUCCESS(IoCreateDevice(DeviceObject->DriverObject, sizeof(PNP_TEST_EXT),
                                               NULL, FILE_DEVICE_UNKNOWN,
                                               FILE_AUTOGENERATED_DEVICE_NAME, FALSE, &pdo)))
                    continue;
                g.LiveDevices++;
                PNP_TEST_EXT *cx = pdo->DeviceExtension;
                cx->Kind = KIND_CHILD_PDO;
                cx->Child = i;
                c->Pdo = pdo;
            }
            ObReferenceObject(c->Pdo); /* the PnP manager drops it */
            rel->Objects[rel->Count++] = c->Pdo;
        }
        Irp->IoStatus.Information = (ULONG_PTR)rel;
        return complete(Irp, STATUS_SUCCESS);
    }
    if (sp->MinorFunction == IRP_MN_REMOVE_DEVICE) {
        record(g.Removes, &g.RemoveCount, DeviceObject, ext->Pdo);
        /* children the bus still had are its to delete now */
        for (int i = 0; i < g.ChildCount; i++) {
            if (g.Children[i].Pdo) {
                delete_device(g.Children[i].Pdo);
                g.Children[i].Pdo = NULL;
            }
        }
        return forward_remove_and_delete(DeviceObject, Irp);
    }
    return forward(ext, Irp);
}

static NTSTATUS filter_pnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PNP_TEST_EXT *ext = DeviceObject->DeviceExtension;
    if (IoGetCurrentIrpStackLocation(Irp)->MinorFunction == IRP_MN_REMOVE_DEVICE) {
        record(g.Removes, &g.RemoveCount, DeviceObject, ext->Pdo);
        return forward_remove_and_delete(DeviceObject, Irp);
    }
    return forward(ext, Irp);
}

static NTSTATUS dispatch_pnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PNP_TEST_EXT *ext = DeviceObject->DeviceExtension;
    switch (ext->Kind) {
    case KIND_CHILD_PDO:
        return child_pnp(DeviceObject, Irp);
    case KIND_BUS_FDO:
        return bus_fdo_pnp(DeviceObject, Irp);
    default:
        return filter_pnp(DeviceObject, Irp);
    }
}

static NTSTATUS add_device(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo, enum kind kind)
{
    PDEVICE_OBJECT dev;
    NTSTATUS status = IoCreateDevice(DriverObject, sizeof(PNP_TEST_EXT), NULL, FILE_DEVICE_UNKNOWN,
                                     0, FALSE, &dev);
    if (!NT_SUCCESS(status))
        return status;
    g.LiveDevices++;
    PNP_TEST_EXT *ext = dev->DeviceExtension;
    ext->Kind = kind;
    ext->Pdo = Pdo;
    ext->Lower = IoAttachDeviceToDeviceStack(dev, Pdo);
    dev->Flags &= ~DO_DEVICE_INITIALIZING;
    record(g.Adds, &g.AddCount, dev, Pdo);
    return STATUS_SUCCESS;
}

static NTSTATUS generic_add_device(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    return add_device(DriverObject, Pdo, KIND_FILTER);
}

static NTSTATUS bus_add_device(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    g.BusPdo = Pdo;
    return add_device(DriverObject, Pdo, KIND_BUS_FDO);
}

static NTSTATUS failing_add_device(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
    return STATUS_INSUFFICIENT_RESOURCES;
}

static void bus_unload(PDRIVER_OBJECT DriverObject)
{
    /* runs inside ExDestroyExecutive after the tree is gone and the threads stopped */
    g.Unloaded = TRUE;
    ExQueryCounters(DriverObject->Executive, &g.AtUnload);
}

static NTSTATUS bus_entry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    DriverObject->DriverExtension->AddDevice = bus_add_device;
    DriverObject->DriverUnload = bus_unload;
    DriverObject->MajorFunction[IRP_MJ_PNP] = dispatch_pnp;
    return STATUS_SUCCESS;
}

static NTSTATUS generic_entry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    DriverObject->DriverExtension->AddDevice = generic_add_device;
    DriverObject->MajorFunction[IRP_MJ_PNP] = dispatch_pnp;
    return STATUS_SUCCESS;
}

static NTSTATUS failing_entry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    DriverObject->DriverExtension->AddDevice = failing_add_device;
    DriverObject->MajorFunction[IRP_MJ_PNP] = dispatch_pnp;
    return STATUS_SUCCESS;
}

static const char bus_inf[] = "[Version]\n"
                              "Class = System\n"
                              "ClassGuid = {4d36e97d-e325-11ce-bfc1-08002be10318}\n"
                              "[Models]\n"
                              "Test bus = TestBus_Install, ROOT\\TESTBUS\n"
                              "[TestBus_Install.Services]\n"
                              "AddService = testbus,0x2,TestBus_Service\n";

static const char func_inf[] = "[Version]\n"
                               "Class = TestClass\n"
                               "ClassGuid = " TEST_CLASS_GUID "\n"
                               "[Models]\n"
                               "Test function = Func_Install, TESTBUS\\COMPAT_FUNC\n";

static const char hw_inf[] = "[Version]\nClass = TestClass\n[Models]\n"
                             "By hardware ID = Hw_Install, TESTBUS\\HW_SECOND\n";
static const char compat_inf[] = "[Version]\nClass = TestClass\n[Models]\n"
                                 "By compatible ID = Compat_Install, TESTBUS\\HW_FIRST_COMPAT\n";
static const char fail_inf[] = "[Version]\nClass = TestClass\n[Models]\n"
                               "Failing = Fail_Install, TESTBUS\\FAIL, ROOT\\FAILDEV\n";

static PEXECUTIVE boot(PCSTR config, NTSTATUS expected_start)
{
    PEXECUTIVE ex;
    char error[256] = "";
    static const char *const filters[] = {"lowdev", "lowdev2", "lowclass", "updev", "upclass"};
    assert_int_equal(ExCreateExecutive(&ex), STATUS_SUCCESS);
    DRIVER_PACKAGE bus = {"testbus", bus_entry, bus_inf};
    DRIVER_PACKAGE func = {"testfunc", generic_entry, func_inf};
    DRIVER_PACKAGE compat = {"compatdrv", generic_entry, compat_inf};
    DRIVER_PACKAGE hw = {"hwdrv", generic_entry, hw_inf};
    DRIVER_PACKAGE fail = {"faildrv", failing_entry, fail_inf};
    assert_int_equal(IoRegisterDriverPackage(ex, &bus), STATUS_SUCCESS);
    assert_int_equal(IoRegisterDriverPackage(ex, &func), STATUS_SUCCESS);
    /* compatdrv is registered first, so store order cannot be what picks hwdrv */
    assert_int_equal(IoRegisterDriverPackage(ex, &compat), STATUS_SUCCESS);
    assert_int_equal(IoRegisterDriverPackage(ex, &hw), STATUS_SUCCESS);
    assert_int_equal(IoRegisterDriverPackage(ex, &fail), STATUS_SUCCESS);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        DRIVER_PACKAGE f = {filters[i], generic_entry, NULL};
        assert_int_equal(IoRegisterDriverPackage(ex, &f), STATUS_SUCCESS);
    }
    if (!NT_SUCCESS(CmLoadIniText(ex, config, "pnp-test.ini", error, sizeof(error))))
        fail_msg("config: %s", error);
    error[0] = 0;
    NTSTATUS status = PnpStartSystem(ex, error, sizeof(error));
    if (status != expected_start)
        fail_msg("PnpStartSystem: 0x%08X (%s)", (unsigned)status, error);
    return ex;
}

/* Destroys the executive and checks everything went: devnodes, devices, IRPs. */
static void shutdown_and_check(PEXECUTIVE ex)
{
    ExDestroyExecutive(ex);
    assert_true(g.Unloaded);
    assert_int_equal(g.AtUnload.DevNodes, 0);
    assert_int_equal(g.AtUnload.Devices, 0);
    assert_int_equal(g.AtUnload.Irps, 0);
    assert_int_equal(g.LiveDevices, 0);
}

static const char base_config[] = "[Enum\\Root\\TESTBUS\\0000]\n"
                                  "HardwareID = multi:ROOT\\TESTBUS\n";

static void add_child(PCSTR device_id, PCSTR instance, PCSTR hw, PCSTR compat)
{
    g.Children[g.ChildCount++] = (struct child){device_id, instance, hw, compat, TRUE, NULL, 0};
}

static int setup(void **state)
{
    memset(&g, 0, sizeof(g));
    return 0;
}

/* Services added for one PDO, in order, joined with ','. */
static void adds_for(PDEVICE_OBJECT pdo, char *out, size_t len)
{
    out[0] = 0;
    for (int i = 0; i < g.AddCount; i++) {
        if (g.Adds[i].Pdo != pdo)
            continue;
        if (out[0])
            strncat(out, ",", len - strlen(out) - 1);
        strncat(out, g.Adds[i].Service, len - strlen(out) - 1);
    }
}

/* The drivers of a PDO's stack, bottom up, joined with ','. */
static void stack_of(PDEVICE_OBJECT pdo, char *out, size_t len)
{
    out[0] = 0;
    for (PDEVICE_OBJECT d = pdo; d; d = d->AttachedDevice) {
        if (out[0])
            strncat(out, ",", len - strlen(out) - 1);
        strncat(out, service_of(d), len - strlen(out) - 1);
    }
}

/* Minimal JSON shape check: strings closed, braces and brackets balanced and properly nested. */
static void assert_json_well_formed(PCSTR json)
{
    char stack[256];
    int depth = 0;
    BOOLEAN in_string = FALSE;
    for (PCSTR p = json; *p; p++) {
        if (in_string) {
            if (*p == '\\') {
                assert_true(p[1] != 0);
                p++;
            } else if (*p == '"') {
                in_string = FALSE;
            } else {
                assert_true((unsigned char)*p >= 0x20);
            }
            continue;
        }
        switch (*p) {
        case '"':
            in_string = TRUE;
            break;
        case '{':
        case '[':
            assert_true(depth < 256);
            stack[depth++] = *p;
            break;
        case '}':
            assert_true(depth > 0 && stack[depth - 1] == '{');
            depth--;
            break;
        case ']':
            assert_true(depth > 0 && stack[depth - 1] == '[');
            depth--;
            break;
        default:
            break;
        }
    }
    assert_false(in_string);
    assert_int_equal(depth, 0);
}

/* The JSON object of the node with this instance path (JSON-escaped), up to its "stack". */
static PCSTR node_json(PCSTR json, PCSTR escaped_path)
{
    char key[300];
    snprintf(key, sizeof(key), "\"instance_path\":\"%s\"", escaped_path);
    return strstr(json, key);
}

static void assert_node_state(PCSTR json, PCSTR escaped_path, PCSTR state)
{
    PCSTR node = node_json(json, escaped_path);
    char expected[64];
    if (!node)
        fail_msg("node %s not in tree: %s", escaped_path, json);
    PCSTR s = strstr(node, "\"state\":\"");
    assert_non_null(s);
    snprintf(expected, sizeof(expected), "\"state\":\"%s\"", state);
    if (strncmp(s, expected, strlen(expected)))
        fail_msg("node %s: %.40s, expected %s", escaped_path, s, expected);
}

/* ---- Stack building ------------------------------------------------------------------------ */

static const char filter_config[] = "[Enum\\Root\\TESTBUS\\0000]\n"
                                    "HardwareID = multi:ROOT\\TESTBUS\n"
                                    "[Enum\\TESTBUS\\DEV_A\\1]\n"
                                    "LowerFilters = multi:lowdev,lowdev2\n"
                                    "UpperFilters = multi:updev\n"
                                    "[Control\\Class\\" TEST_CLASS_GUID "]\n"
                                    "LowerFilters = multi:lowclass\n"
                                    "UpperFilters = multi:upclass\n";

static void test_filters_attach_in_windows_order_device_then_class(void **state)
{
    char order[256];
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot(filter_config, STATUS_SUCCESS);
    PDEVICE_OBJECT pdo = g.Children[0].Pdo;
    assert_non_null(pdo);
    adds_for(pdo, order, sizeof(order));
    assert_string_equal(order, "lowdev,lowdev2,lowclass,testfunc,updev,upclass");
    stack_of(pdo, order, sizeof(order));
    assert_string_equal(order, "testbus,lowdev,lowdev2,lowclass,testfunc,updev,upclass");
    /* the bus's own stack: the root PDO and the bus FDO */
    stack_of(g.BusPdo, order, sizeof(order));
    assert_string_equal(order, "PnpManager,testbus");

    char *json = PnpTreeToJson(ex);
    assert_non_null(json);
    assert_json_well_formed(json);
    assert_node_state(json, "TESTBUS\\\\DEV_A\\\\1", "started");
    PCSTR node = node_json(json, "TESTBUS\\\\DEV_A\\\\1");
    assert_non_null(strstr(node, "\"service\":\"testfunc\""));
    assert_non_null(
        strstr(node, "{\"driver\":\"upclass\",\"device\":\"\",\"role\":\"UpperFilter\"}"));
    assert_non_null(strstr(node, "{\"driver\":\"testfunc\",\"device\":\"\",\"role\":\"FDO\"}"));
    assert_non_null(
        strstr(node, "{\"driver\":\"lowdev\",\"device\":\"\",\"role\":\"LowerFilter\"}"));
    assert_non_null(strstr(node, "{\"driver\":\"testbus\",\"device\":\"\",\"role\":\"PDO\"}"));
    free(json);
    shutdown_and_check(ex);
}

static void test_class_filters_found_by_class_name_when_guid_key_has_none(void **state)
{
    char order[256];
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot("[Enum\\Root\\TESTBUS\\0000]\nHardwareID = multi:ROOT\\TESTBUS\n"
                         "[Control\\Class\\TestClass]\nUpperFilters = multi:upclass\n",
                         STATUS_SUCCESS);
    adds_for(g.Children[0].Pdo, order, sizeof(order));
    assert_string_equal(order, "testfunc,upclass");
    shutdown_and_check(ex);
}

static void test_hardware_ids_match_before_compatible_ids(void **state)
{
    char order[256];
    /* the first hardware ID matches nothing; the second matches hwdrv; a compatible ID matches
     * compatdrv, which must lose */
    add_child("TESTBUS\\DEV_H", "7", "TESTBUS\\HW_FIRST\0TESTBUS\\HW_SECOND\0",
              "TESTBUS\\HW_FIRST_COMPAT\0TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot(base_config, STATUS_SUCCESS);
    stack_of(g.Children[0].Pdo, order, sizeof(order));
    assert_string_equal(order, "testbus,hwdrv");
    char *json = PnpTreeToJson(ex);
    PCSTR node = node_json(json, "TESTBUS\\\\DEV_H\\\\7");
    assert_non_null(node);
    assert_non_null(
        strstr(node, "\"hardware_ids\":[\"TESTBUS\\\\HW_FIRST\",\"TESTBUS\\\\HW_SECOND\"]"));
    assert_non_null(strstr(node, "\"service\":\"hwdrv\""));
    free(json);
    shutdown_and_check(ex);
}

static void test_compatible_id_in_order_picks_the_driver(void **state)
{
    char order[256];
    add_child("TESTBUS\\DEV_C", "1", "TESTBUS\\NOTHING\0",
              "TESTBUS\\HW_FIRST_COMPAT\0TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot(base_config, STATUS_SUCCESS);
    stack_of(g.Children[0].Pdo, order, sizeof(order));
    assert_string_equal(order, "testbus,compatdrv");
    shutdown_and_check(ex);
}

/* ---- Devices that do not start ------------------------------------------------------------- */

static void test_child_without_driver_stays_stopped_and_others_start(void **state)
{
    add_child("TESTBUS\\ORPHAN", "1", "TESTBUS\\NO_SUCH_ID\0", NULL);
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot(base_config, STATUS_SUCCESS);
    char *json = PnpTreeToJson(ex);
    assert_json_well_formed(json);
    assert_node_state(json, "TESTBUS\\\\ORPHAN\\\\1", "stopped");
    assert_node_state(json, "TESTBUS\\\\DEV_A\\\\1", "started");
    assert_node_state(json, "ROOT\\\\TESTBUS\\\\0000", "started");
    /* nothing attached to the orphan */
    assert_null(g.Children[0].Pdo->AttachedDevice);
    free(json);
    shutdown_and_check(ex);
}

static void test_root_device_without_driver_does_not_fail_the_system(void **state)
{
    PEXECUTIVE ex = boot("[Enum\\Root\\NODRIVER\\0000]\nHardwareID = multi:ROOT\\NODRIVER\n"
                         "[Enum\\Root\\TESTBUS\\0000]\nHardwareID = multi:ROOT\\TESTBUS\n",
                         STATUS_SUCCESS);
    char *json = PnpTreeToJson(ex);
    assert_json_well_formed(json);
    assert_node_state(json, "ROOT\\\\NODRIVER\\\\0000", "stopped");
    assert_node_state(json, "ROOT\\\\TESTBUS\\\\0000", "started");
    free(json);
    shutdown_and_check(ex);
}

static void test_failing_add_device_leaves_devnode_failed_and_tears_down_filters(void **state)
{
    add_child("TESTBUS\\DEV_F", "1", "TESTBUS\\FAIL\0", NULL);
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot("[Enum\\Root\\TESTBUS\\0000]\nHardwareID = multi:ROOT\\TESTBUS\n"
                         "[Enum\\TESTBUS\\DEV_F\\1]\nLowerFilters = multi:lowdev\n",
                         STATUS_SUCCESS);
    PDEVICE_OBJECT pdo = g.Children[0].Pdo;
    char *json = PnpTreeToJson(ex);
    assert_json_well_formed(json);
    assert_node_state(json, "TESTBUS\\\\DEV_F\\\\1", "failed");
    assert_node_state(json, "TESTBUS\\\\DEV_A\\\\1", "started");
    free(json);
    /* the lower filter that attached before the failure was removed again */
    assert_non_null(pdo);
    assert_null(pdo->AttachedDevice);
    int lowdev_removed = 0;
    for (int i = 0; i < g.RemoveCount; i++)
        if (g.Removes[i].Pdo == pdo && !strcmp(g.Removes[i].Service, "lowdev"))
            lowdev_removed++;
    assert_int_equal(lowdev_removed, 1);
    shutdown_and_check(ex);
}

static void test_root_device_whose_add_device_fails_fails_start_with_message(void **state)
{
    char error[256] = "";
    PEXECUTIVE ex;
    assert_int_equal(ExCreateExecutive(&ex), STATUS_SUCCESS);
    DRIVER_PACKAGE fail = {"faildrv", failing_entry, fail_inf};
    DRIVER_PACKAGE bus = {"testbus", bus_entry, bus_inf};
    assert_int_equal(IoRegisterDriverPackage(ex, &fail), STATUS_SUCCESS);
    assert_int_equal(IoRegisterDriverPackage(ex, &bus), STATUS_SUCCESS);
    assert_int_equal(
        CmLoadIniText(ex,
                      "[Enum\\Root\\FAILDEV\\0000]\nHardwareID = multi:ROOT\\FAILDEV\n"
                      "[Enum\\Root\\TESTBUS\\0000]\nHardwareID = multi:ROOT\\TESTBUS\n",
                      "t", NULL, 0),
        STATUS_SUCCESS);
    assert_int_equal(PnpStartSystem(ex, error, sizeof(error)), STATUS_UNSUCCESSFUL);
    assert_non_null(strstr(error, "ROOT\\FAILDEV\\0000"));
    assert_non_null(strstr(error, "faildrv"));
    char *json = PnpTreeToJson(ex);
    assert_node_state(json, "ROOT\\\\FAILDEV\\\\0000", "failed");
    assert_node_state(json, "ROOT\\\\TESTBUS\\\\0000", "started");
    free(json);
    shutdown_and_check(ex);
}

/* ---- Re-enumeration ------------------------------------------------------------------------ */

static void test_invalidate_relations_adds_new_child_and_removes_vanished_one(void **state)
{
    char order[256];
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    add_child("TESTBUS\\DEV_B", "2", "TESTBUS\\DEV_B_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    g.Children[1].Present = FALSE;
    PEXECUTIVE ex = boot(base_config, STATUS_SUCCESS);
    PDEVICE_OBJECT old_pdo = g.Children[0].Pdo;
    EXECUTIVE_COUNTERS c;
    assert_non_null(old_pdo);
    assert_null(g.Children[1].Pdo);
    ExQueryCounters(ex, &c);
    assert_int_equal(c.DevNodes, 3); /* root, bus, A */

    /* A goes away, B arrives */
    g.Children[0].Present = FALSE;
    g.Children[1].Present = TRUE;
    IoInvalidateDeviceRelations(g.BusPdo, BusRelations);
    IoSynchronizeDeviceRelations(ex);

    assert_int_equal(g.Children[0].Removes, 1);
    assert_null(g.Children[0].Pdo); /* the bus deleted it on REMOVE */
    int func_removed = 0;
    for (int i = 0; i < g.RemoveCount; i++)
        if (g.Removes[i].Pdo == old_pdo && !strcmp(g.Removes[i].Service, "testfunc"))
            func_removed++;
    assert_int_equal(func_removed, 1); /* the whole stack saw the REMOVE, top first */
    assert_non_null(g.Children[1].Pdo);
    stack_of(g.Children[1].Pdo, order, sizeof(order));
    assert_string_equal(order, "testbus,testfunc");

    char *json = PnpTreeToJson(ex);
    assert_json_well_formed(json);
    assert_null(node_json(json, "TESTBUS\\\\DEV_A\\\\1"));
    assert_node_state(json, "TESTBUS\\\\DEV_B\\\\2", "started");
    free(json);
    ExQueryCounters(ex, &c);
    assert_int_equal(c.DevNodes, 3); /* root, bus, B */

    /* an unchanged bus re-enumerates to the same tree */
    IoInvalidateDeviceRelations(g.BusPdo, BusRelations);
    IoSynchronizeDeviceRelations(ex);
    ExQueryCounters(ex, &c);
    assert_int_equal(c.DevNodes, 3);
    assert_int_equal(g.Children[1].Removes, 0);
    shutdown_and_check(ex);
}

static void test_device_properties_come_from_the_devnode(void **state)
{
    char buf[256];
    ULONG len = 0;
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0TESTBUS\\DEV_A_HW2\0",
              "TESTBUS\\COMPAT_FUNC\0");
    PEXECUTIVE ex = boot(base_config, STATUS_SUCCESS);
    PDEVICE_OBJECT pdo = g.Children[0].Pdo;
    assert_int_equal(IoGetDeviceProperty(pdo, DevicePropertyHardwareID, sizeof(buf), buf, &len),
                     STATUS_SUCCESS);
    assert_int_equal(len, sizeof("TESTBUS\\DEV_A_HW\0TESTBUS\\DEV_A_HW2\0"));
    assert_memory_equal(buf, "TESTBUS\\DEV_A_HW\0TESTBUS\\DEV_A_HW2\0\0", len);
    assert_int_equal(IoGetDeviceProperty(pdo, DevicePropertyHardwareID, 4, buf, &len),
                     STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(IoGetDeviceProperty(pdo, DevicePropertyClassName, sizeof(buf), buf, &len),
                     STATUS_SUCCESS);
    assert_string_equal(buf, "TestClass");
    assert_int_equal(IoGetDeviceRegistryKeyPath(pdo, PLUGPLAY_REGKEY_DEVICE, buf, sizeof(buf)),
                     STATUS_SUCCESS);
    assert_string_equal(buf, "Enum\\TESTBUS\\DEV_A\\1\\Device Parameters");
    /* the PnP manager recorded the service in the device key */
    assert_int_equal(
        RtlQueryRegistryString(ex, "Enum\\TESTBUS\\DEV_A\\1", "Service", buf, sizeof(buf)),
        STATUS_SUCCESS);
    assert_string_equal(buf, "testfunc");
    shutdown_and_check(ex);
}

/* ---- Driver store -------------------------------------------------------------------------- */

static void test_manifest_adding_another_service_is_rejected(void **state)
{
    PEXECUTIVE ex;
    assert_int_equal(ExCreateExecutive(&ex), STATUS_SUCCESS);
    DRIVER_PACKAGE bad = {"svc_a", generic_entry,
                          "[Models]\nX = Inst, TEST\\X\n[Inst.Services]\n"
                          "AddService = svc_b,0x2,Svc\n"};
    assert_int_equal(IoRegisterDriverPackage(ex, &bad), STATUS_INVALID_PARAMETER);
    /* a prefix of the name is another name too */
    DRIVER_PACKAGE prefix = {"svc_a", generic_entry, "[Inst.Services]\nAddService = svc,0x2,Svc\n"};
    assert_int_equal(IoRegisterDriverPackage(ex, &prefix), STATUS_INVALID_PARAMETER);
    DRIVER_PACKAGE good = {"svc_a", generic_entry,
                           "[Models]\nX = Inst, TEST\\X\n[Inst.Services]\n"
                           "AddService = SVC_A,0x2,Svc\n"};
    assert_int_equal(IoRegisterDriverPackage(ex, &good), STATUS_SUCCESS);
    DRIVER_PACKAGE no_id = {"svc_c", generic_entry, "[Models]\nX = Inst\n"};
    assert_int_equal(IoRegisterDriverPackage(ex, &no_id), STATUS_INVALID_PARAMETER);
    ExDestroyExecutive(ex);
}

static void test_registering_a_service_twice_is_a_name_collision(void **state)
{
    PEXECUTIVE ex;
    assert_int_equal(ExCreateExecutive(&ex), STATUS_SUCCESS);
    DRIVER_PACKAGE a = {"dup", generic_entry, NULL};
    DRIVER_PACKAGE b = {"DUP", generic_entry, "[Models]\nY = Inst, TEST\\Y\n"};
    assert_int_equal(IoRegisterDriverPackage(ex, &a), STATUS_SUCCESS);
    assert_int_equal(IoRegisterDriverPackage(ex, &a), STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(IoRegisterDriverPackage(ex, &b), STATUS_OBJECT_NAME_COLLISION);
    ExDestroyExecutive(ex);
}

static void test_destroy_removes_every_devnode_and_device(void **state)
{
    add_child("TESTBUS\\DEV_A", "1", "TESTBUS\\DEV_A_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    add_child("TESTBUS\\DEV_B", "2", "TESTBUS\\DEV_B_HW\0", "TESTBUS\\COMPAT_FUNC\0");
    add_child("TESTBUS\\ORPHAN", "3", "TESTBUS\\NO_SUCH_ID\0", NULL);
    PEXECUTIVE ex = boot(filter_config, STATUS_SUCCESS);
    EXECUTIVE_COUNTERS c;
    ExQueryCounters(ex, &c);
    assert_int_equal(c.DevNodes, 5); /* root, bus, A, B, orphan */
    assert_true(c.Devices >= 3 + 8); /* PDOs and the stacks over them */
    assert_int_equal(c.Irps, 0);
    int children_before = g.Children[0].Removes + g.Children[1].Removes;
    assert_int_equal(children_before, 0);
    shutdown_and_check(ex);
    /* every child PDO saw its REMOVE before the bus went */
    assert_int_equal(g.Children[0].Removes, 1);
    assert_int_equal(g.Children[1].Removes, 1);
    assert_int_equal(g.Children[2].Removes, 1);
    /* the bus FDO's REMOVE came after its children's */
    int bus_at = -1, last_child_at = -1;
    for (int i = 0; i < g.RemoveCount; i++) {
        if (!strcmp(g.Removes[i].Service, "testbus") && g.Removes[i].Pdo == g.BusPdo)
            bus_at = i;
        else if (!strcmp(g.Removes[i].Service, "testbus"))
            last_child_at = i;
    }
    assert_true(bus_at > last_child_at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, setup)
        T(test_filters_attach_in_windows_order_device_then_class),
        T(test_class_filters_found_by_class_name_when_guid_key_has_none),
        T(test_hardware_ids_match_before_compatible_ids),
        T(test_compatible_id_in_order_picks_the_driver),
        T(test_child_without_driver_stays_stopped_and_others_start),
        T(test_root_device_without_driver_does_not_fail_the_system),
        T(test_failing_add_device_leaves_devnode_failed_and_tears_down_filters),
        T(test_root_device_whose_add_device_fails_fails_start_with_message),
        T(test_invalidate_relations_adds_new_child_and_removes_vanished_one),
        T(test_device_properties_come_from_the_devnode),
        T(test_manifest_adding_another_service_is_rejected),
        T(test_registering_a_service_twice_is_a_name_collision),
        T(test_destroy_removes_every_devnode_and_device),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
