/*
 * remotemedia.hpp: a header-only C++17 wrapper over remotemedia.h. It adds no ABI:
 * every call goes through the C functions, whose threading and ownership rules apply
 * unchanged (see remotemedia.h).
 *
 * - Handles (Runtime, Pipeline, Session, Group, Outputs, GroupOutputs) own their C object and free it in
 *   their destructor; they are movable, not copyable.
 * - A failed call throws remotemedia::Error, carrying the status, the message, the
 *   node id and operation when a node failed, and the manifest path of a bad manifest.
 * - Input samples are borrowed for the call from a remotemedia::Samples view of the
 *   caller's buffer (a pointer and a count, or any contiguous container).
 *
 *   remotemedia::Runtime rt;
 *   auto p = rt.pipeline(R"({"version":"1","nodes":[{"id":"g","node_type":"Gain"}]})");
 *   std::vector<float> x(480);
 *   remotemedia::Outputs out = p.run(x, 1, 16000);   // out[0].view.data ...
 */
#ifndef REMOTEMEDIA_HPP
#define REMOTEMEDIA_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "remotemedia.h"

namespace remotemedia {

/** A failed library call: status, message, and the failing node's id and operation (or ""). */
class Error : public std::runtime_error {
 public:
  Error(RmStatus status, const std::string &message, std::string node_id, std::string operation, std::string path,
        bool retryable)
      : std::runtime_error(message),
        status_(status),
        node_id_(std::move(node_id)),
        operation_(std::move(operation)),
        path_(std::move(path)),
        retryable_(retryable) {}

  RmStatus status() const noexcept { return status_; }
  /** Id of the node that failed, or "" when the error is not a node's. */
  const std::string &node_id() const noexcept { return node_id_; }
  /** "create", "process", "flush" or "reset" when a node failed, else "". */
  const std::string &operation() const noexcept { return operation_; }
  /** The manifest path of a manifest error (e.g. "nodes[0].params.gain_db"), else "". */
  const std::string &path() const noexcept { return path_; }
  /** Whether the same call may succeed if tried again. */
  bool retryable() const noexcept { return retryable_; }

 private:
  RmStatus status_;
  std::string node_id_;
  std::string operation_;
  std::string path_;
  bool retryable_;
};

namespace detail {

inline std::string text(const char *s) { return s ? std::string(s) : std::string(); }

/** Throws the calling thread's last error when `status` is not RM_STATUS_OK. */
inline void check(RmStatus status) {
  if (status != RM_STATUS_OK) {
    throw Error(status, text(rm_last_error_message()), text(rm_last_error_node_id()), text(rm_last_error_operation()),
                text(rm_last_error_path()), rm_last_error_retryable());
  }
}

/** Runs `call(&out)` for a string the library allocates, checks the status, and copies
 *  the string out before releasing it with rm_string_free. */
template <class Call>
std::string string_from(Call call) {
  char *out = nullptr;
  check(call(&out));
  std::string copy = text(out);
  rm_string_free(out);
  return copy;
}

template <class T, void (*Free)(T *)>
struct Deleter {
  void operator()(T *p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

template <class T>
struct FormatOf;
template <>
struct FormatOf<float> {
  static constexpr uint32_t value = RM_SAMPLE_FORMAT_F32;
};
template <>
struct FormatOf<int16_t> {
  static constexpr uint32_t value = RM_SAMPLE_FORMAT_I16;
};
template <>
struct FormatOf<int32_t> {
  static constexpr uint32_t value = RM_SAMPLE_FORMAT_I32;
};
template <>
struct FormatOf<double> {
  static constexpr uint32_t value = RM_SAMPLE_FORMAT_F64;
};

}  // namespace detail

/** The library's release version, e.g. "0.2.0". */
inline std::string_view version() { return rm_version_string(); }

/**
 * A read-only view of `size` interleaved samples (all channels) that the caller owns.
 * T is float, int16_t, int32_t or double. The samples are only read during the call
 * they are passed to; whatever the library keeps, it copies. Calls that take samples
 * also take any contiguous container of T (std::vector, std::array, ...) directly.
 */
template <class T>
class Samples {
 public:
  Samples(const T *data, std::size_t size) noexcept : data_(data), size_(size) {}

  const T *data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  static constexpr uint32_t format = detail::FormatOf<T>::value;

 private:
  const T *data_;
  std::size_t size_;
};

namespace detail {

template <class T>
Samples<T> samples(Samples<T> s) noexcept {
  return s;
}

template <class Container>
auto samples(const Container &c) noexcept -> Samples<std::remove_cv_t<std::remove_pointer_t<decltype(c.data())>>> {
  return {c.data(), c.size()};
}

}  // namespace detail

/**
 * A chunk for one of a pipeline's named inputs: its index (Pipeline::input_index) and
 * samples, borrowed for the call they are passed to. Use with Pipeline::run_inputs and
 * Session::push_inputs.
 */
template <class T>
RmInput input(std::size_t index, Samples<T> s, uint32_t channels, uint32_t sample_rate) noexcept {
  return RmInput{index, RmDataView{RM_DATA_KIND_AUDIO, s.data(), s.size(), s.format, channels, sample_rate}};
}
template <class Container>
RmInput input(std::size_t index, const Container &c, uint32_t channels, uint32_t sample_rate) noexcept {
  return input(index, detail::samples(c), channels, sample_rate);
}

/** The items of one run or pull, in emission order; views stay valid while this lives. */
class Outputs {
 public:
  explicit Outputs(RmOutputs *outputs) noexcept : handle_(outputs) {}

  std::size_t size() const noexcept { return handle_ ? handle_->len : 0; }
  bool empty() const noexcept { return size() == 0; }
  const RmOutput &operator[](std::size_t i) const noexcept { return handle_->items[i]; }
  const RmOutput *begin() const noexcept { return handle_ ? handle_->items : nullptr; }
  const RmOutput *end() const noexcept { return begin() + size(); }

 private:
  detail::Handle<RmOutputs, rm_outputs_free> handle_;
};

/** A streaming session with its own node instances (see rm_session_new). */
class Session {
 public:
  explicit Session(RmSession *session) noexcept : handle_(session) {}

  /** Pushes one chunk through the nodes, on the calling thread (rm_session_push). */
  template <class Input>
  void push(const Input &input, uint32_t channels, uint32_t sample_rate, uint32_t timeout_ms = 10000) const {
    const auto s = detail::samples(input);
    detail::check(rm_session_push(handle_.get(), s.data(), s.size(), s.format, channels, sample_rate, timeout_ms));
  }
  /** Pushes chunks of several named inputs in one step (rm_session_push_inputs); a
   *  transport that delivers inputs apart pushes each alone. */
  void push_inputs(const std::vector<RmInput> &inputs, uint32_t timeout_ms = 10000) const {
    detail::check(rm_session_push_inputs(handle_.get(), inputs.data(), inputs.size(), timeout_ms));
  }
  /** Takes up to `max_items` queued outputs (0: all), waiting up to `timeout_ms` for the first. */
  Outputs pull(uint32_t timeout_ms = 0, std::size_t max_items = 0) const {
    RmOutputs *out = nullptr;
    detail::check(rm_session_pull(handle_.get(), timeout_ms, max_items, &out));
    return Outputs(out);
  }
  /** Takes queued audio of one sink output (in T and `out_channels`) into `out`, room for
   *  `capacity` frames, waiting up to `timeout_ms` for the first; returns the frames written
   *  (rm_session_pull_into). */
  template <class T>
  std::size_t pull_into(T *out, std::size_t capacity, uint32_t out_channels, uint32_t timeout_ms = 0) const {
    std::size_t frames = 0;
    detail::check(rm_session_pull_into(handle_.get(), timeout_ms, out, capacity, detail::FormatOf<T>::value, out_channels,
                                       &frames));
    return frames;
  }
  /** Ends the stream: every node's tail is queued; a later push starts a new stream. */
  void flush() const { detail::check(rm_session_flush(handle_.get())); }
  /** Later pushes fail; queued outputs can still be pulled. */
  void close() const { detail::check(rm_session_close(handle_.get())); }
  RmSessionStats stats() const {
    RmSessionStats out{};
    detail::check(rm_session_stats(handle_.get(), &out));
    return out;
  }
  /** The session's metrics as JSON or Prometheus text. */
  std::string metrics(RmMetricsFormat format = RM_METRICS_FORMAT_JSON) const {
    return detail::string_from([&](char **out) { return rm_session_metrics(handle_.get(), format, out); });
  }

 private:
  detail::Handle<RmSession, rm_session_free> handle_;
};

/** What Group::pull took: items with the session of each, and VAD frame rows. */
class GroupOutputs {
 public:
  explicit GroupOutputs(RmGroupOutputs *outputs) noexcept : handle_(outputs) {}

  std::size_t size() const noexcept { return handle_ ? handle_->len : 0; }
  bool empty() const noexcept { return size() == 0; }
  const RmOutput &operator[](std::size_t i) const noexcept { return handle_->items[i]; }
  /** The session of item `i`. */
  uint64_t session(std::size_t i) const noexcept { return handle_->sessions[i]; }
  /** VAD frame decisions as columns (filled when pulled with RM_GROUP_PULL_VAD_TABLE). */
  const RmVadFrames &vad_frames() const noexcept { return handle_->vad_frames; }

 private:
  detail::Handle<RmGroupOutputs, rm_group_outputs_free> handle_;
};

/** Many sessions of one pipeline, driven by one call per tick (see rm_group_new). Calls
 *  on one group take turns; each session's outputs are a lone session's. */
class Group {
 public:
  explicit Group(RmGroup *group) noexcept : handle_(group) {}

  /** Opens a session with fresh node instances; returns its id. */
  uint64_t open() const {
    uint64_t id = 0;
    detail::check(rm_group_open(handle_.get(), &id));
    return id;
  }
  /** Closes a session: its instances and queued outputs are dropped. */
  void close(uint64_t session) const { detail::check(rm_group_close(handle_.get(), session)); }
  /** One tick: every chunk's session takes it; inference is batched across sessions. On
   *  failure the other sessions' outputs are still queued, and the Error's message has a
   *  line per failed session; `statuses`, when given, receives each chunk's session's status. */
  void push(const std::vector<RmGroupChunk> &chunks, std::vector<RmStatus> *statuses = nullptr) const {
    if (statuses) statuses->assign(chunks.size(), RM_STATUS_OK);
    detail::check(rm_group_push(handle_.get(), chunks.data(), chunks.size(), statuses ? statuses->data() : nullptr));
  }
  /** Ends the streams of `sessions`: their tails are queued. */
  void flush(const std::vector<uint64_t> &sessions) const {
    detail::check(rm_group_flush(handle_.get(), sessions.data(), sessions.size(), nullptr));
  }
  /** Open sessions, ticks, and batched inference passes with the inputs they took. */
  RmGroupStats stats() const {
    RmGroupStats out{};
    detail::check(rm_group_stats(handle_.get(), &out));
    return out;
  }
  /** Takes what is queued, every session, in session order (never waits). */
  GroupOutputs pull(uint32_t flags = RM_GROUP_PULL_VAD_TABLE, std::size_t max_per_session = 0) const {
    RmGroupOutputs *out = nullptr;
    detail::check(rm_group_pull(handle_.get(), max_per_session, flags, &out));
    return GroupOutputs(out);
  }

 private:
  detail::Handle<RmGroup, rm_group_free> handle_;
};

/** A session's chunk for Group::push, borrowed for the call. */
template <class Container>
RmGroupChunk chunk(uint64_t session, const Container &c, uint32_t channels, uint32_t sample_rate,
                   std::size_t input_index = 0) noexcept {
  const auto s = detail::samples(c);
  return RmGroupChunk{session, input_index, RmDataView{RM_DATA_KIND_AUDIO, s.data(), s.size(), s.format, channels, sample_rate}};
}

/** A validated graph with its node instances (see rm_pipeline_new). */
class Pipeline {
 public:
  explicit Pipeline(RmPipeline *pipeline) noexcept : handle_(pipeline) {}

  /** Runs once on `samples` (every node fresh, then flushed). Calls on one pipeline take turns. */
  template <class Input>
  Outputs run(const Input &input, uint32_t channels, uint32_t sample_rate) {
    const auto s = detail::samples(input);
    RmOutputs *out = nullptr;
    detail::check(rm_pipeline_run(handle_.get(), s.data(), s.size(), s.format, channels, sample_rate, &out));
    return Outputs(out);
  }
  /** Runs once on chunks of several named inputs (rm_pipeline_run_inputs). */
  Outputs run_inputs(const std::vector<RmInput> &inputs) {
    RmOutputs *out = nullptr;
    detail::check(rm_pipeline_run_inputs(handle_.get(), inputs.data(), inputs.size(), &out));
    return Outputs(out);
  }
  /** The index of the input called `name`, for input() (rm_pipeline_input_index). */
  std::size_t input_index(const char *name) const {
    std::size_t index = 0;
    detail::check(rm_pipeline_input_index(handle_.get(), name, &index));
    return index;
  }
  /** How many inputs the pipeline has (1 without named inputs). */
  std::size_t input_count() const {
    std::size_t count = 0;
    detail::check(rm_pipeline_input_count(handle_.get(), &count));
    return count;
  }
  /** Runs once and writes the run's audio (one sink output, in T and `out_channels`)
   *  to `out`, room for `capacity` frames; returns the frames written (rm_pipeline_run_into). */
  template <class Input, class T>
  std::size_t run_into(const Input &input, uint32_t channels, uint32_t sample_rate, T *out, std::size_t capacity,
                       uint32_t out_channels) {
    const auto s = detail::samples(input);
    std::size_t frames = 0;
    detail::check(rm_pipeline_run_into(handle_.get(), s.data(), s.size(), s.format, channels, sample_rate, out, capacity,
                                       detail::FormatOf<T>::value, out_channels, &frames));
    return frames;
  }
  /** A streaming session on fresh instances of this pipeline's nodes. */
  Session stream(std::size_t capacity = 0, RmOverflow overflow = RM_OVERFLOW_BLOCK) const {
    RmSessionOptions options{capacity, static_cast<uint32_t>(overflow)};
    RmSession *out = nullptr;
    detail::check(rm_session_new(handle_.get(), &options, &out));
    return Session(out);
  }
  /** A group of sessions on fresh instances of this pipeline's nodes; each session
   *  queues at most `capacity` items (0: the default), dropping its oldest beyond; a
   *  push runs on `workers` threads (the caller's and workers - 1 more). */
  Group sessions(std::size_t capacity = 0, uint32_t workers = 1) const {
    RmGroup *out = nullptr;
    detail::check(rm_group_new(handle_.get(), capacity, workers, &out));
    return Group(out);
  }
  /** The pipeline as JSON: nodes, the runtime chosen for each, ports, latency, manifest. */
  std::string describe() const {
    return detail::string_from([&](char **out) { return rm_pipeline_describe(handle_.get(), out); });
  }
  /** Metrics of the one-shot runs as JSON or Prometheus text. */
  std::string metrics(RmMetricsFormat format = RM_METRICS_FORMAT_JSON) const {
    return detail::string_from([&](char **out) { return rm_pipeline_metrics(handle_.get(), format, out); });
  }
  /** The caps plan as JSON: the one in use, or with `input_caps` (a JSON object of
   *  format, channels, sample_rate) the one this pipeline would make for such input. */
  std::string plan(const char *input_caps = nullptr) const {
    return detail::string_from([&](char **out) { return rm_pipeline_plan(handle_.get(), input_caps, out); });
  }

 private:
  detail::Handle<RmPipeline, rm_pipeline_free> handle_;
};

/** The node registry and timers; pipelines made from it may outlive it. */
class Runtime {
 public:
  /** A runtime with the built-in nodes and every plugin discovered (rm_runtime_new). */
  Runtime() {
    RmRuntime *out = nullptr;
    detail::check(rm_runtime_new(&out));
    handle_.reset(out);
  }

  /** Parses and validates a JSON manifest and creates every node. */
  Pipeline pipeline(std::string_view manifest) const {
    RmPipeline *out = nullptr;
    detail::check(rm_pipeline_new(handle_.get(), manifest.data(), manifest.size(), &out));
    return Pipeline(out);
  }
  /** Loads a plugin library by path (rm_runtime_load_plugin). */
  void load_plugin(const std::string &path) const { detail::check(rm_runtime_load_plugin(handle_.get(), path.c_str())); }
  /** Every node type as JSON (rm_runtime_node_types). */
  std::string node_types() const {
    return detail::string_from([&](char **out) { return rm_runtime_node_types(handle_.get(), out); });
  }

 private:
  detail::Handle<RmRuntime, rm_runtime_free> handle_;
};

}  // namespace remotemedia

#endif  // REMOTEMEDIA_HPP
