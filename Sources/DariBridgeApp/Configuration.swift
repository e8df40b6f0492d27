import DariBridge
import Logging
import RabbitMQ

/// Every setting of the worker, with the contract's defaults. Built from the
/// environment and `--flags` (a flag wins) by `Configuration.load`, or
/// directly by tests.
package struct Configuration: Sendable {
    /// `AMQP_URL`: one URL or a comma-separated list (the nodes of a cluster).
    package var amqpURLs = [AMQPURL.default]
    /// `DARI_BRIDGE_TLS_CA_FILE`; nil = the system bundle (`AMQPTLSOptions.systemCAFile`).
    package var tlsCAFile: String? = nil
    /// `DARI_BRIDGE_TLS_CERT_FILE` / `DARI_BRIDGE_TLS_KEY_FILE`: both or neither.
    package var tlsCertFile: String? = nil
    package var tlsKeyFile: String? = nil
    package var queue = "dari.resume.requests"
    /// The type a missing input queue (and the delay queues) is declared with.
    package var queueType = QueueType.quorum
    package var maxDeliveries = 5
    /// `basic.qos` prefetch; nil: the concurrency.
    package var prefetch: Int? = nil
    /// Queue-name prefixes a reply_to may name; nil: any.
    package var allowedReplyTo: [String]? = nil
    package var resultsExchange = "dari.resume.results"
    package var allowedHosts = ["api.usedari.com"]
    package var allowedPathPrefixes = ["/public/send-user-signal/", "/send-user-signal/"]
    package var allowInsecureHTTP = false
    package var allowPrivateAddresses = false
    package var concurrency = 64
    package var maxAttempts = 6
    package var initialBackoffMs = 500
    package var maxBackoffMs = 30_000
    package var maxRetryAfterMs = 60_000
    package var requestTimeoutMs = 30_000
    package var httpPort = 9464
    package var httpHost = "0.0.0.0"
    package var drainTimeoutMs = 25_000
    package var maxInMemoryWaitMs = 30_000
    package var maxHoldMs = 600_000
    package var maxMessageBytes = 1_048_576
    package var heartbeatSeconds = 10
    package var reconnectInitialMs = 500
    package var reconnectMaxMs = 30_000
    /// The consumer watchdog: how often it looks, and how long messages may wait
    /// with room under the prefetch and no delivery before the consumer counts
    /// as stalled (0 = no watchdog).
    package var stallCheckIntervalMs = 5_000
    package var stallTimeoutMs = 30_000
    package var logLevel = Logger.Level.info
    /// `DARI_BRIDGE_LOG_FORMAT`: plain lines (swift-log's stream handler) or one JSON object per line.
    package var logFormat = LogFormat.text
    /// The webhook receiver (Configuration+Webhook.swift).
    package var webhook = WebhookSettings()

    package init() {}

    package enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    package enum QueueType: String, Sendable, CaseIterable {
        case quorum, classic
    }

    /// The prefetch in force: DARI_BRIDGE_PREFETCH, else 1.5 x the concurrency.
    /// With prefetch = concurrency every finished message first waits for the
    /// broker to send the next one (~1.5 ms per cycle here); a surplus of half
    /// the concurrency has it at hand. Measured at Dari 100 ms (README,
    /// Benchmark): 64 -> 0.972 of the ideal at 64, 0.980 at 96; 256 -> 0.953 at
    /// 256, 0.975 at 320 and 384 (run start included).
    package var effectivePrefetch: Int { prefetch ?? Self.defaultPrefetch(concurrency: concurrency) }

    package static func defaultPrefetch(concurrency: Int) -> Int {
        min(65535, concurrency + (concurrency + 1) / 2)
    }

    /// The pipeline's settings for this configuration.
    package var pipelineSettings: PipelineSettings {
        PipelineSettings(resultsExchange: resultsExchange, maxMessageBytes: maxMessageBytes, urlPolicy: urlPolicy,
                         concurrency: concurrency, maxDeliveries: maxDeliveries, allowedReplyTo: allowedReplyTo)
    }

    package var urlPolicy: URLPolicy {
        URLPolicy(allowedHosts: allowedHosts, allowedPathPrefixes: allowedPathPrefixes, allowInsecureHTTP: allowInsecureHTTP,
                  allowPrivateAddresses: allowPrivateAddresses)
    }

    /// The executor for these settings, on `transport`.
    package func executor(transport: any DariTransport) -> ResumeExecutor {
        var e = ResumeExecutor(transport: transport, policy: retryPolicy, requestTimeout: .milliseconds(requestTimeoutMs))
        e.maxInMemoryWait = .milliseconds(maxInMemoryWaitMs)
        e.maxHold = .milliseconds(maxHoldMs)
        return e
    }

    package var retryPolicy: RetryPolicy {
        RetryPolicy(maxAttempts: maxAttempts, initialBackoff: .milliseconds(initialBackoffMs),
                    maxBackoff: .milliseconds(maxBackoffMs), maxRetryAfter: .milliseconds(maxRetryAfterMs))
    }
}

package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// One setting: its environment name, its flag, its help and how to apply a value.
/// The table of them (`Configuration.settings`) is the only place where settings
/// are named: the environment, the flags, `--help` and the completion scripts
/// all come from it.
struct Setting: Sendable {
    let env: String
    let flag: String
    let help: String
    let defaultText: String
    /// A boolean: the flag alone means `true` (`--allow-insecure-http`), a value may follow.
    var isSwitch = false
    /// What shell completion offers for the value: its choices, or file names.
    var completion = ValueCompletion.none
    let apply: @Sendable (inout Configuration, String) throws(ConfigurationError) -> Void

    /// The flag without its dashes: the option's key for the argument parser.
    var name: String { String(flag.drop(while: { $0 == "-" })) }

    enum ValueCompletion: Sendable {
        case none, file
        case choices([String])
    }
}

extension Configuration {
    /// Every setting. Another file adds its settings by joining its own array
    /// here (for example `+ webhookSettings` from Configuration+Webhook.swift).
    static let settings: [Setting] = coreSettings

    static let coreSettings: [Setting] = [
        Setting(env: "AMQP_URL", flag: "--amqp-url",
                help: "broker URL, or a comma-separated list of them (cluster nodes); amqps:// = TLS; query parameters heartbeat, connection_timeout, cacertfile, certfile, keyfile, verify, server_name_indication",
                defaultText: "amqp://guest:guest@127.0.0.1:5672/%2F") { c, v throws(ConfigurationError) in
            do { c.amqpURLs = try AMQPURL.parseList(v) } catch { throw bad("AMQP_URL", "--amqp-url", "\(error)") }
        },
        amqpURLFile,
        path("DARI_BRIDGE_TLS_CA_FILE", "--tls-ca-file", "PEM CA certificates for amqps:// (a URL's cacertfile wins)",
             "the system CA bundle ($SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt)", \.tlsCAFile),
        path("DARI_BRIDGE_TLS_CERT_FILE", "--tls-cert-file", "PEM client certificate for amqps://, with DARI_BRIDGE_TLS_KEY_FILE (a URL's certfile wins)", "none", \.tlsCertFile),
        path("DARI_BRIDGE_TLS_KEY_FILE", "--tls-key-file", "unencrypted PEM key of DARI_BRIDGE_TLS_CERT_FILE (a URL's keyfile wins)", "none", \.tlsKeyFile),
        string("DARI_BRIDGE_QUEUE", "--queue", "input queue, declared durable", \.queue),
        Setting(env: "DARI_BRIDGE_QUEUE_TYPE", flag: "--queue-type", help: "type a missing input queue (and the delay queues) is declared with: quorum or classic; an existing queue is used as it is", defaultText: "quorum",
                completion: .choices(QueueType.allCases.map(\.rawValue))) { c, v throws(ConfigurationError) in
            guard let t = QueueType(rawValue: v.trimmingSpaces.lowercased()) else {
                throw bad("DARI_BRIDGE_QUEUE_TYPE", "--queue-type", "'\(v.printable)' is not quorum or classic")
            }
            c.queueType = t
        },
        int("DARI_BRIDGE_MAX_DELIVERIES", "--max-deliveries", "a delivery whose x-delivery-count reached this gets delivery_limit, no POST", 1...1_000_000, \.maxDeliveries),
        Setting(env: "DARI_BRIDGE_PREFETCH", flag: "--prefetch", help: "basic.qos prefetch, at least the concurrency; the surplus waits in memory", defaultText: "1.5 x concurrency") { c, v throws(ConfigurationError) in
            guard let n = Int(v.trimmingSpaces), (1...65535).contains(n) else {
                throw bad("DARI_BRIDGE_PREFETCH", "--prefetch", "'\(v.printable)' is not a whole number from 1 to 65535")
            }
            c.prefetch = n
        },
        Setting(env: "DARI_BRIDGE_ALLOWED_REPLY_TO", flag: "--allowed-reply-to", help: "comma list of queue-name prefixes a reply_to may name; others get no copy", defaultText: "(any)") { c, v throws(ConfigurationError) in
            let items = v.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            guard !items.isEmpty else { throw bad("DARI_BRIDGE_ALLOWED_REPLY_TO", "--allowed-reply-to", "must list at least one prefix") }
            c.allowedReplyTo = items
        },
        string("DARI_BRIDGE_RESULTS_EXCHANGE", "--results-exchange", "topic exchange for outcomes, declared durable", \.resultsExchange),
        list("DARI_BRIDGE_ALLOWED_HOSTS", "--allowed-hosts", "comma list of host or host:port a resume URL may target", \.allowedHosts),
        list("DARI_BRIDGE_ALLOWED_PATH_PREFIXES", "--allowed-path-prefixes", "comma list of path prefixes a resume URL may have", \.allowedPathPrefixes),
        bool("DARI_BRIDGE_ALLOW_INSECURE_HTTP", "--allow-insecure-http", "allow http:// (only to allowed hosts)", \.allowInsecureHTTP),
        bool("DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES", "--allow-private-addresses", "allow an allowed host name to connect to a loopback/private/link-local address", \.allowPrivateAddresses),
        int("DARI_BRIDGE_CONCURRENCY", "--concurrency", "deliveries in flight (= basic.qos prefetch)", 1...65535, \.concurrency),
        int("DARI_BRIDGE_MAX_ATTEMPTS", "--max-attempts", "HTTP attempts per message, first included", 1...100, \.maxAttempts),
        int("DARI_BRIDGE_INITIAL_BACKOFF_MS", "--initial-backoff-ms", "first retry delay (exponential, full jitter)", 1...3_600_000, \.initialBackoffMs),
        int("DARI_BRIDGE_MAX_BACKOFF_MS", "--max-backoff-ms", "cap of one retry delay", 1...3_600_000, \.maxBackoffMs),
        int("DARI_BRIDGE_MAX_RETRY_AFTER_MS", "--max-retry-after-ms", "cap of a server's Retry-After", 0...3_600_000, \.maxRetryAfterMs),
        int("DARI_BRIDGE_REQUEST_TIMEOUT_MS", "--request-timeout-ms", "timeout of one HTTP attempt", 1...3_600_000, \.requestTimeoutMs),
        int("DARI_BRIDGE_HTTP_PORT", "--http-port", "port of /metrics, /healthz, /readyz; 0 = off", 0...65535, \.httpPort),
        string("DARI_BRIDGE_HTTP_HOST", "--http-host", "address the /metrics server listens on", \.httpHost),
        int("DARI_BRIDGE_DRAIN_TIMEOUT_MS", "--drain-timeout-ms", "on SIGTERM, how long in-flight messages may finish", 0...3_600_000, \.drainTimeoutMs),
        int("DARI_BRIDGE_MAX_IN_MEMORY_WAIT_MS", "--max-in-memory-wait-ms", "a longer retry wait moves the message to a delay queue", 0...1_500_000, \.maxInMemoryWaitMs),
        int("DARI_BRIDGE_MAX_HOLD_MS", "--max-hold-ms", "longest a delivery is held unacked before a wait moves it to a delay queue", 1_000...1_500_000, \.maxHoldMs),
        int("DARI_BRIDGE_MAX_MESSAGE_BYTES", "--max-message-bytes", "larger input messages get invalid_message", 64...134_217_728, \.maxMessageBytes),
        int("DARI_BRIDGE_HEARTBEAT_S", "--heartbeat-s", "AMQP heartbeat in seconds; 0 = off", 0...600, \.heartbeatSeconds),
        int("DARI_BRIDGE_RECONNECT_INITIAL_MS", "--reconnect-initial-ms", "first delay before reconnecting to the broker", 1...3_600_000, \.reconnectInitialMs),
        int("DARI_BRIDGE_RECONNECT_MAX_MS", "--reconnect-max-ms", "cap of the reconnect delay", 1...3_600_000, \.reconnectMaxMs),
        int("DARI_BRIDGE_STALL_CHECK_INTERVAL_MS", "--stall-check-interval-ms", "how often the consumer watchdog looks for messages waiting while nothing is delivered", 100...3_600_000, \.stallCheckIntervalMs),
        int("DARI_BRIDGE_STALL_TIMEOUT_MS", "--stall-timeout-ms", "messages ready, room under the prefetch and no delivery for this long: /readyz 503, consume again; 0 = off", 0...86_400_000, \.stallTimeoutMs),
        Setting(env: "DARI_BRIDGE_LOG_LEVEL", flag: "--log-level", help: "trace, debug, info, notice, warning, error, critical", defaultText: "info",
                completion: .choices(Logger.Level.allCases.map(\.rawValue))) { c, v throws(ConfigurationError) in
            guard let level = Logger.Level(rawValue: v.lowercased()) else {
                throw bad("DARI_BRIDGE_LOG_LEVEL", "--log-level", "'\(v.printable)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        },
        Setting(env: "DARI_BRIDGE_LOG_FORMAT", flag: "--log-format", help: "text, or json: one JSON object per line on stderr", defaultText: "text",
                completion: .choices(LogFormat.allCases.map(\.rawValue))) { c, v throws(ConfigurationError) in
            guard let format = LogFormat(rawValue: v.trimmingSpaces.lowercased()) else {
                throw bad("DARI_BRIDGE_LOG_FORMAT", "--log-format", "'\(v.printable)' is not text or json")
            }
            c.logFormat = format
        },
    ] + webhookSettings

    static func bad(_ env: String, _ flag: String, _ reason: String) -> ConfigurationError {
        ConfigurationError(message: "invalid \(env) (\(flag)): \(reason)")
    }

    static func string(_ env: String, _ flag: String, _ help: String, _ key: WritableKeyPath<Configuration, String> & Sendable) -> Setting {
        Setting(env: env, flag: flag, help: help, defaultText: Configuration()[keyPath: key]) { c, v throws(ConfigurationError) in
            let trimmed = v.trimmingSpaces
            guard !trimmed.isEmpty else { throw bad(env, flag, "must not be empty") }
            c[keyPath: key] = trimmed
        }
    }

    static func list(_ env: String, _ flag: String, _ help: String, _ key: WritableKeyPath<Configuration, [String]> & Sendable) -> Setting {
        Setting(env: env, flag: flag, help: help, defaultText: Configuration()[keyPath: key].joined(separator: ",")) { c, v throws(ConfigurationError) in
            let items = v.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            guard !items.isEmpty else { throw bad(env, flag, "must list at least one entry") }
            c[keyPath: key] = items
        }
    }

    static func int(_ env: String, _ flag: String, _ help: String, _ range: ClosedRange<Int>, _ key: WritableKeyPath<Configuration, Int> & Sendable) -> Setting {
        Setting(env: env, flag: flag, help: help, defaultText: "\(Configuration()[keyPath: key])") { c, v throws(ConfigurationError) in
            guard let n = Int(v.trimmingSpaces), range.contains(n) else {
                throw bad(env, flag, "'\(v.printable)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            c[keyPath: key] = n
        }
    }

    static func bool(_ env: String, _ flag: String, _ help: String, _ key: WritableKeyPath<Configuration, Bool> & Sendable) -> Setting {
        Setting(env: env, flag: flag, help: help, defaultText: "\(Configuration()[keyPath: key])", isSwitch: true, completion: .choices(["true", "false"])) { c, v throws(ConfigurationError) in
            switch v.trimmingSpaces.lowercased() {
            case "true", "1", "yes", "on": c[keyPath: key] = true
            case "false", "0", "no", "off": c[keyPath: key] = false
            default: throw bad(env, flag, "'\(v.printable)' is not true or false")
            }
        }
    }

    /// Reads the environment, then the flags (`--name value` or `--name=value`;
    /// a boolean flag alone means true), parsed by the argument parser from the
    /// table. Unknown flags, unknown `DARI_BRIDGE_*` variables and bad values
    /// throw a one-line error that names the setting.
    package static func load(arguments: [String], environment: [String: String]) throws(ConfigurationError) -> Configuration {
        try load(flags: SettingOptions.parseSettings(arguments).values, environment: environment)
    }

    /// The one place where the environment and the flags meet: `flags` are the
    /// values given on the command line by environment name (a flag wins).
    static func load(flags: [String: String], environment: [String: String]) throws(ConfigurationError) -> Configuration {
        try checkForUnknownVariables(environment)
        var config = Configuration()
        var given: Set<String> = []
        // The environment first, so that a bad value there is reported even when a flag overrides it.
        for source in [environment, flags] {
            for setting in settings {
                if let value = source[setting.env] {
                    given.insert(setting.env)
                    try setting.apply(&config, value)
                }
            }
        }
        try config.checkBrokerSettings(given: given, environment: environment)
        try config.checkWebhookSettings(given: given)
        if config.maxBackoffMs < config.initialBackoffMs {
            throw bad("DARI_BRIDGE_MAX_BACKOFF_MS", "--max-backoff-ms", "must be at least DARI_BRIDGE_INITIAL_BACKOFF_MS (\(config.initialBackoffMs))")
        }
        if let prefetch = config.prefetch, prefetch < config.concurrency {
            throw bad("DARI_BRIDGE_PREFETCH", "--prefetch", "must be at least DARI_BRIDGE_CONCURRENCY (\(config.concurrency))")
        }
        if config.reconnectMaxMs < config.reconnectInitialMs {
            throw bad("DARI_BRIDGE_RECONNECT_MAX_MS", "--reconnect-max-ms", "must be at least DARI_BRIDGE_RECONNECT_INITIAL_MS (\(config.reconnectInitialMs))")
        }
        return config
    }

    /// The settings part of `--help`, generated by the argument parser from the table.
    package static var helpText: String {
        SettingOptions.helpMessage(columns: 100)
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }

    /// The value as it may appear in a one-line error: control characters escaped, length capped.
    var printable: String {
        let escaped = unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
        return escaped.count > 100 ? String(escaped.prefix(100)) + "..." : escaped
    }

    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
