import Glibc
import WiregateCore

extension SeededGenerator {
    /// The seeds a model test runs: a fixed list, or only `WIREGATE_SEED` from the environment
    /// when set, to replay a failure (`WIREGATE_SEED=<n> swift test --filter <test>`).
    static func seeds(count: Int) -> [UInt64] {
        if let text = getenv("WIREGATE_SEED").map({ String(cString: $0) }), let seed = UInt64(text) { return [seed] }
        return (1...UInt64(count)).map { $0 &* 0x2545_F491_4F6C_DD1D }
    }
}
