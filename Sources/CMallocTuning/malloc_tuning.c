/* A system header first: __GLIBC__ is defined by glibc's <features.h>, which
 * only arrives with a libc header. (Testing __GLIBC__ before any include
 * silently compiled the stub below, so the arena limit was never set.) */
#include <stdlib.h>
#include "malloc_tuning.h"
#if defined(__GLIBC__)
#include <malloc.h>
int dari_set_malloc_arena_max(int arenas) { return mallopt(M_ARENA_MAX, arenas); }
#else
int dari_set_malloc_arena_max(int arenas) { (void)arenas; return 0; }
#endif
