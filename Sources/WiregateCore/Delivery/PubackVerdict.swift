/// What an MQTT 5 PUBACK's reason code means for the event it answers.
///
/// Codes below 0x80 are success (0x10, "no matching subscribers", included: the broker has the
/// message). At or above 0x80 the broker did not take it, and the event must not be
/// acknowledged to the journal: either it may succeed later (the ACL or a quota is changed)
/// and is kept, or it never can as it is and goes to the quarantine.
public enum PubackVerdict: Sendable, Equatable {
    case accepted
    /// Kept in the journal and sent again after a backoff: a configuration or a load problem.
    case refusedForNow(reason: String)
    /// This message can never be taken as it is: quarantined, and the sink goes on.
    case refusedForGood(reason: String)

    /// The verdict for a PUBACK reason code: topic or payload invalid (0x90, 0x99) is for good, any
    /// other code at or above 0x80 for now.
    /// - Parameter code: the MQTT 5 reason code; 0 on MQTT 3.1.1, which has none.
    public init(reasonCode code: Int32) {
        switch code {
        case ..<0x80: self = .accepted
        case 0x90: self = .refusedForGood(reason: "topic name invalid (0x90)")
        case 0x99: self = .refusedForGood(reason: "payload format invalid (0x99)")
        case 0x87:
            self = .refusedForNow(reason: "not authorised (0x87): check the broker's ACL for this gateway's topics")
        case 0x97: self = .refusedForNow(reason: "quota exceeded (0x97)")
        case 0x91: self = .refusedForNow(reason: "packet identifier in use (0x91)")
        case 0x83: self = .refusedForNow(reason: "implementation specific error (0x83)")
        case 0x80: self = .refusedForNow(reason: "unspecified error (0x80)")
        default: self = .refusedForNow(reason: "reason code 0x\(String(code, radix: 16))")
        }
    }
}
