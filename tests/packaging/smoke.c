/* Built against an installed remotemedia with `pkg-config --cflags --libs remotemedia`
 * alone and run without LD_LIBRARY_PATH (tests/packaging/run.sh); its node runs
 * isolated, in the installed libexec/remotemedia/remotemedia-node-host. */
#include <remotemedia.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (rm_abi_version() != RM_ABI_VERSION) return 1;
  printf("remotemedia %s\n", rm_version_string());
  RmRuntime *rt = NULL;
  if (rm_runtime_new(&rt) != RM_STATUS_OK) return 2;
  /* isolated: the installed remotemedia-node-host runs the node */
  const char *m = "{\"version\":\"1\",\"nodes\":[{\"id\":\"g\",\"node_type\":\"Gain\",\"params\":{\"gain_db\":-6.0206},"
                  "\"isolation\":\"process\"}]}";
  RmPipeline *p = NULL;
  if (rm_pipeline_new(rt, m, strlen(m), &p) != RM_STATUS_OK) {
    fprintf(stderr, "%s\n", rm_last_error_message());
    return 3;
  }
  float x[4] = {1.0f, -1.0f, 0.5f, 0.0f};
  RmOutputs *out = NULL;
  if (rm_pipeline_run(p, x, 4, RM_SAMPLE_FORMAT_F32, 1, 16000, &out) != RM_STATUS_OK) return 4;
  const float *y = out->items[0].view.data;
  int ok = out->len == 1 && y[0] > 0.49f && y[0] < 0.51f && y[1] < -0.49f;
  rm_outputs_free(out);
  rm_pipeline_free(p);
  rm_runtime_free(rt);
  printf("c smoke: %s\n", ok ? "ok" : "wrong output");
  return ok ? 0 : 5;
}
