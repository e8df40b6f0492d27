/// A webhook that passed verification, ready to publish.
package struct VerifiedWebhook: Sendable, Equatable {
    /// The body as received, byte for byte.
    package var body: [UInt8]
    /// `X-Webhook-Timestamp` as sent (digits) and its value.
    package var timestampText: String
    package var timestamp: Int64
    /// The signature's bytes (whatever its case or prefix was).
    package var signature: [UInt8]
    /// `webhook.wait` or `webhook.event`.
    package var routingKey: String

    /// Names this delivery: the lower-case hex of its signature (which covers
    /// the timestamp and the body). `x-dari-webhook-id` and the message_id.
    package var deliveryId: String { WebhookSignature.hex(signature) }
    /// The deduplication key: the same timestamp and signature are the same delivery.
    package var key: WebhookDeliveryKey { WebhookDeliveryKey(timestamp: timestamp, signature: signature) }
}

/// Verification as Dari documents it: signature over the raw bytes, timestamp
/// within the tolerance either way, then the body must be a JSON object.
/// Pure: the clock is an argument.
package struct WebhookVerifier: Sendable {
    package var secrets: [[UInt8]]
    /// Largest age of the timestamp, either way, in seconds.
    package var tolerance: Int
    package var maxBodyBytes: Int

    package static let waitRoutingKey = "webhook.wait"
    package static let eventRoutingKey = "webhook.event"

    package init(secrets: [String], tolerance: Int = 300, maxBodyBytes: Int = 1 << 20) {
        self.secrets = secrets.map { Array($0.utf8) }
        self.tolerance = tolerance
        self.maxBodyBytes = maxBodyBytes
    }

    /// Checks one request. `timestamps` and `signatures` are every value of
    /// those headers (more than one is refused: which one would be meant?).
    /// Nothing about the body is looked at before the signature matched.
    package func verify(timestamps: [String], signatures: [String], body: [UInt8], now: Int64) -> Result<VerifiedWebhook, WebhookRejection> {
        guard let timestampHeader = timestamps.first else { return .failure(.missingTimestamp) }
        guard timestamps.count == 1 else { return .failure(.badTimestamp) }
        let timestampBytes = timestampHeader.asciiTrimmedBytes
        guard !timestampBytes.isEmpty, timestampBytes.count <= 15,
              timestampBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let timestamp = Int64(String(decoding: timestampBytes, as: UTF8.self)) else {
            return .failure(.badTimestamp)
        }
        let age = now - timestamp
        if age > Int64(tolerance) { return .failure(.staleTimestamp) }
        if -age > Int64(tolerance) { return .failure(.futureTimestamp) }
        guard let signatureHeader = signatures.first else { return .failure(.missingSignature) }
        guard signatures.count == 1, let signature = WebhookSignature.decode(signatureHeader) else {
            return .failure(.malformedSignature)
        }
        let timestampText = String(decoding: timestampBytes, as: UTF8.self)
        guard WebhookSignature.isValid(signature: signature, timestamp: timestampText, body: body, secrets: secrets) else {
            return .failure(.badSignature)
        }
        guard let routingKey = Self.routingKey(for: body) else { return .failure(.notJSONObject) }
        return .success(VerifiedWebhook(body: body, timestampText: timestampText, timestamp: timestamp,
                                        signature: signature, routingKey: routingKey))
    }

    /// `webhook.wait` when the body is a JSON object with a non-empty string
    /// `resume_workflow_url` (a "webhook and wait" step), `webhook.event` for
    /// any other object; nil when the body is not a JSON object (strict RFC
    /// 8259, valid UTF-8, nesting up to JSONScanner's depth).
    package static func routingKey(for body: [UInt8]) -> String? {
        guard let document = try? JSONScanner.scan(body), document.kind == .object else { return nil }
        for member in document.members where member.key == "resume_workflow_url" && member.kind == .string {
            // An empty string names no step to resume.
            if member.valueRange.count > 2 { return waitRoutingKey }
        }
        return eventRoutingKey
    }
}
