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

// Bytes appended with redisAppend* that redisBufferWrite has not written yet (the owner thread polls for POLLOUT
// only while this is non-zero).
static inline size_t conveyor_redis_pending_output(const redisContext *c) {
    return c->obuf == NULL ? 0 : sdslen(c->obuf);
}

// The context's error text; `errstr` is a fixed char array, which Swift sees as an awkward 128-element tuple.
static inline const char *conveyor_redis_errstr(const redisContext *c) {
    return c->errstr;
}

#endif
