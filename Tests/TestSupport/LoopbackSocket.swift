import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket bound to 127.0.0.1 on a free port, listening or not (a bound socket
/// that does not listen refuses connects, and keeps the port from other tests).
package func loopbackSocket(listening: Bool) throws -> (fd: Int32, port: Int) {
    // Close-on-exec: a child process must not keep a test's socket open (SpawnedProcess).
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    try #require(fd >= 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ready = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, len) == 0 && (!listening || listen(fd, 64) == 0) && getsockname(fd, $0, &len) == 0
        }
    }
    if !ready { close(fd) }
    try #require(ready)
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

/// `accept`, the new socket marked close-on-exec (glibc's accept4 is not in Swift's Glibc module).
package func acceptCloseOnExec(_ listener: Int32) -> Int32 {
    let c = accept(listener, nil, nil)
    if c >= 0 { _ = fcntl(c, F_SETFD, FD_CLOEXEC) }
    return c
}

/// A port for a server that a child process (the worker) will open: outside
/// Linux's ephemeral range (32768-60999 here), where outgoing connections take
/// their local ports (a test that picked a random port in 30000-39000 met one:
/// "Address already in use"), and free at the moment it is chosen (bound to
/// 0.0.0.0 with SO_REUSEADDR, as the servers do, and closed).
package func unusedPort() -> Int {
    for _ in 0..<500 {
        let port = Int.random(in: 20_000...32_000)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { continue }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if bound { return port }
    }
    return Int.random(in: 20_000...32_000)
}
