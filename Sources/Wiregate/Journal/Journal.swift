import CMalloc
import DequeModule
import Dispatch
import Foundation
import GRDB
import GRDBSQLite
import Logging
import Metrics
import WiregateCore

/// The store-and-forward journal: every event in SQLite (WAL) until each sink has it.
///
/// Appends get a sequence number at once. Critical events are committed at once;
/// telemetry waits in memory for one commit per `commitWindow`, so a burst costs one
/// commit, and telemetry that the sink had acknowledged before its commit was due is
/// never written at all (the SD card's write budget). Sinks read critical before
/// telemetry, each from its own cursor, which only an acknowledgement moves.
public actor Journal: EventOutbox {
    /// The MQTT sink's name in the cursor table.
    public static let mqttSink = "mqtt"

    let database: DatabasePool
    /// Where `journal.sqlite` is: `state_dir`, or the memory fallback (see `open`).
    public nonisolated let directory: String
    /// False for a journal in memory: lost on power cut, and its sequence numbers may be handed
    /// out again by the disk journal later, so they must not reach a sink that deduplicates by them.
    public nonisolated let isDurable: Bool
    let commitWindow: Duration
    /// Whether the wall clock is known to be right: each event's flag, and whether `max_age` can be judged.
    let clockSynchronised: @Sendable () -> Bool
    /// The clocks events are stamped with (the boot, the monotonic time of the alarm's events).
    let time: TimeSource
    /// This boot's row in the `boot` table, which each event written refers to; nil without a boot id.
    var bootRow: Int64?
    /// The synchronised anchors known, each event dated with them as it is handed out.
    var anchorIndex = AnchorIndex()
    /// The anchor written as the journal opened; nil without a boot id.
    public private(set) var startAnchor: ClockAnchor?
    /// Set while a pass journals correction records: a second caller leaves it to the first.
    var correcting = false
    /// The stretches (by their start) whose records this run journaled, committed or not.
    var journaledThisRun: Set<Int64> = []
    /// The last few anchors recorded, kept through a reload of `anchorIndex`.
    var recentAnchors: [ClockAnchor] = []
    /// The start's anchor and its last seq, when the card refused them as the journal opened.
    var unwrittenStart: (ClockAnchor, Int64)?
    /// What the journal counts (appends, drops, commits) for `/metrics`.
    let metrics: JournalMetrics
    let bounds: (maxBytes: Int64, maxAge: Duration, quarantineCount: Int, quarantineBytes: Int64)
    var lastBoundsCheck: ContinuousClock.Instant?
    var shedding = false
    let logger: Logger
    /// Sequence numbers, reserved in blocks in `sequenceFile` so that none is ever handed out twice.
    var sequence: SequenceAllocator
    let sequenceFile: SequenceFile
    /// Where a reservation goes when the card refuses it (full): the memory fallback's directory,
    /// which outlives the process but not a power cut. A crash while the card is full then does
    /// not repeat numbers (it did, found by the fault campaign: disk full, then SIGKILL). Nil for
    /// the memory journal itself, whose `sequenceFile` is there already.
    let crashReservationFile: SequenceFile?
    /// Reservations are written here, in order, off the actor.
    let reservationQueue = DispatchQueue(label: "wiregate.journal.sequence")
    /// The highest reservation known to be on the card: no sink is handed a number above it (a
    /// number no one has seen may be handed out again after a crash; one a consumer has seen may
    /// not). `Int64.max` once a reservation cannot be written at all: the sinks then get
    /// everything, and the failure is logged.
    var durableCeiling: Int64 = 0
    /// The reservation queued and not yet written, if any.
    var reservationDue: Int64?
    var sequenceFileFailing = false
    var nextSeq: Int64 { sequence.next }
    /// Appended, not yet committed, in seq order. A deque: a commit takes its head while appends
    /// go on at its tail, and neither copies the rest (an array shared with the batch being
    /// written was copied whole by the next append, twice the memory of a burst).
    var pending: Deque<JournaledEvent> = []
    /// What `pending` holds, about: kept as events come and go (see `JournaledEvent.memoryCost`).
    var pendingBytes = 0
    /// Callers of `enqueue` waiting for a commit (see `enqueue`), and when the commit under way began.
    /// Lines per board in the current and the previous second, counted from `rateEpoch`.
    var boardRates: [String: (second: Int64, current: Int, previous: Int)] = [:]
    let rateEpoch = ContinuousClock.now
    /// `expired` counts the waits that ended on their timer rather than with a commit.
    var admissions = (next: 0, waiting: [Int: CheckedContinuation<Void, Never>](), expired: 0)
    var commitStarted = ContinuousClock.now
    /// The longest commit so far (a stalled card's mark).
    var slowestCommit = Duration.zero
    /// The last commit of a burst's size, and whether a trim waits for the burst's end (see `trimAfterBurst`).
    var lastLargeCommit = ContinuousClock.now
    var trimPending = false
    var trimWhenIdle = false
    /// The highest seq a commit has covered: rows above it can only be in `pending`.
    var committedThrough: Int64
    /// When to commit: now, after a delay, right after the commit under way (one at a time).
    var scheduler: CommitScheduler
    private var flushWaiters: [CheckedContinuation<Void, Never>] = []
    var writeFailing: Bool { scheduler.writeFailing }
    /// Commits that failed (read-only or full file system, I/O error).
    public private(set) var writeFailures = 0
    /// Events dropped from memory while the journal could not be written, per class.
    public internal(set) var droppedInMemory: [EventClass: Int] = [:]
    /// Each sink's reading state: where it has read to, what it has in flight, what is acknowledged.
    var readers: [String: SinkReader]
    var cursorsDirty = false
    /// Callers waiting in `next` for events (see `callerKey`).
    var waiters: [String: CheckedContinuation<Void, Never>] = [:]
    /// Callers of `next` (see `callerKey`) woken while they were not waiting (in the middle of a pass).
    var wokenDuringPass: Set<String> = []
    /// Callers inside `next`, waiting or not.
    var inNext: Set<String> = []
    /// The last seq numbered per class (journaled or only in memory): `hasUnsent`'s quick answer.
    var lastSeqByClass: [EventClass: Int64] = [:]
    /// Set by `close()`: the database is closed, nothing more is written.
    var closed = false
    /// Set as `close()` begins: `next` hands out nothing more.
    var closing = false
    /// Whether the last quarantine write failed (logged once per run of failures).
    var quarantineFailing = false
    /// A fault-injection seam for tests: every commit holds SQLite's writer this long, as a card
    /// whose writes stall does (no device-mapper or FUSE on the machines the tests run on).
    var commitStall: Duration = .zero

    /// See `commitStall`.
    public func stallCommits(for duration: Duration) { commitStall = duration }

    /// Most events kept in memory while the journal cannot be written (read-only or full file
    /// system); past it the oldest telemetry goes first. The live path never stops for the disk.
    public static let memoryLimit = 100_000
    /// The same bound in bytes (about: see `JournaledEvent.memoryCost`), for telemetry: what the
    /// daemon's memory bound allows the events of a card that refuses writes. Critical events are
    /// held to the count only.
    public static let memoryLimitBytes = 2 << 20

    /// Events waiting in memory past which a commit does not wait for its window: the memory a
    /// burst takes is bounded by this, not by the input rate. Reached only above about 1,000
    /// events/s (a burst, a noisy board), so the SD card's write budget at ordinary rates is the same.
    public static let earlyCommitEvents = 2_048
    /// The same threshold in bytes (512 KiB, about: see `JournaledEvent.memoryCost`).
    public static let earlyCommitBytes = 512 << 10
    /// Events (or bytes) in memory past which `enqueue` waits for the commit under way: one batch
    /// being written and the next one filling (one read of a port can bring a few thousand more).
    public static let backpressureEvents = commitBatchLimit
    /// The same threshold in bytes (512 KiB, about: see `JournaledEvent.memoryCost`).
    public static let backpressureBytes = 512 << 10
    /// The longest one call of `enqueue` waits for a commit. Half a second at 115,200 baud is
    /// 5.7 KB, which the kernel holds (a tty's 4 KiB line buffer and its 64 KiB of flip buffers).
    static let backpressureMaxWait = Duration.milliseconds(500)
    /// A commit under way for longer than this is a stalled card, not a slow one: nobody waits for it.
    static let backpressureStall = Duration.seconds(2)
    /// Lines a second past which a board's reader may wait (see `enqueue`): more than a UART at
    /// 115,200 baud can carry (11,520 bytes a second, 2,880 lines of the shortest, `a=1`).
    static let backpressureRate = 3_000
    /// Most events one transaction writes: a backlog in memory is committed in batches of this,
    /// so the batch copied for the write stays small whatever the backlog.
    static let commitBatchLimit = 2_048

    /// Opens the journal in `directory`; one that SQLite reports as corrupt, or whose schema
    /// is newer than this binary, is moved aside (kept for forensics) and a fresh one started:
    /// a security gateway that refuses to start protects nothing.
    ///
    /// For the same reason, when `directory` cannot be written at all (a read-only or failed SD
    /// card), the journal goes to `memoryFallback` (a tmpfs: lost on power cut) with its
    /// sequence going on after the disk journal's last one where that can be read, and
    /// `isDurable` false. The fallback is reused by a restart while the disk stays unwritable.
    /// - Throws: when neither directory can hold a journal.
    public static func open(
        directory: String, memoryFallback: String? = nil, settings: GatewayConfig.JournalSettings,
        sinks: [String] = [mqttSink], time: TimeSource = .system, metrics: JournalMetrics = GatewayMetrics.none.journal,
        logger: Logger
    ) throws -> Journal {
        // What the other journal reserved: a disk journal opening again after the memory fallback
        // was used (the daemon restarted, the disk writable again) goes on after its numbers.
        let memoryReserved = memoryFallback.map { SequenceFile(directory: $0).read() } ?? 0
        do {
            return try openReplacingDamage(
                directory: directory, settings: settings, sinks: sinks, time: time, metrics: metrics, logger: logger,
                seqAfter: memoryReserved, drainFrom: memoryFallback)
        } catch {
            guard let memoryFallback else { throw error }
            // The disk's reservation file is readable on a read-only card; the journal itself is
            // read without its WAL (see lastSeqOfUnwritableJournal), so the file is the better floor.
            var diskLastSeq = SequenceFile(directory: directory).read()
            do {
                diskLastSeq = max(diskLastSeq, try lastSeqOfUnwritableJournal(path: fileName(in: directory)))
            } catch {
                logger.error(
                    "disk journal unreadable: its reservation file is the sequence's floor",
                    metadata: [
                        "error": "\(error)", "floor": "\(diskLastSeq)"
                    ])
            }
            // In words an operator can act on (which directory, whose, what mode), the raw error beside.
            let problem = FileAccess().directoryWriteProblem(directory) ?? "\(error)"
            logger.critical(
                "journal cannot be written in state_dir: journaling to memory, lost on power cut",
                metadata: [
                    "state_dir": "\(directory)", "problem": "\(problem)", "error": "\(error)",
                    "memory_journal": "\(memoryFallback)",
                    "disk_last_seq": "\(diskLastSeq)"
                ])
            var bounded = settings
            bounded.maxBytes = min(settings.maxBytes, memoryFallbackMaxBytes)
            // A journal in memory is never uploaded (see `isDurable`): no backend reader, whose cursor
            // would otherwise keep every row from being deleted.
            return try openReplacingDamage(
                directory: memoryFallback, settings: bounded, sinks: [mqttSink], time: time, metrics: metrics,
                logger: logger, durable: false, seqAfter: max(diskLastSeq, memoryReserved))
        }
    }

    /// The last sequence number of the journal at `path` (0 when there is none), in a directory
    /// nothing can write. A WAL journal closed cleanly has no `-shm` file and a read-only
    /// directory cannot get one, so SQLite opens it only as `immutable`, a URI parameter that
    /// GRDB's open path does not pass: hence the C API, for one query.
    static func lastSeqOfUnwritableJournal(path: String) throws -> Int64 {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        let uri =
            "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1"
        var connection: OpaquePointer?
        defer { sqlite3_close(connection) }
        var statement: OpaquePointer?
        defer { sqlite3_finalize(statement) }
        var code = sqlite3_open_v2(uri, &connection, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nil)
        if code == SQLITE_OK {
            code = sqlite3_prepare_v2(
                connection, "SELECT seq FROM sqlite_sequence WHERE name = 'event'", -1, &statement, nil)
        }
        if code == SQLITE_OK {
            code = sqlite3_step(statement)
            if code == SQLITE_ROW { return sqlite3_column_int64(statement, 0) }
            if code == SQLITE_DONE { return 0 }
        }
        throw DatabaseError(
            resultCode: ResultCode(rawValue: code), message: connection.map { String(cString: sqlite3_errmsg($0)) })
    }

    /// `max_bytes` of a journal in memory: a Pi's RAM is small.
    public static let memoryFallbackMaxBytes: Int64 = 16 << 20

    /// Where the journal goes when `state_dir` cannot be written: a tmpfs every Linux has
    /// (`/dev/shm` stays writable under systemd's `ProtectSystem=strict`), one per gateway id.
    public static func memoryFallbackDirectory(gatewayID: String) -> String {
        "/dev/shm/wiregate-\(gatewayID)"
    }

    private static func openReplacingDamage(
        directory: String, settings: GatewayConfig.JournalSettings, sinks: [String], time: TimeSource,
        metrics: JournalMetrics, logger: Logger, durable: Bool = true, seqAfter: Int64 = 0, drainFrom: String? = nil
    ) throws -> Journal {
        do {
            return try Journal(
                directory: directory, settings: settings, sinks: sinks, logger: logger, durable: durable,
                seqAfter: seqAfter, time: time, drainFrom: drainFrom, metrics: metrics)
        } catch let problem as JournalDamage {
            let aside = try moveAside(directory: directory)
            logger.critical(
                "journal unusable, moved aside; starting a fresh one: events in it were not sent",
                metadata: [
                    "reason": "\(problem.reason)", "moved_to": "\(aside)"
                ])
            return try Journal(
                directory: directory, settings: settings, sinks: sinks, logger: logger, durable: durable,
                seqAfter: seqAfter, time: time, drainFrom: drainFrom, metrics: metrics)
        }
    }

    /// Why an existing journal cannot be used.
    struct JournalDamage: Error {
        var reason: String
    }

    static func fileName(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("journal.sqlite")
    }

    /// Renames the journal and its WAL files to `journal.sqlite.damaged-<time>`.
    static func moveAside(directory: String) throws -> String {
        let path = fileName(in: directory)
        let stamp = Date().formatted(.iso8601).replacingOccurrences(of: ":", with: "")
        let aside = "\(path).damaged-\(stamp)"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
        }
        return aside
    }

    /// Opens (or creates) `journal.sqlite` in `directory` and loads the cursors.
    /// - Parameters:
    ///   - sinks: the names of the sinks reading it, each with its own cursor; a row is deleted
    ///     once every one of them has acknowledged it.
    ///   - seqAfter: the sequence goes on after this number at least (see `open`).
    ///   - time: the clocks: whether the wall clock is known to be right now, the boot, the time
    ///     since boot (the system's, but for tests).
    ///   - drainFrom: a memory fallback's directory whose unsent events this journal takes over.
    ///   - metrics: what the journal counts and measures.
    /// - Throws: `JournalDamage` for a corrupt journal or a newer schema; a GRDB or file system error otherwise.
    public init(
        directory: String, settings: GatewayConfig.JournalSettings, sinks: [String] = [mqttSink], logger: Logger,
        durable: Bool = true, seqAfter: Int64 = 0,
        time: TimeSource = .system, drainFrom: String? = nil,
        metrics: JournalMetrics = GatewayMetrics.none.journal
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try self.init(
                opening: directory, settings: settings, sinks: sinks, logger: logger, durable: durable,
                seqAfter: seqAfter, time: time, drainFrom: drainFrom, metrics: metrics)
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            throw JournalDamage(reason: "\(error)")
        }
    }

    private init(
        opening directory: String, settings: GatewayConfig.JournalSettings, sinks: [String], logger: Logger,
        durable: Bool, seqAfter: Int64, time: TimeSource, drainFrom: String?,
        metrics: JournalMetrics
    ) throws {
        self.clockSynchronised = time.synchronised
        self.time = time
        self.metrics = metrics
        metrics.durable.record(durable ? 1 : 0)
        metrics.maxBytes.record(settings.maxBytes)
        precondition(!sinks.isEmpty, "a journal needs a sink")
        let sync = settings.sync
        var configuration = Configuration()
        // Small page caches and two readers (the sink and `status`): the Pi's memory is small, and
        // the journal is read in seq order, which needs few pages at a time.
        configuration.maximumReaderCount = 2
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
            try db.execute(sql: "PRAGMA cache_size = -512")
        }
        database = try DatabasePool(path: Self.fileName(in: directory), configuration: configuration)
        let migrator = Self.migrator
        if try database.read({ db in try migrator.hasBeenSuperseded(db) }) {
            throw JournalDamage(reason: "its schema is newer than this wiregate knows")
        }
        try migrator.migrate(database)
        // Reads every page's structure: a torn or overwritten file is found now, not mid-run.
        if let check = try database.read({ db in try String.fetchOne(db, sql: "PRAGMA quick_check(1)") }), check != "ok"
        {
            throw JournalDamage(reason: "quick_check: \(check)")
        }
        if let drainFrom, durable {
            Self.drainMemoryJournal(in: drainFrom, into: database, logger: logger)
        }
        self.directory = directory
        self.isDurable = durable
        self.commitWindow = settings.commitWindow
        self.scheduler = CommitScheduler(
            commitWindow: settings.commitWindow, cursorInterval: Self.cursorInterval,
            failureRetry: .seconds(1))
        self.bounds = (settings.maxBytes, settings.maxAge, settings.quarantineMaxCount, settings.quarantineMaxBytes)
        self.logger = logger
        let (last, cursors) = try database.read { db in
            let last = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'event'") ?? 0
            var cursors: [String: [EventClass: Int64]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT sink, class, seq FROM sink_cursor") {
                cursors[row["sink"], default: [:]][EventClass(storageCode: row["class"])] = row["seq"]
            }
            return (last, cursors)
        }
        sequenceFile = SequenceFile(directory: directory)
        let crashReservationFile = durable ? drainFrom.map { SequenceFile(directory: $0) } : nil
        self.crashReservationFile = crashReservationFile
        // Whatever was handed out before, by this file or a lost one, a crash or the memory fallback
        // (whose directory `open` read into `seqAfter`).
        sequence = SequenceAllocator(after: max(last, seqAfter, sequenceFile.read()))
        // Before any number is used. A journal that opens on a read-only card (SQLite may, when a
        // crash left its WAL behind) fails here, so that `open` falls back to memory, saying so; a
        // full card does not: the disk journal still drains its backlog, and the failure is reported.
        let ceiling = sequence.reserveAhead()
        do throws(SystemCallError) {
            if let cardError = try Self.reserve(ceiling, in: sequenceFile, orElseIn: crashReservationFile) {
                // Read-only: the whole journal goes to memory instead (see `open`).
                if [EROFS, EACCES, EPERM].contains(cardError.code) { throw cardError }
                sequenceFileFailing = true
                Self.logReservationOnlyInMemory(logger, cardError: "\(cardError)", file: crashReservationFile)
            }
            durableCeiling = ceiling
        } catch  where [EROFS, EACCES, EPERM].contains(error.code) {
            throw error
        } catch {
            durableCeiling = .max
            sequenceFileFailing = true
            logger.error(
                "cannot write the sequence reservation: if the journal is lost too, numbers may repeat",
                metadata: [
                    "error": "\(error)"
                ])
        }
        committedThrough = last
        // Before any event can be numbered: every event of this run comes after the start's anchor.
        do {
            (bootRow, anchorIndex, startAnchor) = try Self.loadClock(database, time: time, lastSeq: sequence.last)
        } catch {
            // A full card (the WAL cannot grow): the disk journal still drains its backlog, as for
            // the reservation; the start's anchor waits in memory for the watcher to write it.
            logger.error("cannot write the start's clock anchor; kept in memory", metadata: ["error": "\(error)"])
            let boot = time.boot
            (bootRow, anchorIndex) = try database.read { db in
                (
                    try boot.flatMap {
                        try Int64.fetchOne(db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [$0])
                    },
                    try Self.synchronisedAnchors(db)
                )
            }
            startAnchor = boot.map { time.anchor(boot: $0) }
            if let startAnchor { unwrittenStart = (startAnchor, sequence.last) }
        }
        for eventClass in EventClass.allCases {
            lastSeqByClass[eventClass] =
                try database.read { db in
                    try Int64.fetchOne(
                        db, sql: "SELECT max(seq) FROM event WHERE class = ?", arguments: [eventClass.storageCode])
                } ?? 0
        }
        // A sink new to this journal starts at its beginning: it gets everything still there.
        readers = Dictionary(uniqueKeysWithValues: sinks.map { ($0, SinkReader(cursors: cursors[$0] ?? [:])) })
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // AUTOINCREMENT: a sequence number is never reused, even once every row is deleted.
            try db.execute(
                sql: """
                    CREATE TABLE event (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        board TEXT NOT NULL,
                        topic TEXT NOT NULL,
                        subtopic TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        class INTEGER NOT NULL,
                        received_at REAL NOT NULL,
                        clock_synced INTEGER NOT NULL
                    );
                    CREATE INDEX event_by_class ON event(class, seq);
                    CREATE TABLE sink_cursor (
                        sink TEXT NOT NULL,
                        class INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        PRIMARY KEY (sink, class)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2-dropped") { db in
            // Events the bounds dropped, per class: for `status`, across restarts.
            try db.execute(sql: "CREATE TABLE dropped (class INTEGER PRIMARY KEY, count INTEGER NOT NULL)")
        }
        migrator.registerMigration("v3-latest") { db in
            // `latest` telemetry: a replay sends only the newest row per topic, found through this index.
            try db.execute(
                sql: """
                    ALTER TABLE event ADD COLUMN latest INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX event_latest ON event(topic, seq) WHERE latest = 1;
                    """)
        }
        migrator.registerMigration("v4-quarantine") { db in
            // Events a sink's destination refused for good (the backend's 4xx), with its answer.
            try db.execute(
                sql: """
                    CREATE TABLE quarantine (
                        seq INTEGER NOT NULL,
                        sink TEXT NOT NULL,
                        board TEXT NOT NULL,
                        topic TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        class INTEGER NOT NULL,
                        received_at REAL NOT NULL,
                        status INTEGER NOT NULL,
                        response TEXT NOT NULL,
                        quarantined_at REAL NOT NULL,
                        PRIMARY KEY (sink, seq)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v5-discovery") { db in
            // The Home Assistant configs published, so that the next start clears the ones it no
            // longer produces (see `Journal+Discovery.swift`). The key's columns come first: SQLite
            // 3.40's quick_check reports a NOT NULL column between them as holding NULL (in a
            // WITHOUT ROWID table), and the journal would be moved aside as damaged.
            try db.execute(
                sql: """
                    CREATE TABLE discovery (
                        topic TEXT NOT NULL,
                        mode TEXT NOT NULL,
                        node TEXT NOT NULL,
                        object TEXT NOT NULL,
                        component TEXT NOT NULL,
                        board TEXT,
                        key TEXT,
                        identity TEXT,
                        PRIMARY KEY (topic, mode)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v6-clock") { db in
            // Honest time: the boots this journal has seen, and the anchors pairing each boot's
            // CLOCK_BOOTTIME with the wall clock (see `Journal+Clock.swift`). Key columns first
            // (SQLite 3.40's quick_check, see v5).
            try db.execute(
                sql: """
                    CREATE TABLE boot (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE);
                    CREATE TABLE clock_anchor (
                        boot INTEGER NOT NULL,
                        mono INTEGER NOT NULL,
                        wall INTEGER NOT NULL,
                        synced INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        PRIMARY KEY (boot, mono)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v7-event-time") { db in
            // Each event's boot (a row of `boot`: 8 bytes, not a 36-byte id per event) and
            // CLOCK_BOOTTIME; each anchor's last sequence number then, which bounds the stretch it
            // begins, and whether that stretch's correction record was journaled.
            try db.execute(
                sql: """
                    ALTER TABLE event ADD COLUMN boot INTEGER;
                    ALTER TABLE event ADD COLUMN mono INTEGER;
                    ALTER TABLE clock_anchor ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE clock_anchor ADD COLUMN corrected INTEGER NOT NULL DEFAULT 0;
                    UPDATE clock_anchor SET corrected = 1;
                    """)
            // ^ Anchors from before have no last seq: a stretch of theirs would claim every earlier
            // event. Their events have no boot either, so nothing could be repaired anyway.
        }
        return migrator
    }

    // MARK: - Appending

    /// Appends and, for critical events (or with no commit window), returns once they are
    /// committed (or the commit failed and they wait in memory).
    public func append(_ events: [Event]) async {
        if take(events) { await flush() }
    }

    /// Appends without waiting for the disk: the sinks have the events at once, the commit follows.
    /// The serial readers use this, so that a slow or stalled card never stops a port being read
    /// (its 4 KiB buffer would overflow and lose lines, intrusions included).
    ///
    /// The one wait: a board sending faster than any UART can (past `backpressureRate` lines a
    /// second: a native-USB board's burst) waits for the commit under way once
    /// `backpressureEvents` are in memory, at most `backpressureMaxWait` per call. Its reader then
    /// reads a little later and the kernel holds the rest (a USB serial port stops taking packets
    /// and the board's write blocks: nothing is lost); memory stays bounded at any input rate.
    /// A board on a UART is never waited for, however busy the others (its port has only the
    /// kernel's buffers), and neither is a card that stalls or refuses writes: a commit under way
    /// for longer than `backpressureStall`, or one that failed, lets every call through.
    public func enqueue(_ events: [Event]) async {
        if take(events) { Task { await self.flush() } }
        guard isFasterThanAnyUART(events), scheduler.committing, !writeFailing,
            pending.count >= Self.backpressureEvents || pendingBytes >= Self.backpressureBytes,
            ContinuousClock.now - commitStarted < Self.backpressureStall
        else { return }
        let id = admissions.next
        admissions.next += 1
        await withCheckedContinuation { continuation in
            admissions.waiting[id] = continuation
            Task { [id] in
                try? await Task.sleep(for: Self.backpressureMaxWait)
                self.admitOnTimer(id)
            }
        }
    }

    /// Counts `events` (one read of one board) in their board's rate; whether the board sent more
    /// than `backpressureRate` lines in this second or the one before.
    private func isFasterThanAnyUART(_ events: [Event]) -> Bool {
        guard let board = events.first?.board else { return false }
        let second = (ContinuousClock.now - rateEpoch).components.seconds
        var rate = boardRates[board] ?? (second: second, current: 0, previous: 0)
        if rate.second != second {
            rate = (second: second, current: 0, previous: rate.second == second - 1 ? rate.current : 0)
        }
        rate.current += events.count
        boardRates[board] = rate
        return max(rate.current, rate.previous) > Self.backpressureRate
    }

    /// Lets the caller `id` of `enqueue` go on, its wait over before a commit ended it.
    private func admitOnTimer(_ id: Int) {
        guard let continuation = admissions.waiting.removeValue(forKey: id) else { return }
        admissions.expired += 1
        continuation.resume()
    }

    /// Lets every caller of `enqueue` waiting for a commit go on.
    private func admitAll() {
        let waiting = admissions.waiting
        admissions.waiting.removeAll()
        for continuation in waiting.values { continuation.resume() }
    }

    /// Numbers the events, hands them to the sinks and schedules the telemetry commit.
    /// - Returns: whether a commit is due now (critical events, or no commit window).
    func take(_ events: [Event]) -> Bool {
        guard !events.isEmpty else { return false }
        // Each line's own flag, read with its time (a line read before the clock was set and
        // numbered after must not go out "synced"); the alarm's events are flagged now.
        let now = events.contains { $0.receivedSynchronised == nil } ? clockSynchronised() : true
        let unsynchronised = events.count { !($0.receivedSynchronised ?? now) }
        if unsynchronised > 0 { metrics.unsynchronised.increment(by: unsynchronised) }
        let (first, reserve) = sequence.take(events.count)
        if let reserve { writeReservation(reserve) }
        var critical = false
        for (offset, event) in events.enumerated() {
            var event = event
            if event.receivedMonotonic == nil { event.receivedMonotonic = time.monotonic() }
            let item = JournaledEvent(
                seq: first + Int64(offset), event: event, clockSynced: event.receivedSynchronised ?? now,
                boot: time.boot)
            pending.append(item)
            pendingBytes += item.memoryCost
            lastSeqByClass[event.eventClass] = first + Int64(offset)
            critical = critical || event.eventClass == .critical
        }
        let criticalCount = events.count { $0.eventClass == .critical }
        metrics.appended.increment(.critical, by: criticalCount)
        metrics.appended.increment(.telemetry, by: events.count - criticalCount)
        // Every sink: one in the middle of a pass must see these too (see `wokenDuringPass`).
        for sink in readers.keys { wake(sink) }
        let burst = pending.count >= Self.earlyCommitEvents || pendingBytes >= Self.earlyCommitBytes
        let decision = scheduler.appended(critical: critical, burst: burst)
        if decision == .commitNow { return true }
        perform(decision)
        return false
    }

    /// Carries out a decision of the scheduler's that nobody waits for: a commit in a task, or a timer.
    func perform(_ decision: CommitScheduler.Decision) {
        switch decision {
        case .none:
            break
        case .commitNow:
            Task { await self.flush() }
        case .commitAfter(let delay):
            Task {
                try? await Task.sleep(for: delay)
                await self.flush()
            }
        }
    }

    /// Asks glibc to give back what a burst left in its arenas (freed, but kept unless asked),
    /// once the burst is over: a second after its last large commit, once per burst.
    private func trimAfterBurst() {
        lastLargeCommit = .now
        guard !trimPending else { return }
        trimPending = true
        Task {
            while ContinuousClock.now - self.lastLargeCommit < .seconds(1) {
                try? await Task.sleep(for: .seconds(1))
            }
            self.trimmed()
        }
    }

    private func trimmed() {
        trimPending = false
        // The sinks may still be sending the burst (from SQLite, seconds after its last commit):
        // once they are through, once more (see `trimIfIdle`).
        trimWhenIdle = true
        // Off the actor: it walks the arenas under their locks.
        Task.detached { malloc_trim(0) }
    }

    /// The second trim after a burst, when a caller of `next` finds nothing left to send and
    /// nothing waits in memory: what the sinks' reads allocated is freed by then.
    func trimIfIdle() {
        guard trimWhenIdle, pending.count < Self.earlyCommitEvents / 64,
            readers.values.allSatisfy({ $0.buffered.values.allSatisfy(\.isEmpty) })
        else { return }
        trimWhenIdle = false
        // The sinks' buffers keep the capacity of a burst's refills: start them small again.
        for sink in readers.keys { readers[sink]!.buffered = [:] }
        pending = Deque(pending)
        Task.detached { malloc_trim(0) }
    }

    /// The last sequence number handed out.
    public var lastSeq: Int64 { sequence.last }

    /// Records `ceiling` as reserved, off the actor (an fsync on a slow card can take seconds, and
    /// appends must not wait for it): on a queue of its own, in order. A failure is logged once per
    /// run of failures; the numbers are used anyway, the live path never stops for the disk.
    private func writeReservation(_ ceiling: Int64) {
        let file = sequenceFile, crashFile = crashReservationFile
        reservationDue = ceiling
        // A write that stalls (an SD card can for seconds) must not hold events back from the sinks:
        // past half a second the guarantee is given up, loudly, until the write lands.
        Task {
            try? await Task.sleep(for: .milliseconds(500))
            self.reservationOverdue(ceiling)
        }
        reservationQueue.async {
            do {
                let cardError = try Self.reserve(ceiling, in: file, orElseIn: crashFile).map { "\($0)" }
                Task { await self.reservationWritten(ceiling, error: nil, onlyInMemory: cardError) }
            } catch {
                let reason = "\(error)"
                Task { await self.reservationWritten(ceiling, error: reason) }
            }
        }
    }

    /// Writes `ceiling` to `file` (the card) or, when the card refuses it, to `fallback`.
    /// - Returns: nil when it is on the card; the card's error when it is only in `fallback`.
    /// - Throws: the card's error when neither took it.
    static func reserve(_ ceiling: Int64, in file: SequenceFile, orElseIn fallback: SequenceFile?)
        throws(SystemCallError) -> SystemCallError?
    {
        do {
            try file.write(ceiling)
            return nil
        } catch {
            guard let fallback else { throw error }
            let directory = (fallback.path as NSString).deletingLastPathComponent
            // As the memory journal makes it (the umask decides: the unit's lets the operator's group read).
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            do { try fallback.write(ceiling) } catch _ { throw error }
            return error
        }
    }

    private func reservationOverdue(_ ceiling: Int64) {
        guard let due = reservationDue, due <= ceiling, durableCeiling < ceiling else { return }
        durableCeiling = .max
        logger.warning(
            "the sequence reservation is slow to reach the card: events go to the sinks without waiting for it")
        for sink in readers.keys { wake(sink) }
    }

    /// Said once per run of failures, at open or when a reservation falls due.
    private static func logReservationOnlyInMemory(_ logger: Logger, cardError: String, file: SequenceFile?) {
        logger.error(
            "cannot write the sequence reservation to the card: kept in memory until it can; a power cut or reboot meanwhile may repeat numbers",
            metadata: ["error": "\(cardError)", "memory_file": "\(file?.path ?? "")"])
    }

    /// - Parameter onlyInMemory: the card's error, when the reservation went to the memory fallback's
    ///   directory instead: good for a crash, not for a power cut (said once per run of failures).
    private func reservationWritten(_ ceiling: Int64, error: String?, onlyInMemory: String? = nil) {
        if reservationDue.map({ $0 <= ceiling }) == true { reservationDue = nil }
        if let onlyInMemory, !sequenceFileFailing {
            sequenceFileFailing = true
            Self.logReservationOnlyInMemory(logger, cardError: onlyInMemory, file: crashReservationFile)
        }
        if let error {
            // Not written: rather than hold every event back from the sinks, give up the guarantee, loudly.
            durableCeiling = .max
            if !sequenceFileFailing {
                sequenceFileFailing = true
                logger.error(
                    "cannot write the sequence reservation: if the journal is lost too, numbers may repeat",
                    metadata: [
                        "error": "\(error)"
                    ])
            }
        } else {
            // The guarantee is back (also after an overdue or failed write): numbers above this wait again.
            durableCeiling =
                durableCeiling == .max ? (reservationDue == nil ? ceiling : .max) : max(durableCeiling, ceiling)
            if sequenceFileFailing && onlyInMemory == nil {
                sequenceFileFailing = false
                logger.notice("sequence reservation written again", metadata: ["file": "\(sequenceFile.path)"])
            }
        }
        // Sinks may have been holding events above the old ceiling.
        for sink in readers.keys { wake(sink) }
    }

    /// Commits what is pending and closes the database (its WAL is checkpointed into the file and
    /// removed), and records the exact last sequence number: a clean restart goes on without a gap.
    /// Called once every sink has stopped.
    public func close() async {
        await flush()
        // A sink still waiting in `next` gets its empty answer: the store is closing.
        closing = true
        for waiter in waiters.values { waiter.resume() }
        waiters.removeAll()
        guard pending.isEmpty else {
            // The card refuses writes: these die with the process. Said loudly, with what they were.
            let critical = pending.filter { $0.event.eventClass == .critical }.count
            logger.critical(
                "stopping with events the journal could not write: they are lost",
                metadata: [
                    "critical": "\(critical)", "telemetry": "\(pending.count - critical)",
                    "first_seq": "\(pending.first?.seq ?? 0)", "last_seq": "\(pending.last?.seq ?? 0)"
                ])
            return  // the reservation stays as it is (a reservation kept only in /dev/shm dies with a reboot)
        }
        // After any reservation still queued, so that the exact number is the last word.
        let file = sequenceFile, last = sequence.last
        reservationQueue.sync { _ = try? file.write(last) }
        closed = true
        do {
            try database.close()
        } catch {
            logger.warning("journal not closed cleanly", metadata: ["error": "\(error)"])
        }
    }

    /// Per class, the highest seq every sink has acknowledged: rows up to it are needed no more.
    var acknowledgedByAll: [EventClass: Int64] {
        var floor: [EventClass: Int64] = [:]
        for eventClass in EventClass.allCases {
            floor[eventClass] = readers.values.map { $0.cursors[eventClass]!.acknowledged }.min() ?? 0
        }
        return floor
    }

    /// Commits what is pending (except what the sink already acknowledged), the cursors, and
    /// deletes the rows every sink has. Returns once everything appended before the call is committed
    /// (or failed to be, and stays in memory).
    public func flush() async {
        guard !closed else { return }
        guard scheduler.commitRequested() == .run else {
            await withCheckedContinuation { flushWaiters.append($0) }
            return
        }
        repeat {
            repeat {
                scheduler.passStarting()
                await flushOnce()
            } while scheduler.goesRoundAgain
            if lastBoundsCheck.map({ ContinuousClock.now - $0 > Self.boundsInterval }) ?? true {
                lastBoundsCheck = .now
                await enforceBounds()
            }
            // A request that came during the bounds pass is served before its waiter is resumed.
        } while scheduler.goesRoundAgain
        scheduler.loopEnded()
        let waiters = flushWaiters
        flushWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    private func flushOnce() async {
        let batch = Array(pending.prefix(Self.commitBatchLimit))
        let cursors = readers.mapValues(\.acknowledged)
        let floor = acknowledgedByAll
        let writeCursors = cursorsDirty
        guard !batch.isEmpty || writeCursors else { return }
        cursorsDirty = false
        commitStarted = .now
        // Whatever the outcome, a reader waiting for this commit goes on (see `enqueue`).
        defer {
            slowestCommit = max(slowestCommit, ContinuousClock.now - commitStarted)
            admitAll()
        }
        let database = self.database
        let bootRow = self.bootRow
        let stall = commitStall
        do {
            // Its own task: a caller being cancelled (a sink at SIGTERM) must not cancel the commit.
            try await Task {
                try await database.write { db in
                    if stall > .zero {
                        Thread.sleep(
                            forTimeInterval: Double(stall.components.seconds) + Double(stall.components.attoseconds)
                                / 1e18)
                    }
                    let insert = try db.cachedStatement(
                        sql: """
                            INSERT INTO event (seq, board, topic, subtopic, payload, class, received_at, clock_synced, latest, boot, mono)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """)
                    var lastWritten: Int64?
                    // What every sink acknowledged before its commit was due is never written (the card).
                    for item in batch where item.seq > floor[item.event.eventClass, default: 0] {
                        lastWritten = item.seq
                        try insert.execute(arguments: [
                            item.seq, item.event.board, item.event.topic, item.event.subtopic,
                            item.event.payload, item.event.eventClass.storageCode,
                            item.event.receivedAt.timeIntervalSince1970, item.clockSynced, item.event.latest,
                            item.boot == nil ? nil : bootRow, item.event.receivedMonotonic
                        ])
                    }
                    if let last = batch.last, lastWritten != last.seq {
                        // Keep the sequence moving even when the newest events were never written.
                        try db.execute(
                            sql: "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'event'",
                            arguments: [last.seq])
                        if try Int.fetchOne(db, sql: "SELECT changes()") == 0 {
                            try db.execute(
                                sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('event', ?)",
                                arguments: [last.seq])
                        }
                    }
                    if writeCursors {
                        let upsert = try db.cachedStatement(
                            sql: """
                                INSERT INTO sink_cursor (sink, class, seq) VALUES (?, ?, ?)
                                ON CONFLICT (sink, class) DO UPDATE SET seq = excluded.seq
                                """)
                        let delete = try db.cachedStatement(sql: "DELETE FROM event WHERE class = ? AND seq <= ?")
                        for (sink, sinkCursors) in cursors {
                            for (eventClass, seq) in sinkCursors {
                                try upsert.execute(arguments: [sink, eventClass.storageCode, seq])
                            }
                        }
                        // What every sink acknowledged is needed no more.
                        for (eventClass, seq) in floor where seq > 0 {
                            try delete.execute(arguments: [eventClass.storageCode, seq])
                        }
                    }
                }
            }.value
            metrics.commitDuration.record(duration: ContinuousClock.now - commitStarted)
            // Only this loop removes from `pending`, and appends go to its end: the batch is still its head.
            pending.removeFirst(batch.count)
            let (_, transition) = scheduler.passEnded(
                .committed(moreWaiting: batch.count == Self.commitBatchLimit && !pending.isEmpty))
            pendingBytes = max(0, pendingBytes - batch.reduce(0) { $0 + $1.memoryCost })
            if batch.count >= Self.earlyCommitEvents / 4 {
                // A deque keeps the capacity a burst gave it: start a small one for what is left.
                pending = Deque(pending)
                trimAfterBurst()
            }
            if let last = batch.last { committedThrough = max(committedThrough, last.seq) }
            if transition == .writableAgain {
                logger.notice("journal writable again", metadata: ["failed_writes": "\(writeFailures)"])
            }
        } catch {
            // Kept in memory and retried at the next flush; the live path goes on. What the broker
            // acknowledged meanwhile is needed no more, and the memory is bounded.
            cursorsDirty = cursorsDirty || writeCursors
            let acknowledged = acknowledgedByAll
            pending.removeAll { $0.seq <= acknowledged[$0.event.eventClass, default: 0] }
            pendingBytes = pending.reduce(0) { $0 + $1.memoryCost }
            shedMemory()
            writeFailures += 1
            metrics.commitFailures.increment()
            let (retry, transition) = scheduler.passEnded(.failed)
            perform(retry)
            if transition == .startedFailing {
                logger.error(
                    "journal write failed, events kept in memory until it works again",
                    metadata: [
                        "error": "\(error)", "pending": "\(pending.count)"
                    ])
            }
        }
    }

    /// How long an acknowledged cursor may stay in memory only: after a crash, at most this much
    /// of what the broker already had is sent again (QoS 1 is at least once anyway).
    static let cursorInterval = Duration.seconds(5)

    // MARK: - Status

    /// Events not yet acknowledged by `sink`, per class.
    public func pendingCount(sink: String = Journal.mqttSink) async -> [EventClass: Int] {
        // Rows below the first pending seq are on disk; the rest are still in memory.
        let firstPending = pending.first?.seq ?? nextSeq
        var counts: [EventClass: Int] = [:]
        // Counted before any read, with `firstPending`: a commit during a read moves events out of
        // `pending`, and the reads count only rows below `firstPending` (they would be counted nowhere).
        let cursors = EventClass.allCases.map { readers[sink]?.cursors[$0]?.acknowledged ?? 0 }
        let inMemory = zip(EventClass.allCases, cursors).map { eventClass, cursor in
            pending.filter { $0.event.eventClass == eventClass && $0.seq > cursor }.count
        }
        for (index, eventClass) in EventClass.allCases.enumerated() {
            let cursor = cursors[index]
            let stored =
                (try? await database.read { db in
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM event WHERE class = ? AND seq > ? AND seq < ?",
                        arguments: [eventClass.storageCode, cursor, firstPending]) ?? 0
                }) ?? 0
            counts[eventClass] = stored + inMemory[index]
        }
        return counts
    }

    /// One sink's backlog of one class: how many events wait, and when the oldest was read.
    public struct Backlog: Sendable, Equatable {
        /// Events not yet acknowledged by the sink.
        public var pending: Int
        /// When the oldest of them was read from its board; nil when none waits.
        public var oldest: Date?
    }

    /// Events not yet acknowledged by `sink`, per class, with the oldest one's time: committed rows
    /// and those still in memory. The oldest is the first waiting by seq (the order they were read).
    public func backlog(sink: String = Journal.mqttSink) async -> [EventClass: Backlog] {
        // Rows below the first pending seq are on disk; the rest are still in memory.
        let firstPending = pending.first?.seq ?? nextSeq
        var backlogs: [EventClass: Backlog] = [:]
        // Counted before any read, with `firstPending`: a commit during a read moves events out of
        // `pending`, and the reads count only rows below `firstPending` (they would be counted nowhere).
        let cursors = EventClass.allCases.map { readers[sink]?.cursors[$0]?.acknowledged ?? 0 }
        let inMemory = zip(EventClass.allCases, cursors).map { eventClass, cursor in
            let waiting = pending.filter { $0.event.eventClass == eventClass && $0.seq > cursor }
            return Backlog(pending: waiting.count, oldest: waiting.first?.event.receivedAt)
        }
        for (index, eventClass) in EventClass.allCases.enumerated() {
            let cursor = cursors[index]
            let stored =
                (try? await database.read { db -> Backlog in
                    // Both from the (class, seq) index: the count without reading a row, the
                    // oldest as the first row by seq (events are numbered as they are read), so
                    // that a backlog of a million rows costs a scrape an index walk, not a table scan.
                    let arguments: StatementArguments = [eventClass.storageCode, cursor, firstPending]
                    let count =
                        try Int.fetchOne(
                            db, sql: "SELECT count(*) FROM event WHERE class = ? AND seq > ? AND seq < ?",
                            arguments: arguments) ?? 0
                    let oldest = try Double.fetchOne(
                        db,
                        sql:
                            "SELECT received_at FROM event WHERE class = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT 1",
                        arguments: arguments)
                    return Backlog(pending: count, oldest: oldest.map(Date.init(timeIntervalSince1970:)))
                }) ?? Backlog(pending: 0)
            let memory = inMemory[index]
            backlogs[eventClass] = Backlog(
                pending: stored.pending + memory.pending,
                oldest: [stored.oldest, memory.oldest].compactMap { $0 }.min())
        }
        return backlogs
    }

    /// `journal.sqlite` and its write-ahead log, in bytes.
    public nonisolated var sizeInBytes: Int64 {
        ["", "-wal"].reduce(Int64(0)) { total, suffix in
            var info = stat()
            return total + (stat(Self.fileName(in: directory) + suffix, &info) == 0 ? Int64(info.st_size) : 0)
        }
    }
}

/// One sink's reading state inside the journal: per class, its cursor (pure bookkeeping, see
/// `SinkCursor`) and the events read for it and not yet handed out.
struct SinkReader {
    var cursors: [EventClass: SinkCursor]
    var buffered: [EventClass: Deque<JournaledEvent>] = [:]
    /// The classes whose last batch from `next` its caller may still be handing to the destination:
    /// until that caller calls `next` again, `hasUnsent` says yes (events put back are in `buffered`), so that the
    /// telemetry sender does not overtake a critical batch between its hand-out and its publication.
    var inHand: Set<EventClass> = []
    /// The first seq appended since the sink's destination last connected (`destinationConnected`):
    /// older rows are a replay to it, which a coalescing reader thins. Until the first connection, everything is.
    var liveFrom: Int64 = .max

    init(cursors stored: [EventClass: Int64]) {
        cursors = Dictionary(
            uniqueKeysWithValues: EventClass.allCases.map { ($0, SinkCursor(acknowledged: stored[$0] ?? 0)) })
    }

    /// Per class, the seq below which everything is acknowledged: what goes to disk.
    var acknowledged: [EventClass: Int64] { cursors.mapValues(\.acknowledged) }
}

extension EventClass {
    /// How the class is stored: an integer, so that `ORDER BY class` puts critical first.
    var storageCode: Int { self == .critical ? 0 : 1 }

    init(storageCode: Int) { self = storageCode == 0 ? .critical : .telemetry }
}
