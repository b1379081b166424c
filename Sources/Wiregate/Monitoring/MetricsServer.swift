import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import WiregateCore

/// `/metrics` over HTTP/1.1 (NIO's server pipeline), on the address `metrics.listen` names and
/// nowhere else: `GET` and `HEAD` of `/metrics` only, everything else answered 405 or 404.
///
/// Before an exposition its `collect` closure sets the gauges that are read rather than
/// counted (backlogs, boards up, the alarm's state): one collection at a time, shared by the
/// scrapes that come while it runs, and reused for a second, so that a client scraping in a
/// loop costs the journal one collection a second at most. Connections are bounded and timed
/// out, so a stuck or hostile client costs a file descriptor for a few seconds.
public final class MetricsServer: Service, Sendable {
    private let host: String
    private let port: Int
    private let registry: MetricsRegistry
    private let collect: @Sendable () async -> Void
    private let logger: Logger
    private let group: any EventLoopGroup

    /// Connections served at once; past it, new ones are closed at once.
    static let maxConnections = 16
    /// How long a connection may stay open, idle or not (a scrape takes milliseconds).
    static let connectionTimeout = Duration.seconds(5)
    /// How long a collection is reused.
    static let collectionReuse = Duration.seconds(1)
    private let expositions = Expositions()

    /// - Parameters:
    ///   - settings: `metrics:` (address and port).
    ///   - registry: whose exposition is served.
    ///   - collect: sets the read gauges; called before each exposition.
    ///   - logger: where the listening address and failures go.
    public init(
        settings: GatewayConfig.Metrics, registry: MetricsRegistry,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger, collect: @escaping @Sendable () async -> Void
    ) {
        host = settings.host
        port = settings.port
        self.registry = registry
        self.collect = collect
        self.logger = logger
        self.group = group
    }

    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// Listens until graceful shutdown. A port that cannot be bound is logged as an error and
    /// the gateway runs on without metrics: the alarm and the data path do not depend on them.
    public func run() async {
        await listen()
        // Also after a failed bind or accept loop: a service that returns ends its whole
        // ServiceGroup, and the gateway must not stop for want of metrics.
        try? await gracefulShutdown()
    }

    private func listen() async {
        let server: NIOAsyncChannel<Connection, Never>
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            logger.error(
                "cannot listen for metrics scrapes: /metrics is off",
                metadata: ["listen": "\(host):\(port)", "error": "\(error)"])
            return
        }
        logger.info(
            "serving metrics", metadata: ["url": "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics"])
        let open = ConnectionCount()
        await cancelWhenGracefulShutdown {
            try? await withThrowingDiscardingTaskGroup { connections in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        guard open.enter(limit: Self.maxConnections) else {
                            try? await connection.channel.close()
                            continue
                        }
                        connections.addTask {
                            defer { open.leave() }
                            await self.serve(connection)
                        }
                    }
                }
            }
        }
    }

    private func serve(_ connection: Connection) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await connection.executeThenClose { inbound, outbound in
                    var request: HTTPRequestHead?
                    for try await part in inbound {
                        switch part {
                        case .head(let head): request = head
                        case .body: break  // a GET has none; whatever comes is ignored
                        case .end:
                            guard let head = request else { continue }
                            request = nil
                            try await self.respond(to: head, outbound)
                            if !head.isKeepAlive { return }
                        }
                    }
                }
            }
            group.addTask { try? await Task.sleep(for: Self.connectionTimeout) }
            // Whichever ends first: the client went, or its time is up.
            await group.next()
            group.cancelAll()
        }
    }

    private func respond(
        to head: HTTPRequestHead, _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        var headers = HTTPHeaders()
        var body = ByteBuffer()
        if path != "/metrics" {
            status = .notFound
            body.writeString("not found: the metrics are at /metrics\n")
        } else if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
            body.writeString("only GET and HEAD\n")
        } else {
            status = .ok
            body.writeBytes(await expositions.current(collect: collect, registry: registry))
        }
        headers.add(
            name: "Content-Type",
            value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
        if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(body))) }
        try await outbound.write(.end(nil))
    }
}

/// The last exposition and the collection under way: scrapes share them.
private actor Expositions {
    private var last: (at: ContinuousClock.Instant, body: [UInt8])?
    private var running: Task<[UInt8], Never>?

    func current(collect: @escaping @Sendable () async -> Void, registry: MetricsRegistry) async -> [UInt8] {
        if let last, ContinuousClock.now - last.at < MetricsServer.collectionReuse { return last.body }
        if let running { return await running.value }
        let task = Task {
            await collect()
            return registry.exposition()
        }
        running = task
        let body = await task.value
        running = nil
        last = (.now, body)
        return body
    }
}

/// The connections open now, bounded.
private final class ConnectionCount: Sendable {
    private let count = Mutex(0)

    func enter(limit: Int) -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}
