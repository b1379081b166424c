import Testing
import Wiregate

/// The one holder of which board is online where, and its followers.
@Suite struct BoardDirectoryTests {
    typealias Status = BoardDirectory.Status

    /// The first `count` values of `stream`.
    static func first(_ count: Int, of stream: AsyncStream<Status>) async -> [Status] {
        var values: [Status] = []
        for await value in stream {
            values.append(value)
            if values.count == count { break }
        }
        return values
    }

    @Test func aLateFollowerHearsTheStatusesNowThenEveryChange() async {
        let directory = BoardDirectory(boards: ["front-door", "attic"])
        // A board online before anyone follows (the reader started first): not missed.
        directory.report("front-door", online: true, node: "/dev/ttyACM0")
        let early = directory.changes()
        directory.report("attic", online: true, node: "/dev/ttyUSB0")
        let late = directory.changes()
        directory.report("front-door", online: false, node: "/dev/ttyACM0")
        // The same report twice is no change.
        directory.report("front-door", online: false)
        // An adopted board reports before it was known: it is known from then on.
        directory.report("95530343", online: true, node: "/dev/ttyACM1")

        let door = Status(board: "front-door", online: true, node: "/dev/ttyACM0")
        let attic = Status(board: "attic", online: true, node: "/dev/ttyUSB0")
        let doorGone = Status(board: "front-door", online: false, node: nil)
        let adopted = Status(board: "95530343", online: true, node: "/dev/ttyACM1")
        #expect(
            await Self.first(5, of: early) == [Status(board: "attic", online: false), door, attic, doorGone, adopted])
        #expect(await Self.first(4, of: late) == [attic, door, doorGone, adopted])
        #expect(directory.snapshot() == [adopted, attic, doorGone])
        #expect(directory.counts == (online: 2, known: 3))
        #expect(directory.isOnline("attic") && !directory.isOnline("front-door") && !directory.isOnline("nothing"))
    }

    @Test func aFollowerThatStopsReadingIsForgotten() async {
        let directory = BoardDirectory(boards: ["b"])
        var stream: AsyncStream<Status>? = directory.changes()
        #expect(await Self.first(1, of: stream!) == [Status(board: "b", online: false)])
        stream = nil
        // Nothing is kept for it: reports go on, and a new follower starts from the statuses now.
        for n in 0..<1000 { directory.report("b", online: n % 2 == 0, node: "/dev/pts/\(n)") }
        #expect(await Self.first(1, of: directory.changes()) == [Status(board: "b", online: false)])
    }
}
