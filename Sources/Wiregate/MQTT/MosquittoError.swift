import CMosquitto

/// A libmosquitto result code (`MOSQ_ERR_*`) as a Swift value, so callers can
/// `catch MosquittoError.noConnection`.
public struct MosquittoError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `MOSQ_ERR_*` code as libmosquitto returns it.
    public let rawValue: Int32
    /// Wraps any code, including ones this type has no name for.
    /// - Parameter rawValue: a `MOSQ_ERR_*` code returned by a libmosquitto call.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `MOSQ_ERR_SUCCESS`: the call worked; `check(_:)` never throws it.
    public static let success = MosquittoError(rawValue: Int32(MOSQ_ERR_SUCCESS.rawValue))
    /// `MOSQ_ERR_NO_CONN`: the client is not connected to a broker; `PublishResult.mid()` also
    /// throws it for a message the closed publish gate did not take.
    public static let noConnection = MosquittoError(rawValue: Int32(MOSQ_ERR_NO_CONN.rawValue))
    /// `MOSQ_ERR_CONN_LOST`: an established connection went away; the client reconnects.
    public static let connectionLost = MosquittoError(rawValue: Int32(MOSQ_ERR_CONN_LOST.rawValue))
    /// `MOSQ_ERR_CONN_REFUSED`: the broker refused the CONNECT (its CONNACK reason code).
    public static let connectionRefused = MosquittoError(rawValue: Int32(MOSQ_ERR_CONN_REFUSED.rawValue))
    /// `MOSQ_ERR_ERRNO`: a system call failed; the cause is in `errno` (see `description`).
    public static let errno = MosquittoError(rawValue: Int32(MOSQ_ERR_ERRNO.rawValue))
    /// `MOSQ_ERR_KEEPALIVE`: no answer from the broker within the keepalive, as when a
    /// cable is cut without the socket closing.
    public static let keepalive = MosquittoError(rawValue: Int32(MOSQ_ERR_KEEPALIVE.rawValue))
    /// `MOSQ_ERR_NOMEM`: libmosquitto could not allocate memory; not the message's fault, so a
    /// publish is tried again later.
    public static let noMemory = MosquittoError(rawValue: Int32(MOSQ_ERR_NOMEM.rawValue))
    /// `MOSQ_ERR_MALFORMED_UTF8`: a topic or string property is not valid MQTT UTF-8.
    public static let malformedUTF8 = MosquittoError(rawValue: Int32(MOSQ_ERR_MALFORMED_UTF8.rawValue))
    /// `MOSQ_ERR_OVERSIZE_PACKET`: the packet is larger than the broker's maximum packet size.
    public static let oversizePacket = MosquittoError(rawValue: Int32(MOSQ_ERR_OVERSIZE_PACKET.rawValue))
    /// `MOSQ_ERR_INVAL`: an argument is invalid, such as a wildcard in a publish topic.
    public static let invalid = MosquittoError(rawValue: Int32(MOSQ_ERR_INVAL.rawValue))
    /// `MOSQ_ERR_PAYLOAD_SIZE`: the payload is larger than MQTT allows (268,435,455 bytes).
    public static let payloadSize = MosquittoError(rawValue: Int32(MOSQ_ERR_PAYLOAD_SIZE.rawValue))
    /// `MOSQ_ERR_DUPLICATE_PROPERTY`: an MQTT 5 property that may appear once is there twice.
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
