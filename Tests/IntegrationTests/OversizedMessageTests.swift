import DariBridge
import Foundation
import RabbitMQ
import Testing

/// Messages over DARI_BRIDGE_MAX_MESSAGE_BYTES get `invalid_message` naming
/// their size, are acked, and the worker goes on. (That they are never held
/// whole in memory is measured, not asserted: scripts/oversized-rss.sh.)
@Suite(.serialized) struct OversizedMessageTests {
    static let limit = 1_048_576

    /// A valid resume request padded (inside `variables`) to exactly `size` bytes.
    static func body(url: String, size: Int) -> [UInt8] {
        let empty = ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(#"{"pad":""}"#.utf8))
        let pad = max(size - empty.count, 0)
        let padded = ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(#"{"pad":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: pad) + Array(#""}"#.utf8))
        return padded
    }

    @Test func oversizedMessagesGetInvalidMessageAndTheNextOneSucceeds() async throws {
        let h = try await Harness { $0.maxMessageBytes = Self.limit }
        h.startWorker()
        let sizes = [Self.limit + 1, 8 * Self.limit]
        for (i, size) in sizes.enumerated() {
            let body = Self.body(url: h.url("big\(i)"), size: size)
            #expect(body.count == size)
            try await h.publish(body: body, messageId: "big\(i)")
        }
        let atLimit = Self.body(url: h.url("at-limit"), size: Self.limit)
        try await h.publish(body: atLimit, messageId: "at-limit")
        try await h.publish(id: "normal")
        let got = await h.waitForOutcomes(4, timeout: .seconds(60))
        try await Task.sleep(for: .milliseconds(300))
        let reconnects = h.broker.reconnects.load(ordering: .relaxed)
        let left = await h.stop()
        #expect(got.count == 4)
        #expect(h.received.count == 4)
        for (i, size) in sizes.enumerated() {
            let o = try #require(h.outcome(for: "big\(i)")?.body, "big\(i) got an outcome")
            #expect(o.status == "failed")
            #expect(o.error == "invalid_message")
            #expect(o.detail?.contains("\(size)") == true, "the detail names the size \(size): \(o.detail ?? "nil")")
            #expect(o.attempts == 0)
            #expect(h.dari.requestCount(id: "big\(i)") == 0, "no POST for an oversized message")
        }
        #expect(h.outcome(for: "at-limit")?.body?.status == "succeeded", "exactly at the limit is allowed")
        #expect(h.outcome(for: "normal")?.body?.status == "succeeded")
        #expect(h.dari.requestCount(id: "normal") == 1)
        #expect(reconnects == 0, "oversized messages cost no reconnect")
        #expect(left == 0, "all acked")
    }
}
