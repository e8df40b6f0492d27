import TestSupport
import Foundation
import Logging
import Synchronization
import Testing
@testable import DariBridge

/// Every property and header is untrusted input: the pipeline gives a normal
/// outcome whatever they hold, never traps, bounds what it logs.
@Suite("Hostile properties")
struct HostilePropertiesTests {
    static let url = "https://api.usedari.com/public/send-user-signal/abc"

    func body() -> [UInt8] { ResumeRequest.messageBody(resumeURL: Self.url, variablesJSON: Array(#"{"a":1}"#.utf8)) }

    func pipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, maxAttempts: Int = 3, maxDeliveries: Int = 5,
                  allowedReplyTo: [String]? = nil, concurrency: Int = 64, maxInMemoryWait: Duration = .seconds(30),
                  logger: Logger = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })) -> ResumePipeline {
        var executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: maxAttempts), requestTimeout: .seconds(5),
                                      sleep: { _ in }, randomUnit: { 0.5 })
        executor.maxInMemoryWait = maxInMemoryWait
        return ResumePipeline(
            settings: PipelineSettings(resultsExchange: "x", maxMessageBytes: 1 << 20,
                                       urlPolicy: URLPolicy(allowedHosts: ["api.usedari.com"], allowedPathPrefixes: ["/public/send-user-signal/"], allowInsecureHTTP: false),
                                       concurrency: concurrency, maxDeliveries: maxDeliveries, allowedReplyTo: allowedReplyTo),
            executor: executor, broker: broker, metrics: .readable(), logger: logger)
    }

    func outcomeJSON(_ broker: InMemoryBroker) throws -> [String: Any] {
        let m = try #require(broker.published.first { !$0.mandatory })
        return try #require(try JSONSerialization.jsonObject(with: Data(m.body)) as? [String: Any])
    }

    /// What the broker adapter renders for an attempts header of every AMQP
    /// integer type at its limits, as strings, and garbage.
    static let hostileAttempts: [String] = [
        "-9223372036854775808", "9223372036854775807", "18446744073709551615", "-1", "-128", "255", "65535",
        "4294967295", "2147483647", "-2147483648", "1e3", "1.5", "", " 1", "+1", "0x10", "true", "99999999999999999999999",
        String(repeating: "9", count: 5000), "1\n2", "NaN",
    ]

    @Test(arguments: hostileAttempts)
    func anAttemptsHeaderOfAnyValueGivesANormalOutcome(_ value: String) async throws {
        // 503 then 200: the retry path does arithmetic with the prior attempts.
        let calls = CallCounter()
        let transport = FunctionTransport { _, _, _ in
            calls.increment() == 1 ? DariResponse(status: 503) : DariResponse(status: 200, body: Array(#"{"ok":true}"#.utf8))
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker)
        await p.handle(InboundMessage(body: body(), headers: [attemptsHeader: value], token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(broker.acked == [DeliveryToken(tag: 1, incarnation: 1)])
        let o = try outcomeJSON(broker)
        let attempts = try #require(o["attempts"] as? Int)
        #expect((0...3).contains(attempts))
        #expect(p.metrics.value(\.httpAttempts) >= 0)
    }

    @Test func attemptsAboveTheMaximumAreClampedAndNegativeOnesIgnored() {
        #expect(ResumePipeline.priorAttempts([attemptsHeader: "9223372036854775807"], maxAttempts: 6) == 6)
        #expect(ResumePipeline.priorAttempts([attemptsHeader: "7"], maxAttempts: 6) == 6)
        #expect(ResumePipeline.priorAttempts([attemptsHeader: "-9223372036854775808"], maxAttempts: 6) == 0)
        #expect(ResumePipeline.priorAttempts([attemptsHeader: "2"], maxAttempts: 6) == 2)
        #expect(ResumePipeline.priorAttempts([attemptsHeader: "x"], maxAttempts: 6) == 0)
        #expect(ResumePipeline.priorAttempts([:], maxAttempts: 6) == 0)
    }

    @Test func aDeliveryAtTheLimitGetsDeliveryLimitWithoutAPost() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxDeliveries: 5)
        await p.handle(InboundMessage(body: body(), headers: [deliveryCountHeader: "5"], redelivered: true, token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(transport.callCount == 0)
        #expect(broker.acked == [DeliveryToken(tag: 1, incarnation: 1)])
        let o = try outcomeJSON(broker)
        #expect(o["status"] as? String == "failed")
        #expect(o["error"] as? String == "delivery_limit")
        #expect((o["detail"] as? String)?.contains("DARI_BRIDGE_MAX_DELIVERIES") == true)
        #expect(o["attempts"] as? Int == 0)
        #expect(p.metrics.value(\.deliveryLimit) == 1)
    }

    @Test(arguments: ["4", "0", "-1", "-9223372036854775808", "abc", ""])
    func aDeliveryBelowTheLimitOrWithAJunkCountIsPosted(_ count: String) async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxDeliveries: 5)
        await p.handle(InboundMessage(body: body(), headers: [deliveryCountHeader: count], redelivered: true, token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(transport.callCount == 1)
        #expect(try outcomeJSON(broker)["status"] as? String == "succeeded")
    }

    @Test func aKnownOutcomeIsRepublishedEvenPastTheDeliveryLimit() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxDeliveries: 2)
        await p.handle(InboundMessage(body: body(), messageId: "m", token: DeliveryToken(tag: 1, incarnation: 1)))
        await p.handle(InboundMessage(body: body(), messageId: "m", headers: [deliveryCountHeader: "3"], redelivered: true, token: DeliveryToken(tag: 1, incarnation: 2)))
        #expect(transport.callCount == 1)
        let outcomes = broker.published.filter { !$0.mandatory }
        #expect(outcomes.count == 2 && outcomes[0].body == outcomes[1].body)
    }

    @Test func anOversizedBodyThatWasDroppedWhileReadGetsInvalidMessage() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker)
        await p.handle(InboundMessage(body: [], token: DeliveryToken(tag: 1, incarnation: 1), bodySize: 50_331_648, bodyDiscarded: true))
        #expect(transport.callCount == 0)
        #expect(broker.acked.count == 1)
        let o = try outcomeJSON(broker)
        #expect(o["error"] as? String == "invalid_message")
        #expect(o["detail"] as? String == "message body is 50331648 bytes, over the limit of 1048576")
    }

    @Test func aReplyToOutsideTheAllowedPrefixesGetsNoCopyAndAnEscapedWarning() async throws {
        let lines = LogCapture()
        let broker = InMemoryBroker()
        let p = pipeline(FunctionTransport(), broker, allowedReplyTo: ["amq.gen-", "replies."],
                         logger: Logger(label: "t", factory: { _ in lines.handler() }))
        await p.handle(InboundMessage(body: body(), replyTo: "evil\ninfo: forged line", token: DeliveryToken(tag: 1, incarnation: 1)))
        await p.handle(InboundMessage(body: body(), replyTo: "replies.svc", token: DeliveryToken(tag: 2, incarnation: 1)))
        #expect(broker.published.filter(\.mandatory).map(\.routingKey) == ["replies.svc"])
        #expect(broker.published.filter { !$0.mandatory }.count == 2, "both outcomes reach the results exchange")
        #expect(broker.acked.count == 2)
        #expect(p.metrics.value(\.replyToRefused) == 1)
        let warning = try #require(lines.all.first { $0.contains("reply_to") })
        #expect(!warning.contains("\n"))
        #expect(warning.contains(#"evil\ninfo: forged line"#))
    }

    @Test func logValuesAreEscapedAndBounded() {
        #expect(LogSafe.text("a\nb\r\tc\\") == #"a\nb\r\tc\\"#)
        #expect(LogSafe.text("\u{1b}[31mred\u{0}") == #"\u{1b}[31mred\u{0}"#)
        #expect(LogSafe.text("é") == #"\u{e9}"#)
        let long = LogSafe.text(String(repeating: "x", count: 10_000))
        #expect(long.utf8.count < 260 && long.hasSuffix("...(10000 bytes)"))
    }

    @Test func aTransportRefusalIsUrlNotAllowedWithoutRetry() async throws {
        let transport = FunctionTransport { _, _, _ in throw DariRequestRefused(reason: "connected address 127.0.0.1 is private") }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker)
        await p.handle(InboundMessage(body: body(), token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(transport.callCount == 1)
        let o = try outcomeJSON(broker)
        #expect(o["error"] as? String == "url_not_allowed")
        #expect(o["detail"] as? String == "connected address 127.0.0.1 is private")
        #expect(o["attempts"] as? Int == 0)
    }
}

/// Collects rendered log lines (message and metadata) as a StreamLogHandler would write them.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    func handler() -> some LogHandler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let all = metadata.merging(explicit ?? [:]) { $1 }
            let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.lines.withLock { $0.append("\(level) \(message) \(rendered)") }
        }
    }
}

@Suite("Rate-limited log")
struct RateLimitedLogTests {
    @Test func oneEventPerIntervalWithTheCountHeldBack() {
        let limit = RateLimitedLog(interval: .seconds(10))
        let t0 = ContinuousClock.now
        #expect(limit.admit(now: t0) == 0)
        #expect(limit.admit(now: t0 + .seconds(1)) == nil)
        #expect(limit.admit(now: t0 + .seconds(9)) == nil)
        #expect(limit.admit(now: t0 + .seconds(10)) == 2)
        #expect(limit.admit(now: t0 + .seconds(11)) == nil)
    }
}
