import Foundation

/// The house broker as `deploy/mosquitto` configures it (TLS listener, password file, ACL),
/// on a free loopback port, with certificates made by `deploy/mosquitto/make-certs.sh` in a
/// temporary directory. Only the paths, the listener's address and `user root` differ
/// from the deployed file.
public final class HouseBroker: Sendable {
    /// The repository this test kit was built from.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized
    /// The house broker's deploy config (TLS, ACL, password file).
    public static let deployDirectory = repositoryRoot.appendingPathComponent("deploy/mosquitto")

    /// The certificates: `ca.crt`, `server.crt`/`.key`, and `<client>.crt`/`.key` for `wiregate` and `house`.
    public let certificates: URL
    /// The private mosquitto running that config.
    public let broker: MosquittoBroker
    /// The passwords in the broker's password file.
    public static let passwords = ["wiregate": "gateway-secret", "house": "house-secret"]

    /// Its TLS port on loopback.
    public var port: Int { broker.port }

    /// - Parameters:
    ///   - serverCertificate: a certificate (and its key) to use instead of the script's `server.crt`.
    public init(certificates: URL? = nil, serverCertificate: (certificate: URL, key: URL)? = nil) throws {
        let certificates = try certificates ?? Self.makeCertificates()
        self.certificates = certificates
        let deployed = try String(
            contentsOf: Self.deployDirectory.appendingPathComponent("mosquitto.conf"), encoding: .utf8)
        let acl = Self.deployDirectory.appendingPathComponent("acl")
        broker = try MosquittoBroker { port, directory in
            let passwd = directory.appendingPathComponent("passwd").path
            for (index, (user, password)) in Self.passwords.sorted(by: { $0.key < $1.key }).enumerated() {
                try Self.succeed(
                    "/usr/bin/mosquitto_passwd", (index == 0 ? ["-c"] : []) + ["-b", passwd, user, password])
            }
            try FileManager.default.copyItem(at: acl, to: directory.appendingPathComponent("acl"))
            var config =
                deployed
                .replacingOccurrences(of: "/mosquitto/config/certs/", with: certificates.path + "/")
                .replacingOccurrences(of: "/mosquitto/config/", with: directory.path + "/")
                .replacingOccurrences(of: "/mosquitto/data/", with: directory.path + "/")
                .replacingOccurrences(of: "listener 8883", with: "listener \(port) 127.0.0.1")
                .replacingOccurrences(of: "log_dest stdout", with: "log_dest file \(directory.path)/mosquitto.log")
            if let serverCertificate {
                config =
                    config
                    .replacingOccurrences(
                        of: certificates.path + "/server.crt", with: serverCertificate.certificate.path
                    )
                    .replacingOccurrences(of: certificates.path + "/server.key", with: serverCertificate.key.path)
            }
            // Running as root in tests; mosquitto would otherwise switch to its own user.
            return config + "\nuser root\n"
        }
    }

    /// Runs the deploy script: a CA, a server certificate for 127.0.0.1 and broker.house.lan,
    /// client certificates for `wiregate` and `house`.
    public static func makeCertificates() throws -> URL {
        let directory = URL(fileURLWithPath: try makeTemporaryDirectory("certs"))
        try succeed(
            deployDirectory.appendingPathComponent("make-certs.sh").path,
            [
                "-o", directory.path, "--ip", "127.0.0.1", "--dns", "broker.house.lan",
                "--client", "wiregate", "--client", "house", "--days", "30"
            ])
        return directory
    }

    /// Runs a command; throws with its output unless it exits 0.
    @discardableResult
    public static func succeed(_ path: String, _ arguments: [String]) throws -> String {
        let result = try ChildProcess.run(path, arguments, mergingStandardError: true)
        guard result.status == 0 else {
            throw TestKitError("\(path) \(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
        }
        return result.output
    }

    /// mosquitto_sub/pub options for `user` with its certificate and password.
    public func clientOptions(user: String) -> [String] {
        [
            "--cafile", certificates.appendingPathComponent("ca.crt").path,
            "--cert", certificates.appendingPathComponent("\(user).crt").path,
            "--key", certificates.appendingPathComponent("\(user).key").path,
            "-u", user, "-P", Self.passwords[user] ?? ""
        ]
    }
}
