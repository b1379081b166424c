import ArgumentParser
import Foundation
import Glibc
import Logging
import Wiregate
import WiregateCore
import WiregateTestKit

/// A backlog journaled while the backend was away, uploaded by the release daemon to the
/// Django app (gunicorn, 2 workers, over the private PostgreSQL that scripts/bench.sh starts):
/// events/s from the daemon's start until the database holds them all, with and without gzip.
struct UploadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upload")

    @Option(help: "Backlog size.")
    var events = 100_000

    func run() async throws {
        for compress in [false, true] {
            try await upload(compress: compress)
        }
    }

    func upload(compress: Bool) async throws {
        let state = try makeTemporaryDirectory("bench-upload")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker()
        let backend = try DjangoBackend(faults: ["plan": [String]()], gateway: "bench")
        let yaml =
            gatewayConfig(port: broker.port, state: state, boardPath: "/nonexistent") + """

                backend: { \(backend.configKeys), compress: \(compress) }
                """
        let config = try GatewayConfig.parse(yaml: yaml, file: "bench")
        do {
            let journal = try Journal(
                directory: state, settings: config.journal, sinks: [Journal.mqttSink, BackendSink.sinkName],
                logger: Logger(label: "bench"))
            let now = Date()
            for start in stride(from: 0, to: events, by: 1000) {
                await journal.append(
                    (start..<min(events, start + 1000)).map { n in backlogEvent(n, at: now)
                    })
            }
            await journal.flush()
        }
        try yaml.write(toFile: state + "/wiregate.yaml", atomically: true, encoding: .utf8)
        let start = ContinuousClock.now
        let daemon = try ChildProcess(
            wiregateBinary, ["run", "--config", state + "/wiregate.yaml"],
            environment: ["WIREGATE_BACKEND_TOKEN": backend.token])
        while (try? backend.count()) != events {
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = seconds(ContinuousClock.now - start)
        daemon.terminate()
        print(
            "upload: \(events) events in batches of 500, gzip \(compress ? "on" : "off") (\(backend.gzipRequests) of \(backend.requests) "
                + "requests compressed): \(String(format: "%.1f", elapsed)) s, \(format(Double(events) / elapsed)) events/s"
        )
    }
}
