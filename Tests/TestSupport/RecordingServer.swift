import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw HTTP/1.1 server on 127.0.0.1 that records, byte for byte, what arrives: every
/// accepted connection, the bytes read on it, and each request's request line and `Host`
/// header. It answers `200 {}` with `Connection: close` only after recording, so a
/// client that got its answer finds its request recorded. One connection at a time.
package final class RecordingServer: @unchecked Sendable {
    package struct Request: Sendable {
        package var requestLine: [UInt8]
        package var host: String?
        package var requestLineText: String { String(decoding: requestLine, as: UTF8.self) }
    }

    package let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var finished = 0
    private var bytes = 0
    private var recorded: [Request] = []
    private let done = DispatchSemaphore(value: 0)

    package init() throws {
        (listener, port) = try loopbackSocket(listening: true)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Connections accepted, connections finished, bytes received, requests recorded.
    package var snapshot: (connections: Int, finished: Int, bytes: Int, requests: [Request]) {
        lock.lock(); defer { lock.unlock() }
        return (accepted, finished, bytes, recorded)
    }

    /// Waits (bounded) until `count` connections were accepted and handled to their end.
    package func waitForFinishedConnections(_ count: Int) async {
        for _ in 0..<500 where snapshot.finished < count {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    package func stop() {
        shutdown(listener, Int32(SHUT_RDWR))  // wakes the blocked accept()
        done.wait()
        close(listener)
    }

    private func serve() {
        while true {
            let c = acceptCloseOnExec(listener)
            if c < 0 {
                if errno == EINTR { continue }
                break
            }
            lock.lock(); accepted += 1; lock.unlock()
            handle(c)
            close(c)
            lock.lock(); finished += 1; lock.unlock()
        }
        done.signal()
    }

    private func handle(_ c: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func readMore(_ data: inout [UInt8]) -> Bool {
            let n = read(c, &buffer, buffer.count)
            guard n > 0 else { return false }
            data += buffer[0..<n]
            lock.lock(); bytes += n; lock.unlock()
            return true
        }
        guard let request = readRawRequest(&data, readMore: readMore) else { return }
        let hosts = request.values("host")
        lock.lock(); recorded.append(Request(requestLine: request.requestLine, host: hosts.isEmpty ? nil : hosts.joined(separator: ","))); lock.unlock()
        sendAll(c, Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".utf8))
    }
}
