import Foundation
import Glibc
import WiregateCore

// Reading a config and its secrets from files: here, beside the other I/O, so that WiregateCore
// parses text and does no file I/O of its own.
extension GatewayConfig {
    /// The gateway id this machine's host name gives (see `gatewayID(fromHostName:)`), read once:
    /// systemd's `ProtectHostname` freezes it for the daemon too. "wiregate" when the host has no
    /// usable name.
    public static let hostGatewayID: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "wiregate" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return gatewayID(fromHostName: String(decoding: bytes, as: UTF8.self)) ?? "wiregate"
    }()
    /// Reads, decodes and validates a config file.
    /// - Throws: `ConfigError` naming the file, line, key path and mistake.
    public static func load(path: String) throws(ConfigError) -> GatewayConfig {
        let result = loadReportingAll(path: path)
        guard let config = result.config else { throw result.problems[0] }
        return config
    }

    /// Reads, decodes and validates a config file, finding every mistake it can (see `parseReportingAll`).
    public static func loadReportingAll(path: String) -> ParseResult {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return ParseResult(
                problems: [
                    ConfigError(
                        file: path, line: nil, column: nil, path: "",
                        message: "cannot read the file: \(Self.reason(error))")
                ],
                files: [])
        }
        return parseReportingAll(yaml: text, file: path, defaultGatewayID: hostGatewayID)
    }

    /// The MQTT password: from `mqtt.password_file` when set, else from `WIREGATE_MQTT_PASSWORD`.
    ///
    /// Trailing newlines of the file are dropped (editors add one). Never logged.
    /// - Returns: nil when neither is set.
    /// - Throws: `ConfigError` when the file cannot be read or is empty.
    public func mqttPassword(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> String?
    {
        try Self.secret(
            file: mqtt.passwordFile, key: "mqtt.password_file", what: "password",
            variable: Self.passwordEnvironmentVariable, environment: environment)
    }

    /// The backend's API token: from `backend.token_file` when set, else from `WIREGATE_BACKEND_TOKEN`.
    /// - Returns: nil when there is no backend, or neither is set.
    public func backendToken(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> String?
    {
        guard let backend else { return nil }
        return try Self.secret(
            file: backend.tokenFile, key: "backend.token_file", what: "token",
            variable: Self.tokenEnvironmentVariable, environment: environment)
    }

    /// The secret files (password, token, TLS key) that users other than the owner and group can read:
    /// each as its config key and path, for a warning at start-up.
    public var secretFilesReadableByOthers: [(key: String, path: String)] {
        let files = [
            ("mqtt.password_file", mqtt.passwordFile), ("mqtt.tls.key_file", mqtt.tls?.keyFile),
            ("backend.token_file", backend?.tokenFile)
        ]
        return files.compactMap { key, path in
            guard let path else { return nil }
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IROTH != 0 else { return nil }
            return (key, path)
        }
    }

    /// A secret from its file (trailing newlines dropped: editors add one), else from the environment.
    static func secret(
        file: String?, key: String, what: String, variable: String,
        environment: [String: String]
    ) throws(ConfigError) -> String? {
        guard let file else { return environment[variable] }
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ConfigError(
                file: file, line: nil, column: nil, path: key,
                message: "cannot read the \(what) file: \(Self.reason(error))")
        }
        let secret = text.trimmingCharacters(in: .newlines)
        guard !secret.isEmpty else {
            throw ConfigError(file: file, line: nil, column: nil, path: key, message: "the \(what) file is empty")
        }
        return secret
    }

    /// A file error as an operator reads it ("no such file", "permission denied", strerror).
    public static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError,
            underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        if let error = error as? CocoaError, error.code == .fileReadNoSuchFile { return "no such file" }
        if let error = error as? CocoaError, error.code == .fileReadNoPermission { return "permission denied" }
        return error.localizedDescription
    }
}
