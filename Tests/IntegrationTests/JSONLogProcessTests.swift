import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Testing

/// `DARI_BRIDGE_LOG_FORMAT=json` in the built worker: every line it writes is
/// a JSON object with the required fields, and none carries a password or a
/// variable's value.
@Suite(.serialized) struct JSONLogProcessTests {
    /// rabbitmqctl on the tests' broker (scripts/rabbitmq.sh ctl).
    func ctl(_ args: String...) throws {
        let env = ProcessInfo.processInfo.environment
        let r = try ProjectScript.run("rabbitmq.sh", ["ctl", "-q"] + args, environment: [
            "RABBIT_PORT": "\(try Harness.brokerURL.port)",
            "RABBIT_NODE": env["RABBIT_NODE"] ?? env["DARI_TEST_RABBIT_NODE"] ?? "daribridge-test@localhost",
        ])
        guard r.status == 0 else { throw HarnessError("rabbitmqctl \(args.joined(separator: " ")): \(r.output)") }
    }

    @Test func everyLineOfTheWorkersLogIsAJSONObject() async throws {
        let h = try await Harness()
        // A user of its own, with a password that must never reach the log.
        let user = "jsonlog-\(UUID().uuidString.prefix(8))", password = "Pw-\(UUID().uuidString.prefix(12))-secret"
        try ctl("add_user", user, password)
        defer { try? ctl("delete_user", user) }
        try ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        var env = WorkerProcess.environment(for: h, extra: ["DARI_BRIDGE_LOG_FORMAT": "json", "DARI_BRIDGE_LOG_LEVEL": "debug"])
        env["AMQP_URL"] = "amqp://\(user):\(password)@127.0.0.1:\(h.config.amqpURL.port)/%2F"
        let worker = try WorkerProcess(environment: env)

        let secretValue = "var-value-\(UUID().uuidString.prefix(8))"
        try await h.publish(id: "ok-1", variables: #"{"user_response":"\#(secretValue)"}"#, correlationId: "corr-1")
        try await h.publish(body: Array("not json \u{1}\n{".utf8), messageId: "bad-1")
        try await h.publish(body: ResumeRequest.messageBody(resumeURL: "https://evil.example/public/send-user-signal/x",
                                                          variablesJSON: Array(#"{"k":"\#(secretValue)"}"#.utf8)),
                            messageId: "refused-1")
        try await h.publish(body: ResumeRequest.messageBody(resumeURL: h.url("hostile"), variablesJSON: Array("{}".utf8)),
                            messageId: "id \"quoted\"\n\u{1b}[31m\\", correlationId: "c\u{0}\u{7f}")
        let outcomes = await h.waitForOutcomes(4)
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(30))
        await h.stop()
        #expect(outcomes.count == 4)
        #expect(status == 0, "\(worker.log)")

        let log = worker.log
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()  // the text ends with a newline
        #expect(log.hasSuffix("\n"))
        #expect(lines.count >= 8, "\(log)")
        var objects: [[String: Any]] = []
        for line in lines {
            let value = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            let object = try #require(value as? [String: Any], "not a JSON object: \(line)")
            let timestamp = try #require(object["timestamp"] as? String, "\(line)")
            #expect(timestamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(timestamp)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""), "\(line)")
            #expect(!(object["message"] as? String ?? "").isEmpty, "\(line)")
            #expect(object["label"] as? String == "dari-bridge", "\(line)")
            objects.append(object)
        }
        #expect(!log.contains(password), "the password is in the log")
        #expect(!log.contains(secretValue), "a variable's value is in the log")
        #expect(objects.contains { $0["message"] as? String == "starting" })
        // The per-message lines carry the message's ids and its result as fields.
        func done(_ id: String) -> [String: Any]? {
            objects.first { $0["message"] as? String == "done" && $0["message_id"] as? String == id }
        }
        #expect(done("ok-1")?["status"] as? String == "succeeded")
        #expect(done("ok-1")?["correlation_id"] as? String == "corr-1")
        #expect(done("bad-1")?["status"] as? String == "failed")
        #expect(done("refused-1")?["status"] as? String == "failed")
        #expect(objects.contains { $0["message"] as? String == "resume URL not allowed" && $0["message_id"] as? String == "refused-1" })
        #expect(objects.contains { $0["message"] as? String == "invalid message" && $0["message_id"] as? String == "bad-1" })
        #expect(objects.contains { ($0["message_id"] as? String)?.hasPrefix("id ") == true && $0["message"] as? String == "done" },
                "the hostile message id is logged (escaped by LogSafe, then as JSON)")
    }
}
