/*
 * The management socket end to end: the server (api/server.c) serving the RAM test double, the
 * client (api/remote.c) reaching it over a Unix socket in a temporary directory, and raw sockets
 * speaking bad frames at it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <storstack/nt/ntstatus.h>

#include <storstack/storage/ntddscsi.h>
#include "api/server.h"
#include "api/wire.h"
#include "tests/unit/api/ramstack.h"

#define DISK_SIZE (8u << 20)

struct fixture {
    char dir[64];
    char path[128];
    storstack_t *local;
    struct storstack_server *server;
    storstack_t *client;
    storstack_handle_t *h;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    strcpy(f->dir, "/tmp/ss-api-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/sub/storstack.sock", f->dir);
    f->local = ramstack_create(DISK_SIZE);
    assert_int_equal(storstack_server_start(f->local, f->path, &f->server, err, sizeof(err)), 0);
    f->client = storstack_connect(f->path, err, sizeof(err));
    assert_non_null(f->client);
    assert_int_equal(storstack_open(f->client, "PhysicalDrive0",
                                    STORSTACK_GENERIC_READ | STORSTACK_GENERIC_WRITE, &f->h),
                     STATUS_SUCCESS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char sub[160];
    if (f->h)
        storstack_close(f->h);
    storstack_destroy(f->client);
    storstack_server_stop(f->server);
    storstack_destroy(f->local);
    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    rmdir(sub);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_read_write_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t out[65536], in[65536];
    uint32_t n = 0;
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(storstack_write(f->h, out, sizeof(out), 4096, &n), STATUS_SUCCESS);
    assert_int_equal(n, sizeof(out));
    assert_memory_equal(ramstack_data(f->local) + 4096, out, sizeof(out));
    memset(in, 0, sizeof(in));
    assert_int_equal(storstack_read(f->h, in, sizeof(in), 4096, &n), STATUS_SUCCESS);
    assert_int_equal(n, sizeof(in));
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(storstack_flush(f->h), STATUS_SUCCESS);
    assert_int_equal(ramstack_flushes(f->local), 1);
}

static void test_read_beyond_end_returns_status_without_data(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];
    uint32_t n = 99;
    assert_int_equal(storstack_read(f->h, buf, sizeof(buf), DISK_SIZE, &n),
                     STATUS_INVALID_PARAMETER);
    assert_int_equal(n, 0);
}

struct qd_ctx {
    atomic_int done;
    atomic_int bad;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

struct qd_io {
    struct qd_ctx *ctx;
    int index;
    uint8_t buf[4096];
    storstack_status_t status;
    uint64_t info;
};

static void qd_done(void *context, storstack_status_t status, uint64_t information)
{
    struct qd_io *io = context;
    io->status = status;
    io->info = information;
    pthread_mutex_lock(&io->ctx->lock);
    atomic_fetch_add(&io->ctx->done, 1);
    pthread_cond_broadcast(&io->ctx->cond);
    pthread_mutex_unlock(&io->ctx->lock);
}

static void qd_wait(struct qd_ctx *c, int n)
{
    pthread_mutex_lock(&c->lock);
    while (atomic_load(&c->done) < n)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static void test_pipelined_qd32_completes_each_tag(void **state)
{
    struct fixture *f = *state;
    enum { QD = 32 };
    static struct qd_io ios[QD];
    struct qd_ctx c = {.done = 0};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);

    /* 32 writes in flight, each its own block and pattern */
    for (int i = 0; i < QD; i++) {
        ios[i].ctx = &c;
        ios[i].index = i;
        memset(ios[i].buf, 0x40 + i, sizeof(ios[i].buf));
        assert_int_equal(
            storstack_write_async(f->h, ios[i].buf, 4096, (uint64_t)i * 4096, qd_done, &ios[i]),
            STATUS_PENDING);
    }
    qd_wait(&c, QD);
    for (int i = 0; i < QD; i++) {
        assert_int_equal(ios[i].status, STATUS_SUCCESS);
        assert_int_equal(ios[i].info, 4096);
    }
    /* 32 reads in flight; each callback must get the data of its own block */
    atomic_store(&c.done, 0);
    for (int i = 0; i < QD; i++) {
        memset(ios[i].buf, 0, sizeof(ios[i].buf));
        assert_int_equal(
            storstack_read_async(f->h, ios[i].buf, 4096, (uint64_t)i * 4096, qd_done, &ios[i]),
            STATUS_PENDING);
    }
    qd_wait(&c, QD);
    for (int i = 0; i < QD; i++) {
        uint8_t want[4096];
        memset(want, 0x40 + i, sizeof(want));
        assert_int_equal(ios[i].status, STATUS_SUCCESS);
        assert_memory_equal(ios[i].buf, want, sizeof(want));
    }
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

struct mt_arg {
    storstack_handle_t *h;
    int id;
    int failures;
};

static void *mt_thread(void *p)
{
    struct mt_arg *a = p;
    uint8_t buf[8192], back[8192];
    for (int i = 0; i < 50; i++) {
        uint64_t off = ((uint64_t)a->id * 50 + i) * sizeof(buf);
        uint32_t n;
        memset(buf, a->id * 13 + i, sizeof(buf));
        if (storstack_write(a->h, buf, sizeof(buf), off, &n) != STATUS_SUCCESS ||
            storstack_read(a->h, back, sizeof(back), off, &n) != STATUS_SUCCESS ||
            memcmp(buf, back, sizeof(buf)))
            a->failures++;
    }
    return NULL;
}

static void test_several_threads_share_one_connection(void **state)
{
    struct fixture *f = *state;
    pthread_t t[8];
    struct mt_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (struct mt_arg){.h = f->h, .id = i};
        pthread_create(&t[i], NULL, mt_thread, &a[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
}

static void test_ioctl_in_and_out_buffers(void **state)
{
    struct fixture *f = *state;
    uint8_t in[100], out[100];
    uint32_t ret = 0;
    for (int i = 0; i < 100; i++)
        in[i] = (uint8_t)i;
    assert_int_equal(storstack_ioctl(f->h, RAMSTACK_IOCTL_REVERSE, in, 100, out, 100, &ret),
                     STATUS_SUCCESS);
    assert_int_equal(ret, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(out[i], 99 - i);
    /* a short out buffer: a warning status still carries its data */
    memset(out, 0, sizeof(out));
    assert_int_equal(storstack_ioctl(f->h, RAMSTACK_IOCTL_REVERSE, in, 100, out, 10, &ret),
                     STATUS_BUFFER_OVERFLOW);
    assert_int_equal(ret, 10);
    assert_int_equal(out[0], 99);
    assert_int_equal(out[10], 0);
    assert_int_equal(storstack_ioctl(f->h, 0x12345678, NULL, 0, NULL, 0, &ret),
                     STATUS_INVALID_DEVICE_REQUEST);
}

struct sptd_with_sense {
    SCSI_PASS_THROUGH_DIRECT sptd;
    uint32_t filler;
    uint8_t sense[32];
};

static void test_pass_through_direct_is_converted_and_back(void **state)
{
    struct fixture *f = *state;
    struct sptd_with_sense s;
    uint8_t data[96];
    uint32_t ret = 0;

    memset(&s, 0, sizeof(s));
    memset(data, 0xEE, sizeof(data));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = 6;
    s.sptd.SenseInfoLength = sizeof(s.sense);
    s.sptd.SenseInfoOffset = offsetof(struct sptd_with_sense, sense);
    s.sptd.DataIn = SCSI_IOCTL_DATA_IN;
    s.sptd.DataTransferLength = sizeof(data);
    s.sptd.DataBuffer = data;
    s.sptd.TimeOutValue = 5;
    s.sptd.Cdb[0] = 0x12;
    s.sptd.Cdb[4] = sizeof(data);
    assert_int_equal(
        storstack_ioctl(f->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s, sizeof(s), &ret),
        STATUS_SUCCESS);
    assert_int_equal(s.sptd.ScsiStatus, 0);
    assert_int_equal(s.sptd.DataTransferLength, 36);
    assert_ptr_equal(s.sptd.DataBuffer, data);
    assert_memory_equal(data + 8, "STORSTAK", 8);
    assert_int_equal(data[36], 0xEE);

    /* data-out reaches the device */
    uint8_t wr[512];
    memset(wr, 0x5A, sizeof(wr));
    memset(&s, 0, sizeof(s));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = 10;
    s.sptd.DataIn = SCSI_IOCTL_DATA_OUT;
    s.sptd.DataTransferLength = sizeof(wr);
    s.sptd.DataBuffer = wr;
    s.sptd.Cdb[0] = 0x2A;
    assert_int_equal(
        storstack_ioctl(f->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s, sizeof(s), &ret),
        STATUS_SUCCESS);
    uint32_t got;
    const uint8_t *seen = ramstack_last_data_out(f->local, &got);
    assert_int_equal(got, 512);
    assert_memory_equal(seen, wr, 512);

    /* CHECK CONDITION: the sense lands at the caller's SenseInfoOffset */
    memset(&s, 0, sizeof(s));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = 6;
    s.sptd.SenseInfoLength = sizeof(s.sense);
    s.sptd.SenseInfoOffset = offsetof(struct sptd_with_sense, sense);
    s.sptd.DataIn = SCSI_IOCTL_DATA_UNSPECIFIED;
    s.sptd.Cdb[0] = 0x00;
    assert_int_equal(
        storstack_ioctl(f->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s, sizeof(s), &ret),
        STATUS_SUCCESS);
    assert_int_equal(s.sptd.ScsiStatus, 2);
    assert_int_equal(s.sptd.SenseInfoLength, 18);
    assert_int_equal(s.sense[0], 0x70);
    assert_int_equal(s.sense[2], 0x02);
    assert_int_equal(s.sense[12], 0x04);
    assert_int_equal(ret, offsetof(struct sptd_with_sense, sense) + 18);
}

static void test_tree_and_registry(void **state)
{
    struct fixture *f = *state;
    char *json = NULL, out[64];
    assert_int_equal(storstack_get_tree(f->client, &json), STATUS_SUCCESS);
    assert_non_null(strstr(json, "\"root\""));
    free(json);
    assert_int_equal(storstack_reg_get_string(f->client, "Control\\Storstack", "ManagementSocket",
                                              out, sizeof(out)),
                     STATUS_SUCCESS);
    assert_string_equal(out, "/tmp/ramstack.sock");
    assert_int_equal(
        storstack_reg_get_string(f->client, "Control\\Storstack", "Nope", out, sizeof(out)),
        STATUS_OBJECT_NAME_NOT_FOUND);
    assert_int_equal(
        storstack_reg_get_string(f->client, "Control\\Storstack", "ManagementSocket", out, 5),
        STATUS_BUFFER_TOO_SMALL);
}

static void test_open_unknown_and_stale_handle(void **state)
{
    struct fixture *f = *state;
    storstack_handle_t *h = NULL;
    assert_int_equal(storstack_open(f->client, "CdRom7", STORSTACK_GENERIC_READ, &h),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    assert_null(h);
    assert_int_equal(ramstack_open_handles(f->local), 1);
    assert_int_equal(storstack_close(f->h), STATUS_SUCCESS);
    f->h = NULL;
    assert_int_equal(ramstack_open_handles(f->local), 0);
}

/* The server names a socket client by its credentials; an identity of the client's choosing is
 * taken from root only. */
static void test_open_identity_is_the_peers_unless_root_names_one(void **state)
{
    struct fixture *f = *state;
    char principal[STORSTACK_PRINCIPAL_MAX], tid[STORSTACK_TRANSPORT_ID_MAX], want[32];
    uint64_t nexus;
    storstack_handle_t *h;
    struct storstack_identity who = {.principal = "iqn.2026-11.org.example:host",
                                     .transport_id =
                                         "iqn.2026-11.org.example:host,i,0x23d000000001",
                                     .nexus = 0x1234};

    ramstack_last_identity(f->local, principal, sizeof(principal), tid, sizeof(tid), &nexus);
    snprintf(want, sizeof(want), "uid:%u", (unsigned)getuid());
    assert_string_equal(principal, want);
    assert_string_equal(tid, "");
    assert_int_equal(nexus, 0);

    if (getuid() == 0) {
        assert_int_equal(
            storstack_open_ex(f->client, "PhysicalDrive0", STORSTACK_GENERIC_READ, &who, &h),
            STATUS_SUCCESS);
        ramstack_last_identity(f->local, principal, sizeof(principal), tid, sizeof(tid), &nexus);
        assert_string_equal(principal, who.principal);
        assert_string_equal(tid, who.transport_id);
        assert_int_equal(nexus, 0x1234);
        storstack_close(h);
        /* a client that is not root may not name itself: a fresh process (exec, so no thread of
         * this one is copied into it) opens the socket to everybody, becomes nobody and tries */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl("/proc/self/exe", "test_api_remote", "--open-as-nobody", f->dir, f->path,
                  (char *)NULL);
            _exit(6);
        }
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* bounds are checked before anything is sent */
    who.principal = "";
    assert_int_equal(
        storstack_open_ex(f->client, "PhysicalDrive0", STORSTACK_GENERIC_READ, &who, &h),
        STATUS_INVALID_PARAMETER);
}

static void test_socket_is_owner_only(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    char sub[160];
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_live_socket_refused_stale_socket_replaced(void **state)
{
    struct fixture *f = *state;
    struct storstack_server *second = NULL;
    char err[256] = "";
    char stale[160];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    assert_int_equal(storstack_server_start(f->local, f->path, &second, err, sizeof(err)),
                     -EADDRINUSE);
    assert_non_null(strstr(err, "already listening"));

    /* a socket file nobody listens on any more */
    snprintf(stale, sizeof(stale), "%s/stale.sock", f->dir);
    strcpy(sa.sun_path, stale);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(storstack_server_start(f->local, stale, &second, err, sizeof(err)), 0);
    storstack_t *c = storstack_connect(stale, err, sizeof(err));
    assert_non_null(c);
    storstack_destroy(c);
    storstack_server_stop(second);
    assert_int_equal(access(stale, F_OK), -1);
}

static int raw_connect(const char *path, int hello)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (hello) {
        struct wire_request req = {
            .magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_HELLO, .arg0 = WIRE_VERSION};
        uint8_t b[WIRE_REQUEST_HEADER_SIZE], r[WIRE_RESPONSE_HEADER_SIZE];
        wire_encode_request(&req, b);
        assert_int_equal(send(fd, b, sizeof(b), MSG_NOSIGNAL), sizeof(b));
        assert_int_equal(recv(fd, r, sizeof(r), MSG_WAITALL), sizeof(r));
    }
    return fd;
}

/* The server closes the connection: recv reaches end of file. */
static void assert_closed_by_server(int fd)
{
    uint8_t b[256];
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n;
    while ((n = recv(fd, b, sizeof(b), 0)) > 0)
        ;
    assert_int_equal(n, 0);
    close(fd);
}

static void assert_client_still_works(struct fixture *f)
{
    uint8_t buf[512];
    uint32_t n;
    memset(buf, 0x11, sizeof(buf));
    assert_int_equal(storstack_write(f->h, buf, sizeof(buf), 0, &n), STATUS_SUCCESS);
    assert_int_equal(storstack_read(f->h, buf, sizeof(buf), 0, &n), STATUS_SUCCESS);
}

static void test_malformed_frames_close_only_their_connection(void **state)
{
    struct fixture *f = *state;
    uint8_t b[WIRE_REQUEST_HEADER_SIZE];
    struct wire_request req;
    int fd;

    /* bad magic in the hello */
    fd = raw_connect(f->path, 0);
    memset(b, 0xAB, sizeof(b));
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    assert_closed_by_server(fd);
    assert_client_still_works(f);

    /* bad magic after a good hello */
    fd = raw_connect(f->path, 1);
    req = (struct wire_request){.magic = 0x12345678, .op = WIRE_OP_FLUSH};
    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    assert_closed_by_server(fd);
    assert_client_still_works(f);

    /* a WRITE claiming a payload over the limit */
    fd = raw_connect(f->path, 1);
    req = (struct wire_request){
        .magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_WRITE, .payload_length = WIRE_MAX_PAYLOAD + 1};
    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    assert_closed_by_server(fd);

    /* a READ asking for more than the limit */
    fd = raw_connect(f->path, 1);
    req =
        (struct wire_request){.magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_READ, .arg0 = 0xFFFFFFFFu};
    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    assert_closed_by_server(fd);

    /* an OPEN whose name holds a NUL */
    fd = raw_connect(f->path, 1);
    req =
        (struct wire_request){.magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_OPEN, .payload_length = 4};
    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    send(fd, "ab\0c", 4, MSG_NOSIGNAL);
    assert_closed_by_server(fd);

    /* a truncated frame: the header promises 4096 bytes, 100 arrive, then the peer hangs up */
    fd = raw_connect(f->path, 1);
    req = (struct wire_request){
        .magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_WRITE, .handle = 1, .payload_length = 4096};
    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    close(fd);
    /* half a header */
    fd = raw_connect(f->path, 1);
    send(fd, b, 20, MSG_NOSIGNAL);
    close(fd);

    assert_client_still_works(f);
    assert_int_equal(ramstack_open_handles(f->local), 1);
}

static void test_client_that_stops_reading_stalls_only_itself(void **state)
{
    struct fixture *f = *state;
    struct wire_request req = {
        .magic = WIRE_MAGIC_REQUEST, .op = WIRE_OP_OPEN, .tag = 1, .payload_length = 14};
    uint8_t b[WIRE_REQUEST_HEADER_SIZE], r[WIRE_RESPONSE_HEADER_SIZE];
    struct wire_response rsp;
    int fd = raw_connect(f->path, 1);

    wire_encode_request(&req, b);
    send(fd, b, sizeof(b), MSG_NOSIGNAL);
    send(fd, "PhysicalDrive0", 14, MSG_NOSIGNAL);
    assert_int_equal(recv(fd, r, sizeof(r), MSG_WAITALL), sizeof(r));
    assert_int_equal(wire_decode_response(r, &rsp, NULL), 0);
    assert_int_equal(rsp.status, 0);

    /* 200 reads of 64 KiB whose 12.5 MiB of responses this client never reads */
    for (int i = 0; i < 200; i++) {
        req = (struct wire_request){.magic = WIRE_MAGIC_REQUEST,
                                    .op = WIRE_OP_READ,
                                    .tag = 100 + i,
                                    .handle = rsp.handle,
                                    .offset = (uint64_t)(i % 64) * 65536,
                                    .arg0 = 65536};
        wire_encode_request(&req, b);
        assert_int_equal(send(fd, b, sizeof(b), MSG_NOSIGNAL), sizeof(b));
    }
    usleep(100000);
    /* the stack's completion thread is shared: this must not hang behind the stuck client */
    alarm(30);
    for (int i = 0; i < 20; i++)
        assert_client_still_works(f);
    alarm(0);
    close(fd);
    for (int i = 0; i < 500 && ramstack_open_handles(f->local) != 1; i++)
        usleep(10000);
    assert_int_equal(ramstack_open_handles(f->local), 1);
}

static void test_handles_closed_when_client_disconnects(void **state)
{
    struct fixture *f = *state;
    char err[256];
    storstack_t *c = storstack_connect(f->path, err, sizeof(err));
    storstack_handle_t *h[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(storstack_open(c, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h[i]),
                         STATUS_SUCCESS);
    assert_int_equal(ramstack_open_handles(f->local), 4);
    storstack_destroy(c);
    for (int i = 0; i < 500 && ramstack_open_handles(f->local) != 1; i++)
        usleep(10000);
    assert_int_equal(ramstack_open_handles(f->local), 1);
}

struct tree_arg {
    storstack_t *c;
    char **json;
    storstack_status_t st;
};

static void *tree_thread(void *p)
{
    struct tree_arg *a = p;
    a->st = storstack_get_tree(a->c, a->json);
    return NULL;
}

/* A fake server that says hello, swallows requests and never answers, then hangs up. */
struct mute_server {
    int listen_fd;
    int go[2]; /* a byte on this pipe tells it to hang up */
};

static void *mute_thread(void *p)
{
    struct mute_server *m = p;
    int fd = accept(m->listen_fd, NULL, NULL);
    uint8_t b[WIRE_REQUEST_HEADER_SIZE], r[WIRE_RESPONSE_HEADER_SIZE];
    struct wire_request req;
    struct wire_response rsp = {.magic = WIRE_MAGIC_RESPONSE, .information = WIRE_VERSION};
    char c;
    recv(fd, b, sizeof(b), MSG_WAITALL);
    wire_decode_request(b, &req, NULL);
    rsp.tag = req.tag;
    wire_encode_response(&rsp, r);
    send(fd, r, sizeof(r), MSG_NOSIGNAL);
    read(m->go[0], &c, 1);
    close(fd);
    return NULL;
}

static void test_lost_connection_fails_outstanding_and_future_requests(void **state)
{
    struct fixture *f = *state;
    struct mute_server m;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[160], err[256];
    pthread_t t;

    snprintf(path, sizeof(path), "%s/mute.sock", f->dir);
    strcpy(sa.sun_path, path);
    m.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(m.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    listen(m.listen_fd, 1);
    assert_int_equal(pipe(m.go), 0);
    pthread_create(&t, NULL, mute_thread, &m);

    storstack_t *client = storstack_connect(path, err, sizeof(err));
    assert_non_null(client);

    /* a GET_TREE from another thread stays outstanding: the server never answers */
    char *json = NULL;
    struct tree_arg ta = {client, &json, 0};
    pthread_t tt;
    pthread_create(&tt, NULL, tree_thread, &ta);
    usleep(50000);

    write(m.go[1], "x", 1); /* the server hangs up */
    pthread_join(tt, NULL);
    assert_int_equal(ta.st, STATUS_CONNECTION_DISCONNECTED);
    assert_null(json);

    /* later requests fail at once */
    storstack_handle_t *h = NULL;
    assert_int_equal(storstack_open(client, "PhysicalDrive0", STORSTACK_GENERIC_READ, &h),
                     STATUS_CONNECTION_DISCONNECTED);
    storstack_destroy(client);
    pthread_join(t, NULL);
    close(m.listen_fd);
    close(m.go[0]);
    close(m.go[1]);
    unlink(path);
}

static void test_async_io_outstanding_when_server_stops_fails_disconnected(void **state)
{
    struct fixture *f = *state;
    enum { N = 16 };
    static struct qd_io ios[N];
    struct qd_ctx c = {.done = 0};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);

    ramstack_hold(f->local, 1);
    for (int i = 0; i < N; i++) {
        ios[i].ctx = &c;
        ios[i].status = 0;
        assert_int_equal(
            storstack_read_async(f->h, ios[i].buf, 512, (uint64_t)i * 512, qd_done, &ios[i]),
            STATUS_PENDING);
    }
    usleep(20000);
    assert_int_equal(atomic_load(&c.done), 0);
    /* the client goes away with 16 reads outstanding: each callback runs once, disconnected */
    storstack_destroy(f->client);
    f->client = NULL;
    f->h = NULL; /* freed with the client */
    qd_wait(&c, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(ios[i].status, STATUS_CONNECTION_DISCONNECTED);
    /* the server drains the held I/O and closes the handle */
    ramstack_hold(f->local, 0);
    for (int i = 0; i < 500 && ramstack_open_handles(f->local); i++)
        usleep(10000);
    assert_int_equal(ramstack_open_handles(f->local), 0);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

/* Overlapped DeviceIoControl over the socket: the pass-through conversion completes in the
 * callback, with the data and sense where the caller's SCSI_PASS_THROUGH_DIRECT points. */
static void test_ioctl_async_pass_through_and_raw(void **state)
{
    struct fixture *f = *state;
    struct qd_ctx c = {.done = 0};
    static struct qd_io io, io2;
    struct sptd_with_sense s;
    uint8_t in[5] = {1, 2, 3, 4, 5}, out[5];
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);

    memset(&s, 0, sizeof(s));
    s.sptd.Length = sizeof(s.sptd);
    s.sptd.CdbLength = 6;
    s.sptd.SenseInfoLength = sizeof(s.sense);
    s.sptd.SenseInfoOffset = offsetof(struct sptd_with_sense, sense);
    s.sptd.DataIn = SCSI_IOCTL_DATA_IN;
    s.sptd.DataTransferLength = 64;
    s.sptd.DataBuffer = io.buf;
    s.sptd.Cdb[0] = 0x12;
    s.sptd.Cdb[4] = 64;
    io.ctx = &c;
    io2.ctx = &c;
    assert_int_equal(storstack_ioctl_async(f->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof(s), &s,
                                           sizeof(s), qd_done, &io),
                     STATUS_PENDING);
    assert_int_equal(storstack_ioctl_async(f->h, RAMSTACK_IOCTL_REVERSE, in, sizeof(in), out,
                                           sizeof(out), qd_done, &io2),
                     STATUS_PENDING);
    qd_wait(&c, 2);
    assert_int_equal(io.status, STATUS_SUCCESS);
    assert_int_equal(io.info, sizeof(s.sptd));
    assert_int_equal(s.sptd.DataTransferLength, 36);
    assert_memory_equal(io.buf + 8, "STORSTAK", 8);
    assert_int_equal(io2.status, STATUS_SUCCESS);
    assert_int_equal(io2.info, 5);
    assert_int_equal(out[0], 5);
    assert_int_equal(out[4], 1);
    /* a bad request is refused up front, with no callback */
    assert_int_equal(storstack_ioctl_async(f->h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, 8, &s,
                                           sizeof(s), qd_done, &io),
                     STATUS_INVALID_PARAMETER);
    assert_int_equal(storstack_ioctl_async(f->h, 0, NULL, 0, NULL, 0, NULL, &io),
                     STATUS_INVALID_PARAMETER);
    usleep(10000);
    assert_int_equal(atomic_load(&c.done), 2);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

/* CancelIoEx over the socket: CANCEL names each outstanding request of the context by tag; the
 * server cancels its READ/WRITE in flight; the others complete normally. */
static void test_cancel_by_context_over_the_socket(void **state)
{
    struct fixture *f = *state;
    enum { N = 6 };
    static struct qd_io ios[N];
    struct qd_ctx c = {.done = 0};
    uint32_t n = 99;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);

    ramstack_hold(f->local, 1);
    for (int i = 0; i < N; i++) {
        ios[i].ctx = &c;
        ios[i].status = 0;
        assert_int_equal(
            storstack_read_async(f->h, ios[i].buf, 512, (uint64_t)i * 512, qd_done, &ios[i]),
            STATUS_PENDING);
    }
    /* the server has issued them all once it answers a synchronous request behind them */
    assert_int_equal(storstack_flush(f->h), STATUS_SUCCESS);
    assert_int_equal(storstack_cancel(f->h, &ios[2], &n), STATUS_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(storstack_cancel(f->h, &ios[2], &n), STATUS_SUCCESS);
    assert_int_equal(n, 0); /* already gone */
    assert_int_equal(storstack_cancel(NULL, NULL, &n), STATUS_INVALID_HANDLE);
    ramstack_hold(f->local, 0);
    qd_wait(&c, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(ios[i].status, i == 2 ? STATUS_CANCELLED : STATUS_SUCCESS);

    /* NULL: every request of the handle */
    atomic_store(&c.done, 0);
    ramstack_hold(f->local, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(storstack_read_async(f->h, ios[i].buf, 512, 0, qd_done, &ios[i]),
                         STATUS_PENDING);
    assert_int_equal(storstack_flush(f->h), STATUS_SUCCESS);
    assert_int_equal(storstack_cancel(f->h, NULL, &n), STATUS_SUCCESS);
    assert_int_equal(n, 3);
    qd_wait(&c, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ios[i].status, STATUS_CANCELLED);
    ramstack_hold(f->local, 0);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

/* The child of test_open_identity_is_the_peers_unless_root_names_one, run as nobody: 0 when the
 * server refuses it an identity of its choosing. */
static int open_as_nobody(const char *dir, const char *path)
{
    char err[256], sub[160];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    if (chmod(dir, 0777) || chmod(sub, 0777) || chmod(path, 0777) || setgid(65534) || setuid(65534))
        return 3;
    storstack_handle_t *h;
    struct storstack_identity who = {.principal = "iqn.2026-11.org.example:host", .nexus = 7};
    storstack_t *c = storstack_connect(path, err, sizeof(err));
    if (!c)
        return 4;
    int rc = storstack_open_ex(c, "PhysicalDrive0", STORSTACK_GENERIC_READ, &who, &h) ==
                     STATUS_ACCESS_DENIED
                 ? 0
                 : 5;
    storstack_destroy(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--open-as-nobody") == 0)
        return open_as_nobody(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_beyond_end_returns_status_without_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_qd32_completes_each_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_threads_share_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ioctl_in_and_out_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_through_direct_is_converted_and_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tree_and_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ioctl_async_pass_through_and_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_by_context_over_the_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_unknown_and_stale_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_identity_is_the_peers_unless_root_names_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_is_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket_refused_stale_socket_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_close_only_their_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_that_stops_reading_stalls_only_itself, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handles_closed_when_client_disconnects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_connection_fails_outstanding_and_future_requests,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_async_io_outstanding_when_server_stops_fails_disconnected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
