import Testing
import WiregateCore

/// The backend's answers, as the hostile review met them: a 200 that stored nothing, a redirect,
/// a rotated token; none may mark events uploaded, and none but a bad batch may quarantine.
@Suite struct UploadVerdictTests {
    @Test func onlyAnAnswerThatAccountsForTheBatchIsStored() {
        #expect(
            UploadVerdict(status: 200, retryAfter: nil, answer: #"{"stored": 3, "duplicates": 2}"#, batchCount: 5)
                == .stored)
        #expect(
            UploadVerdict(status: 201, retryAfter: nil, answer: #"{"stored": 0, "duplicates": 5}"#, batchCount: 5)
                == .stored)
        for answer in [
            "<html><body>Please log in</body></html>", "", #"{"ok": true}"#, #"{"stored": 4, "duplicates": 0}"#,
            #"{"stored": -1, "duplicates": 6}"#, #"[5]"#, #"{"stored": true, "duplicates": 4}"#,
            #"{"stored": 2.5, "duplicates": 2.5}"#
        ] {
            guard case .misconfigured = UploadVerdict(status: 200, retryAfter: nil, answer: answer, batchCount: 5)
            else {
                Issue.record("a 200 answering \(answer) was taken as stored")
                continue
            }
        }
    }

    @Test(arguments: [301, 302, 307, 308, 401, 403, 404, 405, 407, 410, 418])
    func configurationProblemsNeverQuarantine(status: Int) {
        guard
            case .misconfigured(let reason) = UploadVerdict(status: status, retryAfter: nil, answer: "", batchCount: 10)
        else {
            Issue.record("HTTP \(status) is not a configuration problem")
            return
        }
        #expect(reason.contains("\(status)"))
    }

    @Test func badBatchesAreRefusedTooBigOnesHalvedPassingTroubleRetried() {
        let malformed = #"{"error": "malformed batch", "reasons": {"events": {"0": {"ts": ["bad"]}}}}"#
        #expect(
            UploadVerdict(status: 400, retryAfter: nil, answer: malformed, batchCount: 2)
                == .refused(status: 400, response: malformed))
        let conflict = #"{"error": "conflict: these ids are stored with other content", "ids": ["gw:2"]}"#
        #expect(
            UploadVerdict(status: 409, retryAfter: nil, answer: conflict, batchCount: 2)
                == .refused(status: 409, response: conflict))
        #expect(UploadVerdict(status: 413, retryAfter: nil, answer: "", batchCount: 2) == .tooLarge)
        #expect(
            UploadVerdict(status: 429, retryAfter: "7", answer: "", batchCount: 2)
                == .retry(reason: "HTTP 429", after: .seconds(7)))
        #expect(
            UploadVerdict(status: 503, retryAfter: nil, answer: "", batchCount: 2)
                == .retry(reason: "HTTP 503", after: nil))
        #expect(
            UploadVerdict(status: 408, retryAfter: nil, answer: "", batchCount: 2)
                == .retry(reason: "HTTP 408", after: nil))
    }

    /// A 400 that is not the app's (nginx's "plain HTTP request was sent to HTTPS port", DRF's parse
    /// error for a body a proxy mangled) is the way to the backend: it must not quarantine events.
    @Test(arguments: [
        "<html><center>400 Bad Request: The plain HTTP request was sent to HTTPS port</center></html>",
        #"{"detail": "not valid gzip: incorrect header check"}"#, "", #"{"error": "conflict"}"#
    ])
    func otherBadRequestsAreConfigurationProblems(answer: String) {
        for status in [400, 409, 422] {
            guard case .misconfigured = UploadVerdict(status: status, retryAfter: nil, answer: answer, batchCount: 3)
            else {
                Issue.record("HTTP \(status) \(answer) would quarantine events")
                continue
            }
        }
    }
}
