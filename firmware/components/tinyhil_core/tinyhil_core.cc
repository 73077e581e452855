#include "tinyhil_core.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tinyhil {

uint32_t Crc32(const uint8_t* data, size_t len, uint32_t previous) {
  uint32_t crc = ~previous;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

bool ParseCommand(const char* text, Command* out, char* error, size_t error_len) {
  std::memset(out, 0, sizeof(*out));
  if (std::strlen(text) > kMaxLine) {
    std::snprintf(error, error_len, "line too long (more than %u characters)",
                  static_cast<unsigned>(kMaxLine));
    return false;
  }
  int token = 0;
  size_t used = 0;  // of out->text; the line limit above keeps it inside
  const char* p = text;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') ++p;
    if (!*p) break;
    const char* start = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') ++p;
    size_t len = static_cast<size_t>(p - start);
    if (token == 0) {
      if (len > kMaxName) {
        std::snprintf(error, error_len, "command name longer than %u characters",
                      static_cast<unsigned>(kMaxName));
        return false;
      }
      std::memcpy(out->name, start, len);
    } else {
      if (token > kMaxArgs) {
        std::snprintf(error, error_len, "too many arguments (%d at most)", kMaxArgs);
        return false;
      }
      out->offset[token - 1] = static_cast<uint8_t>(used);
      std::memcpy(out->text + used, start, len);
      used += len + 1;
      out->argc = token;
    }
    ++token;
  }
  if (token == 0) {
    std::snprintf(error, error_len, "empty command");
    return false;
  }
  return true;
}

bool ParseDecimal(const char* text, uint32_t* out) {
  uint64_t value = 0;
  const char* p = text;
  for (; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    value = value * 10 + static_cast<uint64_t>(*p - '0');
    if (value > UINT32_MAX) return false;
  }
  if (p == text) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

LineAssembler::Event LineAssembler::Feed(char c) {
  if (c == '%') {
    Event event = overflow_ ? Event::kTooLong : Event::kCommand;
    buffer_[length_] = '\0';
    length_ = 0;
    overflow_ = false;
    return event;
  }
  if (length_ == 0 && (c == '\r' || c == '\n')) return Event::kNone;
  if (length_ >= kMaxLine) {
    overflow_ = true;
    return Event::kNone;
  }
  buffer_[length_++] = c;
  return Event::kNone;
}

LatencyStats ComputeLatency(uint32_t* cycles, size_t n, uint32_t cpu_mhz) {
  LatencyStats s = {0, 0, 0, 0, 0};
  if (n == 0 || cpu_mhz == 0) return s;
  std::sort(cycles, cycles + n);
  const double per_ms = static_cast<double>(cpu_mhz) * 1000.0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += cycles[i] / per_ms;
  s.mean_ms = sum / n;
  s.min_ms = cycles[0] / per_ms;
  s.max_ms = cycles[n - 1] / per_ms;
  s.median_ms = (n % 2) ? cycles[n / 2] / per_ms
                        : (cycles[n / 2 - 1] / per_ms + cycles[n / 2] / per_ms) / 2.0;
  if (n > 1) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = cycles[i] / per_ms - s.mean_ms;
      acc += d * d;
    }
    s.std_ms = std::sqrt(acc / (n - 1));
  }
  return s;
}

namespace {
template <typename Writer>
size_t FormatResults(size_t n, char* out, size_t out_len, Writer write_one) {
  int used = std::snprintf(out, out_len, "m-results-[");
  if (used < 0 || static_cast<size_t>(used) >= out_len) return 0;
  size_t pos = static_cast<size_t>(used);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) {
      if (pos + 1 >= out_len) return 0;
      out[pos++] = ',';
    }
    int w = write_one(i, out + pos, out_len - pos);
    if (w < 0 || pos + static_cast<size_t>(w) >= out_len) return 0;
    pos += static_cast<size_t>(w);
  }
  if (pos + 2 > out_len) return 0;
  out[pos++] = ']';
  out[pos] = '\0';
  return pos;
}
}  // namespace

size_t FormatResultsInt(const int32_t* values, size_t n, char* out, size_t out_len) {
  return FormatResults(n, out, out_len, [values](size_t i, char* dst, size_t len) {
    return std::snprintf(dst, len, "%ld", static_cast<long>(values[i]));
  });
}

size_t FormatResultsFloat(const float* values, size_t n, char* out, size_t out_len) {
  return FormatResults(n, out, out_len, [values](size_t i, char* dst, size_t len) {
    return std::snprintf(dst, len, "%.9g", static_cast<double>(values[i]));
  });
}

size_t FormatResultsDequantized(const int32_t* values, size_t n, float scale, int32_t zero_point,
                                char* out, size_t out_len) {
  return FormatResults(n, out, out_len, [=](size_t i, char* dst, size_t len) {
    // float32 arithmetic, as TFLM's dequantize: the host computes the same bits
    const float real = static_cast<float>(values[i] - zero_point) * scale;
    return std::snprintf(dst, len, "%.9g", static_cast<double>(real));
  });
}

bool ResolveInfer(const Command& c, InputSource last_input, InferRequest* out, char* error,
                  size_t error_len) {
  const bool eembc = c.argc < 2 || (c.argc == 2 && last_input == InputSource::kEembc);
  if (!eembc) {
    uint32_t n = 0, w = 0;
    if (c.argc != 2 || !ParseDecimal(c.arg(0), &n) || !ParseDecimal(c.arg(1), &w) || n < 1 ||
        n > kMaxTimedRuns || w > kMaxWarmupRuns) {
      std::snprintf(error, error_len,
                    "bad arguments for infer: expected infer <n 1..%u> <warm-up runs 0..%u>",
                    static_cast<unsigned>(kMaxTimedRuns), static_cast<unsigned>(kMaxWarmupRuns));
      return false;
    }
    *out = {InferForm::kTinyhil, n, w};
    return true;
  }
  *out = {InferForm::kEembc, 1, kEembcDefaultWarmup};
  if (c.argc >= 1 && (!ParseDecimal(c.arg(0), &out->runs) || out->runs == 0)) {
    std::snprintf(error, error_len, "Inference iterations must be >0");
    return false;
  }
  if (out->runs > kMaxEembcRuns) {
    std::snprintf(error, error_len, "Inference iterations must be <=%u",
                  static_cast<unsigned>(kMaxEembcRuns));
    return false;
  }
  if (c.argc == 2 && !ParseDecimal(c.arg(1), &out->warmup)) {
    std::snprintf(error, error_len, "Inference warmup must be >=0");
    return false;
  }
  if (out->warmup > kMaxWarmupRuns) {
    std::snprintf(error, error_len, "Inference warmup must be <=%u",
                  static_cast<unsigned>(kMaxWarmupRuns));
    return false;
  }
  return true;
}

bool ValidModelId(const char* id) {
  size_t len = 0;
  for (const char* p = id; *p; ++p, ++len) {
    const char c = *p;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return len >= 1 && len <= kMaxModelId;
}

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void Reply(LineSink& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void Reply(LineSink& out, const char* format, ...) {
  char line[kMaxLine + 1];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  out.Line(line);
}
}  // namespace

bool DbBuffer::Claims(const Command& c) {
  return c.argc == 0 ||
         (std::strcmp(c.arg(0), "input") != 0 && std::strcmp(c.arg(0), "model") != 0);
}

void DbBuffer::Handle(const Command& c, DbStorage& storage, LineSink& out) {
  // The texts in e-[...] are the EEMBC reference's, misspellings included, so that logs
  // read the same as with a reference DUT.
  if (c.argc == 0) {
    Reply(out, "e-[Command 'db' requires a subcommand]");
  } else if (std::strcmp(c.arg(0), "load") == 0) {
    Load(c, storage, out);
  } else if (std::strcmp(c.arg(0), "print") == 0) {
    Print(c, out);
  } else {
    Chunk(c.arg(0), out);
  }
}

void DbBuffer::Load(const Command& c, DbStorage& storage, LineSink& out) {
  uint32_t n = 0;
  if (c.argc < 2) {
    Reply(out, "e-[Command 'db load' requires the # of bytes]");
    return;
  }
  if (!ParseDecimal(c.arg(1), &n) || n == 0) {
    Reply(out, "e-[Command 'db load' must be >0 bytes]");
    return;
  }
  char error[96];
  data_ = storage.Reserve(n, error, sizeof(error));
  size_ = received_ = 0;
  if (data_ == nullptr) {
    Reply(out, "e-[%s]", error);
    return;
  }
  std::memset(data_, 0, n);
  size_ = n;
  Reply(out, "m-[Expecting %lu bytes]", static_cast<unsigned long>(n));
}

void DbBuffer::Chunk(const char* hex, LineSink& out) {
  if (data_ == nullptr || received_ == size_) {
    Reply(out, "e-[db: no load in progress; send db load <bytes> first]");
    return;
  }
  const size_t digits = std::strlen(hex);
  if (digits % 2 != 0) {
    Reply(out, "e-[Insufficent number of hex digits]");
    return;
  }
  for (size_t i = 0; i < digits; i += 2) {
    const int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      Reply(out, "e-[Invalid hex digit '%c%c']", hex[i], hex[i + 1]);
      return;
    }
    data_[received_++] = static_cast<uint8_t>(hi * 16 + lo);
    if (received_ == size_) {
      Reply(out, "m-load-done");  // digits past the announced size are dropped
      return;
    }
  }
}

void DbBuffer::Print(const Command& c, LineSink& out) const {
  // No argument: the whole buffer, as the reference prints it; else N bytes from offset.
  uint32_t count = static_cast<uint32_t>(size_), offset = 0;
  if ((c.argc >= 2 && !ParseDecimal(c.arg(1), &count)) ||
      (c.argc >= 3 && !ParseDecimal(c.arg(2), &offset))) {
    Reply(out, "e-[bad arguments for db print: expected db print [<bytes> [<offset>]]]");
    return;
  }
  const size_t begin = offset < size_ ? offset : size_;
  const size_t end = count < size_ - begin ? begin + count : size_;
  constexpr size_t kPerLine = 8;
  for (size_t i = begin; i < end; i += kPerLine) {
    char line[16 + 3 * kPerLine];
    size_t pos = static_cast<size_t>(std::snprintf(line, sizeof(line), "m-buffer-"));
    for (size_t j = i; j < end && j < i + kPerLine; ++j) {
      pos += static_cast<size_t>(
          std::snprintf(line + pos, sizeof(line) - pos, j == i ? "%02x" : "-%02x", data_[j]));
    }
    out.Line(line);
  }
}

}  // namespace tinyhil
