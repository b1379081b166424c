import Foundation

/// What the backend's answer to one batch means. Pure: the backend sink acts on it.
///
/// Only an answer that accounts for the whole batch counts as stored: a 2xx whose body says how
/// many events were stored and how many it had already, adding up to the batch. A captive
/// portal's or a proxy's login page answers 200 too, and redirects are never followed (a POST
/// turned into a GET of a login page is "200 OK" with nothing stored).
public enum UploadVerdict: Sendable, Equatable {
    /// Every event of the batch is stored at the backend (now, or by an earlier attempt).
    case stored
    /// A passing problem (408, 429, 5xx, no answer): the same batch again after a backoff, not
    /// before `after` when the backend said so (Retry-After).
    case retry(reason: String, after: Duration?)
    /// The backend or the way to it is set up wrong (a rotated token, a wrong path, a redirect to
    /// https or to a login page, a proxy asking for credentials): nothing is quarantined, the sink
    /// stops with a loud error and tries again with backoff until someone fixes it.
    case misconfigured(reason: String)
    /// 413: the batch is too big for the backend (or a proxy in front of it): send halves.
    case tooLarge
    /// 400, 422, 409: something in this batch can never be stored as it is. Halved until the bad
    /// event is alone, which then goes to the quarantine with `response`; its neighbours arrive.
    case refused(status: Int, response: String)

    /// - Parameters:
    ///   - status: the HTTP status.
    ///   - retryAfter: the `Retry-After` header, if any (seconds).
    ///   - answer: the start of the body.
    ///   - batchCount: how many events the request carried.
    public init(status: Int, retryAfter: String?, answer: String, batchCount: Int) {
        switch status {
        case 200..<300:
            if let problem = Self.problem(inStoredAnswer: answer, batchCount: batchCount) {
                self = .misconfigured(
                    reason:
                        "HTTP \(status), but \(problem) (a captive portal, a proxy, or not the wiregate_events app?)")
            } else {
                self = .stored
            }
        case 300..<400:
            self = .misconfigured(
                reason: "HTTP \(status): a redirect, which is never followed (http:// to https://, a moved backend, "
                    + "or a login page?): point backend.url at the app itself")
        case 401:
            self = .misconfigured(
                reason: "HTTP 401: the token is not accepted (rotated, or mistyped in backend.token_file?)")
        case 403:
            self = .misconfigured(
                reason: "HTTP 403: the token is not allowed to upload for this gateway id (bound to another gateway?)")
        case 404, 405:
            self = .misconfigured(
                reason:
                    "HTTP \(status): no events endpoint at this URL (backend.url should be the project that includes "
                    + "wiregate_events.urls, without /api/...)")
        case 407:
            self = .misconfigured(reason: "HTTP 407: a proxy asks for credentials")
        case 413:
            self = .tooLarge
        case 400, 409, 422:
            // Only the events endpoint's own refusal says something is wrong with the events; a
            // proxy's or a web server's 400 (plain HTTP to an HTTPS port, a mangled body) is the
            // way to the backend, and would otherwise quarantine every event one by one.
            if Self.isTheAppsRefusal(status: status, answer: answer) {
                self = .refused(status: status, response: answer)
            } else {
                self = .misconfigured(
                    reason: "HTTP \(status), but not the events endpoint's answer (a proxy or a web server in front?): "
                        + String(answer.prefix(120)))
            }
        case 408, 429, 500..<600:
            self = .retry(
                reason: "HTTP \(status)", after: retryAfter.flatMap(Int.init).map { .seconds(max(0, min($0, 3600))) })
        default:
            self = .misconfigured(reason: "HTTP \(status), which the events endpoint never answers")
        }
    }

    /// Why a 2xx body does not account for the batch; nil when it says `stored` + `duplicates`
    /// equal to `batchCount` (integers: JSON `true` or `2.5` are not counts).
    static func problem(inStoredAnswer answer: String, batchCount: Int) -> String? {
        struct Stored: Decodable {
            var stored: Int
            var duplicates: Int
        }
        guard let counts = try? JSONDecoder().decode(Stored.self, from: Data(answer.utf8)) else {
            return "the answer does not say how many events were stored and how many were duplicates"
        }
        guard counts.stored >= 0, counts.duplicates >= 0, counts.stored + counts.duplicates == batchCount else {
            return "it accounts for \(counts.stored + counts.duplicates) of the \(batchCount) events sent"
        }
        return nil
    }

    /// The app's answer to a bad batch: `{"error": "malformed batch", "reasons": …}` (400), or a
    /// conflict naming the ids (409).
    static func isTheAppsRefusal(status: Int, answer: String) -> Bool {
        struct Refusal: Decodable {
            var error: String
            var ids: [String]?
        }
        guard let refusal = try? JSONDecoder().decode(Refusal.self, from: Data(answer.utf8)) else { return false }
        return status == 409 ? refusal.ids != nil : refusal.error == "malformed batch"
    }
}
