#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// `DARI_BRIDGE_LOG_FORMAT=text` (the default): the lines of swift-log's `StreamLogHandler`,
///
///     2026-12-01T14:02:03+0000 info dari-bridge: attempt=1 message_id=m-1 [DariBridge] done
///
/// (local time, level, label, the metadata as sorted `key=value` pairs, source, message),
/// each written whole with one `write(2)`.
///
/// Not `StreamLogHandler` itself: it renders its whole metadata to text every time a key is
/// *set* (to have it ready for a line), and the pipeline sets `message_id` and
/// `correlation_id` on every message, most of which log nothing at `info`: that cost about
/// 16,000 instructions per message under callgrind. Here metadata is rendered only when a
/// line is written.
package struct TextLogHandler: LogHandler {
    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    package let label: String
    let fileDescriptor: Int32

    package init(label: String, fileDescriptor: Int32 = 2, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.fileDescriptor = fileDescriptor
        self.metadataProvider = metadataProvider
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        writeWhole(Array(line(for: event, time: time(nil)).utf8), to: fileDescriptor)
    }

    /// The line for `event` at `time` (seconds since the epoch), newline included.
    package func line(for event: LogEvent, time: time_t) -> String {
        var merged = mergedMetadata(metadata, metadataProvider, event.metadata)
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let pretty = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(Self.timestamp(time)) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pretty) [\(event.source)] \(event.message)\n"
    }

    /// `%Y-%m-%dT%H:%M:%S%z` in local time, as `StreamLogHandler` writes it.
    static func timestamp(_ time: time_t) -> String {
        var time = time
        var local = tm()
        guard localtime_r(&time, &local) != nil else { return "<unknown>" }
        var buffer = [Int8](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
