import Foundation
import Testing

/// The worker binary links FoundationEssentials only: full Foundation brings
/// FoundationInternationalization and ICU's data (~36 MB of data segment, ~3 MB
/// more resident memory; see README, Benchmark). AsyncHTTPClient and our other
/// dependencies already avoid it, so one `import Foundation` in a worker module
/// is enough to bring it back.
@Suite("Footprint")
struct FootprintTests {
    static let workerModules = ["DariBridge", "DariBridgeApp", "RabbitMQ", "dari-bridge"]

    @Test func workerModulesImportFoundationEssentialsOnly() throws {
        let sources = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        var checked = 0
        for module in Self.workerModules {
            let dir = sources.appendingPathComponent(module)
            let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []
            for name in files where name.hasSuffix(".swift") {
                let lines = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
                    .split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                checked += 1
                for (i, line) in lines.enumerated() {
                    for heavy in ["FoundationInternationalization", "FoundationNetworking", "FoundationXML"] {
                        #expect(!line.contains("import \(heavy)") && !line.contains("import struct \(heavy).")
                                && !line.contains("import class \(heavy)."), "\(module)/\(name):\(i + 1) imports \(heavy)")
                    }
                    let code = line.split(separator: "//", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                    guard code.hasSuffix("import Foundation") || code.contains(" Foundation.") && code.contains("import ") else { continue }
                    // Allowed only as the fallback of `#if canImport(FoundationEssentials)`.
                    let guarded = i >= 3 && lines[i - 1] == "#else" && lines[i - 2].hasSuffix("import FoundationEssentials")
                        && lines[i - 3] == "#if canImport(FoundationEssentials)"
                    #expect(guarded, "\(module)/\(name):\(i + 1) imports full Foundation")
                }
            }
        }
        #expect(checked > 20)
    }

    /// What the module check above cannot see: a dependency that imports full Foundation
    /// (swift-crypto 3.x did; 4.x imports FoundationEssentials) links it into the worker all
    /// the same. The built executable must not need libFoundation or its
    /// internationalization library (their names would be in its dynamic string table).
    @Test func theWorkerExecutableDoesNotLinkFullFoundation() throws {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = ProcessInfo.processInfo.environment["DARI_TEST_BINARY"] ?? root.appendingPathComponent(".build/debug/dari-bridge").path
        let binary = try #require(FileManager.default.contents(atPath: path), "\(path) is missing: run `swift build` first (scripts/test.sh does)")
        #expect(binary.range(of: Data("libFoundationEssentials.so".utf8)) != nil, "the check reads the right table")
        for heavy in ["libFoundation.so", "libFoundationInternationalization.so", "lib_FoundationICU.so"] {
            #expect(binary.range(of: Data(heavy.utf8)) == nil, "\(path) links \(heavy)")
        }
    }
}
