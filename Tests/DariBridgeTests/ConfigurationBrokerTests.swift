import DariBridgeApp
import Foundation
import RabbitMQ
import Testing

/// AMQP_URL lists, AMQP_URL_FILE and the TLS settings: every bad value is a
/// one-line error naming the setting, and never shows a password.
@Suite("ConfigurationBroker")
struct ConfigurationBrokerTests {
    static let pemCertificate = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
    static let pemKey = "-----BEGIN PRIVATE KEY-----\nMIGHfake\n-----END PRIVATE KEY-----\n"

    /// A temporary folder with files; removed at the end of `body`.
    func withFiles<T>(_ files: [String: String], _ body: (URL) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, content) in files {
            // "binary": bytes that are not UTF-8.
            try (name == "binary" ? Data([0xFF, 0xFE, 0x41]) : Data(content.utf8)).write(to: dir.appendingPathComponent(name))
        }
        return try body(dir)
    }

    func loadError(_ arguments: [String] = [], _ environment: [String: String]) -> ConfigurationError? {
        do {
            _ = try Configuration.load(arguments: arguments, environment: environment)
            return nil
        } catch {
            #expect(!error.message.contains("\n"), "\(error.message.debugDescription)")
            return error
        }
    }

    @Test func aCommaSeparatedListOfURLs() throws {
        let c = try Configuration.load(arguments: [], environment: ["AMQP_URL": "amqp://u:p@node1:5672/%2F, amqp://u:p@node2:5672/%2F ,amqp://u:p@node3"])
        #expect(c.amqpURLs.map(\.host) == ["node1", "node2", "node3"])
        #expect(c.amqpURL == c.amqpURLs[0])
        #expect(Configuration().amqpURLs == [AMQPURL.default])
        let e = try #require(loadError(["--amqp-url", "amqp://a,,amqp://b"], [:]))
        #expect(e.message.contains("AMQP_URL"), "\(e.message)")
    }

    @Test func passwordsNeverAppearInErrors() throws {
        for url in ["amqp://admin:Xy7?9k@host/", "amqp://admin:1234/secret@host/", "amqp://admin:Zq#Wv@host/", "amqp://admin:Qa@Qb@h/", "amqp://admin:Kx%zzQw@h/"] {
            let e = try #require(loadError([], ["AMQP_URL": url]), "\(url) accepted")
            #expect(e.message.contains("AMQP_URL"))
            for secret in ["Xy7", "9k", "1234", "secret", "Zq", "Wv", "Qa", "Qb", "Kx", "Qw", "admin"] {
                #expect(!e.message.contains(secret), "\(e.message)")
            }
        }
    }

    @Test func theURLCanComeFromAFile() throws {
        try withFiles(["url": "  \n amqps://u:Sekr3t%2C@broker.example/prod?heartbeat=4,amqps://u:Sekr3t%2C@b2.example/prod \n\n", "ca.pem": Self.pemCertificate]) { dir in
            let c = try Configuration.load(arguments: [], environment: [
                "AMQP_URL_FILE": dir.appendingPathComponent("url").path,
                "DARI_BRIDGE_TLS_CA_FILE": dir.appendingPathComponent("ca.pem").path,
            ])
            #expect(c.amqpURLs.count == 2)
            #expect(c.amqpURLs[0].password == "Sekr3t,")
            #expect(c.amqpURLs[0].heartbeatSeconds == 4)
            #expect(c.amqpURLs[1].host == "b2.example")
            let flag = try Configuration.load(arguments: ["--amqp-url-file", dir.appendingPathComponent("url").path, "--tls-ca-file", dir.appendingPathComponent("ca.pem").path], environment: [:])
            #expect(flag.amqpURLs == c.amqpURLs)
        }
    }

    @Test func aBadURLFileIsNamedNeverQuoted() throws {
        try withFiles(["bad": "amqp://admin:Xy7?9k@host/\n", "empty": " \n\t", "binary": "\u{FF}"]) { dir in
            let cases: [(String, String)] = [
                ("/nonexistent/url", "/nonexistent/url"),
                (dir.path, "not a regular file"),
                (dir.appendingPathComponent("bad").path, "percent-encode"),
                (dir.appendingPathComponent("empty").path, "is empty"),
                (dir.appendingPathComponent("binary").path, "not UTF-8"),
            ]
            for (path, expected) in cases {
                let e = try #require(loadError([], ["AMQP_URL_FILE": path]), "\(path) accepted")
                #expect(e.message.contains("AMQP_URL_FILE"), "\(e.message)")
                #expect(e.message.contains(expected), "\(e.message)")
                #expect(!e.message.contains("Xy7") && !e.message.contains("9k") && !e.message.contains("admin"), "\(e.message)")
            }
        }
    }

    @Test func urlAndURLFileTogetherIsAnError() throws {
        try withFiles(["url": "amqp://h"]) { dir in
            let file = dir.appendingPathComponent("url").path
            for (args, env) in [([String](), ["AMQP_URL": "amqp://h", "AMQP_URL_FILE": file]),
                                (["--amqp-url", "amqp://h"], ["AMQP_URL_FILE": file]),
                                (["--amqp-url-file", file], ["AMQP_URL": "amqp://h"])] {
                let e = try #require(loadError(args, env))
                #expect(e.message.contains("AMQP_URL_FILE") && e.message.contains("AMQP_URL is set too"), "\(e.message)")
            }
        }
    }

    @Test func tlsFilesAreCheckedAtLoad() throws {
        try withFiles(["ca.pem": Self.pemCertificate, "c.pem": Self.pemCertificate, "k.pem": Self.pemKey,
                       "enc.pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIfake\n-----END ENCRYPTED PRIVATE KEY-----\n",
                       "junk": "hello"]) { dir in
            func p(_ name: String) -> String { dir.appendingPathComponent(name).path }
            let ok = try Configuration.load(arguments: [], environment: [
                "AMQP_URL": "amqps://u:p@h/", "DARI_BRIDGE_TLS_CA_FILE": p("ca.pem"),
                "DARI_BRIDGE_TLS_CERT_FILE": p("c.pem"), "DARI_BRIDGE_TLS_KEY_FILE": p("k.pem"),
            ])
            #expect(ok.tlsOptions == AMQPTLSOptions(caFile: p("ca.pem"), certFile: p("c.pem"), keyFile: p("k.pem")))
            #expect(ok.amqpOptions.tls == ok.tlsOptions)
            let bad: [([String: String], String, String)] = [
                (["DARI_BRIDGE_TLS_CA_FILE": p("missing")], "DARI_BRIDGE_TLS_CA_FILE", "cannot read"),
                (["DARI_BRIDGE_TLS_CA_FILE": p("junk")], "DARI_BRIDGE_TLS_CA_FILE", "no PEM certificate"),
                (["DARI_BRIDGE_TLS_CA_FILE": ""], "DARI_BRIDGE_TLS_CA_FILE", "empty"),
                (["DARI_BRIDGE_TLS_CERT_FILE": p("c.pem")], "DARI_BRIDGE_TLS_KEY_FILE", "DARI_BRIDGE_TLS_CERT_FILE"),
                (["DARI_BRIDGE_TLS_KEY_FILE": p("k.pem")], "DARI_BRIDGE_TLS_CERT_FILE", "DARI_BRIDGE_TLS_KEY_FILE"),
                (["DARI_BRIDGE_TLS_CERT_FILE": p("c.pem"), "DARI_BRIDGE_TLS_KEY_FILE": p("enc.pem")], "DARI_BRIDGE_TLS_KEY_FILE", "encrypted"),
                (["DARI_BRIDGE_TLS_CERT_FILE": p("k.pem"), "DARI_BRIDGE_TLS_KEY_FILE": p("k.pem")], "DARI_BRIDGE_TLS_CERT_FILE", "no PEM certificate"),
                (["AMQP_URL": "amqps://u:Pw9@h/?cacertfile=\(p("missing"))"], "AMQP_URL", "cacertfile"),
                (["AMQP_URL": "amqps://u:Pw9@h/?certfile=\(p("c.pem"))&keyfile=\(p("junk"))"], "AMQP_URL", "keyfile"),
                (["AMQP_URL": "amqps://u:Pw9@h/", "SSL_CERT_FILE": p("missing")], "DARI_BRIDGE_TLS_CA_FILE", "system CA bundle"),
            ]
            for (env, named, says) in bad {
                let e = try #require(loadError([], env), "\(env) accepted")
                #expect(e.message.contains(named), "\(e.message)")
                #expect(e.message.contains(says), "\(e.message)")
                #expect(!e.message.contains("Pw9"), "\(e.message)")
            }
            // No TLS, or no verification: the system bundle is not needed.
            _ = try Configuration.load(arguments: [], environment: ["AMQP_URL": "amqp://h/", "SSL_CERT_FILE": p("missing")])
            let off = try Configuration.load(arguments: [], environment: ["AMQP_URL": "amqps://h/?verify=verify_none", "SSL_CERT_FILE": p("missing")])
            #expect(off.tlsVerificationOff)
            #expect(try !Configuration.load(arguments: [], environment: ["SSL_CERT_FILE": p("ca.pem"), "AMQP_URL": "amqps://h/"]).tlsVerificationOff)
        }
    }

    @Test func urlHeartbeatIsKeptBesideTheSetting() throws {
        let c = try Configuration.load(arguments: ["--heartbeat-s", "30"], environment: ["AMQP_URL": "amqp://h/?heartbeat=3"])
        #expect(c.amqpOptions.heartbeatSeconds == 30)
        #expect(c.amqpURL.heartbeatSeconds == 3)  // AMQPConnection lets the URL's win
    }

    @Test func helpListsTheBrokerSettings() {
        for name in ["AMQP_URL_FILE", "--amqp-url-file", "DARI_BRIDGE_TLS_CA_FILE", "--tls-ca-file", "DARI_BRIDGE_TLS_CERT_FILE",
                     "DARI_BRIDGE_TLS_KEY_FILE", "cacertfile", "server_name_indication"] {
            #expect(Configuration.helpText.contains(name), "\(name)")
        }
    }
}
