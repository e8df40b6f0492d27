import CMallocTuning
import DariBridgeApp
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

// Everything lives in DariBridgeApp so the tests can drive it; this file only
// hands over the command line and the exit code.

// One malloc arena instead of glibc's default of 8 per core: the worker's
// threads (event loops, the AMQP thread, the cooperative pool) otherwise each
// keep an arena of freed memory. Measured with scripts/bench.sh: peak RSS at
// concurrency 64 went from 29.1 to 27.2 MB (seven arenas before, in smaps),
// throughput unchanged.
_ = dari_set_malloc_arena_max(1)

let code = await Application.main(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
exit(code)
