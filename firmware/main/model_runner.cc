#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // fopencookie (ESP-IDF builds with it defined; so does g++ on Linux)
#endif
#include "model_runner.h"

#include <sys/types.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "board.h"
#include "guarded_arena.h"
#include "model_check.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tinyhil {
namespace {
constexpr size_t kArenaSlack = 64;  // left in the largest block for the allocator's bookkeeping

// TFLM logs through DebugLog to stderr. While it lives, stderr discards what is written: the
// arena search's failing probes are expected, and their lines would reach the host as log.
class QuietLog {
 public:
#if defined(__PICOLIBC__)  // its stderr is a constant: the probes' lines stay in the log
  QuietLog() = default;
  ~QuietLog() = default;
#else
  QuietLog() {
    fflush(stderr);
    cookie_io_functions_t io = {nullptr, Discard, nullptr, nullptr};
    null_ = fopencookie(nullptr, "w", io);
    if (null_ != nullptr) {
      saved_ = stderr;
      stderr = null_;
    }
  }
  ~QuietLog() {
    if (null_ == nullptr) return;
    stderr = saved_;
    fclose(null_);
  }
#endif
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;

 private:
  static ssize_t Discard(void*, const char*, size_t size) { return static_cast<ssize_t>(size); }
  FILE* null_ = nullptr;
  FILE* saved_ = nullptr;
};
#if TINYHIL_ESP_NN
// True when a FULLY_CONNECTED of the first subgraph takes int16 activations and weights
// with one quantization scale per output channel.
bool HasInt16PerChannelFullyConnected(const tflite::Model* model) {
  const auto* subgraphs = model->subgraphs();
  const auto* codes = model->operator_codes();
  if (subgraphs == nullptr || subgraphs->size() == 0 || codes == nullptr) return false;
  const tflite::SubGraph* sg = subgraphs->Get(0);
  if (sg->operators() == nullptr || sg->tensors() == nullptr) return false;
  for (const tflite::Operator* op : *sg->operators()) {
    if (op->opcode_index() >= codes->size() || op->inputs() == nullptr ||
        op->inputs()->size() < 2) {
      continue;
    }
    const tflite::OperatorCode* code = codes->Get(op->opcode_index());
    const int builtin = std::max(static_cast<int>(code->deprecated_builtin_code()),
                                 static_cast<int>(code->builtin_code()));
    if (builtin != tflite::BuiltinOperator_FULLY_CONNECTED) continue;
    const int in = op->inputs()->Get(0), weights = op->inputs()->Get(1);
    if (in < 0 || weights < 0) continue;
    const tflite::Tensor* input = sg->tensors()->Get(in);
    const tflite::QuantizationParameters* q = sg->tensors()->Get(weights)->quantization();
    if (input->type() == tflite::TensorType_INT16 && q != nullptr && q->scale() != nullptr &&
        q->scale()->size() > 1) {
      return true;
    }
  }
  return false;
}
#endif
// TFLM stops at the first op its resolver lacks and leaves the registrations of the later ops as
// the arena held them; its destructor calls `free` through each that is not null. With a heap's
// old bytes there (the previous model's), that call lands anywhere: a zeroed arena makes them null.
void ZeroArena(uint8_t* arena, size_t len) { memset(arena, 0, len); }
}  // namespace

uint32_t CycleProfiler::BeginEvent(const char* tag) {
  if (!enabled_ || count_ >= kMaxEvents) return kMaxEvents;
  tags_[count_] = tag;
  start_[count_] = board::Cycles();
  return static_cast<uint32_t>(count_++);
}

void CycleProfiler::EndEvent(uint32_t handle) {
  if (handle < static_cast<uint32_t>(kMaxEvents)) end_[handle] = board::Cycles();
}

void ModelRunner::AddOps(Resolver& r) {
  // Every op of ops.def: what the Table 1 networks need after conversion, and the usual companions.
#define TINYHIL_OP(add, name) r.add();
#include "ops.def"
#undef TINYHIL_OP
}

void ModelRunner::Unload() {
  if (interpreter_ != nullptr) {
    interpreter_->~MicroInterpreter();
    interpreter_ = nullptr;
  }
  if (guard_ != nullptr) guard_->Release();  // before the arena that holds it goes
  guard_ = nullptr;
  board::Free(arena_);
  board::Free(model_copy_);
  board::Free(input_);
  arena_ = model_copy_ = input_ = nullptr;
  model_ = nullptr;
  model_len_ = arena_len_ = arena_min_ = input_len_ = 0;
}

bool ModelRunner::Load(const uint8_t* model, size_t len, bool copy_to_ram, size_t arena_bytes,
                       char* error, size_t error_len) {
  Unload();
  if (TryLoad(model, len, copy_to_ram, arena_bytes, error, error_len)) return true;
  Unload();  // whatever the failed step left: the copy, the arena, the interpreter
  return false;
}

bool ModelRunner::TryLoad(const uint8_t* model, size_t len, bool copy_to_ram, size_t arena_bytes,
                          char* error, size_t error_len) {
  if (copy_to_ram) {
    model_copy_ = static_cast<uint8_t*>(board::AllocFor(board::Use::kModelCopy, len, 16));
    if (model_copy_ == nullptr) {
      snprintf(error, error_len,
               "ram: cannot allocate %u bytes for the model copy; largest free block %u",
               static_cast<unsigned>(len),
               static_cast<unsigned>(board::LargestFor(board::Use::kModelCopy)));
      return false;
    }
    memcpy(model_copy_, model, len);
    model = model_copy_;
  }
  model_ = model;
  model_len_ = len;
  // Bytes that are not a TFLite flatbuffer (a wrong partition, a truncated write that still
  // matched its CRC) would make GetModel read garbage and panic the board: check them first.
  flatbuffers::Verifier verifier(model_, model_len_);
  if (!tflite::VerifyModelBuffer(verifier)) {
    snprintf(error, error_len, "tflm: not a valid TFLite flatbuffer");
    return false;
  }
  const tflite::Model* flatbuffer = tflite::GetModel(model_);
  // The verifier checks offsets and sizes, not what the indices inside point at: a tensor, buffer
  // or op code index out of range, or constant data shorter than its tensor, would make TFLM
  // read past a vector (a flatbuffers assertion or a crash). Refuse those by name.
  if (!CheckModelStructure(flatbuffer, error, error_len)) return false;
#if TINYHIL_ESP_NN
  // esp-tflite-micro's ESP-NN int16 FULLY_CONNECTED ignores per-channel weight scales (1.3.8 to
  // 1.4.0): refuse such layers rather than give wrong answers (plugins/firmware_tools/ops.py
  // makes the host verdict and the virtual board say the same).
  if (HasInt16PerChannelFullyConnected(flatbuffer)) {
    snprintf(error, error_len,
             "tflm: esp-tflite-micro's ESP-NN int16 FULLY_CONNECTED ignores per-channel weight "
             "scales (1.3.8 to 1.4.0): the firmware refuses int16x8 fully-connected layers with "
             "per-channel weights rather than give wrong answers");
    return false;
  }
#endif
  if (flatbuffer->version() != TFLITE_SCHEMA_VERSION) {
    snprintf(error, error_len, "tflm: schema version %lu, firmware expects %d",
             static_cast<unsigned long>(flatbuffer->version()), TFLITE_SCHEMA_VERSION);
    return false;
  }
  static Resolver resolver;
  static bool ops_added = false;
  if (!ops_added) {
    AddOps(resolver);
    ops_added = true;
  }
  // Both arena figures, measured before the model's own arena is taken. An explicit arena below
  // the smallest that loads is refused before TFLM sees it: TFLM writes past an arena too small
  // for its own bookkeeping.
  if (!MeasureArena(flatbuffer, resolver, error, error_len)) return false;
  if (arena_bytes != 0 && arena_bytes < arena_min_) {
    snprintf(error, error_len,
             "arena: %u bytes is below the %u bytes this model needs (the smallest arena in which "
             "TFLM allocates its tensors, measured on this board; a smaller arena is not handed "
             "to TFLM)",
             static_cast<unsigned>(arena_bytes), static_cast<unsigned>(arena_min_));
    return false;
  }
  const size_t largest = board::LargestFor(board::Use::kArena);
  if (arena_bytes == 0) {
    arena_bytes = largest > kArenaSlack ? (largest - kArenaSlack) & ~static_cast<size_t>(15) : 0;
  }
  arena_ = static_cast<uint8_t*>(board::AllocFor(board::Use::kArena, arena_bytes, 16));
  if (arena_ == nullptr) {
    snprintf(error, error_len, "arena: cannot allocate %u bytes; largest free block %u",
             static_cast<unsigned>(arena_bytes), static_cast<unsigned>(largest));
    return false;
  }
  arena_len_ = arena_bytes;
  ZeroArena(arena_, arena_len_);
  tflite::MicroAllocator* allocator = GuardedArena::CreateAllocator(arena_, arena_len_, &guard_);
  if (allocator == nullptr) {  // not reached from arena_min_ up: the bookkeeping is part of it
    snprintf(error, error_len, "arena: %u bytes do not hold TFLM's own bookkeeping",
             static_cast<unsigned>(arena_len_));
    return false;
  }
  interpreter_ = new (interpreter_storage_)
      tflite::MicroInterpreter(flatbuffer, resolver, allocator, nullptr, &profiler_);
  const bool allocated = interpreter_->AllocateTensors() == kTfLiteOk;
  if (allocated && guard_->exhausted()) {  // a kernel's persistent request did not fit
    snprintf(error, error_len, "arena: the model's tensors do not fit in %u bytes",
             static_cast<unsigned>(arena_len_));
    return false;
  }
  if (!allocated) {
    fflush(stderr);  // TFLM's reasons (DebugLog -> stderr) reach the host before the error line
    snprintf(error, error_len, "tflm: AllocateTensors failed");
    return false;
  }
  return true;
}

bool ModelRunner::Allocates(const tflite::Model* flatbuffer, Resolver& resolver, uint8_t* arena,
                            size_t bytes, size_t* used, bool* exhausted) {
  GuardedArena* guard = nullptr;
  ZeroArena(arena, bytes);
  tflite::MicroAllocator* allocator = GuardedArena::CreateAllocator(arena, bytes, &guard);
  bool ok = false;
  if (allocator != nullptr) {
    auto* interpreter = new (interpreter_storage_)
        tflite::MicroInterpreter(flatbuffer, resolver, allocator, nullptr, nullptr);
    ok = interpreter->AllocateTensors() == kTfLiteOk && !guard->exhausted();
    if (exhausted != nullptr) *exhausted = guard->exhausted();
    if (ok && used != nullptr) *used = interpreter->arena_used_bytes();
    interpreter->~MicroInterpreter();
  }
  if (guard != nullptr) guard->Release();
  return ok;
}

bool ModelRunner::MeasureArena(const tflite::Model* flatbuffer, Resolver& resolver, char* error,
                               size_t error_len) {
  const size_t largest = board::LargestFor(board::Use::kArena);
  const size_t full =
      largest > kArenaSlack ? (largest - kArenaSlack) & ~static_cast<size_t>(15) : 0;
  uint8_t* probe = static_cast<uint8_t*>(board::AllocFor(board::Use::kArena, full, 16));
  if (probe == nullptr) {
    snprintf(error, error_len, "arena: cannot allocate %u bytes; largest free block %u",
             static_cast<unsigned>(full), static_cast<unsigned>(largest));
    return false;
  }
  size_t used = 0;
  bool exhausted = false;
  if (!Allocates(flatbuffer, resolver, probe, full, &used, &exhausted)) {
    fflush(stderr);  // TFLM's reasons reach the host before the error line
    if (exhausted) {
      snprintf(error, error_len,
               "arena: the model's tensors do not fit in the largest free block (%u bytes)",
               static_cast<unsigned>(full));
    } else {
      snprintf(error, error_len, "tflm: AllocateTensors failed");
    }
    board::Free(probe);
    return false;
  }
  // TFLM's arena_used_bytes() leaves out what it took and gave back while planning, so the
  // smallest arena that loads can be larger (keyword_scrambled: 13,244 B used, 15,580 B needed).
  // It lies in [used, full]: widen a step above `used` until one loads, then bisect. Every probe
  // goes through GuardedArena, under which TFLM fails cleanly from `used` up (stock TFLM crashed
  // in 1,136 of those sizes for keyword_scrambled); none goes below `used`, where TFLM still
  // dereferences allocations it did not check. The failing probes' messages are muted: they
  // are the search, not the answer.
  size_t fails = used - 1, loads = full;
  {
    QuietLog quiet;
    for (size_t step = 16; used + step < full; step *= 2) {
      if (Allocates(flatbuffer, resolver, probe, used + step, nullptr, nullptr)) {
        loads = used + step;
        break;
      }
      fails = used + step;
    }
    if (fails + 1 == used && Allocates(flatbuffer, resolver, probe, used, nullptr, nullptr))
      loads = used;
    while (loads - fails > 1) {
      const size_t mid = fails + (loads - fails) / 2;
      if (Allocates(flatbuffer, resolver, probe, mid, nullptr, nullptr)) {
        loads = mid;
      } else {
        fails = mid;
      }
    }
  }
  board::Free(probe);
  arena_min_ = loads;
  return true;
}

bool ModelRunner::SetInput(const uint8_t* data, size_t len, char* error, size_t error_len) {
  if (!loaded()) {
    snprintf(error, error_len, "db: load a model first");
    return false;
  }
  if (len != input_tensor()->bytes) {
    snprintf(error, error_len, "db: input is %u bytes, the model takes %u",
             static_cast<unsigned>(len), static_cast<unsigned>(input_tensor()->bytes));
    return false;
  }
  if (input_ == nullptr) {
    input_ = static_cast<uint8_t*>(board::Alloc(len, 0));
    if (input_ == nullptr) {
      snprintf(error, error_len, "db: cannot allocate %u bytes for the input",
               static_cast<unsigned>(len));
      return false;
    }
    input_len_ = len;
  }
  memcpy(input_, data, len);
  return true;
}

bool ModelRunner::Invoke(uint32_t* cycles, char* error, size_t error_len) {
  // The arena planner may reuse the input buffer for intermediates: copy it every time.
  interpreter_->Reset();
  memcpy(input_tensor()->data.raw, input_, input_len_);
  const uint32_t start = board::Cycles();
  const TfLiteStatus status = interpreter_->Invoke();
  *cycles = board::Cycles() - start;
  if (status != kTfLiteOk) {
    fflush(stderr);
    snprintf(error, error_len, "tflm: Invoke failed");
    return false;
  }
  return true;
}

}  // namespace tinyhil
