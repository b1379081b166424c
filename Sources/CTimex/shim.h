// adjtimex(2), which Swift's Glibc module does not export: the kernel's view of
// whether the wall clock is synchronised (a Pi without RTC boots with a wrong one).
#include <sys/timex.h>
