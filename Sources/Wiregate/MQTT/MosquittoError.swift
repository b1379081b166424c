import CMosquitto

/// A libmosquitto result code (`MOSQ_ERR_*`) as a Swift value, so callers can
/// `catch MosquittoError.noConnection`.
public struct MosquittoError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = MosquittoError(rawValue: Int32(MOSQ_ERR_SUCCESS.rawValue))
    public static let noConnection = MosquittoError(rawValue: Int32(MOSQ_ERR_NO_CONN.rawValue))
    public static let connectionLost = MosquittoError(rawValue: Int32(MOSQ_ERR_CONN_LOST.rawValue))
    public static let connectionRefused = MosquittoError(rawValue: Int32(MOSQ_ERR_CONN_REFUSED.rawValue))
    public static let errno = MosquittoError(rawValue: Int32(MOSQ_ERR_ERRNO.rawValue))
    public static let keepalive = MosquittoError(rawValue: Int32(MOSQ_ERR_KEEPALIVE.rawValue))
    public static let noMemory = MosquittoError(rawValue: Int32(MOSQ_ERR_NOMEM.rawValue))
    public static let malformedUTF8 = MosquittoError(rawValue: Int32(MOSQ_ERR_MALFORMED_UTF8.rawValue))
    public static let oversizePacket = MosquittoError(rawValue: Int32(MOSQ_ERR_OVERSIZE_PACKET.rawValue))
    public static let invalid = MosquittoError(rawValue: Int32(MOSQ_ERR_INVAL.rawValue))
    public static let payloadSize = MosquittoError(rawValue: Int32(MOSQ_ERR_PAYLOAD_SIZE.rawValue))
    public static let duplicateProperty = MosquittoError(rawValue: Int32(MOSQ_ERR_DUPLICATE_PROPERTY.rawValue))

    /// What `mosquitto_publish_v5` says about one message itself (its topic, its size, its
    /// properties): that message can never be published as it is.
    public static let aboutTheMessage: Set<MosquittoError> = [
        .malformedUTF8, .invalid, .payloadSize, .oversizePacket, .duplicateProperty
    ]

    /// libmosquitto's text; for `MOSQ_ERR_ERRNO` that is the system's `strerror(errno)`, so
    /// describe the error on the thread that got it, before another call changes errno.
    public var description: String {
        String(cString: mosquitto_strerror(rawValue))
    }

    /// Throws unless `code` is `MOSQ_ERR_SUCCESS`.
    static func check(_ code: Int32) throws(MosquittoError) {
        guard code == MOSQ_ERR_SUCCESS.rawValue else { throw MosquittoError(rawValue: code) }
    }
}
