#ifndef DARI_BRIDGE_CRABBITMQ_SHIM_H
#define DARI_BRIDGE_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <string.h>

/*
 * amqp_login_with_properties() is a C variadic function (the SASL method's
 * arguments follow `sasl_method`). Swift cannot call C variadic functions (the
 * importer marks them unavailable), so this non-variadic wrapper does the
 * PLAIN login for us, with our client properties (connection name shown in
 * the management UI, and the capabilities we rely on: publisher confirms,
 * consumer cancel notify, connection.blocked).
 */
static inline amqp_rpc_reply_t dari_amqp_login_plain_with_properties(amqp_connection_state_t state,
                                                     const char *vhost,
                                                     int channel_max,
                                                     int frame_max,
                                                     int heartbeat,
                                                     const amqp_table_t *properties,
                                                     const char *user,
                                                     const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                      properties, AMQP_SASL_METHOD_PLAIN, user, password);
}

static inline void dari_e16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void dari_e32(uint8_t *p, uint32_t v) { dari_e16(p, (uint16_t)(v >> 16)); dari_e16(p + 2, (uint16_t)v); }
static inline void dari_e64(uint8_t *p, uint64_t v) { dari_e32(p, (uint32_t)(v >> 32)); dari_e32(p + 4, (uint32_t)v); }

/*
 * The frames of one basic.publish (method, content header, body split at
 * frame_max) encoded into `out` with librabbitmq's own encoders, the same
 * bytes amqp_basic_publish() writes, so that the caller can send them with
 * one send(2) instead of the library's three (see AMQPIO+Publish.swift).
 * Returns the length, or a negative amqp_status_enum (AMQP_STATUS_NO_MEMORY:
 * `cap` too small; AMQP_STATUS_BAD_AMQP_DATA: a frame over frame_max).
 */
static inline long dari_encode_publish(uint8_t *out, size_t cap, amqp_channel_t channel,
                                       amqp_bytes_t exchange, amqp_bytes_t routing_key, int mandatory,
                                       amqp_basic_properties_t *props, const uint8_t *body, size_t body_len,
                                       size_t frame_max) {
    if (frame_max < 4096 || cap < 64) return AMQP_STATUS_NO_MEMORY;
    amqp_basic_publish_t m;
    memset(&m, 0, sizeof m);
    m.exchange = exchange;
    m.routing_key = routing_key;
    m.mandatory = mandatory ? 1 : 0;
    size_t o = 0;
    /* Method frame: type, channel, size, method id, arguments, frame end. */
    size_t room = (cap < frame_max ? cap : frame_max) - 8 - 4;
    amqp_bytes_t encoded = { room, out + 7 + 4 };
    int r = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &m, encoded);
    if (r < 0) return r;
    out[0] = AMQP_FRAME_METHOD;
    dari_e16(out + 1, channel);
    dari_e32(out + 3, (uint32_t)r + 4);
    dari_e32(out + 7, AMQP_BASIC_PUBLISH_METHOD);
    out[7 + 4 + r] = AMQP_FRAME_END;
    o = 7 + 4 + (size_t)r + 1;
    /* Content header: class, weight 0, body size, then the properties. */
    if (cap - o < 8 + 12 + 1) return AMQP_STATUS_NO_MEMORY;
    room = cap - o - 8 - 12;
    if (room > frame_max - 8 - 12) room = frame_max - 8 - 12;
    encoded.len = room;
    encoded.bytes = out + o + 7 + 12;
    r = amqp_encode_properties(AMQP_BASIC_CLASS, props, encoded);
    if (r < 0) return r;
    out[o] = AMQP_FRAME_HEADER;
    dari_e16(out + o + 1, channel);
    dari_e32(out + o + 3, (uint32_t)r + 12);
    dari_e16(out + o + 7, AMQP_BASIC_CLASS);
    dari_e16(out + o + 9, 0);
    dari_e64(out + o + 11, (uint64_t)body_len);
    out[o + 7 + 12 + r] = AMQP_FRAME_END;
    o += 7 + 12 + (size_t)r + 1;
    /* Body frames of at most frame_max - 8 bytes each. */
    size_t chunk = frame_max - 8, done = 0;
    while (done < body_len) {
        size_t n = body_len - done;
        if (n > chunk) n = chunk;
        if (cap - o < n + 8) return AMQP_STATUS_NO_MEMORY;
        out[o] = AMQP_FRAME_BODY;
        dari_e16(out + o + 1, channel);
        dari_e32(out + o + 3, (uint32_t)n);
        memcpy(out + o + 7, body + done, n);
        out[o + 7 + n] = AMQP_FRAME_END;
        o += n + 8;
        done += n;
    }
    return (long)o;
}

#endif
