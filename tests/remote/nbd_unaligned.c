/*
 * nbd_unaligned URI: what the NBD tools never send, because libnbd refuses requests below the
 * server's minimum block size in its default strict mode: a write and reads that start and end
 * inside sectors. Checks that the nbdkit plugin read-modify-writes them without touching the
 * neighbouring bytes. Exit 0 when every byte is where it belongs.
 */
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPAN 8192

int main(int argc, char **argv)
{
    static unsigned char before[SPAN], after[SPAN], odd[1000], back[1000];
    struct nbd_handle *h;
    int bad = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: nbd_unaligned URI\n");
        return 2;
    }
    h = nbd_create();
    if (!h || nbd_set_strict_mode(h, 0) < 0 || nbd_connect_uri(h, argv[1]) < 0) {
        fprintf(stderr, "nbd_unaligned: %s\n", nbd_get_error());
        return 1;
    }
    for (size_t i = 0; i < sizeof(odd); i++)
        odd[i] = (unsigned char)(i * 7 + 3);
    memset(before, 0xa5, sizeof(before));
    if (nbd_pwrite(h, before, SPAN, 0, 0) < 0 || nbd_pwrite(h, odd, sizeof(odd), 100, 0) < 0 ||
        nbd_pread(h, after, SPAN, 0, 0) < 0 || nbd_pread(h, back, sizeof(back), 100, 0) < 0) {
        fprintf(stderr, "nbd_unaligned: %s\n", nbd_get_error());
        return 1;
    }
    memcpy(before + 100, odd, sizeof(odd));
    if (memcmp(before, after, SPAN) != 0) {
        fprintf(stderr, "nbd_unaligned: the sectors around the unaligned write differ\n");
        bad = 1;
    }
    if (memcmp(back, odd, sizeof(odd)) != 0) {
        fprintf(stderr, "nbd_unaligned: the unaligned read returned other bytes\n");
        bad = 1;
    }
    nbd_shutdown(h, 0);
    nbd_close(h);
    if (!bad)
        printf("unaligned write of 1000 bytes at 100 and the reads around it: ok\n");
    return bad;
}
