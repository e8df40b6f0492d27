import DariBridge
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// `DARI_BRIDGE_LOG_FORMAT=json`: one JSON object per line, e.g.
///
///     {"timestamp":"2026-12-01T11:02:03.456Z","level":"info","label":"dari-bridge","source":"DariBridge",
///      "message":"done","message_id":"m-1","status":"succeeded"}
///
/// `timestamp` (RFC 3339, UTC, milliseconds), `level`, `label`, `source` and
/// `message` come first; then the metadata (the handler's, the metadata
/// provider's, the call's; the call wins), keys sorted, as fields of their own:
/// strings as JSON strings, nested dictionaries and arrays as JSON objects and
/// arrays. A metadata key that is one of the fixed fields is written as
/// `metadata.<key>`, so no key appears twice. An error passed to the log call
/// is `error` (`log_error` when the metadata has an `error` already). Strings
/// are escaped as JSON requires (every control character, `"` and `\`); Swift
/// strings are valid Unicode, so the line is valid UTF-8 (bytes that were not
/// UTF-8 became U+FFFD when the string was made).
///
/// Each line is built whole and written with one `write(2)`, so lines from
/// different threads never interleave.
package struct JSONLogHandler: LogHandler {
    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    package let label: String
    let fileDescriptor: Int32

    static let fixedFields: Set<String> = ["timestamp", "level", "label", "source", "message"]

    /// A handler writing to `fileDescriptor` (stderr by default).
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
        writeWhole(line(for: event), to: fileDescriptor)
    }

    /// The line for `event`, newline included.
    package func line(for event: LogEvent, date: Date = Date()) -> [UInt8] {
        var merged = mergedMetadata(metadata, metadataProvider, event.metadata)
        if let error = event.error {
            // The code logs most errors as metadata "error"; an error passed to the call joins them.
            merged[merged["error"] == nil ? "error" : "log_error"] = .string(String(describing: error))
        }
        var w = JSONWriter(capacity: 256)
        w.raw("{\"timestamp\":")
        w.timestamp(date)
        w.raw(",\"level\":")
        w.string(event.level.rawValue)
        w.raw(",\"label\":")
        w.string(label)
        w.raw(",\"source\":")
        w.string(event.source)
        w.raw(",\"message\":")
        w.string(event.message.description)
        for key in merged.keys.sorted() {
            w.raw(",")
            w.string(Self.fixedFields.contains(key) ? "metadata.\(key)" : key)
            w.raw(":")
            Self.write(merged[key]!, to: &w, depth: 0)
        }
        w.raw("}\n")
        return w.bytes
    }

    /// A metadata value; below 32 levels of nesting a placeholder string (a
    /// deeper value's own `description` would recurse as deep as it goes).
    static func write(_ value: Logger.Metadata.Value, to w: inout JSONWriter, depth: Int) {
        switch value {
        case .string(let s): w.string(s)
        case .stringConvertible(let c): w.string(c.description)
        case .dictionary(let d) where depth < 32:
            w.raw("{")
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { w.raw(",") }
                w.string(key)
                w.raw(":")
                write(d[key]!, to: &w, depth: depth + 1)
            }
            w.raw("}")
        case .array(let a) where depth < 32:
            w.raw("[")
            for (i, item) in a.enumerated() {
                if i > 0 { w.raw(",") }
                write(item, to: &w, depth: depth + 1)
            }
            w.raw("]")
        case .dictionary, .array: w.raw("\"(nested deeper than 32 levels)\"")
        }
    }
}

/// Writes `bytes` with one `write(2)` (more only after a short write or EINTR).
/// A log line's metadata, as swift-log merges it: the handler's, then the metadata
/// provider's, then the call's (the later wins).
func mergedMetadata(_ handler: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ call: Logger.Metadata?) -> Logger.Metadata {
    var merged = handler
    if let provided = provider?.get(), !provided.isEmpty { merged.merge(provided) { _, new in new } }
    if let call, !call.isEmpty { merged.merge(call) { _, new in new } }
    return merged
}

func writeWhole(_ bytes: [UInt8], to fd: Int32) {
    bytes.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, base + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
