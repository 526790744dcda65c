/*
 * libFuzzer target for the text the executive parses: registry INI configuration (CmLoadIniText,
 * with its long-section tokenizing) and driver manifests (IoRegisterDriverPackage's INF parser).
 * The first byte picks which; the rest is the text. One executive serves every input; its
 * registry is emptied after each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/executive_p.h"

static NTSTATUS FuzzDriverEntry(PDRIVER_OBJECT DriverObject, PCSTR RegistryPath)
{
    return STATUS_SUCCESS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PEXECUTIVE ex;
    static unsigned serial;
    char error[256], name[32];
    char *text;

    if (!ex && !NT_SUCCESS(ExCreateExecutive(&ex)))
        abort();
    if (size < 1)
        return 0;
    text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    if (data[0] & 1) {
        DRIVER_PACKAGE pkg = {name, FuzzDriverEntry, text};
        snprintf(name, sizeof(name), "fuzz%u", serial++);
        IoRegisterDriverPackage(ex, &pkg);
        PnpFreePackages(ex); /* the manifest text is ours to free */
    } else {
        CmLoadIniText(ex, text, "fuzz", error, sizeof(error));
        pthread_mutex_lock(&ex->RegistryLock);
        CmpFreeRegistry(ex);
        pthread_mutex_unlock(&ex->RegistryLock);
    }
    free(text);
    return 0;
}
