/*
 * One plugin written as a plugin author would have written it against each earlier
 * ABI minor, with positional and with designated initialisers (one -D flag each).
 * tests/python/test_plugins.py compiles every style with -Wall -Wextra -Werror against
 * today's include/remotemedia_plugin.h, then loads and runs it: a new minor must never
 * break the source of an older plugin.
 */
#include <stdlib.h>

#include "remotemedia_plugin.h"

#ifndef NAME
#define NAME "test-versions"
#endif
#ifndef NODE_TYPE
#define NODE_TYPE "Halve"
#endif

/* Halves f32 audio; no state. */
static int32_t create(void *user_data, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  (void)user_data;
  (void)params;
  (void)len;
  (void)ctx;
  *instance = malloc(1);
  return *instance ? RM_STATUS_OK : RM_STATUS_NODE;
}

static int32_t process(void *instance, const RmDataView *in, RmNodeContext *ctx) {
  (void)instance;
  if (in->kind != RM_DATA_KIND_AUDIO || in->format != RM_SAMPLE_FORMAT_F32) {
    ctx->set_error(ctx, "takes f32 audio");
    return RM_STATUS_INVALID_ARGUMENT;
  }
  float *out = (float *)malloc(in->len * sizeof(float) + 1);
  if (out == NULL) return RM_STATUS_NODE;
  for (size_t i = 0; i < in->len; i++) out[i] = ((const float *)in->data)[i] * 0.5f;
  RmDataView view = *in;
  view.data = out;
  int32_t status = ctx->emit(ctx, 0, &view);
  free(out);
  return status;
}

static int32_t reset(void *instance, RmNodeContext *ctx) {
  (void)instance;
  (void)ctx;
  return RM_STATUS_OK;
}

static void destroy(void *instance) { free(instance); }

#if defined(MINOR0_POSITIONAL)
/* As minor 0 laid the structs out, every field in order. */
static const RmPluginNodeType NODE_TYPES[] = {{
    {NODE_TYPE, "Halves f32 audio.", "{\"type\":\"object\"}", NULL, 0, RM_KIND_AUDIO, RM_KIND_AUDIO},
    {NULL, create, process, NULL, reset, destroy, NULL},
}};
static const RmPluginDescriptor DESCRIPTOR = {
    RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR, NAME, "1.0.0", "MIT", "written against minor 0",
    NODE_TYPES, 1, NULL, {NULL, NULL, NULL, NULL}};
#else
static const RmPluginNodeType NODE_TYPES[] = {{
    .info = {.node_type = NODE_TYPE, .description = "Halves f32 audio.", .params_schema_json = "{\"type\":\"object\"}",
             .input_kinds = RM_KIND_AUDIO, .output_kinds = RM_KIND_AUDIO},
    .vtable = {.create = create, .process = process, .reset = reset, .destroy = destroy},
}};
#if defined(MINOR1_DESIGNATED) /* minor 1: the extension had size and flags */
static const RmNodeTypeExtension EXTENSIONS[] = {{.size = sizeof(RmNodeTypeExtension), .flags = 0}};
#elif defined(MINOR2_DESIGNATED) /* minor 2: caps */
static const RmNodeTypeExtension EXTENSIONS[] = {{
    .size = sizeof(RmNodeTypeExtension),
    .caps = "{\"input\":{\"kind\":\"audio\",\"format\":[\"f32\"]},\"outputs\":{\"out\":{}}}",
}};
#elif defined(MINOR2_POSITIONAL_EXTENSION)
static const RmNodeTypeExtension EXTENSIONS[] = {
    {sizeof(RmNodeTypeExtension), 0, "{\"input\":{\"kind\":\"audio\",\"format\":[\"f32\"]},\"outputs\":{\"out\":{}}}"}};
#endif
static const RmPluginDescriptor DESCRIPTOR = {
    .abi_major = RM_PLUGIN_ABI_MAJOR,
    .abi_minor = RM_PLUGIN_ABI_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .license = "MIT",
    .node_types = NODE_TYPES,
    .n_node_types = 1,
#if !defined(MINOR0_DESIGNATED)
    .extensions = EXTENSIONS,
#endif
};
#endif

RM_PLUGIN_EXPORT const RmPluginDescriptor *remotemedia_plugin_entry(const RmHostServices *host) {
  (void)host;
  return &DESCRIPTOR;
}
