// glibc's malloc tuning (malloc_trim, mallopt), which the Glibc module does not bring in.
#include <malloc.h>
