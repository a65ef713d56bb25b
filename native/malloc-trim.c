/*
 * trim(): glibc's malloc_trim(0), for the daemon's idle moments.
 *
 * Node's socket and pipe reads allocate 64 KiB buffers that glibc serves from
 * its brk heap; a few small survivors pin that heap, and glibc only gives back
 * memory at its top. After a burst of RPC calls or a backup, tens of MiB of
 * free chunks stay resident until malloc_trim() returns their pages to the
 * kernel (MADV_DONTNEED). Returns true when some memory was released; false
 * where there is nothing to do or no glibc.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#ifdef __linux__
#include <malloc.h> /* defines __GLIBC__ on glibc, which has malloc_trim */
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

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
