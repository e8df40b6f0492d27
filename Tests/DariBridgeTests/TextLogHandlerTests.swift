@testable import DariBridgeApp
import DariBridge
import Foundation
import Logging
import Testing

/// Counts how often it is rendered.
private final class RenderCounter: CustomStringConvertible, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var renders: Int { lock.lock(); defer { lock.unlock() }; return count }
    var description: String {
        lock.lock(); count += 1; lock.unlock()
        return "rendered"
    }
}

@Suite("Text log lines")
struct TextLogHandlerTests {
    @Test func theLineHasStreamLogHandlersShape() {
        var handler = TextLogHandler(label: "dari-bridge")
        handler[metadataKey: "message_id"] = "m-1"
        handler[metadataKey: "attempt"] = "2"
        let event = LogEvent(level: .warning, message: "giving up", metadata: ["status": "503"], source: "DariBridge",
                             file: #fileID, function: #function, line: #line)
        let line = handler.line(for: event, time: 0)
        let stamp = TextLogHandler.timestamp(0)
        #expect(line == "\(stamp) warning dari-bridge: attempt=2 message_id=m-1 status=503 [DariBridge] giving up\n")
        #expect(stamp.count == "1970-01-01T00:00:00+0000".count, "\(stamp)")
        let plain = TextLogHandler(label: "x").line(for: LogEvent(level: .info, message: "m", metadata: nil, source: "S",
                                                                  file: #fileID, function: #function, line: #line), time: 0)
        #expect(plain == "\(stamp) info x: [S] m\n")
    }

    @Test func metadataIsRenderedOnlyWhenALineIsWritten() throws {
        let counter = RenderCounter()
        var handler = TextLogHandler(label: "t", fileDescriptor: -1)
        for i in 0..<100 {
            handler[metadataKey: "message_id"] = .stringConvertible(counter)
            handler[metadataKey: "n"] = "\(i)"
        }
        #expect(counter.renders == 0, "metadata rendered when it was set")
        _ = handler.line(for: LogEvent(level: .info, message: "m", metadata: nil, source: "S", file: #fileID, function: #function, line: #line), time: 0)
        #expect(counter.renders == 1)
    }

    @Test func anErrorIsWrittenAsMetadata() {
        struct Boom: Error {}
        let event = LogEvent(level: .error, message: "m", error: Boom(), metadata: nil, source: "S", file: #fileID, function: #function, line: #line)
        let line = TextLogHandler(label: "t").line(for: event, time: 0)
        #expect(line.contains("error.message=Boom()"), "\(line)")
        #expect(line.contains("error.type="), "\(line)")
    }
}

@Suite("Outcome message ids")
struct MessageIDTests {
    @Test func theTextIsUUIDsOwn() {
        for _ in 0..<200 {
            let uuid = UUID()
            #expect(MessageID.text(of: uuid.uuid) == uuid.uuidString)
        }
        let ids = Set((0..<100_000).map { _ in MessageID.random() })
        #expect(ids.count == 100_000)
        #expect(ids.allSatisfy { UUID(uuidString: $0) != nil && $0.utf8.count == 36 })
        // Version 4, RFC 4122 variant: XXXXXXXX-XXXX-4XXX-[89AB]XXX-XXXXXXXXXXXX.
        #expect(ids.allSatisfy { id in
            let c = Array(id)
            return c[14] == "4" && "89AB".contains(c[19])
        })
    }
}
