/*
 * The NT basic types, with fixed widths: on Windows x64 ULONG is 32 bits, so here ULONG is
 * uint32_t, never `unsigned long`. Structures built from these types have the Windows x64 layout.
 */
#ifndef STORSTACK_NT_NTDEF_H
#define STORSTACK_NT_NTDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <storstack/nt/ntstatus.h>

typedef void VOID, *PVOID;
typedef uint8_t UCHAR, *PUCHAR, BYTE, *PBYTE;
typedef int8_t CHAR, CCHAR, *PCHAR;
typedef uint16_t USHORT, *PUSHORT, WORD;
typedef int16_t SHORT;
typedef uint32_t ULONG, *PULONG, DWORD, *PDWORD;
typedef int32_t LONG, *PLONG;
typedef uint64_t ULONGLONG, *PULONGLONG, ULONG64, DWORD64;
typedef int64_t LONGLONG, *PLONGLONG, LONG64;
typedef uintptr_t ULONG_PTR, *PULONG_PTR, SIZE_T;
typedef intptr_t LONG_PTR;
typedef uint8_t BOOLEAN, *PBOOLEAN;
typedef const char *PCSTR;
typedef char *PSTR;
typedef NTSTATUS *PNTSTATUS;

#ifndef TRUE
#define TRUE  1
#define FALSE 0
#endif

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    };
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef LARGE_INTEGER PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _SINGLE_LIST_ENTRY {
    struct _SINGLE_LIST_ENTRY *Next;
} SINGLE_LIST_ENTRY, *PSINGLE_LIST_ENTRY;

#define CONTAINING_RECORD(address, type, field) ((type *)((char *)(address)-offsetof(type, field)))
#define FIELD_OFFSET(type, field)               ((LONG)offsetof(type, field))
#define RTL_NUMBER_OF(a)                        (sizeof(a) / sizeof((a)[0]))
#define UNREFERENCED_PARAMETER(p)               ((void)(p))

static inline void InitializeListHead(PLIST_ENTRY head)
{
    head->Flink = head->Blink = head;
}

static inline BOOLEAN IsListEmpty(const LIST_ENTRY *head)
{
    return head->Flink == head;
}

static inline void InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
    PLIST_ENTRY blink = head->Blink;
    entry->Flink = head;
    entry->Blink = blink;
    blink->Flink = entry;
    head->Blink = entry;
}

static inline void InsertHeadList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
    PLIST_ENTRY flink = head->Flink;
    entry->Flink = flink;
    entry->Blink = head;
    flink->Blink = entry;
    head->Flink = entry;
}

static inline BOOLEAN RemoveEntryList(PLIST_ENTRY entry)
{
    PLIST_ENTRY flink = entry->Flink, blink = entry->Blink;
    blink->Flink = flink;
    flink->Blink = blink;
    return flink == blink;
}

static inline PLIST_ENTRY RemoveHeadList(PLIST_ENTRY head)
{
    PLIST_ENTRY entry = head->Flink;
    RemoveEntryList(entry);
    return entry;
}

#define RtlZeroMemory(d, n)     memset((d), 0, (n))
#define RtlCopyMemory(d, s, n)  memcpy((d), (s), (n))
#define RtlMoveMemory(d, s, n)  memmove((d), (s), (n))
#define RtlFillMemory(d, n, v)  memset((d), (v), (n))
#define RtlEqualMemory(a, b, n) (memcmp((a), (b), (n)) == 0)

#endif
