#include "stored_windows.h"

#include <cmath>
#include <cstring>

#include "board.h"

namespace tinyhil {
namespace {

constexpr char kMagic[8] = {'T', 'N', 'Y', 'H', 'L', 'W', 'I', 'N'};
constexpr uint32_t kVersion = 1;

uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// numpy's quantize: np.clip(np.round(x / scale) + zero_point, lo, hi) in float32. nearbyintf
// rounds half to even in the default rounding mode, as np.round does.
float Quantized(float x, float scale, int32_t zero_point, float lo, float hi) {
  const float q = nearbyintf(x / scale) + static_cast<float>(zero_point);
  return q < lo ? lo : (q > hi ? hi : q);
}

}  // namespace

bool ReadStoredWindows(StoredWindows* out, char* error, size_t error_len) {
  *out = StoredWindows();
  uint8_t header[kWindowsHeaderBytes];
  if (!board::ReadWindows(0, header, sizeof(header), error, error_len)) return false;
  if (memcmp(header, kMagic, sizeof(kMagic)) != 0 || U32(header + 8) != kVersion) return true;
  out->count = U32(header + 12);
  out->values = U32(header + 16);
  memcpy(out->sha256, header + 24, sizeof(out->sha256));
  // a header that promises more than the partition holds is a foreign one
  const uint64_t payload = static_cast<uint64_t>(out->count) * out->values * sizeof(float);
  if (out->values == 0 || payload > board::WindowsPartitionBytes() - kWindowsHeaderBytes) {
    *out = StoredWindows();
  }
  return true;
}

bool ConvertWindow(const float* window, size_t values, const TfLiteTensor* input, uint8_t* out) {
  const float scale = input->params.scale;
  const int32_t zp = input->params.zero_point;
  switch (input->type) {
    case kTfLiteFloat32:
      memcpy(out, window, values * sizeof(float));
      return true;
    case kTfLiteInt8:
      for (size_t i = 0; i < values; ++i) {
        out[i] =
            static_cast<uint8_t>(static_cast<int8_t>(Quantized(window[i], scale, zp, -128, 127)));
      }
      return true;
    case kTfLiteUInt8:
      for (size_t i = 0; i < values; ++i)
        out[i] = static_cast<uint8_t>(Quantized(window[i], scale, zp, 0, 255));
      return true;
    case kTfLiteInt16:
      for (size_t i = 0; i < values; ++i) {
        const int16_t q = static_cast<int16_t>(Quantized(window[i], scale, zp, -32768, 32767));
        memcpy(out + 2 * i, &q, sizeof(q));  // little-endian, as the host sends it
      }
      return true;
    default:
      return false;
  }
}

}  // namespace tinyhil
