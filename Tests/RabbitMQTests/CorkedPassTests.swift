import CRabbitMQ
import Foundation
import Glibc
import Synchronization
import Testing
@testable import RabbitMQ

/// The commands of one pass of the connection thread leave as one transmit
/// (TCP_CORK for the pass, AMQPIO+Cork.swift), against a real RabbitMQ.
@Suite struct CorkedPassTests {
    /// Segments with data the socket has sent (Linux `tcp_info.tcpi_data_segs_out`;
    /// pure acknowledgements are not counted). Glibc's `struct tcp_info` stops
    /// before it; the kernel's layout only ever grows, and the field sits at
    /// byte 156 since Linux 4.6 (offsetof in <linux/tcp.h>).
    static func segmentsOut(_ io: AMQPIO) -> UInt32? {
        var raw = [UInt8](repeating: 0, count: 256)
        var length = socklen_t(raw.count)
        let rc = raw.withUnsafeMutableBytes { getsockopt(amqp_get_sockfd(io.state), Int32(IPPROTO_TCP), TCP_INFO, $0.baseAddress, &length) }
        guard rc == 0, length >= 160 else { return nil }
        return raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 156, as: UInt32.self) }
    }

    /// Whether TCP_CORK is set on the connection's socket.
    static func corkSet(_ io: AMQPIO) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(amqp_get_sockfd(io.state), Int32(IPPROTO_TCP), TCP_CORK, &value, &length) == 0 && value != 0
    }

    final class Gate: Sendable {
        let state = Mutex((entered: false, open: false))
        /// Runs on the connection thread: holds it (100 s at most) until `open()`.
        /// Long: at the start of a full run other suites' broker start-ups can keep
        /// the test's tasks from running for ten seconds and more.
        func hold() {
            state.withLock { $0.entered = true }
            for _ in 0..<100_000 where !state.withLock({ $0.open }) { usleep(1000) }
        }
        var entered: Bool { state.withLock { $0.entered } }
        func open() { state.withLock { $0.open = true } }
    }

    @Test(.timeLimit(.minutes(3))) func publishesQueuedForOnePassLeaveInAFewSegments() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.cork"), durable: false).name
        // Past the connection's first segments (quick-ack mode) before counting.
        for i in 0..<20 { try await conn.publish(exchange: "", routingKey: queue, body: [UInt8(i)]) }
        let before = try #require(try await conn.perform { io in Self.segmentsOut(io) })

        // Hold the connection thread, queue 100 publishes behind it, let it go:
        // it runs them in one pass.
        let gate = Gate()
        let holder = Task { try await conn.perform { _ in gate.hold() } }
        while !gate.entered { try await Task.sleep(for: .milliseconds(5)) }
        let count = 100
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask { try await conn.publish(exchange: "", routingKey: queue, body: Array("message \(i)".utf8)) }
            }
            while conn.shared.withLock({ $0.commands.count }) < count { try await Task.sleep(for: .milliseconds(5)) }
            gate.open()
            try await group.waitForAll()
        }
        try await holder.value
        let after = try #require(try await conn.perform { io in Self.segmentsOut(io) })

        // Measured on loopback: 1 segment with data with the cork (the 16 KB of the
        // pass); without it 49 and 114 in two runs (each publish pushed on its own,
        // Linux's autocorking merging some while an earlier one was still queued).
        // Linux sends corked data anyway after 200 ms, so a thread starved of CPU
        // in the middle of the pass may need a few more.
        let sent = after &- before
        #expect(sent <= 10, "\(sent) segments for \(count) publishes queued in one pass")
        #expect(try await conn.declareQueue(queue, durable: false).messageCount == UInt32(20 + count))
        try await conn.deleteQueue(queue)
        await conn.close()
    }

    /// A request and its reply (here a queue.declare) in a pass that is corked:
    /// the request must leave at once, not when the cork times out (200 ms).
    @Test(.timeLimit(.minutes(3))) func aRequestInACorkedPassTakesTheCorkOut() async throws {
        let conn = try await TestBroker.connect()
        let name = TestBroker.uniqueName("t.cork.rpc")
        let gate = Gate()
        let holder = Task { try await conn.perform { _ in gate.hold() } }
        while !gate.entered { try await Task.sleep(for: .milliseconds(5)) }
        async let published: Void = conn.publish(exchange: "", routingKey: "nowhere", body: [1])
        async let observed = conn.perform { io -> (corkedBefore: Bool, corkedAfter: Bool, count: UInt32) in
            let before = Self.corkSet(io)
            let declared = try io.declareQueue(name, durable: false, exclusive: false, autoDelete: false, arguments: [:])
            return (before, Self.corkSet(io), declared.messageCount)
        }
        while conn.shared.withLock({ $0.commands.count }) < 2 { try await Task.sleep(for: .milliseconds(5)) }
        gate.open()
        let seen = try await observed
        try await published
        try await holder.value
        #expect(seen.corkedBefore, "the pass of two commands is corked")
        #expect(!seen.corkedAfter, "the request went out uncorked")
        #expect(seen.count == 0)
        try await conn.deleteQueue(name)
        await conn.close()
    }
}
