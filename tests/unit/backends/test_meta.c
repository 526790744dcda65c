/*
 * Metadata blobs of the backends (backend.h meta_load/meta_store): the RAM store keeps them in
 * memory, the file store in a sidecar "<image>.<name>" replaced atomically, which a second
 * backend over the same image reads back; removal, size limits, bad names, and block devices or
 * read-only images without them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"

#ifndef SS_TEST_TMPDIR
#define SS_TEST_TMPDIR "/tmp"
#endif

static void exercise(struct backend *be)
{
    uint8_t buf[64];
    size_t len = 99;
    assert_true(be_has_meta(be));
    assert_int_equal(be->ops->meta_load(be, "pr", buf, sizeof(buf), &len), -ENOENT);
    assert_int_equal(be->ops->meta_store(be, "pr", "hello", 5), 0);
    assert_int_equal(be->ops->meta_load(be, "pr", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    /* replaced, not appended */
    assert_int_equal(be->ops->meta_store(be, "pr", "abc", 3), 0);
    assert_int_equal(be->ops->meta_load(be, "pr", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "abc", 3);
    /* a blob larger than the caller's buffer */
    assert_int_equal(be->ops->meta_load(be, "pr", buf, 2, &len), -EFBIG);
    /* names are separate */
    assert_int_equal(be->ops->meta_load(be, "other", buf, sizeof(buf), &len), -ENOENT);
    /* length 0 removes it */
    assert_int_equal(be->ops->meta_store(be, "pr", NULL, 0), 0);
    assert_int_equal(be->ops->meta_load(be, "pr", buf, sizeof(buf), &len), -ENOENT);
    assert_int_equal(be->ops->meta_store(be, "pr", NULL, 0), 0);
}

static void test_ram_meta(void **state)
{
    struct backend *be;
    assert_int_equal(be_ram_create(1 << 20, &be), 0);
    exercise(be);
    assert_int_equal(be->ops->meta_store(be, "a_name_far_too_long_for_it", "x", 1), -EINVAL);
    be_destroy(be);
}

static void test_file_meta_sidecar_survives_reopen(void **state)
{
    char dir[] = SS_TEST_TMPDIR "/metaXXXXXX";
    assert_non_null(mkdtemp(dir));
    char img[512], side[600], tmp[600];
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    snprintf(side, sizeof(side), "%s.pr", img);
    snprintf(tmp, sizeof(tmp), "%s.pr.tmp", img);
    struct backend *be;
    assert_int_equal(be_file_create(img, 1 << 20, BE_FILE_CREATE, &be, NULL), 0);
    exercise(be);
    assert_int_equal(be->ops->meta_store(be, "pr", "persist", 7), 0);
    assert_int_equal(be->ops->meta_store(be, "../evil", "x", 1), -EINVAL);
    struct stat st;
    assert_int_equal(stat(side, &st), 0);
    assert_int_equal(st.st_size, 7);
    assert_int_not_equal(stat(tmp, &st), 0); /* no temp file left behind */
    be_destroy(be);

    assert_int_equal(be_file_create(img, 0, 0, &be, NULL), 0);
    uint8_t buf[16];
    size_t len = 0;
    assert_int_equal(be->ops->meta_load(be, "pr", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "persist", 7);
    be_destroy(be);

    /* a read-only image keeps no metadata */
    assert_int_equal(be_file_create(img, 0, BE_FILE_READONLY, &be, NULL), 0);
    assert_false(be_has_meta(be));
    be_destroy(be);
    unlink(side);
    unlink(img);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ram_meta),
        cmocka_unit_test(test_file_meta_sidecar_survives_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
