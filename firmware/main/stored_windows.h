// The test windows the host wrote into the `windows` partition (firmware/PROTOCOL.md,
// "Windows partition"): float32 windows behind a 64-byte header, converted here to the loaded
// model's input type exactly as the host converts them (tinyhil.models.tflm.quantize).
#ifndef TINYHIL_STORED_WINDOWS_H_
#define TINYHIL_STORED_WINDOWS_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/c/common.h"

namespace tinyhil {

constexpr size_t kWindowsHeaderBytes = 64;

struct StoredWindows {
  uint32_t count = 0;   // windows stored; 0 for erased flash or another layout
  uint32_t values = 0;  // float32 values per window
  uint8_t sha256[32] = {};
};

// Reads the partition's header; false with the reason in `error` when the board has no
// windows partition (an erased or foreign one reads as count 0).
bool ReadStoredWindows(StoredWindows* out, char* error, size_t error_len);

// One float window into `input`'s type: float32 as is; int8, uint8 and int16 as
// round-half-to-even(x / scale) + zero_point, clamped, in float32 arithmetic (numpy's).
// False for another input type.
bool ConvertWindow(const float* window, size_t values, const TfLiteTensor* input, uint8_t* out);

}  // namespace tinyhil

#endif  // TINYHIL_STORED_WINDOWS_H_
