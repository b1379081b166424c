import Foundation
import Glibc

/// The receiving Django app (deploy/django) served by gunicorn on a free loopback port, over a
/// database of its own in the private PostgreSQL that `scripts/test.sh` starts (PGHOST, PGPORT).
/// Stop and start it to play an internet outage.
public final class DjangoBackend: @unchecked Sendable {
    /// The loopback port the app is served on.
    public let port: Int
    /// The API token of the gateway user it made.
    public let token: String
    /// The PostgreSQL database it made for this test.
    public let database: String
    private var server: ChildProcess?
    private let directory: String
    private let python: String
    private let environment: [String: String]
    private let faultsFile: String?

    /// How many POSTs the server has answered so far (with a fault plan only).
    public var requests: Int { faultCounter("requests") }

    /// How many of them had a gzip body (with a fault plan only).
    public var gzipRequests: Int { faultCounter("gzip") }

    private func faultCounter(_ key: String) -> Int {
        guard let faultsFile, let data = FileManager.default.contents(atPath: faultsFile),
            let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return 0 }
        return state[key] as? Int ?? 0
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
        .standardized.path

    /// - Parameter faults: a fault plan (see deploy/django/testproject/faults.py), e.g.
    ///   `["plan": ["500", "429:1", "hang:3"], "reject_seq": 5]`.
    /// - Parameter tls: a server certificate and key: gunicorn then serves HTTPS.
    /// - Parameter gateway: the gateway id the token is bound to (the app answers 403 for any other).
    /// - Parameter smtpPort: where the app sends its e-mails (an `SMTPSink`); nil: nowhere.
    public init(
        faults: [String: any Sendable]? = nil, tls: (certificate: String, key: String)? = nil,
        gateway: String = "test-gw", smtpPort: Int? = nil
    ) throws {
        self.tls = tls
        guard ProcessInfo.processInfo.environment["PGPORT"] != nil else {
            throw TestKitError(
                "no PostgreSQL: run the tests through scripts/test.sh, which starts one (PGHOST, PGPORT)")
        }
        python = Self.root + "/.build/django-venv/bin/python"
        directory = Self.root + "/deploy/django"
        port = try freeLoopbackPort()
        database = "wiregate_\(UUID().uuidString.prefix(8).lowercased())"
        var environment = ["PGDATABASE": database, "PYTHONPATH": directory]
        environment["WIREGATE_SMTP_PORT"] = smtpPort.map(String.init) ?? "1"
        environment["WIREGATE_ALERT_EMAILS"] = smtpPort == nil ? "" : "owner@house.example"
        if let faults {
            let path = temporaryPath(database, suffix: "-faults.json")
            try JSONSerialization.data(withJSONObject: faults).write(to: URL(fileURLWithPath: path))
            environment["WIREGATE_FAULTS"] = path
            faultsFile = path
        } else {
            faultsFile = nil
        }
        self.environment = environment
        token = try Self.output(python, [directory + "/testproject/prepare.py", gateway], environment: environment)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try start()
    }

    deinit { stop() }

    private let tls: (certificate: String, key: String)?

    /// The URL for `backend.url`.
    public var url: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }

    /// The keys of a `backend:` section that reach this server: its URL, and for plain HTTP the
    /// lab switch the config requires.
    public var configKeys: String { "url: \"\(url)\"\(tls == nil ? ", allow_plain_http: true" : "")" }

    /// Starts gunicorn and waits until it answers.
    public func start() throws {
        let log = open(
            temporaryPath(database, suffix: "-gunicorn.log"),
            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(log) }
        server = try ChildProcess(
            Self.root + "/.build/django-venv/bin/gunicorn",
            [
                "--chdir", directory, "--bind", "127.0.0.1:\(port)", "--workers", "2", "--access-logfile", "-"
            ] + (tls.map { ["--certfile", $0.certificate, "--keyfile", $0.key] } ?? []) + [
                "testproject.wsgi"
            ], stdout: log, stderr: log, environment: environment)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if canConnect() { return }
            usleep(50_000)
        }
        throw TestKitError("gunicorn did not start on port \(port)")
    }

    /// Stops gunicorn at once (SIGQUIT: SIGTERM would let its workers finish for up to 30 s);
    /// the port refuses connections until `start()`.
    public func stop() {
        server?.send(SIGQUIT)
        _ = server?.waitForExit()
        server = nil
    }

    /// The state the app derived for `gateway` from its heartbeats; nil before the first.
    public func gatewayState(_ gateway: String = "test-gw") throws -> String? {
        let state = try Self.output(
            "/usr/bin/psql",
            [
                "-At", "-d", database, "-c",
                "SELECT state FROM wiregate_events_gatewayhealth WHERE gateway = '\(gateway)'"
            ],
            environment: [:]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        return state.isEmpty ? nil : state
    }

    /// Runs `manage.py wiregate_check_heartbeats` (what the timer runs every minute).
    /// - Returns: what it printed.
    public func checkHeartbeats() throws -> String {
        try Self.output(
            python, [directory + "/manage.py", "wiregate_check_heartbeats"], environment: environment)
    }

    /// How many events are stored.
    public func storedCount() throws -> Int {
        Int(
            try Self.output(
                "/usr/bin/psql", ["-At", "-d", database, "-c", "SELECT count(*) FROM wiregate_events_event"],
                environment: [:]
            ).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The stored events' sequence numbers, in order.
    public func storedSequences() throws -> [Int64] {
        try Self.output(
            "/usr/bin/psql", ["-At", "-d", database, "-c", "SELECT seq FROM wiregate_events_event ORDER BY seq"],
            environment: [:]
        )
        .split(separator: "\n").compactMap { Int64($0) }
    }

    /// Replaces what is left of the fault plan (a server started with one): the next requests
    /// take these steps, then "ok". Under the same lock the app's workers take it with.
    public func setFaultPlan(_ plan: [String]) throws {
        guard let faultsFile else { throw TestKitError("the backend was started without a fault plan") }
        let fd = open(faultsFile, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw TestKitError("open \(faultsFile): errno \(errno)") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw TestKitError("flock \(faultsFile): errno \(errno)") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        var state = (try? JSONSerialization.jsonObject(with: handle.readDataToEndOfFile()) as? [String: Any]) ?? [:]
        state["plan"] = plan
        let data = try JSONSerialization.data(withJSONObject: state)
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw TestKitError("truncate \(faultsFile): errno \(errno)")
        }
        try handle.write(contentsOf: data)
    }

    /// The stored events as (seq, board, topic, payload, class), in the order they were stored.
    /// Fields and rows are separated by ASCII's unit and record separators, which the app refuses
    /// in payloads (C0), so that no stored text can split a row; a row that still does not parse throws.
    public func storedEvents() throws -> [(
        seq: Int64, board: String, topic: String, payload: String, eventClass: String
    )] {
        let sql = "SELECT seq, board, topic, payload, class FROM wiregate_events_event ORDER BY stored_at, seq"
        return try Self.output(
            "/usr/bin/psql", ["-At", "-F", "\u{1F}", "-R", "\u{1E}", "-d", database, "-c", sql], environment: [:]
        )
        .trimmingCharacters(in: .newlines)
        .split(separator: "\u{1E}").map { row in
            let fields = row.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5, let seq = Int64(fields[0]) else {
                throw TestKitError("a stored row does not parse: \(row.prefix(200))")
            }
            return (seq, fields[1], fields[2], fields[3], fields[4])
        }
    }

    /// The gateway's history as the app's API gives it (`GET /api/gateway/events/`), in its order.
    /// The token goes in a header file (curl's `-H @file`), never on a command line.
    public func history(board: String) throws -> [[String: Any]] {
        guard tls == nil else { throw TestKitError("history: plain HTTP only") }
        let header = temporaryPath("token", suffix: ".txt")
        let fd = open(header, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestKitError("open \(header): errno \(errno)") }
        let line = Array("Authorization: Token \(token)\n".utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(header) }
        guard written == line.count else { throw TestKitError("write \(header)") }
        let body = try Self.output(
            "/usr/bin/curl", ["-sSf", "-H", "@" + header, "\(url)/api/gateway/events/?board=\(board)&limit=1000"],
            environment: [:])
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        guard let events = object?["events"] as? [[String: Any]] else {
            throw TestKitError("history: \(body.prefix(200))")
        }
        return events
    }

    /// The rows of a query of the backend's database, each as its fields' text (NULL as "").
    public func query(_ sql: String) throws -> [[String]] {
        try Self.output(
            "/usr/bin/psql", ["-At", "-F", "\u{1F}", "-R", "\u{1E}", "-d", database, "-c", sql], environment: [:]
        )
        .trimmingCharacters(in: .newlines)
        .split(separator: "\u{1E}").map {
            $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// A count of rows matching `condition` (SQL), e.g. "replayed".
    public func count(where condition: String = "true") throws -> Int {
        Int(
            try Self.output(
                "/usr/bin/psql",
                ["-At", "-d", database, "-c", "SELECT count(*) FROM wiregate_events_event WHERE \(condition)"],
                environment: [:]
            ).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    private func canConnect() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    static func output(_ path: String, _ arguments: [String], environment: [String: String]) throws -> String {
        let (status, output) = try ChildProcess.run(path, arguments, environment: environment)
        guard status == 0 else { throw TestKitError("\(path) \(arguments.first ?? "") exited \(status)") }
        return output
    }
}
