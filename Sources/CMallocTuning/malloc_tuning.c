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

#if defined(__linux__)
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
long dari_page_out_executable(void) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    FILE *maps = fopen("/proc/self/smaps", "r");
    if (!maps) return -1;
    char line[4608];
    unsigned long start = 0, end = 0;
    int ours = 0;
    long resident = 0, found = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long a, b;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3 && path_at > 0) {
            /* A mapping line: ours when it maps the executable and is not writable. */
            char *path = line + path_at;
            size_t len = strlen(path);
            while (len > 0 && (path[len - 1] == '\n' || path[len - 1] == ' ')) path[--len] = 0;
            /* The previous mapping's Rss has been read by now: page it out. */
            if (ours) madvise((void *)start, end - start, MADV_PAGEOUT);
            ours = strcmp(path, self) == 0 && perms[1] != 'w';
            start = a; end = b;
            if (ours) found = 1;
        } else if (ours && strncmp(line, "Rss:", 4) == 0) {
            long kb = 0;
            if (sscanf(line + 4, "%ld", &kb) == 1) resident += kb;
        }
    }
    if (ours) madvise((void *)start, end - start, MADV_PAGEOUT);
    fclose(maps);
    return found ? resident : -1;
}
#else
long dari_page_out_executable(void) { return -1; }
#endif
