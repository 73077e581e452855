// Portable core of the tinyhil firmware: framing, CRC-32, command parsing, latency
// statistics and result formatting. No ESP-IDF or TFLM dependency: it builds with the
// host's g++ and is tested against test/vectors.tsv (see PROTOCOL.md).
#ifndef TINYHIL_CORE_H_
#define TINYHIL_CORE_H_

#include <cstddef>
#include <cstdint>

namespace tinyhil {

constexpr int kProtocolVersion = 1;
constexpr size_t kMaxLine = 127;
constexpr size_t kMaxName = 15;
constexpr size_t kMaxArg = 31;
constexpr int kMaxArgs = 6;

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32); pass the previous value to continue.
uint32_t Crc32(const uint8_t* data, size_t len, uint32_t previous = 0);

struct Command {
  char name[kMaxName + 1];
  int argc;
  char argv[kMaxArgs][kMaxArg + 1];
};

// Splits "name arg1 arg2" (the text before '%'). Returns false and fills `error` when
// the command is empty or a limit is exceeded.
bool ParseCommand(const char* text, Command* out, char* error, size_t error_len);

// Accumulates bytes from the serial port into one command at a time.
class LineAssembler {
 public:
  enum class Event { kNone, kCommand, kTooLong };
  // Feeds one byte. On kCommand, text() holds the command without '%'.
  Event Feed(char c);
  const char* text() const { return buffer_; }

 private:
  char buffer_[kMaxLine + 1] = {};
  size_t length_ = 0;
  bool overflow_ = false;
};

struct LatencyStats {
  double median_ms, mean_ms, std_ms, min_ms, max_ms;
};

// Statistics of `n` cycle counts at `cpu_mhz`; sample standard deviation (n - 1).
// Sorts `cycles` in place.
LatencyStats ComputeLatency(uint32_t* cycles, size_t n, uint32_t cpu_mhz);

// Writes "m-results-[v0,v1,...]" into `out`; returns the length, or 0 if it did not fit.
size_t FormatResultsInt(const int32_t* values, size_t n, char* out, size_t out_len);
size_t FormatResultsFloat(const float* values, size_t n, char* out, size_t out_len);

}  // namespace tinyhil

#endif  // TINYHIL_CORE_H_
