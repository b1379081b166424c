// posix_spawn_file_actions_addclosefrom_np (glibc 2.34 and later), which <spawn.h> declares only
// under _GNU_SOURCE and Swift's Glibc module therefore does not export: a test's child closes
// every descriptor above stderr, so none opened meanwhile without close-on-exec outlives it.
#include <spawn.h>
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
