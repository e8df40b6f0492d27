import DariBridge
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import RabbitMQ
import Testing
import TestSupport

extension BrokerFaultSuites {
/// The worker over amqps:// against the TLS node of scripts/tls.sh.
@Suite(.serialized) struct TLSWorkerTests {
    static func readyz(_ port: Int) async -> Int? {
        guard let url = URL(string: "http://127.0.0.1:\(port)/readyz") else { return nil }
        guard let (_, response) = try? await URLSession.shared.data(from: url) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    static func waitFor(_ timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    @Test func withAWrongCATheWorkerLogsWhyKeepsRetryingAndIsNotReady() async throws {
        try TLSNodes.start()
        let metricsPort = unusedPort()
        let worker = try WorkerProcess(environment: [
            "AMQP_URL": "amqps://guest:Pw-n0t-shown@localhost:\(TLSNodes.port)/%2F",
            "DARI_BRIDGE_TLS_CA_FILE": TLSNodes.file("other-ca.pem"),
            "DARI_BRIDGE_QUEUE": "tls.wrong-ca.\(UUID().uuidString.prefix(8))",
            "DARI_BRIDGE_HTTP_PORT": "\(metricsPort)",
            "DARI_BRIDGE_HTTP_HOST": "127.0.0.1",
            "DARI_BRIDGE_RECONNECT_INITIAL_MS": "100",
            "DARI_BRIDGE_RECONNECT_MAX_MS": "300",
            "DARI_BRIDGE_LOG_LEVEL": "debug",
        ])
        let retried = await Self.waitFor(.seconds(30)) {
            worker.log.components(separatedBy: "reconnect attempt failed").count > 3
        }
        let ready = await Self.readyz(metricsPort)
        let running = worker.process.isRunning
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(20))
        let log = worker.log
        #expect(retried, "fewer than 3 retries: \(log)")
        #expect(ready == 503, "\(log)")
        #expect(running, "the worker exited: \(log)")
        #expect(status == 0, "\(log)")
        #expect(log.contains("broker connection lost or refused"), "\(log)")
        #expect(log.contains("SSL peer cert verification failed"), "\(log)")
        #expect(log.contains("other-ca.pem"), "\(log)")
        #expect(!log.contains("Pw-n0t-shown"), "the password is in the log")
    }

    @Test func withTheRightCAAMessageGoesEndToEnd() async throws {
        let url = try TLSNodes.url("cacertfile=\(TLSNodes.file("ca.pem"))")
        let h = try await Harness { $0.amqpURLs = [url] }
        h.startWorker()
        try await h.publish(id: "tls-1", variables: #"{"over":"tls"}"#)
        let got = await h.waitForOutcomes(1)
        await h.stop()
        #expect(got.first?.body?.status == "succeeded", "\(got.map(\.text))")
        #expect(h.dari.requests(id: "tls-1").first.map { String(decoding: $0.body, as: UTF8.self) } == #"{"variables":{"over":"tls"}}"#)
    }

    @Test func theExecutableTakesTheCAFromTheEnvironmentAndWarnsOnVerifyNone() async throws {
        let url = try TLSNodes.url("cacertfile=\(TLSNodes.file("ca.pem"))")
        let h = try await Harness { $0.amqpURLs = [url] }
        let worker = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: [
            "AMQP_URL": "amqps://guest:guest@localhost:\(TLSNodes.port)/%2F",
            "DARI_BRIDGE_TLS_CA_FILE": TLSNodes.file("ca.pem"),
        ]))
        try await h.publish(id: "tls-env")
        let got = await h.waitForOutcomes(1)
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(20))
        #expect(got.first?.body?.status == "succeeded", "\(worker.log)")
        #expect(status == 0, "\(worker.log)")
        #expect(!worker.log.contains("verify_none"))

        let insecure = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: [
            "AMQP_URL": "amqps://guest:guest@127.0.0.1:\(TLSNodes.port)/%2F?verify=verify_none",
        ]))
        try await h.publish(id: "tls-verify-none")
        let both = await h.waitForOutcomes(2)
        insecure.signal(SIGTERM)
        let insecureStatus = await insecure.waitForExit(timeout: .seconds(20))
        await h.stop()
        #expect(both.count == 2, "\(insecure.log)")
        #expect(insecureStatus == 0, "\(insecure.log)")
        #expect(insecure.log.contains("TLS peer verification is off (verify_none)"), "\(insecure.log)")
    }
}
}  // extension BrokerFaultSuites
