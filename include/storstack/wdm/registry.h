/*
 * The configuration manager's registry: a tree of keys holding typed values, rooted at
 * CurrentControlSet (paths here are relative to it: "Services\disk\Parameters"). It is loaded
 * from INI files whose section names are key paths; see docs/config.md for the value syntax.
 */
#ifndef STORSTACK_WDM_REGISTRY_H
#define STORSTACK_WDM_REGISTRY_H

#include <storstack/wdm/io.h>

#define REG_NONE     0
#define REG_SZ       1
#define REG_BINARY   3
#define REG_DWORD    4
#define REG_MULTI_SZ 7
#define REG_QWORD    11

typedef struct _REGISTRY REGISTRY, *PREGISTRY;

/* Reads a value. Data is copied to Buffer (when large enough); *ResultLength gets its size.
 * STATUS_OBJECT_NAME_NOT_FOUND if the key or value is absent; STATUS_BUFFER_TOO_SMALL if short. */
NTSTATUS CmQueryValue(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, PULONG Type,
                      PVOID Buffer, ULONG BufferLength, PULONG ResultLength);
NTSTATUS CmSetValue(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, ULONG Type,
                    const void *Data, ULONG DataLength);
/* Creates a key (and its parents). */
NTSTATUS CmCreateKey(PEXECUTIVE Executive, PCSTR KeyPath);
BOOLEAN CmKeyExists(PEXECUTIVE Executive, PCSTR KeyPath);
/* Enumerates subkey names: Index 0, 1, ... until STATUS_NO_MORE_ENTRIES. */
#define STATUS_NO_MORE_ENTRIES ((NTSTATUS)0x8000001A)
NTSTATUS CmEnumerateKey(PEXECUTIVE Executive, PCSTR KeyPath, ULONG Index, char *Name,
                        ULONG NameLength);

/* Typed conveniences: a REG_DWORD/REG_QWORD, or a REG_SZ holding a number (K/M/G/T suffixes). */
NTSTATUS RtlQueryRegistryUlonglong(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName,
                                   PULONGLONG Value);
NTSTATUS RtlQueryRegistryString(PEXECUTIVE Executive, PCSTR KeyPath, PCSTR ValueName, char *Buffer,
                                ULONG BufferLength);

/* Parses "123", "0x1F" and, with AllowSuffix, "4K", "1G", "2T" (binary multiples, optional
 * "iB"/"B"). FALSE when the text is not such a number or overflows 64 bits. */
BOOLEAN RtlStringToUlonglong(PCSTR String, BOOLEAN AllowSuffix, PULONGLONG Value);

#endif
