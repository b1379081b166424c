extension GatewayConfig {
    /// `metrics:`: the Prometheus endpoint.
    public struct Metrics: Sendable, Equatable {
        /// The address to listen on: an IPv4 or IPv6 literal (`localhost` means 127.0.0.1).
        public var host: String
        /// The TCP port.
        public var port: Int
    }

    /// `metrics.listen`'s default port: 9723, marked free in the Prometheus project's
    /// default-port allocations (wiki "Default port allocations", exporters from 9100).
    public static let defaultMetricsPort = 9723

    static func metrics(_ section: ConfigMapping) throws(ConfigError) -> Metrics {
        try section.rejectUnknownKeys(["listen", "allow_remote"])
        let allowRemote = try section.optional("allow_remote")?.bool() ?? false
        let listenNode = try section.required("listen")
        let text = try listenNode.nonEmptyString()
        guard let (host, port) = Self.hostAndPort(text) else {
            throw listenNode.error(
                "must be an address and a port, such as 127.0.0.1:\(defaultMetricsPort) or [::1]:\(defaultMetricsPort)"
            )
        }
        guard Self.isIPLiteral(host) else {
            throw listenNode.error(
                "'\(host)' is not an IP address: write 127.0.0.1 or ::1 (a name could resolve elsewhere)")
        }
        if !allowRemote && !Self.isLoopback(host) {
            throw listenNode.error(
                "\(host) is not a loopback address: /metrics has no authentication and no TLS. Scrape it from a "
                    + "Prometheus on the Pi, or through an SSH tunnel; or set allow_remote: true on a network you trust"
            )
        }
        return Metrics(host: host, port: port)
    }

    /// `host:port`, `[v6]:port` or `:port` (loopback); nil when it is none of these.
    static func hostAndPort(_ text: String) -> (String, Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon].isEmpty ? "127.0.0.1" : text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65535).contains(port), !host.isEmpty else { return nil }
        return (host == "localhost" ? "127.0.0.1" : String(host), port)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil && !$0.isEmpty }) { return true }
        return host.contains(":") && host.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    static func isLoopback(_ host: String) -> Bool {
        host.hasPrefix("127.") || host == "::1" || host == "0:0:0:0:0:0:0:1"
    }
}
