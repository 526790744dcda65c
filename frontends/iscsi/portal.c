/*
 * The iSCSI portal (RFC 7143 4.1, network portal): a listening TCP socket, the thread that
 * accepts connections, and the event loops (conn.c), one per CPU: each new connection goes to the
 * loop with the fewest. Contract: start binds and listens before it returns; stop wakes the
 * acceptor through a pipe and joins it, then tells every loop to stop (each closes its
 * connections and waits for their commands to come back) and joins them before freeing
 * anything. A loop never closes a connection's socket (the portal does, when it frees the
 * connection), so nothing shuts down a reused fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "frontends/iscsi/iscsi_p.h"

/* Frees the connections their loops have let go of. Portal lock held. */
static void iscsi_portal_reap(struct iscsi_target *t)
{
    struct iscsi_conn **pp = &t->conns;

    while (*pp) {
        struct iscsi_conn *c = *pp;
        if (!c->done) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        close(c->fd);
        close(c->efd);
        pthread_mutex_destroy(&c->cq_lock);
        free(c);
    }
}

/* Wakes a loop to look at its incoming list and stop flag. */
static void iscsi_loop_kick(struct iscsi_loop *lp)
{
    uint64_t one = 1;

    if (write(lp->wake, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow */
    }
}

/* Hands a new connection to the loop with the fewest. Portal lock held. */
static void iscsi_portal_hand_over(struct iscsi_target *t, struct iscsi_conn *c)
{
    struct iscsi_loop *lp = &t->loops[0];

    for (unsigned i = 1; i < t->nloops; i++)
        if (t->loops[i].nconns < lp->nconns)
            lp = &t->loops[i];
    lp->nconns++;
    c->loop = lp;
    pthread_mutex_lock(&lp->lock);
    c->loop_next = lp->incoming;
    lp->incoming = c;
    pthread_mutex_unlock(&lp->lock);
    iscsi_loop_kick(lp);
}

static void *iscsi_portal_main(void *arg)
{
    struct iscsi_target *t = arg;
    struct pollfd pfd[2] = {{.fd = t->lfd, .events = POLLIN}, {.fd = t->wake[0], .events = POLLIN}};

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        int fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&t->lock);
        iscsi_portal_reap(t);
        unsigned n = 0;
        for (struct iscsi_conn *c = t->conns; c; c = c->next)
            n++;
        struct iscsi_conn *c = n < ISCSI_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
        if (c) {
            c->target = t;
            c->fd = fd;
            c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            pthread_mutex_init(&c->cq_lock, NULL);
            if (c->efd >= 0) {
                c->next = t->conns;
                t->conns = c;
                iscsi_portal_hand_over(t, c);
            } else {
                pthread_mutex_destroy(&c->cq_lock);
                free(c);
                c = NULL;
            }
        }
        pthread_mutex_unlock(&t->lock);
        if (!c)
            close(fd);
    }
    return NULL;
}

/* Tells loops [0, n) to stop and joins them (each ends its connections first), then frees them. */
static void iscsi_loops_join(struct iscsi_target *t, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct iscsi_loop *lp = &t->loops[i];
        pthread_mutex_lock(&lp->lock);
        lp->stop = true;
        pthread_mutex_unlock(&lp->lock);
        iscsi_loop_kick(lp);
        pthread_join(lp->thread, NULL);
    }
    for (unsigned i = 0; i < t->nloops; i++) {
        struct iscsi_loop *lp = &t->loops[i];
        if (lp->epfd >= 0)
            close(lp->epfd);
        if (lp->wake >= 0)
            close(lp->wake);
        pthread_mutex_destroy(&lp->lock);
    }
    t->nloops = 0;
}

static void iscsi_loops_stop(struct iscsi_target *t)
{
    iscsi_loops_join(t, t->nloops);
}

/* One event loop per CPU the process may run on (at most ISCSI_MAX_LOOPS): 0, or -errno. */
static int iscsi_loops_start(struct iscsi_target *t)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cpus < 1 ? 1 : cpus > ISCSI_MAX_LOOPS ? ISCSI_MAX_LOOPS : (unsigned)cpus;
    unsigned started = 0;
    int rc = 0;

    t->nloops = n;
    for (unsigned i = 0; i < n; i++) {
        struct iscsi_loop *lp = &t->loops[i];
        lp->target = t;
        pthread_mutex_init(&lp->lock, NULL);
        lp->epfd = epoll_create1(EPOLL_CLOEXEC);
        lp->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    for (unsigned i = 0; i < n && !rc; i++) {
        struct iscsi_loop *lp = &t->loops[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (lp->epfd < 0 || lp->wake < 0 || epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wake, &ev))
            rc = -errno;
        else if ((rc = -pthread_create(&lp->thread, NULL, iscsi_loop_main, lp)) == 0)
            started++;
    }
    if (rc)
        iscsi_loops_join(t, started);
    return rc;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" into host and port strings. */
static int iscsi_split_portal(const char *portal, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon;
    size_t n;

    if (portal[0] == '[') {
        const char *close = strchr(portal, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        n = (size_t)(close - portal - 1);
        if (n >= hlen)
            return -EINVAL;
        memcpy(host, portal + 1, n);
        host[n] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(portal, ':');
        if (!colon)
            return -EINVAL;
        n = (size_t)(colon - portal);
        if (n == 0 || n >= hlen)
            return -EINVAL;
        memcpy(host, portal, n);
        host[n] = 0;
    }
    if (!colon[1] || strlen(colon + 1) >= plen)
        return -EINVAL;
    char *end;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (*end || v > 65535)
        return -EINVAL;
    snprintf(port, plen, "%lu", v);
    return 0;
}

int iscsi_target_start(storstack_t *stack, const struct iscsi_target_config *cfg,
                       struct iscsi_target **out, char *err, size_t errlen)
{
    const char *portal = cfg && cfg->portal ? cfg->portal : ISCSI_DEFAULT_PORTAL;
    char host[64], port[8], shown[64];
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct iscsi_target *t;
    int rc, one = 1;

    *out = NULL;
    if (cfg && (rc = iscsi_config_check(cfg, err, errlen)))
        return rc;
    if (iscsi_split_portal(portal, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, errlen, "iSCSI portal '%s': expected ADDR:PORT", portal);
        return -EINVAL;
    }
    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "iSCSI portal '%s': %s", portal, gai_strerror(rc));
        return -EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->stack = stack;
    t->wake[0] = t->wake[1] = -1;
    if (cfg)
        t->cfg = *cfg;
    else
        iscsi_config_default(&t->cfg);
    t->cfg.portal = NULL;       /* the caller's string; t->address is what was bound */
    if (t->cfg.ntargets == 0) { /* the built-in default: one target, LUN 0 = PhysicalDrive0 */
        t->cfg.ntargets = 1;
        snprintf(t->cfg.targets[0].iqn, ISCSI_IQN_MAX, "%s", ISCSI_DEFAULT_IQN);
        t->cfg.targets[0].nluns = 1;
        t->cfg.targets[0].luns[0].lun = 0;
        snprintf(t->cfg.targets[0].luns[0].device, ISCSI_DEVICE_MAX, "%s",
                 t->cfg.device ? t->cfg.device : ISCSI_DEFAULT_DEVICE);
    }
    t->cfg.device = NULL; /* the caller's string, copied above when it was used */
    for (unsigned i = 0; i < t->cfg.ntargets; i++) {
        t->login_targets[i].iqn = t->cfg.targets[i].iqn;
        t->login_targets[i].chap = &t->cfg.targets[i].chap;
    }
    t->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->lfd < 0 || setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(t->lfd, ai->ai_addr, ai->ai_addrlen) || listen(t->lfd, 128) ||
        getsockname(t->lfd, (struct sockaddr *)&ss, &sl) || pipe2(t->wake, O_CLOEXEC)) {
        rc = -errno;
        snprintf(err, errlen, "iSCSI portal %s: %s", portal, strerror(errno));
        goto fail;
    }
    freeaddrinfo(ai);
    ai = NULL;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        t->port = ntohs(s6->sin6_port);
        inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof(shown));
        snprintf(t->address, sizeof(t->address), "[%s]:%u", shown, t->port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        t->port = ntohs(s4->sin_port);
        inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof(shown));
        snprintf(t->address, sizeof(t->address), "%s:%u", shown, t->port);
    }
    t->login_cfg.targets = t->login_targets;
    t->login_cfg.ntargets = t->cfg.ntargets;
    t->login_cfg.address = t->address;
    t->login_cfg.limits.digests = !t->cfg.digests_off;
    t->login_cfg.tpgt = 1;
    t->login_cfg.limits.max_recv_dsl = ISCSI_OUR_MRDSL;
    t->login_cfg.limits.max_burst = 262144;
    t->login_cfg.limits.first_burst = 65536;
    t->login_cfg.limits.immediate_data = true;
    t->login_cfg.limits.initial_r2t = false;
    pthread_mutex_init(&t->lock, NULL);
    if ((rc = iscsi_loops_start(t)) != 0) {
        pthread_mutex_destroy(&t->lock);
        snprintf(err, errlen, "cannot start the iSCSI event loops: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = -pthread_create(&t->thread, NULL, iscsi_portal_main, t)) != 0) {
        iscsi_loops_stop(t);
        pthread_mutex_destroy(&t->lock);
        snprintf(err, errlen, "cannot start the iSCSI portal thread");
        goto fail;
    }
    *out = t;
    return 0;

fail:
    if (ai)
        freeaddrinfo(ai);
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->wake[0] >= 0) {
        close(t->wake[0]);
        close(t->wake[1]);
    }
    free(t);
    return rc ? rc : -EIO;
}

uint16_t iscsi_target_port(const struct iscsi_target *t)
{
    return t->port;
}

const char *iscsi_target_address(const struct iscsi_target *t)
{
    return t->address;
}

const char *iscsi_target_name(const struct iscsi_target *t, unsigned index)
{
    return index < t->cfg.ntargets ? t->cfg.targets[index].iqn : NULL;
}

void iscsi_target_stop(struct iscsi_target *t)
{
    if (!t)
        return;
    if (write(t->wake[1], "x", 1) < 0) {
        /* the pipe cannot be full with one byte; nothing else to do */
    }
    pthread_join(t->thread, NULL);
    iscsi_loops_stop(t); /* every connection has ended */
    pthread_mutex_lock(&t->lock);
    iscsi_portal_reap(t);
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_destroy(&t->lock);
    close(t->lfd);
    close(t->wake[0]);
    close(t->wake[1]);
    free(t);
}
