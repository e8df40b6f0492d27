import DariBridge
import DariBridgeApp
import Logging
import Testing

private func load(_ arguments: [String] = [], _ environment: [String: String] = [:]) throws(ConfigurationError) -> Configuration {
    try Configuration.load(arguments: arguments, environment: environment)
}

private func loadError(_ arguments: [String] = [], _ environment: [String: String] = [:]) -> ConfigurationError? {
    do {
        _ = try load(arguments, environment)
        return nil
    } catch {
        return error
    }
}

private let allEnvironmentVariables = [
    "AMQP_URL", "DARI_BRIDGE_QUEUE", "DARI_BRIDGE_RESULTS_EXCHANGE", "DARI_BRIDGE_ALLOWED_HOSTS",
    "DARI_BRIDGE_ALLOWED_PATH_PREFIXES", "DARI_BRIDGE_ALLOW_INSECURE_HTTP", "DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES",
    "DARI_BRIDGE_CONCURRENCY", "DARI_BRIDGE_MAX_ATTEMPTS", "DARI_BRIDGE_INITIAL_BACKOFF_MS", "DARI_BRIDGE_MAX_BACKOFF_MS",
    "DARI_BRIDGE_MAX_RETRY_AFTER_MS", "DARI_BRIDGE_REQUEST_TIMEOUT_MS", "DARI_BRIDGE_HTTP_PORT", "DARI_BRIDGE_HTTP_HOST",
    "DARI_BRIDGE_DRAIN_TIMEOUT_MS", "DARI_BRIDGE_MAX_MESSAGE_BYTES", "DARI_BRIDGE_HEARTBEAT_S",
    "DARI_BRIDGE_RECONNECT_INITIAL_MS", "DARI_BRIDGE_RECONNECT_MAX_MS", "DARI_BRIDGE_LOG_LEVEL",
]

@Suite("Configuration")
struct ConfigurationTests {
    @Test func defaultsMatchTheContract() throws {
        let c = try load()
        #expect(c.amqpURL.host == "127.0.0.1")
        #expect(c.amqpURL.port == 5672)
        #expect(c.amqpURL.user == "guest")
        #expect(c.amqpURL.password == "guest")
        #expect(c.amqpURL.vhost == "/")
        #expect(!c.amqpURL.tls)
        #expect(c.queue == "dari.resume.requests")
        #expect(c.resultsExchange == "dari.resume.results")
        #expect(c.allowedHosts == ["api.usedari.com"])
        #expect(c.allowedPathPrefixes == ["/public/send-user-signal/", "/send-user-signal/"])
        #expect(c.allowInsecureHTTP == false)
        #expect(c.allowPrivateAddresses == false)
        #expect(c.urlPolicy.allowPrivateAddresses == false)
        #expect(c.concurrency == 64)
        #expect(c.maxAttempts == 6)
        #expect(c.initialBackoffMs == 500)
        #expect(c.maxBackoffMs == 30_000)
        #expect(c.maxRetryAfterMs == 60_000)
        #expect(c.requestTimeoutMs == 30_000)
        #expect(c.httpPort == 9464)
        #expect(c.drainTimeoutMs == 25_000)
        #expect(c.maxMessageBytes == 1_048_576)
        #expect(c.logLevel == .info)
        #expect(c.retryPolicy == RetryPolicy(maxAttempts: 6, initialBackoff: .milliseconds(500), maxBackoff: .seconds(30),
                                             maxRetryAfter: .seconds(60)))
        #expect(c.urlPolicy.allowedHosts == URLPolicy.defaultAllowedHosts)
        #expect(c.urlPolicy.allowedPathPrefixes == URLPolicy.defaultAllowedPathPrefixes)
        #expect(c.urlPolicy.allowInsecureHTTP == false)
        // Configuration() (used directly by tests and the app) has the same defaults.
        let plain = Configuration()
        #expect(plain.amqpURL == c.amqpURL)
        #expect(plain.concurrency == c.concurrency)
    }

    @Test func environmentIsRead() throws {
        let c = try load([], [
            "AMQP_URL": "amqps://u:p@broker.example:5671/prod",
            "DARI_BRIDGE_QUEUE": "q1",
            "DARI_BRIDGE_RESULTS_EXCHANGE": "x1",
            "DARI_BRIDGE_ALLOWED_HOSTS": " a.example , b.example:8443 ,",
            "DARI_BRIDGE_ALLOWED_PATH_PREFIXES": "/p/",
            "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "yes",
            "DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES": "on",
            "DARI_BRIDGE_CONCURRENCY": "8",
            "DARI_BRIDGE_MAX_ATTEMPTS": "3",
            "DARI_BRIDGE_INITIAL_BACKOFF_MS": "100",
            "DARI_BRIDGE_MAX_BACKOFF_MS": "1000",
            "DARI_BRIDGE_MAX_RETRY_AFTER_MS": "0",
            "DARI_BRIDGE_REQUEST_TIMEOUT_MS": "2500",
            "DARI_BRIDGE_HTTP_PORT": "0",
            "DARI_BRIDGE_HTTP_HOST": "127.0.0.1",
            "DARI_BRIDGE_DRAIN_TIMEOUT_MS": "1",
            "DARI_BRIDGE_MAX_MESSAGE_BYTES": "4096",
            "DARI_BRIDGE_HEARTBEAT_S": "0",
            "DARI_BRIDGE_RECONNECT_INITIAL_MS": "10",
            "DARI_BRIDGE_RECONNECT_MAX_MS": "20",
            "DARI_BRIDGE_LOG_LEVEL": "DEBUG",
        ])
        #expect(c.amqpURL.tls)
        #expect(c.amqpURL.host == "broker.example")
        #expect(c.amqpURL.port == 5671)
        #expect(c.amqpURL.vhost == "prod")
        #expect(c.queue == "q1")
        #expect(c.resultsExchange == "x1")
        #expect(c.allowedHosts == ["a.example", "b.example:8443"])
        #expect(c.allowedPathPrefixes == ["/p/"])
        #expect(c.allowInsecureHTTP)
        #expect(c.allowPrivateAddresses)
        #expect(c.urlPolicy.allowPrivateAddresses)
        #expect(c.concurrency == 8)
        #expect(c.maxAttempts == 3)
        #expect(c.initialBackoffMs == 100)
        #expect(c.maxBackoffMs == 1000)
        #expect(c.maxRetryAfterMs == 0)
        #expect(c.requestTimeoutMs == 2500)
        #expect(c.httpPort == 0)
        #expect(c.httpHost == "127.0.0.1")
        #expect(c.drainTimeoutMs == 1)
        #expect(c.maxMessageBytes == 4096)
        #expect(c.heartbeatSeconds == 0)
        #expect(c.reconnectInitialMs == 10)
        #expect(c.reconnectMaxMs == 20)
        #expect(c.logLevel == .debug)
    }

    @Test func flagBeatsEnvironment() throws {
        let env = ["DARI_BRIDGE_CONCURRENCY": "10", "DARI_BRIDGE_QUEUE": "from-env", "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true"]
        let c = try load(["--concurrency", "20", "--queue=from-flag", "--allow-insecure-http=false"], env)
        #expect(c.concurrency == 20)
        #expect(c.queue == "from-flag")
        #expect(c.allowInsecureHTTP == false)
        // An environment value the flag overrides is still validated (it is read first).
        #expect(try load(["--concurrency", "5"], ["DARI_BRIDGE_MAX_ATTEMPTS": "2"]).maxAttempts == 2)
    }

    @Test func equalsFormAndSeparateValueForm() throws {
        let a = try load(["--max-attempts=4", "--amqp-url=amqp://x:y@h:1234/v", "--allowed-hosts=a.example,b.example"])
        #expect(a.maxAttempts == 4)
        #expect(a.amqpURL.host == "h")
        #expect(a.amqpURL.port == 1234)
        #expect(a.allowedHosts == ["a.example", "b.example"])
        let b = try load(["--max-attempts", "4", "--amqp-url", "amqp://x:y@h:1234/v"])
        #expect(b.maxAttempts == a.maxAttempts)
        #expect(b.amqpURL == a.amqpURL)
        // Only the first "=" separates: the value may contain more.
        #expect(try load(["--queue=a=b"]).queue == "a=b")
    }

    @Test func booleanFlagAloneMeansTrue() throws {
        #expect(try load(["--allow-insecure-http"]).allowInsecureHTTP)
        let c = try load(["--allow-insecure-http", "--concurrency", "3"])
        #expect(c.allowInsecureHTTP)
        #expect(c.concurrency == 3)
        #expect(try load(["--allow-insecure-http", "false"]).allowInsecureHTTP == false)
        #expect(try load(["--allow-insecure-http=off"]).allowInsecureHTTP == false)
        #expect(try load(["--allow-insecure-http", "1"]).allowInsecureHTTP)
    }

    static let badInputs: [(arguments: [String], environment: [String: String], names: String)] = [
        ([], ["DARI_BRIDGE_CONCURRENCY": "0"], "DARI_BRIDGE_CONCURRENCY"),
        ([], ["DARI_BRIDGE_CONCURRENCY": "abc"], "DARI_BRIDGE_CONCURRENCY"),
        ([], ["DARI_BRIDGE_CONCURRENCY": "70000"], "DARI_BRIDGE_CONCURRENCY"),
        ([], ["DARI_BRIDGE_CONCURRENCY": ""], "DARI_BRIDGE_CONCURRENCY"),
        (["--concurrency", "0"], [:], "DARI_BRIDGE_CONCURRENCY"),
        (["--concurrency=-1"], [:], "DARI_BRIDGE_CONCURRENCY"),
        ([], ["AMQP_URL": "http://broker.example/"], "AMQP_URL"),
        (["--amqp-url", "not a url"], [:], "AMQP_URL"),
        ([], ["DARI_BRIDGE_ALLOW_INSECURE_HTTP": "maybe"], "DARI_BRIDGE_ALLOW_INSECURE_HTTP"),
        (["--allow-insecure-http=maybe"], [:], "DARI_BRIDGE_ALLOW_INSECURE_HTTP"),
        (["--nope"], [:], "--nope"),
        (["--nope=1"], [:], "--nope"),
        (["positional"], [:], "positional"),
        (["--concurrency"], [:], "DARI_BRIDGE_CONCURRENCY"),
        (["--queue"], [:], "DARI_BRIDGE_QUEUE"),
        ([], ["DARI_BRIDGE_INITIAL_BACKOFF_MS": "2000", "DARI_BRIDGE_MAX_BACKOFF_MS": "1000"], "DARI_BRIDGE_MAX_BACKOFF_MS"),
        (["--reconnect-initial-ms", "50", "--reconnect-max-ms", "10"], [:], "DARI_BRIDGE_RECONNECT_MAX_MS"),
        ([], ["DARI_BRIDGE_LOG_LEVEL": "loud"], "DARI_BRIDGE_LOG_LEVEL"),
        ([], ["DARI_BRIDGE_QUEUE": "  "], "DARI_BRIDGE_QUEUE"),
        ([], ["DARI_BRIDGE_ALLOWED_HOSTS": " , ,"], "DARI_BRIDGE_ALLOWED_HOSTS"),
        ([], ["DARI_BRIDGE_MAX_ATTEMPTS": "101"], "DARI_BRIDGE_MAX_ATTEMPTS"),
        ([], ["DARI_BRIDGE_HTTP_PORT": "65536"], "DARI_BRIDGE_HTTP_PORT"),
        ([], ["DARI_BRIDGE_MAX_MESSAGE_BYTES": "63"], "DARI_BRIDGE_MAX_MESSAGE_BYTES"),
        ([], ["DARI_BRIDGE_REQUEST_TIMEOUT_MS": "1.5"], "DARI_BRIDGE_REQUEST_TIMEOUT_MS"),
    ]

    @Test(arguments: badInputs)
    func badValueNamesTheSettingOnOneLine(_ input: (arguments: [String], environment: [String: String], names: String)) throws {
        let error = try #require(loadError(input.arguments, input.environment), "accepted \(input)")
        #expect(error.message.contains(input.names), "\(error.message)")
        #expect(!error.message.contains("\n") && !error.message.contains("\r"), "\(error.message.debugDescription)")
        #expect(!error.message.isEmpty)
        #expect(error.description == error.message)
    }

    @Test func badValueWithAControlCharacterStillGivesOneLine() throws {
        // The offending value is echoed verbatim, so a value with a newline splits the message.
        let error = try #require(loadError([], ["DARI_BRIDGE_CONCURRENCY": "6\n4"]))
        #expect(error.message.contains("DARI_BRIDGE_CONCURRENCY"))
        #expect(!error.message.contains("\n"), "\(error.message.debugDescription)")
    }

    @Test func valuesAreTrimmedOfSpaces() throws {
        let c = try load([], ["DARI_BRIDGE_CONCURRENCY": " 12\t", "DARI_BRIDGE_ALLOW_INSECURE_HTTP": " TRUE "])
        #expect(c.concurrency == 12)
        #expect(c.allowInsecureHTTP)
    }

    @Test func helpTextListsEveryEnvironmentVariable() {
        let help = Configuration.helpText
        for name in allEnvironmentVariables {
            #expect(help.contains(name), "help does not mention \(name)")
        }
        for flag in ["--amqp-url", "--concurrency", "--allow-insecure-http", "--log-level", "--drain-timeout-ms"] {
            #expect(help.contains(flag), "help does not mention \(flag)")
        }
        #expect(help.contains("amqp://guest:guest@127.0.0.1:5672/%2F"))
    }
}
