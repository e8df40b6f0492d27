import Foundation
import TestSupport

/// Runs one of the project's scripts/ and returns its exit status and output
/// (stdout and stderr together), on SpawnedProcess (posix_spawn + waitpid on that
/// one pid): Foundation's Process.waitUntilExit was seen to hang here after a script
/// left a broker running in the background (see FaultBroker).
enum ProjectScript {
    static func run(_ script: String, _ args: [String], environment overrides: [String: String] = [:]) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in overrides { env[k] = v }
        return try SpawnedProcess.run(["/bin/bash", FaultBroker.root.appendingPathComponent("scripts/\(script)").path] + args, environment: env)
    }
}
