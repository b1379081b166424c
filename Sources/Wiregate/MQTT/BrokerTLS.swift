import COpenSSL
import Foundation
import Synchronization
import WiregateCore

/// The TLS context of the broker connection: an OpenSSL `SSL_CTX` that libmosquitto uses
/// as it is (`MOSQ_OPT_SSL_CTX` without its defaults).
///
/// Why not `mosquitto_tls_set`: libmosquitto checks the certificate's name against the
/// address it connects to only (no `server_name`), and reports every failure as "A TLS
/// error occurred". Here OpenSSL checks the name itself (`X509_VERIFY_PARAM`), and a verify
/// callback keeps the reason (expired, unknown CA, name mismatch) so that the log says it.
/// Verification is always on; there is no switch to turn it off.
final class BrokerTLS: Sendable {
    /// The `SSL_CTX *`, one reference of ours (libmosquitto takes its own).
    let context: TLSContextPointer
    private let settings: GatewayConfig.MQTT.TLS
    /// The name or address the broker's certificate must carry.
    let expectedName: String
    /// Why the last handshake's certificate check failed; set by `verifyCertificate` on the network thread.
    private let lastVerifyFailure = Mutex<String?>(nil)
    /// Whether the current attempt's handshake completed; set by `handshakeProgress`.
    private let handshakeDone = Atomic<Bool>(false)

    /// Loads the CA, the client certificate and key, and sets what the broker's certificate must satisfy.
    /// - Throws: `BrokerTLSError` naming the config key, the file and OpenSSL's reason.
    init(settings: GatewayConfig.MQTT.TLS, host: String) throws(BrokerTLSError) {
        self.settings = settings
        expectedName = settings.serverName ?? host
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw BrokerTLSError(
                key: "mqtt.tls", file: nil, reason: "cannot create a TLS context: \(Self.openSSLReason())")
        }
        context = TLSContextPointer(pointer: ctx)
        _ = wiregate_SSL_CTX_set_min_proto_version(ctx, wiregate_TLS1_2_VERSION())

        if let caFile = settings.caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw BrokerTLSError(
                    key: "mqtt.tls.ca_file", file: caFile,
                    reason: "cannot load the CA certificates: \(Self.openSSLReason())")
            }
        } else {
            SSL_CTX_set_default_verify_paths(ctx)
        }
        if let certFile = settings.certFile, let keyFile = settings.keyFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, certFile) == 1 else {
                throw BrokerTLSError(
                    key: "mqtt.tls.cert_file", file: certFile,
                    reason: "cannot load the certificate: \(Self.openSSLReason())")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
                let reason = Self.openSSLReason()
                throw BrokerTLSError(
                    key: "mqtt.tls.key_file", file: keyFile,
                    reason: reason == "key values mismatch"
                        ? "is not the key of \(certFile)" : "cannot load the key: \(reason)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw BrokerTLSError(key: "mqtt.tls.key_file", file: keyFile, reason: "is not the key of \(certFile)")
            }
        }

        // The name check is OpenSSL's, during the handshake: an address against the
        // certificate's IP entries, a name against its DNS entries.
        let parameters = SSL_CTX_get0_param(ctx)
        let nameSet =
            Self.isAddress(expectedName)
            ? X509_VERIFY_PARAM_set1_ip_asc(parameters, expectedName)
            : X509_VERIFY_PARAM_set1_host(parameters, expectedName, 0)
        guard nameSet == 1 else {
            throw BrokerTLSError(
                key: settings.serverName == nil ? "mqtt.host" : "mqtt.tls.server_name", file: nil,
                reason: "'\(expectedName)' is neither a host name nor an address")
        }
        X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verifyCertificate)
        SSL_CTX_set_info_callback(ctx, handshakeProgress)
        SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_CTX_free(context.pointer)
    }

    /// Problems of our own certificate that the broker will refuse it for, to say at start-up.
    var clientCertificateProblem: String? {
        guard let certFile = settings.certFile, let certificate = SSL_CTX_get0_certificate(context.pointer) else {
            return nil
        }
        if X509_cmp_current_time(X509_get0_notAfter(certificate)) < 0 {
            return
                "mqtt.tls.cert_file '\(certFile)': the certificate expired on \(Self.date(X509_get0_notAfter(certificate)))"
        }
        if X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0 {
            return
                "mqtt.tls.cert_file '\(certFile)': the certificate is valid only from \(Self.date(X509_get0_notBefore(certificate))) (is the clock right?)"
        }
        return nil
    }

    /// Forgets the last verify failure; called before each connection attempt.
    func resetFailure() {
        lastVerifyFailure.withLock { $0 = nil }
        handshakeDone.store(false, ordering: .relaxed)
    }

    /// Turns what a failed connection left behind into one sentence that names the file and the reason.
    /// - Parameters:
    ///   - libraryError: the first OpenSSL error libmosquitto logged during the attempt, if any.
    ///   - beforeCONNACK: whether the connection ended before the broker answered CONNECT.
    func describeFailure(libraryError: String?, beforeCONNACK: Bool) -> String? {
        if let verify = lastVerifyFailure.withLock({ $0 }) { return verify }
        guard let libraryError else {
            guard beforeCONNACK && handshakeDone.load(ordering: .relaxed) else { return nil }
            // TLS 1.3: the broker checks our certificate after the handshake, then sends an alert and
            // closes; when our CONNECT meets the closed socket, the reset discards that alert unread.
            let silence = "the broker closed the connection after the TLS handshake without a word"
            guard let certFile = settings.certFile else {
                return
                    "\(silence): it probably requires a client certificate (set mqtt.tls.cert_file and mqtt.tls.key_file)"
            }
            return
                "\(silence): it probably refused this gateway's certificate mqtt.tls.cert_file '\(certFile)' (expired, or not signed by a CA it trusts)"
        }
        let reason = Self.reason(inLibraryMessage: libraryError)
        // TLS 1.2 brokers answer a missing client certificate with a plain handshake failure.
        if reason == "tlsv13 alert certificate required"
            || (reason == "sslv3 alert handshake failure" && settings.certFile == nil)
        {
            return "the broker requires a client certificate (\(reason)): set mqtt.tls.cert_file and mqtt.tls.key_file"
        }
        switch reason {
        case "tlsv1 alert unknown ca", "sslv3 alert bad certificate", "sslv3 alert certificate expired",
            "sslv3 alert certificate revoked", "tlsv1 alert decrypt error", "sslv3 alert certificate unknown",
            "tlsv1 alert access denied":
            return
                "the broker refused this gateway's certificate mqtt.tls.cert_file '\(settings.certFile ?? "none")': \(reason)"
        case "wrong version number", "packet length too long", "record layer failure":
            return "the broker does not speak TLS on this port (\(reason)): is it a plain MQTT listener, such as 1883?"
        case "unexpected eof while reading":
            return
                "the broker closed the connection during the TLS handshake (\(reason)): it does not speak TLS on this port "
                + "(a plain MQTT listener, such as 1883?), or it is out of connections"
        case "unsupported protocol", "tlsv1 alert protocol version":
            return "the broker offers no TLS version this gateway accepts (1.2 or later): \(reason)"
        default:
            return "TLS: \(reason)"
        }
    }

    fileprivate func handshakeCompleted() {
        handshakeDone.store(true, ordering: .relaxed)
    }

    /// Records why OpenSSL rejected the broker's certificate. Called on the network thread.
    fileprivate func recordVerifyFailure(code: Int32, depth: Int32, subject: String) {
        let what = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
        let source =
            settings.caFile.map { "mqtt.tls.ca_file '\($0)'" }
            ?? "the system's CA certificates (set mqtt.tls.ca_file for a private CA)"
        let message: String
        switch code {
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            message =
                "the broker's certificate (\(subject)) is not for '\(expectedName)': \(what); "
                + (settings.serverName == nil
                    ? "connect to a name or address it lists, or set mqtt.tls.server_name to a name it carries"
                    : "mqtt.tls.server_name must be a name in its subjectAltName")
        case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID:
            message =
                "the broker's certificate \(depth == 0 ? "" : "chain ")(\(subject)) \(what) (is the clock right? the Pi has no clock battery)"
        default:
            message = "the broker's certificate (\(subject)) is not trusted by \(source): \(what)"
        }
        lastVerifyFailure.withLock { $0 = message }
    }

    /// The reason part of an OpenSSL error line, as libmosquitto logs it:
    /// "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed" → "certificate verify failed".
    static func reason(inLibraryMessage message: String) -> String {
        guard let range = message.range(of: "error:") else { return message }
        let fields = message[range.upperBound...].split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false)
        return fields.count >= 4 ? String(fields[3...].joined(separator: ":")) : message
    }

    /// Whether `text` is an IPv4 or IPv6 address rather than a host name.
    private static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    private static func openSSLReason() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            if let text = ERR_reason_error_string(code) { reasons.append(String(cString: text)) }
        }
        ERR_clear_error()
        return reasons.last ?? (errno != 0 ? String(cString: strerror(errno)) : "unknown error")
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        var moment = tm()
        guard let time, ASN1_TIME_to_tm(time, &moment) == 1 else { return "an unreadable date" }
        return String(format: "%04d-%02d-%02d", moment.tm_year + 1900, moment.tm_mon + 1, moment.tm_mday)
    }
}

/// The `SSL_CTX *`. OpenSSL locks a context's shared state itself; after `BrokerTLS.init`
/// it is only read (by libmosquitto's `SSL_new` on the network thread).
struct TLSContextPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// TLS settings that cannot be used, found at start-up.
public struct BrokerTLSError: Error, CustomStringConvertible {
    /// The config key at fault, such as `mqtt.tls.ca_file`.
    public var key: String
    /// The file that key names; nil when the fault is not in a file (the TLS context, the expected name).
    public var file: String?
    /// What is wrong, in OpenSSL's words when it gave one.
    public var reason: String
    /// The key, the file in quotes when there is one, and the reason, for the log.
    public var description: String {
        file.map { "\(key) '\($0)': \(reason)" } ?? "\(key): \(reason)"
    }
}

/// The context's `BrokerTLS`, from ex_data slot 0 (set in `BrokerTLS.init`).
private func owner(of ssl: OpaquePointer?) -> BrokerTLS? {
    guard let ssl, let sslContext = SSL_get_SSL_CTX(ssl), let owner = SSL_CTX_get_ex_data(sslContext, 0) else {
        return nil
    }
    return Unmanaged<BrokerTLS>.fromOpaque(owner).takeUnretainedValue()
}

/// OpenSSL's info callback: notes the end of a handshake.
private func handshakeProgress(_ ssl: OpaquePointer?, _ type: Int32, _ value: Int32) {
    guard type & SSL_CB_HANDSHAKE_DONE != 0 else { return }
    owner(of: ssl)?.handshakeCompleted()
}

/// OpenSSL's verify callback: a free function that finds its `BrokerTLS` through the
/// context's ex_data slot 0 (set in `BrokerTLS.init`), records a failure, and returns
/// OpenSSL's own verdict unchanged.
private func verifyCertificate(_ preverified: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverified != 1, let store,
        let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let owner = owner(of: OpaquePointer(ssl))
    else { return preverified }
    var subject = "unknown subject"
    if let certificate = X509_STORE_CTX_get_current_cert(store),
        let line = X509_NAME_oneline(X509_get_subject_name(certificate), nil, 0)
    {
        subject = String(cString: line)
        CRYPTO_free(line, #fileID, #line)
    }
    owner.recordVerifyFailure(
        code: X509_STORE_CTX_get_error(store), depth: X509_STORE_CTX_get_error_depth(store), subject: subject)
    return preverified
}
