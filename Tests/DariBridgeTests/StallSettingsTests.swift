import DariBridgeApp
import Testing

/// The consumer watchdog's settings: defaults, environment and flag, 0 = off, bad values.
@Suite struct StallSettingsTests {
    @Test func defaults() throws {
        let c = try Configuration.load(arguments: [], environment: [:])
        #expect(c.stallCheckIntervalMs == 5_000)
        #expect(c.stallTimeoutMs == 30_000)
    }

    @Test func fromTheEnvironmentAndFlagsTheFlagWinning() throws {
        let c = try Configuration.load(arguments: ["--stall-timeout-ms", "0"],
                                       environment: ["DARI_BRIDGE_STALL_CHECK_INTERVAL_MS": "250", "DARI_BRIDGE_STALL_TIMEOUT_MS": "9000"])
        #expect(c.stallCheckIntervalMs == 250)
        #expect(c.stallTimeoutMs == 0)
    }

    @Test(arguments: [
        ("DARI_BRIDGE_STALL_CHECK_INTERVAL_MS", "0"), ("DARI_BRIDGE_STALL_CHECK_INTERVAL_MS", "99"),
        ("DARI_BRIDGE_STALL_CHECK_INTERVAL_MS", "fast"), ("DARI_BRIDGE_STALL_TIMEOUT_MS", "-1"),
        ("DARI_BRIDGE_STALL_TIMEOUT_MS", "86400001"), ("DARI_BRIDGE_STALL_TIMEOUT_MS", "1e3"),
    ])
    func badValuesAreOneLineErrorsNamingTheSetting(name: String, value: String) {
        do {
            _ = try Configuration.load(arguments: [], environment: [name: value])
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.message.hasPrefix("invalid \(name) "))
            #expect(!error.message.contains("\n"))
        }
    }
}
