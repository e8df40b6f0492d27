import DariBridgeApp
import DariBridge
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestSupport
import Testing

/// A test CA and a server certificate for `DNS:localhost` only, made with openssl in a
/// temporary directory (once per process).
private enum TestCertificates {
    static let directory: Result<String, any Error> = Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dari-client-tls-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = """
            [req]
            distinguished_name = dn
            [dn]
            [ca]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            [leaf]
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:localhost

            """
        try config.write(toFile: dir + "/req.cnf", atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"],
            ["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2", "-config", "req.cnf",
             "-extensions", "ca", "-subj", "/CN=dari-bridge client test CA"],
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "server.key"],
            ["req", "-new", "-key", "server.key", "-out", "server.csr", "-config", "req.cnf", "-subj", "/CN=dari-bridge client test server"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x1234",
             "-days", "2", "-extfile", "req.cnf", "-extensions", "leaf", "-out", "server.pem"],
        ]
        for step in steps {
            let r = try SpawnedProcess.run(["/bin/sh", "-c", "cd '\(dir)' && exec openssl \"$@\"", "openssl"] + step, environment: ["PATH": "/usr/bin:/bin"])
            guard r.status == 0 else { throw TestError("openssl \(step[0]) failed: \(r.output)") }
        }
        return dir
    }

    struct TestError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}

/// An HTTPS server on 127.0.0.1 with the test certificate, answering every request with
/// `200 {"tls":true}` and counting the requests.
private final class TLSServer: Sendable {
    let channel: any Channel
    let requests = NIOLockedCounter()
    var port: Int { channel.localAddress!.port! }

    init(certificates dir: String) async throws {
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(dir + "/server.pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: dir + "/server.key", format: .pem)))
        config.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: config)
        let requests = self.requests
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async { try? await channel.close() }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let requests: NIOLockedCounter
        init(requests: NIOLockedCounter) { self.requests = requests }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            requests.increment()
            let body = ByteBuffer(string: #"{"tls":true}"#)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

final class NIOLockedCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func increment() { value.withLockedValue { $0 += 1 } }
    var count: Int { value.withLockedValue { $0 } }
}

/// https to Dari: the certificate is verified against the trust roots and the host name
/// (SNI), an IP literal against the certificate's IP addresses; a failed verification is a
/// transport error and no request byte reaches the server.
@Suite("DariClient over TLS")
struct DariClientTLSTests {
    private func client(trusting dir: String?, hosts: [String]) throws -> DariClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let dir { tls.trustRoots = .file(dir + "/ca.pem") }
        return DariClient(concurrency: 2, policy: URLPolicy(allowedHosts: hosts, allowedPathPrefixes: ["/"], allowInsecureHTTP: false,
                                                            allowPrivateAddresses: true),
                          connectTimeout: .seconds(30), tlsConfiguration: tls)
    }

    @Test func httpsWithATrustedCertificateForTheHostName() async throws {
        let dir = try TestCertificates.directory.get()
        let server = try await TLSServer(certificates: dir)
        let client = try client(trusting: dir, hosts: ["localhost:\(server.port)"])
        for _ in 0..<3 {
            let response = try await client.post(url: "https://localhost:\(server.port)/public/send-user-signal/t", body: Array("{}".utf8),
                                                 traceHeaders: [:], timeout: .seconds(60))
            #expect(response.status == 200)
            #expect(response.body == Array(#"{"tls":true}"#.utf8))
        }
        #expect(server.requests.count == 3)
        try await client.shutdown()
        await server.stop()
    }

    @Test func aCertificateNotForTheAddressIsRefused() async throws {
        // The certificate names DNS:localhost only; 127.0.0.1 is not in it.
        let dir = try TestCertificates.directory.get()
        let server = try await TLSServer(certificates: dir)
        let client = try client(trusting: dir, hosts: ["127.0.0.1:\(server.port)"])
        let error = await #expect(throws: DariTransportError.self) {
            _ = try await client.post(url: "https://127.0.0.1:\(server.port)/r/x", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
        }
        #expect(error?.reason.hasPrefix("TLS failed") == true, "\(String(describing: error))")
        #expect(server.requests.count == 0)
        try await client.shutdown()
        await server.stop()
    }

    @Test func anUntrustedCertificateIsRefused() async throws {
        let dir = try TestCertificates.directory.get()
        let server = try await TLSServer(certificates: dir)
        let client = try client(trusting: nil, hosts: ["localhost:\(server.port)"])  // the system roots only
        let error = await #expect(throws: DariTransportError.self) {
            _ = try await client.post(url: "https://localhost:\(server.port)/r/x", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
        }
        #expect(error?.reason.hasPrefix("TLS failed") == true, "\(String(describing: error))")
        #expect(server.requests.count == 0)
        try await client.shutdown()
        await server.stop()
    }
}
