import Foundation
import Glibc

/// One HTTP/1.1 answer, as read off the socket.
public struct HTTPAnswer: Sendable {
    /// The status code.
    public var status: Int
    /// The header lines, names lower-cased.
    public var headers: [String: String]
    /// The body.
    public var body: String
}

/// Sends one request (`Connection: close`) over a plain socket to `host:port`, any method: what a
/// scraper or a hostile client sends, without a client library that would refuse odd requests.
///
/// The socket calls block, so they run on a thread of their own: on the concurrency pool (two
/// threads on two cores) a blocked read would stall every other test's gateway in the process.
/// - Parameters:
///   - headers: more header lines (`Authorization`, `Content-Type`).
///   - body: the request body, sent with its `Content-Length`; nil for none.
/// - Returns: the answer; nil when nothing listens there or the answer is not HTTP.
public func httpRequest(
    host: String = "127.0.0.1", port: Int, method: String = "GET", path: String = "/metrics",
    headers: [String: String] = [:], body: String? = nil
) async -> HTTPAnswer? {
    await withCheckedContinuation { continuation in
        Thread {
            continuation.resume(
                returning: blockingHTTPRequest(
                    host: host, port: port, method: method, path: path, headers: headers, body: body))
        }.start()
    }
}

private func blockingHTTPRequest(
    host: String, port: Int, method: String, path: String, headers extra: [String: String], body: String?
) -> HTTPAnswer? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return nil }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
    for (name, value) in extra.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
    if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
    let request = Array((head + "\r\n" + (body ?? "")).utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        return nil
    }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return nil }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1."),
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var content = String(text[split.upperBound...])
    if headers["transfer-encoding"]?.lowercased() == "chunked" { content = dechunked(content) }
    return HTTPAnswer(status: status, headers: headers, body: content)
}

/// A chunked body's content: each `size CRLF data CRLF`, up to the zero-sized chunk.
private func dechunked(_ text: String) -> String {
    var bytes = Array(text.utf8)[...]
    var out: [UInt8] = []
    while let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")),
        let size = Int(
            String(String(decoding: bytes[bytes.startIndex..<lineEnd], as: UTF8.self).prefix { $0 != ";" }), radix: 16),
        size > 0, lineEnd + 2 + size <= bytes.endIndex
    {
        out += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
        bytes = bytes[min(bytes.endIndex, lineEnd + 2 + size + 2)...]
    }
    return String(decoding: out, as: UTF8.self)
}

/// A Prometheus text exposition, parsed: what a test compares with what it did.
public struct Exposition: Sendable {
    /// One sample: a name, its labels and its value.
    public struct Sample: Sendable {
        /// The metric's name (a histogram's `_bucket`, `_sum`, `_count` as written).
        public var name: String
        /// The labels.
        public var labels: [String: String]
        /// The value.
        public var value: Double
    }

    /// Every sample, in order.
    public var samples: [Sample] = []
    /// `# TYPE` per metric.
    public var types: [String: String] = [:]
    /// `# HELP` per metric.
    public var help: [String: String] = [:]

    /// Parses the text format 0.0.4 (label values with `\\`, `\"` and `\n` escapes).
    public init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                if parts.count == 2 { types[String(parts[0])] = String(parts[1]) }
                continue
            }
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                if parts.count == 2 { help[String(parts[0])] = String(parts[1]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            if let sample = Self.sample(Substring(line)) { samples.append(sample) }
        }
    }

    private static func sample(_ line: Substring) -> Sample? {
        var labels: [String: String] = [:]
        let name: Substring
        var rest: Substring
        if let brace = line.firstIndex(of: "{") {
            name = line[..<brace]
            rest = line[line.index(after: brace)...]
            while let equals = rest.firstIndex(of: "=") {
                let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                rest = rest[rest.index(equals, offsetBy: 2)...]
                var value = ""
                var escaped = false
                var end = rest.startIndex
                for index in rest.indices {
                    let character = rest[index]
                    if escaped {
                        value.append(character == "n" ? "\n" : character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        end = index
                        break
                    } else {
                        value.append(character)
                    }
                }
                labels[key] = value
                rest = rest[rest.index(after: end)...]
                if rest.hasPrefix("}") { break }
            }
            guard let close = rest.firstIndex(of: "}") else { return nil }
            rest = rest[rest.index(after: close)...]
        } else {
            guard let space = line.firstIndex(of: " ") else { return nil }
            name = line[..<space]
            rest = line[space...]
        }
        guard let value = Double(rest.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        else { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }

    /// The value of the sample `name` whose labels include `labels`; nil when there is none.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && Self.matches($0, labels) }?.value
    }

    /// The sum over every sample `name` whose labels include `labels`.
    public func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { $0.name == name && Self.matches($0, labels) }.reduce(0) { $0 + $1.value }
    }

    private static func matches(_ sample: Sample, _ labels: [String: String]) -> Bool {
        labels.allSatisfy { key, value in sample.labels[key] == value }
    }
}
