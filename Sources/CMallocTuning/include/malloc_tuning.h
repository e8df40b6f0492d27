#ifndef DARI_BRIDGE_MALLOC_TUNING_H
#define DARI_BRIDGE_MALLOC_TUNING_H
/* Sets glibc's M_ARENA_MAX (malloc.h is not part of Swift's Glibc module).
 * Returns 1 on success, 0 where unsupported. */
int dari_set_malloc_arena_max(int arenas);

/* Asks the kernel to reclaim the resident pages of this executable's own file mappings
 * (madvise MADV_PAGEOUT, Linux 5.4+): code and metadata touched only while starting
 * (argument parsing, configuration, the runtime's first conformance scans) leave memory;
 * pages in use come back on the next touch (minor faults from the page cache).
 * Returns the kilobytes that were resident in those mappings before, or -1 when
 * unsupported or nothing was found. */
long dari_page_out_executable(void);
#endif
