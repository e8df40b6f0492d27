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
