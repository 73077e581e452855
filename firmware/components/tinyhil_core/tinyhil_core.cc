#include "tinyhil_core.h"

#include <algorithm>
#include <cmath>
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
  int token = 0;
  const char* p = text;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') ++p;
    if (!*p) break;
    const char* start = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') ++p;
    size_t len = static_cast<size_t>(p - start);
    if (token == 0) {
      if (len > kMaxName) {
        std::snprintf(error, error_len, "command name longer than %u characters", static_cast<unsigned>(kMaxName));
        return false;
      }
      std::memcpy(out->name, start, len);
    } else {
      if (token > kMaxArgs) {
        std::snprintf(error, error_len, "too many arguments (%d at most)", kMaxArgs);
        return false;
      }
      if (len > kMaxArg) {
        std::snprintf(error, error_len, "argument longer than %u characters", static_cast<unsigned>(kMaxArg));
        return false;
      }
      std::memcpy(out->argv[token - 1], start, len);
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
  s.median_ms = (n % 2) ? cycles[n / 2] / per_ms : (cycles[n / 2 - 1] / per_ms + cycles[n / 2] / per_ms) / 2.0;
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

}  // namespace tinyhil
