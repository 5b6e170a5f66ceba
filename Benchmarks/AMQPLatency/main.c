// The broker's own latency floor for one task message, measured with rabbitmq-c and nothing of Conveyor: a
// persistent message is published with a confirm, one at a time, while a consumer on a second connection (prefetch
// 10, manual acks) takes it. For a classic and a quorum queue it reports, from the publish:
//   - confirm: when the publisher holds the broker's confirm (what `submit` waits for);
//   - deliver: when the consumer holds the message (the earliest a worker could start).
// A task's round trip can be no shorter than the later of the two plus the worker's Redis round trips, so these
// figures are the budget the end-to-end benchmark's round trip is read against.
//
// Usage: amqp-latency HOST PORT QUEUE_PREFIX COUNT
// Prints one JSON line with p50 and p99 of each, in milliseconds.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "amqp-latency: %s\n", what);
    exit(1);
}

static void check(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type != AMQP_RESPONSE_NORMAL) die(what);
}

static const char *host;
static int port;

static amqp_connection_state_t open_connection(void) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (!socket || amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) die("cannot connect");
    check(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login failed");
    amqp_channel_open(conn, 1);
    check(amqp_get_rpc_reply(conn), "channel.open failed");
    return conn;
}

struct run {
    const char *queue;
    long count;
    // The consumer stores the time it received message i; the publisher spins until it appears.
    _Atomic double *delivered;
};

static void *consume(void *argument) {
    struct run *run = argument;
    amqp_connection_state_t conn = open_connection();
    amqp_basic_qos(conn, 1, 0, 10, 0);
    check(amqp_get_rpc_reply(conn), "basic.qos failed");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(run->queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "basic.consume failed");
    for (long received = 0; received < run->count; received++) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        check(amqp_consume_message(conn, &envelope, NULL, 0), "consume failed");
        char text[24] = {0};
        memcpy(text, envelope.message.body.bytes, envelope.message.body.len < 23 ? envelope.message.body.len : 23);
        long index = atol(text);
        if (index >= 0 && index < run->count) atomic_store(&run->delivered[index], now_seconds());
        amqp_basic_ack(conn, 1, envelope.delivery_tag, 0);
        amqp_destroy_envelope(&envelope);
    }
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return NULL;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(double *sorted, long n, double q) { return sorted[(long)(q * (double)(n - 1))] * 1e3; }

// Measures one queue type; writes p50 and p99 of confirm and deliver (ms) into figures[0..3].
static void measure(const char *queue, int quorum, long count, double figures[4]) {
    amqp_connection_state_t publisher = open_connection();
    amqp_table_entry_t type = {.key = amqp_cstring_bytes("x-queue-type"),
                               .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                         .value.bytes = amqp_cstring_bytes(quorum ? "quorum" : "classic")}};
    amqp_table_t arguments = {.num_entries = 1, .entries = &type};
    amqp_queue_declare(publisher, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, arguments);
    check(amqp_get_rpc_reply(publisher), "queue.declare failed");
    amqp_confirm_select(publisher, 1);
    check(amqp_get_rpc_reply(publisher), "confirm.select failed");

    struct run run = {.queue = queue, .count = count, .delivered = calloc((size_t)count, sizeof(_Atomic double))};
    double *confirm = calloc((size_t)count, sizeof(double)), *deliver = calloc((size_t)count, sizeof(double));
    if (!run.delivered || !confirm || !deliver) die("out of memory");
    pthread_t consumer;
    if (pthread_create(&consumer, NULL, consume, &run) != 0) die("cannot start the consumer");
    // Let the consumer subscribe before the first publish.
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);

    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    for (long i = 0; i < count; i++) {
        char body[24];
        snprintf(body, sizeof body, "%ld", i);
        double sent = now_seconds();
        if (amqp_basic_publish(publisher, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                               amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
            die("publish failed");
        for (;;) {
            amqp_frame_t frame;
            if (amqp_simple_wait_frame(publisher, &frame) != AMQP_STATUS_OK) die("wait for confirm failed");
            if (frame.frame_type != AMQP_FRAME_METHOD) continue;
            if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) die("nacked");
            if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) break;
        }
        confirm[i] = now_seconds() - sent;
        double at;
        while ((at = atomic_load(&run.delivered[i])) == 0) {
        }
        deliver[i] = at - sent;
        amqp_maybe_release_buffers(publisher);
    }
    pthread_join(consumer, NULL);
    qsort(confirm, (size_t)count, sizeof(double), compare);
    qsort(deliver, (size_t)count, sizeof(double), compare);
    figures[0] = quantile(confirm, count, 0.5);
    figures[1] = quantile(confirm, count, 0.99);
    figures[2] = quantile(deliver, count, 0.5);
    figures[3] = quantile(deliver, count, 0.99);

    amqp_queue_delete(publisher, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_channel_close(publisher, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(publisher, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(publisher);
    free(run.delivered);
    free(confirm);
    free(deliver);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: amqp-latency HOST PORT QUEUE_PREFIX COUNT\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    long count = atol(argv[4]);
    if (port <= 0 || count <= 1) die("PORT must be positive and COUNT at least 2");
    char classic[256], quorum[256];
    snprintf(classic, sizeof classic, "%s-classic", argv[3]);
    snprintf(quorum, sizeof quorum, "%s-quorum", argv[3]);
    double c[4], q[4];
    measure(classic, 0, count, c);
    measure(quorum, 1, count, q);
    printf("{\"benchmark\": \"amqp_latency\", \"messages\": %ld, "
           "\"classic_confirm_p50_ms\": %.3f, \"classic_confirm_p99_ms\": %.3f, "
           "\"classic_deliver_p50_ms\": %.3f, \"classic_deliver_p99_ms\": %.3f, "
           "\"quorum_confirm_p50_ms\": %.3f, \"quorum_confirm_p99_ms\": %.3f, "
           "\"quorum_deliver_p50_ms\": %.3f, \"quorum_deliver_p99_ms\": %.3f}\n",
           count, c[0], c[1], c[2], c[3], q[0], q[1], q[2], q[3]);
    return 0;
}
