// The C++17 wrapper (remotemedia.hpp) end to end: RAII handles, a one-shot run over a
// std::vector, a session over raw pointers, a session group, and each kind of error as an
// exception.
#include <remotemedia.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

static int failures = 0;
#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                 \
    }                                                             \
  } while (0)

int main() {
  using remotemedia::Error;
  CHECK(remotemedia::version() == rm_version_string());
  remotemedia::Runtime rt;
  CHECK(rt.node_types().find("\"Resample\"") != std::string::npos);

  auto gain = rt.pipeline(R"({"version":"1","nodes":[{"id":"g","node_type":"Gain","params":{"gain_db":-6.0206}}]})");
  std::vector<float> x{1.0f, -1.0f, 0.5f};
  remotemedia::Outputs out = gain.run(x, 1, 16000);
  CHECK(out.size() == 1);
  const auto *y = static_cast<const float *>(out[0].view.data);
  CHECK(std::fabs(y[0] - 0.5f) < 1e-4f && std::fabs(y[2] - 0.25f) < 1e-4f);
  CHECK(std::string(out[0].node_id) == "g");
  std::array<int16_t, 4> pcm{1000, -1000, 2000, 0};
  CHECK(gain.run(pcm, 2, 8000)[0].view.format == RM_SAMPLE_FORMAT_I16);
  std::array<float, 8> into{};
  CHECK(gain.run_into(x, 1, 16000, into.data(), into.size(), 1) == 3 && std::fabs(into[1] + 0.5f) < 1e-4f);
  try {
    gain.run_into(x, 1, 16000, into.data(), 2, 1);  // 3 frames do not fit in 2
    CHECK(!"run_into into too small an array throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_INVALID_ARGUMENT);
  }
  remotemedia::Session g = gain.stream();
  g.push(x, 1, 16000);
  CHECK(g.pull_into(into.data(), into.size(), 1) == 3 && g.pull_into(into.data(), into.size(), 1) == 0);

  // A session group: one push for two sessions, outputs by session; a bad id throws
  // after the other session's chunk went through.
  remotemedia::Group group = gain.sessions();
  const uint64_t s1 = group.open(), s2 = group.open();
  std::vector<float> z{2.0f};
  group.push({remotemedia::chunk(s2, z, 1, 16000), remotemedia::chunk(s1, x, 1, 16000)});
  remotemedia::GroupOutputs pulled = group.pull();
  CHECK(pulled.size() == 2 && pulled.session(0) == s1 && pulled.session(1) == s2 && pulled[1].view.len == 1);
  std::vector<RmStatus> statuses;
  try {
    group.push({remotemedia::chunk(s1, z, 1, 16000), remotemedia::chunk(s2 + 5, z, 1, 16000)}, &statuses);
    CHECK(!"a push to an unknown session throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_INVALID_ARGUMENT && std::string(e.what()).find("session") != std::string::npos);
    CHECK(statuses.size() == 2 && statuses[0] == RM_STATUS_OK && statuses[1] == RM_STATUS_INVALID_ARGUMENT);
  }
  CHECK(group.pull().size() == 1);
  group.close(s1);

  // Two named inputs into a Mix, found by name, run together and pushed apart.
  auto mix = rt.pipeline(R"({"version":"1","inputs":[{"name":"mic"},{"name":"far"}],
    "nodes":[{"id":"m","node_type":"Mix","params":{"gains":[1.0,0.5]}}],
    "connections":[{"from":"$mic","to":"m.in0"},{"from":"$far","to":"m.in1"}]})");
  CHECK(mix.input_count() == 2);
  const std::size_t mic = mix.input_index("mic"), far = mix.input_index("far");
  std::vector<float> a{1.0f, 2.0f}, b{4.0f, 4.0f};
  remotemedia::Outputs mixed = mix.run_inputs({remotemedia::input(mic, a, 1, 16000), remotemedia::input(far, b, 1, 16000)});
  CHECK(mixed.size() == 1 && static_cast<const float *>(mixed[0].view.data)[1] == 4.0f);
  remotemedia::Session m = mix.stream();
  m.push_inputs({remotemedia::input(far, b, 1, 16000)});
  m.push_inputs({remotemedia::input(mic, a, 1, 16000)});
  CHECK(m.pull_into(into.data(), into.size(), 1) == 2 && into[0] == 3.0f);
  try {
    mix.input_index("nope");
    CHECK(!"an unknown input name throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_INVALID_ARGUMENT);
  }

  // A session over a resampler: 1 s at 48 kHz in 20 ms chunks gives about 16000 frames.
  auto resample = rt.pipeline(R"({"version":"1","nodes":[{"id":"r","node_type":"Resample","params":{"target_rate":16000}}]})");
  remotemedia::Session s = resample.stream();
  std::vector<float> second(48000);
  for (std::size_t i = 0; i < second.size(); i++) second[i] = 0.5f * std::sin(0.01f * static_cast<float>(i));
  std::size_t frames = 0;
  for (std::size_t at = 0; at < second.size(); at += 960) {
    s.push(remotemedia::Samples<float>(second.data() + at, 960), 1, 48000);
    for (const RmOutput &item : s.pull()) frames += item.view.len;
  }
  s.flush();
  for (const RmOutput &item : s.pull()) frames += item.view.len;
  CHECK(frames == 16000);
  CHECK(s.stats().chunks_in == 50);
  CHECK(s.metrics().find("\"nodes\"") != std::string::npos);
  s.close();
  try {
    s.push(x, 1, 48000);
    CHECK(!"push after close throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_CLOSED);
  }

  // Errors carry status, message, node id and operation.
  try {
    rt.pipeline(R"({"version":"1","nodes":[{"id":"g","node_type":"Gian"}]})");
    CHECK(!"a bad manifest throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_MANIFEST);
    CHECK(std::string(e.what()).find("Gian") != std::string::npos);
    CHECK(e.node_id().empty());
    CHECK(e.path() == "nodes[0].node_type");
  }
  auto fault = rt.pipeline(R"({"version":"1","nodes":[{"id":"f","node_type":"Fault","params":{"mode":"permanent","fail_first":1000}}]})");
  try {
    fault.run(x, 1, 16000);
    CHECK(!"a failing node throws");
  } catch (const Error &e) {
    CHECK(e.status() == RM_STATUS_NODE);
    CHECK(e.node_id() == "f" && e.operation() == "process");
  }
  CHECK(fault.metrics(RM_METRICS_FORMAT_PROMETHEUS).find("remotemedia_node_errors_total") != std::string::npos);

  std::printf("c++ smoke: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
