import DariBridge

/// The webhook receiver's settings (contract v2, "Webhook receiver").
package struct WebhookSettings: Sendable {
    /// `DARI_BRIDGE_WEBHOOK_PORT`; 0 = the receiver is off.
    package var port = 0
    /// `DARI_BRIDGE_WEBHOOK_HOST`: the address it listens on.
    package var host = "0.0.0.0"
    /// `DARI_BRIDGE_WEBHOOK_SECRET` or `_FILE`: one or more (rotation).
    package var secrets = WebhookSecrets([])
    package var path = "/webhooks/dari"
    package var exchange = "dari.webhooks"
    /// `DARI_BRIDGE_WEBHOOK_TOLERANCE_S`: largest age of the timestamp, either way.
    package var toleranceSeconds = 300
    /// Larger bodies get 413 (the issue's 1 MiB).
    package var maxBodyBytes = 1_048_576
    /// Connections open at once; further ones wait in the listen backlog.
    package var maxConnections = 1_024
    /// A keep-alive connection idle this long is closed.
    package var idleTimeoutSeconds = 60
    /// How long a publish may wait for the broker's confirm before the answer is 503.
    package var confirmTimeoutMs = 5_000
    /// Deliveries remembered for deduplication (within the tolerance).
    package var rememberedDeliveries = 100_000

    package init() {}

    package var isOn: Bool { port != 0 }

    /// The pure verifier for these settings.
    package var verifier: WebhookVerifier {
        WebhookVerifier(secrets: secrets.values, tolerance: toleranceSeconds, maxBodyBytes: maxBodyBytes)
    }
}

/// Webhook signing secrets. Never printed: `description` says how many there are.
package struct WebhookSecrets: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    package var values: [String]
    package init(_ values: [String]) { self.values = values }
    package var isEmpty: Bool { values.isEmpty }
    package var count: Int { values.count }
    package var description: String { "<\(values.count) secret(s), redacted>" }
    package var debugDescription: String { description }

    struct ListProblem: Error {
        var reason: String
    }

    /// A comma (or, in a file, newline) separated list, each item trimmed.
    /// The error names no part of the value.
    static func parse(_ text: String) -> Result<WebhookSecrets, ListProblem> {
        var items: [String] = []
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r\n" }) {
            let item = String(raw).trimmingWhiteSpace
            guard !item.isEmpty else { return .failure(ListProblem(reason: "has an empty secret (item \(items.count + 1))")) }
            items.append(item)
        }
        return .success(WebhookSecrets(items))
    }
}

extension Configuration {
    static let webhookSettings: [Setting] = [
        int("DARI_BRIDGE_WEBHOOK_PORT", "--webhook-port", "port of the webhook receiver (POST DARI_BRIDGE_WEBHOOK_PATH); 0 = off; needs a secret", 0...65535, \.webhook.port),
        string("DARI_BRIDGE_WEBHOOK_HOST", "--webhook-host", "address the webhook receiver listens on", \.webhook.host),
        Setting(env: "DARI_BRIDGE_WEBHOOK_SECRET", flag: "--webhook-secret",
                help: "Dari's webhook signing secret; a comma list accepts each (rotation); never printed", defaultText: "none") { c, v throws(ConfigurationError) in
            switch WebhookSecrets.parse(v) {
            case .success(let s): c.webhook.secrets = s
            case .failure(let problem): throw bad("DARI_BRIDGE_WEBHOOK_SECRET", "--webhook-secret", problem.reason)
            }
        },
        Setting(env: "DARI_BRIDGE_WEBHOOK_SECRET_FILE", flag: "--webhook-secret-file",
                help: "read the webhook secret(s) from this file (white space around each trimmed; one per line or comma-separated); not together with DARI_BRIDGE_WEBHOOK_SECRET",
                defaultText: "none") { c, v throws(ConfigurationError) in
            let path = v.trimmingSpaces
            let text: String
            switch SmallFile.read(path, limit: 65_536) {
            case .success(let t): text = t
            case .failure(let problem): throw bad("DARI_BRIDGE_WEBHOOK_SECRET_FILE", "--webhook-secret-file", problem.reason)
            }
            let trimmed = text.trimmingWhiteSpace
            guard !trimmed.isEmpty else { throw bad("DARI_BRIDGE_WEBHOOK_SECRET_FILE", "--webhook-secret-file", "\(path) is empty") }
            switch WebhookSecrets.parse(trimmed) {
            case .success(let s): c.webhook.secrets = s
            case .failure(let problem): throw bad("DARI_BRIDGE_WEBHOOK_SECRET_FILE", "--webhook-secret-file", "\(path) \(problem.reason)")
            }
        },
        Setting(env: "DARI_BRIDGE_WEBHOOK_PATH", flag: "--webhook-path", help: "path the webhook receiver takes POSTs at", defaultText: "/webhooks/dari") { c, v throws(ConfigurationError) in
            let p = v.trimmingSpaces
            guard p.hasPrefix("/"), p.utf8.count <= 1024,
                  p.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }) else {
                throw bad("DARI_BRIDGE_WEBHOOK_PATH", "--webhook-path", "'\(v.printable)' is not a path starting with / (printable ASCII, no ? or #)")
            }
            c.webhook.path = p
        },
        string("DARI_BRIDGE_WEBHOOK_EXCHANGE", "--webhook-exchange", "topic exchange verified webhooks go to (webhook.wait / webhook.event), declared durable when missing", \.webhook.exchange),
        int("DARI_BRIDGE_WEBHOOK_TOLERANCE_S", "--webhook-tolerance-s", "largest age, either way, of X-Webhook-Timestamp", 0...86_400, \.webhook.toleranceSeconds),
    ]

    /// Both secret sources at once, or the receiver on without a secret.
    func checkWebhookSettings(given: Set<String>) throws(ConfigurationError) {
        if given.contains("DARI_BRIDGE_WEBHOOK_SECRET") && given.contains("DARI_BRIDGE_WEBHOOK_SECRET_FILE") {
            throw Self.bad("DARI_BRIDGE_WEBHOOK_SECRET_FILE", "--webhook-secret-file", "set either it or DARI_BRIDGE_WEBHOOK_SECRET, not both")
        }
        if webhook.isOn && webhook.secrets.isEmpty {
            throw Self.bad("DARI_BRIDGE_WEBHOOK_SECRET", "--webhook-secret",
                      "the webhook receiver (DARI_BRIDGE_WEBHOOK_PORT=\(webhook.port)) needs a secret: set DARI_BRIDGE_WEBHOOK_SECRET or DARI_BRIDGE_WEBHOOK_SECRET_FILE")
        }
        if webhook.isOn && webhook.port == httpPort {
            throw Self.bad("DARI_BRIDGE_WEBHOOK_PORT", "--webhook-port", "must differ from DARI_BRIDGE_HTTP_PORT (\(httpPort))")
        }
    }
}

extension String {
    /// Without white space (spaces, tabs, line ends) around it: a secret file's trailing newline.
    var trimmingWhiteSpace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
