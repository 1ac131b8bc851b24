/*
 * Example remotemedia plugin in plain C: a biquad filter (RBJ Audio EQ Cookbook).
 *
 * Built against remotemedia_plugin.h only:
 *   cc -std=c11 -Wall -Wextra -Werror -O2 -fPIC -shared -fvisibility=hidden \
 *      -I include plugins/examples/biquad/biquad.c -lm -o libbiquad.so
 *
 * Node type "Biquad": params {"type": "lowpass"|"highpass"|"bandpass"|"notch"|"peaking",
 * "frequency_hz": number, "q": number, "gain_db": number (peaking only)}. Filters f32
 * audio of any channel count; state is kept per channel in double precision
 * (transposed direct form II), so output does not depend on chunk sizes.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remotemedia_plugin.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum { LOWPASS, HIGHPASS, BANDPASS, NOTCH, PEAKING };
static const char *const TYPE_NAMES[] = {"lowpass", "highpass", "bandpass", "notch", "peaking"};

typedef struct {
  int type;
  double frequency_hz, q, gain_db;
  uint32_t rate;     /* rate the coefficients were computed for; 0 before the first chunk */
  uint32_t channels; /* channels the state is sized for */
  double b0, b1, b2, a1, a2;
  double *state; /* 2 per channel */
  float *out;
  size_t out_cap;
} Biquad;

static const RmHostServices *HOST;

static void log_info(const char *message) {
  if (HOST) HOST->log(HOST, RM_LOG_LEVEL_INFO, message);
}

static int32_t fail(RmNodeContext *ctx, const char *message) {
  ctx->set_error(ctx, message);
  return RM_STATUS_NODE;
}

/* ---- a minimal reader for a flat JSON object of strings and numbers ---------------- */

typedef struct {
  const char *p, *end;
} Reader;

static void skip_ws(Reader *r) {
  while (r->p < r->end && isspace((unsigned char)*r->p)) r->p++;
}

static int expect(Reader *r, char c) {
  skip_ws(r);
  if (r->p < r->end && *r->p == c) {
    r->p++;
    return 1;
  }
  return 0;
}

/* Reads a JSON string without escapes into buf (NUL-terminated). */
static int read_string(Reader *r, char *buf, size_t cap) {
  size_t n = 0;
  if (!expect(r, '"')) return 0;
  while (r->p < r->end && *r->p != '"') {
    if (*r->p == '\\' || n + 1 >= cap) return 0;
    buf[n++] = *r->p++;
  }
  buf[n] = '\0';
  return expect(r, '"');
}

static int read_number(Reader *r, double *out) {
  char buf[64];
  size_t n = 0;
  char *stop;
  skip_ws(r);
  while (r->p < r->end && n + 1 < sizeof buf && strchr("+-0123456789.eE", *r->p)) buf[n++] = *r->p++;
  buf[n] = '\0';
  if (n == 0) return 0;
  *out = strtod(buf, &stop);
  return *stop == '\0' && isfinite(*out);
}

static int32_t parse_params(Biquad *b, const char *json, size_t len, RmNodeContext *ctx) {
  Reader r = {json, json + len};
  char key[32], text[32], msg[160];
  b->type = LOWPASS;
  b->frequency_hz = 1000.0;
  b->q = 0.7071067811865476;
  b->gain_db = 0.0;
  if (!expect(&r, '{')) return fail(ctx, "params: expected a JSON object");
  if (expect(&r, '}')) return RM_STATUS_OK;
  do {
    double *number = NULL;
    if (!read_string(&r, key, sizeof key) || !expect(&r, ':')) return fail(ctx, "params: malformed JSON");
    if (strcmp(key, "type") == 0) {
      int found = -1;
      if (!read_string(&r, text, sizeof text)) return fail(ctx, "params.type: expected a string");
      for (int i = 0; i < 5; i++)
        if (strcmp(text, TYPE_NAMES[i]) == 0) found = i;
      if (found < 0) {
        snprintf(msg, sizeof msg, "params.type: unknown filter type '%s' (lowpass, highpass, bandpass, notch, peaking)", text);
        return fail(ctx, msg);
      }
      b->type = found;
      continue;
    }
    if (strcmp(key, "frequency_hz") == 0) number = &b->frequency_hz;
    if (strcmp(key, "q") == 0) number = &b->q;
    if (strcmp(key, "gain_db") == 0) number = &b->gain_db;
    if (!number) {
      snprintf(msg, sizeof msg, "params.%s: unknown param (known: type, frequency_hz, q, gain_db)", key);
      return fail(ctx, msg);
    }
    if (!read_number(&r, number)) {
      snprintf(msg, sizeof msg, "params.%s: expected a finite number", key);
      return fail(ctx, msg);
    }
  } while (expect(&r, ','));
  if (!expect(&r, '}')) return fail(ctx, "params: malformed JSON");
  if (!(b->frequency_hz > 0.0)) return fail(ctx, "params.frequency_hz: must be positive");
  if (!(b->q > 0.0)) return fail(ctx, "params.q: must be positive");
  if (fabs(b->gain_db) > 48.0) return fail(ctx, "params.gain_db: must be within +-48 dB");
  return RM_STATUS_OK;
}

/* ---- the filter --------------------------------------------------------------------- */

static int32_t design(Biquad *b, uint32_t rate, RmNodeContext *ctx) {
  double w0, cw, alpha, a0, A = pow(10.0, b->gain_db / 40.0);
  if (b->frequency_hz >= rate / 2.0) return fail(ctx, "params.frequency_hz: must be below half the sample rate");
  w0 = 2.0 * M_PI * b->frequency_hz / rate;
  cw = cos(w0);
  alpha = sin(w0) / (2.0 * b->q);
  switch (b->type) {
    case LOWPASS: b->b0 = (1 - cw) / 2; b->b1 = 1 - cw; b->b2 = (1 - cw) / 2; a0 = 1 + alpha; b->a1 = -2 * cw; b->a2 = 1 - alpha; break;
    case HIGHPASS: b->b0 = (1 + cw) / 2; b->b1 = -(1 + cw); b->b2 = (1 + cw) / 2; a0 = 1 + alpha; b->a1 = -2 * cw; b->a2 = 1 - alpha; break;
    case BANDPASS: b->b0 = alpha; b->b1 = 0; b->b2 = -alpha; a0 = 1 + alpha; b->a1 = -2 * cw; b->a2 = 1 - alpha; break;
    case NOTCH: b->b0 = 1; b->b1 = -2 * cw; b->b2 = 1; a0 = 1 + alpha; b->a1 = -2 * cw; b->a2 = 1 - alpha; break;
    default: b->b0 = 1 + alpha * A; b->b1 = -2 * cw; b->b2 = 1 - alpha * A; a0 = 1 + alpha / A; b->a1 = -2 * cw; b->a2 = 1 - alpha / A; break;
  }
  b->b0 /= a0; b->b1 /= a0; b->b2 /= a0; b->a1 /= a0; b->a2 /= a0;
  b->rate = rate;
  return RM_STATUS_OK;
}

static int32_t create(void *user_data, const char *params, size_t len, void **instance, RmNodeContext *ctx) {
  Biquad *b;
  int32_t status;
  (void)user_data;
  if (!params || !instance || !ctx) return RM_STATUS_INVALID_ARGUMENT;
  b = calloc(1, sizeof *b);
  if (!b) return fail(ctx, "out of memory");
  status = parse_params(b, params, len, ctx);
  if (status != RM_STATUS_OK) {
    free(b);
    return status;
  }
  *instance = b;
  return RM_STATUS_OK;
}

static int32_t process(void *instance, const RmDataView *in, RmNodeContext *ctx) {
  Biquad *b = instance;
  const float *x;
  size_t frames, ch, i, n;
  RmDataView view;
  if (!b || !in || !ctx) return RM_STATUS_INVALID_ARGUMENT;
  if (in->kind != RM_DATA_KIND_AUDIO || in->format != RM_SAMPLE_FORMAT_F32)
    return fail(ctx, "Biquad needs f32 audio; put a FormatConverter (to f32) before it");
  if (in->channels == 0 || in->sample_rate == 0) return fail(ctx, "audio has no channels or no sample rate");
  if (in->sample_rate != b->rate) {
    int32_t status = design(b, in->sample_rate, ctx);
    if (status != RM_STATUS_OK) return status;
  }
  if (in->channels != b->channels) { /* a new channel layout starts from silence */
    double *state = calloc(2 * (size_t)in->channels, sizeof *state);
    if (!state) return fail(ctx, "out of memory");
    free(b->state);
    b->state = state;
    b->channels = in->channels;
  }
  n = in->len - in->len % in->channels;
  if (n > b->out_cap) {
    float *out = realloc(b->out, n * sizeof *out);
    if (!out) return fail(ctx, "out of memory");
    b->out = out;
    b->out_cap = n;
  }
  x = in->data;
  frames = n / in->channels;
  for (ch = 0; ch < in->channels; ch++) {
    double s1 = b->state[2 * ch], s2 = b->state[2 * ch + 1];
    for (i = 0; i < frames; i++) {
      double v = x[i * in->channels + ch];
      double y = b->b0 * v + s1;
      s1 = b->b1 * v - b->a1 * y + s2;
      s2 = b->b2 * v - b->a2 * y;
      b->out[i * in->channels + ch] = (float)y;
    }
    b->state[2 * ch] = s1;
    b->state[2 * ch + 1] = s2;
  }
  view = *in;
  view.data = b->out;
  view.len = n;
  return ctx->emit(ctx, 0, &view);
}

static int32_t reset(void *instance, RmNodeContext *ctx) {
  Biquad *b = instance;
  if (!b || !ctx) return RM_STATUS_INVALID_ARGUMENT;
  if (b->state) memset(b->state, 0, 2 * (size_t)b->channels * sizeof *b->state);
  return RM_STATUS_OK;
}

static void destroy(void *instance) {
  Biquad *b = instance;
  if (!b) return;
  free(b->state);
  free(b->out);
  free(b);
}

static const char *const OUTPUTS[] = {"out"};

static const RmPluginNodeType NODE_TYPES[] = {{
    .info =
        {
            .node_type = "Biquad",
            .description = "Second-order IIR filter (RBJ cookbook): lowpass, highpass, bandpass, notch or peaking; f32 audio.",
            .params_schema_json =
                "{\"type\":\"object\",\"properties\":{"
                "\"type\":{\"enum\":[\"lowpass\",\"highpass\",\"bandpass\",\"notch\",\"peaking\"],\"default\":\"lowpass\"},"
                "\"frequency_hz\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"default\":1000},"
                "\"q\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"default\":0.7071067811865476},"
                "\"gain_db\":{\"type\":\"number\",\"minimum\":-48,\"maximum\":48,\"default\":0}},"
                "\"additionalProperties\":false}",
            .outputs = OUTPUTS,
            .n_outputs = 1,
            .input_kinds = RM_KIND_AUDIO,
            .output_kinds = RM_KIND_AUDIO,
        },
    .vtable = {.create = create, .process = process, .reset = reset, .destroy = destroy},
}};

/* What its ports carry: f32 audio of any layout and rate in, the same out. A pipeline
 * feeding it other audio gets a FormatConverter inserted before it. */
static const RmNodeTypeExtension EXTENSIONS[] = {{
    .size = sizeof(RmNodeTypeExtension),
    .caps = "{\"input\":{\"kind\":\"audio\",\"format\":[\"f32\"]},\"outputs\":{\"out\":{}}}",
}};

static const RmPluginDescriptor DESCRIPTOR = {
    .abi_major = RM_PLUGIN_ABI_MAJOR,
    .abi_minor = RM_PLUGIN_ABI_MINOR,
    .name = "biquad",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "Example C plugin: a biquad filter",
    .node_types = NODE_TYPES,
    .n_node_types = 1,
    .extensions = EXTENSIONS,
};

RM_PLUGIN_EXPORT const RmPluginDescriptor *remotemedia_plugin_entry(const RmHostServices *host) {
  HOST = host;
  log_info("biquad plugin loaded");
  return &DESCRIPTOR;
}
