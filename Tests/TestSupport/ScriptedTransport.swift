import Synchronization
import Testing
import DariBridge

/// A `DariTransport` that plays a script: each POST takes the next step; the
/// last step repeats once the script is used up. Records every call.
package final class ScriptedTransport: DariTransport {
    package enum Step: Sendable {
        case respond(DariResponse)
        case fail(String)
    }

    package struct Call: Sendable {
        package var url: String
        package var body: [UInt8]
        package var traceHeaders: TraceHeaders
        package var traceparent: String? { traceHeaders["traceparent"] }
        package var timeout: Duration
    }

    private struct State {
        var steps: [Step]
        var calls: [Call] = []
    }

    private let state: Mutex<State>

    package init(_ steps: [Step]) {
        state = Mutex(State(steps: steps))
    }

    package convenience init(statuses: [Int]) {
        self.init(statuses.map { .respond(DariResponse(status: $0, body: Array(#"{"ok":true}"#.utf8))) })
    }

    package func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        let step: Step? = state.withLock { s in
            s.calls.append(Call(url: url, body: body, traceHeaders: traceHeaders, timeout: timeout))
            if s.steps.count > 1 { return s.steps.removeFirst() }
            return s.steps.first
        }
        switch step {
        case .respond(let response)?: return response
        case .fail(let reason)?: throw DariTransportError(reason: reason)
        case nil:
            Issue.record("ScriptedTransport has no script")
            throw DariTransportError(reason: "no script")
        }
    }

    package var calls: [Call] { state.withLock { $0.calls } }
}
