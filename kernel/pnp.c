/*
 * The PnP manager: the driver store (packages with INF-shaped manifests), the devnode tree, and
 * the work of turning a reported PDO into a running device stack — query its IDs, match them to
 * a service through the manifests (hardware IDs first, in order, then compatible IDs), load the
 * driver (DriverEntry once), call AddDevice for lower filters, the function driver and upper
 * filters as the registry lists them (device key, then class key), send IRP_MN_START_DEVICE, and
 * query bus relations to find children. Devices a bus stops reporting are removed with
 * IRP_MN_REMOVE_DEVICE. Tree changes are serialised by PnpLock and run on worker threads when
 * drivers ask for them (IoInvalidateDeviceRelations).
 */
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel/executive_p.h"

/* ---- Driver store -------------------------------------------------------------------------- */

struct PnpInfContext {
    PPNP_PACKAGE Package;
    char Error[160];
};

static int PnpInfHandler(void *user, const char *section, const char *name, const char *value)
{
    struct PnpInfContext *ctx = user;
    PPNP_PACKAGE pkg = ctx->Package;

    if (!name)
        return 1;
    if (!strcasecmp(section, "Version")) {
        if (!strcasecmp(name, "Class"))
            snprintf(pkg->ClassName, sizeof(pkg->ClassName), "%s", value);
        else if (!strcasecmp(name, "ClassGuid"))
            snprintf(pkg->ClassGuid, sizeof(pkg->ClassGuid), "%s", value);
        return 1;
    }
    if (!strcasecmp(section, "Models")) {
        /* Description = InstallSection, ID[, ID...] */
        const char *p = strchr(value, ',');
        if (!p) {
            snprintf(ctx->Error, sizeof(ctx->Error), "[Models] '%s' names no hardware ID", name);
            return 0;
        }
        while (p && *p) {
            char id[128];
            size_t n;
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            n = strcspn(p, ",");
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == 0 || n >= sizeof(id)) {
                snprintf(ctx->Error, sizeof(ctx->Error), "[Models] '%s' has a bad ID", name);
                return 0;
            }
            memcpy(id, p, n);
            id[n] = 0;
            void *ids = realloc(pkg->Ids, (pkg->IdCount + 1) * sizeof(*pkg->Ids));
            if (!ids)
                return 0;
            pkg->Ids = ids;
            void *descs =
                realloc(pkg->Descriptions, (pkg->IdCount + 1) * sizeof(*pkg->Descriptions));
            if (!descs)
                return 0;
            pkg->Descriptions = descs;
            snprintf(pkg->Ids[pkg->IdCount], sizeof(pkg->Ids[0]), "%s", id);
            snprintf(pkg->Descriptions[pkg->IdCount], sizeof(pkg->Descriptions[0]), "%s", name);
            pkg->IdCount++;
            p = strchr(p, ',');
        }
        return 1;
    }
    if (strlen(section) > 9 && !strcasecmp(section + strlen(section) - 9, ".Services") &&
        !strcasecmp(name, "AddService")) {
        size_t n = strcspn(value, ", ");
        if (n != strlen(pkg->Package.ServiceName) ||
            strncasecmp(value, pkg->Package.ServiceName, n)) {
            snprintf(ctx->Error, sizeof(ctx->Error), "AddService names '%.*s', not '%s'", (int)n,
                     value, pkg->Package.ServiceName);
            return 0;
        }
    }
    return 1;
}

NTSTATUS IoRegisterDriverPackage(PEXECUTIVE Executive, const DRIVER_PACKAGE *Package)
{
    struct PnpInfContext ctx = {0};
    PPNP_PACKAGE pkg = calloc(1, sizeof(*pkg));
    int line;

    if (!pkg)
        return STATUS_INSUFFICIENT_RESOURCES;
    pkg->Package = *Package;
    ctx.Package = pkg;
    line = Package->InfText ? ini_parse_string(Package->InfText, PnpInfHandler, &ctx) : 0;
    if (line != 0) {
        DbgPrint("pnp: manifest of %s: line %d: %s\n", Package->ServiceName, line, ctx.Error);
        free(pkg->Ids);
        free(pkg->Descriptions);
        free(pkg);
        return STATUS_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&Executive->Lock);
    for (PPNP_PACKAGE p = Executive->Packages; p; p = p->Next) {
        if (!strcasecmp(p->Package.ServiceName, Package->ServiceName)) {
            pthread_mutex_unlock(&Executive->Lock);
            free(pkg->Ids);
            free(pkg->Descriptions);
            free(pkg);
            return STATUS_OBJECT_NAME_COLLISION;
        }
    }
    pkg->Next = Executive->Packages;
    Executive->Packages = pkg;
    pthread_mutex_unlock(&Executive->Lock);
    return STATUS_SUCCESS;
}

void PnpFreePackages(PEXECUTIVE ex)
{
    while (ex->Packages) {
        PPNP_PACKAGE p = ex->Packages;
        ex->Packages = p->Next;
        free(p->Ids);
        free(p->Descriptions);
        free(p);
    }
}

static PPNP_PACKAGE PnpFindPackage(PEXECUTIVE ex, PCSTR service)
{
    for (PPNP_PACKAGE p = ex->Packages; p; p = p->Next)
        if (!strcasecmp(p->Package.ServiceName, service))
            return p;
    return NULL;
}

static NTSTATUS PnpInvalidRequest(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    Irp->IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_INVALID_DEVICE_REQUEST;
}

static PDRIVER_OBJECT PnpNewDriverObject(PEXECUTIVE ex, PCSTR service)
{
    PDRIVER_OBJECT drv = calloc(1, sizeof(*drv));
    if (!drv)
        return NULL;
    drv->Type = IO_TYPE_DRIVER;
    drv->Size = sizeof(*drv);
    drv->Executive = ex;
    drv->DriverExtension = &drv->ExtensionStorage;
    drv->ExtensionStorage.DriverObject = drv;
    drv->ExtensionStorage.ServiceKeyName = drv->DriverName + 8;
    snprintf(drv->DriverName, sizeof(drv->DriverName), "\\Driver\\%s", service);
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        drv->MajorFunction[i] = PnpInvalidRequest;
    return drv;
}

/* Loads a service's driver once: DriverEntry with its service key path. */
static NTSTATUS PnpLoadDriver(PEXECUTIVE ex, PCSTR service, PDRIVER_OBJECT *out)
{
    PPNP_PACKAGE pkg = PnpFindPackage(ex, service);
    char key[128];
    NTSTATUS status;

    if (!pkg)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    if (pkg->DriverObject) {
        *out = pkg->DriverObject;
        return STATUS_SUCCESS;
    }
    pkg->DriverObject = PnpNewDriverObject(ex, pkg->Package.ServiceName);
    if (!pkg->DriverObject)
        return STATUS_INSUFFICIENT_RESOURCES;
    snprintf(key, sizeof(key), "Services\\%s", pkg->Package.ServiceName);
    CmCreateKey(ex, key);
    pkg->DriverObject->DriverInit = pkg->Package.DriverEntry;
    status = pkg->Package.DriverEntry(pkg->DriverObject, key);
    if (!NT_SUCCESS(status)) {
        free(pkg->DriverObject);
        pkg->DriverObject = NULL;
        return status;
    }
    *out = pkg->DriverObject;
    return STATUS_SUCCESS;
}

/* ---- Devnodes ------------------------------------------------------------------------------ */

static PDEVICE_NODE PnpNewDevnode(PEXECUTIVE ex, PDEVICE_NODE parent, PDEVICE_OBJECT pdo)
{
    PDEVICE_NODE dn = calloc(1, sizeof(*dn));
    if (!dn)
        return NULL;
    dn->Parent = parent;
    dn->PhysicalDeviceObject = pdo;
    dn->State = DevnodeStopped;
    if (pdo) {
        ObReferenceObject(pdo);
        pdo->DeviceObjectExtension.DeviceNode = dn;
    }
    if (parent) {
        PDEVICE_NODE *pp = &parent->Child;
        while (*pp)
            pp = &(*pp)->Sibling;
        *pp = dn;
    }
    atomic_fetch_add(&ex->DevNodeCount, 1);
    return dn;
}

static void PnpFreeDevnode(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    if (dn->Parent) {
        for (PDEVICE_NODE *pp = &dn->Parent->Child; *pp; pp = &(*pp)->Sibling) {
            if (*pp == dn) {
                *pp = dn->Sibling;
                break;
            }
        }
    }
    if (dn->PhysicalDeviceObject) {
        dn->PhysicalDeviceObject->DeviceObjectExtension.DeviceNode = NULL;
        ObDereferenceObject(dn->PhysicalDeviceObject);
    }
    atomic_fetch_sub(&ex->DevNodeCount, 1);
    free(dn);
}

/* Sends a PnP IRP to the top of a devnode's stack and waits for it. */
static NTSTATUS PnpSendIrp(PDEVICE_NODE dn, UCHAR minor, PIO_STACK_LOCATION params,
                           ULONG_PTR *information)
{
    PDEVICE_OBJECT top = IoGetAttachedDeviceReference(dn->PhysicalDeviceObject);
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    PIRP irp;
    PIO_STACK_LOCATION sp;
    NTSTATUS status;

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp = IoBuildSynchronousFsdRequest(IRP_MJ_PNP, top, NULL, 0, NULL, &event, &iosb);
    if (!irp) {
        ObDereferenceObject(top);
        KeDeleteEvent(&event);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    irp->IoStatus.Status = STATUS_NOT_SUPPORTED; /* what a PnP IRP nobody handles returns */
    sp = IoGetNextIrpStackLocation(irp);
    if (params)
        sp->Parameters = params->Parameters;
    sp->MajorFunction = IRP_MJ_PNP;
    sp->MinorFunction = minor;
    IoCallDriver(top, irp);
    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    status = iosb.Status;
    if (information)
        *information = iosb.Information;
    KeDeleteEvent(&event);
    ObDereferenceObject(top);
    return status;
}

/* Copies a multi-sz (or a plain string) returned by a bus driver into a fixed buffer. */
static void PnpCopyMultiSz(char *dst, size_t len, PCSTR src, BOOLEAN multi)
{
    size_t n = 0;
    memset(dst, 0, len);
    if (!src)
        return;
    if (!multi) {
        snprintf(dst, len, "%s", src);
        return;
    }
    while (src[n] && n + 2 < len) {
        size_t l = strlen(src + n);
        if (n + l + 2 > len)
            break;
        memcpy(dst + n, src + n, l + 1);
        n += l + 1;
    }
}

static NTSTATUS PnpQueryId(PDEVICE_NODE dn, BUS_QUERY_ID_TYPE type, char *dst, size_t len)
{
    IO_STACK_LOCATION params = {0};
    ULONG_PTR info = 0;
    NTSTATUS status;
    params.Parameters.QueryId.IdType = type;
    status = PnpSendIrp(dn, IRP_MN_QUERY_ID, &params, &info);
    if (NT_SUCCESS(status) && info) {
        PnpCopyMultiSz(dst, len, (PCSTR)info,
                       type == BusQueryHardwareIDs || type == BusQueryCompatibleIDs);
        ExFreePool((PVOID)info);
    } else {
        memset(dst, 0, len);
    }
    return status;
}

static void PnpQueryText(PDEVICE_NODE dn, DEVICE_TEXT_TYPE type, char *dst, size_t len)
{
    IO_STACK_LOCATION params = {0};
    ULONG_PTR info = 0;
    params.Parameters.QueryDeviceText.DeviceTextType = type;
    if (NT_SUCCESS(PnpSendIrp(dn, IRP_MN_QUERY_DEVICE_TEXT, &params, &info)) && info) {
        snprintf(dst, len, "%s", (PCSTR)info);
        ExFreePool((PVOID)info);
    }
}

/* Matches hardware IDs (in order), then compatible IDs, against the driver store. */
static PPNP_PACKAGE PnpMatchDriver(PEXECUTIVE ex, PDEVICE_NODE dn, PCSTR *description)
{
    PCSTR lists[2] = {dn->HardwareIds, dn->CompatibleIds};
    for (int l = 0; l < 2; l++) {
        for (PCSTR id = lists[l]; *id; id += strlen(id) + 1) {
            for (PPNP_PACKAGE p = ex->Packages; p; p = p->Next) {
                for (ULONG i = 0; i < p->IdCount; i++) {
                    if (!strcasecmp(p->Ids[i], id)) {
                        *description = p->Descriptions[i];
                        return p;
                    }
                }
            }
        }
    }
    return NULL;
}

/* Reads a filter list (REG_MULTI_SZ) into names[]. */
static ULONG PnpReadFilters(PEXECUTIVE ex, PCSTR key, PCSTR value, char names[][64], ULONG max)
{
    char buf[512];
    ULONG type, len, count = 0;
    if (!NT_SUCCESS(CmQueryValue(ex, key, value, &type, buf, sizeof(buf) - 2, &len)))
        return 0;
    buf[len] = buf[len + 1] = 0;
    for (char *p = buf; *p && count < max; p += strlen(p) + 1) {
        if (type == REG_SZ) { /* tolerate a comma-separated REG_SZ */
            for (char *tok = strtok(p, ", "); tok && count < max; tok = strtok(NULL, ", "))
                snprintf(names[count++], 64, "%s", tok);
            break;
        }
        snprintf(names[count++], 64, "%s", p);
    }
    return count;
}

static void PnpSetDevnodeRegistry(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    char key[300];
    size_t n;
    snprintf(key, sizeof(key), "Enum\\%s", dn->InstancePath);
    CmCreateKey(ex, key);
    for (n = 0; dn->HardwareIds[n]; n += strlen(dn->HardwareIds + n) + 1)
        ;
    CmSetValue(ex, key, "HardwareID", REG_MULTI_SZ, dn->HardwareIds, (ULONG)n + 1);
    for (n = 0; dn->CompatibleIds[n]; n += strlen(dn->CompatibleIds + n) + 1)
        ;
    CmSetValue(ex, key, "CompatibleIDs", REG_MULTI_SZ, dn->CompatibleIds, (ULONG)n + 1);
    if (dn->Description[0])
        CmSetValue(ex, key, "DeviceDesc", REG_SZ, dn->Description,
                   (ULONG)strlen(dn->Description) + 1);
}

static void PnpRemoveDevnode(PEXECUTIVE ex, PDEVICE_NODE dn);
static void PnpEnumerateDevnode(PEXECUTIVE ex, PDEVICE_NODE dn);

/* Calls AddDevice for each driver in order; then starts the stack. PnpLock held. */
static void PnpBuildAndStart(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    char key[300], classkey[128], filters[8][64], order[8 * 4 + 1][64]; /* 4 lists of 8, one FDO */
    ULONG n = 0, count;
    PPNP_PACKAGE function;
    PCSTR description = NULL;
    NTSTATUS status;

    snprintf(key, sizeof(key), "Enum\\%s", dn->InstancePath);
    /* A Service value in the devnode's key (from configuration) overrides ID matching. */
    if (NT_SUCCESS(RtlQueryRegistryString(ex, key, "Service", dn->Service, sizeof(dn->Service))) &&
        (function = PnpFindPackage(ex, dn->Service)) != NULL) {
        description = function->IdCount ? function->Descriptions[0] : NULL;
    } else {
        function = PnpMatchDriver(ex, dn, &description);
    }
    if (!function) {
        dn->Service[0] = 0;
        dn->State = DevnodeStopped;
        dn->Problem = STATUS_OBJECT_NAME_NOT_FOUND; /* CM_PROB_FAILED_INSTALL: no driver */
        if (!dn->Description[0])
            snprintf(dn->Description, sizeof(dn->Description), "Unknown device (no driver)");
        return;
    }
    snprintf(dn->Service, sizeof(dn->Service), "%s", function->Package.ServiceName);
    snprintf(dn->ClassName, sizeof(dn->ClassName), "%s", function->ClassName);
    if (description && !dn->Description[0])
        snprintf(dn->Description, sizeof(dn->Description), "%s", description);
    CmSetValue(ex, key, "Service", REG_SZ, dn->Service, (ULONG)strlen(dn->Service) + 1);
    PnpSetDevnodeRegistry(ex, dn);

    /* Windows order: device lower filters, class lower filters, function driver, device upper
     * filters, class upper filters. The class key is Control\Class\{guid} or \<ClassName>. */
    snprintf(classkey, sizeof(classkey), "Control\\Class\\%s",
             function->ClassGuid[0] ? function->ClassGuid : function->ClassName);
    count = PnpReadFilters(ex, key, "LowerFilters", filters, 8);
    for (ULONG i = 0; i < count; i++)
        snprintf(order[n++], 64, "%s", filters[i]);
    count = PnpReadFilters(ex, classkey, "LowerFilters", filters, 8);
    if (!count && function->ClassGuid[0]) {
        snprintf(classkey, sizeof(classkey), "Control\\Class\\%s", function->ClassName);
        count = PnpReadFilters(ex, classkey, "LowerFilters", filters, 8);
    }
    for (ULONG i = 0; i < count; i++)
        snprintf(order[n++], 64, "%s", filters[i]);
    snprintf(order[n++], 64, "%s", function->Package.ServiceName);
    count = PnpReadFilters(ex, key, "UpperFilters", filters, 8);
    for (ULONG i = 0; i < count; i++)
        snprintf(order[n++], 64, "%s", filters[i]);
    snprintf(classkey, sizeof(classkey), "Control\\Class\\%s",
             function->ClassGuid[0] ? function->ClassGuid : function->ClassName);
    count = PnpReadFilters(ex, classkey, "UpperFilters", filters, 8);
    if (!count && function->ClassGuid[0]) {
        snprintf(classkey, sizeof(classkey), "Control\\Class\\%s", function->ClassName);
        count = PnpReadFilters(ex, classkey, "UpperFilters", filters, 8);
    }
    for (ULONG i = 0; i < count; i++)
        snprintf(order[n++], 64, "%s", filters[i]);

    for (ULONG i = 0; i < n; i++) {
        PDRIVER_OBJECT drv;
        status = PnpLoadDriver(ex, order[i], &drv);
        if (NT_SUCCESS(status))
            status = drv->DriverExtension->AddDevice
                         ? drv->DriverExtension->AddDevice(drv, dn->PhysicalDeviceObject)
                         : STATUS_INVALID_DEVICE_REQUEST;
        if (!NT_SUCCESS(status)) {
            DbgPrint("pnp: %s: driver '%s' failed to add the device (0x%08X)\n", dn->InstancePath,
                     order[i], (unsigned)status);
            dn->Problem = status;
            dn->State = DevnodeFailed;
            if (!dn->ProblemText[0])
                snprintf(dn->ProblemText, sizeof(dn->ProblemText),
                         "driver '%s' failed to add the device (status 0x%08X)", order[i],
                         (unsigned)status);
            /* Tear down what attached so far. */
            if (dn->PhysicalDeviceObject->AttachedDevice) {
                PnpSendIrp(dn, IRP_MN_REMOVE_DEVICE, NULL, NULL);
                dn->RemoveSent = TRUE;
            }
            return;
        }
    }
    status = PnpSendIrp(dn, IRP_MN_START_DEVICE, NULL, NULL);
    if (!NT_SUCCESS(status)) {
        DbgPrint("pnp: %s: start failed (0x%08X)\n", dn->InstancePath, (unsigned)status);
        dn->Problem = status;
        dn->State = DevnodeFailed;
        PnpSendIrp(dn, IRP_MN_REMOVE_DEVICE, NULL, NULL);
        dn->RemoveSent = TRUE;
        return;
    }
    dn->State = DevnodeStarted;
    dn->Problem = STATUS_SUCCESS;
}

/* A PDO reported for the first time: identify it, build its stack, enumerate its children. */
static void PnpProcessNewDevnode(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    char device_id[200] = "", instance_id[64] = "";
    PnpQueryId(dn, BusQueryDeviceID, device_id, sizeof(device_id));
    PnpQueryId(dn, BusQueryInstanceID, instance_id, sizeof(instance_id));
    if (!device_id[0])
        snprintf(device_id, sizeof(device_id), "UNKNOWN\\DEVICE");
    snprintf(dn->InstancePath, sizeof(dn->InstancePath), "%s\\%s", device_id,
             instance_id[0] ? instance_id : "0");
    PnpQueryId(dn, BusQueryHardwareIDs, dn->HardwareIds, sizeof(dn->HardwareIds));
    PnpQueryId(dn, BusQueryCompatibleIDs, dn->CompatibleIds, sizeof(dn->CompatibleIds));
    PnpQueryText(dn, DeviceTextDescription, dn->Description, sizeof(dn->Description));
    PnpQueryText(dn, DeviceTextLocationInformation, dn->Location, sizeof(dn->Location));
    PnpBuildAndStart(ex, dn);
    if (dn->State == DevnodeStarted)
        PnpEnumerateDevnode(ex, dn);
}

/* Queries bus relations and reconciles the children. PnpLock held. */
static void PnpEnumerateDevnode(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    IO_STACK_LOCATION params = {0};
    ULONG_PTR info = 0;
    PDEVICE_RELATIONS rel;
    NTSTATUS status;

    if (dn->State != DevnodeStarted)
        return;
    params.Parameters.QueryDeviceRelations.Type = BusRelations;
    status = PnpSendIrp(dn, IRP_MN_QUERY_DEVICE_RELATIONS, &params, &info);
    rel = (PDEVICE_RELATIONS)info;
    if (!NT_SUCCESS(status) || !rel) {
        if (rel)
            ExFreePool(rel);
        return; /* not a bus: no children */
    }
    /* Removed: children whose PDO is no longer reported. */
    for (PDEVICE_NODE c = dn->Child, next; c; c = next) {
        BOOLEAN present = FALSE;
        next = c->Sibling;
        for (ULONG i = 0; i < rel->Count; i++)
            if (rel->Objects[i] == c->PhysicalDeviceObject)
                present = TRUE;
        if (!present)
            PnpRemoveDevnode(ex, c);
    }
    /* New: PDOs without a devnode. */
    for (ULONG i = 0; i < rel->Count; i++) {
        PDEVICE_OBJECT pdo = rel->Objects[i];
        if (!pdo->DeviceObjectExtension.DeviceNode) {
            PDEVICE_NODE child = PnpNewDevnode(ex, dn, pdo);
            pdo->Flags &= ~DO_DEVICE_INITIALIZING;
            if (child)
                PnpProcessNewDevnode(ex, child);
        } else if (pdo->DeviceObjectExtension.DeviceNode->State == DevnodeStarted) {
            PnpEnumerateDevnode(ex, pdo->DeviceObjectExtension.DeviceNode);
        }
        ObDereferenceObject(pdo); /* the reference the bus driver took for the relations */
    }
    ExFreePool(rel);
}

/* Removes a devnode's subtree, children first, then frees it. PnpLock held. */
static void PnpRemoveDevnode(PEXECUTIVE ex, PDEVICE_NODE dn)
{
    while (dn->Child)
        PnpRemoveDevnode(ex, dn->Child);
    if (dn->PhysicalDeviceObject && dn->State != DevnodeRemoved && !dn->RemoveSent)
        PnpSendIrp(dn, IRP_MN_REMOVE_DEVICE, NULL, NULL);
    dn->State = DevnodeRemoved;
    PnpFreeDevnode(ex, dn);
}

void PnpRemoveTree(PEXECUTIVE ex)
{
    pthread_mutex_lock(&ex->PnpLock);
    if (ex->Root) {
        while (ex->Root->Child)
            PnpRemoveDevnode(ex, ex->Root->Child);
        PnpFreeDevnode(ex, ex->Root);
        ex->Root = NULL;
    }
    pthread_mutex_unlock(&ex->PnpLock);
}

/* ---- Re-enumeration requested by drivers ----------------------------------------------------- */

struct PnpEnumWork {
    PIO_WORKITEM Item;
    PEXECUTIVE Executive;
};

static void PnpEnumerationWorker(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    struct PnpEnumWork *w = Context;
    PEXECUTIVE ex = w->Executive;
    pthread_mutex_lock(&ex->PnpLock);
    if (DeviceObject->DeviceObjectExtension.DeviceNode)
        PnpEnumerateDevnode(ex, DeviceObject->DeviceObjectExtension.DeviceNode);
    pthread_mutex_unlock(&ex->PnpLock);
    IoFreeWorkItem(w->Item);
    free(w);
    if (atomic_fetch_sub(&ex->PendingEnumerations, 1) == 1)
        KeSetEvent(&ex->EnumerationIdle, 0, FALSE);
}

void IoInvalidateDeviceRelations(PDEVICE_OBJECT DeviceObject, DEVICE_RELATION_TYPE Type)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    struct PnpEnumWork *w;
    if (Type != BusRelations)
        return;
    w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->Executive = ex;
    w->Item = IoAllocateWorkItem(DeviceObject);
    if (!w->Item) {
        free(w);
        return;
    }
    if (atomic_fetch_add(&ex->PendingEnumerations, 1) == 0)
        KeClearEvent(&ex->EnumerationIdle);
    IoQueueWorkItem(w->Item, PnpEnumerationWorker, DelayedWorkQueue, w);
}

void IoSynchronizeDeviceRelations(PEXECUTIVE ex)
{
    KeWaitForSingleObject(&ex->EnumerationIdle, Executive, KernelMode, FALSE, NULL);
}

/* ---- The root enumerator --------------------------------------------------------------------- */

typedef struct _ROOT_PDO_EXTENSION {
    char DeviceId[128];  /* "ROOT\VMINIPORT" */
    char InstanceId[64]; /* "0000" */
    char KeyPath[256];   /* "Enum\Root\VMINIPORT\0000" */
    BOOLEAN Removed;
} ROOT_PDO_EXTENSION, *PROOT_PDO_EXTENSION;

static PVOID PnpDupMultiSz(PCSTR src, size_t len)
{
    char *p = ExAllocatePoolWithTag(NonPagedPool, len + 2, 0);
    if (p)
        memcpy(p, src, len);
    return p;
}

/* IRP_MJ_PNP for a root-enumerated PDO: IDs from its registry key, start always succeeds. */
static NTSTATUS PnpRootPdoDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PROOT_PDO_EXTENSION ext = DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    NTSTATUS status = Irp->IoStatus.Status;
    char buf[512];
    ULONG type, len;

    switch (sp->MinorFunction) {
    case IRP_MN_START_DEVICE:
        status = STATUS_SUCCESS;
        break;
    case IRP_MN_QUERY_ID:
        switch (sp->Parameters.QueryId.IdType) {
        case BusQueryDeviceID:
            Irp->IoStatus.Information =
                (ULONG_PTR)PnpDupMultiSz(ext->DeviceId, strlen(ext->DeviceId) + 1);
            status = STATUS_SUCCESS;
            break;
        case BusQueryInstanceID:
            Irp->IoStatus.Information =
                (ULONG_PTR)PnpDupMultiSz(ext->InstanceId, strlen(ext->InstanceId) + 1);
            status = STATUS_SUCCESS;
            break;
        case BusQueryHardwareIDs:
        case BusQueryCompatibleIDs: {
            PCSTR name = sp->Parameters.QueryId.IdType == BusQueryHardwareIDs ? "HardwareID"
                                                                              : "CompatibleIDs";
            memset(buf, 0, sizeof(buf));
            if (NT_SUCCESS(
                    CmQueryValue(ex, ext->KeyPath, name, &type, buf, sizeof(buf) - 2, &len))) {
                if (type == REG_SZ) /* a single ID */
                    len = (ULONG)strlen(buf) + 1;
                Irp->IoStatus.Information = (ULONG_PTR)PnpDupMultiSz(buf, len + 1);
                status = STATUS_SUCCESS;
            } else if (sp->Parameters.QueryId.IdType == BusQueryHardwareIDs) {
                /* default: the device ID is its own hardware ID */
                Irp->IoStatus.Information =
                    (ULONG_PTR)PnpDupMultiSz(ext->DeviceId, strlen(ext->DeviceId) + 1);
                status = STATUS_SUCCESS;
            }
            break;
        }
        default:
            break;
        }
        break;
    case IRP_MN_QUERY_DEVICE_TEXT:
        if (sp->Parameters.QueryDeviceText.DeviceTextType == DeviceTextDescription &&
            NT_SUCCESS(RtlQueryRegistryString(ex, ext->KeyPath, "DeviceDesc", buf, sizeof(buf)))) {
            Irp->IoStatus.Information = (ULONG_PTR)PnpDupMultiSz(buf, strlen(buf) + 1);
            status = STATUS_SUCCESS;
        }
        break;
    case IRP_MN_REMOVE_DEVICE:
        /* The root bus never stops reporting its devices while running: the PDO goes away only
         * when the tree is torn down, which is what a REMOVE here means. */
        ext->Removed = TRUE;
        status = STATUS_SUCCESS;
        Irp->IoStatus.Status = status;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        IoDeleteDevice(DeviceObject);
        return status;
    case IRP_MN_QUERY_REMOVE_DEVICE:
    case IRP_MN_CANCEL_REMOVE_DEVICE:
    case IRP_MN_SURPRISE_REMOVAL:
        status = STATUS_SUCCESS;
        break;
    default:
        break;
    }
    Irp->IoStatus.Status = status;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

static NTSTATUS PnpRootDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    DriverObject->MajorFunction[IRP_MJ_PNP] = PnpRootPdoDispatchPnp;
    return STATUS_SUCCESS;
}

NTSTATUS PnpCreateRootDriver(PEXECUTIVE ex)
{
    ex->PnpDriver = PnpNewDriverObject(ex, "PnpManager");
    if (!ex->PnpDriver)
        return STATUS_INSUFFICIENT_RESOURCES;
    return PnpRootDriverEntry(ex->PnpDriver, "Services\\PnpManager");
}

NTSTATUS PnpStartSystem(PEXECUTIVE ex, char *Error, size_t ErrorLength)
{
    char device[64], instance[64], key[256];
    ULONG started = 0, failed = 0;

    pthread_mutex_lock(&ex->PnpLock);
    ex->Root = PnpNewDevnode(ex, NULL, NULL);
    if (!ex->Root) {
        pthread_mutex_unlock(&ex->PnpLock);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    snprintf(ex->Root->InstancePath, sizeof(ex->Root->InstancePath), "HTREE\\ROOT\\0");
    snprintf(ex->Root->Description, sizeof(ex->Root->Description), "Root");
    ex->Root->State = DevnodeStarted;

    for (ULONG i = 0; NT_SUCCESS(CmEnumerateKey(ex, "Enum\\Root", i, device, sizeof(device)));
         i++) {
        char devkey[128];
        snprintf(devkey, sizeof(devkey), "Enum\\Root\\%s", device);
        for (ULONG j = 0; NT_SUCCESS(CmEnumerateKey(ex, devkey, j, instance, sizeof(instance)));
             j++) {
            PDEVICE_OBJECT pdo;
            PROOT_PDO_EXTENSION ext;
            snprintf(key, sizeof(key), "%s\\%s", devkey, instance);
            if (!NT_SUCCESS(IoCreateDevice(ex->PnpDriver, sizeof(ROOT_PDO_EXTENSION), NULL,
                                           FILE_DEVICE_BUS_EXTENDER, FILE_AUTOGENERATED_DEVICE_NAME,
                                           FALSE, &pdo)))
                continue;
            ext = pdo->DeviceExtension;
            snprintf(ext->DeviceId, sizeof(ext->DeviceId), "ROOT\\%s", device);
            snprintf(ext->InstanceId, sizeof(ext->InstanceId), "%s", instance);
            snprintf(ext->KeyPath, sizeof(ext->KeyPath), "%s", key);
            pdo->Flags &= ~DO_DEVICE_INITIALIZING;
            /* Two references now: creation's (dropped by IoDeleteDevice at REMOVE) and the
             * devnode's (dropped when the devnode is freed). */
            PDEVICE_NODE dn = PnpNewDevnode(ex, ex->Root, pdo);
            if (!dn)
                continue;
            PnpProcessNewDevnode(ex, dn);
            /* A device no driver serves stays stopped, as on Windows; only a failed one fails
             * the boot. */
            if (dn->State == DevnodeStarted)
                started++;
            else if (dn->State == DevnodeFailed)
                failed++;
            if (dn->State == DevnodeFailed && Error && ErrorLength && !Error[0]) {
                if (dn->ProblemText[0])
                    snprintf(Error, ErrorLength, "%s: %s", dn->InstancePath, dn->ProblemText);
                else
                    snprintf(Error, ErrorLength,
                             "%s: could not be started (%s driver, status 0x%08X)",
                             dn->InstancePath, dn->Service[0] ? dn->Service : "no",
                             (unsigned)dn->Problem);
            }
        }
    }
    pthread_mutex_unlock(&ex->PnpLock);
    IoSynchronizeDeviceRelations(ex);
    return failed ? STATUS_UNSUCCESSFUL : STATUS_SUCCESS;
}

/* ---- Properties and names -------------------------------------------------------------------- */

static PDEVICE_NODE PnpDevnodeOf(PDEVICE_OBJECT dev)
{
    /* Walk down to the PDO. */
    PDEVICE_OBJECT d = dev;
    while (d->DeviceObjectExtension.AttachedTo)
        d = d->DeviceObjectExtension.AttachedTo;
    return d->DeviceObjectExtension.DeviceNode;
}

void IoSetDeviceProblemText(PDEVICE_OBJECT DeviceObject, PCSTR Format, ...)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    char text[256];
    PDEVICE_NODE dn;
    va_list ap;
    va_start(ap, Format);
    vsnprintf(text, sizeof(text), Format, ap);
    va_end(ap);
    pthread_mutex_lock(&ex->Lock);
    dn = PnpDevnodeOf(DeviceObject);
    if (dn && !dn->ProblemText[0]) /* the first reason is the cause; later ones follow from it */
        snprintf(dn->ProblemText, sizeof(dn->ProblemText), "%s", text);
    pthread_mutex_unlock(&ex->Lock);
    DbgPrint("pnp: %s: %s\n", dn ? dn->InstancePath : "?", text);
}

void IoSetDeviceUserName(PDEVICE_OBJECT DeviceObject, PCSTR Name)
{
    PEXECUTIVE ex = IoGetExecutive(DeviceObject);
    PDEVICE_NODE dn;
    pthread_mutex_lock(&ex->Lock);
    dn = PnpDevnodeOf(DeviceObject);
    if (dn) {
        size_t n = 0;
        while (dn->UserNames[n])
            n += strlen(dn->UserNames + n) + 1;
        if (n + strlen(Name) + 2 <= sizeof(dn->UserNames)) {
            strcpy(dn->UserNames + n, Name);
            dn->UserNames[n + strlen(Name) + 1] = 0;
        }
    }
    pthread_mutex_unlock(&ex->Lock);
}

NTSTATUS IoGetDeviceProperty(PDEVICE_OBJECT DeviceObject, DEVICE_REGISTRY_PROPERTY DeviceProperty,
                             ULONG BufferLength, PVOID PropertyBuffer, PULONG ResultLength)
{
    PDEVICE_NODE dn = DeviceObject->DeviceObjectExtension.DeviceNode;
    PCSTR src;
    size_t len;
    if (!dn)
        return STATUS_INVALID_DEVICE_REQUEST;
    switch (DeviceProperty) {
    case DevicePropertyDeviceDescription:
        src = dn->Description;
        len = strlen(src) + 1;
        break;
    case DevicePropertyLocationInformation:
        src = dn->Location;
        len = strlen(src) + 1;
        break;
    case DevicePropertyClassName:
        src = dn->ClassName;
        len = strlen(src) + 1;
        break;
    case DevicePropertyHardwareID:
    case DevicePropertyCompatibleIDs:
        src = DeviceProperty == DevicePropertyHardwareID ? dn->HardwareIds : dn->CompatibleIds;
        for (len = 0; src[len]; len += strlen(src + len) + 1)
            ;
        len++;
        break;
    default:
        return STATUS_INVALID_PARAMETER;
    }
    *ResultLength = (ULONG)len;
    if (len > BufferLength)
        return STATUS_BUFFER_TOO_SMALL;
    memcpy(PropertyBuffer, src, len);
    return STATUS_SUCCESS;
}

NTSTATUS IoGetDeviceRegistryKeyPath(PDEVICE_OBJECT PhysicalDeviceObject, ULONG DevInstKeyType,
                                    char *Path, ULONG PathLength)
{
    PDEVICE_NODE dn = PhysicalDeviceObject->DeviceObjectExtension.DeviceNode;
    if (!dn)
        return STATUS_INVALID_DEVICE_REQUEST;
    if ((ULONG)snprintf(Path, PathLength, "Enum\\%s%s", dn->InstancePath,
                        DevInstKeyType == PLUGPLAY_REGKEY_DEVICE ? "\\Device Parameters" : "") >=
        PathLength)
        return STATUS_BUFFER_TOO_SMALL;
    return STATUS_SUCCESS;
}

/* ---- The tree as JSON ------------------------------------------------------------------------ */

struct PnpJson {
    char *Buf;
    size_t Len, Cap;
    BOOLEAN Failed;
};

static void PnpJsonPut(struct PnpJson *j, PCSTR s, size_t n)
{
    if (j->Failed)
        return;
    if (j->Len + n + 1 > j->Cap) {
        size_t cap = (j->Cap ? j->Cap * 2 : 4096) + n;
        char *b = realloc(j->Buf, cap);
        if (!b) {
            j->Failed = TRUE;
            return;
        }
        j->Buf = b;
        j->Cap = cap;
    }
    memcpy(j->Buf + j->Len, s, n);
    j->Len += n;
    j->Buf[j->Len] = 0;
}

static void PnpJsonRaw(struct PnpJson *j, PCSTR s)
{
    PnpJsonPut(j, s, strlen(s));
}

static void PnpJsonString(struct PnpJson *j, PCSTR s)
{
    PnpJsonPut(j, "\"", 1);
    for (; *s; s++) {
        char esc[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            PnpJsonPut(j, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            PnpJsonPut(j, esc, 6);
        } else {
            PnpJsonPut(j, (const char *)&c, 1);
        }
    }
    PnpJsonPut(j, "\"", 1);
}

static void PnpJsonMultiSz(struct PnpJson *j, PCSTR key, PCSTR list)
{
    BOOLEAN first = TRUE;
    PnpJsonString(j, key);
    PnpJsonRaw(j, ":[");
    for (PCSTR s = list; *s; s += strlen(s) + 1) {
        if (!first)
            PnpJsonRaw(j, ",");
        PnpJsonString(j, s);
        first = FALSE;
    }
    PnpJsonRaw(j, "]");
}

static void PnpJsonField(struct PnpJson *j, PCSTR key, PCSTR value, BOOLEAN comma)
{
    PnpJsonString(j, key);
    PnpJsonRaw(j, ":");
    PnpJsonString(j, value);
    if (comma)
        PnpJsonRaw(j, ",");
}

static void PnpJsonNode(PEXECUTIVE ex, struct PnpJson *j, PDEVICE_NODE dn)
{
    static const char *const states[] = {"started", "stopped", "removed", "failed"};
    PDEVICE_OBJECT stack[32];
    int depth = 0;

    PnpJsonRaw(j, "{");
    PnpJsonField(j, "instance_path", dn->InstancePath, TRUE);
    PnpJsonField(j, "description", dn->Description, TRUE);
    PnpJsonField(j, "service", dn->Service, TRUE);
    PnpJsonField(j, "class", dn->ClassName, TRUE);
    PnpJsonField(j, "state", states[dn->State], TRUE);
    PnpJsonMultiSz(j, "hardware_ids", dn->HardwareIds);
    PnpJsonRaw(j, ",");
    PnpJsonMultiSz(j, "compatible_ids", dn->CompatibleIds);
    PnpJsonRaw(j, ",");
    PnpJsonField(j, "location", dn->Location, TRUE);
    PnpJsonField(j, "problem", dn->ProblemText, TRUE);
    if (dn->PhysicalDeviceObject) {
        static const char *const power[] = {"", "D0", "D1", "D2", "D3"};
        int d = atomic_load(&dn->PhysicalDeviceObject->DeviceObjectExtension.PowerState);
        PnpJsonField(j, "power", d > 0 && d < PowerDeviceMaximum ? power[d] : "", TRUE);
    }
    PnpJsonMultiSz(j, "names", dn->UserNames);
    PnpJsonRaw(j, ",\"stack\":[");
    if (dn->PhysicalDeviceObject) {
        pthread_mutex_lock(&ex->Lock);
        for (PDEVICE_OBJECT d = dn->PhysicalDeviceObject; d && depth < 32; d = d->AttachedDevice)
            stack[depth++] = d;
        /* role: the PDO, the function driver's FDO, filters below (lower) or above (upper) it */
        int fdo = -1;
        for (int i = 0; i < depth; i++)
            if (!strcasecmp(stack[i]->DriverObject->DriverName + 8, dn->Service))
                fdo = i;
        for (int i = depth - 1; i >= 0; i--) {
            PCSTR role = i == 0                  ? "PDO"
                         : i == fdo              ? "FDO"
                         : (fdo >= 0 && i > fdo) ? "UpperFilter"
                                                 : "LowerFilter";
            PnpJsonRaw(j, "{");
            PnpJsonField(j, "driver", stack[i]->DriverObject->DriverName + 8, TRUE);
            PnpJsonField(j, "device", stack[i]->Name, TRUE);
            PnpJsonField(j, "role", role, FALSE);
            PnpJsonRaw(j, i ? "}," : "}");
        }
        pthread_mutex_unlock(&ex->Lock);
    }
    PnpJsonRaw(j, "],\"children\":[");
    for (PDEVICE_NODE c = dn->Child; c; c = c->Sibling) {
        PnpJsonNode(ex, j, c);
        if (c->Sibling)
            PnpJsonRaw(j, ",");
    }
    PnpJsonRaw(j, "]}");
}

char *PnpTreeToJson(PEXECUTIVE ex)
{
    struct PnpJson j = {0};
    pthread_mutex_lock(&ex->PnpLock);
    PnpJsonRaw(&j, "{\"root\":");
    if (ex->Root)
        PnpJsonNode(ex, &j, ex->Root);
    else
        PnpJsonRaw(&j, "null");
    PnpJsonRaw(&j, "}");
    pthread_mutex_unlock(&ex->PnpLock);
    if (j.Failed) {
        free(j.Buf);
        return NULL;
    }
    return j.Buf;
}
