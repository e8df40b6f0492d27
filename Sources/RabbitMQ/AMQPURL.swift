/// A parsed `amqp://user:pass@host:port/vhost` (or `amqps://`) URL.
///
/// Follows the RabbitMQ URI spec: user, password and vhost are percent-decoded
/// (`%2F` is `/`); an absent path means vhost `/`; an empty path segment
/// (`amqp://host/`) means the empty vhost name, as the spec says, which is
/// rarely what a user wants, so we treat it as `/` too and document it.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var vhost: String

    public static let `default` = try! AMQPURL(parsing: "amqp://guest:guest@127.0.0.1:5672/%2F")

    public init(tls: Bool = false, host: String, port: Int? = nil, user: String = "guest", password: String = "guest", vhost: String = "/") {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? 5671 : 5672)
        self.user = user
        self.password = password
        self.vhost = vhost
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public init(parsing string: String) throws(ParseError) {
        var rest = Substring(string)
        if rest.lowercased().hasPrefix("amqps://") {
            tls = true
            rest = rest.dropFirst(8)
        } else if rest.lowercased().hasPrefix("amqp://") {
            tls = false
            rest = rest.dropFirst(7)
        } else {
            throw ParseError(reason: "must start with amqp:// or amqps://")
        }
        if rest.contains(where: { $0 == "?" || $0 == "#" }) {
            let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" })!
            rest = rest[..<cut]  // query parameters (heartbeat=..., etc.) are not supported; ignored
        }
        let authority: Substring
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
        }
        var hostPort = authority
        user = "guest"
        password = "guest"
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], what: "user")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                user = try Self.decode(userInfo, what: "user")
                password = ""
            }
        }
        var portText: Substring? = nil
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw ParseError(reason: "unterminated IPv6 host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw ParseError(reason: "junk after IPv6 host") }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = String(hostPort)
        }
        if host.isEmpty { host = "localhost" }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ParseError(reason: "port \(portText) is not a number from 1 to 65535")
            }
            port = p
        } else {
            port = tls ? 5671 : 5672
        }
        if let path, !path.isEmpty {
            vhost = try Self.decode(path, what: "vhost")
        } else {
            vhost = "/"
        }
    }

    private static func decode(_ s: Substring, what: String) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) else {
                    throw ParseError(reason: "bad percent-encoding in \(what)")
                }
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw ParseError(reason: "\(what) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The URL without the password, safe to log.
    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "amqps" : "amqp")://\(user)@\(hostText):\(port)/\(vhost == "/" ? "%2F" : vhost)"
    }
}
