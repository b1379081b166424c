// libxcrypt's crypt_r, which checks the alarm's codes against their crypt(3) hashes.
#include <crypt.h>
