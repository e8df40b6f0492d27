import DariBridgeApp
import Foundation
import Logging
import Testing

/// `DARI_BRIDGE_LOG_FORMAT=json`: the handler's encoding, built directly
/// (LoggingSystem.bootstrap is process-wide and stays untouched here).
@Suite("JSONLogHandler")
struct JSONLogHandlerTests {
    static let hostile: [String] = [
        String(decoding: (0..<0x20).map { UInt8($0) } + [0x7f], as: UTF8.self),
        #"quote " backslash \ slash / \u0000 \n"#,
        "\u{2028}\u{2029}\u{FEFF}\u{FFFF}",
        "emoji 👩‍👩‍👧 e\u{301} ü 日本",
        String(decoding: [0x61, 0xFF, 0xFE, 0xC3, 0x28, 0xE2, 0x82, 0xED, 0xA0, 0x80, 0x62], as: UTF8.self),  // invalid UTF-8 made into a String
        "}\n{\"level\":\"critical\",\"message\":\"forged\"}",
        "",
    ]

    func event(_ message: String, level: Logger.Level = .info, metadata: Logger.Metadata? = nil, error: (any Error)? = nil) -> LogEvent {
        LogEvent(level: level, message: "\(message)", error: error, metadata: metadata, source: "Tests", file: #fileID, function: #function, line: #line)
    }

    func object(_ line: [UInt8]) throws -> [String: Any] {
        #expect(line.last == 0x0A)
        #expect(line.dropLast().firstIndex(of: 0x0A) == nil, "one line only")
        #expect(String(validating: line, as: UTF8.self) != nil, "valid UTF-8")
        let value = try JSONSerialization.jsonObject(with: Data(line))
        return try #require(value as? [String: Any])
    }

    @Test func theFixedFieldsAndTheMetadata() throws {
        var h = JSONLogHandler(label: "dari-bridge")
        h[metadataKey: "worker"] = "w1"
        let date = Date(timeIntervalSince1970: 1_764_586_923.456)
        let o = try object(h.line(for: event("outcome published", level: .warning, metadata: [
            "message_id": "m-1", "correlation_id": "c-1", "attempt": "3", "status": .stringConvertible(503),
        ]), date: date))
        #expect(o["timestamp"] as? String == "2025-12-01T11:02:03.456Z")
        #expect(o["level"] as? String == "warning")
        #expect(o["label"] as? String == "dari-bridge")
        #expect(o["source"] as? String == "Tests")
        #expect(o["message"] as? String == "outcome published")
        #expect(o["message_id"] as? String == "m-1")
        #expect(o["correlation_id"] as? String == "c-1")
        #expect(o["attempt"] as? String == "3")
        #expect(o["status"] as? String == "503")
        #expect(o["worker"] as? String == "w1")
        #expect(o.count == 10)
    }

    @Test func theTimestampIsRFC3339UTCWithAFraction() throws {
        let o = try object(JSONLogHandler(label: "x").line(for: event("m")))
        let ts = try #require(o["timestamp"] as? String)
        #expect(ts.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(ts)")
    }

    @Test(arguments: hostile)
    func hostileStringsRoundTrip(_ text: String) throws {
        var h = JSONLogHandler(label: text)
        h[metadataKey: text.isEmpty ? "empty" : text] = .string(text)
        let o = try object(h.line(for: event(text, metadata: ["nested": .dictionary([text: .array([.string(text), .dictionary(["k": "\(text)"])])])])))
        #expect(o["message"] as? String == text)
        #expect(o["label"] as? String == text)
        #expect(o[text.isEmpty ? "empty" : text] as? String == text)
        let nested = try #require(o["nested"] as? [String: Any])
        let array = try #require(nested[text] as? [Any])
        #expect(array.first as? String == text)
        #expect((array.last as? [String: Any])?["k"] as? String == text)
    }

    @Test func everyControlCharacterIsEscaped() throws {
        let line = JSONLogHandler(label: "x").line(for: event(String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self)))
        #expect(!line.dropLast().contains { $0 < 0x20 }, "a raw control byte in \(line)")
    }

    @Test func aMetadataKeyNamedLikeAFixedFieldDoesNotDuplicateIt() throws {
        let line = JSONLogHandler(label: "x").line(for: event("real", metadata: ["message": "fake", "level": "fake", "timestamp": "fake"]))
        let o = try object(line)
        #expect(o["message"] as? String == "real")
        #expect(o["level"] as? String == "info")
        #expect(o["metadata.message"] as? String == "fake")
        #expect(o["metadata.level"] as? String == "fake")
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.components(separatedBy: "\"message\":").count == 2, "\(text)")
    }

    @Test func nestedMetadataIsJSONAndTheCallWins() throws {
        var h = JSONLogHandler(label: "x", metadataProvider: Logger.MetadataProvider { ["trace": "from-provider", "shared": "provider"] })
        h[metadataKey: "shared"] = "handler"
        h[metadataKey: "only_handler"] = "h"
        let o = try object(h.line(for: event("m", metadata: [
            "shared": "call", "list": [.string("a"), .array([]), .dictionary([:])], "dict": ["b": ["c": "d"]],
        ])))
        #expect(o["shared"] as? String == "call")
        #expect(o["trace"] as? String == "from-provider")
        #expect(o["only_handler"] as? String == "h")
        let list = try #require(o["list"] as? [Any])
        #expect(list.count == 3 && list[0] as? String == "a" && (list[1] as? [Any])?.isEmpty == true && (list[2] as? [String: Any])?.isEmpty == true)
        #expect(((o["dict"] as? [String: Any])?["b"] as? [String: Any])?["c"] as? String == "d")
    }

    @Test func deepNestingIsCutNotRecursedForever() throws {
        var value = Logger.Metadata.Value.string("leaf")
        for _ in 0..<2_000 { value = .dictionary(["k": .array([value])]) }
        let o = try object(JSONLogHandler(label: "x").line(for: event("deep", metadata: ["deep": value])))
        var level: Any? = o["deep"]
        var depth = 0
        while let next = ((level as? [String: Any])?["k"] as? [Any])?.first {
            level = next
            depth += 2
        }
        #expect(depth == 32 && level as? String == "(nested deeper than 32 levels)", "\(depth) \(String(describing: level))")
    }

    @Test func anErrorIsAField() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom \"quoted\"\n" } }
        let o = try object(JSONLogHandler(label: "x").line(for: event("failed", level: .error, error: Boom())))
        #expect(o["error"] as? String == "boom \"quoted\"\n")
        // The code's usual "error" metadata keeps its name; the call's error then is log_error.
        let both = try object(JSONLogHandler(label: "x").line(for: event("failed", metadata: ["error": "from metadata"], error: Boom())))
        #expect(both["error"] as? String == "from metadata")
        #expect(both["log_error"] as? String == "boom \"quoted\"\n")
        #expect(both["metadata.error"] == nil)
    }

    @Test func aLoggerUsesItAndKeepsItsLevel() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jsonlog-\(UUID().uuidString.prefix(8))").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { unlink(path) }
        var logger = Logger(label: "dari-bridge") { JSONLogHandler(label: $0, fileDescriptor: fd) }
        logger.logLevel = .info
        logger.debug("not written")
        logger.info("written", metadata: ["message_id": "m"])
        close(fd)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let o = try object(Array((lines[0] + "\n").utf8))
        #expect(o["message"] as? String == "written" && o["message_id"] as? String == "m" && o["label"] as? String == "dari-bridge")
    }

    /// Eight threads log at once into one file: every line stays whole (one write(2) per line).
    @Test func linesFromManyThreadsDoNotInterleave() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jsonlog-\(UUID().uuidString.prefix(8))").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { unlink(path) }
        let padding = String(repeating: "x", count: 300)
        let threads = (0..<8).map { t in
            Thread {
                let logger = Logger(label: "t\(t)") { JSONLogHandler(label: $0, fileDescriptor: fd) }
                for i in 0..<400 { logger.info("line \(i) \(padding)", metadata: ["thread": "\(t)", "i": "\(i)"]) }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(10)) }
        close(fd)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 8 * 400)
        var seen = Set<String>()
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            seen.insert("\(o["thread"] ?? "")/\(o["i"] ?? "")")
        }
        #expect(seen.count == 8 * 400)
    }
}
