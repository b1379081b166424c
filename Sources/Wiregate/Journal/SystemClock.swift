import CTimex
import Foundation

/// Whether the wall clock is known to be synchronised (NTP or similar).
///
/// A Pi has no RTC: offline it boots with the time it last saved, which can be days
/// off. Events carry this flag so the backend knows which timestamps to trust, so it must
/// never say "synchronised" without knowing it.
public enum SystemClock {
    /// What systemd-timesyncd creates once it has synchronised the clock (in /run: gone at boot).
    static let timesyncdFlag = "/run/systemd/timesync/synchronized"

    /// Asks timesyncd's flag file, then the kernel (`adjtimex`). The journal calls it for each batch
    /// of events it numbers, and before it judges events' age.
    /// - Returns: true only when one of them says so; false when it is not known (the kernel call refused).
    public static func isSynchronised() -> Bool {
        // timesyncd's own word, readable under any hardening.
        if FileManager.default.fileExists(atPath: timesyncdFlag) { return true }
        var timex = CTimex.timex()
        let state = adjtimex(&timex)
        // -1: the call failed (EPERM under a seccomp filter such as systemd's ProtectClock=yes):
        // not known, so not synchronised. TIME_ERROR (5) or STA_UNSYNC: the kernel says the clock
        // is not disciplined.
        return state >= 0 && state != TIME_ERROR && (timex.status & STA_UNSYNC) == 0
    }
}
