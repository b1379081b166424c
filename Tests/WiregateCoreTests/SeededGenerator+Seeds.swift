import Foundation
import Glibc
import Testing
import WiregateCore

extension SeededGenerator {
    /// The seeds a model test runs: a fixed list, or only `WIREGATE_SEED` from the environment
    /// when set, to replay a failure (`WIREGATE_SEED=<n> swift test --filter <test>`).
    static func seeds(count: Int) -> [UInt64] {
        if let text = getenv("WIREGATE_SEED").map({ String(cString: $0) }), let seed = UInt64(text) { return [seed] }
        return (1...UInt64(count)).map { $0 &* 0x2545_F491_4F6C_DD1D }
    }
}

/// The first broken invariant of one seeded run, described so that it can be replayed.
struct ModelViolation: Error, CustomStringConvertible {
    let description: String
}

/// Checks an invariant inside a model run: the description is built only when it fails, because
/// a run makes hundreds of thousands of checks.
func require(_ holds: Bool, _ what: @autoclosure () -> String) throws(ModelViolation) {
    if !holds { throw ModelViolation(description: what()) }
}

/// Runs `model` for every seed and fails the test with the first few violations, each naming its
/// seed. The loop runs on a thread of its own, not on Swift's cooperative pool: that pool has as
/// many threads as cores (two here) and the in-process gateways of the other suites run on it, so
/// seconds of pure computation there would starve their waits (a7ee350 did, with 4,000
/// parameterised cases). The kernel shares the cores between this thread and the pool instead.
func checkModel(
    _ name: String, seeds: [UInt64],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ model: @escaping @Sendable (UInt64) throws(ModelViolation) -> Void
) async {
    let failures: [String] = await withCheckedContinuation { continuation in
        let thread = Thread {
            // SCHED_IDLE (per thread on Linux, 0 is this one): the models run only when a core
            // has nothing else to do, so they never take time the live tests are waiting for.
            var parameters = sched_param()
            if sched_setscheduler(0, 5 /* SCHED_IDLE, which Glibc does not export */, &parameters) != 0 {
                setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // the next best
            }
            var failures: [String] = []
            for seed in seeds {
                do { try model(seed) } catch { failures.append("seed \(seed): \(error)") }
            }
            continuation.resume(returning: failures)
        }
        thread.name = "model \(name)"
        thread.start()
    }
    // Recorded by hand: an #expect would print the whole list.
    if !failures.isEmpty {
        Issue.record(
            """
            \(failures.count) of \(seeds.count) seeded runs of \(name) broke an invariant; \
            replay one with WIREGATE_SEED=<seed>:
            \(failures.prefix(5).joined(separator: "\n"))
            """, sourceLocation: sourceLocation)
    }
}
