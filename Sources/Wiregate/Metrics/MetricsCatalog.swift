/// Every metric the gateway exposes, with its type and help text: the one list, which the
/// exposition's `# HELP` lines, the README's table and the alert rules follow.
///
/// Names follow the Prometheus conventions: base units (`_seconds`, `_bytes`), `_total` on
/// counters, timestamps (`_timestamp_seconds`, Unix time) rather than ages, so that a gateway
/// that stops reporting does not look fresh. Labels are bounded: a board's name comes from the
/// config (adopted boards share `board="adopted"`), a zone's from the alarm's config, a reason
/// from a fixed list; nothing a board sends becomes a label.
public enum MetricsCatalog {
    /// How a metric is exposed.
    public enum Kind: String, Sendable {
        /// Only goes up (reset at a restart, which `rate()` understands).
        case counter
        /// A value now.
        case gauge
        /// Observations in buckets.
        case histogram
    }

    /// One metric: name, type and what it means.
    public struct Entry: Sendable {
        /// The full name, e.g. `wiregate_mqtt_connected`.
        public let name: String
        /// Its type.
        public let kind: Kind
        /// The `# HELP` text.
        public let help: String
        /// Its labels, for the README.
        public let labels: [String]
    }

    /// The label value every adopted board's series share: their names come from board data.
    public static let adoptedBoardLabel = "adopted"

    /// Every metric, in the README's order.
    public static let entries: [Entry] = [
        // Broker
        .init(
            name: "wiregate_mqtt_connected", kind: .gauge,
            help: "1 while the broker connection is up and taking messages, else 0.", labels: []),
        .init(
            name: "wiregate_mqtt_connects_total", kind: .counter,
            help: "Connections the broker accepted (CONNACKs).", labels: []),
        .init(
            name: "wiregate_mqtt_connect_failures_total", kind: .counter,
            help: "Connection attempts that failed, by reason.", labels: ["reason"]),
        .init(
            name: "wiregate_mqtt_disconnects_total", kind: .counter,
            help: "Established connections that went away, by reason.", labels: ["reason"]),
        .init(
            name: "wiregate_mqtt_publishes_total", kind: .counter,
            help:
                "Events published, by class and result: acknowledged (PUBACK), refused (held back and sent again), quarantined (never publishable).",
            labels: ["class", "result"]),
        .init(
            name: "wiregate_mqtt_inflight_messages", kind: .gauge,
            help: "Messages sent and not yet acknowledged by the broker.", labels: []),
        .init(
            name: "wiregate_mqtt_last_ack_timestamp_seconds", kind: .gauge,
            help: "When the broker last acknowledged an event (Unix time; 0: not since the start).", labels: []),
        // Journal
        .init(
            name: "wiregate_journal_events_appended_total", kind: .counter,
            help: "Events appended to the journal, by class.", labels: ["class"]),
        .init(
            name: "wiregate_journal_backlog_events", kind: .gauge,
            help: "Events a sink has not had acknowledged yet, by sink and class.", labels: ["sink", "class"]),
        .init(
            name: "wiregate_journal_oldest_unsent_timestamp_seconds", kind: .gauge,
            help: "When the oldest event a sink still waits for was read from its board (Unix time; 0: none waits).",
            labels: ["sink", "class"]),
        .init(
            name: "wiregate_journal_dropped_events_total", kind: .counter,
            help:
                "Events the journal dropped, by class and reason (max_bytes, max_age; memory: the card refused writes and memory was full).",
            labels: ["class", "reason"]),
        .init(
            name: "wiregate_journal_quarantine_dropped_total", kind: .counter,
            help: "Quarantined events the quarantine's own bound dropped.", labels: []),
        .init(
            name: "wiregate_journal_quarantined_events", kind: .gauge,
            help: "Events a destination refused for good, kept aside, by sink.", labels: ["sink"]),
        .init(
            name: "wiregate_journal_size_bytes", kind: .gauge,
            help: "journal.sqlite and its write-ahead log, in bytes.", labels: []),
        .init(
            name: "wiregate_journal_used_bytes", kind: .gauge,
            help:
                "The events' share of the journal (used pages, less the quarantine), which journal.max_bytes bounds; as of the last bounds check.",
            labels: []),
        .init(
            name: "wiregate_journal_max_bytes", kind: .gauge,
            help: "The journal's bound (journal.max_bytes), in bytes.", labels: []),
        .init(
            name: "wiregate_journal_commit_failures_total", kind: .counter,
            help: "Commits that failed (the events stay in memory and are committed again).", labels: []),
        .init(
            name: "wiregate_journal_commit_duration_seconds", kind: .histogram,
            help: "How long a commit to the card took.", labels: []),
        .init(
            name: "wiregate_journal_durable", kind: .gauge,
            help: "1 when the journal is on the card, 0 when it fell back to memory.", labels: []),
        // Boards
        .init(
            name: "wiregate_board_up", kind: .gauge,
            help: "1 while the board's port is open and it talks (adopted: how many are), else 0.",
            labels: ["board"]),
        .init(
            name: "wiregate_board_last_line_timestamp_seconds", kind: .gauge,
            help: "When the board last sent a line (Unix time; 0: not since the start).", labels: ["board"]),
        .init(
            name: "wiregate_board_lines_total", kind: .counter,
            help:
                "Lines read, by result: published (decoded into events), malformed, overlong, noise (NUL, control, invalid UTF-8, a partial first line), annotation (# lines).",
            labels: ["board", "result"]),
        .init(
            name: "wiregate_board_opens_total", kind: .counter,
            help: "Times the board's port was opened.", labels: ["board"]),
        .init(
            name: "wiregate_board_commands_total", kind: .counter,
            help:
                "Commands for the board, by result: written, refused (not in its allow-list, or its siren while the alarm is armed), failed (offline, or the write failed).",
            labels: ["board", "result"]),
        // Backend
        .init(
            name: "wiregate_backend_requests_total", kind: .counter,
            help: "Requests to the backend, by status class (2xx, 3xx, 4xx, 5xx, error: no answer).",
            labels: ["endpoint", "status"]),
        .init(
            name: "wiregate_backend_last_success_timestamp_seconds", kind: .gauge,
            help: "When the backend last accepted a batch (Unix time; 0: not since the start).", labels: []),
        .init(
            name: "wiregate_backend_heartbeat_up", kind: .gauge,
            help: "1 when the last heartbeat was accepted by the backend, else 0.", labels: []),
        .init(
            name: "wiregate_backend_last_heartbeat_timestamp_seconds", kind: .gauge,
            help: "When the backend last accepted a heartbeat (Unix time; 0: not since the start).", labels: []),
        // Clock
        .init(
            name: "wiregate_clock_synchronised", kind: .gauge,
            help: "1 when the kernel says the clock is synchronised (adjtimex), else 0.", labels: []),
        .init(
            name: "wiregate_clock_unsynchronised_events_total", kind: .counter,
            help: "Events recorded while the clock was not synchronised.", labels: []),
        // Alarm
        .init(
            name: "wiregate_alarm_state", kind: .gauge,
            help: "1 for the alarm panel's state now, 0 for the others.", labels: ["state"]),
        .init(
            name: "wiregate_alarm_triggers_total", kind: .counter,
            help: "Times the alarm was triggered, by the zone that triggered it.", labels: ["zone"]),
        .init(
            name: "wiregate_alarm_sirens_sounding", kind: .gauge,
            help: "1 while the alarm's sirens are told to sound, else 0.", labels: []),
        // Process
        .init(
            name: "process_cpu_seconds_total", kind: .counter,
            help: "Total user and system CPU time spent in seconds.", labels: []),
        .init(
            name: "process_resident_memory_bytes", kind: .gauge, help: "Resident memory size in bytes.",
            labels: []),
        .init(
            name: "process_virtual_memory_bytes", kind: .gauge, help: "Virtual memory size in bytes.",
            labels: []),
        .init(
            name: "process_open_fds", kind: .gauge, help: "Number of open file descriptors.", labels: []),
        .init(
            name: "process_max_fds", kind: .gauge, help: "Maximum number of open file descriptors.", labels: []),
        .init(
            name: "process_start_time_seconds", kind: .gauge,
            help: "Start time of the process since unix epoch in seconds.", labels: []),
        .init(
            name: "wiregate_build_info", kind: .gauge, help: "Always 1; the version in a label.",
            labels: ["version"])
    ]

    /// The help text of `name`; empty for a name not in the catalog (a mistake the tests catch).
    static let help: [String: String] = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.help) })
}
