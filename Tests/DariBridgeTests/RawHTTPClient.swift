import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking socket calls on a thread of their own: on the two cooperative
/// threads of a 2-core machine they would starve the server under test (its
/// handlers are Swift tasks too).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A blocking TCP client on 127.0.0.1 for the probe-server tests: it can
/// connect and send nothing, send part of a request, or never read. Every
/// blocking read and write has a timeout (a bound for a hung test, not a
/// measure), and writes never raise SIGPIPE. Call the blocking parts through
/// the async wrappers (`offPool`).
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private(set) var closed = false

    /// `receiveBuffer`: SO_RCVBUF set before connecting (a small window makes a non-reader back up sooner).
    init(port: Int, receiveBuffer: Int32? = nil, readTimeout: Duration = .seconds(30)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: Int(readTimeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { Glibc.close(fd) }
        try #require(rc == 0, "connect: errno \(errno)")
    }

    deinit { close() }

    func close() {
        if !closed { Glibc.close(fd); closed = true }
    }

    /// Writes all of `bytes`; false when the peer closed (EPIPE, ECONNRESET) or, non-blocking, when it would block.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return false
            }
            sent += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    enum ReadResult: Equatable { case bytes(Int), eof, reset, timedOut, failed(Int32) }

    /// One read into `into`: what came.
    func read(into buffer: inout [UInt8]) -> ReadResult {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); return .bytes(n) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case ECONNRESET: return .reset
            case EAGAIN, EWOULDBLOCK: return .timedOut
            default: return .failed(errno)
            }
        }
    }

    /// Reads until the server closes: true when it did (EOF or reset), false on the read timeout.
    func readUntilClosed() -> (closed: Bool, received: [UInt8]) {
        var received: [UInt8] = []
        while true {
            switch read(into: &received) {
            case .bytes: continue
            case .eof, .reset: return (true, received)
            case .timedOut, .failed: return (false, received)
            }
        }
    }

    /// Reads one HTTP/1.1 response with a Content-Length body.
    func readResponse() throws -> RawResponse {
        var buffer: [UInt8] = []
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = buffer.firstRange(of: separator) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst()
                let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? -1
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                while buffer.count < end.upperBound + length {
                    let r = read(into: &buffer)
                    guard case .bytes = r else { throw RawHTTPError.closed(r) }
                }
                let body = Array(buffer[end.upperBound..<(end.upperBound + length)])
                return RawResponse(status: status, headers: headers, body: body)
            }
            let r = read(into: &buffer)
            guard case .bytes = r else { throw RawHTTPError.closed(r) }
        }
    }

    func response() async throws -> RawResponse { try await offPool { try self.readResponse() } }
    func untilClosed() async -> (closed: Bool, received: [UInt8]) {
        (try? await offPool { self.readUntilClosed() }) ?? (false, [])
    }
    @discardableResult
    func write(_ bytes: [UInt8]) async -> Bool { (try? await offPool { self.send(bytes) }) ?? false }
    @discardableResult
    func write(_ text: String) async -> Bool { await write(Array(text.utf8)) }

    func setNonBlocking() {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
}

struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum RawHTTPError: Error { case closed(RawConnection.ReadResult) }

/// One request on a fresh connection (`Connection: close`).
func rawGET(port: Int, _ path: String, method: String = "GET") async throws -> RawResponse {
    try await offPool {
        let connection = try RawConnection(port: port)
        defer { connection.close() }
        connection.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return try connection.readResponse()
    }
}

/// Polls `condition` every 20 ms until it holds or `bound` passes (a bound for a
/// hung test, not a measure of speed). Returns whether it held.
func eventually(within bound: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + bound
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
