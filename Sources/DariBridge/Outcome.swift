#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What happened to one resume request; published as JSON with routing key `routingKey`.
package struct Outcome: Sendable, Equatable {
    package enum Status: String, Sendable, CaseIterable { case succeeded, failed }

    package enum ErrorKind: String, Sendable, CaseIterable {
        case invalidMessage = "invalid_message"
        case urlNotAllowed = "url_not_allowed"
        case dariError = "dari_error"
        case retriesExhausted = "retries_exhausted"
        case deliveryLimit = "delivery_limit"
    }

    package var status: Status
    package var resumeURL: String?
    package var messageId: String?
    package var correlationId: String?
    package var attempts: Int
    package var httpStatus: Int?
    /// Dari's raw JSON body (already validated), spliced unchanged into `response`.
    package var responseJSON: [UInt8]?
    package var error: ErrorKind?
    package var detail: String?
    package var receivedAt: Date
    package var completedAt: Date

    package init(
        status: Status,
        resumeURL: String? = nil,
        messageId: String? = nil,
        correlationId: String? = nil,
        attempts: Int,
        httpStatus: Int? = nil,
        responseJSON: [UInt8]? = nil,
        error: ErrorKind? = nil,
        detail: String? = nil,
        receivedAt: Date,
        completedAt: Date
    ) {
        self.status = status
        self.resumeURL = resumeURL
        self.messageId = messageId
        self.correlationId = correlationId
        self.attempts = attempts
        self.httpStatus = httpStatus
        self.responseJSON = responseJSON
        self.error = error
        self.detail = detail
        self.receivedAt = receivedAt
        self.completedAt = completedAt
    }

    package var routingKey: String { status == .succeeded ? "resume.succeeded" : "resume.failed" }

    /// The outcome as a JSON object with keys in this order: status, resume_workflow_url, message_id,
    /// correlation_id, attempts, http_status, response, error, detail, received_at, completed_at.
    /// Absent optionals (and an empty `responseJSON`) are written as `null`.
    package func encode() -> [UInt8] {
        var w = JSONWriter(capacity: 256 + (responseJSON?.count ?? 0) + (detail?.utf8.count ?? 0))
        w.raw("{\"status\":")
        w.string(status.rawValue)
        w.raw(",\"resume_workflow_url\":")
        w.string(resumeURL)
        w.raw(",\"message_id\":")
        w.string(messageId)
        w.raw(",\"correlation_id\":")
        w.string(correlationId)
        w.raw(",\"attempts\":")
        w.int(attempts)
        w.raw(",\"http_status\":")
        w.int(httpStatus)
        w.raw(",\"response\":")
        if let responseJSON, !responseJSON.isEmpty { w.raw(responseJSON) } else { w.null() }
        w.raw(",\"error\":")
        w.string(error?.rawValue)
        w.raw(",\"detail\":")
        w.string(detail)
        w.raw(",\"received_at\":")
        w.timestamp(receivedAt)
        w.raw(",\"completed_at\":")
        w.timestamp(completedAt)
        w.raw("}")
        return w.bytes
    }
}

/// Extracts a human-readable error detail from a Dari error response body.
package enum DariErrorBody {
    /// Dari's `detail` verbatim (a string as-is; a non-string detail, e.g. FastAPI's validation array,
    /// as its raw JSON text), else `error`, else `message` (same rule), else "Dari request failed with status N".
    /// Non-JSON or empty body -> the fallback. A field that is `null` or an empty string counts as absent;
    /// for a duplicated key the first occurrence wins.
    package static func detail(fromBody body: [UInt8], status: Int) -> String {
        let fallback = "Dari request failed with status \(status)"
        guard !body.isEmpty, let doc = try? JSONScanner.scan(body), doc.kind == .object else { return fallback }
        for name in ["detail", "error", "message"] {
            guard let member = doc.members.first(where: { $0.key == name }) else { continue }
            switch member.kind {
            case .null:
                continue
            case .string:
                guard let text = try? JSONScanner.decodeString(body, literal: member.valueRange), !text.isEmpty else { continue }
                return text
            case .number, .bool, .object, .array:
                return String(decoding: body[member.valueRange], as: UTF8.self)
            }
        }
        return fallback
    }
}
