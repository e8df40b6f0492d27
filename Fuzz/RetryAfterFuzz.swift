// libFuzzer target: the Retry-After parser (scripts/fuzz.sh builds it with
// Sources/DariBridge/{RetryPolicy,ASCIITrim}.swift). Properties: no crash; never a negative
// wait; the delay computed from any parsed value stays within the policy's cap.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

private let nows = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_796_000_000), Date(timeIntervalSince1970: -2_000_000_000),
                    Date(timeIntervalSince1970: 253_402_300_799)]
private let policy = RetryPolicy(maxAttempts: 6, initialBackoff: .milliseconds(500), maxBackoff: .seconds(30),
                                 maxRetryAfter: .seconds(60))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRetryAfter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for now in nows {
        guard let wait = RetryAfter.parse(text, now: now) else { continue }
        if wait < .zero { fatalError("negative Retry-After from \(text.debugDescription)") }
        let delay = policy.delay(afterAttempt: 1, retryAfter: wait, randomUnit: { 0.5 })
        if delay < .zero || delay > .seconds(60) { fatalError("delay \(delay) outside the cap for \(text.debugDescription)") }
    }
    return 0
}
