// The C reference for Conveyor's AMQP benchmark: the same rabbitmq-c library driven by the smallest loop that does
// the same work (persistent publishes with confirms in batches, then consume with manual acks), so the Swift
// client's figures can be read as a ratio to what the library itself allows on this machine.
//
// Usage: amqp-reference HOST PORT QUEUE COUNT BATCH BODY_BYTES PREFETCH
// Prints one JSON line: {"publish_batched_msgs_per_s": ..., "consume_ack_msgs_per_s": ..., "both_msgs_per_s": ...}
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_on_reply(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqp-reference: %s failed (reply type %d)\n", what, r.reply_type);
        exit(1);
    }
}

static amqp_connection_state_t open_connection(const char *host, int port) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (!socket || amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp-reference: cannot connect to %s:%d\n", host, port);
        exit(1);
    }
    die_on_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    die_on_reply(amqp_get_rpc_reply(conn), "channel.open");
    return conn;
}

// Publishes `count` messages in batches, waiting after each batch until the broker confirmed all of it.
static void publish_confirmed(amqp_connection_state_t conn, const char *queue, long count, long batch,
                              amqp_bytes_t body) {
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/json");
    uint64_t published = 0, confirmed = 0;
    long sent = 0;
    while (sent < count) {
        long n = (count - sent) < batch ? (count - sent) : batch;
        for (long i = 0; i < n; i++) {
            if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props, body) !=
                AMQP_STATUS_OK) {
                fprintf(stderr, "amqp-reference: publish failed\n");
                exit(1);
            }
            published++;
        }
        sent += n;
        while (confirmed < published) {
            amqp_frame_t frame;
            if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
                fprintf(stderr, "amqp-reference: wait for confirm failed\n");
                exit(1);
            }
            if (frame.frame_type != AMQP_FRAME_METHOD) continue;
            if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *ack = frame.payload.method.decoded;
                confirmed = ack->multiple ? ack->delivery_tag : confirmed + 1;
            } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                fprintf(stderr, "amqp-reference: nacked\n");
                exit(1);
            }
        }
        amqp_maybe_release_buffers(conn);
    }
}

// Consumes `count` messages with manual acks, acking each (multiple=false), as a worker would.
static void consume_acked(amqp_connection_state_t conn, const char *queue, long count, int prefetch) {
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(conn), "basic.consume");
    for (long received = 0; received < count;) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, NULL, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf(stderr, "amqp-reference: consume failed\n");
            exit(1);
        }
        amqp_basic_ack(conn, 1, envelope.delivery_tag, 0);
        amqp_destroy_envelope(&envelope);
        received++;
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: amqp-reference HOST PORT QUEUE COUNT BATCH BODY_BYTES PREFETCH\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *queue = argv[3];
    long count = atol(argv[4]);
    long batch = atol(argv[5]);
    size_t body_size = (size_t)atol(argv[6]);
    int prefetch = atoi(argv[7]);
    if (port <= 0 || count <= 0 || batch <= 0 || prefetch <= 0) {
        fprintf(stderr, "amqp-reference: PORT, COUNT, BATCH and PREFETCH must be positive\n");
        return 2;
    }
    char *payload = malloc(body_size ? body_size : 1);
    memset(payload, 'x', body_size);
    amqp_bytes_t body = {.len = body_size, .bytes = payload};

    amqp_connection_state_t publisher = open_connection(host, port);
    amqp_connection_state_t consumer = open_connection(host, port);
    amqp_queue_declare(publisher, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(publisher), "queue.declare");
    amqp_confirm_select(publisher, 1);
    die_on_reply(amqp_get_rpc_reply(publisher), "confirm.select");

    double t0 = now_seconds();
    publish_confirmed(publisher, queue, count, batch, body);
    double t1 = now_seconds();
    consume_acked(consumer, queue, count, prefetch);
    double t2 = now_seconds();

    printf("{\"publish_batched_msgs_per_s\": %.0f, \"consume_ack_msgs_per_s\": %.0f}\n", (double)count / (t1 - t0),
           (double)count / (t2 - t1));

    amqp_queue_delete(publisher, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_channel_close(publisher, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(publisher, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(publisher);
    amqp_channel_close(consumer, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(consumer, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(consumer);
    free(payload);
    return 0;
}
