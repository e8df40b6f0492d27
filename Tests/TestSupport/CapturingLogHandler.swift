import Logging
import Synchronization

/// A swift-log handler that keeps every record as one rendered line
/// (`level message key=value ...`), values exactly as the code logged them,
/// so a test can check that no input byte (a newline in a reply_to) made it
/// into a log line unescaped.
package struct CapturingLogHandler: LogHandler {
    package final class Store: Sendable {
        package let lines = Mutex<[String]>([])
        package var all: [String] { lines.withLock { $0 } }
    }

    package let store: Store
    package var logLevel: Logger.Level = .trace
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?

    package init(store: Store) { self.store = store }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        store.lines.withLock { $0.append("\(event.level) \(event.message) \(rendered)") }
    }

    /// A logger at `level` that records into a new store.
    package static func logger(level: Logger.Level = .trace) -> (Logger, Store) {
        let store = Store()
        var logger = Logger(label: "captured") { _ in CapturingLogHandler(store: store) }
        logger.logLevel = level
        return (logger, store)
    }
}
