import Synchronization
import Testing

@testable import WiregateCore

/// `Followers` as a holder uses it: beside a fact, under the holder's lock (a `Mutex` here).
@Suite struct FollowersTests {
    final class Holder: Sendable {
        let state = Mutex((fact: 0, followers: Followers<Int>()))
        let ended = Mutex<[Int]>([])

        func follow() -> AsyncStream<Int> {
            state.withLock { state in
                state.followers.add(startingWith: [state.fact]) { [weak self] id in
                    self?.ended.withLock { $0.append(id) }
                    self?.state.withLock { $0.followers.remove(id) }
                }
            }
        }

        func set(_ fact: Int) {
            state.withLock { state in
                state.fact = fact
                state.followers.yield(fact)
            }
        }

        func stop() { state.withLock { $0.followers.removeAll() }.finish() }
    }

    @Test func everyFollowerGetsTheFactNowThenEveryChangeInOrder() async {
        let holder = Holder()
        holder.set(1)
        let early = holder.follow()
        holder.set(2)
        let late = holder.follow()
        holder.set(3)
        holder.stop()
        #expect(await Array(early) == [1, 2, 3])
        #expect(await Array(late) == [2, 3])
    }

    @Test func aFollowerThatFallsBehindKeepsTheNewest() async {
        let holder = Holder()
        let stream = holder.follow()
        for fact in 1...(Followers<Int>.buffer + 10) { holder.set(fact) }
        holder.stop()
        let got = await Array(stream)
        #expect(got.count == Followers<Int>.buffer)
        #expect(got.last == Followers<Int>.buffer + 10)
        #expect(got == Array(11...(Followers<Int>.buffer + 10)))
    }

    /// A consumer that stops reading leaves: its stream is no longer fed, and the others still are.
    @Test func aCancelledFollowerIsRemovedAndTheOthersGoOn() async {
        let holder = Holder()
        let staying = holder.follow()
        let leaving = Task { for await _ in holder.follow() {} }
        // Wait until the leaving follower is reading, then cancel it.
        while holder.ended.withLock({ $0.isEmpty }) {
            leaving.cancel()
            await Task.yield()
        }
        await leaving.value
        #expect(holder.ended.withLock { $0 } == [1])
        holder.set(5)
        holder.stop()
        #expect(await Array(staying) == [0, 5])
        #expect(holder.ended.withLock { $0.sorted() } == [0, 1])
    }

    @Test func stoppingEndsEveryFollower() async {
        let holder = Holder()
        let streams = (0..<3).map { _ in holder.follow() }
        holder.stop()
        for stream in streams { #expect(await Array(stream) == [0]) }
        #expect(holder.ended.withLock { $0.sorted() } == [0, 1, 2])
        // One that comes after the stop gets the fact, then the end: it never waits forever.
        #expect(await Array(holder.follow()) == [0])
    }
}

private extension Array where Element: Sendable {
    init(_ stream: AsyncStream<Element>) async {
        self = []
        for await element in stream { append(element) }
    }
}
