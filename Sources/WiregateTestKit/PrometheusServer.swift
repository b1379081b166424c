import Foundation
import Glibc

/// A private Prometheus (Debian's `prometheus`) on a free loopback port, scraping one target
/// every second with wiregate's alert rules evaluated every second, its storage in a temporary
/// directory. Stopped (by its pid) when released.
public final class PrometheusServer: Sendable {
    /// The port its HTTP API listens on.
    public let port: Int
    private let process: ChildProcess

    /// The rules the package ships, evaluated by this server.
    public static let rulesFile = HouseBroker.repositoryRoot.appendingPathComponent(
        "deploy/prometheus/wiregate-rules.yml")

    /// Starts it scraping `target` (`host:port`) as the job `wiregate`.
    public init(scraping target: String) throws {
        port = try freeLoopbackPort()
        let directory = try makeTemporaryDirectory("prometheus")
        try FileManager.default.copyItem(atPath: Self.rulesFile.path, toPath: directory + "/wiregate-rules.yml")
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s }
        rule_files: [wiregate-rules.yml]
        scrape_configs:
          - job_name: wiregate
            static_configs: [{ targets: ["\(target)"] }]
        """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let log = open(directory + "/prometheus.log", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(log) }
        process = try ChildProcess(
            "/usr/bin/prometheus",
            [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)"
            ], stdout: log, stderr: log)
    }

    deinit { process.terminate() }

    /// An instant query's result: each series' labels and value; nil when the API does not answer.
    public func query(_ promQL: String) async -> [(labels: [String: String], value: Double)]? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: allowed) ?? promQL
        guard let answer = await httpRequest(port: port, path: "/api/v1/query?query=\(encoded)"),
            answer.status == 200,
            let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { return nil }
        return result.compactMap { series in
            guard let labels = series["metric"] as? [String: String], let value = series["value"] as? [Any],
                value.count == 2, let text = value[1] as? String, let number = Double(text)
            else { return nil }
            return (labels, number)
        }
    }
}
