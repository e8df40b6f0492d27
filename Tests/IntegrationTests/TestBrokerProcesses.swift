import Foundation

/// Erlang processes of the test broker (the node scripts/test.sh started),
/// suspended and resumed with `rabbitmqctl eval` to make the broker stop
/// delivering to a consumer without telling the client: the connection's
/// reader and heartbeat processes go on, so the client sees a healthy
/// connection that receives nothing.
enum TestBrokerProcesses {
    /// rabbitmqctl against the test broker (RABBIT_DIR, when set, names its
    /// state folder, where the Erlang cookie is).
    static func ctl(_ args: [String]) throws -> String {
        let url = try Harness.brokerURL
        let env = ProcessInfo.processInfo.environment
        let r = try ProjectScript.run("rabbitmq.sh", ["ctl", "-q"] + args, environment: [
            "RABBIT_PORT": "\(url.port)",
            "RABBIT_NODE": env["RABBIT_NODE"] ?? env["DARI_TEST_RABBIT_NODE"] ?? "daribridge-test@localhost",
        ])
        guard r.status == 0 else { throw HarnessError("rabbitmqctl \(args.joined(separator: " ")): \(r.output)") }
        return r.output
    }

    /// When the suspended channel resumes by itself.
    enum AutoResume {
        /// 0.5 s after the client's `basic.cancel` arrived in its mailbox (well
        /// within the 2 s the client waits for the answer): the channel then
        /// delivers what it held, answers the cancel, and the consumer ends cleanly.
        case onCancel
        /// Never before the safety bound: the client's cancel times out.
        case never
    }

    /// Suspends (`sys:suspend`) the channel process of every consumer on
    /// `queue` (vhost /) and returns their pids (local form, `<0.N.0>`). Each is
    /// resumed by the broker itself after `safetyBound` at the latest, so a test
    /// that dies cannot leave it suspended; call `resume` anyway.
    static func suspendConsumerChannels(queue: String, autoResume: AutoResume, safetyBound: Duration = .seconds(90)) throws -> [String] {
        let escaped = queue.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let rounds = Int(safetyBound.components.seconds) * 100  // one every 10 ms
        let onCancel = autoResume == .onCancel ? "true" : "false"
        let expr = """
        Q = <<"\(escaped)">>,
        Pids = [proplists:get_value(channel_pid, C) || C <- rabbit_amqqueue:consumers_all(<<"/">>), element(4, proplists:get_value(queue_name, C)) =:= Q],
        [sys:suspend(P) || P <- Pids],
        Watch = fun W(P, 0) -> catch sys:resume(P);
                    W(P, N) ->
                        case erlang:process_info(P, messages) of
                            undefined -> ok;
                            {messages, Ms} ->
                                Cancel = \(onCancel) andalso string:find(lists:flatten(io_lib:format("~w", [Ms])), "basic.cancel") =/= nomatch,
                                case Cancel of
                                    true -> timer:sleep(500), catch sys:resume(P);
                                    false -> timer:sleep(10), W(P, N - 1)
                                end
                        end
                end,
        [spawn(fun() -> Watch(P, \(rounds)) end) || P <- Pids],
        [pid_to_list(P) || P <- Pids].
        """
        let out = try ctl(["eval", expr])
        return out.matches(of: /<\d+\.\d+\.\d+>/).map { String($0.output) }
    }

    /// Suspends the process of the classic queue `queue` (vhost /) and returns
    /// its pid; resumed by the broker itself after `safetyBound` at the latest.
    static func suspendQueue(_ queue: String, safetyBound: Duration = .seconds(90)) throws -> [String] {
        let escaped = queue.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let expr = """
        {ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"\(escaped)">>)),
        P = amqqueue:get_pid(Q),
        sys:suspend(P),
        spawn(fun() -> timer:sleep(\(Int(safetyBound.components.seconds) * 1000)), catch sys:resume(P) end),
        [pid_to_list(P)].
        """
        let out = try ctl(["eval", expr])
        return out.matches(of: /<\d+\.\d+\.\d+>/).map { String($0.output) }
    }

    /// Resumes suspended processes; one already resumed or gone is fine.
    static func resume(_ pids: [String]) {
        guard !pids.isEmpty else { return }
        let list = pids.map { "\"\($0)\"" }.joined(separator: ",")
        _ = try? ctl(["eval", "[catch sys:resume(list_to_pid(P)) || P <- [\(list)]], ok."])
    }

    /// Whether the process is suspended (its `sys` status says so).
    static func isSuspended(_ pid: String) -> Bool {
        let out = (try? ctl(["eval", "case catch sys:get_status(list_to_pid(\"\(pid)\"), 100) of {status, _, _, [_, S | _]} -> S; _ -> gone end."])) ?? ""
        return out.contains("suspended")
    }
}
