// TFLM's arena allocator, with its size checks made safe for every arena size.
//
// esp-tflite-micro 1.3.8's SingleArenaBufferAllocator subtracts pointers as size_t before it
// compares them: once the temporary section comes within an alignment step of the tail,
// GetAvailableMemory() and AllocateTemp() wrap to about 4 GB "available", the memory planner
// lays its arrays past the arena, and the board crashes (keyword_scrambled at 13,244 to
// 14,379 B of arena, between TFLM's arena_used_bytes() and the smallest arena that loads).
// The same subtraction lets a persistent allocation larger than the space left wrap around.
// GuardedArena answers those requests as a full arena, so TFLM fails AllocateTensors() in its
// own words instead; every request that fits goes to TFLM's code.
//
// A persistent request that does not fit is answered with memory outside the arena (from the
// heap, or a small static sink), never nullptr: several of TFLM's kernels write through the
// pointer unchecked in Prepare (FULLY_CONNECTED's per-channel multipliers: C_7 full_int crashed
// the firmware while the arena search probed sizes that were too small). The arena is then
// `exhausted()`, whatever AllocateTensors() returns, and the load counts as failed.
#ifndef TINYHIL_GUARDED_ARENA_H_
#define TINYHIL_GUARDED_ARENA_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/micro_allocator.h"

namespace tinyhil {

class GuardedArena : public tflite::SingleArenaBufferAllocator {
 public:
  using tflite::SingleArenaBufferAllocator::SingleArenaBufferAllocator;

  // A MicroAllocator with TFLM's greedy planner over `bytes` of `arena`, its bookkeeping in
  // the arena's tail as MicroAllocator::Create(arena, bytes) places it; nullptr when even that
  // bookkeeping does not fit. `guard` gets the GuardedArena (in the arena) for exhausted() and
  // Release().
  static tflite::MicroAllocator* CreateAllocator(uint8_t* arena, size_t bytes,
                                                 GuardedArena** guard);

  // True once a persistent request did not fit: the model does not load in this arena.
  bool exhausted() const;
  // Gives back what answered the requests that did not fit; call before the arena is freed.
  void Release();

  uint8_t* AllocatePersistentBuffer(size_t size, size_t alignment) override;
  uint8_t* AllocateTemp(size_t size, size_t alignment) override;
  TfLiteStatus ResizeBuffer(uint8_t* resizable_buf, size_t size, size_t alignment) override;
  size_t GetAvailableMemory(size_t alignment) const override;

 private:
  uintptr_t temp() const;  // the end of the temporary section (at or above the head)
  uint8_t* Overflow(size_t size, size_t alignment);
  // No state of its own: it lives in the arena's tail, where TFLM's allocator lives, and a field
  // would make every arena figure larger than stock TFLM's. What it answered outside the arena is
  // kept in guarded_arena.cc, for the one GuardedArena in use at a time (ModelRunner loads one
  // model, or probes one arena, at a time).
};

}  // namespace tinyhil

#endif  // TINYHIL_GUARDED_ARENA_H_
