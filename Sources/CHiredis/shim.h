#ifndef CONVEYOR_CHIREDIS_SHIM_H
#define CONVEYOR_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <fcntl.h>

// hiredis 0.14 only treats EAGAIN as "try later" when REDIS_BLOCK is clear; we connect blocking (for a clear
// connect error and timeout) and then switch the socket to non-blocking for the event loop.
static inline int conveyor_redis_set_nonblocking(redisContext *c) {
    int flags = fcntl(c->fd, F_GETFL);
    if (flags == -1) return -1;
    if (fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) == -1) return -1;
    c->flags &= ~REDIS_BLOCK;
    return 0;
}

#endif
