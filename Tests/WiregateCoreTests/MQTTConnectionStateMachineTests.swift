import Testing

@testable import WiregateCore

@Suite struct MQTTConnectionStateMachineTests {
    typealias Machine = MQTTConnectionStateMachine
    let t0 = ContinuousClock.now

    func machine(_ version: Machine.Version = .v5) -> Machine {
        Machine(
            version: version, connectTimeout: .seconds(10), backoff: Backoff(initial: .seconds(1), maximum: .seconds(8))
        )
    }

    /// The delay of the only `.wait` among `actions`, nil without one.
    func delay(_ actions: [Machine.Action]) -> Duration? {
        let waits = actions.compactMap { action -> Duration? in if case .wait(let d) = action { d } else { nil } }
        return waits.count == 1 ? waits[0] : nil
    }

    @Test func startConnectsWithTheConfiguredVersion() {
        var m = machine(.v311)
        #expect(m.handle(.start) == [.connect(.v311)])
        #expect(m.state == .connecting)
    }

    @Test func anAcceptedCONNACKOpensTheGateAndReportsConnected() {
        var m = machine()
        _ = m.handle(.start)
        #expect(m.handle(.connectCallSucceeded(now: t0)).isEmpty)
        #expect(m.state == .awaitingCONNACK(deadline: t0 + .seconds(10)))
        #expect(
            m.handle(.connackAccepted(version: .v5, receiveMaximum: 20)) == [
                .openGate, .report(.connected(version: .v5, receiveMaximum: 20))
            ])
        #expect(m.state == .connected)
        #expect(m.handle(.tick(now: t0 + .seconds(60))).isEmpty, "no CONNACK deadline once connected")
    }

    @Test func aFailedConnectCallIsReportedAndRetriedAfterAGrowingBackoff() {
        var m = machine()
        var rng = SeededGenerator(seed: 1)
        _ = m.handle(.start, using: &rng)
        var ceilings: [Duration] = []
        for _ in 0..<6 {
            let actions = m.handle(.connectCallFailed(reason: "cannot reach h:1: connection refused"), using: &rng)
            #expect(actions.first == .report(.connectFailed(reason: "cannot reach h:1: connection refused")))
            let wait = delay(actions)
            #expect(wait != nil)
            ceilings.append(wait ?? .zero)
            #expect(m.state == .backingOff)
            #expect(m.handle(.backoffElapsed, using: &rng) == [.connect(.v5)])
        }
        // Drawn from [d/2, d] with d = 1, 2, 4, 8, 8, 8 s.
        for (delay, ceiling) in zip(ceilings, [1, 2, 4, 8, 8, 8] as [Int64]) {
            #expect(delay <= .seconds(ceiling) && delay >= .seconds(ceiling) / 2, "\(ceilings)")
        }
    }

    @Test func noCONNACKByTheDeadlineIsAFailureThatDropsTheSocket() {
        var m = machine()
        _ = m.handle(.start)
        _ = m.handle(.connectCallSucceeded(now: t0))
        #expect(m.handle(.tick(now: t0 + .seconds(10))).isEmpty, "the deadline itself is still in time")
        let actions = m.handle(.tick(now: t0 + .seconds(11)))
        #expect(
            Array(actions.prefix(2)) == [
                .disconnect, .report(.connectFailed(reason: "no CONNACK within 10.0 seconds (is the broker hung?)"))
            ])
        #expect(delay(actions) != nil)
        #expect(m.state == .backingOff)
    }

    @Test func aBrokerRefusingMQTT5IsTriedAgainAtOnceIn311ForGood() {
        var m = machine()
        _ = m.handle(.start)
        _ = m.handle(.connectCallSucceeded(now: t0))
        #expect(
            m.handle(.ended(.protocolRefused))
                == [
                    .closeGate, .disconnect,
                    .report(.connectFailed(reason: "the broker refused MQTT 5; falling back to 3.1.1")), .connect(.v311)
                ])
        #expect(m.version == .v311)
        _ = m.handle(.connectCallSucceeded(now: t0))
        _ = m.handle(.connackAccepted(version: .v311, receiveMaximum: 256))
        _ = m.handle(.ended(.failed(reason: "connection lost")))
        #expect(m.handle(.backoffElapsed) == [.connect(.v311)], "3.1.1 after a loss too")
    }

    @Test func a311BrokerRefusingTheProtocolBacksOff() {
        var m = machine(.v311)
        _ = m.handle(.start)
        _ = m.handle(.connectCallSucceeded(now: t0))
        let actions = m.handle(.ended(.protocolRefused))
        #expect(
            Array(actions.prefix(3)) == [
                .closeGate, .disconnect, .report(.connectFailed(reason: "the broker refused the protocol version"))
            ])
        #expect(delay(actions) != nil)
    }

    /// An end before CONNACK is a failure and the backoff keeps growing; after one, a loss,
    /// and the next wait starts from `initial` again.
    @Test func lossesResetTheBackoffFailuresDoNot() {
        var m = machine()
        var rng = SeededGenerator(seed: 3)
        _ = m.handle(.start, using: &rng)
        for _ in 0..<3 {
            _ = m.handle(.connectCallSucceeded(now: t0), using: &rng)
            let actions = m.handle(
                .ended(.failed(reason: "the broker refused the connection: not authorised")), using: &rng)
            #expect(
                actions.contains(.report(.connectFailed(reason: "the broker refused the connection: not authorised"))))
            _ = m.handle(.backoffElapsed, using: &rng)
        }
        _ = m.handle(.connectCallSucceeded(now: t0), using: &rng)
        let grown = delay(m.handle(.ended(.failed(reason: "x")), using: &rng)) ?? .zero
        #expect(grown >= .seconds(4))
        _ = m.handle(.backoffElapsed, using: &rng)
        _ = m.handle(.connectCallSucceeded(now: t0), using: &rng)
        _ = m.handle(.connackAccepted(version: .v5, receiveMaximum: 20), using: &rng)
        let actions = m.handle(.ended(.failed(reason: "connection lost")), using: &rng)
        #expect(
            Array(actions.prefix(3)) == [.closeGate, .disconnect, .report(.connectionLost(reason: "connection lost"))])
        #expect((delay(actions) ?? .zero) <= .seconds(1))
    }

    @Test func aStopFlushesTheDisconnectOnlyWhereThereIsASocketAndEndsEverything() {
        for (setUp, flush) in [
            ([Machine.Input](), false), ([.start], true), ([.start, .connectCallSucceeded(now: t0)], true),
            ([.start, .connectCallSucceeded(now: t0), .connackAccepted(version: .v5, receiveMaximum: 1)], true),
            ([.start, .connectCallFailed(reason: "x")], false)
        ] {
            var m = machine()
            for input in setUp { _ = m.handle(input) }
            #expect(
                m.handle(.stop) == (flush ? [.closeGate, .finish(flush: true)] : [.finish(flush: false)]),
                "after \(setUp)")
            #expect(m.state == .stopped)
            for input in [
                Machine.Input.start, .backoffElapsed, .connackAccepted(version: .v5, receiveMaximum: 1), .stop
            ] {
                #expect(m.handle(input).isEmpty)
            }
        }
    }

    @Test func inputsOfAnotherStateChangeNothing() {
        var m = machine()
        #expect(m.handle(.connackAccepted(version: .v5, receiveMaximum: 1)).isEmpty)
        #expect(m.handle(.ended(.failed(reason: "x"))).isEmpty)
        #expect(m.state == .idle)
        _ = m.handle(.start)
        _ = m.handle(.connectCallFailed(reason: "x"))
        #expect(m.handle(.connackAccepted(version: .v5, receiveMaximum: 1)).isEmpty, "no CONNACK while backing off")
        #expect(m.state == .backingOff)
    }

    /// Random inputs, checked against what a connection must never do: the gate is open exactly
    /// while connected; `connected` is reported once per accepted CONNACK and followed by a loss
    /// (never a failure) or a stop; every wait is within the backoff's bounds; nothing after a stop.
    @Test(arguments: 0..<200) func randomSequencesKeepTheInvariants(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var m = machine([Machine.Version.v5, .v311][Int(seed % 2)])
        var gateOpen = false, reportedConnected = false, stopped = false
        var now = t0
        for _ in 0..<60 {
            now = now + .seconds(Int64.random(in: 0...6, using: &rng))
            let inputs: [Machine.Input] = [
                .start, .connectCallFailed(reason: "f"), .connectCallSucceeded(now: now),
                .connackAccepted(version: m.version, receiveMaximum: 10), .ended(.protocolRefused),
                .ended(.failed(reason: "e")), .tick(now: now), .backoffElapsed, .stop
            ]
            // A stop now and then, the rest evenly.
            let input =
                Int.random(in: 0..<40, using: &rng) == 0
                ? .stop : inputs[Int.random(in: 0..<(inputs.count - 1), using: &rng)]
            let actions = m.handle(input, using: &rng)
            if stopped { #expect(actions.isEmpty); continue }
            for action in actions {
                switch action {
                case .openGate: #expect(!gateOpen); gateOpen = true
                case .closeGate: gateOpen = false
                case .report(.connected):
                    #expect(!reportedConnected); reportedConnected = true
                case .report(.connectionLost):
                    #expect(reportedConnected); reportedConnected = false
                case .report(.connectFailed):
                    #expect(!reportedConnected, "a failure reported for a connection that was up")
                case .wait(let d): #expect(d > .zero && d <= .seconds(8))
                case .finish: stopped = true
                case .connect, .disconnect: break
                }
            }
            #expect(gateOpen == (m.state == .connected), "after \(input): \(m.state)")
            #expect(stopped == (m.state == .stopped))
        }
    }
}
