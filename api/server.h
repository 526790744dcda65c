/*
 * The management socket server: serves a stack (usually a local one) to other processes over a
 * Unix stream socket, speaking the wire protocol of api/wire.h. Each call in storstack.h becomes
 * one request; reads and writes are issued asynchronously so a pipelining client gets real queue
 * depth. Two servers (on two paths) can run in one process.
 */
#ifndef STORSTACK_API_SERVER_H
#define STORSTACK_API_SERVER_H

#include <stddef.h>

#include <storstack/storstack.h>

struct storstack_server;

/*
 * Creates socket_path (mode 0600; its parent directory 0700 when missing), replacing a stale
 * socket left by a dead server but refusing one a live server listens on, and starts accepting
 * connections for stack. The stack must outlive the server. Returns 0, or a negative errno and a
 * one-line reason in err.
 */
int storstack_server_start(storstack_t *stack, const char *socket_path,
                           struct storstack_server **out, char *err, size_t errlen);

/*
 * Stops accepting, disconnects every client, waits for requests in flight to complete, closes the
 * handles clients left open and removes the socket file.
 */
void storstack_server_stop(struct storstack_server *server);

#endif
