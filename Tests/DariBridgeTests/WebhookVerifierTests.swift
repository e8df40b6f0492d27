import Testing
@testable import DariBridge

/// Verification as Dari documents it, case by case, with the exact answer.
@Suite struct WebhookVerifierTests {
    static let secret = "whsec_test"
    static let now: Int64 = 1_700_000_000
    static let body = Array(#"{"variables":{"x":1},"live_url":"https://app.usedari.com/l/1"}"#.utf8)
    /// Computed independently: Python's hmac.new(b"whsec_test", b"1700000000." + body, sha256).hexdigest().
    static let knownSignature = "30322e38e01aa6f38270683cb4c8605c0512e93637ca22507f69b4e018bb1701"

    let verifier = WebhookVerifier(secrets: [secret], tolerance: 300)

    func verify(ts: [String] = ["1700000000"], sig: [String]? = nil, body: [UInt8] = body, now: Int64 = now,
                verifier: WebhookVerifier? = nil) -> Result<VerifiedWebhook, WebhookRejection> {
        (verifier ?? self.verifier).verify(timestamps: ts, signatures: sig ?? [Self.knownSignature], body: body, now: now)
    }

    func rejection(_ r: Result<VerifiedWebhook, WebhookRejection>) -> WebhookRejection? {
        if case .failure(let e) = r { return e }
        return nil
    }

    @Test func signMatchesAnIndependentImplementation() {
        #expect(WebhookSignature.sign(timestamp: "1700000000", body: Self.body, secret: Self.secret) == Self.knownSignature)
    }

    @Test func validSignatureIsAcceptedWithAndWithoutPrefixInAnyCase() throws {
        for sig in [Self.knownSignature, "sha256=" + Self.knownSignature, Self.knownSignature.uppercased(),
                    "SHA256=" + Self.knownSignature.uppercased(), "  sha256=\(Self.knownSignature)\t"] {
            let w = try verify(sig: [sig]).get()
            #expect(w.body == Self.body)
            #expect(w.timestamp == Self.now)
            #expect(w.timestampText == "1700000000")
            #expect(w.routingKey == "webhook.event")
            #expect(w.deliveryId == Self.knownSignature)
        }
    }

    @Test func missingOrMalformedHeaders() {
        #expect(rejection(verify(ts: [])) == .missingTimestamp)
        #expect(rejection(verify(sig: [])) == .missingSignature)
        for bad in ["", "abc", "1700000000.5", "-1700000000", "+1700000000", "1e9", "17000000000000000000000", "１７"] {
            #expect(rejection(verify(ts: [bad])) == .badTimestamp, "\(bad)")
        }
        #expect(rejection(verify(ts: ["1700000000", "1700000000"])) == .badTimestamp)
        for bad in ["", "sha256=", "sha1=" + Self.knownSignature, String(Self.knownSignature.dropLast()), Self.knownSignature + "0",
                    "g" + Self.knownSignature.dropFirst(), "sha256=sha256=" + Self.knownSignature, "v1=" + Self.knownSignature,
                    Self.knownSignature + "," + Self.knownSignature] {
            #expect(rejection(verify(sig: [bad])) == .malformedSignature, "\(bad)")
        }
        #expect(rejection(verify(sig: [Self.knownSignature, Self.knownSignature])) == .malformedSignature)
    }

    @Test func wrongSignatureBodyTimestampOrSecret() {
        var flipped = Array(Self.knownSignature)
        flipped[10] = flipped[10] == "0" ? "1" : "0"
        #expect(rejection(verify(sig: [String(flipped)])) == .badSignature)
        // One byte of the body changed, or white space added: the raw bytes are signed.
        #expect(rejection(verify(body: Self.body.map { $0 == UInt8(ascii: "1") ? UInt8(ascii: "2") : $0 })) == .badSignature)
        #expect(rejection(verify(body: Self.body + [0x20])) == .badSignature)
        // Another timestamp within the tolerance: the signature covers it.
        #expect(rejection(verify(ts: ["1700000001"])) == .badSignature)
        // Leading zeros are another text: signed as written.
        #expect(rejection(verify(ts: ["01700000000"])) == .badSignature)
        #expect(rejection(verify(verifier: WebhookVerifier(secrets: ["other"], tolerance: 300))) == .badSignature)
        #expect(rejection(verify(verifier: WebhookVerifier(secrets: [], tolerance: 300))) == .badSignature)
    }

    @Test func timestampToleranceEitherWay() {
        #expect(rejection(verify(now: Self.now + 300)) == nil)
        #expect(rejection(verify(now: Self.now - 300)) == nil)
        #expect(rejection(verify(now: Self.now + 301)) == .staleTimestamp)
        #expect(rejection(verify(now: Self.now - 301)) == .futureTimestamp)
        // Stale is refused before the signature is looked at.
        #expect(rejection(verify(sig: ["nonsense"], now: Self.now + 10_000)) == .staleTimestamp)
        let strict = WebhookVerifier(secrets: [Self.secret], tolerance: 0)
        #expect(rejection(verify(now: Self.now, verifier: strict)) == nil)
        #expect(rejection(verify(now: Self.now + 1, verifier: strict)) == .staleTimestamp)
    }

    @Test func severalSecretsForRotation() throws {
        let rotated = WebhookVerifier(secrets: ["new-secret", Self.secret], tolerance: 300)
        #expect(rejection(verify(verifier: rotated)) == nil)
        let newSig = WebhookSignature.sign(timestamp: "1700000000", body: Self.body, secret: "new-secret")
        #expect(rejection(verify(sig: [newSig], verifier: rotated)) == nil)
        #expect(rejection(verify(sig: [newSig])) == .badSignature)
    }

    @Test func signedBodyMustBeAJSONObject() {
        for text in ["", "[]", "\"x\"", "1", "null", "{", "{\"a\":1} x", "{\"a\":01}", "{\"a\":\"\u{1}\"}"] {
            let body = Array(text.utf8)
            let sig = WebhookSignature.sign(timestamp: "1700000000", body: body, secret: Self.secret)
            #expect(rejection(verify(sig: [sig], body: body)) == .notJSONObject, "\(text)")
            // Unsigned, the same body is a 401, never a 400.
            #expect(rejection(verify(sig: [String(repeating: "0", count: 64)], body: body)) == .badSignature)
        }
        let invalidUTF8: [UInt8] = Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
        let sig = WebhookSignature.sign(timestamp: "1700000000", body: invalidUTF8, secret: Self.secret)
        #expect(rejection(verify(sig: [sig], body: invalidUTF8)) == .notJSONObject)
    }

    @Test func routingKeyNamesWaitStepsOnly() {
        func key(_ s: String) -> String? { WebhookVerifier.routingKey(for: Array(s.utf8)) }
        #expect(key(#"{"resume_workflow_url":"https://api.usedari.com/public/send-user-signal/1","variables":{}}"#) == "webhook.wait")
        #expect(key(#"{"variables":{"resume_workflow_url":"x"}}"#) == "webhook.event")  // nested: not the step's
        #expect(key(#"{"resume_workflow_url":null}"#) == "webhook.event")
        #expect(key(#"{"resume_workflow_url":""}"#) == "webhook.event")
        #expect(key(#"{"resume_workflow_url":5}"#) == "webhook.event")
        #expect(key(#"{"resume\u005fworkflow_url":"https://x"}"#) == "webhook.wait")  // decoded key
        #expect(key("{}") == "webhook.event")
        #expect(key("[1]") == nil)
    }

    @Test func answersAreExact() {
        func answer(_ r: WebhookRejection) -> String {
            let a = r.response(tolerance: 300, maxBodyBytes: 1_048_576)
            return "\(a.status) " + String(decoding: a.body, as: UTF8.self)
        }
        #expect(answer(.missingSignature) == #"401 {"detail":"missing X-Webhook-Signature"}"#)
        #expect(answer(.badSignature) == #"401 {"detail":"signature does not match"}"#)
        #expect(answer(.staleTimestamp) == #"401 {"detail":"X-Webhook-Timestamp is more than 300 s old"}"#)
        #expect(answer(.notJSONObject) == #"400 {"detail":"body is not a JSON object"}"#)
        #expect(answer(.tooLarge) == #"413 {"detail":"body larger than 1048576 bytes"}"#)
        #expect(answer(.notFound) == #"404 {"detail":"not found"}"#)
        #expect(answer(.methodNotAllowed) == #"405 {"detail":"method not allowed: use POST"}"#)
        #expect(answer(.brokerUnavailable).hasPrefix("503 "))
        #expect(String(decoding: WebhookResponse(status: 1, detail: "a\"b\\c\n").body, as: UTF8.self) == #"{"detail":"a\"b\\c\u000a"}"#)
        // Every reason has its own label and a 4xx/5xx status.
        #expect(Set(WebhookRejection.allCases.map(\.rawValue)).count == WebhookRejection.allCases.count)
        for r in WebhookRejection.allCases { #expect(r.response(tolerance: 1, maxBodyBytes: 1).status >= 400) }
    }

    @Test func hostileInputIsRefusedNeverACrash() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF=sha256 \t,.-+\u{0}\u{FF}é😀".unicodeScalars).map(String.init)
        func text(_ n: Int) -> String { (0..<n).map { _ in alphabet.randomElement(using: &rng)! }.joined() }
        for _ in 0..<5_000 {
            let body = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let ts = Bool.random(using: &rng) ? "1700000000" : text(Int.random(in: 0...20, using: &rng))
            let sig = Bool.random(using: &rng) ? String(repeating: "a", count: 64) : text(Int.random(in: 0...80, using: &rng))
            if case .success = verify(ts: [ts], sig: [sig], body: body) { Issue.record("accepted without the secret: \(ts) \(sig)") }
        }
        // Headers far longer than any real one.
        #expect(rejection(verify(ts: [String(repeating: "9", count: 100_000)])) == .badTimestamp)
        #expect(rejection(verify(sig: [String(repeating: "a", count: 100_000)])) == .malformedSignature)
    }
}
