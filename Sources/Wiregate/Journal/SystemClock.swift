import CTimex

/// Whether the kernel considers the wall clock synchronised (NTP or similar).
///
/// A Pi has no RTC: offline it boots with the time it last saved, which can be days
/// off. Events carry this flag so the backend knows which timestamps to trust.
enum SystemClock {
    static func isSynchronised() -> Bool {
        var timex = CTimex.timex()
        let state = adjtimex(&timex)
        // TIME_ERROR (5) or STA_UNSYNC: the kernel says the clock is not disciplined.
        return state != TIME_ERROR && (timex.status & STA_UNSYNC) == 0
    }
}
