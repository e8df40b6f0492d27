import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw HTTP/1.1 server on 127.0.0.1 that answers each request with whatever bytes the test
/// says, one thread per connection, and counts connections, requests and the connections the
/// client closed: for what a real client must do with keep-alive, early closes, stalls and
/// malformed answers, which a well-behaved server never shows it.
package final class ScriptedHTTPServer: @unchecked Sendable {
    package enum Action: Sendable {
        /// Writes these bytes; then closes the socket when `close` (whatever the bytes say).
        case reply(String, close: Bool)
        /// Reads on without answering until the client closes.
        case stall
    }

    /// `(connection index, request index on it, request line)` -> what to do.
    package typealias Script = @Sendable (Int, Int, String) -> Action

    package let port: Int
    private let listener: Int32
    private let script: Script
    private let lock = NSLock()
    private var accepted = 0
    private var requests = 0
    private var closedByClient = 0
    private var open: Set<Int32> = []
    private let done = DispatchSemaphore(value: 0)

    package init(_ script: @escaping Script) throws {
        (listener, port) = try loopbackSocket(listening: true)
        self.script = script
        Thread { [self] in serve() }.start()
    }

    /// `200 OK` with `body` and a Content-Length (keep-alive).
    package static func ok(_ body: String = "{}", extraHeaders: String = "") -> String {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(extraHeaders)\r\n\(body)"
    }

    package var snapshot: (connections: Int, requests: Int, closedByClient: Int) {
        lock.lock(); defer { lock.unlock() }
        return (accepted, requests, closedByClient)
    }

    /// Waits (bounded: 60 s, since a test process whose cooperative pool is held by other
    /// tests' start-up can stall a while) until `condition` holds for the snapshot.
    package func wait(until condition: ((connections: Int, requests: Int, closedByClient: Int)) -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(snapshot) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    package func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        done.wait()
        close(listener)
        lock.lock()
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.unlock()
    }

    private func serve() {
        while true {
            let c = acceptCloseOnExec(listener)
            if c < 0 {
                if errno == EINTR { continue }
                break
            }
            lock.lock(); let index = accepted; accepted += 1; open.insert(c); lock.unlock()
            Thread { [self] in
                handle(c, connection: index)
                lock.lock(); open.remove(c); lock.unlock()
                close(c)
            }.start()
        }
        done.signal()
    }

    private func handle(_ c: Int32, connection: Int) {
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        /// false: the client closed or reset the connection (counted), or the read timed out.
        func readMore(_ data: inout [UInt8]) -> Bool {
            var n = read(c, &buffer, buffer.count)
            while n < 0 && errno == EINTR { n = read(c, &buffer, buffer.count) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { lock.lock(); closedByClient += 1; lock.unlock() }
            guard n > 0 else { return false }
            data += buffer[0..<n]
            return true
        }
        var index = 0
        while true {
            guard let request = readRawRequest(&data, readMore: readMore), request.bodyComplete else { return }
            lock.lock(); requests += 1; lock.unlock()
            switch script(connection, index, request.requestLineText) {
            case .reply(let text, let closeAfter):
                if !sendAll(c, Array(text.utf8)) || closeAfter { return }
            case .stall:
                while readMore(&data) {}
                return
            }
            index += 1
        }
    }
}
