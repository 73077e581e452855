// Heap capabilities shared by the firmware's allocations and its heap reports.
#ifndef TINYHIL_MEMORY_CAPS_H_
#define TINYHIL_MEMORY_CAPS_H_

#include <cstdint>

#include "esp_heap_caps.h"

namespace tinyhil {

// Model copies, arenas and payloads come from 8-bit-addressable internal RAM, and the
// heap-free / heap-largest figures the host budgets with must describe that same heap.
constexpr uint32_t kInternal8Bit = MALLOC_CAP_8BIT | MALLOC_CAP_INTERNAL;

}  // namespace tinyhil

#endif  // TINYHIL_MEMORY_CAPS_H_
