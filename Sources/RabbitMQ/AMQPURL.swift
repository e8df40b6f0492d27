/// A parsed `amqp://user:pass@host:port/vhost?query` (or `amqps://`) URL.
///
/// Follows the RabbitMQ URI spec: user, password and vhost are percent-decoded
/// (`%2F` is `/`); an absent path means vhost `/`; an empty path segment
/// (`amqp://host/`) means the empty vhost name, as the spec says, which is
/// rarely what a user wants, so we treat it as `/` too and document it.
/// Query parameters (https://www.rabbitmq.com/docs/uri-query-parameters):
/// `heartbeat`, `connection_timeout`, `cacertfile`, `certfile`, `keyfile`,
/// `verify`, `server_name_indication`; any other is an error.
///
/// Parsing never echoes the user or password (nor anything before the host)
/// in an error, and `description` leaves the password out: both are safe to log.
package struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    package var tls: Bool
    package var host: String
    package var port: Int
    package var user: String
    package var password: String
    package var vhost: String
    /// `?heartbeat=` in seconds; wins over `AMQPConnection.Options.heartbeatSeconds`.
    package var heartbeatSeconds: Int?
    /// `?connection_timeout=` in milliseconds (TCP connect, then TLS handshake);
    /// wins over `AMQPConnection.Options.connectTimeoutSeconds`.
    package var connectionTimeoutMs: Int?
    /// `?cacertfile=`, `certfile`, `keyfile`, `verify`; win over `AMQPConnection.Options.tls`.
    package var tlsOptions: AMQPTLSOptions

    package static let `default` = AMQPURL(host: "127.0.0.1")

    package init(tls: Bool = false, host: String, port: Int? = nil, user: String = "guest", password: String = "guest", vhost: String = "/",
                heartbeatSeconds: Int? = nil, connectionTimeoutMs: Int? = nil, tlsOptions: AMQPTLSOptions = AMQPTLSOptions()) {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? 5671 : 5672)
        self.user = user
        self.password = password
        self.vhost = vhost
        self.heartbeatSeconds = heartbeatSeconds
        self.connectionTimeoutMs = connectionTimeoutMs
        self.tlsOptions = tlsOptions
    }

    package struct ParseError: Error, Sendable, CustomStringConvertible {
        package var reason: String
        /// The error could come from a ',' inside a password splitting a URL list.
        var maySplitAtComma = false
        package var description: String { reason }

        init(_ reason: String, maySplitAtComma: Bool = false) {
            self.reason = reason
            self.maySplitAtComma = maySplitAtComma
        }
    }

    /// The URL without the password, safe to log.
    package var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        var query: [String] = []
        if let heartbeatSeconds { query.append("heartbeat=\(heartbeatSeconds)") }
        if let connectionTimeoutMs { query.append("connection_timeout=\(connectionTimeoutMs)") }
        if let caFile = tlsOptions.caFile { query.append("cacertfile=\(caFile)") }
        if let certFile = tlsOptions.certFile { query.append("certfile=\(certFile)") }
        if let keyFile = tlsOptions.keyFile { query.append("keyfile=\(keyFile)") }
        if let verify = tlsOptions.verifyPeer { query.append("verify=\(verify ? "verify_peer" : "verify_none")") }
        let base = "\(tls ? "amqps" : "amqp")://\(user)@\(hostText):\(port)/\(vhost == "/" ? "%2F" : vhost)"
        return query.isEmpty ? base : base + "?" + query.joined(separator: "&")
    }
}
