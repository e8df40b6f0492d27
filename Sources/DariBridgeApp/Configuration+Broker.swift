#if canImport(Glibc)
import Glibc
#endif
import RabbitMQ

/// The broker settings: the URL list (`AMQP_URL` or `AMQP_URL_FILE`) and the
/// TLS files, checked when the configuration is loaded so that a missing file
/// is a one-line configuration error rather than an endless reconnect loop.
extension Configuration {
    /// The first broker URL (the whole list is `amqpURLs`); setting it replaces the list.
    package var amqpURL: AMQPURL {
        get { amqpURLs.first ?? .default }
        set { amqpURLs = [newValue] }
    }

    /// `DARI_BRIDGE_TLS_*`; a URL's own `cacertfile`/`certfile`/`keyfile`/`verify` win.
    package var tlsOptions: AMQPTLSOptions {
        AMQPTLSOptions(caFile: tlsCAFile, certFile: tlsCertFile, keyFile: tlsKeyFile)
    }

    /// Connection options for these settings (heartbeat, TLS defaults).
    package var amqpOptions: AMQPConnection.Options {
        var options = AMQPConnection.Options()
        options.heartbeatSeconds = Int32(clamping: heartbeatSeconds)
        options.tls = tlsOptions
        return options
    }

    /// Whether some `amqps://` URL has `verify=verify_none` (the worker warns at start-up).
    package var tlsVerificationOff: Bool {
        amqpURLs.contains { $0.tls && $0.tlsOptions.verifyPeer == false }
    }

    static let amqpURLFile = Setting(env: "AMQP_URL_FILE", flag: "--amqp-url-file",
                                     help: "read AMQP_URL from this file (a mounted secret; white space around it trimmed); not together with AMQP_URL",
                                     defaultText: "none", completion: .file) { c, v throws(ConfigurationError) in
        let path = v.trimmingSpaces
        let text: String
        switch SmallFile.read(path, limit: 65_536) {
        case .success(let t): text = t
        case .failure(let problem): throw bad("AMQP_URL_FILE", "--amqp-url-file", problem.reason)
        }
        let trimmed = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        guard !trimmed.isEmpty else { throw bad("AMQP_URL_FILE", "--amqp-url-file", "\(path) is empty") }
        do { c.amqpURLs = try AMQPURL.parseList(trimmed) } catch {
            throw bad("AMQP_URL_FILE", "--amqp-url-file", "the URL in \(path) \(error)")
        }
    }

    static func path(_ env: String, _ flag: String, _ help: String, _ defaultText: String, _ key: WritableKeyPath<Configuration, String?> & Sendable) -> Setting {
        Setting(env: env, flag: flag, help: help, defaultText: defaultText, completion: .file) { c, v throws(ConfigurationError) in
            let trimmed = v.trimmingSpaces
            guard !trimmed.isEmpty else { throw bad(env, flag, "must not be empty") }
            c[keyPath: key] = trimmed
        }
    }

    /// Both URL sources at once, half a client certificate, unreadable files.
    func checkBrokerSettings(given: Set<String>, environment: [String: String]) throws(ConfigurationError) {
        if given.contains("AMQP_URL") && given.contains("AMQP_URL_FILE") {
            throw Self.bad("AMQP_URL_FILE", "--amqp-url-file", "AMQP_URL is set too: set one of AMQP_URL and AMQP_URL_FILE")
        }
        if tlsCertFile != nil && tlsKeyFile == nil {
            throw Self.bad("DARI_BRIDGE_TLS_KEY_FILE", "--tls-key-file", "must be set with DARI_BRIDGE_TLS_CERT_FILE")
        }
        if tlsKeyFile != nil && tlsCertFile == nil {
            throw Self.bad("DARI_BRIDGE_TLS_CERT_FILE", "--tls-cert-file", "must be set with DARI_BRIDGE_TLS_KEY_FILE")
        }
        let files: [(String, String, String?, PEMFile.Kind)] = [
            ("DARI_BRIDGE_TLS_CA_FILE", "--tls-ca-file", tlsCAFile, .certificates),
            ("DARI_BRIDGE_TLS_CERT_FILE", "--tls-cert-file", tlsCertFile, .certificates),
            ("DARI_BRIDGE_TLS_KEY_FILE", "--tls-key-file", tlsKeyFile, .privateKey),
        ]
        for (env, flag, file, kind) in files {
            if let file, let problem = PEMFile.problem(file, kind: kind) { throw Self.bad(env, flag, problem) }
        }
        let (urlEnv, urlFlag) = given.contains("AMQP_URL_FILE") ? ("AMQP_URL_FILE", "--amqp-url-file") : ("AMQP_URL", "--amqp-url")
        for url in amqpURLs where url.tls {
            let own: [(String, String?, PEMFile.Kind)] = [
                ("cacertfile", url.tlsOptions.caFile, .certificates),
                ("certfile", url.tlsOptions.certFile, .certificates),
                ("keyfile", url.tlsOptions.keyFile, .privateKey),
            ]
            for (name, file, kind) in own {
                if let file, let problem = PEMFile.problem(file, kind: kind) { throw Self.bad(urlEnv, urlFlag, "\(name): \(problem)") }
            }
            let effective = url.tlsOptions.merged(over: tlsOptions)
            if effective.verifyPeer != false && effective.caFile == nil {
                let system = AMQPTLSOptions.systemCAFile(environment: environment)
                if let problem = PEMFile.problem(system, kind: .certificates) {
                    throw Self.bad("DARI_BRIDGE_TLS_CA_FILE", "--tls-ca-file",
                                   "not set, and the system CA bundle is unusable: \(problem) (install ca-certificates, or name a CA file)")
                }
            }
        }
    }
}

/// A small text file read whole (a secret, a URL): regular files only, at most
/// `limit` bytes, UTF-8. Failures name the path, never the content.
enum SmallFile {
    struct Problem: Error {
        var reason: String
    }

    static func read(_ path: String, limit: Int) -> Result<String, Problem> {
        guard !path.isEmpty else { return .failure(Problem(reason: "the file name is empty")) }
        guard !path.utf8.contains(0) else { return .failure(Problem(reason: "the file name contains a NUL byte")) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(Problem(reason: "cannot read \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & 0o170000 == 0o100000 else {
            return .failure(Problem(reason: "\(path) is not a regular file"))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Glibc.read(fd, base, buffer.count)
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(Problem(reason: "cannot read \(path): \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > limit { return .failure(Problem(reason: "\(path) is larger than \(limit) bytes")) }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(Problem(reason: "\(path) is not UTF-8 text"))
        }
        return .success(text)
    }
}
