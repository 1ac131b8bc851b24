/*
 * Test plugins, one per -D flag, each broken in one way (or, with -DGOOD, not at all).
 * Built by tests/python/test_plugins.py against include/remotemedia_plugin.h only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remotemedia_plugin.h"

#ifndef NAME
#define NAME "test-broken"
#endif
#ifndef NODE_TYPE
#define NODE_TYPE "Echo"
#endif

/* An instance counts the samples it has seen (its stream state). */
typedef struct {
  uint64_t seen;
} Echo;

static int32_t create(void *user_data, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  (void)user_data;
  (void)params;
  (void)len;
#ifdef CREATE_FAILS
  (void)instance;
  ctx->set_error(ctx, "this node never creates");
  return RM_STATUS_NODE;
#else
  (void)ctx;
  *instance = calloc(1, sizeof(Echo));
  return *instance ? RM_STATUS_OK : RM_STATUS_NODE;
#endif
}

static int32_t process(void *instance, const RmDataView *in, RmNodeContext *ctx) {
  Echo *e = instance;
#ifdef CRASH_ON_EMPTY
  if (in->len == 0) *(volatile int *)0 = 1; /* a bug: crashes on an empty chunk */
#endif
#ifdef ABORT_ON_EMPTY
  if (in->len == 0) abort(); /* a bug: gives up on an empty chunk */
#endif
#ifdef OOB_ON_EMPTY
  if (in->len == 0) /* a bug: writes 64 MiB past its 8-byte instance */
    for (volatile char *p = (volatile char *)e; p < (volatile char *)e + (64 << 20); p += 4096) *p = 1;
#endif
#ifdef LEAK_PER_CALL
  if (malloc(1 << 20) == NULL) return RM_STATUS_NODE; /* a bug: leaks 1 MiB per call */
#endif
#ifdef HANG_ON_EMPTY
  if (in->len == 0) for (volatile int spin = 1; spin;) { } /* a bug: never returns on an empty chunk */
#endif
  e->seen += in->len;
#ifdef STATEFUL_OUTPUT
  /* A bug: the output depends on state that reset does not clear. */
  {
    char json[64];
    RmDataView view = {RM_DATA_KIND_JSON, json, 0, 0, 0, 0};
    int n = 0;
    uint64_t v = e->seen;
    char digits[24];
    do {
      digits[n++] = (char)('0' + v % 10);
      v /= 10;
    } while (v);
    memcpy(json, "{\"seen\":", 8);
    for (int i = 0; i < n; i++) json[8 + i] = digits[n - 1 - i];
    json[8 + n] = '}';
    view.len = (size_t)(9 + n);
    return ctx->emit(ctx, 0, &view);
  }
#else
  return ctx->emit(ctx, 0, in);
#endif
}

static int32_t reset(void *instance, RmNodeContext *ctx) {
  (void)ctx;
#ifndef STATEFUL_OUTPUT
  ((Echo *)instance)->seen = 0;
#else
  (void)instance;
#endif
  return RM_STATUS_OK;
}

static void destroy(void *instance) { free(instance); }

static const RmPluginNodeType NODE_TYPES[] = {{
    .info = {.node_type = NODE_TYPE,
             .description = "passes items through",
#ifdef BAD_SCHEMA
             .params_schema_json = "{not json",
#elif defined(PARAMS_SCHEMA) /* a schema given on the command line */
             .params_schema_json = PARAMS_SCHEMA,
#elif defined(LAX_PARAMS) /* declares a range, but create accepts any value */
             .params_schema_json = "{\"type\":\"object\",\"properties\":{\"gain\":{\"type\":\"number\","
                                   "\"minimum\":0,\"maximum\":1,\"default\":0.5}}}",
#else
             .params_schema_json = "{\"type\":\"object\"}",
#endif
             .input_kinds = RM_KIND_AUDIO | RM_KIND_JSON,
             .output_kinds = 0},
#ifdef NO_PROCESS
    .vtable = {.create = create, .reset = reset, .destroy = destroy},
#else
    .vtable = {.create = create, .process = process, .reset = reset, .destroy = destroy},
#endif
}};

#if defined(PREFERS_ISOLATION)
static const RmNodeTypeExtension EXTENSIONS[] = {{sizeof(RmNodeTypeExtension), RM_NODE_PREFERS_ISOLATION, NULL}};
#elif defined(UNKNOWN_FLAG)
static const RmNodeTypeExtension EXTENSIONS[] = {{sizeof(RmNodeTypeExtension), 0x80, NULL}};
#elif defined(DECLARES_CAPS) /* takes f32 mono 16 kHz only: pipelines convert for it */
static const RmNodeTypeExtension EXTENSIONS[] = {{sizeof(RmNodeTypeExtension), 0,
    "{\"input\":{\"kind\":\"audio\",\"format\":[\"f32\"],\"channels\":[1],\"sample_rate\":[16000]},"
    "\"outputs\":{\"out\":{}}}"}};
#elif defined(BAD_CAPS)
static const RmNodeTypeExtension EXTENSIONS[] = {{sizeof(RmNodeTypeExtension), 0, "{\"input\":{\"format\":[\"mp3\"]}}"}};
#elif defined(MINOR1_EXTENSION) /* the extension as ABI minor 1 defined it, before caps */
typedef struct {
  uint32_t size;
  uint32_t flags;
} ExtensionMinor1;
static const ExtensionMinor1 EXTENSIONS_MINOR1[] = {{sizeof(ExtensionMinor1), RM_NODE_PREFERS_ISOLATION}};
#endif

static const RmPluginDescriptor DESCRIPTOR = {
#ifdef MAJOR_MISMATCH
    .abi_major = RM_PLUGIN_ABI_MAJOR + 1,
#else
    .abi_major = RM_PLUGIN_ABI_MAJOR,
#endif
#ifdef NEWER_MINOR
    .abi_minor = RM_PLUGIN_ABI_MINOR + 1,
#elif defined(OLD_MINOR) /* built against minor 0, before extensions */
    .abi_minor = 0,
#elif defined(MINOR1_EXTENSION)
    .abi_minor = 1,
#else
    .abi_minor = RM_PLUGIN_ABI_MINOR,
#endif
#ifdef NO_NAME
    .name = NULL,
#else
    .name = NAME,
#endif
    .version = "0.0.1",
    .license = "Apache-2.0",
    .node_types = NODE_TYPES,
    .n_node_types = 1,
#ifdef RESERVED_SET
    .reserved_2 = NODE_TYPES,
#endif
#if defined(PREFERS_ISOLATION) || defined(UNKNOWN_FLAG) || defined(DECLARES_CAPS) || defined(BAD_CAPS)
    .extensions = EXTENSIONS,
#elif defined(MINOR1_EXTENSION)
    .extensions = (const RmNodeTypeExtension *)EXTENSIONS_MINOR1,
#endif
};

#ifdef MISSING_ENTRY
RM_PLUGIN_EXPORT const RmPluginDescriptor *not_the_entry_point(const RmHostServices *host) {
#else
RM_PLUGIN_EXPORT const RmPluginDescriptor *remotemedia_plugin_entry(const RmHostServices *host) {
#endif
  (void)host;
#ifdef ENTRY_REFUSES
  return NULL;
#else
  return &DESCRIPTOR;
#endif
}
