extension AMQPURL {
    static let queryParameters = ["heartbeat", "connection_timeout", "cacertfile", "certfile", "keyfile", "verify", "server_name_indication"]

    /// RabbitMQ's URI query parameters. Names and values are percent-decoded;
    /// an unknown or repeated parameter is an error that names it (never its
    /// value). TLS parameters on an `amqp://` URL are an error: they would be
    /// silently without effect.
    mutating func applyQuery(_ query: Substring) throws(ParseError) {
        var seen: Set<String> = []
        var serverName: String? = nil
        for item in query.split(separator: "&") {
            let eq = item.firstIndex(of: "=")
            let name = try Self.decode(item[..<(eq ?? item.endIndex)], what: "a query parameter name")
            let shown = Self.shown(name)
            guard Self.queryParameters.contains(name) else {
                throw ParseError("has an unknown query parameter \(shown) (supported: \(Self.queryParameters.joined(separator: ", ")))")
            }
            guard let eq else { throw ParseError("has query parameter \(shown) without a value (\(shown)=...)") }
            guard seen.insert(name).inserted else { throw ParseError("has query parameter \(shown) more than once") }
            let value = try Self.decode(item[item.index(after: eq)...], what: "the value of \(shown)")
            if ["cacertfile", "certfile", "keyfile", "verify", "server_name_indication"].contains(name) && !tls {
                throw ParseError("has \(shown), a TLS parameter, but is amqp://, not amqps://")
            }
            switch name {
            case "heartbeat":
                guard let n = Self.number(value, in: 0...65535) else {
                    throw ParseError("has heartbeat that is not a whole number of seconds from 0 to 65535")
                }
                heartbeatSeconds = n
            case "connection_timeout":
                guard let n = Self.number(value, in: 1...3_600_000) else {
                    throw ParseError("has connection_timeout that is not a whole number of milliseconds from 1 to 3600000")
                }
                connectionTimeoutMs = n
            case "cacertfile", "certfile", "keyfile":
                guard !value.isEmpty else { throw ParseError("has an empty \(shown)") }
                if name == "cacertfile" { tlsOptions.caFile = value }
                if name == "certfile" { tlsOptions.certFile = value }
                if name == "keyfile" { tlsOptions.keyFile = value }
            case "verify":
                switch value {
                case "verify_peer": tlsOptions.verifyPeer = true
                case "verify_none": tlsOptions.verifyPeer = false
                default: throw ParseError("has verify that is neither verify_peer nor verify_none")
                }
            default:  // server_name_indication
                serverName = value
            }
        }
        if (tlsOptions.certFile == nil) != (tlsOptions.keyFile == nil) {
            throw ParseError("has \(tlsOptions.certFile == nil ? "keyfile without certfile" : "certfile without keyfile"): a client certificate needs both")
        }
        // librabbitmq 0.11 sends the host given to amqp_socket_open as SNI and
        // checks the certificate against that same host; it has no separate
        // SNI setting, so another name cannot be honoured.
        if let serverName, serverName.lowercased() != host.lowercased() {
            throw ParseError("has a server_name_indication other than the URL's host; librabbitmq 0.11 sends the host as SNI and verifies the certificate against it, so put that name in the URL as the host instead")
        }
    }

    private static func number(_ text: String, in range: ClosedRange<Int>) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let n = Int(text), range.contains(n) else { return nil }
        return n
    }

    /// A parameter name as it may appear in an error: printable ASCII, 40 characters at most.
    private static func shown(_ name: String) -> String {
        let safe = String(name.unicodeScalars.prefix(40).map { $0.isASCII && $0.value >= 0x21 && $0.value < 0x7f ? Character($0) : "?" })
        return name.unicodeScalars.count > 40 ? safe + "..." : safe
    }
}
