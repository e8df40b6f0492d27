import Foundation
import Testing
@testable import DariBridge

private let received = Date(timeIntervalSince1970: 1_795_929_125.123)  // 2026-11-29T05:12:05.123Z
private let completed = Date(timeIntervalSince1970: 1_795_929_126.5)  // 2026-11-29T05:12:06.500Z

private func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    return try #require(object as? [String: Any])
}

@Suite struct OutcomeTests {
    @Test func encodesSuccessExactly() {
        let outcome = Outcome(
            status: .succeeded, resumeURL: "https://dari.example/r/1", messageId: "m-1", correlationId: "c-1",
            attempts: 2, httpStatus: 200, responseJSON: Array(#"{"ok":true,"n":12345678901234567890}"#.utf8),
            receivedAt: received, completedAt: completed)
        let expected = #"{"status":"succeeded","resume_workflow_url":"https://dari.example/r/1","message_id":"m-1","#
            + #""correlation_id":"c-1","attempts":2,"http_status":200,"response":{"ok":true,"n":12345678901234567890},"#
            + #""error":null,"detail":null,"received_at":"2026-11-29T05:12:05.123Z","completed_at":"2026-11-29T05:12:06.500Z"}"#
        #expect(String(decoding: outcome.encode(), as: UTF8.self) == expected)
        #expect(outcome.routingKey == "resume.succeeded")
    }

    @Test func encodesFailureWithNullsExactly() {
        let outcome = Outcome(
            status: .failed, attempts: 0, error: .invalidMessage, detail: "missing field variables",
            receivedAt: Date(timeIntervalSince1970: 0), completedAt: Date(timeIntervalSince1970: 0.001))
        let expected = #"{"status":"failed","resume_workflow_url":null,"message_id":null,"correlation_id":null,"#
            + #""attempts":0,"http_status":null,"response":null,"error":"invalid_message","#
            + #""detail":"missing field variables","received_at":"1970-01-01T00:00:00.000Z","#
            + #""completed_at":"1970-01-01T00:00:00.001Z"}"#
        #expect(String(decoding: outcome.encode(), as: UTF8.self) == expected)
        #expect(outcome.routingKey == "resume.failed")
    }

    @Test func roundTripsThroughJSONSerialization() throws {
        let detail = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} unit \u{1F} é 😀 日本 \u{2028}"
        let outcome = Outcome(
            status: .failed, resumeURL: "https://d/r?a=1&b=\"x\"", messageId: "id\n2", correlationId: nil,
            attempts: 5, httpStatus: 503, responseJSON: Array(#"{"detail":[{"loc":["body"],"msg":"bad"}]}"#.utf8),
            error: .retriesExhausted, detail: detail, receivedAt: received, completedAt: completed)
        let bytes = outcome.encode()
        #expect(JSONScanner.isValid(bytes))
        let object = try jsonObject(bytes)
        #expect(object["status"] as? String == "failed")
        #expect(object["resume_workflow_url"] as? String == "https://d/r?a=1&b=\"x\"")
        #expect(object["message_id"] as? String == "id\n2")
        #expect(object["correlation_id"] is NSNull)
        #expect(object["attempts"] as? Int == 5)
        #expect(object["http_status"] as? Int == 503)
        #expect(object["error"] as? String == "retries_exhausted")
        #expect(object["detail"] as? String == detail)
        #expect(object["received_at"] as? String == "2026-11-29T05:12:05.123Z")
        #expect(object["completed_at"] as? String == "2026-11-29T05:12:06.500Z")
        let response = try #require(object["response"] as? [String: Any])
        let first = try #require((response["detail"] as? [[String: Any]])?.first)
        #expect(first["msg"] as? String == "bad")
        #expect(object.count == 11)
        // Key order is fixed.
        let keys = try JSONScanner.scan(bytes).members.map(\.key)
        #expect(keys == ["status", "resume_workflow_url", "message_id", "correlation_id", "attempts", "http_status",
                         "response", "error", "detail", "received_at", "completed_at"])
    }

    @Test func escapesControlCharactersAsUnicodeEscapes() {
        var writer = JSONWriter()
        writer.string("a\"b\\c\n\u{0}\u{1F}\u{7F}é😀/")
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #""a\"b\\c\u000a\u0000\u001f"# + "\u{7F}é😀/\"")
    }

    @Test func writesIntegers() {
        var writer = JSONWriter()
        for value in [0, 7, -1, 1234567890, Int.max, Int.min] {
            writer.int(value)
            writer.raw(",")
        }
        writer.int(nil as Int?)
        #expect(String(decoding: writer.bytes, as: UTF8.self)
            == "0,7,-1,1234567890,\(Int.max),\(Int.min),null")
    }

    @Test func emptyResponseBodyIsWrittenAsNull() throws {
        let outcome = Outcome(status: .succeeded, attempts: 1, httpStatus: 204, responseJSON: [],
                              receivedAt: received, completedAt: received)
        let object = try jsonObject(outcome.encode())
        #expect(object["response"] is NSNull)
        #expect(object["http_status"] as? Int == 204)
    }

    @Test(arguments: [
        (1_795_929_125.123, "2026-11-29T05:12:05.123Z"),
        (951_868_799.999, "2000-02-29T23:59:59.999Z"),
        (951_868_800, "2000-03-01T00:00:00.000Z"),
        (-0.5, "1969-12-31T23:59:59.500Z"),
        (-2_203_891_200, "1900-03-01T00:00:00.000Z"),
        (1_735_646_400, "2024-12-31T12:00:00.000Z"),
        (4_107_456_000, "2100-02-28T00:00:00.000Z"),
        (1_795_929_125.9996, "2026-11-29T05:12:06.000Z"),
        (1e15, "9999-12-31T23:59:59.999Z"),
        (-1e15, "0000-01-01T00:00:00.000Z"),
    ] as [(Double, String)])
    func formatsRFC3339(_ seconds: Double, _ expected: String) {
        #expect(JSONWriter.rfc3339(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test func formatterAgreesWithISO8601DateFormatter() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var seconds = -2_000_000_000.0
        while seconds < 4_000_000_000 {
            let date = Date(timeIntervalSince1970: seconds.rounded())
            #expect(JSONWriter.rfc3339(date) == formatter.string(from: date))
            seconds += 86_400 * 37.3
        }
    }

    @Test(arguments: [
        (#"{"detail":"Workflow not found"}"#, "Workflow not found"),
        (#"{"detail":"caf\u00e9 \"q\""}"#, "café \"q\""),
        (#"{"detail":[{"loc":["body","x"],"msg":"field required","type":"value_error.missing"}]}"#,
         #"[{"loc":["body","x"],"msg":"field required","type":"value_error.missing"}]"#),
        (#"{"detail": {"code": 7} }"#, #"{"code": 7}"#),
        (#"{"detail":42}"#, "42"),
        (#"{"error":"boom","message":"ignored"}"#, "boom"),
        (#"{"message":"only message"}"#, "only message"),
        (#"{"detail":null,"error":"fallback to error"}"#, "fallback to error"),
        (#"{"detail":"","message":"m"}"#, "m"),
        (#"{"message":false}"#, "false"),
        (#"{"detail":"first","detail":"second"}"#, "first"),
        (#"{"other":"x"}"#, "Dari request failed with status 500"),
        (#"["detail"]"#, "Dari request failed with status 500"),
        (#""detail""#, "Dari request failed with status 500"),
        ("<html>Bad Gateway</html>", "Dari request failed with status 500"),
        (#"{"detail":"truncated"#, "Dari request failed with status 500"),
        ("", "Dari request failed with status 500"),
    ])
    func extractsDariErrorDetail(_ body: String, _ expected: String) {
        #expect(DariErrorBody.detail(fromBody: Array(body.utf8), status: 500) == expected)
    }

    @Test func dariErrorFallbackUsesStatus() {
        #expect(DariErrorBody.detail(fromBody: [0xFF, 0xFE], status: 422) == "Dari request failed with status 422")
        #expect(DariErrorBody.detail(fromBody: [], status: 404) == "Dari request failed with status 404")
    }
}
