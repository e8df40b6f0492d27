import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal AMQP 0-9-1 client on a plain POSIX socket, no librabbitmq: it
/// sends property bytes as given, so tests can publish what librabbitmq would
/// refuse to encode (empty header keys, unknown field kinds, truncated tables,
/// 20,000-level nesting). Blocking I/O with a receive timeout; one channel;
/// publisher confirms; `basic.get` returns the property bytes as delivered.
final class RawAMQPPublisher {
    enum PublishResult: Equatable, CustomStringConvertible {
        case acked
        case nacked
        /// basic.return (mandatory, unroutable), then the confirm.
        case returned(UInt16)
        case channelClosed(UInt16, String)
        case connectionClosed(UInt16, String)

        var description: String {
            switch self {
            case .acked: return "acked"
            case .nacked: return "nacked"
            case .returned(let c): return "returned \(c)"
            case .channelClosed(let c, let t): return "channel closed \(c) \(t)"
            case .connectionClosed(let c, let t): return "connection closed \(c) \(t)"
            }
        }
    }

    struct Got {
        var flags: UInt16
        var propertyBytes: [UInt8]
        var body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var channel: UInt16 = 1
    private(set) var frameMax: UInt32 = 131_072
    private var nextSeq: UInt64 = 1
    private let confirms: Bool
    private(set) var isOpen = true

    /// Connects, logs in with PLAIN, opens vhost `vhost`, opens channel 1 and,
    /// when `confirms`, selects publisher confirms.
    init(host: String = "127.0.0.1", port: Int, user: String = "guest", password: String = "guest",
         vhost: String = "/", confirms: Bool = true) throws {
        self.confirms = confirms
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            throw Failure(description: "connect to \(host):\(port) failed: errno \(errno)")
        }
        try send(Array("AMQP".utf8) + [0, 0, 9, 1])
        _ = try expectMethod(10, 10)  // connection.start
        var startOk = WireWriter()
        startOk.bytes += RawTable(["product": .string("dari-bridge raw test publisher")]).encoded()
        startOk.shortString("PLAIN")
        startOk.longString([0] + Array(user.utf8) + [0] + Array(password.utf8))
        startOk.shortString("en_US")
        try sendMethod(channel: 0, 10, 11, startOk.bytes)
        let tune = try expectMethod(10, 30)
        let serverFrameMax = tune.count >= 6 ? UInt32(tune[2]) << 24 | UInt32(tune[3]) << 16 | UInt32(tune[4]) << 8 | UInt32(tune[5]) : 0
        if serverFrameMax != 0 { frameMax = min(frameMax, serverFrameMax) }
        let channelMax = tune.count >= 2 ? UInt16(tune[0]) << 8 | UInt16(tune[1]) : 0
        var tuneOk = WireWriter()
        tuneOk.u16(channelMax); tuneOk.u32(frameMax); tuneOk.u16(0)  // no heartbeats
        try sendMethod(channel: 0, 10, 31, tuneOk.bytes)
        var open = WireWriter()
        open.shortString(vhost); open.shortString(""); open.u8(0)
        try sendMethod(channel: 0, 10, 40, open.bytes)
        _ = try expectMethod(10, 41)
        try openChannel()
    }

    deinit { Glibc.close(fd) }

    /// Opens the channel (the next number after a channel error) and selects confirms.
    func openChannel() throws {
        try sendMethod(channel: channel, 20, 10, [0])
        _ = try expectMethod(20, 11)
        nextSeq = 1
        if confirms {
            try sendMethod(channel: channel, 85, 10, [0])
            _ = try expectMethod(85, 11)
        }
    }

    /// basic.publish + content header (flags and RAW property-list bytes) + body
    /// frames split at frame_max; then waits for the confirm (or the error).
    @discardableResult
    func publish(exchange: String = "", routingKey: String, mandatory: Bool = false,
                 propertyFlags: UInt16, propertyBytes: [UInt8], body: [UInt8]) throws -> PublishResult {
        // A content header cannot be split: over frame_max the broker closes the connection (501 frame_too_large).
        guard 14 + propertyBytes.count <= Int(frameMax) - 8 else {
            throw Failure(description: "property list of \(propertyBytes.count) bytes does not fit in one frame (frame_max \(frameMax))")
        }
        var m = WireWriter()
        m.u16(0); m.shortString(exchange); m.shortString(routingKey); m.u8(mandatory ? 1 : 0)
        try sendMethod(channel: channel, 60, 40, m.bytes)
        var header = WireWriter()
        header.u16(60); header.u16(0); header.u64(UInt64(body.count)); header.u16(propertyFlags)
        header.bytes += propertyBytes
        try sendFrame(type: 2, channel: channel, header.bytes)
        let chunk = Int(frameMax) - 8
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            try sendFrame(type: 3, channel: channel, Array(body[offset..<end]))
            offset = end
        }
        guard confirms else { return .acked }
        let seq = nextSeq
        nextSeq += 1
        var returned: UInt16?
        while true {
            let (type, ch, payload) = try readFrame()
            guard type == 1, payload.count >= 4 else { continue }  // skip content frames of a basic.return
            let cls = UInt16(payload[0]) << 8 | UInt16(payload[1]), method = UInt16(payload[2]) << 8 | UInt16(payload[3])
            let args = Array(payload[4...])
            switch (cls, method) {
            case (60, 50): returned = args.count >= 2 ? UInt16(args[0]) << 8 | UInt16(args[1]) : 0
            case (60, 80), (60, 120):
                let tag = args.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                guard tag >= seq else { continue }  // one publish in flight: an older tag is stale
                if method == 120 { return .nacked }
                return returned.map { .returned($0) } ?? .acked
            case (20, 40) where ch == channel:
                let (code, text) = Self.closeReason(args)
                try sendMethod(channel: channel, 20, 41, [])
                channel += 1
                return .channelClosed(code, text)
            case (10, 50):
                let (code, text) = Self.closeReason(args)
                try? sendMethod(channel: 0, 10, 51, [])
                isOpen = false
                return .connectionClosed(code, text)
            default: continue
            }
        }
    }

    func publish(exchange: String = "", routingKey: String, mandatory: Bool = false,
                 properties: RawProperties, body: [UInt8]) throws -> PublishResult {
        let (flags, bytes) = properties.encoded()
        return try publish(exchange: exchange, routingKey: routingKey, mandatory: mandatory, propertyFlags: flags, propertyBytes: bytes, body: body)
    }

    /// queue.declare; exclusive by default (gone with the connection).
    func declareQueue(_ name: String, durable: Bool = false, exclusive: Bool = true) throws {
        var m = WireWriter()
        m.u16(0); m.shortString(name); m.u8((durable ? 2 : 0) | (exclusive ? 4 : 0)); m.bytes += RawTable().encoded()
        try sendMethod(channel: channel, 50, 10, m.bytes)
        _ = try expectMethod(50, 11)
    }

    func deleteQueue(_ name: String) throws {
        var m = WireWriter()
        m.u16(0); m.shortString(name); m.u8(0)
        try sendMethod(channel: channel, 50, 40, m.bytes)
        _ = try expectMethod(50, 41)
    }

    /// basic.get with no-ack: the message as the broker delivers it, property bytes untouched.
    func get(queue: String) throws -> Got? {
        var m = WireWriter()
        m.u16(0); m.shortString(queue); m.u8(1)
        try sendMethod(channel: channel, 60, 70, m.bytes)
        while true {
            let (type, _, payload) = try readFrame()
            guard type == 1, payload.count >= 4 else { continue }
            let id = (UInt16(payload[0]) << 8 | UInt16(payload[1]), UInt16(payload[2]) << 8 | UInt16(payload[3]))
            if id == (60, 72) { return nil }
            if id == (60, 71) { break }
            if id == (20, 40) || id == (10, 50) { throw Failure(description: "closed during basic.get: \(Self.closeReason(Array(payload[4...])))") }
        }
        let (_, _, header) = try readFrame()
        guard header.count >= 14 else { throw Failure(description: "short content header") }
        let size = header[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let flags = UInt16(header[12]) << 8 | UInt16(header[13])
        var body: [UInt8] = []
        while body.count < size {
            let (type, _, payload) = try readFrame()
            guard type == 3 else { throw Failure(description: "expected a body frame, got type \(type)") }
            body += payload
        }
        return Got(flags: flags, propertyBytes: Array(header[14...]), body: body)
    }

    /// connection.close, waiting for close-ok (best effort).
    func close() {
        guard isOpen else { return }
        isOpen = false
        var m = WireWriter()
        m.u16(200); m.shortString("bye"); m.u16(0); m.u16(0)
        try? sendMethod(channel: 0, 10, 50, m.bytes)
        _ = try? expectMethod(10, 51)
    }

    // MARK: frames

    private static func closeReason(_ args: [UInt8]) -> (UInt16, String) {
        guard args.count >= 3 else { return (0, "") }
        let code = UInt16(args[0]) << 8 | UInt16(args[1])
        let len = Int(args[2])
        let text = String(decoding: args.dropFirst(3).prefix(len), as: UTF8.self)
        return (code, text)
    }

    private func expectMethod(_ cls: UInt16, _ method: UInt16) throws -> [UInt8] {
        while true {
            let (type, _, payload) = try readFrame()
            guard type == 1, payload.count >= 4 else { continue }
            let c = UInt16(payload[0]) << 8 | UInt16(payload[1]), m = UInt16(payload[2]) << 8 | UInt16(payload[3])
            if c == cls && m == method { return Array(payload[4...]) }
            if (c, m) == (10, 50) || (c, m) == (20, 40) {
                let reason = Self.closeReason(Array(payload[4...]))
                if c == 10 { isOpen = false } else { try? sendMethod(channel: channel, 20, 41, []); channel += 1 }
                throw Failure(description: "expected \(cls).\(method), the broker closed: \(reason.0) \(reason.1)")
            }
        }
    }

    private func sendMethod(channel: UInt16, _ cls: UInt16, _ method: UInt16, _ args: [UInt8]) throws {
        var w = WireWriter()
        w.u16(cls); w.u16(method); w.bytes += args
        try sendFrame(type: 1, channel: channel, w.bytes)
    }

    private func sendFrame(type: UInt8, channel: UInt16, _ payload: [UInt8]) throws {
        var w = WireWriter()
        w.u8(type); w.u16(channel); w.u32(UInt32(payload.count)); w.bytes += payload; w.u8(0xCE)
        try send(w.bytes)
    }

    private func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    private func fill(_ count: Int) throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while buffer.count < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure(description: n == 0 ? "the broker closed the socket" : "recv failed: errno \(errno)") }
            buffer += chunk[0..<n]
        }
    }

    private func readFrame() throws -> (type: UInt8, channel: UInt16, payload: [UInt8]) {
        try fill(7)
        let type = buffer[0]
        let ch = UInt16(buffer[1]) << 8 | UInt16(buffer[2])
        let size = Int(UInt32(buffer[3]) << 24 | UInt32(buffer[4]) << 16 | UInt32(buffer[5]) << 8 | UInt32(buffer[6]))
        try fill(7 + size + 1)
        let payload = Array(buffer[7..<(7 + size)])
        buffer.removeFirst(8 + size)
        return (type, ch, payload)
    }
}
