import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The tests' children get stdin, stdout and stderr, nothing else: a test server's socket
/// inherited by a broker a script started stayed open for the whole run (its close never
/// reached the client).
@Suite("Spawned test processes")
struct SpawnedProcessTests {
    @Test func aChildInheritsNoOtherDescriptor() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // deliberately not close-on-exec
        try #require(fd >= 0)
        defer { close(fd) }
        let high = dup2(fd, 777)
        try #require(high == 777)
        defer { close(high) }
        let r = try SpawnedProcess.run(["/bin/sh", "-c", "exec ls /proc/self/fd"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.output)")
        let open = Set(r.output.split(whereSeparator: \.isNewline).map(String.init))
        #expect(!open.contains("777"), "the child inherited the socket: \(open.sorted())")
        #expect(!open.contains("\(fd)") || fd <= 3, "the child inherited the socket: \(open.sorted())")
        #expect(open.isSubset(of: ["0", "1", "2", "3"]), "\(open.sorted())")
    }
}
