import Glibc

/// TLS settings for an `amqps://` connection. Every field is optional so that
/// two sources can be layered: a URL's query parameters (`cacertfile`,
/// `certfile`, `keyfile`, `verify`) over the process-wide defaults in
/// `AMQPConnection.Options.tls` (see `merged(over:)`).
///
/// What librabbitmq 0.11 does with them (read from its `amqp_openssl.c` and
/// checked against real TLS nodes in the tests):
/// - `amqp_ssl_socket_new` makes one `SSL_CTX` per socket and loads **no** CA
///   certificates (`amqp_ssl_socket_enable_default_verify_paths` only exists
///   from 0.14), so with peer verification on every handshake fails until
///   `amqp_ssl_socket_set_cacert` names a PEM file. `caFile == nil` therefore
///   means the system bundle (`systemCAFile`), loaded explicitly.
/// - The handshake itself never fails on a bad certificate (no
///   `SSL_CTX_set_verify`): the library checks `SSL_get_verify_result` after
///   it, and then the host name, against the host given to
///   `amqp_socket_open`, which it also sends as SNI. Only DNS names of the
///   subjectAltName are compared (the CN only when there is no SAN): a
///   certificate with an IP-address SAN never matches `amqps://10.0.0.5`.
/// - `amqp_ssl_socket_set_key` is `SSL_CTX_use_certificate_chain_file` plus
///   `SSL_CTX_use_PrivateKey_file`: no passphrase callback, so OpenSSL would
///   prompt on the terminal for an encrypted key; we refuse those up front.
package struct AMQPTLSOptions: Sendable, Equatable {
    /// PEM file of the CA certificates that verify the broker; nil = `systemCAFile`.
    package var caFile: String?
    /// PEM client certificate (chain) and its unencrypted PEM key; both or neither.
    package var certFile: String?
    package var keyFile: String?
    /// Verify the broker's certificate chain and host name (nil = yes).
    /// `false` is RabbitMQ's `verify=verify_none`: both checks off.
    package var verifyPeer: Bool?

    package init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
    }

    /// These settings where set, `defaults` elsewhere. A client certificate
    /// and its key go together: a pair given here replaces the default pair.
    package func merged(over defaults: AMQPTLSOptions) -> AMQPTLSOptions {
        var m = defaults
        if let caFile { m.caFile = caFile }
        if certFile != nil || keyFile != nil {
            m.certFile = certFile
            m.keyFile = keyFile
        }
        if let verifyPeer { m.verifyPeer = verifyPeer }
        return m
    }

    package var isEmpty: Bool { self == AMQPTLSOptions() }

    /// The system CA bundle: `$SSL_CERT_FILE` when set (OpenSSL's own
    /// convention), else Debian's `/etc/ssl/certs/ca-certificates.crt`.
    package static func systemCAFile(environment: [String: String]? = nil) -> String {
        let fromEnvironment: String?
        if let environment {
            fromEnvironment = environment["SSL_CERT_FILE"]
        } else {
            fromEnvironment = getenv("SSL_CERT_FILE").map { String(cString: $0) }
        }
        if let file = fromEnvironment, !file.isEmpty { return file }
        return "/etc/ssl/certs/ca-certificates.crt"
    }
}

/// Checks on the PEM files named by TLS settings, at configuration time and
/// again just before librabbitmq loads them (OpenSSL's own errors on a missing
/// or malformed file are only "SSL error").
package enum PEMFile {
    package enum Kind: Sendable {
        case certificates, privateKey
    }

    /// nil when `path` is a readable file that looks like PEM of that kind,
    /// else why not (naming the path, never quoting the content).
    package static func problem(_ path: String, kind: Kind) -> String? {
        if path.isEmpty { return "the file name is empty" }
        if path.utf8.contains(0) { return "the file name contains a NUL byte" }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        guard info.st_mode & 0o170000 == 0o100000 else { return "\(path) is not a regular file" }
        // PEM bundles are small (Debian's is ~220 KB); read at most 4 MiB.
        let limit = 4 << 20
        guard info.st_size <= limit else { return "\(path) is larger than 4 MiB" }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return read(fd, base + got, buffer.count - got)
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return "cannot read \(path): \(String(cString: strerror(errno)))" }
            if n == 0 { break }
            got += n
        }
        let text = String(decoding: bytes[0..<got], as: UTF8.self)
        switch kind {
        case .certificates:
            guard text.contains("-----BEGIN CERTIFICATE-----") else {
                return "\(path) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            }
        case .privateKey:
            guard text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") else {
                return "\(path) holds no PEM private key"
            }
            if text.contains("ENCRYPTED") {
                return "\(path) is an encrypted private key; librabbitmq cannot take a passphrase (decrypt it: openssl pkey -in KEY -out KEY.plain)"
            }
        }
        return nil
    }
}
