/// Why a webhook request is refused. The raw value is the `reason` label of
/// `dari_bridge_webhooks_rejected_total` (a closed set).
package enum WebhookRejection: String, Sendable, CaseIterable, Error {
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case tooLarge = "too_large"
    case missingTimestamp = "missing_timestamp"
    case badTimestamp = "bad_timestamp"
    case staleTimestamp = "stale_timestamp"
    case futureTimestamp = "future_timestamp"
    case missingSignature = "missing_signature"
    case malformedSignature = "malformed_signature"
    case badSignature = "bad_signature"
    case notJSONObject = "not_json_object"
    /// The same delivery is being stored by another request right now.
    case inProgress = "in_progress"
    /// The broker did not confirm the message (not connected, blocked, nacked, timed out).
    case brokerUnavailable = "broker_unavailable"
    /// The broker took it but no queue is bound for its routing key: not stored.
    case unroutable = "unroutable"
}

/// What the receiver answers: a status and `{"detail": "..."}`.
package struct WebhookResponse: Sendable, Equatable {
    package var status: Int
    package var detail: String
    package init(status: Int, detail: String) {
        self.status = status
        self.detail = detail
    }

    /// `{"detail": "..."}`.
    package var body: [UInt8] {
        var w = JSONWriter(capacity: detail.utf8.count + 16)
        w.raw("{\"detail\":")
        w.string(detail)
        w.raw("}")
        return w.bytes
    }

    /// Stored: the broker confirmed the message.
    package static let accepted = WebhookResponse(status: 202, detail: "accepted")
    /// The same signed delivery was stored before (within the tolerance): not published again.
    package static let duplicate = WebhookResponse(status: 200, detail: "duplicate delivery: already accepted")
}

extension WebhookRejection {
    /// The answer for this rejection; `tolerance` and `maxBodyBytes` only go into the text.
    package func response(tolerance: Int, maxBodyBytes: Int) -> WebhookResponse {
        switch self {
        case .notFound: return .init(status: 404, detail: "not found")
        case .methodNotAllowed: return .init(status: 405, detail: "method not allowed: use POST")
        case .tooLarge: return .init(status: 413, detail: "body larger than \(maxBodyBytes) bytes")
        case .missingTimestamp: return .init(status: 401, detail: "missing X-Webhook-Timestamp")
        case .badTimestamp: return .init(status: 401, detail: "X-Webhook-Timestamp is not Unix seconds")
        case .staleTimestamp: return .init(status: 401, detail: "X-Webhook-Timestamp is more than \(tolerance) s old")
        case .futureTimestamp: return .init(status: 401, detail: "X-Webhook-Timestamp is more than \(tolerance) s in the future")
        case .missingSignature: return .init(status: 401, detail: "missing X-Webhook-Signature")
        case .malformedSignature: return .init(status: 401, detail: "X-Webhook-Signature is not 64 hex digits (optionally after sha256=)")
        case .badSignature: return .init(status: 401, detail: "signature does not match")
        case .notJSONObject: return .init(status: 400, detail: "body is not a JSON object")
        case .inProgress: return .init(status: 409, detail: "this delivery is being stored by another request; retry")
        case .brokerUnavailable: return .init(status: 503, detail: "the message broker is unavailable; retry later")
        case .unroutable: return .init(status: 503, detail: "no queue is bound to the webhook exchange for this routing key; retry later")
        }
    }
}
