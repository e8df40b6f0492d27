#ifndef DARI_BRIDGE_MALLOC_TUNING_H
#define DARI_BRIDGE_MALLOC_TUNING_H
/* Sets glibc's M_ARENA_MAX (malloc.h is not part of Swift's Glibc module).
 * Returns 1 on success, 0 where unsupported. */
int dari_set_malloc_arena_max(int arenas);
#endif
