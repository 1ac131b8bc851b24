/*
 * One plugin written as a plugin author would have written it against each earlier
 * ABI minor, with positional and with designated initialisers (one -D flag each).
 * tests/python/test_plugins.py compiles every style with -Wall -Wextra -Werror against
 * today's include/remotemedia_plugin.h, then loads and runs it: a new minor must never
 * break the source of an older plugin. Each older style says the minor it was written
 * against, so the library also stands for a binary built then. MINOR3_PORTS shows the
 * extensions minor 3 added (input ports, configure, latency).
 */
#include <stdlib.h>

#include "remotemedia_plugin.h"

#ifndef NAME
#define NAME "test-versions"
#endif
#ifndef NODE_TYPE
#define NODE_TYPE "Halve"
#endif

/* Halves f32 audio. An instance is one int, which only MINOR3_PORTS uses (its
 * configured ports); reset clears it. */
static int32_t create(void *user_data, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  (void)user_data;
  (void)params;
  (void)len;
  (void)ctx;
  *instance = calloc(1, sizeof(int));
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
  (void)ctx;
  *(int *)instance = 0;
  return RM_STATUS_OK;
}

static void destroy(void *instance) { free(instance); }

#if defined(MINOR3_PORTS)
/* Minor 3: a node with two input ports (declared in its caps) that emits, per item,
 * {"port": P, "configured": N}: the port it arrived at and how many ports configure
 * saw; its latency is 7 frames whatever its params. */
#include <stdio.h>
#include <string.h>

static int32_t tag_port(void *instance, uint32_t port, const RmDataView *in, RmNodeContext *ctx) {
  (void)in;
  char json[64];
  snprintf(json, sizeof json, "{\"port\":%u,\"configured\":%d}", (unsigned)port, *(int *)instance);
  RmDataView view = {RM_DATA_KIND_JSON, json, strlen(json), 0, 0, 0};
  return ctx->emit(ctx, 0, &view);
}

static int32_t tag_configure(void *instance, const char *caps, size_t len, RmNodeContext *ctx) {
  (void)ctx;
  int ports = 0; /* the array's objects: count the "kind" keys */
  for (size_t i = 0; i + 6 <= len; i++) ports += memcmp(caps + i, "\"kind\"", 6) == 0;
  *(int *)instance = ports;
  return RM_STATUS_OK;
}

static int64_t tag_latency(void *user_data, const char *params, size_t params_len, const char *caps, size_t caps_len) {
  (void)user_data;
  (void)params;
  (void)params_len;
  (void)caps;
  (void)caps_len;
  return 7;
}

static const RmNodePorts PORTS = {tag_port};
static const RmNodeConfigure CONFIGURE = {tag_configure};
static const RmNodeLatency LATENCY = {tag_latency};

static const void *get_extension(const char *node_type, const char *id) {
  if (strcmp(node_type, NODE_TYPE) != 0) return NULL;
  if (strcmp(id, RM_EXTENSION_PORTS) == 0) return &PORTS;
  if (strcmp(id, RM_EXTENSION_CONFIGURE) == 0) return &CONFIGURE;
  if (strcmp(id, RM_EXTENSION_LATENCY) == 0) return &LATENCY;
  return NULL;
}

static const RmPluginNodeType NODE_TYPES[] = {{
    .info = {.node_type = NODE_TYPE, .description = "Tags items with their input port.",
             .params_schema_json = "{\"type\":\"object\"}", .input_kinds = RM_KIND_AUDIO, .output_kinds = RM_KIND_JSON},
    .vtable = {.create = create, .process = process, .reset = reset, .destroy = destroy}, /* process: unused */
}};
static const RmNodeTypeExtension EXTENSIONS[] = {{
    .size = sizeof(RmNodeTypeExtension),
    .caps = "{\"inputs\":{\"main\":{\"kind\":\"audio\"},\"side\":{\"kind\":\"audio\"}},\"outputs\":{\"out\":{\"kind\":\"json\"}}}",
}};
static const RmPluginDescriptor DESCRIPTOR = {
    .abi_major = RM_PLUGIN_ABI_MAJOR,
    .abi_minor = RM_PLUGIN_ABI_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .license = "MIT",
    .node_types = NODE_TYPES,
    .n_node_types = 1,
    .extensions = EXTENSIONS,
    .get_extension = get_extension,
};
#elif defined(MINOR0_POSITIONAL)
/* As minor 0 laid the structs out, every field in order. */
static const RmPluginNodeType NODE_TYPES[] = {{
    {NODE_TYPE, "Halves f32 audio.", "{\"type\":\"object\"}", NULL, 0, RM_KIND_AUDIO, RM_KIND_AUDIO},
    {NULL, create, process, NULL, reset, destroy, NULL},
}};
static const RmPluginDescriptor DESCRIPTOR = {
    RM_PLUGIN_ABI_MAJOR, 0, NAME, "1.0.0", "MIT", "written against minor 0",
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
/* the minor each style was built against, as a binary built then says it */
#if defined(MINOR0_DESIGNATED)
#define BUILT_AGAINST 0
#elif defined(MINOR1_DESIGNATED)
#define BUILT_AGAINST 1
#else
#define BUILT_AGAINST 2
#endif
static const RmPluginDescriptor DESCRIPTOR = {
    .abi_major = RM_PLUGIN_ABI_MAJOR,
    .abi_minor = BUILT_AGAINST,
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
