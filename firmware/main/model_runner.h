// Owns the model (mapped from flash or copied to RAM), the arena and the TFLM interpreter.
#ifndef TINYHIL_MODEL_RUNNER_H_
#define TINYHIL_MODEL_RUNNER_H_

#include <cstddef>
#include <cstdint>

#include "guarded_arena.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

namespace tinyhil {

// Records per-op cycle counts while enabled; costs two calls per op otherwise.
class CycleProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr int kMaxEvents = 64;
  uint32_t BeginEvent(const char* tag) override;
  void EndEvent(uint32_t handle) override;
  void Start() {
    count_ = 0;
    enabled_ = true;
  }
  void Stop() { enabled_ = false; }
  int count() const { return count_; }
  const char* tag(int i) const { return tags_[i]; }
  uint32_t cycles(int i) const { return end_[i] - start_[i]; }

 private:
  bool enabled_ = false;
  int count_ = 0;
  const char* tags_[kMaxEvents] = {};
  uint32_t start_[kMaxEvents] = {};
  uint32_t end_[kMaxEvents] = {};
};

class ModelRunner {
 public:
  // Loads `len` bytes of a flatbuffer. `source_in_flash` is mapped flash (kept in
  // place unless `copy_to_ram`); `arena_bytes` 0 means the largest free block.
  // On failure returns false and writes the protocol error text into `error`.
  bool Load(const uint8_t* model, size_t len, bool copy_to_ram, size_t arena_bytes, char* error,
            size_t error_len);
  void Unload();
  bool loaded() const { return interpreter_ != nullptr; }
  // Whether the loaded model runs from `buffer` in place (flash placement of an upload).
  bool runs_from(const uint8_t* buffer) const { return loaded() && model_ == buffer; }

  // Copies one input tensor's worth of bytes.
  bool SetInput(const uint8_t* data, size_t len, char* error, size_t error_len);
  bool has_input() const { return input_ != nullptr; }

  // Resets variable tensors (LSTM state), copies the input, invokes; `cycles` gets the
  // CPU cycles of Invoke() alone.
  bool Invoke(uint32_t* cycles, char* error, size_t error_len);

  TfLiteTensor* input_tensor() { return interpreter_->input(0); }
  TfLiteTensor* output_tensor() { return interpreter_->output(0); }
  size_t model_bytes() const { return model_len_; }
  size_t arena_bytes() const { return arena_len_; }
  size_t arena_used_bytes() const { return interpreter_->arena_used_bytes(); }
  // The smallest arena in which this model's tensors allocate on this board (bisection in fresh
  // interpreters at load time); TFLM's arena_used_bytes() can be below it.
  size_t arena_min_bytes() const { return arena_min_; }
  CycleProfiler& profiler() { return profiler_; }

 private:
#define TINYHIL_OP(add, name) +1
  static constexpr unsigned kOpCount = 0
#include "ops.def"
      ;
#undef TINYHIL_OP
  using Resolver = tflite::MicroMutableOpResolver<kOpCount>;
  static void AddOps(Resolver& resolver);
  // Load's steps after its Unload(). On failure writes the error and returns false, leaving
  // what the steps allocated for Load's one Unload() to give back.
  bool TryLoad(const uint8_t* model, size_t len, bool copy_to_ram, size_t arena_bytes, char* error,
               size_t error_len);
  // Whether the model's tensors allocate in `bytes` of `arena` (a fresh interpreter, destroyed
  // after); `used` gets TFLM's arena_used_bytes() when they do, `exhausted` whether a request
  // did not fit (either may be nullptr).
  bool Allocates(const tflite::Model* flatbuffer, Resolver& resolver, uint8_t* arena, size_t bytes,
                 size_t* used, bool* exhausted);
  // Sets arena_min_: loads once in the largest free block, then searches down to the smallest
  // arena that loads, never below that load's arena_used_bytes(). False with the error written
  // when the model does not load even there.
  bool MeasureArena(const tflite::Model* flatbuffer, Resolver& resolver, char* error,
                    size_t error_len);

  const uint8_t* model_ = nullptr;
  uint8_t* model_copy_ = nullptr;
  size_t model_len_ = 0;
  uint8_t* arena_ = nullptr;
  size_t arena_len_ = 0;
  size_t arena_min_ = 0;
  GuardedArena* guard_ = nullptr;  // in arena_, for the loaded model
  uint8_t* input_ = nullptr;
  size_t input_len_ = 0;
  tflite::MicroInterpreter* interpreter_ = nullptr;
  alignas(tflite::MicroInterpreter) uint8_t interpreter_storage_[sizeof(tflite::MicroInterpreter)];
  CycleProfiler profiler_;
};

}  // namespace tinyhil

#endif  // TINYHIL_MODEL_RUNNER_H_
