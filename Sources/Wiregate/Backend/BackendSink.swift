import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import Synchronization
import WiregateCore

/// The second sink over the journal: uploads events to the house's Django backend
/// (`POST <url>/api/gateway/events/`, see deploy/django) from its own cursor.
///
/// Critical events go in batches of their own, first. A batch is retried as it is (same ids,
/// the backend's idempotency absorbs a repeat) until the backend stores it: a 2xx whose answer
/// accounts for every event (see `UploadVerdict`). 408, 429 (honouring Retry-After), 5xx,
/// timeouts and network errors back off, capped, with jitter: no busy retrying while the
/// internet is down. A configuration problem (a redirect, 401, 403, 404, a 200 from a login page)
/// stops the sink with a loud error and backs off the same way: nothing is quarantined for it.
/// 413 halves the batch (and the batches after it); 400, 422 and 409 halve it until the bad event
/// is alone, which alone goes to the quarantine: its neighbours still arrive.
public final class BackendSink: Service, Sendable {
    /// The sink's running totals since it was made.
    public struct Counters: Sendable, Equatable {
        /// Events the backend stored (a 2xx that accounts for them all).
        public var uploaded = 0
        /// Requests the backend stored; the halves of a split batch count one each.
        public var batches = 0
        /// Answers that meant trying the same batch again: 408, 429, 5xx, a timeout, no answer.
        public var retries = 0
        /// Events the backend refused for good (400, 422, 409, alone), moved to the quarantine.
        public var quarantined = 0
        /// Answers that said the sink is set up wrong (see `UploadVerdict.misconfigured`).
        public var misconfigured = 0
        /// Whether the last request reached the backend and was answered 2xx.
        public var reachable = false
    }

    private let settings: GatewayConfig.Backend
    private let gatewayID: String
    private let token: String
    private let outbox: any OutboxReader
    /// Where `backend.json` goes: beside the journal.
    private let stateDirectory: String
    private let logger: Logger
    private let metrics: BackendMetrics
    private let counterState = Mutex(Counters())

    /// The journal's name for this sink.
    public static let sinkName = "backend"

    /// What `wiregate status` shows of the backend: written to `backend.json` beside the journal
    /// when reachability changes (not per batch: the SD card).
    public struct State: Codable, Sendable, Equatable {
        /// Whether the backend was taking the uploads, as of `since`.
        public var reachable: Bool
        /// When `reachable` last changed, by the gateway's wall clock (it may be unsynchronised).
        public var since: Date
        /// Why the last attempt failed, while unreachable.
        public var problem: String?

        /// The file's name in the state directory, beside the journal.
        public static let fileName = "backend.json"

        /// Reads what the sink last wrote, for `wiregate status`.
        /// - Parameter directory: the journal's directory, where the sink writes the file.
        /// - Returns: the state as written; a stopped sink leaves its last one.
        /// - Throws: Foundation's file error when the file is missing or unreadable; `DecodingError` when
        ///   it is not a state this version can read.
        public static func read(directory: String) throws -> State {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(
                State.self, from: Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(fileName)))
        }

        func write(directory: String) throws {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            try encoder.encode(self).write(
                to: URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName), options: .atomic)
        }
    }

    private func record(reachable: Bool, problem: String?) {
        do {
            try State(reachable: reachable, since: Date(), problem: problem).write(directory: stateDirectory)
        } catch {
            logger.debug("cannot write backend.json", metadata: ["error": "\(error)"])
        }
    }

    /// - Parameters:
    ///   - config: a validated config with a `backend:` section.
    ///   - token: the backend's API token, never logged.
    ///   - outbox: this sink's reader of the journal (`Journal.reader(for: BackendSink.sinkName)`).
    ///   - stateDirectory: where `backend.json` is written for `wiregate status` (the journal's directory).
    ///   - metrics: where the requests' answers are counted.
    public init(
        config: GatewayConfig, token: String, outbox: any OutboxReader, stateDirectory: String,
        metrics: BackendMetrics = GatewayMetrics.none.backend, logger: Logger
    ) {
        self.metrics = metrics
        precondition(config.backend != nil, "no backend in the config")
        settings = config.backend!
        gatewayID = config.gateway.id
        self.token = token
        self.outbox = outbox
        self.stateDirectory = stateDirectory
        var logger = logger
        logger[metadataKey: "sink"] = "backend"
        self.logger = logger
    }

    /// A snapshot of the totals, read from any thread.
    public var counters: Counters { counterState.withLock { $0 } }

    /// Uploads from the journal until graceful shutdown, then closes the HTTP client; never throws.
    public func run() async throws {
        let client = Self.makeClient(settings)
        await cancelWhenGracefulShutdown {
            await self.upload(with: client)
        }
        try? await client.shutdown()
    }

    /// An HTTP client for the backend as `backend:` says: its CA, its timeout, no redirect
    /// followed. The event upload and the heartbeat each have their own (a heartbeat never
    /// waits behind a batch on the same connection).
    public static func makeClient(_ settings: GatewayConfig.Backend) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile {
            tls.trustRoots = .file(caFile)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(
            connect: .seconds(10), read: .nanoseconds(Int64(settings.timeout.components.seconds) * 1_000_000_000))
        configuration.decompression = .disabled
        // Never followed: a POST redirected to a login or captive-portal page becomes a GET answered
        // 200, and an http -> https redirect is the config's to fix. The 3xx itself is the answer.
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Drives the upload's state machine: reads batches from the journal, sends what it says,
    /// and performs what each answer leads to.
    private func upload(with client: HTTPClient) async {
        var machine = UploadStateMachine<JournaledEvent>(
            batchSize: settings.batchSize, compress: settings.compress,
            retryMax: settings.retryMax, maxRate: settings.maxRate, start: .now)
        // What was journaled before the backend was last reached is a replay (the `replayed` field).
        var liveFrom = await outbox.destinationConnected()
        while !Task.isCancelled {
            guard let batch = await shapedBatch(machine) else { return }
            machine.begin(batch)
            while let part = machine.part, !Task.isCancelled {
                // The same ids until it is stored or refused; `replayed` turns true once the backend was
                // unreachable in between (the backend keeps the first copy of an id, whatever its flags).
                let body = Self.body(gateway: gatewayID, part, liveFrom: liveFrom)
                let gzipped = machine.compress ? Gzip.compress(body) : nil
                let (verdict, acceptsGzip) = await post(
                    gzipped ?? body, gzipped: gzipped != nil, count: part.count, with: client)
                // A 415 to a gzipped body is answered by the same part, plain: nothing to count.
                if !(gzipped != nil && acceptsGzip == false) { count(verdict) }
                for action in machine.answered(verdict, acceptsGzip: acceptsGzip, sentGzipped: gzipped != nil) {
                    switch action {
                    case .acknowledge(let events):
                        await outbox.acknowledge(events)
                        counterState.withLock {
                            $0.uploaded += events.count
                            $0.batches += 1
                            $0.reachable = true
                        }
                    case .quarantine(let events, let status, let response):
                        logger.error(
                            "the backend refused an event for good: quarantined, going on",
                            metadata: [
                                "status": "\(status)", "seq": "\(events[0].seq)", "board": "\(events[0].event.board)",
                                "response": "\(response.prefix(200))"
                            ])
                        await outbox.quarantine(events, status: status, response: response)
                        counterState.withLock { $0.quarantined += events.count }
                    case .reachable(let again):
                        if again { logger.notice("backend reachable again", metadata: ["url": "\(settings.url)"]) }
                        liveFrom = await outbox.destinationConnected()
                        record(reachable: true, problem: nil)
                    case .unreachable(let reason, misconfigured: false):
                        // What is appended while the backend cannot be reached waits for it: a replay,
                        // and so is what is in hand now, sent again with `replayed` once it is back.
                        liveFrom = .max
                        // Once per kind of trouble, not once per attempt while the internet is down.
                        logger.warning(
                            "backend upload failed, will retry",
                            metadata: ["reason": "\(reason)", "url": "\(settings.url)"])
                        record(reachable: false, problem: reason)
                    case .unreachable(let reason, misconfigured: true):
                        liveFrom = .max
                        logger.error(
                            "backend upload stopped: the backend or the way to it is set up wrong; retrying until fixed",
                            metadata: [
                                "reason": "\(reason)", "url": "\(settings.url)"
                            ])
                        record(reachable: false, problem: reason)
                    case .gzip(let accepted):
                        logger.info("backend \(accepted ? "accepts" : "does not accept") gzip bodies")
                    case .smallerBatches(let limit):
                        logger.warning(
                            "the backend refuses batches this large (413): smaller ones from now on",
                            metadata: [
                                "batch_size": "\(limit)"
                            ])
                    case .wait(let delay):
                        do { try await Task.sleep(for: delay) } catch { return }
                    }
                }
            }
            if let next = machine.batchDone(count: batch.count, now: .now) {
                // Paced: a backlog drains at max_rate, whatever the uplink could take.
                do { try await Task.sleep(until: next) } catch { return }
            }
        }
    }

    /// The next batch from the journal as the machine shapes it (critical alone, live telemetry
    /// gathered for `linger`); what is not in it goes back. Nil when the journal has closed.
    private func shapedBatch(_ machine: UploadStateMachine<JournaledEvent>) async -> [JournaledEvent]? {
        var batch = await outbox.next(max: machine.batchLimit)
        guard !batch.isEmpty else { return nil }
        var lingered = false
        while true {
            switch machine.shape(batch.map(\.event.eventClass), lingered: lingered) {
            case .send(let count):
                if count < batch.count { await outbox.putBack(Array(batch[count...])) }
                return Array(batch[..<count])
            case .linger:
                await outbox.putBack(batch)
                do { try await Task.sleep(for: Self.linger) } catch { return nil }
                batch = await outbox.next(max: machine.batchLimit)
                guard !batch.isEmpty else { return nil }
                lingered = true
            }
        }
    }

    /// The counters an answer moves (what it leads to is the machine's).
    private func count(_ verdict: UploadVerdict) {
        counterState.withLock { counters in
            switch verdict {
            case .stored, .tooLarge, .refused: break  // reachable is set with the acknowledgement
            case .retry:
                counters.retries += 1
                counters.reachable = false
            case .misconfigured:
                counters.misconfigured += 1
                counters.reachable = false
            }
        }
    }

    /// How long live telemetry is gathered before an upload that is not a full batch.
    static let linger = Duration.seconds(1)

    /// - Returns: what came of it, and whether the backend takes gzip bodies when its answer says
    ///   (nil: no answer, or nothing said).
    private func post(_ body: ByteBuffer, gzipped: Bool, count: Int, with client: HTTPClient) async -> (
        UploadVerdict, acceptsGzip: Bool?
    ) {
        var request = HTTPClientRequest(url: settings.url + "/api/gateway/events/")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Token \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if gzipped { request.headers.add(name: "Content-Encoding", value: "gzip") }
        request.body = .bytes(body)
        let deadline = NIODeadline.now() + .nanoseconds(Int64(settings.timeout.components.seconds) * 1_000_000_000)
        do {
            let response = try await client.execute(request, deadline: deadline)
            let answer = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            let status = Int(response.status.code)
            metrics.request(.events, status: status)
            if (200..<300).contains(status) { metrics.lastSuccess.record(Date().timeIntervalSince1970) }
            var accepts: Bool? =
                response.headers[canonicalForm: "Accept-Encoding"].contains { $0.lowercased() == "gzip" } ? true : nil
            if gzipped && status == 415 { accepts = false }
            return (
                UploadVerdict(
                    status: status, retryAfter: response.headers.first(name: "Retry-After"), answer: answer,
                    batchCount: count),
                accepts
            )
        } catch {
            metrics.request(.events, status: nil)
            return (.retry(reason: Self.describe(error), after: nil), nil)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout { return "timed out" }
            if error == .connectTimeout { return "connect timed out" }
        }
        return "\(error)"
    }

    /// The batch as the backend's contract has it (deploy/django's `wiregate_events`): `id` is `<gateway>:<seq>`.
    static func body(gateway: String, _ batch: [JournaledEvent], liveFrom: Int64) -> ByteBuffer {
        struct Body: Encodable {
            var gateway: String
            var events: [Item]
        }
        struct Item: Encodable {
            var id: String
            var seq: Int64
            var board: String
            var topic: String
            var payload: String
            var `class`: String
            var ts: String
            // The backend's field name, as its API documents it.
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var clock_synced: Bool
            var replayed: Bool
            var boot: String?
            var mono: Int64?
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var time_quality: String
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var ts_corrected: String?
        }
        var timestamps = TimestampFormatter()
        var corrected = TimestampFormatter()
        let body = Body(
            gateway: gateway,
            events: batch.map { item in
                Item(
                    id: "\(gateway):\(item.seq)", seq: item.seq, board: item.event.board, topic: item.event.topic,
                    payload: item.event.payload, class: item.event.eventClass.rawValue,
                    ts: timestamps.string(from: item.event.receivedAt), clock_synced: item.clockSynced,
                    replayed: item.seq < liveFrom, boot: item.boot, mono: item.event.receivedMonotonic,
                    time_quality: item.time.quality.rawValue,
                    ts_corrected: item.correctedAt.map { corrected.string(from: $0) })
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return ByteBuffer(bytes: (try? encoder.encode(body)) ?? Data("{}".utf8))
    }
}
