import Foundation
import WiregateCore

/// One fault of the campaign: applied, held for its duration, healed, before the next begins
/// (episodes do not overlap, so that what each may cost is known; see `Ledger.Excuse`).
enum Fault: Sendable, CustomStringConvertible {
    /// The broker stopped cleanly (SIGTERM: it saves its sessions) and started again.
    case brokerTerminated(down: Duration)
    /// The broker killed (SIGKILL): what it held in memory since its last autosave is gone.
    case brokerKilled(down: Duration)
    /// The broker frozen (SIGSTOP), then thawed: the silent outage, no RST.
    case brokerFrozen(for: Duration)
    /// `systemctl stop` (SIGTERM), then a start.
    case gatewayTerminated(down: Duration)
    /// A crash or the OOM killer (SIGKILL), then a start.
    case gatewayKilled(down: Duration)
    /// The backend answers these steps (see deploy/django/testproject/faults.py), then normally.
    case backendAnswers([String])
    /// The backend gone (connections refused): the internet is down.
    case backendDown(for: Duration)
    /// The state directory's file system full.
    case diskFull(for: Duration)
    /// The gateway killed, pages of its journal overwritten, the gateway started again.
    case journalCorrupted(pages: Int)
    /// A board unplugged, and plugged back in.
    case boardUnplugged(board: Int, for: Duration)

    var description: String {
        switch self {
        case .brokerTerminated(let down): "broker SIGTERM, down \(down.seconds)"
        case .brokerKilled(let down): "broker SIGKILL, down \(down.seconds)"
        case .brokerFrozen(let duration): "broker SIGSTOP for \(duration.seconds)"
        case .gatewayTerminated(let down): "gateway SIGTERM, down \(down.seconds)"
        case .gatewayKilled(let down): "gateway SIGKILL, down \(down.seconds)"
        case .backendAnswers(let plan): "backend answers \(plan.joined(separator: ","))"
        case .backendDown(let duration): "backend down for \(duration.seconds)"
        case .diskFull(let duration): "state directory full for \(duration.seconds)"
        case .journalCorrupted(let pages): "gateway SIGKILL, \(pages) journal pages overwritten"
        case .boardUnplugged(let board, let duration): "board b\(board) unplugged for \(duration.seconds)"
        }
    }
}

/// When each fault comes: a pause (the gateway at work, replaying what the last fault held
/// back: a fault right after another lands mid-replay), then the fault.
struct FaultSchedule: Sendable, CustomStringConvertible {
    struct Step: Sendable {
        var pause: Duration
        var fault: Fault
    }

    let steps: [Step]

    /// The schedule of `seed` for a campaign of `duration` over `boards` boards. Pure: the same
    /// seed gives the same schedule, so a failing run can be replayed.
    /// - Parameter diskFull: whether the state directory can be filled (a tmpfs of its own).
    init(seed: UInt64, duration: Duration, boards: Int, diskFull: Bool) {
        var random = SeededGenerator(seed: seed)
        func seconds(_ range: ClosedRange<Int>) -> Duration {
            .milliseconds(Int.random(in: range.lowerBound * 1000...range.upperBound * 1000, using: &random))
        }
        var steps: [Step] = []
        var elapsed = Duration.zero
        while elapsed < duration {
            // Short pauses often: a fault during the replay of the one before.
            let pause = Int.random(in: 0..<3, using: &random) == 0 ? seconds(0...1) : seconds(1...5)
            let fault: Fault
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<12: fault = .brokerTerminated(down: seconds(1...6))
            case 12..<22: fault = .brokerKilled(down: seconds(1...4))
            case 22..<30: fault = .brokerFrozen(for: seconds(2...8))
            case 30..<44: fault = .gatewayTerminated(down: seconds(0...3))
            case 44..<58: fault = .gatewayKilled(down: seconds(0...3))
            case 58..<70:
                let steps = [
                    ["500", "503", "500"], ["401", "401"], ["302"], ["login"], ["hang:3"], ["429:1", "500"], ["403"]
                ]
                fault = .backendAnswers(steps.randomElement(using: &random)!)
            case 70..<78: fault = .backendDown(for: seconds(2...8))
            case 78..<86:
                // The same draws either way, so that a seed gives the same schedule with or without the tmpfs.
                let duration = seconds(2...6)
                fault = diskFull ? .diskFull(for: duration) : .backendDown(for: duration)
            case 86..<90: fault = .journalCorrupted(pages: Int.random(in: 1...4, using: &random))
            default: fault = .boardUnplugged(board: Int.random(in: 0..<boards, using: &random), for: seconds(1...4))
            }
            steps.append(Step(pause: pause, fault: fault))
            elapsed += pause + fault.length + .seconds(1)
        }
        self.steps = steps
    }

    var description: String {
        steps.enumerated().map { "  \($0.offset + 1). after \($0.element.pause.seconds): \($0.element.fault)" }.joined(
            separator: "\n")
    }
}

extension Fault {
    /// About how long the fault holds (for planning the schedule).
    var length: Duration {
        switch self {
        case .brokerTerminated(let duration), .brokerKilled(let duration), .brokerFrozen(let duration),
            .gatewayTerminated(let duration), .gatewayKilled(let duration), .backendDown(let duration),
            .diskFull(let duration), .boardUnplugged(_, let duration):
            duration
        case .backendAnswers: .seconds(3)
        case .journalCorrupted: .seconds(1)
        }
    }
}

extension Duration {
    /// "2.35 s".
    var seconds: String {
        let (whole, attoseconds) = components
        return "\(whole).\(String(format: "%02d", Int(attoseconds / 10_000_000_000_000_000))) s"
    }
}
