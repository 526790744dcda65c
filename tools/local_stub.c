/*
 * Built only while api/local.c (the in-process stack) does not exist yet: storstack_create
 * reports that, so the command still links and its remote paths work.
 */
#include <stdio.h>

#include <storstack/storstack.h>

storstack_t *storstack_create(const char *config_path, char *err, size_t errlen)
{
    (void)config_path;
    if (err && errlen)
        snprintf(err, errlen, "this build has no in-process stack yet (api/local.c)");
    return NULL;
}
