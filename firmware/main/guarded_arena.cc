#include "guarded_arena.h"

#include <new>

#include "board.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_arena_constants.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tinyhil {
namespace {

uintptr_t AlignUp(uintptr_t p, size_t alignment) {
  return alignment > 1 ? (p + alignment - 1) / alignment * alignment : p;
}

uintptr_t AlignDown(uintptr_t p, size_t alignment) {
  return alignment > 1 ? p / alignment * alignment : p;
}

// Answers a persistent request past the heap too; what is written there is never read back by
// a model that loads (an exhausted arena fails the load).
constexpr size_t kSinkBytes = 512;
alignas(16) uint8_t g_sink[kSinkBytes];

// The GuardedArena in use: whether a request did not fit, and the heap blocks that answered.
constexpr int kMaxOverflow = 16;
bool g_exhausted = false;
int g_overflow_count = 0;
void* g_overflow[kMaxOverflow] = {};

}  // namespace

tflite::MicroAllocator* GuardedArena::CreateAllocator(uint8_t* arena, size_t bytes,
                                                      GuardedArena** guard) {
  *guard = nullptr;
  g_exhausted = false;  // a new arena: nothing has overflowed it
  const uintptr_t start = reinterpret_cast<uintptr_t>(arena);
  const uintptr_t aligned = AlignUp(start, tflite::MicroArenaBufferAlignment());
  if (arena == nullptr || aligned - start >= bytes) return nullptr;
  GuardedArena staging(reinterpret_cast<uint8_t*>(aligned), bytes - (aligned - start));
  void* self = staging.AllocatePersistentBuffer(sizeof(GuardedArena), alignof(GuardedArena));
  if (self == nullptr) return nullptr;
  auto* guarded = new (self) GuardedArena(staging);
  *guard = guarded;
  void* planner = guarded->AllocatePersistentBuffer(sizeof(tflite::GreedyMemoryPlanner),
                                                    alignof(tflite::GreedyMemoryPlanner));
  if (planner == nullptr || guarded->exhausted()) return nullptr;
  // MicroAllocator::Create places the allocator without checking the allocation: check first.
  const uintptr_t tail = reinterpret_cast<uintptr_t>(guarded->tail());
  if (tail < sizeof(tflite::MicroAllocator) + alignof(tflite::MicroAllocator) ||
      AlignDown(tail - sizeof(tflite::MicroAllocator), alignof(tflite::MicroAllocator)) <
          guarded->temp()) {
    return nullptr;
  }
  return tflite::MicroAllocator::Create(guarded, new (planner) tflite::GreedyMemoryPlanner());
}

uintptr_t GuardedArena::temp() const {
  return reinterpret_cast<uintptr_t>(GetOverlayMemoryAddress()) + GetNonPersistentUsedBytes();
}

uint8_t* GuardedArena::AllocatePersistentBuffer(size_t size, size_t alignment) {
  const uintptr_t tail = reinterpret_cast<uintptr_t>(this->tail());
  if (size > tail || AlignDown(tail - size, alignment) < temp()) {
    MicroPrintf("Failed to allocate tail memory. Requested: %u, available %u",
                static_cast<unsigned>(size),
                static_cast<unsigned>(tail > temp() ? tail - temp() : 0));
    return Overflow(size, alignment);
  }
  return SingleArenaBufferAllocator::AllocatePersistentBuffer(size, alignment);
}

uint8_t* GuardedArena::Overflow(size_t size, size_t alignment) {
  g_exhausted = true;
  if (g_overflow_count < kMaxOverflow) {
    void* p = board::Alloc(size, alignment < 16 ? 16 : alignment);
    if (p != nullptr) {
      g_overflow[g_overflow_count++] = p;
      return static_cast<uint8_t*>(p);
    }
  }
  return size <= kSinkBytes && alignment <= 16 ? g_sink : nullptr;
}

bool GuardedArena::exhausted() const { return g_exhausted; }

void GuardedArena::Release() {
  for (int i = 0; i < g_overflow_count; ++i) board::Free(g_overflow[i]);
  g_overflow_count = 0;
}

uint8_t* GuardedArena::AllocateTemp(size_t size, size_t alignment) {
  const uintptr_t tail = reinterpret_cast<uintptr_t>(this->tail());
  const uintptr_t start = AlignUp(temp(), alignment);
  if (start > tail || tail - start < size) {
    MicroPrintf("Failed to allocate temp memory. Requested: %u, available %u",
                static_cast<unsigned>(size),
                static_cast<unsigned>(start < tail ? tail - start : 0));
    return nullptr;
  }
  return SingleArenaBufferAllocator::AllocateTemp(size, alignment);
}

TfLiteStatus GuardedArena::ResizeBuffer(uint8_t* resizable_buf, size_t size, size_t alignment) {
  const uintptr_t tail = reinterpret_cast<uintptr_t>(this->tail());
  const uintptr_t start =
      AlignUp(reinterpret_cast<uintptr_t>(GetOverlayMemoryAddress()), alignment);
  if (start > tail || tail - start < size) {
    MicroPrintf("Failed to resize buffer. Requested: %u, available %u", static_cast<unsigned>(size),
                static_cast<unsigned>(start < tail ? tail - start : 0));
    return kTfLiteError;
  }
  return SingleArenaBufferAllocator::ResizeBuffer(resizable_buf, size, alignment);
}

size_t GuardedArena::GetAvailableMemory(size_t alignment) const {
  const uintptr_t start = AlignUp(temp(), alignment);
  const uintptr_t end = AlignDown(reinterpret_cast<uintptr_t>(tail()), alignment);
  return end > start ? end - start : 0;
}

}  // namespace tinyhil
