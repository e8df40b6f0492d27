import DariBridgeApp
import Foundation

// Everything lives in DariBridgeApp so the tests can drive it; this file only
// hands over the command line and the exit code.
let code = await Application.main(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
exit(code)
