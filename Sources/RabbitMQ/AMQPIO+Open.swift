import CRabbitMQ
import Glibc

extension AMQPIO {
    /// TCP/TLS connect, login with our client properties, open channel 1, confirm.select.
    func open() throws {
        guard let s = amqp_new_connection() else { throw AMQPError(kind: .connect, text: "out of memory") }
        state = s
        let url = connection.url
        let socket: OpaquePointer?
        if url.tls {
            socket = amqp_ssl_socket_new(s)
            if let socket {
                // Uses the system's CA store; peer and host name are verified.
                amqp_ssl_socket_set_verify_peer(socket, 1)
                amqp_ssl_socket_set_verify_hostname(socket, 1)
            }
        } else {
            socket = amqp_tcp_socket_new(s)
        }
        guard let socket else { throw AMQPError(kind: .connect, text: "could not create socket") }
        var rpcTimeout = timeval(tv_sec: options.rpcTimeoutSeconds, tv_usec: 0)
        amqp_set_rpc_timeout(s, &rpcTimeout)
        var handshakeTimeout = timeval(tv_sec: options.connectTimeoutSeconds, tv_usec: 0)
        amqp_set_handshake_timeout(s, &handshakeTimeout)
        var connectTimeout = timeval(tv_sec: options.connectTimeoutSeconds, tv_usec: 0)
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &connectTimeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            let reason = String(cString: amqp_error_string2(status))
            throw AMQPError(kind: .connect, text: "cannot reach \(url.host):\(url.port): \(reason)", libraryStatus: status)
        }
        let arena = CArena()
        var properties = arena.table([
            "connection_name": .string(options.connectionName),
            "product": "dari-bridge",
            "capabilities": .table([
                "publisher_confirms": true,
                "consumer_cancel_notify": true,
                "connection.blocked": true,
                "basic.nack": true,
                "authentication_failure_close": true,
            ]),
        ])
        let login = dari_amqp_login_plain_with_properties(s, url.vhost, 1, 131_072, options.heartbeatSeconds, &properties, url.user, url.password)
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            var e = error(from: login, context: "login to \(url)")
            if e.kind == .library, login.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue || login.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue {
                e.text += " (wrong user/password or vhost?)"
            }
            e.kind = e.kind == .library ? .connect : e.kind
            throw e
        }
        amqp_channel_open(s, channel)
        try check("channel.open")
        amqp_confirm_select(s, channel)
        try check("confirm.select")
    }
}
