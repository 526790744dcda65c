/* Private structure of the executive; only kernel/ sees it. */
#ifndef STORSTACK_KERNEL_EXECUTIVE_P_H
#define STORSTACK_KERNEL_EXECUTIVE_P_H

/* METHOD_BUFFERED system buffers: the two lookaside sizes (data bytes after the header), and the
 * header before each buffer that says which list it returns to (NULL: malloc'd, larger). */
#define IOP_SYSTEM_BUFFER_SMALL  (8u * 1024u)
#define IOP_SYSTEM_BUFFER_LARGE  (132u * 1024u)
#define IOP_SYSTEM_BUFFER_HEADER 16u

#include "kernel/executive.h"

typedef struct _REG_KEY REG_KEY, *PREG_KEY;

typedef struct _OB_NAME {
    struct _OB_NAME *Next;
    char Name[128];
    char Target[128];      /* symbolic link target, or "" for a device */
    PDEVICE_OBJECT Device; /* a device's name entry */
} OB_NAME, *POB_NAME;

typedef struct _PNP_PACKAGE {
    struct _PNP_PACKAGE *Next;
    DRIVER_PACKAGE Package;
    char ClassName[64];
    char ClassGuid[64];
    /* IDs served, in manifest order, with their device descriptions */
    ULONG IdCount;
    char (*Ids)[128];
    char (*Descriptions)[128];
    PDRIVER_OBJECT DriverObject; /* once loaded */
} PNP_PACKAGE, *PPNP_PACKAGE;

typedef enum _DEVNODE_STATE {
    DevnodeStarted,
    DevnodeStopped,
    DevnodeRemoved,
    DevnodeFailed
} DEVNODE_STATE;

struct _DEVICE_NODE {
    PDEVICE_NODE Parent;
    PDEVICE_NODE Child;   /* first child */
    PDEVICE_NODE Sibling; /* next sibling */
    PDEVICE_OBJECT PhysicalDeviceObject;
    DEVNODE_STATE State;
    NTSTATUS Problem;
    BOOLEAN RemoveSent;    /* its stack got IRP_MN_REMOVE_DEVICE already (a failed start) */
    char ProblemText[256]; /* why it failed, as its driver said (IoSetDeviceProblemText) */
    char InstancePath[256];
    char Service[64];
    char Description[128];
    char Location[128];
    char ClassName[64];
    char HardwareIds[512]; /* multi-sz */
    char CompatibleIds[512];
    char UserNames[256]; /* multi-sz of names users open: "PhysicalDrive0", "Scsi0:" */
};

struct _EXECUTIVE {
    pthread_mutex_t Lock; /* namespace, driver store, counters */
    POB_NAME Names;
    PPNP_PACKAGE Packages;
    PREG_KEY Registry;
    pthread_mutex_t RegistryLock;

    /* PnP */
    pthread_mutex_t PnpLock; /* serialises tree changes (one enumeration at a time) */
    PDEVICE_NODE Root;
    PDRIVER_OBJECT PnpDriver; /* owns root-enumerated PDOs */
    atomic_int PendingEnumerations;
    KEVENT EnumerationIdle;

    /* Shutdown notification list */
    PDEVICE_OBJECT *ShutdownDevices; /* grows as devices register */
    ULONG ShutdownCount;
    ULONG ShutdownCapacity;

    /* DPCs: a queue served by DpcThreadCount threads */
    pthread_mutex_t DpcLock;
    pthread_cond_t DpcCond;
    LIST_ENTRY DpcQueue;
    pthread_t DpcThreads[2];
    ULONG DpcRunning;       /* DPC routines running now (DpcLock) */
    pthread_cond_t DpcIdle; /* broadcast when the queue is empty and none runs */
    ULONG DpcThreadCount;

    /* Timers: a list ordered by due time, served by one thread */
    pthread_mutex_t TimerLock;
    pthread_cond_t TimerCond;
    LIST_ENTRY TimerList;
    pthread_t TimerThread;

    /* System worker threads */
    pthread_mutex_t WorkLock;
    pthread_cond_t WorkCond;
    LIST_ENTRY WorkQueue;
    pthread_t WorkThreads[2];
    ULONG WorkThreadCount;
    ULONG WorkBusy;

    atomic_bool Stopping; /* read by the DPC, timer and worker threads under their own locks */

    NPAGED_LOOKASIDE_LIST IrpLookaside; /* IRPs of IO_MAX_FAST_STACK locations */
    /* METHOD_BUFFERED system buffers (IoBuildDeviceIoControlRequest) up to these sizes: a SCSI
     * pass-through of 4 KiB or of 128 KiB with its header and sense, without a malloc. */
    NPAGED_LOOKASIDE_LIST SystemBufferSmall;
    NPAGED_LOOKASIDE_LIST SystemBufferLarge;

    atomic_int DeviceCount;
    atomic_int IrpCount;
    atomic_int DevNodeCount;
    atomic_int Violations; /* driver contract breaks the I/O manager caught */
    ULONG NextDiskNumber;  /* hint only; class drivers take numbers from the namespace */
};

struct _IO_WORKITEM {
    LIST_ENTRY List;
    PDEVICE_OBJECT DeviceObject;
    PIO_WORKITEM_ROUTINE Routine;
    PVOID Context;
    PEXECUTIVE Executive;
    BOOLEAN Queued;
};

/* kernel-internal */
void KipStartThreads(PEXECUTIVE Executive);
void KipStopThreads(PEXECUTIVE Executive);
void CmpFreeRegistry(PEXECUTIVE Executive);
NTSTATUS PnpCreateRootDriver(PEXECUTIVE Executive);
void PnpRemoveTree(PEXECUTIVE Executive);
void PnpFreePackages(PEXECUTIVE Executive);
void IopFreeNames(PEXECUTIVE Executive);
void IopDeleteDriverObjects(PEXECUTIVE Executive);

#endif
