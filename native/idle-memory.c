/*
 * What an idle daemon can give back to the kernel, beyond V8's own GC.
 *
 * trim(): glibc's malloc_trim(0). Node's socket and pipe reads allocate
 * 64 KiB buffers that glibc serves from its brk heap; a few small survivors
 * pin that heap, and glibc only gives back memory at its top. After a burst
 * of RPC calls or a backup, tens of MiB of free chunks stay resident until
 * malloc_trim() returns their pages to the kernel (MADV_DONTNEED). Returns
 * true when some memory was released; false where there is nothing to do or
 * no glibc.
 *
 * pageout(): madvise(MADV_PAGEOUT) over the process's read-only file
 * mappings (Node's own binary above all: V8, ICU, OpenSSL and the bootstrap
 * code start-up ran once). The kernel reclaims the clean pages no other
 * process maps, so they leave the page cache too; whatever code runs next is
 * read back in on its first touch. Linux 5.4 and later, and only for files
 * the process owns or may write (root, for the agent). Returns the bytes
 * advised, or -1 where the kernel or the platform cannot.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#ifdef __linux__
#include <errno.h>
#include <malloc.h> /* defines __GLIBC__ on glibc, which has malloc_trim */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#endif

#if defined(__linux__) && !defined(MADV_PAGEOUT)
#define MADV_PAGEOUT 21
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

static double pageout_mappings(void) {
#ifdef __linux__
  FILE *maps = fopen("/proc/self/maps", "re");
  if (!maps) return -1;
  double advised = 0;
  int refused = 0; /* EINVAL: a kernel without MADV_PAGEOUT, or a mapping it cannot page out */
  char line[4096];
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char perms[8];
    int path = 0;
    /* start-end perms offset dev inode path; a mapping without a path is anonymous. */
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path) < 3 || path == 0) continue;
    if (line[path] != '/' || perms[1] == 'w') continue;
    if (madvise((void *)start, end - start, MADV_PAGEOUT) == 0) advised += (double)(end - start);
    else if (errno == EINVAL) refused++;
  }
  fclose(maps);
  /* A kernel without MADV_PAGEOUT (before 5.4) refuses every mapping; one locked mapping does not say that. */
  return advised == 0 && refused > 0 ? -1 : advised;
#else
  return -1;
#endif
}

static napi_value pageout(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_double(env, pageout_mappings(), &result);
  return result;
}

static int export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  if (!export_fn(env, exports, "trim", trim) || !export_fn(env, exports, "pageout", pageout)) return NULL;
  return exports;
}
