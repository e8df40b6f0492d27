#include "malloc_tuning.h"
#if defined(__GLIBC__)
#include <malloc.h>
int dari_set_malloc_arena_max(int arenas) { return mallopt(M_ARENA_MAX, arenas); }
#else
int dari_set_malloc_arena_max(int arenas) { (void)arenas; return 0; }
#endif
