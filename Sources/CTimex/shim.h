// adjtimex(2), which Swift's Glibc module does not export: the kernel's view of
// whether the wall clock is synchronised (a Pi without RTC boots with a wrong one).
#include <sys/timex.h>
// timerfd(2) with TFD_TIMER_CANCEL_ON_SET: the kernel says when the wall clock is set.
#include <sys/timerfd.h>
