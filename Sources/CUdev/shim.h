// libudev, as Debian's libudev-dev installs it.
// Nothing else lives here: every wrapper is Swift, in Sources/Wiregate/Discovery.
#include <libudev.h>
