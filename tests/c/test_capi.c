/* C host test: builds against include/remotemedia.h only and links the cdylib. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remotemedia.h"

static int passed = 0, failed = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (cond) {                                                               \
      passed++;                                                               \
    } else {                                                                  \
      failed++;                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
              __LINE__, #cond, rm_last_error_message());                      \
    }                                                                         \
  } while (0)

static RmPipeline *make(RmRuntime *rt, const char *manifest, RmStatus *status) {
  RmPipeline *p = NULL;
  *status = rm_pipeline_new(rt, manifest, strlen(manifest), &p);
  return p;
}

static void test_run_gain(RmRuntime *rt) {
  RmStatus st;
  RmPipeline *p = make(rt,
      "{\"version\":\"1\",\"nodes\":["
      "{\"id\":\"g\",\"node_type\":\"Gain\",\"params\":{\"gain_db\":6.0206}},"
      "{\"id\":\"out\",\"node_type\":\"PassThrough\"}],"
      "\"connections\":[{\"from\":\"g\",\"to\":\"out\"}]}", &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  int16_t input[480];
  for (int i = 0; i < 480; i++) input[i] = (int16_t)(i * 10 - 2400);
  RmOutputs *outs = NULL;
  st = rm_pipeline_run(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, &outs);
  CHECK(st == RM_STATUS_OK);
  size_t n = outs->len;
  const RmOutput *items = outs->items;
  CHECK(n == 1);
  if (n == 1) {
    CHECK(strcmp(items[0].node_id, "out") == 0);
    CHECK(strcmp(items[0].port, "out") == 0);
    CHECK(items[0].view.kind == RM_DATA_KIND_AUDIO);
    CHECK(items[0].view.format == RM_SAMPLE_FORMAT_I16);
    CHECK(items[0].view.len == 480 && items[0].view.sample_rate == 16000);
    const int16_t *y = items[0].view.data;
    int ok = 1;
    for (int i = 0; i < 480; i++) ok &= (y[i] == input[i] * 2);
    CHECK(ok);
  }
  rm_outputs_free(outs);
  rm_pipeline_free(p);
}

/* run_into writes one sink's audio into caller memory, and refuses (writing nothing)
 * what does not fit that shape. */
static void test_run_into(RmRuntime *rt) {
  RmStatus st;
  RmPipeline *p = make(rt,
      "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gain\",\"params\":{\"gain_db\":6.0206}}]}", &st);
  CHECK(st == RM_STATUS_OK);
  int16_t input[480], out[480], big[1000];
  for (int i = 0; i < 480; i++) input[i] = (int16_t)(i * 10 - 2400);
  size_t frames = 7;
  st = rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, big, 1000, RM_SAMPLE_FORMAT_I16, 1, &frames);
  CHECK(st == RM_STATUS_OK && frames == 480);
  int ok = 1;
  for (int i = 0; i < 480; i++) ok &= (big[i] == input[i] * 2);
  CHECK(ok);
  /* too small, wrong format, wrong channels: an error, and out untouched */
  memset(out, 0, sizeof out);
  st = rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, out, 479, RM_SAMPLE_FORMAT_I16, 1, &frames);
  CHECK(st == RM_STATUS_INVALID_ARGUMENT && strstr(rm_last_error_message(), "480") != NULL);
  st = rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, out, 480, RM_SAMPLE_FORMAT_F32, 1, &frames);
  CHECK(st == RM_STATUS_INVALID_ARGUMENT && strstr(rm_last_error_message(), "i16") != NULL);
  st = rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, out, 240, RM_SAMPLE_FORMAT_I16, 2, &frames);
  CHECK(st == RM_STATUS_INVALID_ARGUMENT);
  ok = 1;
  for (int i = 0; i < 480; i++) ok &= (out[i] == 0);
  CHECK(ok);
  CHECK(rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, out, 480, RM_SAMPLE_FORMAT_I16, 1, NULL) ==
        RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_into(NULL, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, out, 480, RM_SAMPLE_FORMAT_I16, 1,
                             &frames) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_into(p, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, NULL, 480, RM_SAMPLE_FORMAT_I16, 1,
                             &frames) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_into(p, NULL, 0, RM_SAMPLE_FORMAT_I16, 1, 16000, NULL, 0, RM_SAMPLE_FORMAT_I16, 1, &frames) ==
            RM_STATUS_OK &&
        frames == 0);
  CHECK(rm_session_pull_into(NULL, 0, out, 480, RM_SAMPLE_FORMAT_I16, 1, &frames) == RM_STATUS_INVALID_ARGUMENT);
  /* a session's queued audio, taken while it fits; the rest stays queued */
  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  CHECK(rm_session_push(s, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, 1000) == RM_STATUS_OK);
  CHECK(rm_session_push(s, input, 480, RM_SAMPLE_FORMAT_I16, 1, 16000, 1000) == RM_STATUS_OK);
  CHECK(rm_session_pull_into(s, 0, big, 700, RM_SAMPLE_FORMAT_I16, 1, &frames) == RM_STATUS_OK && frames == 480);
  CHECK(rm_session_pull_into(s, 0, out, 479, RM_SAMPLE_FORMAT_I16, 1, &frames) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_session_pull_into(s, 0, out, 480, RM_SAMPLE_FORMAT_I16, 1, &frames) == RM_STATUS_OK && frames == 480);
  CHECK(out[7] == input[7] * 2);
  CHECK(rm_session_pull_into(s, 0, out, 480, RM_SAMPLE_FORMAT_I16, 1, &frames) == RM_STATUS_OK && frames == 0);
  CHECK(rm_session_pull_into(s, 0, out, 480, RM_SAMPLE_FORMAT_I16, 1, NULL) == RM_STATUS_INVALID_ARGUMENT);
  rm_session_free(s);
  rm_pipeline_free(p);
  /* a pipeline that emits JSON events is refused */
  p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"v\",\"node_type\":\"VAD\"}]}", &st);
  float silence[480] = {0};
  float fout[480];
  st = rm_pipeline_run_into(p, silence, 480, RM_SAMPLE_FORMAT_F32, 1, 16000, fout, 480, RM_SAMPLE_FORMAT_F32, 1, &frames);
  CHECK(st == RM_STATUS_INVALID_ARGUMENT && strstr(rm_last_error_message(), "JSON") != NULL);
  rm_pipeline_free(p);
}

/* Two named inputs into a Mix: found by name, run together, pushed apart. */
static void test_named_inputs(RmRuntime *rt) {
  static const char *manifest =
      "{\"version\":\"1\",\"inputs\":[{\"name\":\"mic\"},{\"name\":\"far\"}],"
      "\"nodes\":[{\"id\":\"mix\",\"node_type\":\"Mix\",\"params\":{\"gains\":[1.0,0.5]}}],"
      "\"connections\":[{\"from\":\"$mic\",\"to\":\"mix.in0\"},{\"from\":\"$far\",\"to\":\"mix.in1\"}]}";
  RmStatus st;
  RmPipeline *p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  size_t count = 0, mic = 9, far = 9;
  CHECK(rm_pipeline_input_count(p, &count) == RM_STATUS_OK && count == 2);
  CHECK(rm_pipeline_input_index(p, "mic", &mic) == RM_STATUS_OK && mic == 0);
  CHECK(rm_pipeline_input_index(p, "far", &far) == RM_STATUS_OK && far == 1);
  CHECK(rm_pipeline_input_index(p, "fra", &far) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "did you mean 'far'") != NULL);
  CHECK(rm_pipeline_input_index(p, NULL, &far) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_input_index(p, "mic", NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_input_count(NULL, &count) == RM_STATUS_INVALID_ARGUMENT);
  float a[320], b[320];
  for (int i = 0; i < 320; i++) {
    a[i] = (float)i / 320.0f;
    b[i] = 1.0f - (float)i / 320.0f;
  }
  RmInput inputs[2] = {
      {mic, {RM_DATA_KIND_AUDIO, a, 320, RM_SAMPLE_FORMAT_F32, 1, 16000}},
      {far, {RM_DATA_KIND_AUDIO, b, 320, RM_SAMPLE_FORMAT_F32, 1, 16000}},
  };
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run_inputs(p, inputs, 2, &outs) == RM_STATUS_OK);
  size_t got = 0;
  int same = 1;
  for (size_t i = 0; outs != NULL && i < outs->len; i++) {
    const float *y = outs->items[i].view.data;
    for (size_t k = 0; k < outs->items[i].view.len; k++, got++) same &= y[k] == a[got] + 0.5f * b[got];
  }
  CHECK(got == 320 && same);
  rm_outputs_free(outs);
  float mixed[320];
  size_t frames = 0;
  CHECK(rm_pipeline_run_inputs_into(p, inputs, 2, mixed, 320, RM_SAMPLE_FORMAT_F32, 1, &frames) == RM_STATUS_OK);
  CHECK(frames == 320 && mixed[100] == a[100] + 0.5f * b[100]);
  /* one Audio to a pipeline of two inputs, an input twice, an unknown one: refused */
  CHECK(rm_pipeline_run(p, a, 320, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "mic, far") != NULL);
  RmInput twice[2] = {inputs[0], inputs[0]};
  CHECK(rm_pipeline_run_inputs(p, twice, 2, &outs) == RM_STATUS_INVALID_ARGUMENT);
  RmInput unknown = {7, inputs[0].data};
  CHECK(rm_pipeline_run_inputs(p, &unknown, 1, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_inputs(p, NULL, 1, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_inputs(p, NULL, 0, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_inputs(p, inputs, 2, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run_inputs(NULL, inputs, 2, &outs) == RM_STATUS_INVALID_ARGUMENT);
  /* pushed apart, in different chunk sizes */
  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  for (int k = 0; k < 320; k += 160) {
    RmInput one = {mic, {RM_DATA_KIND_AUDIO, a + k, 160, RM_SAMPLE_FORMAT_F32, 1, 16000}};
    CHECK(rm_session_push_inputs(s, &one, 1, 1000) == RM_STATUS_OK);
  }
  for (int k = 0; k < 320; k += 64) {
    RmInput one = {far, {RM_DATA_KIND_AUDIO, b + k, 64, RM_SAMPLE_FORMAT_F32, 1, 16000}};
    CHECK(rm_session_push_inputs(s, &one, 1, 1000) == RM_STATUS_OK);
  }
  CHECK(rm_session_push_inputs(NULL, inputs, 1, 1000) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  CHECK(rm_session_pull_into(s, 0, mixed, 320, RM_SAMPLE_FORMAT_F32, 1, &frames) == RM_STATUS_OK);
  CHECK(frames == 320 && mixed[300] == a[300] + 0.5f * b[300]);
  rm_session_free(s);
  rm_pipeline_free(p);
}

static void test_errors(RmRuntime *rt) {
  RmStatus st;
  RmPipeline *p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gian\"}]}", &st);
  CHECK(st == RM_STATUS_MANIFEST && p == NULL);
  CHECK(strstr(rm_last_error_message(), "nodes[0].node_type") != NULL);
  CHECK(strstr(rm_last_error_message(), "Gian") != NULL);

  p = make(rt,
      "{\"version\":\"1\",\"nodes\":[{\"id\":\"a\",\"node_type\":\"Gain\"},{\"id\":\"b\",\"node_type\":\"Gain\"}],"
      "\"connections\":[{\"from\":\"a\",\"to\":\"b\"},{\"from\":\"b\",\"to\":\"a\"}]}", &st);
  CHECK(st == RM_STATUS_CYCLE && p == NULL);
  CHECK(strstr(rm_last_error_message(), "a -> b -> a") != NULL ||
        strstr(rm_last_error_message(), "b -> a -> b") != NULL);

  p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gain\",\"params\":{\"gain_db\":999}}]}", &st);
  CHECK(st == RM_STATUS_MANIFEST);
  CHECK(strstr(rm_last_error_message(), "nodes[0].params.gain_db") != NULL);
  CHECK(rm_last_error_path() && strcmp(rm_last_error_path(), "nodes[0].params.gain_db") == 0);

  /* Null and bad arguments. */
  CHECK(rm_pipeline_new(rt, NULL, 3, &p) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_new(NULL, "{}", 2, &p) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_runtime_new(NULL) == RM_STATUS_INVALID_ARGUMENT);
  rm_pipeline_free(NULL);
  rm_outputs_free(NULL);
  rm_runtime_free(NULL);
  rm_string_free(NULL);

  p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gain\"}]}", &st);
  CHECK(st == RM_STATUS_OK);
  float x[4] = {0};
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run(p, x, 4, 99, 1, 16000, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "sample format 99") != NULL);
  CHECK(rm_pipeline_run(p, x, 3, RM_SAMPLE_FORMAT_F32, 2, 16000, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run(p, NULL, 4, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run(p, (const char *)x + 1, 2, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_run(p, x, 4, RM_SAMPLE_FORMAT_F32, 1, 16000, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(outs == NULL);
  /* Empty input is valid and yields empty audio. */
  CHECK(rm_pipeline_run(p, NULL, 0, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_OK);
  CHECK(outs != NULL && outs->len == 1 && outs->items[0].view.len == 0);
  rm_outputs_free(outs);
  rm_pipeline_free(p);
}

/* A host node in plain C: negates f32 audio; fails when params say so. */
typedef struct { int fail; int destroyed; } Negate;
static int live_instances = 0, released = 0;

static int32_t negate_create(void *user, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  (void)user;
  Negate *n = calloc(1, sizeof *n);
  n->fail = len > 0 && memmem(params, len, "\"fail\":true", 11) != NULL;
  live_instances++;
  *instance = n;
  (void)ctx;
  return RM_STATUS_OK;
}

static int32_t negate_process(void *instance, const RmDataView *in, RmNodeContext *ctx) {
  Negate *n = instance;
  if (n->fail) {
    ctx->set_error(ctx, "negate was told to fail");
    return RM_STATUS_TRANSIENT;
  }
  if (in->kind != RM_DATA_KIND_AUDIO || in->format != RM_SAMPLE_FORMAT_F32) {
    ctx->set_error(ctx, "negate takes f32 audio");
    return RM_STATUS_NODE;
  }
  float *y = malloc(in->len * sizeof(float) + 1);
  const float *x = in->data;
  for (size_t i = 0; i < in->len; i++) y[i] = -x[i];
  RmDataView out = *in;
  out.data = y;
  int32_t st = ctx->emit(ctx, 0, &out);
  free(y);
  return st;
}

static void negate_destroy(void *instance) { free(instance); live_instances--; }
static void negate_release(void *user) { (void)user; released++; }

static void test_host_node(RmRuntime *rt) {
  const char *outputs[] = {"out"};
  RmNodeTypeInfo info = {"Negate", "negates audio", "{\"type\":\"object\"}", outputs, 1, RM_KIND_AUDIO, RM_KIND_AUDIO};
  RmNodeVTable vt = {NULL, negate_create, negate_process, NULL, NULL, negate_destroy, negate_release};
  CHECK(rm_runtime_register_node(rt, &info, &vt) == RM_STATUS_OK);

  char *types = NULL;
  CHECK(rm_runtime_node_types(rt, &types) == RM_STATUS_OK);
  CHECK(types && strstr(types, "\"Negate\"") && strstr(types, "\"python\""));
  rm_string_free(types);

  RmStatus st;
  RmPipeline *p = make(rt,
      "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gain\",\"params\":{\"gain_db\":0}},"
      "{\"id\":\"neg\",\"node_type\":\"Negate\"}],\"connections\":[{\"from\":\"g\",\"to\":\"neg\"}]}", &st);
  CHECK(st == RM_STATUS_OK);
  CHECK(live_instances == 1);
  float x[3] = {0.5f, -0.25f, 1.0f};
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run(p, x, 3, RM_SAMPLE_FORMAT_F32, 1, 8000, &outs) == RM_STATUS_OK);
  size_t n = outs->len;
  const RmOutput *items = outs->items;
  CHECK(n == 1 && strcmp(items[0].node_id, "neg") == 0);
  CHECK(items[0].node_index == 1 && items[0].port_index == 0);
  if (n == 1) {
    const float *y = items[0].view.data;
    CHECK(y[0] == -0.5f && y[1] == 0.25f && y[2] == -1.0f);
  }
  rm_outputs_free(outs);
  rm_pipeline_free(p);
  CHECK(live_instances == 0);

  p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"bad\",\"node_type\":\"Negate\",\"params\":{\"fail\":true}}]}", &st);
  CHECK(st == RM_STATUS_OK);
  CHECK(rm_pipeline_run(p, x, 3, RM_SAMPLE_FORMAT_F32, 1, 8000, &outs) == RM_STATUS_NODE);
  CHECK(rm_last_error_node_id() && strcmp(rm_last_error_node_id(), "bad") == 0);
  CHECK(rm_last_error_operation() && strcmp(rm_last_error_operation(), "process") == 0);
  CHECK(rm_last_error_retryable());
  CHECK(strstr(rm_last_error_message(), "negate was told to fail") != NULL);
  rm_pipeline_free(p);
  CHECK(live_instances == 0);

  /* A vtable missing required callbacks is refused, and release still runs. */
  RmNodeVTable incomplete = {NULL, negate_create, NULL, NULL, NULL, negate_destroy, negate_release};
  info.node_type = "Broken";
  int before = released;
  CHECK(rm_runtime_register_node(rt, &info, &incomplete) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(released == before + 1);

  /* Output port names: empty, repeated or dotted ones are refused, naming the port. */
  const char *bad_ports[][2] = {{"a", ""}, {"a", "a"}, {"a", "b.c"}};
  const char *problems[] = {"is empty", "is given twice", "contains '.'"};
  for (int i = 0; i < 3; i++) {
    RmNodeTypeInfo ports = {"Ports", "", NULL, bad_ports[i], 2, RM_KIND_AUDIO, RM_KIND_AUDIO};
    CHECK(rm_runtime_register_node(rt, &ports, &vt) == RM_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(rm_last_error_message(), "outputs[1]") && strstr(rm_last_error_message(), problems[i]));
  }
}

/* A host node with two input ports: "Diff" emits in0 - in1 per item pair, configure
 * counts its calls, get_extension offers process_port and configure. */
typedef struct { float held; int have; int configures; } Diff;
static int diff_configures = 0;

static int32_t diff_create(void *user, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  (void)user, (void)params, (void)len, (void)ctx;
  *instance = calloc(1, sizeof(Diff));
  return *instance ? RM_STATUS_OK : RM_STATUS_NODE;
}
static int32_t diff_process(void *instance, const RmDataView *in, RmNodeContext *ctx) {
  (void)instance, (void)in;
  ctx->set_error(ctx, "Diff takes its items through process_port");
  return RM_STATUS_INTERNAL;
}
static int32_t diff_port(void *instance, uint32_t port, const RmDataView *in, RmNodeContext *ctx) {
  Diff *d = instance;
  const float *x = in->data;
  if (port == 0) {
    d->held = x[0];
    d->have = 1;
    return RM_STATUS_OK;
  }
  if (!d->have) return RM_STATUS_OK;
  float y = d->held - x[0];
  RmDataView out = *in;
  out.data = &y;
  out.len = 1;
  return ctx->emit(ctx, 0, &out);
}
static int32_t diff_configure(void *instance, const char *caps, size_t len, RmNodeContext *ctx) {
  /* it takes 8000 Hz only */
  if (memmem(caps, len, "\"sample_rate\":16000", 19) != NULL) {
    ctx->set_error(ctx, "Diff takes 8000 Hz");
    return RM_STATUS_INVALID_ARGUMENT;
  }
  ((Diff *)instance)->configures++;
  diff_configures++;
  return RM_STATUS_OK;
}
static int32_t diff_reset(void *instance, RmNodeContext *ctx) {
  (void)ctx;
  Diff *d = instance;
  d->have = 0;
  return RM_STATUS_OK;
}
static void diff_destroy(void *instance) { free(instance); }
static const RmNodePorts DIFF_PORTS = {diff_port};
static const RmNodeConfigure DIFF_CONFIGURE = {diff_configure};
static const void *diff_extension(const char *node_type, const char *id) {
  if (strcmp(node_type, "Diff") != 0) return NULL;
  if (strcmp(id, RM_EXTENSION_PORTS) == 0) return &DIFF_PORTS;
  if (strcmp(id, RM_EXTENSION_CONFIGURE) == 0) return &DIFF_CONFIGURE;
  return NULL;
}

static void test_host_node_ports(RmRuntime *rt) {
  RmNodeTypeInfo info = {"Diff", "in0 - in1", NULL, NULL, 0, RM_KIND_AUDIO, RM_KIND_AUDIO};
  RmNodeVTable vt = {NULL, diff_create, diff_process, NULL, diff_reset, diff_destroy, NULL};
  RmNodeTypeExtension ext = {sizeof(RmNodeTypeExtension), 0,
                             "{\"inputs\":{\"in0\":{\"format\":[\"f32\"]},\"in1\":{\"format\":[\"f32\"]}},\"outputs\":{\"out\":{}}}"};
  /* two ports declared and no process_port: refused */
  CHECK(rm_runtime_register_node_ext(rt, &info, &ext, &vt) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "remotemedia.ports/1") != NULL);
  CHECK(rm_runtime_register_node_extensions(rt, &info, &ext, &vt, diff_extension) == RM_STATUS_OK);
  RmStatus st;
  RmPipeline *p = make(rt,
      "{\"version\":\"1\",\"inputs\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"nodes\":[{\"id\":\"d\",\"node_type\":\"Diff\"}],"
      "\"connections\":[{\"from\":\"$b\",\"to\":\"d.in1\"},{\"from\":\"$a\",\"to\":\"d.in0\"}]}", &st);
  CHECK(st == RM_STATUS_OK);
  float a = 5.0f, b = 2.0f;
  RmInput inputs[2] = {{0, {RM_DATA_KIND_AUDIO, &a, 1, RM_SAMPLE_FORMAT_F32, 1, 8000}},
                       {1, {RM_DATA_KIND_AUDIO, &b, 1, RM_SAMPLE_FORMAT_F32, 1, 8000}}};
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run_inputs(p, inputs, 2, &outs) == RM_STATUS_OK);
  CHECK(outs && outs->len == 1 && ((const float *)outs->items[0].view.data)[0] == 3.0f);
  rm_outputs_free(outs);
  CHECK(diff_configures == 1); /* once per run */
  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  for (int k = 0; k < 3; k++) CHECK(rm_session_push_inputs(s, inputs, 2, 1000) == RM_STATUS_OK);
  CHECK(diff_configures == 2); /* once per stream, before its first item */
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  CHECK(rm_session_push_inputs(s, inputs, 1, 1000) == RM_STATUS_OK);
  CHECK(diff_configures == 3); /* the next stream */
  /* caps the node refuses in configure: the push fails, naming the node and configure */
  float c = 1.0f;
  RmInput other = {0, {RM_DATA_KIND_AUDIO, &c, 1, RM_SAMPLE_FORMAT_F32, 1, 16000}};
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  CHECK(rm_session_push_inputs(s, &other, 1, 1000) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_last_error_operation() && strcmp(rm_last_error_operation(), "configure") == 0);
  rm_session_free(s);
  rm_pipeline_free(p);
}

/* rm_metrics_to_prometheus takes metrics JSON as the library gives it, nothing else. */
static void test_prometheus_input(void) {
  const char *bad[] = {"[]", "null", "{}", "{\"pipeline\":{}}", "not json"};
  char *text = NULL;
  for (int i = 0; i < 5; i++) {
    CHECK(rm_metrics_to_prometheus(bad[i], strlen(bad[i]), &text) == RM_STATUS_INVALID_ARGUMENT && text == NULL);
  }
  const char *good = "{\"pipeline\":{\"name\":\"p\"},\"nodes\":[]}";
  CHECK(rm_metrics_to_prometheus(good, strlen(good), &text) == RM_STATUS_OK && text != NULL);
  CHECK(text && strstr(text, "remotemedia_pipeline_wall_seconds_total{pipeline=\"p\"}"));
  rm_string_free(text);
}

/* Streams 1 s of 48 kHz audio in 20 ms chunks through Resample and compares with a one-shot run. */
static void test_session(RmRuntime *rt) {
  const char *m = "{\"version\":\"1\",\"nodes\":[{\"id\":\"rs\",\"node_type\":\"Resample\","
                  "\"params\":{\"target_rate\":16000}}]}";
  RmStatus st;
  RmPipeline *p = make(rt, m, &st);
  CHECK(st == RM_STATUS_OK);
  static float x[48000];
  for (int i = 0; i < 48000; i++) x[i] = (float)sin(i * 0.01) * 0.5f;
  RmOutputs *whole = NULL;
  CHECK(rm_pipeline_run(p, x, 48000, RM_SAMPLE_FORMAT_F32, 1, 48000, &whole) == RM_STATUS_OK);
  size_t whole_frames = 0;
  for (size_t i = 0; i < whole->len; i++) whole_frames += whole->items[i].view.len;
  CHECK(whole_frames == 16000);

  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK && s != NULL);
  for (int off = 0; off < 48000; off += 960)
    CHECK(rm_session_push(s, x + off, 960, RM_SAMPLE_FORMAT_F32, 1, 48000, 0) == RM_STATUS_OK);
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  RmOutputs *streamed = NULL;
  CHECK(rm_session_pull(s, 0, 0, &streamed) == RM_STATUS_OK);
  size_t k = 0, j = 0, mismatches = 0, total = 0;
  for (size_t i = 0; i < streamed->len; i++) {
    const float *y = streamed->items[i].view.data;
    for (size_t n = 0; n < streamed->items[i].view.len; n++, total++) {
      const float *w = whole->items[k].view.data;
      mismatches += y[n] != w[j];
      if (++j == whole->items[k].view.len) { j = 0; k++; }
    }
  }
  CHECK(total == 16000 && mismatches == 0);
  RmSessionStats stats;
  CHECK(rm_session_stats(s, &stats) == RM_STATUS_OK && stats.chunks_in == 50 && stats.dropped == 0);
  CHECK(stats.queue_depth == 0);
  rm_outputs_free(streamed);
  rm_outputs_free(whole);
  CHECK(rm_session_close(s) == RM_STATUS_OK);
  CHECK(rm_session_push(s, x, 960, RM_SAMPLE_FORMAT_F32, 1, 48000, 0) == RM_STATUS_CLOSED);
  rm_session_free(s);

  /* Backpressure: a queue of 2 with no consumer. */
  RmPipeline *pt = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"p\",\"node_type\":\"PassThrough\"}]}", &st);
  RmSessionOptions block = {2, RM_OVERFLOW_BLOCK}, drop = {2, RM_OVERFLOW_DROP_OLDEST}, bad = {2, 7};
  CHECK(rm_session_new(pt, &block, &s) == RM_STATUS_OK);
  CHECK(rm_session_push(s, x, 10, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_OK);
  CHECK(rm_session_push(s, x, 10, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_OK);
  CHECK(rm_session_push(s, x, 10, RM_SAMPLE_FORMAT_F32, 1, 16000, 5) == RM_STATUS_QUEUE_FULL);
  rm_session_free(s);
  CHECK(rm_session_new(pt, &drop, &s) == RM_STATUS_OK);
  for (int i = 0; i < 5; i++) CHECK(rm_session_push(s, x, 10, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_OK);
  CHECK(rm_session_stats(s, &stats) == RM_STATUS_OK && stats.dropped == 3 && stats.queue_depth == 2);
  rm_session_free(s);
  CHECK(rm_session_new(pt, &bad, &s) == RM_STATUS_INVALID_ARGUMENT);
  /* Freed mid-stream with outputs still queued and resampler state held: nothing may leak. */
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  CHECK(rm_session_push(s, x, 4000, RM_SAMPLE_FORMAT_F32, 1, 48000, 0) == RM_STATUS_OK);
  rm_session_free(s);
  CHECK(rm_session_push(NULL, x, 10, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_session_pull(NULL, 0, 0, &streamed) == RM_STATUS_INVALID_ARGUMENT);
  rm_session_free(NULL);
  rm_pipeline_free(pt);
  rm_pipeline_free(p);
}

/* The VAD's silero engine, given the model file's path (REMOTEMEDIA_TEST_SILERO_MODEL). */
static void test_silero(RmRuntime *rt) {
  const char *model = getenv("REMOTEMEDIA_TEST_SILERO_MODEL");
  if (model == NULL || model[0] == '\0') {
    fprintf(stderr, "c_api: silero engine test skipped (REMOTEMEDIA_TEST_SILERO_MODEL not set)\n");
    return;
  }
  char manifest[4096];
  const char *fmt = "{\"version\":\"1\",\"nodes\":[{\"id\":\"v\",\"node_type\":\"VAD\","
                    "\"params\":{\"engine\":\"silero\",\"model_path\":\"%s\"}}]}";
  CHECK(snprintf(manifest, sizeof manifest, fmt, model) < (int)sizeof manifest);
  RmStatus st;
  RmPipeline *p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  if (p == NULL) return;
  static float x[16000];
  for (int i = 0; i < 16000; i++) x[i] = 0.3f * (float)sin(i * 0.07) * (float)(i > 4000 && i < 12000);
  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  for (int off = 0; off < 16000; off += 320)
    CHECK(rm_session_push(s, x + off, 320, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_OK);
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  RmOutputs *outs = NULL;
  CHECK(rm_session_pull(s, 0, 0, &outs) == RM_STATUS_OK);
  size_t frames_events = 0;
  for (size_t i = 0; outs && i < outs->len; i++) {
    if (strcmp(outs->items[i].port, "frames") == 0 && outs->items[i].view.kind == RM_DATA_KIND_JSON) {
      frames_events++;
      const char *key = "\"frame_ms\":32"; /* JSON views are not NUL-terminated */
      CHECK(memmem(outs->items[i].view.data, outs->items[i].view.len, key, strlen(key)) != NULL);
    }
  }
  CHECK(frames_events > 0);
  rm_outputs_free(outs);
  rm_session_free(s);
  rm_pipeline_free(p);

  /* A file that is not a model fails at validation, naming the param. */
  CHECK(snprintf(manifest, sizeof manifest, fmt, "/dev/null") < (int)sizeof manifest);
  p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_MANIFEST && p == NULL);
  CHECK(rm_last_error_path() && strcmp(rm_last_error_path(), "nodes[0].params.model_path") == 0);
}

static RmGroupChunk group_chunk(uint64_t session, const float *x, size_t n) {
  RmGroupChunk c = {session, 0, {RM_DATA_KIND_AUDIO, x, n, RM_SAMPLE_FORMAT_F32, 1, 16000}};
  return c;
}

/* A session group: open, push (one call for every session), pull, flush, close; a bad
 * session id fails that session only, and each session's outputs are a lone one's. */
static void test_group(RmRuntime *rt) {
  RmStatus st;
  RmPipeline *p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"p\",\"node_type\":\"PassThrough\"}]}", &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  RmGroup *g = NULL;
  CHECK(rm_group_new(NULL, 0, 1, &g) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_new(p, 0, 1, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_new(p, 4, RM_GROUP_MAX_WORKERS + 1, &g) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_new(p, 4, 1, &g) == RM_STATUS_OK && g != NULL);
  uint64_t a = 0, b = 0;
  CHECK(rm_group_open(g, &a) == RM_STATUS_OK && a == 1);
  CHECK(rm_group_open(g, &b) == RM_STATUS_OK && b == 2);
  CHECK(rm_group_open(g, NULL) == RM_STATUS_INVALID_ARGUMENT);
  static float x[960];
  for (int i = 0; i < 960; i++) x[i] = (float)i / 960.0f;
  RmGroupChunk chunks[3] = {group_chunk(b, x, 320), group_chunk(a, x + 320, 160), group_chunk(99, x, 10)};
  RmStatus statuses[3];
  CHECK(rm_group_push(g, chunks, 3, statuses) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "session 99") != NULL);
  CHECK(statuses[0] == RM_STATUS_OK && statuses[1] == RM_STATUS_OK && statuses[2] == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_push(g, chunks, 2, NULL) == RM_STATUS_OK);
  CHECK(rm_group_push(NULL, chunks, 2, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_push(g, NULL, 2, NULL) == RM_STATUS_INVALID_ARGUMENT);
  size_t queued = 0;
  uint64_t dropped = 0;
  CHECK(rm_group_queued(g, a, &queued, &dropped) == RM_STATUS_OK && queued == 2 && dropped == 0);
  RmGroupOutputs *outs = NULL;
  CHECK(rm_group_pull(g, 0, 0x80, &outs) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_pull(g, 0, 0, &outs) == RM_STATUS_OK && outs != NULL);
  if (outs) {
    /* session order (a, then b), each in push order */
    CHECK(outs->len == 4 && outs->sessions[0] == a && outs->sessions[1] == a && outs->sessions[2] == b);
    CHECK(outs->len == 4 && outs->items[0].view.len == 160 && outs->items[2].view.len == 320);
    CHECK(outs->len == 4 && ((const float *)outs->items[2].view.data)[5] == x[5]);
    CHECK(outs->vad_frames.len == 0);
  }
  rm_group_outputs_free(outs);
  /* one block for both sessions: row i for session ids[i]; an unknown id fails alone */
  uint64_t block_ids[3] = {b, a, 42};
  CHECK(rm_group_push_block(g, block_ids, 3, x, 160, RM_SAMPLE_FORMAT_F32, 1, 16000, statuses) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(statuses[0] == RM_STATUS_OK && statuses[1] == RM_STATUS_OK && statuses[2] == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_push_block(g, block_ids, 2, NULL, 160, RM_SAMPLE_FORMAT_F32, 1, 16000, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_push_block(g, block_ids, 2, x, 160, 99, 1, 16000, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_pull(g, 0, 0, &outs) == RM_STATUS_OK && outs != NULL);
  if (outs) {
    CHECK(outs->len == 2 && outs->sessions[0] == a && outs->sessions[1] == b);
    /* a took the block's second row, b its first */
    CHECK(outs->len == 2 && ((const float *)outs->items[0].view.data)[0] == x[160] &&
          ((const float *)outs->items[1].view.data)[0] == x[0]);
  }
  rm_group_outputs_free(outs);
  CHECK(rm_group_close(g, a) == RM_STATUS_OK);
  CHECK(rm_group_close(g, a) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "closed") != NULL);
  chunks[0] = group_chunk(a, x, 10);
  CHECK(rm_group_push(g, chunks, 1, NULL) == RM_STATUS_INVALID_ARGUMENT);
  uint64_t flush[2] = {b, 7};
  CHECK(rm_group_flush(g, flush, 2, statuses) == RM_STATUS_INVALID_ARGUMENT && statuses[0] == RM_STATUS_OK);
  rm_group_free(g);
  rm_pipeline_free(p);

  const char *model = getenv("REMOTEMEDIA_TEST_SILERO_MODEL");
  if (model == NULL || model[0] == '\0') {
    fprintf(stderr, "c_api: silero group test skipped (REMOTEMEDIA_TEST_SILERO_MODEL not set)\n");
    return;
  }
  /* Silero VAD sessions fed the same audio in different chunkings give the same rows
   * (batched inference equals each session alone); the low threshold makes the tone's
   * onset speech. */
  char manifest[4096];
  const char *fmt = "{\"version\":\"1\",\"nodes\":[{\"id\":\"v\",\"node_type\":\"VAD\","
                    "\"params\":{\"engine\":\"silero\",\"threshold\":0.01,\"model_path\":\"%s\"}}]}";
  CHECK(snprintf(manifest, sizeof manifest, fmt, model) < (int)sizeof manifest);
  p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  if (p == NULL) return;
  CHECK(rm_group_new(p, 0, 2, &g) == RM_STATUS_OK);
  static float speech[16000];
  for (int i = 0; i < 16000; i++) speech[i] = 0.3f * (float)sin(i * 0.07) * (float)(i > 4000 && i < 12000);
  uint64_t ids[3];
  for (int k = 0; k < 3; k++) CHECK(rm_group_open(g, &ids[k]) == RM_STATUS_OK);
  const size_t sizes[3] = {320, 512, 1000};
  size_t at[3] = {0, 0, 0};
  for (int tick = 0; tick < 60; tick++) {
    RmGroupChunk c[3];
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
      size_t len = at[k] + sizes[k] <= 16000 ? sizes[k] : 16000 - at[k];
      if (len > 0) c[n++] = group_chunk(ids[k], speech + at[k], len);
      at[k] += len;
    }
    CHECK(rm_group_push(g, c, n, NULL) == RM_STATUS_OK);
  }
  RmGroupStats stats;
  CHECK(rm_group_stats(NULL, &stats) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_group_stats(g, &stats) == RM_STATUS_OK && stats.sessions == 3 && stats.ticks == 60);
  /* every pushed window ran in a batched pass; the sessions' windows shared some */
  CHECK(stats.inference_inputs == 3 * 31 && stats.inference_passes < stats.inference_inputs);
  CHECK(rm_group_flush(g, ids, 3, NULL) == RM_STATUS_OK);
  CHECK(rm_group_pull(g, 0, RM_GROUP_PULL_VAD_TABLE, &outs) == RM_STATUS_OK && outs != NULL);
  if (outs) {
    const RmVadFrames *f = &outs->vad_frames;
    size_t per[3] = {0, 0, 0};
    for (size_t i = 0; i < f->len; i++) per[f->session[i] - ids[0]]++;
    CHECK(per[0] == 32 && per[1] == 32 && per[2] == 32); /* 16000 / 512 rounded up */
    int same = 1, speech_seen = 0;
    for (size_t i = 0; i < 32 && f->len == 96; i++) {
      same &= f->frame[i] == i && f->frame[32 + i] == i && f->frame[64 + i] == i;
      same &= f->score[i] == f->score[32 + i] && f->score[i] == f->score[64 + i];
      same &= f->speech[i] == f->speech[32 + i] && f->speech[i] == f->speech[64 + i];
      speech_seen |= f->speech[i];
    }
    CHECK(same && speech_seen);
    for (size_t i = 0; i < outs->len; i++) CHECK(strcmp(outs->items[i].port, "frames") != 0);
  }
  rm_group_outputs_free(outs);
  rm_group_free(g);
  rm_pipeline_free(p);
}

/* SmartTurn given the model file's path (REMOTEMEDIA_TEST_SMART_TURN_MODEL): a clip
 * streamed in 20 ms chunks is judged once at flush, a probability between 0 and 1. */
static void test_smart_turn(RmRuntime *rt) {
  const char *model = getenv("REMOTEMEDIA_TEST_SMART_TURN_MODEL");
  if (model == NULL || model[0] == '\0') {
    fprintf(stderr, "c_api: SmartTurn test skipped (REMOTEMEDIA_TEST_SMART_TURN_MODEL not set)\n");
    return;
  }
  char manifest[4096];
  const char *fmt = "{\"version\":\"1\",\"nodes\":[{\"id\":\"t\",\"node_type\":\"SmartTurn\","
                    "\"params\":{\"model_path\":\"%s\"}}]}";
  CHECK(snprintf(manifest, sizeof manifest, fmt, model) < (int)sizeof manifest);
  RmStatus st;
  RmPipeline *p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  if (p == NULL) return;
  static float x[32000];
  for (int i = 0; i < 32000; i++) x[i] = 0.3f * (float)sin(i * 0.07) * (float)sin(i * 0.0007);
  RmSession *s = NULL;
  CHECK(rm_session_new(p, NULL, &s) == RM_STATUS_OK);
  for (int off = 0; off < 32000; off += 320)
    CHECK(rm_session_push(s, x + off, 320, RM_SAMPLE_FORMAT_F32, 1, 16000, 0) == RM_STATUS_OK);
  CHECK(rm_session_flush(s) == RM_STATUS_OK);
  RmOutputs *outs = NULL;
  CHECK(rm_session_pull(s, 0, 0, &outs) == RM_STATUS_OK);
  CHECK(outs != NULL && outs->len == 1);
  if (outs != NULL && outs->len == 1) {
    CHECK(outs->items[0].view.kind == RM_DATA_KIND_JSON);
    const char *key = "\"probability\":"; /* JSON views are not NUL-terminated */
    const char *at = memmem(outs->items[0].view.data, outs->items[0].view.len, key, strlen(key));
    CHECK(at != NULL);
    if (at != NULL) {
      double probability = strtod(at + strlen(key), NULL);
      CHECK(probability >= 0.0 && probability <= 1.0);
    }
  }
  rm_outputs_free(outs);
  rm_session_free(s);
  rm_pipeline_free(p);

  /* A file that is not a Smart Turn model fails at validation, naming the param. */
  const char *silero = getenv("REMOTEMEDIA_TEST_SILERO_MODEL");
  CHECK(snprintf(manifest, sizeof manifest, fmt, silero && silero[0] ? silero : "/dev/null") < (int)sizeof manifest);
  p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_MANIFEST && p == NULL);
  CHECK(rm_last_error_path() && strcmp(rm_last_error_path(), "nodes[0].params.model_path") == 0);
}

/* A Model on onnxruntime: silero's full graph (with its If) from the silero-vad package,
 * the library given by path (REMOTEMEDIA_TEST_ONNXRUNTIME, the onnxruntime wheel's), state
 * carried, two outputs as two ports; and the process-wide inference settings. */
static void test_onnxruntime(RmRuntime *rt) {
  CHECK(rm_set_inference_threads(0) == RM_STATUS_INVALID_ARGUMENT && strstr(rm_last_error_message(), "1..=1024") != NULL);
  CHECK(rm_set_inference_threads(2) == RM_STATUS_OK && rm_inference_threads() == 2);
  CHECK(rm_onnxruntime_set_path(NULL) == RM_STATUS_INVALID_ARGUMENT);
  const char *library = getenv("REMOTEMEDIA_TEST_ONNXRUNTIME");
  const char *silero = getenv("REMOTEMEDIA_TEST_SILERO_MODEL");
  if (library == NULL || library[0] == '\0' || silero == NULL || silero[0] == '\0') {
    fprintf(stderr, "c_api: onnxruntime test skipped (REMOTEMEDIA_TEST_ONNXRUNTIME or REMOTEMEDIA_TEST_SILERO_MODEL not set)\n");
    return;
  }
  CHECK(rm_onnxruntime_set_path(library) == RM_STATUS_OK);
  char model[4096], manifest[8192];
  size_t dir = (size_t)(strrchr(silero, '/') - silero);
  CHECK(snprintf(model, sizeof model, "%.*s/silero_vad.onnx", (int)dir, silero) < (int)sizeof model);
  const char *fmt = "{\"version\":\"1\",\"nodes\":[{\"id\":\"m\",\"node_type\":\"Model\",\"params\":{\"model_path\":\"%s\","
                    "\"engine\":\"onnxruntime\",\"window\":512,\"context\":64,\"state\":[[\"state\",\"stateN\"]],"
                    "\"constants\":{\"sr\":16000},\"output\":[\"output\",\"stateN\"]}}]}";
  CHECK(snprintf(manifest, sizeof manifest, fmt, model) < (int)sizeof manifest);
  RmStatus st;
  RmPipeline *p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  if (p == NULL) return;
  static float x[8192];
  for (int i = 0; i < 8192; i++) x[i] = 0.3f * (float)sin(i * 0.07);
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run(p, x, 8192, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_OK);
  size_t probabilities = 0, states = 0;
  for (size_t i = 0; outs && i < outs->len; i++) {
    if (strcmp(outs->items[i].port, "output") == 0) probabilities++;
    if (strcmp(outs->items[i].port, "stateN") == 0) states++;
  }
  CHECK(probabilities == 16 && states == 16);
  rm_outputs_free(outs);
  rm_pipeline_free(p);
  /* loaded now: another library is refused, the same one is not */
  CHECK(rm_onnxruntime_set_path("/elsewhere/libonnxruntime.so") == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_onnxruntime_set_path(library) == RM_STATUS_OK);
  /* a state pair naming no output fails at validation, at its path */
  CHECK(snprintf(manifest, sizeof manifest,
                 "{\"version\":\"1\",\"nodes\":[{\"id\":\"m\",\"node_type\":\"Model\",\"params\":{\"model_path\":\"%s\","
                 "\"window\":512,\"state\":[[\"state\",\"nope\"]],\"constants\":{\"sr\":16000}}}]}",
                 model) < (int)sizeof manifest);
  p = make(rt, manifest, &st);
  CHECK(st == RM_STATUS_MANIFEST && p == NULL);
  CHECK(rm_last_error_path() && strcmp(rm_last_error_path(), "nodes[0].params.state[0]") == 0);
}

static int log_records = 0, log_warnings = 0, plugin_logs = 0;
static void count_log(void *user, uint32_t level, const char *target, const char *message) {
  (void)user;
  log_records++;
  if (level == 2 && strstr(message, "node=bad") != NULL) log_warnings++;
  if (strcmp(target, "remotemedia::plugin") == 0 && strstr(message, "biquad plugin loaded") != NULL) plugin_logs++;
}

/* The example plugins (C biquad, Rust noise gate), from the directory in
 * REMOTEMEDIA_TEST_PLUGINS (set by tests/c/run.sh). */
static void test_plugins(RmRuntime *rt) {
  const char *dir = getenv("REMOTEMEDIA_TEST_PLUGINS");
  char path[4096];
  RmStatus st;
  CHECK(dir != NULL);
  if (!dir) return;
  snprintf(path, sizeof path, "%s/libbiquad.so", dir);
  CHECK(rm_runtime_load_plugin(rt, path) == RM_STATUS_OK);
  CHECK(plugin_logs == 1); /* the plugin's log call reached the host's callback */
  snprintf(path, sizeof path, "%s/libremotemedia_noise_gate.so", dir);
  CHECK(rm_runtime_load_plugin(rt, path) == RM_STATUS_OK);

  RmPipeline *p = make(rt,
      "{\"version\":\"1\",\"nodes\":["
      "{\"id\":\"lp\",\"node_type\":\"Biquad\",\"params\":{\"type\":\"lowpass\",\"frequency_hz\":100}},"
      "{\"id\":\"gate\",\"node_type\":\"NoiseGate\",\"params\":{\"threshold_db\":-20,\"attack_ms\":1}}],"
      "\"connections\":[{\"from\":\"lp\",\"to\":\"gate\"}]}", &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  float dc[4800];
  for (int i = 0; i < 4800; i++) dc[i] = 0.5f;
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run(p, dc, 4800, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_OK);
  CHECK(outs != NULL && outs->len == 1);
  if (outs && outs->len == 1) {
    const float *y = outs->items[0].view.data;
    CHECK(outs->items[0].view.len == 4800);
    CHECK(fabsf(y[0]) < 0.01f);          /* the lowpass starts from rest, the gate closed */
    CHECK(fabsf(y[4799] - 0.5f) < 0.01f); /* DC passes the lowpass and opens the gate */
  }
  rm_outputs_free(outs);
  rm_pipeline_free(p);

  char *json = NULL;
  CHECK(rm_runtime_plugins(rt, &json) == RM_STATUS_OK);
  CHECK(json && strstr(json, "\"name\":\"biquad\"") && strstr(json, "\"name\":\"noise-gate\""));
  rm_string_free(json);
  char *report = NULL;
  /* The check runs each instance in a remotemedia-node-host child, which is not built
   * with sanitizers: the sanitizer run points it at the plain build of the plugin. */
  const char *check_dir = getenv("REMOTEMEDIA_TEST_CHECK_PLUGINS");
  snprintf(path, sizeof path, "%s/libbiquad.so", check_dir && check_dir[0] ? check_dir : dir);
  CHECK(rm_plugin_check(path, &report) == RM_STATUS_OK);
  CHECK(report && strstr(report, "\"passed\":true"));
  rm_string_free(report);

  CHECK(rm_runtime_load_plugin(rt, "/nonexistent/libnothing.so") == RM_STATUS_PLUGIN);
  CHECK(strstr(rm_last_error_message(), "/nonexistent/libnothing.so") != NULL);
  CHECK(rm_runtime_load_plugin(rt, NULL) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_runtime_load_plugin(NULL, path) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_plugin_check(path, NULL) == RM_STATUS_INVALID_ARGUMENT);
}

/* A plugin that segfaults or hangs on an empty chunk, run with "isolation":"process":
 * the chunk fails with a status and message, this process carries on, later chunks flow. */
static void test_isolation(RmRuntime *rt) {
  const char *dir = getenv("REMOTEMEDIA_TEST_BROKEN_PLUGINS");
  char path[4096];
  RmStatus st;
  CHECK(dir != NULL);
  if (!dir) return;
  const char *types[] = {"Crashy", "Hangy"};
  const char *files[] = {"libcrashy.so", "libhangy.so"};
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[k]);
    CHECK(rm_runtime_load_plugin(rt, path) == RM_STATUS_OK);
    char manifest[512];
    snprintf(manifest, sizeof manifest,
             "{\"version\":\"1\",\"nodes\":[{\"id\":\"x\",\"node_type\":\"%s\",\"isolation\":\"process\","
             "\"timeout_ms\":300,\"retry\":{\"max_retries\":0}}]}",
             types[k]);
    RmPipeline *p = make(rt, manifest, &st);
    CHECK(st == RM_STATUS_OK && p != NULL);
    if (!p) continue;
    float x[4] = {0.1f, -0.2f, 0.3f, -0.4f};
    for (int round = 0; round < 2; round++) {
      RmOutputs *outs = NULL;
      CHECK(rm_pipeline_run(p, x, 4, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_OK);
      CHECK(outs && outs->len == 1 && outs->items[0].view.len == 4 && ((const float *)outs->items[0].view.data)[3] == -0.4f);
      rm_outputs_free(outs);
      outs = NULL;
      st = rm_pipeline_run(p, x, 0, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs);
      CHECK(st == (k == 0 ? RM_STATUS_NODE : RM_STATUS_TIMEOUT) && outs == NULL);
      CHECK(strstr(rm_last_error_message(), k == 0 ? "SIGSEGV" : "timed out") != NULL);
      CHECK(rm_last_error_node_id() && strcmp(rm_last_error_node_id(), "x") == 0);
    }
    rm_pipeline_free(p);
  }
}

/* A plugin library stays loaded while a pipeline using it outlives its runtime, and is
 * unloaded once the last user is gone. Runs after every other runtime is freed. */
static void test_plugin_outlives_runtime(void) {
  const char *dir = getenv("REMOTEMEDIA_TEST_PLUGINS");
  char path[4096];
  RmRuntime *rt = NULL;
  RmPipeline *p = NULL;
  RmOutputs *outs = NULL;
  RmStatus st;
  float x[160] = {0};
  if (!dir) return;
  snprintf(path, sizeof path, "%s/libremotemedia_noise_gate.so", dir);
  CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL); /* unloaded with the first runtime */
  CHECK(rm_runtime_new(&rt) == RM_STATUS_OK);
  CHECK(rm_runtime_load_plugin(rt, path) == RM_STATUS_OK);
  p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"NoiseGate\"}]}", &st);
  CHECK(st == RM_STATUS_OK);
  rm_runtime_free(rt);
  void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  CHECK(handle != NULL); /* still loaded: the pipeline holds it */
  if (handle) dlclose(handle);
  CHECK(rm_pipeline_run(p, x, 160, RM_SAMPLE_FORMAT_F32, 1, 16000, &outs) == RM_STATUS_OK);
  rm_outputs_free(outs);
  rm_pipeline_free(p);
  CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL); /* the last user is gone */
}

/* Stereo int16 at 44.1 kHz straight into VAD: the plan inserts three converters. */
static void test_plan(RmRuntime *rt) {
  RmStatus st;
  RmPipeline *p = make(rt, "{\"version\":\"1\",\"nodes\":[{\"id\":\"vad\",\"node_type\":\"VAD\"}]}", &st);
  CHECK(st == RM_STATUS_OK && p != NULL);
  char *plan = NULL;
  CHECK(rm_pipeline_plan(p, "{\"format\":\"i16\",\"channels\":2,\"sample_rate\":44100}", &plan) == RM_STATUS_OK);
  CHECK(plan != NULL && strstr(plan, "input\xe2\x86\x92vad.resample") != NULL && strstr(plan, "\"inserted\":true") != NULL);
  rm_string_free(plan);
  plan = NULL;
  CHECK(rm_pipeline_plan(p, NULL, &plan) == RM_STATUS_OK && strstr(plan, "\"inserted\":true") == NULL);
  rm_string_free(plan);
  CHECK(rm_pipeline_plan(p, "{\"format\":\"u8\"}", &plan) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(rm_last_error_message(), "format") != NULL);
  CHECK(rm_pipeline_plan(NULL, NULL, &plan) == RM_STATUS_INVALID_ARGUMENT);
  CHECK(rm_pipeline_plan(p, NULL, NULL) == RM_STATUS_INVALID_ARGUMENT);
  int16_t input[4410 * 2];
  for (int i = 0; i < 4410 * 2; i++) input[i] = (int16_t)((i % 50) * 100);
  RmOutputs *outs = NULL;
  CHECK(rm_pipeline_run(p, input, 4410 * 2, RM_SAMPLE_FORMAT_I16, 2, 44100, &outs) == RM_STATUS_OK);
  rm_outputs_free(outs);
  CHECK(rm_pipeline_plan(p, NULL, &plan) == RM_STATUS_OK && strstr(plan, "input\xe2\x86\x92vad.downmix") != NULL);
  rm_string_free(plan);
  rm_pipeline_free(p);
  p = make(rt, "{\"version\":\"1\",\"auto_convert\":false,\"input\":{\"channels\":2},"
               "\"nodes\":[{\"id\":\"vad\",\"node_type\":\"VAD\"}]}", &st);
  CHECK(st == RM_STATUS_MANIFEST && p == NULL && strstr(rm_last_error_message(), "auto_convert is off") != NULL);
}

int main(void) {
  CHECK(rm_abi_version() == RM_ABI_VERSION);
  CHECK(rm_version_string() != NULL && rm_version_string()[0] >= '0' && rm_version_string()[0] <= '9');
  RmRuntime *rt = NULL;
  CHECK(rm_runtime_new(&rt) == RM_STATUS_OK && rt != NULL);
  CHECK(rm_set_log_callback(count_log, NULL, 3) == RM_STATUS_OK);
  test_run_gain(rt);
  test_run_into(rt);
  test_plan(rt);
  test_named_inputs(rt);
  test_errors(rt);
  test_host_node(rt);
  test_host_node_ports(rt);
  test_prometheus_input();
  test_session(rt);
  test_silero(rt);
  test_group(rt);
  test_smart_turn(rt);
  test_onnxruntime(rt);
  test_plugins(rt);
  test_isolation(rt);
  CHECK(log_records > 0 && log_warnings > 0); /* the failing "bad" node was logged */
  CHECK(rm_set_log_callback(NULL, NULL, 0) == RM_STATUS_OK);
  int before = released;
  rm_runtime_free(rt);
  CHECK(released == before + 1); /* Negate's user_data released with the runtime */
  test_plugin_outlives_runtime();
  printf("c_api: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
