import Foundation
import Testing

@testable import WiregateCore

@Suite struct BackoffTests {
    @Test func growsExponentiallyWithinJitterAndIsCapped() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        var rng = SeededGenerator(seed: 42)
        let ceilings: [Duration] = [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
            .seconds(2), .seconds(2)
        ]
        for ceiling in ceilings {
            let delay = backoff.nextDelay(using: &rng)
            #expect(delay <= ceiling)
            #expect(delay >= ceiling / 2)
        }
    }

    @Test func jitterSpreadsDelays() {
        var rng = SeededGenerator(seed: 7)
        var delays = Set<Duration>()
        for _ in 0..<20 {
            var backoff = Backoff(initial: .seconds(1), maximum: .seconds(1))
            delays.insert(backoff.nextDelay(using: &rng))
        }
        #expect(delays.count > 10)
    }

    @Test func resetStartsOver() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        for _ in 0..<5 { _ = backoff.nextDelay() }
        backoff.reset()
        #expect(backoff.nextDelay() <= .milliseconds(100))
    }

    @Test func doesNotOverflowAfterManyAttempts() {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30))
        for _ in 0..<10_000 { #expect(backoff.nextDelay() <= .seconds(30)) }
    }
}

@Suite struct TimestampFormatterTests {
    @Test func rfc3339WithMillisecondsInUTC() {
        var formatter = TimestampFormatter()
        #expect(formatter.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(formatter.string(from: Date(timeIntervalSince1970: 1_796_000_000.042)) == "2026-11-30T00:53:20.042Z")
        #expect(formatter.string(from: Date(timeIntervalSince1970: 1_796_000_000.5)) == "2026-11-30T00:53:20.500Z")
        #expect(formatter.string(from: Date(timeIntervalSince1970: 1_796_000_001.999)) == "2026-11-30T00:53:21.999Z")
    }
}
