/*
 * Unit tests of the configuration manager (kernel/registry.c): loading INI text into the registry
 * (section = key path, with or without the HKLM\SYSTEM\CurrentControlSet\ prefix, sections longer
 * than inih's 50 characters), the value syntax and the type each form gets, error messages with
 * line numbers and reasons, case-insensitive key and value names, subkey enumeration in the order
 * written, and the typed helpers (RtlQueryRegistryUlonglong, RtlQueryRegistryString,
 * RtlStringToUlonglong) including their edge cases.
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

static int setup(void **state)
{
    PEXECUTIVE ex = NULL;
    if (!NT_SUCCESS(ExCreateExecutive(&ex)))
        return -1;
    *state = ex;
    return 0;
}

static int teardown(void **state)
{
    ExDestroyExecutive(*state);
    return 0;
}

static NTSTATUS load(PEXECUTIVE ex, PCSTR text, char *error, size_t len)
{
    if (error && len)
        error[0] = 0;
    return CmLoadIniText(ex, text, "test.ini", error, len);
}

static void load_ok(PEXECUTIVE ex, PCSTR text)
{
    char error[256];
    NTSTATUS status = load(ex, text, error, sizeof(error));
    if (!NT_SUCCESS(status))
        fail_msg("CmLoadIniText failed: %s", error);
}

/* Reads a value and checks its type and length; returns the data (static buffer). */
static const UCHAR *query(PEXECUTIVE ex, PCSTR key, PCSTR name, ULONG type, ULONG length)
{
    static UCHAR buf[1024];
    ULONG t = 0, len = 0;
    memset(buf, 0xCC, sizeof(buf));
    assert_int_equal(CmQueryValue(ex, key, name, &t, buf, sizeof(buf), &len), STATUS_SUCCESS);
    assert_int_equal(t, type);
    assert_int_equal(len, length);
    return buf;
}

static ULONG query_dword(PEXECUTIVE ex, PCSTR key, PCSTR name)
{
    ULONG d;
    memcpy(&d, query(ex, key, name, REG_DWORD, 4), 4);
    return d;
}

static ULONGLONG query_qword(PEXECUTIVE ex, PCSTR key, PCSTR name)
{
    ULONGLONG q;
    memcpy(&q, query(ex, key, name, REG_QWORD, 8), 8);
    return q;
}

static void assert_sz(PEXECUTIVE ex, PCSTR key, PCSTR name, PCSTR expected)
{
    const UCHAR *data = query(ex, key, name, REG_SZ, (ULONG)strlen(expected) + 1);
    assert_string_equal((const char *)data, expected);
}

/* ---- Sections ------------------------------------------------------------------------------ */

static void test_section_names_a_key_path_below_current_control_set(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[Services\\disk\\Parameters]\nTimeout = 30\n");
    assert_true(CmKeyExists(ex, "Services"));
    assert_true(CmKeyExists(ex, "Services\\disk"));
    assert_true(CmKeyExists(ex, "Services\\disk\\Parameters"));
    assert_int_equal(query_dword(ex, "Services\\disk\\Parameters", "Timeout"), 30);
    /* the same key through the full path */
    assert_int_equal(
        query_dword(ex, "HKLM\\SYSTEM\\CurrentControlSet\\Services\\disk\\Parameters", "Timeout"),
        30);
}

static void test_section_with_hklm_prefix_is_the_same_key(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[HKLM\\SYSTEM\\CurrentControlSet\\Services\\storport]\nA = 1\n"
                "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\storport]\nB = 2\n"
                "[\\Registry\\Machine\\System\\CurrentControlSet\\Services\\storport]\nC = 3\n");
    assert_int_equal(query_dword(ex, "Services\\storport", "A"), 1);
    assert_int_equal(query_dword(ex, "Services\\storport", "B"), 2);
    assert_int_equal(query_dword(ex, "Services\\storport", "C"), 3);
    /* no key named HKLM was created */
    assert_false(CmKeyExists(ex, "HKLM"));
}

static void test_section_longer_than_inih_limit_keeps_the_whole_path(void **state)
{
    PEXECUTIVE ex = *state;
    char path[200], text[512];
    /* a 120-character path of several components */
    snprintf(path, sizeof(path),
             "Enum\\SCSI\\Disk&Ven_STORSTK&Prod_RAMDISK_LONG_PRODUCT_NAME&Rev_"
             "0001\\4&12345678&0&000000\\Device Parameters\\Partmgr\\XYZ");
    while (strlen(path) < 120)
        strcat(path, "x");
    path[120] = 0;
    assert_int_equal(strlen(path), 120);
    snprintf(text, sizeof(text), "[%s]\nAttributes = dword:7\n[Services\\short]\nS = 1\n", path);
    load_ok(ex, text);
    assert_int_equal(query_dword(ex, path, "Attributes"), 7);
    /* nothing was stored under a truncated name */
    char truncated[64];
    snprintf(truncated, sizeof(truncated), "%.50s", path);
    ULONG t, len;
    assert_int_equal(CmQueryValue(ex, truncated, "Attributes", &t, NULL, 0, &len),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    assert_int_equal(query_dword(ex, "Services\\short", "S"), 1);
}

static void test_long_section_with_trailing_comment_keeps_the_whole_path(void **state)
{
    PEXECUTIVE ex = *state;
    PCSTR path = "Control\\Class\\{4d36e967-e325-11ce-bfc1-08002be10318}\\0000\\Settings";
    char text[256];
    assert_true(strlen(path) > 50);
    snprintf(text, sizeof(text), "[%s] ; disk class settings\nValue = 5\n", path);
    load_ok(ex, text);
    assert_int_equal(query_dword(ex, path, "Value"), 5);
}

static void test_section_without_values_creates_its_key(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[Enum\\Root\\EMPTY\\0000]\n[Services\\x]\nA = 1\n");
    assert_true(CmKeyExists(ex, "Enum\\Root\\EMPTY\\0000"));
}

/* ---- Value typing -------------------------------------------------------------------------- */

static void test_bare_number_is_dword_and_large_number_is_qword(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[K]\nSmall = 42\nHex = 0x1F\nMax32 = 4294967295\nBig = 4294967296\n"
                "Huge = 0xFFFFFFFFFFFFFFFF\n");
    assert_int_equal(query_dword(ex, "K", "Small"), 42);
    assert_int_equal(query_dword(ex, "K", "Hex"), 0x1F);
    assert_int_equal(query_dword(ex, "K", "Max32"), 0xFFFFFFFFu);
    assert_true(query_qword(ex, "K", "Big") == 0x100000000ull);
    assert_true(query_qword(ex, "K", "Huge") == ~0ull);
}

static void test_dword_and_qword_prefixes_accept_size_suffixes(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[K]\nD = dword:16\nDK = dword:4K\nDM = DWORD:2M\nQ = qword:5\nQG = qword:4G\n"
                "QT = qword:2TiB\n");
    assert_int_equal(query_dword(ex, "K", "D"), 16);
    assert_int_equal(query_dword(ex, "K", "DK"), 4096);
    assert_int_equal(query_dword(ex, "K", "DM"), 2u << 20);
    assert_true(query_qword(ex, "K", "Q") == 5);
    assert_true(query_qword(ex, "K", "QG") == 4ull << 30);
    assert_true(query_qword(ex, "K", "QT") == 2ull << 40);
}

static void test_multi_hex_str_quoted_and_plain_values(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[K]\nM = multi:a,bc,d\nH = hex:0a0b,FF 10\nS = str:1234\nQ = \"42\"\n"
                "P = plain text value\nSuffixOnly = 1G\n");
    assert_memory_equal(query(ex, "K", "M", REG_MULTI_SZ, 8), "a\0bc\0d\0\0", 8);
    assert_memory_equal(query(ex, "K", "H", REG_BINARY, 4), "\x0a\x0b\xff\x10", 4);
    /* str: and quotes keep numbers as text */
    assert_sz(ex, "K", "S", "1234");
    assert_sz(ex, "K", "Q", "42");
    assert_sz(ex, "K", "P", "plain text value");
    /* a size with a suffix is not a bare number: it stays text (read with the Ulonglong helper) */
    assert_sz(ex, "K", "SuffixOnly", "1G");
}

static void test_value_longer_than_inih_line_limit_is_stored_whole(void **state)
{
    PEXECUTIVE ex = *state;
    char value[401], text[600];
    for (int i = 0; i < 400; i++)
        value[i] = (char)('a' + i % 26);
    value[400] = 0;
    snprintf(text, sizeof(text), "[K]\nLong = %s\nAfter = 1\n", value);
    load_ok(ex, text);
    assert_sz(ex, "K", "Long", value);
    assert_int_equal(query_dword(ex, "K", "After"), 1);
}

static void test_later_value_replaces_earlier_one_keeping_a_single_entry(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[K]\nV = 1\n[k]\nv = str:two\n");
    assert_sz(ex, "K", "V", "two");
}

/* ---- Errors -------------------------------------------------------------------------------- */

static void assert_load_error(PEXECUTIVE ex, PCSTR text, PCSTR line_tag, PCSTR reason)
{
    char error[256];
    assert_int_equal(load(ex, text, error, sizeof(error)), STATUS_INVALID_PARAMETER);
    if (!strstr(error, line_tag))
        fail_msg("error '%s' does not name '%s'", error, line_tag);
    if (reason && !strstr(error, reason))
        fail_msg("error '%s' does not say '%s'", error, reason);
}

static void test_value_outside_a_section_is_an_error_with_its_line(void **state)
{
    assert_load_error(*state, "; comment\nOrphan = 1\n[K]\nA = 1\n", "test.ini:2:", "outside");
}

static void test_bad_dword_is_an_error_with_line_and_reason(void **state)
{
    assert_load_error(*state, "[K]\nA = 1\nB = dword:lots\n", "test.ini:3:", "32-bit");
    assert_load_error(*state, "[K]\nA = dword:4294967296\n", "test.ini:2:", "32-bit");
    assert_load_error(*state, "[K]\nA = dword:5G\n", "test.ini:2:", "32-bit");
}

static void test_bad_qword_is_an_error(void **state)
{
    assert_load_error(*state, "[K]\n\nA = qword:0x\n", "test.ini:3:", "not a number");
}

static void test_bad_hex_is_an_error_with_line_and_reason(void **state)
{
    assert_load_error(*state, "[K]\nA = hex:0g\n", "test.ini:2:", "hex");
    assert_load_error(*state, "[K]\nA = hex:0a0\n", "test.ini:2:", "hex");
}

static void test_line_without_equals_is_a_syntax_error_with_its_line(void **state)
{
    assert_load_error(*state, "[K]\nA = 1\nJustAName\n", "test.ini:3:", "syntax");
}

static void test_first_error_line_and_reason_belong_together(void **state)
{
    /* two errors: the message names the first line and that line's reason, not a later one */
    assert_load_error(*state, "[K]\nA = dword:bad\nB = hex:zz\n", "test.ini:2:", "32-bit");
    assert_load_error(*state, "[K]\nNoEquals\nB = hex:zz\n", "test.ini:2:", "syntax");
}

static void test_error_line_numbers_count_long_sections(void **state)
{
    char text[512];
    snprintf(text, sizeof(text),
             "[Enum\\SCSI\\Disk&Ven_STORSTK&Prod_RAMDISK&Rev_0001\\4&12345678&0&000000]\n"
             "A = 1\n[Services\\x]\nB = hex:q\n");
    assert_load_error(*state, text, "test.ini:4:", "hex");
}

/* ---- Names and enumeration ----------------------------------------------------------------- */

static void test_key_and_value_names_are_case_insensitive(void **state)
{
    PEXECUTIVE ex = *state;
    load_ok(ex, "[Services\\Disk\\Parameters]\nMaxTransfer = 65536\n");
    assert_int_equal(query_dword(ex, "SERVICES\\disk\\parameters", "maxtransfer"), 65536);
    assert_true(CmKeyExists(ex, "services\\DISK"));
    /* the spelling written first is kept */
    char name[64];
    assert_int_equal(CmEnumerateKey(ex, "Services", 0, name, sizeof(name)), STATUS_SUCCESS);
    assert_string_equal(name, "Disk");
}

static void test_enumerate_key_returns_subkeys_in_order_written(void **state)
{
    PEXECUTIVE ex = *state;
    char name[64];
    load_ok(ex, "[Enum\\Root\\ZED\\0000]\nA=1\n[Enum\\Root\\ALPHA\\0000]\nA=1\n"
                "[Enum\\Root\\MIDDLE\\0000]\nA=1\n[Enum\\Root\\alpha\\0001]\nA=1\n");
    PCSTR expected[] = {"ZED", "ALPHA", "MIDDLE"};
    for (ULONG i = 0; i < 3; i++) {
        assert_int_equal(CmEnumerateKey(ex, "Enum\\Root", i, name, sizeof(name)), STATUS_SUCCESS);
        assert_string_equal(name, expected[i]);
    }
    assert_int_equal(CmEnumerateKey(ex, "Enum\\Root", 3, name, sizeof(name)),
                     STATUS_NO_MORE_ENTRIES);
    assert_int_equal(CmEnumerateKey(ex, "Enum\\Root\\ALPHA", 1, name, sizeof(name)),
                     STATUS_SUCCESS);
    assert_string_equal(name, "0001");
    assert_int_equal(CmEnumerateKey(ex, "Enum\\Nowhere", 0, name, sizeof(name)),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    assert_int_equal(CmEnumerateKey(ex, "Enum\\Root", 1, name, 5), STATUS_BUFFER_TOO_SMALL);
}

static void test_created_key_with_long_component_can_be_found_again(void **state)
{
    PEXECUTIVE ex = *state;
    char path[200] = "Services\\";
    size_t n = strlen(path);
    memset(path + n, 'k', 150);
    path[n + 150] = 0;
    NTSTATUS status = CmCreateKey(ex, path);
    if (NT_SUCCESS(status)) {
        /* a key that was created must exist afterwards, once */
        assert_true(CmKeyExists(ex, path));
        assert_int_equal(CmCreateKey(ex, path), STATUS_SUCCESS);
        char name[256];
        assert_int_equal(CmEnumerateKey(ex, "Services", 1, name, sizeof(name)),
                         STATUS_NO_MORE_ENTRIES);
    } else {
        assert_int_equal(status, STATUS_OBJECT_NAME_INVALID);
        assert_false(CmKeyExists(ex, path));
    }
}

/* ---- Typed helpers ------------------------------------------------------------------------- */

static void test_query_ulonglong_reads_dword_qword_and_suffixed_string(void **state)
{
    PEXECUTIVE ex = *state;
    ULONGLONG v = 0;
    load_ok(ex, "[K]\nD = 7\nQ = qword:0x123456789\nS = 1G\nT = str:4KiB\nBad = str:many\n"
                "Bin = hex:01\n");
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "D", &v), STATUS_SUCCESS);
    assert_true(v == 7);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "Q", &v), STATUS_SUCCESS);
    assert_true(v == 0x123456789ull);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "S", &v), STATUS_SUCCESS);
    assert_true(v == 1ull << 30);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "T", &v), STATUS_SUCCESS);
    assert_true(v == 4096);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "Bad", &v), STATUS_INVALID_PARAMETER);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "Bin", &v), STATUS_INVALID_PARAMETER);
    assert_int_equal(RtlQueryRegistryUlonglong(ex, "K", "Missing", &v),
                     STATUS_OBJECT_NAME_NOT_FOUND);
}

static void test_query_string_renders_dword_qword_and_multi_sz(void **state)
{
    PEXECUTIVE ex = *state;
    char buf[64];
    load_ok(ex, "[K]\nD = 4294967295\nQ = 4294967296\nM = multi:ROOT\\A,GenDisk,x\n"
                "S = hello\nB = hex:00\n");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "D", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "4294967295");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "Q", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "4294967296");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "M", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "ROOT\\A,GenDisk,x");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "S", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "hello");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "B", buf, sizeof(buf)),
                     STATUS_INVALID_PARAMETER);
}

static void test_query_string_too_small_buffer_is_buffer_too_small(void **state)
{
    PEXECUTIVE ex = *state;
    char buf[16];
    load_ok(ex, "[K]\nS = hello\nD = 4294967295\nQ = qword:18446744073709551615\n");
    /* "hello" needs 6 bytes */
    assert_int_equal(RtlQueryRegistryString(ex, "K", "S", buf, 5), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(RtlQueryRegistryString(ex, "K", "S", buf, 6), STATUS_SUCCESS);
    assert_string_equal(buf, "hello");
    /* "4294967295" needs 11 */
    assert_int_equal(RtlQueryRegistryString(ex, "K", "D", buf, 10), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(RtlQueryRegistryString(ex, "K", "D", buf, 11), STATUS_SUCCESS);
    assert_int_equal(RtlQueryRegistryString(ex, "K", "Q", buf, 16), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(RtlQueryRegistryString(ex, "K", "S", buf, 0), STATUS_BUFFER_TOO_SMALL);
    /* CmQueryValue reports the size it needs */
    ULONG t, len = 0;
    assert_int_equal(CmQueryValue(ex, "K", "S", &t, buf, 3, &len), STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(len, 6);
}

static void test_query_string_of_small_number_fits_a_small_buffer(void **state)
{
    PEXECUTIVE ex = *state;
    char buf[4];
    /* the text of the number is what must fit, not the binary value */
    load_ok(ex, "[K]\nD = 7\nQ = qword:1\n");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "D", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "7");
    assert_int_equal(RtlQueryRegistryString(ex, "K", "Q", buf, sizeof(buf)), STATUS_SUCCESS);
    assert_string_equal(buf, "1");
}

static void test_string_to_ulonglong_edge_cases(void **state)
{
    ULONGLONG v;
    struct {
        PCSTR text;
        BOOLEAN suffix;
        BOOLEAN ok;
        ULONGLONG value;
    } cases[] = {
        {"0", FALSE, TRUE, 0},
        {"123", FALSE, TRUE, 123},
        {"0x1F", FALSE, TRUE, 0x1F},
        {"0X1f", TRUE, TRUE, 0x1F},
        {"18446744073709551615", FALSE, TRUE, ~0ull},
        {"18446744073709551616", FALSE, FALSE, 0},
        {"0x", FALSE, FALSE, 0},
        {"0x", TRUE, FALSE, 0},
        {"-1", FALSE, FALSE, 0},
        {"-1", TRUE, FALSE, 0},
        {"", TRUE, FALSE, 0},
        {" 1", TRUE, FALSE, 0},
        {"1 ", TRUE, FALSE, 0},
        {"12Q", TRUE, FALSE, 0},
        {"4K", FALSE, FALSE, 0},
        {"4K", TRUE, TRUE, 4096},
        {"4k", TRUE, TRUE, 4096},
        {"4KiB", TRUE, TRUE, 4096},
        {"4KB", TRUE, TRUE, 4096},
        {"4KBx", TRUE, FALSE, 0},
        {"3M", TRUE, TRUE, 3ull << 20},
        {"1G", TRUE, TRUE, 1ull << 30},
        {"2T", TRUE, TRUE, 2ull << 40},
        {"0x10K", TRUE, TRUE, 16ull << 10},
        {"16777215T", TRUE, TRUE, 16777215ull << 40},
        {"16777216T", TRUE, FALSE, 0}, /* 2^24 TiB = 2^64: overflows */
        {"17179869184G", TRUE, FALSE, 0},
        {"18446744073709551615K", TRUE, FALSE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = 0xDEADull;
        BOOLEAN ok = RtlStringToUlonglong(cases[i].text, cases[i].suffix, &v);
        if (ok != cases[i].ok)
            fail_msg("'%s' (suffix %d): expected %s", cases[i].text, cases[i].suffix,
                     cases[i].ok ? "a number" : "rejection");
        if (ok && v != cases[i].value)
            fail_msg("'%s': %llu, expected %llu", cases[i].text, (unsigned long long)v,
                     (unsigned long long)cases[i].value);
        if (!ok)
            assert_true(v == 0xDEADull); /* untouched on failure */
    }
}

static void test_string_to_ulonglong_leading_zero_is_decimal(void **state)
{
    ULONGLONG v = 0;
    /* configuration numbers are decimal or 0x hex; "010" is ten and "08" is eight (no octal) */
    assert_true(RtlStringToUlonglong("010", FALSE, &v));
    assert_true(v == 10);
    assert_true(RtlStringToUlonglong("08", FALSE, &v));
    assert_true(v == 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_section_names_a_key_path_below_current_control_set),
        T(test_section_with_hklm_prefix_is_the_same_key),
        T(test_section_longer_than_inih_limit_keeps_the_whole_path),
        T(test_long_section_with_trailing_comment_keeps_the_whole_path),
        T(test_section_without_values_creates_its_key),
        T(test_bare_number_is_dword_and_large_number_is_qword),
        T(test_dword_and_qword_prefixes_accept_size_suffixes),
        T(test_multi_hex_str_quoted_and_plain_values),
        T(test_value_longer_than_inih_line_limit_is_stored_whole),
        T(test_later_value_replaces_earlier_one_keeping_a_single_entry),
        T(test_value_outside_a_section_is_an_error_with_its_line),
        T(test_bad_dword_is_an_error_with_line_and_reason),
        T(test_bad_qword_is_an_error),
        T(test_bad_hex_is_an_error_with_line_and_reason),
        T(test_line_without_equals_is_a_syntax_error_with_its_line),
        T(test_first_error_line_and_reason_belong_together),
        T(test_error_line_numbers_count_long_sections),
        T(test_key_and_value_names_are_case_insensitive),
        T(test_enumerate_key_returns_subkeys_in_order_written),
        T(test_created_key_with_long_component_can_be_found_again),
        T(test_query_ulonglong_reads_dword_qword_and_suffixed_string),
        T(test_query_string_renders_dword_qword_and_multi_sz),
        T(test_query_string_too_small_buffer_is_buffer_too_small),
        T(test_query_string_of_small_number_fits_a_small_buffer),
        T(test_string_to_ulonglong_edge_cases),
        T(test_string_to_ulonglong_leading_zero_is_decimal),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
