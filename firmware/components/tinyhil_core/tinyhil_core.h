// Portable core of the tinyhil firmware: framing, CRC-32, command parsing, latency
// statistics, result formatting and the hardware-free parts of the EEMBC / MLPerf Tiny
// commands (db load and hex chunks, the infer forms, model ids). No ESP-IDF or TFLM
// dependency: it builds with the host's g++ and is tested against test/vectors.tsv
// (see PROTOCOL.md).
#ifndef TINYHIL_CORE_H_
#define TINYHIL_CORE_H_

#include <cstddef>
#include <cstdint>

namespace tinyhil {

constexpr int kProtocolVersion = 1;
constexpr size_t kMaxLine = 127;
constexpr size_t kMaxName = 15;
constexpr int kMaxArgs = 6;
constexpr size_t kMaxModelId = 31;
constexpr uint32_t kMaxTimedRuns = 1000;      // tinyhil's infer keeps one lap per run
constexpr uint32_t kEembcDefaultWarmup = 10;  // EEMBC's infer without W
// Upper bounds that keep every command's answer within minutes, not days (a board busy with
// 4294967295 runs answers nothing and cannot be stopped but by a reset):
constexpr uint32_t kMaxWarmupRuns = 1000;    // tinyhil's infer W, and EEMBC's infer W
constexpr uint32_t kMaxEembcRuns = 1000000;  // EEMBC's infer N: MLPerf's >= 10 s windows need ~1e5
constexpr uint32_t kMaxIdleMs = 60000;       // idle: the energy baseline takes 200 ms by default
constexpr const char* kDefaultModelId = "none";

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32); pass the previous value to continue.
uint32_t Crc32(const uint8_t* data, size_t len, uint32_t previous = 0);

// One command split at blanks. Arguments have no length limit of their own, only the
// line's: EEMBC hosts send an input as hex chunks (`db 0a1b…`) of up to 124 digits.
struct Command {
  char name[kMaxName + 1];
  int argc;
  const char* arg(int i) const { return text + offset[i]; }
  char text[kMaxLine + 1];  // the arguments, each ended by '\0'
  uint8_t offset[kMaxArgs];
};

// Splits "name arg1 arg2" (the text before '%'). Returns false and fills `error` when
// the command is empty or a limit is exceeded.
bool ParseCommand(const char* text, Command* out, char* error, size_t error_len);

// A decimal number of digits only (no sign, no blanks), at most 4294967295.
bool ParseDecimal(const char* text, uint32_t* out);

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
// EEMBC's results: quantized values as floats, (q - zero_point) * scale in float32.
size_t FormatResultsDequantized(const int32_t* values, size_t n, float scale, int32_t zero_point,
                                char* out, size_t out_len);

// How the input of the next inference arrived: tinyhil's `db input`, or EEMBC's
// `db load N` and hex chunks. It picks the reply form of `infer N W` (PROTOCOL.md).
enum class InputSource { kNone, kTinyhil, kEembc };
enum class InferForm { kTinyhil, kEembc };

struct InferRequest {
  InferForm form;
  uint32_t runs;
  uint32_t warmup;
};

// Reads `infer [N [W]]`: no or one argument is EEMBC's form (W defaults to 10); two are
// EEMBC's form after an EEMBC load and tinyhil's otherwise. Returns false with the
// error text of the form it chose.
bool ResolveInfer(const Command& c, InputSource last_input, InferRequest* out, char* error,
                  size_t error_len);

// A model id for `m-model-[…]`: 1 to kMaxModelId of A-Z a-z 0-9 . _ -
bool ValidModelId(const char* id);

// Receives reply lines, without "\r\n".
class LineSink {
 public:
  virtual void Line(const char* text) = 0;

 protected:
  ~LineSink() = default;
};

// Where `db load N` keeps its bytes: the firmware's heap, the host test's memory.
class DbStorage {
 public:
  // Room for `n` bytes (the previous load's room is given up), or nullptr with the
  // reason in `error`.
  virtual uint8_t* Reserve(size_t n, char* error, size_t error_len) = 0;

 protected:
  ~DbStorage() = default;
};

// EEMBC's byte buffer: `db load N`, then hex chunks `db <hex>` until N bytes, `db print`.
class DbBuffer {
 public:
  // Whether `c` is an EEMBC form of db: anything but tinyhil's `db input|model …`.
  static bool Claims(const Command& c);
  // Answers an EEMBC db command (Claims(c) is true) with its reply lines.
  void Handle(const Command& c, DbStorage& storage, LineSink& out);
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t received() const { return received_; }
  bool complete() const { return data_ != nullptr && received_ == size_; }

 private:
  void Load(const Command& c, DbStorage& storage, LineSink& out);
  void Chunk(const char* hex, LineSink& out);
  void Print(const Command& c, LineSink& out) const;

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t received_ = 0;
};

}  // namespace tinyhil

#endif  // TINYHIL_CORE_H_
