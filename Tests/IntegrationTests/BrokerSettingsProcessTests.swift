import Foundation
import Testing

/// The executable with bad broker settings: exit 2 at once, one line naming
/// the setting, no password in the output.
@Suite struct BrokerSettingsProcessTests {
    @Test(arguments: [
        (["run", "--amqp-url", "amqp://admin:Xy7?9k@host/"], [String: String](), "AMQP_URL"),
        (["run"], ["AMQP_URL": "amqp://admin:1234/Zq9secret@host/"], "AMQP_URL"),
        (["run"], ["AMQP_URL_FILE": "/nonexistent/amqp-url"], "AMQP_URL_FILE"),
        (["run"], ["AMQP_URL": "amqp://h", "AMQP_URL_FILE": "/etc/hostname"], "AMQP_URL_FILE"),
        (["run", "--tls-cert-file", "/etc/hostname"], [:], "DARI_BRIDGE_TLS_KEY_FILE"),
        (["run"], ["DARI_BRIDGE_TLS_CA_FILE": "/nonexistent/ca.pem"], "DARI_BRIDGE_TLS_CA_FILE"),
        (["run"], ["AMQP_URL": "amqps://admin:Xy7pw@h/?cacertfile=/nonexistent/ca.pem"], "cacertfile"),
        (["run"], ["AMQP_URL": "amqps://admin:Xy7pw@h/?frame_max=1"], "frame_max"),
    ])
    func badBrokerSettingExitsAtOnceWithoutThePassword(_ args: [String], _ env: [String: String], _ named: String) async throws {
        let p = try WorkerProcess(arguments: args, environment: env)
        let status = await p.waitForExit(timeout: .seconds(10))
        #expect(status == 2, "\(p.log)")
        #expect(p.log.split(separator: "\n").count == 1, "\(p.log)")
        #expect(p.log.contains(named), "\(p.log)")
        for secret in ["Xy7", "9k", "1234", "Zq9secret"] {
            #expect(!p.log.contains(secret), "\(p.log)")
        }
    }
}
