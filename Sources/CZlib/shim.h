// zlib (Debian: zlib1g-dev), for gzip request bodies to the backend.
#include <zlib.h>
