/*
 * storstack user-mode API: what an application sees of a storage stack, shaped like the Win32
 * calls a Windows program would make (CreateFile, ReadFile/WriteFile, DeviceIoControl,
 * CloseHandle). A stack is either booted in this process (storstack_create) or reached on a
 * running `storstack serve` through its management socket (storstack_connect); every call below
 * works the same on both, because what crosses the socket is exactly these calls.
 *
 * Status values are NTSTATUS codes (include/storstack/nt/ntstatus.h); STATUS_SUCCESS is 0 and
 * failures are negative as int32_t. storstack_status_name() turns one into its name.
 */
#ifndef STORSTACK_STORSTACK_H
#define STORSTACK_STORSTACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t storstack_status_t; /* an NTSTATUS */

typedef struct storstack storstack_t;               /* a stack, local or remote */
typedef struct storstack_handle storstack_handle_t; /* an open device, like a Win32 HANDLE */

/* Access rights for storstack_open, as in CreateFile's dwDesiredAccess. */
#define STORSTACK_GENERIC_READ  0x80000000u
#define STORSTACK_GENERIC_WRITE 0x40000000u

/*
 * Boots a stack in this process from a configuration file (registry INI, see docs/config.md), or
 * from the built-in default (one virtual adapter with a 1 GiB sparse RAM disk) when config_path is
 * NULL. On failure returns NULL and, when err is not NULL, writes a one-line reason into it.
 */
storstack_t *storstack_create(const char *config_path, char *err, size_t errlen);

/* Connects to a running `storstack serve` on its management socket. NULL and a reason on failure.
 */
storstack_t *storstack_connect(const char *socket_path, char *err, size_t errlen);

/* Shuts a local stack down (flush, remove devices) or closes a connection. Open handles close. */
void storstack_destroy(storstack_t *stack);

/* TRUE when the stack is reached over a management socket. */
int storstack_is_remote(const storstack_t *stack);

/*
 * Opens a device by its Windows name: "PhysicalDrive0", "\\.\PhysicalDrive0", "Scsi0:", or an
 * object-manager path such as "\Device\Harddisk0\DR0". IRP_MJ_CREATE goes to the top of the
 * device's stack. access is a mask of STORSTACK_GENERIC_*.
 */
storstack_status_t storstack_open(storstack_t *stack, const char *name, uint32_t access,
                                  storstack_handle_t **out);

/*
 * Who opens a handle. A device's security descriptor is checked against `principal`; a target
 * built on the stack (the iSCSI target) names each initiator so that the SCSI devices below keep
 * unit attentions and reservations per I_T nexus. storstack_open uses the caller's own identity:
 * "uid:N" of this process in a local stack; over the management socket the server names the
 * client by its socket credentials ("uid:N" of the peer), and only a root client may claim another
 * identity.
 */
#define STORSTACK_PRINCIPAL_MAX    224 /* the bounds of its strings, with their NUL */
#define STORSTACK_TRANSPORT_ID_MAX 256
struct storstack_identity {
    const char *principal;    /* "uid:N" or an initiator name */
    const char *transport_id; /* SPC-4 TransportID text (iSCSI "NAME,i,0xISID"), or NULL */
    uint64_t nexus;           /* nonzero, unique per I_T nexus while it lives; 0 = this host */
};
storstack_status_t storstack_open_ex(storstack_t *stack, const char *name, uint32_t access,
                                     const struct storstack_identity *who,
                                     storstack_handle_t **out);

/* IRP_MJ_CLOSE (after IRP_MJ_CLEANUP); the handle is gone afterwards. */
storstack_status_t storstack_close(storstack_handle_t *handle);

/* Synchronous IRP_MJ_READ / IRP_MJ_WRITE at a byte offset; *transferred gets IoStatus.Information.
 */
storstack_status_t storstack_read(storstack_handle_t *handle, void *buf, uint32_t length,
                                  uint64_t offset, uint32_t *transferred);
storstack_status_t storstack_write(storstack_handle_t *handle, const void *buf, uint32_t length,
                                   uint64_t offset, uint32_t *transferred);

/* IRP_MJ_FLUSH_BUFFERS (FlushFileBuffers). */
storstack_status_t storstack_flush(storstack_handle_t *handle);

/*
 * Asynchronous read/write (overlapped I/O). The callback runs exactly once, in whichever thread
 * completes the request (possibly inside this call, before it returns). The buffer must stay
 * valid until then. The return value is STATUS_PENDING when the request was issued (the callback
 * will report its outcome), or a failure status when it could not be issued (no callback).
 */
typedef void storstack_io_callback(void *context, storstack_status_t status, uint64_t information);
storstack_status_t storstack_read_async(storstack_handle_t *handle, void *buf, uint32_t length,
                                        uint64_t offset, storstack_io_callback *callback,
                                        void *context);
storstack_status_t storstack_write_async(storstack_handle_t *handle, const void *buf,
                                         uint32_t length, uint64_t offset,
                                         storstack_io_callback *callback, void *context);

/*
 * DeviceIoControl: sends IRP_MJ_DEVICE_CONTROL with an IOCTL_* code and its Windows structures.
 * *returned gets IoStatus.Information (bytes written to out). For IOCTL_SCSI_PASS_THROUGH_DIRECT
 * on a remote stack, the client converts to IOCTL_SCSI_PASS_THROUGH, since a pointer does not
 * cross a process boundary.
 */
storstack_status_t storstack_ioctl(storstack_handle_t *handle, uint32_t code, const void *in,
                                   uint32_t in_length, void *out, uint32_t out_length,
                                   uint32_t *returned);

/*
 * Overlapped DeviceIoControl: the request of storstack_ioctl, issued without waiting. Returns
 * STATUS_PENDING when issued (the callback then runs exactly once, in whichever thread completes
 * it, possibly before this call returns, with the status and IoStatus.Information), or a failure
 * status and no callback. in, out (and, for IOCTL_SCSI_PASS_THROUGH_DIRECT, the DataBuffer they
 * point to) must stay valid until the callback.
 */
storstack_status_t storstack_ioctl_async(storstack_handle_t *handle, uint32_t code, const void *in,
                                         uint32_t in_length, void *out, uint32_t out_length,
                                         storstack_io_callback *callback, void *context);

/*
 * CancelIoEx: asks the driver holding each outstanding asynchronous request of this handle
 * (read, write or IOCTL) issued with this context (NULL: every one of the handle) to cancel it.
 * Each still completes through its callback exactly once: STATUS_CANCELLED when the driver
 * cancelled it, its ordinary status when it finished first. *cancelled (may be NULL) gets how
 * many requests were asked to cancel; 0 is not an error (they may all have completed already).
 * Returns STATUS_SUCCESS, or STATUS_INVALID_HANDLE.
 */
storstack_status_t storstack_cancel(storstack_handle_t *handle, const void *context,
                                    uint32_t *cancelled);

/*
 * The PnP device tree as JSON (devnodes with instance paths, IDs, service, Windows names, and
 * each device stack from top to bottom). The caller frees *json with free().
 */
storstack_status_t storstack_get_tree(storstack_t *stack, char **json);

/*
 * Reads a registry value of the stack's configuration as text (RegGetValue-shaped): key is a path
 * below CurrentControlSet such as "Control\\Storstack", name the value's name. REG_DWORD/REG_QWORD
 * values come back in decimal, REG_MULTI_SZ joined with ','. STATUS_OBJECT_NAME_NOT_FOUND when
 * absent, STATUS_BUFFER_TOO_SMALL when out cannot hold it.
 */
storstack_status_t storstack_reg_get_string(storstack_t *stack, const char *key, const char *name,
                                            char *out, size_t out_length);

/* "STATUS_SUCCESS", "STATUS_INVALID_PARAMETER", ... or "0xC0000XXX" for an unknown code. */
const char *storstack_status_name(storstack_status_t status);

#ifdef __cplusplus
}
#endif
#endif
