#ifndef DARI_BRIDGE_CRABBITMQ_SHIM_H
#define DARI_BRIDGE_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/eventfd.h>
#include <poll.h>

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

#endif
