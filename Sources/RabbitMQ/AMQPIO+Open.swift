import CRabbitMQ
import Glibc

extension AMQPIO {
    /// TCP/TLS connect, login with our client properties, open channel 1, confirm.select.
    func open() throws {
        guard let s = amqp_new_connection() else { throw AMQPError(kind: .connect, text: "out of memory") }
        state = s
        let url = connection.url
        let tls = url.tlsOptions.merged(over: options.tls)
        let socket: OpaquePointer?
        if url.tls {
            socket = amqp_ssl_socket_new(s)
            if let socket { try configureTLS(socket, tls) }
        } else {
            socket = amqp_tcp_socket_new(s)
        }
        guard let socket else { throw AMQPError(kind: .connect, text: "could not create socket") }
        var rpcTimeout = timeval(tv_sec: options.rpcTimeoutSeconds, tv_usec: 0)
        amqp_set_rpc_timeout(s, &rpcTimeout)
        let timeoutMs = url.connectionTimeoutMs ?? max(1, min(options.connectTimeoutSeconds, 86_400)) * 1000
        var handshakeTimeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        amqp_set_handshake_timeout(s, &handshakeTimeout)
        var connectTimeout = handshakeTimeout
        let status = amqp_socket_open_noblock(socket, url.host, Int32(clamping: url.port), &connectTimeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            let reason = String(cString: amqp_error_string2(status))
            throw AMQPError(kind: .connect, text: "cannot reach \(url.host):\(url.port): \(reason)\(Self.tlsHint(status, url: url, tls: tls))", libraryStatus: status)
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
        let heartbeat = Int32(clamping: url.heartbeatSeconds ?? Int(options.heartbeatSeconds))
        // channel_max 2: channel 1 for everything, channel 2 for `queueCounts`.
        let login = dari_amqp_login_plain_with_properties(s, url.vhost, 2, 131_072, heartbeat, &properties, url.user, url.password)
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            var e = error(from: login, context: "login to \(url)")
            if e.kind == .library, login.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue || login.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue {
                e.text += " (wrong user/password or vhost?)"
            }
            if e.kind == .library, url.tls, tls.certFile == nil, login.library_error == AMQP_STATUS_SSL_ERROR.rawValue || login.library_error == AMQP_STATUS_SOCKET_ERROR.rawValue {
                // TLS 1.3: the client's handshake is done before the broker has
                // checked for a client certificate; its refusal shows up as an
                // alert at our first read, i.e. during login.
                e.text += " (does the broker require a client certificate? set certfile and keyfile)"
            }
            e.kind = e.kind == .library ? .connect : e.kind
            throw e
        }
        connection.shared.withLock { $0.heartbeat = Int32(amqp_get_heartbeat(s)) }
        amqp_channel_open(s, channel)
        try check("channel.open")
        amqp_confirm_select(s, channel)
        try check("confirm.select")
        if !url.tls { plainSocket = amqp_get_sockfd(s) }
    }

    /// CA bundle, client certificate, verification. rabbitmq-c 0.11 loads no
    /// CA by itself (see AMQPTLSOptions), so the bundle is always named here;
    /// OpenSSL's own error for a bad file is only "SSL error", hence the
    /// checks of our own first.
    private func configureTLS(_ socket: OpaquePointer, _ tls: AMQPTLSOptions) throws {
        let verify = tls.verifyPeer ?? true
        amqp_ssl_socket_set_verify_peer(socket, verify ? 1 : 0)
        amqp_ssl_socket_set_verify_hostname(socket, verify ? 1 : 0)
        if verify {
            let caFile = tls.caFile ?? AMQPTLSOptions.systemCAFile()
            if let problem = PEMFile.problem(caFile, kind: .certificates) {
                throw AMQPError(kind: .connect, text: "TLS CA file: \(problem)")
            }
            guard amqp_ssl_socket_set_cacert(socket, caFile) == AMQP_STATUS_OK.rawValue else {
                throw AMQPError(kind: .connect, text: "TLS CA file \(caFile): OpenSSL could not load it as PEM CA certificates")
            }
        }
        switch (tls.certFile, tls.keyFile) {
        case (nil, nil):
            break
        case let (cert?, key?):
            if let problem = PEMFile.problem(cert, kind: .certificates) {
                throw AMQPError(kind: .connect, text: "TLS client certificate: \(problem)")
            }
            if let problem = PEMFile.problem(key, kind: .privateKey) {
                throw AMQPError(kind: .connect, text: "TLS client key: \(problem)")
            }
            guard amqp_ssl_socket_set_key(socket, cert, key) == AMQP_STATUS_OK.rawValue else {
                throw AMQPError(kind: .connect, text: "TLS client certificate \(cert) and key \(key): OpenSSL could not load them (not PEM, or the key does not belong to the certificate)")
            }
        default:
            throw AMQPError(kind: .connect, text: "TLS client certificate and key go together: only one of them is set")
        }
    }

    /// A pointer to the usual cause of librabbitmq's terse TLS statuses.
    private static func tlsHint(_ status: Int32, url: AMQPURL, tls: AMQPTLSOptions) -> String {
        switch status {
        case AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue:
            return " (the broker's certificate is not signed by a CA in \(tls.caFile ?? AMQPTLSOptions.systemCAFile()), or has expired)"
        case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            return " (the broker's certificate does not name \(url.host); librabbitmq 0.11 compares the host with the certificate's DNS names only, never with IP addresses)"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue:
            return " (is it a TLS port? does the broker require a client certificate?)"
        default:
            return ""
        }
    }
}
