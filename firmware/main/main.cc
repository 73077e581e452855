// tinyhil firmware: answers the host over the console (firmware/PROTOCOL.md). The command
// loop and its handlers; the chip is reached only through board.h.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "board.h"
#include "board_info.h"
#include "model_runner.h"
#include "sdkconfig.h"
#include "stored_windows.h"
#include "tinyhil_core.h"

namespace tinyhil {
namespace {

constexpr const char* kFirmwareName = "tinyhil-firmware";
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
// EEMBC's timestamp pin idles high; its energy monitor timestamps the falling edges.
constexpr uint32_t kMarkerIdle = 1;
#else
constexpr uint32_t kMarkerIdle = 0;
#endif

// `db load N` takes its room from the heap; the previous load's is given back first.
class HeapDbStorage : public DbStorage {
 public:
  uint8_t* Reserve(size_t n, char* error, size_t error_len) override {
    board::Free(bytes_);
    bytes_ = static_cast<uint8_t*>(board::Alloc(n, 0));
    if (bytes_ == nullptr) {
      snprintf(error, error_len, "db load: %u bytes do not fit: largest free block %u",
               static_cast<unsigned>(n), static_cast<unsigned>(board::HeapLargest()));
    }
    return bytes_;
  }

 private:
  uint8_t* bytes_ = nullptr;
};

class PrintSink : public LineSink {
 public:
  void Line(const char* text) override { printf("%s\n", text); }
};

// Everything the commands change between one command and the next.
struct FirmwareState {
  ModelRunner runner;
  uint8_t* upload = nullptr;  // last "db model" payload
  size_t upload_len = 0;
  uint32_t laps[kMaxTimedRuns];
  char line[1024];
  DbBuffer db;  // EEMBC's db load + hex chunks
  HeapDbStorage db_storage;
  InputSource last_input = InputSource::kNone;
  char model_id[kMaxModelId + 1] = {};  // m-model-[...]; kDefaultModelId until model_id sets it
  // The loaded model is the boot model the board keeps (PROTOCOL.md, "Boot"), as kept.
  bool remembered = false;
  board::BootModel boot_model = {};
};

static_assert(sizeof(board::BootModel::id) > kMaxModelId, "a model id fits the boot model");

using Handler = void (*)(FirmwareState& s, const Command& c);

struct CommandSpec {
  const char* name;
  Handler handler;
  const char* help;
};

// Declared from the table so that a handler named there with the wrong signature, or
// never written, fails to build.
#define TINYHIL_COMMAND(name, handler, help) void handler(FirmwareState& s, const Command& c);
#include "commands.def"
#undef TINYHIL_COMMAND

constexpr CommandSpec kCommands[] = {
#define TINYHIL_COMMAND(name, handler, help) {#name, handler, help},
#include "commands.def"
#undef TINYHIL_COMMAND
};

void Ready() {
  printf("m-ready\n");
  fflush(stdout);
}

void Error(const char* text) { printf("e-[%s]\n", text); }

// A number of digits only: strtoul alone would take "-1" as ULONG_MAX, a sign or blanks, and
// clamp an overflow; none of those is a count, a length or a CRC.
bool ParseUnsigned(const char* s, unsigned long* out, int base = 10) {
  const bool digit = (*s >= '0' && *s <= '9') ||
                     (base == 16 && ((*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')));
  if (!digit) return false;
  char* end = nullptr;
  errno = 0;
  *out = strtoul(s, &end, base);
  return errno == 0 && *end == '\0' && *out <= 0xFFFFFFFFul;
}

// The marker at the edges of a timed window: high for the window (tinyhil's energy
// window), or EEMBC's timestamp pulse at each edge (CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP).
void TimestampPulse() {
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  board::SetMarker(0);
  board::BusyWaitUs(CONFIG_TINYHIL_TIMESTAMP_PULSE_US);
  board::SetMarker(1);
#endif
}

void WindowStart() {
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  TimestampPulse();
#else
  board::SetMarker(1);
#endif
}

void WindowEnd() {
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  TimestampPulse();
#else
  board::SetMarker(0);
#endif
}

// Reads exactly `len` bytes: waits `first_ms` for the first, then allows
// CONFIG_TINYHIL_DB_TIMEOUT_MS between chunks.
size_t ReadExact(uint8_t* dst, size_t len, int first_ms = CONFIG_TINYHIL_DB_TIMEOUT_MS) {
  size_t got = 0;
  while (got < len) {
    const int wait_ms = got == 0 ? first_ms : CONFIG_TINYHIL_DB_TIMEOUT_MS;
    const size_t n = board::ConsoleRead(dst + got, len - got, wait_ms);
    if (n == 0) break;
    got += n;
  }
  return got;
}

// EEMBC's form: the device class is "dut", the vendor text in brackets names tinyhil and the chip.
void CmdName(FirmwareState&, const Command&) {
  board::Identity id = {};
  board::Identify(&id);
  printf("m-name-dut-[tinyhil-%s]\n", id.chip);
}

void CmdVersion(FirmwareState&, const Command&) {
  printf("m-protocol-%d\nm-fw-%s\n", kProtocolVersion, kFirmwareName);
}

void CmdInfo(FirmwareState&, const Command&) { PrintInfo(); }

void CmdHelp(FirmwareState&, const Command&) {
  for (const CommandSpec& spec : kCommands) printf("m-help-%s\n", spec.name);
}

// No model, and so no model id: a new model is a new case, it must not present itself with the
// previous case's id. The boot model goes with the model it stands for.
void UnloadModel(FirmwareState& s) {
  s.runner.Unload();
  snprintf(s.model_id, sizeof(s.model_id), "%s", kDefaultModelId);
  board::UnmapModel();
  if (s.remembered) board::ForgetBootModel();
  s.remembered = false;
}

// Loads `len` bytes of the model partition or of the last upload as `model` does, the previous
// model unloaded first; false with the reason in `error`.
bool LoadModel(FirmwareState& s, bool from_partition, unsigned long len, unsigned long want,
               unsigned long arena, bool ram, char* error, size_t error_len) {
  UnloadModel(s);
  const uint8_t* data = nullptr;
  if (from_partition) {
    data = board::MapModel(len, error, error_len);
    if (data == nullptr) return false;
  } else {
    if (s.upload == nullptr || s.upload_len < len) {
      snprintf(error, error_len, "model: no uploaded model of that length; send db model first");
      return false;
    }
    data = s.upload;
  }
  const uint32_t crc = Crc32(data, len);
  if (crc != want) {
    snprintf(error, error_len, "model: crc mismatch: got %08lx expected %08lx",
             static_cast<unsigned long>(crc), want);
    return false;
  }
  return s.runner.Load(data, len, ram, arena, error, error_len);
}

// Keeps the loaded model (from the partition) as the boot model, with the current model id.
void RememberModel(FirmwareState& s, const board::BootModel& model) {
  s.boot_model = model;
  snprintf(s.boot_model.id, sizeof(s.boot_model.id), "%s", s.model_id);
  s.remembered = board::SaveBootModel(s.boot_model);
  // a log line, not an error: the model is loaded, the next boot will not have it
  if (!s.remembered) printf("tinyhil: cannot keep the model for the next boot\n");
}

void CmdDb(FirmwareState& s, const Command& c) {
  if (DbBuffer::Claims(c)) {
    if (c.argc >= 1 && strcmp(c.arg(0), "load") == 0) s.last_input = InputSource::kEembc;
    PrintSink out;
    s.db.Handle(c, s.db_storage, out);
    return;
  }
  unsigned long len = 0, want = 0;
  if (c.argc != 3 || !ParseUnsigned(c.arg(1), &len) || !ParseUnsigned(c.arg(2), &want, 16)) {
    Error("bad arguments for db: expected db <input|model> <len> <crc32 hex>");
    return;
  }
  uint8_t* buf = static_cast<uint8_t*>(board::Alloc(len, 16));
  if (buf == nullptr) {
    snprintf(s.line, sizeof(s.line), "db: %lu bytes do not fit: buffer holds %u", len,
             static_cast<unsigned>(board::HeapLargest()));
    Error(s.line);
    return;
  }
  printf("m-db-ready-%lu\n", len);
  fflush(stdout);
  const size_t got = ReadExact(buf, len);
  if (got < len) {
    snprintf(s.line, sizeof(s.line), "db: timeout after %u of %lu bytes",
             static_cast<unsigned>(got), len);
    Error(s.line);
    board::Free(buf);
    return;
  }
  const uint32_t crc = Crc32(buf, len);
  if (crc != want) {
    snprintf(s.line, sizeof(s.line), "db: crc mismatch: got %08lx expected %08lx",
             static_cast<unsigned long>(crc), want);
    Error(s.line);
    board::Free(buf);
    return;
  }
  if (strcmp(c.arg(0), "model") == 0) {
    if (s.runner.runs_from(s.upload)) {
      // `model upload … flash` runs the previous upload in place: it goes with its buffer,
      // rather than leave TFLM reading freed memory at the next infer.
      UnloadModel(s);
      printf("m-model-unloaded\n");
    }
    board::Free(s.upload);
    s.upload = buf;
    s.upload_len = len;
  } else {
    char error[96];
    const bool ok = s.runner.SetInput(buf, len, error, sizeof(error));
    board::Free(buf);
    if (!ok) {
      Error(error);
      return;
    }
    s.last_input = InputSource::kTinyhil;
  }
  printf("m-db-ok-%lu-%08lx\n", len, static_cast<unsigned long>(crc));
}

void PrintTensor(const char* what, const TfLiteTensor* t, size_t count_or_bytes) {
  const char* dtype = t->type == kTfLiteInt8      ? "int8"
                      : t->type == kTfLiteFloat32 ? "float32"
                      : t->type == kTfLiteInt16   ? "int16"
                      : t->type == kTfLiteUInt8   ? "uint8"
                                                  : "other";
  printf("m-%s-[%s,%u,%.9g,%ld]\n", what, dtype, static_cast<unsigned>(count_or_bytes),
         static_cast<double>(t->params.scale), static_cast<long>(t->params.zero_point));
}

void CmdModel(FirmwareState& s, const Command& c) {
  if (c.argc == 0) {  // model%: no model, and none at the next boot either
    UnloadModel(s);
    board::ForgetBootModel();
    printf("m-model-unloaded\n");
    return;
  }
  unsigned long len = 0, want = 0, arena = 0;
  const bool from_partition = c.argc == 5 && strcmp(c.arg(0), "partition") == 0;
  const bool from_upload = c.argc == 5 && strcmp(c.arg(0), "upload") == 0;
  const bool ram = c.argc == 5 && strcmp(c.arg(4), "ram") == 0;
  if (!(from_partition || from_upload) || !ParseUnsigned(c.arg(1), &len) ||
      !ParseUnsigned(c.arg(2), &want, 16) ||
      !(strcmp(c.arg(3), "auto") == 0 || ParseUnsigned(c.arg(3), &arena)) ||
      !(ram || strcmp(c.arg(4), "flash") == 0)) {
    Error(
        "bad arguments for model: expected model <partition|upload> <len> <crc32> <arena|auto> "
        "<flash|ram>, or model to unload");
    return;
  }
  if (len == 0) {
    Error("bad arguments for model: length must be > 0, got 0");
    return;
  }
  if (arena == 0 && strcmp(c.arg(3), "auto") != 0) {  // Load() takes 0 for auto: say it
    Error("bad arguments for model: arena must be auto or > 0 bytes, got 0");
    return;
  }
  char error[128];
  // The boot model is forgotten before the load (UnloadModel): a load that crashes the board
  // is not tried again at boot.
  if (!LoadModel(s, from_partition, len, want, arena, ram, error, sizeof(error))) {
    Error(error);
    return;
  }
  // Only a partition's model comes back at boot: an upload's bytes are gone after a reset.
  if (from_partition) {
    board::BootModel model = {};
    model.len = static_cast<uint32_t>(len);
    model.crc = static_cast<uint32_t>(want);
    model.arena = static_cast<uint32_t>(arena);
    model.ram = ram;
    RememberModel(s, model);
  }
  const TfLiteTensor* in = s.runner.input_tensor();
  const TfLiteTensor* out = s.runner.output_tensor();
  size_t out_count = 1;
  for (int i = 0; i < out->dims->size; ++i) out_count *= out->dims->data[i];
  printf("m-model-bytes-%lu\n", len);
  printf("m-arena-bytes-%u\n", static_cast<unsigned>(s.runner.arena_bytes()));
  printf("m-arena-used-bytes-%u\n", static_cast<unsigned>(s.runner.arena_used_bytes()));
  printf("m-arena-min-bytes-%u\n", static_cast<unsigned>(s.runner.arena_min_bytes()));
  PrintTensor("input", in, in->bytes);
  PrintTensor("output", out, out_count);
  printf("m-heap-free-%u\n", static_cast<unsigned>(board::HeapFree()));
  printf("m-heap-largest-%u\n", static_cast<unsigned>(board::HeapLargest()));
}

size_t OutputElements(const TfLiteTensor* out) {
  size_t n = 1;
  for (int i = 0; i < out->dims->size; ++i) n *= out->dims->data[i];
  return n;
}

// The output tensor's integer values (int8, uint8 or int16), at most `cap` of them; returns
// how many.
size_t IntegerOutputs(const TfLiteTensor* out, int32_t* values, size_t cap) {
  const size_t all = OutputElements(out);
  const size_t n = all > cap ? cap : all;
  for (size_t i = 0; i < n; ++i) {
    values[i] = out->type == kTfLiteInt16   ? out->data.i16[i]
                : out->type == kTfLiteUInt8 ? out->data.uint8[i]
                                            : out->data.int8[i];
  }
  return n;
}

// tinyhil's results: the output tensor in its own type. `dequantized`: EEMBC's, as floats.
void PrintResults(FirmwareState& s, bool dequantized) {
  const TfLiteTensor* out = s.runner.output_tensor();
  if (out->type == kTfLiteFloat32) {
    FormatResultsFloat(out->data.f, OutputElements(out), s.line, sizeof(s.line));
  } else {
    int32_t values[64];
    const size_t n = IntegerOutputs(out, values, 64);
    if (dequantized) {
      FormatResultsDequantized(values, n, out->params.scale, out->params.zero_point, s.line,
                               sizeof(s.line));
    } else {
      FormatResultsInt(values, n, s.line, sizeof(s.line));
    }
  }
  printf("%s\n", s.line);
}

void InferTinyhil(FirmwareState& s, const InferRequest& r) {
  char error[64];
  uint32_t cycles = 0;
  for (uint32_t i = 0; i < r.warmup; ++i) {
    if (!s.runner.Invoke(&cycles, error, sizeof(error))) return Error(error);
  }
  WindowStart();
  bool ok = true;
  for (uint32_t i = 0; i < r.runs && ok; ++i) {
    ok = s.runner.Invoke(&s.laps[i], error, sizeof(error));
  }
  WindowEnd();
  if (!ok) return Error(error);
  for (uint32_t i = 0; i < r.runs; ++i) {
    printf("m-lap-cycles-%lu-%lu\n", static_cast<unsigned long>(i),
           static_cast<unsigned long>(s.laps[i]));
  }
  printf("m-cpu-mhz-%u\n", board::CpuMhz());
  PrintResults(s, false);
}

// EEMBC's infer: the db buffer becomes the input (th_load_tensor), W warm-up runs, then N
// runs between two m-lap-us timestamps, then the dequantised results. The timestamps are
// taken at the window's edges and printed after it, so no serial output falls inside.
void InferEembc(FirmwareState& s, const InferRequest& r) {
  char error[96];
  if (s.last_input == InputSource::kEembc) {
    if (!s.db.complete()) {
      snprintf(error, sizeof(error), "infer: db load incomplete: %u of %u bytes",
               static_cast<unsigned>(s.db.received()), static_cast<unsigned>(s.db.size()));
      return Error(error);
    }
    if (!s.runner.SetInput(s.db.data(), s.db.size(), error, sizeof(error))) return Error(error);
  } else if (!s.runner.has_input()) {
    return Error("infer: no input");
  }
  uint32_t cycles = 0;
  printf("m-warmup-start-%lu\n", static_cast<unsigned long>(r.warmup));
  for (uint32_t i = 0; i < r.warmup; ++i) {
    if (!s.runner.Invoke(&cycles, error, sizeof(error))) return Error(error);
  }
  printf("m-warmup-done\nm-infer-start-%lu\n", static_cast<unsigned long>(r.runs));
  fflush(stdout);
  WindowStart();
  const int64_t start_us = board::MicrosSinceBoot();
  bool ok = true;
  for (uint32_t i = 0; i < r.runs && ok; ++i) ok = s.runner.Invoke(&cycles, error, sizeof(error));
  const int64_t end_us = board::MicrosSinceBoot();
  WindowEnd();
  if (!ok) return Error(error);
  printf("m-lap-us-%llu\nm-lap-us-%llu\n", static_cast<unsigned long long>(start_us),
         static_cast<unsigned long long>(end_us));
  printf("m-infer-done\n");
  PrintResults(s, true);
}

void CmdInfer(FirmwareState& s, const Command& c) {
  InferRequest r;
  char error[96];
  if (!ResolveInfer(c, s.last_input, &r, error, sizeof(error))) return Error(error);
  if (!s.runner.loaded()) return Error("infer: no model");
  if (r.form == InferForm::kEembc) return InferEembc(s, r);
  if (!s.runner.has_input()) return Error("infer: no input");
  InferTinyhil(s, r);
}

// The class of the output: the index of its largest value (quantised values order as the reals).
int ArgMax(const TfLiteTensor* out) {
  const size_t n = OutputElements(out);
  int best = 0;
  for (size_t i = 1; i < n; ++i) {
    const bool more = out->type == kTfLiteFloat32 ? out->data.f[i] > out->data.f[best]
                      : out->type == kTfLiteInt16 ? out->data.i16[i] > out->data.i16[best]
                      : out->type == kTfLiteUInt8 ? out->data.uint8[i] > out->data.uint8[best]
                                                  : out->data.int8[i] > out->data.int8[best];
    if (more) best = static_cast<int>(i);
  }
  return best;
}

// classify <count> <bytes> <crc32>: `count` input tensors of `bytes` each arrive back to back;
// each is inferred as soon as it is complete and answered m-class-<i>-<class>. The host keeps
// at most m-info-rx-buffer-bytes of windows ahead of the answers (the console has no flow
// control); the CRC-32 of all the bytes ends it: m-classify-done-<count>-<crc32>.
// The end of both forms of classify: the CRC of every window's bytes against the host's.
void ClassifyDone(FirmwareState& s, unsigned long count, uint32_t crc, unsigned long want) {
  s.last_input = InputSource::kTinyhil;
  if (crc != want) {
    snprintf(s.line, sizeof(s.line), "classify: crc mismatch: got %08lx expected %08lx",
             static_cast<unsigned long>(crc), want);
    return Error(s.line);
  }
  printf("m-classify-done-%lu-%08lx\n", count, static_cast<unsigned long>(crc));
}

// classify windows <first> <count> <crc32>: the stored windows first.. of the windows partition,
// each converted to the model's input type and answered as in CmdClassify; the CRC-32 covers
// the converted bytes, so the host knows the board classified what host TFLM did.
void ClassifyStored(FirmwareState& s, const Command& c) {
  unsigned long first = 0, count = 0, want = 0;
  if (!ParseUnsigned(c.arg(1), &first) || !ParseUnsigned(c.arg(2), &count) ||
      !ParseUnsigned(c.arg(3), &want, 16) || count == 0) {
    return Error(
        "bad arguments for classify: expected classify windows <first> <count > 0> <crc32 hex>");
  }
  if (!s.runner.loaded()) return Error("classify: no model");
  StoredWindows stored;
  if (!ReadStoredWindows(&stored, s.line, sizeof(s.line))) return Error(s.line);
  if (first >= stored.count || count > stored.count - first) {
    snprintf(s.line, sizeof(s.line), "classify: windows %lu..%lu are not stored (%lu stored)",
             first, first + count - 1, static_cast<unsigned long>(stored.count));
    return Error(s.line);
  }
  const TfLiteTensor* in = s.runner.input_tensor();
  const size_t bytes = in->bytes;
  size_t elements = 1;
  for (int i = 0; i < in->dims->size; ++i) elements *= in->dims->data[i];
  if (elements != stored.values) {
    snprintf(s.line, sizeof(s.line), "classify: stored windows hold %lu values, the model takes %u",
             static_cast<unsigned long>(stored.values), static_cast<unsigned>(elements));
    return Error(s.line);
  }
  const size_t window_bytes = stored.values * sizeof(float);
  float* window = static_cast<float*>(board::Alloc(window_bytes, 4));
  uint8_t* converted = static_cast<uint8_t*>(board::Alloc(bytes, 16));
  if (window == nullptr || converted == nullptr || !ConvertWindow(window, 0, in, converted)) {
    const bool room = window != nullptr && converted != nullptr;
    board::Free(window);
    board::Free(converted);
    return Error(room ? "classify: stored windows are float32; the model's input type is none of "
                        "float32, int8, uint8, int16"
                      : "classify: no room for one window");
  }
  printf("m-classify-ready-%lu\n", count);
  fflush(stdout);
  uint32_t crc = 0;
  char error[96];
  bool ok = true;
  for (unsigned long i = 0; i < count && ok; ++i) {
    uint32_t cycles = 0;
    const size_t offset = kWindowsHeaderBytes + (first + i) * window_bytes;
    ok = board::ReadWindows(offset, reinterpret_cast<uint8_t*>(window), window_bytes, error,
                            sizeof(error)) &&
         ConvertWindow(window, stored.values, in, converted);
    if (ok) {
      crc = Crc32(converted, bytes, crc);
      ok = s.runner.SetInput(converted, bytes, error, sizeof(error)) &&
           s.runner.Invoke(&cycles, error, sizeof(error));
    }
    if (ok) {
      printf("m-class-%lu-%d\n", i, ArgMax(s.runner.output_tensor()));
      fflush(stdout);
    }
  }
  board::Free(window);
  board::Free(converted);
  if (!ok) return Error(error);
  ClassifyDone(s, count, crc, want);
}

void CmdClassify(FirmwareState& s, const Command& c) {
  if (c.argc == 4 && strcmp(c.arg(0), "windows") == 0) return ClassifyStored(s, c);
  unsigned long count = 0, bytes = 0, want = 0;
  if (c.argc != 3 || !ParseUnsigned(c.arg(0), &count) || !ParseUnsigned(c.arg(1), &bytes) ||
      !ParseUnsigned(c.arg(2), &want, 16) || count == 0) {
    return Error("bad arguments for classify: expected classify <count > 0> <bytes> <crc32 hex>");
  }
  if (!s.runner.loaded()) return Error("classify: no model");
  if (bytes != s.runner.input_tensor()->bytes) {
    snprintf(s.line, sizeof(s.line), "classify: windows of %lu bytes, the model takes %u", bytes,
             static_cast<unsigned>(s.runner.input_tensor()->bytes));
    return Error(s.line);
  }
  uint8_t* buf = static_cast<uint8_t*>(board::Alloc(bytes, 16));
  if (buf == nullptr) return Error("classify: no room for one window");
  printf("m-classify-ready-%lu\n", count);
  fflush(stdout);
  uint32_t crc = 0;
  char error[96];
  for (unsigned long i = 0; i < count; ++i) {
    uint32_t cycles = 0;
    // the host sends the next windows on the answers: the wait covers its delay in reading them
    const size_t got = ReadExact(buf, bytes, CONFIG_TINYHIL_CLASSIFY_TIMEOUT_MS);
    if (got < bytes) {
      snprintf(s.line, sizeof(s.line), "classify: timeout in window %lu after %u of %lu bytes", i,
               static_cast<unsigned>(got), bytes);
      board::Free(buf);
      return Error(s.line);
    }
    crc = Crc32(buf, bytes, crc);
    if (!s.runner.SetInput(buf, bytes, error, sizeof(error)) ||
        !s.runner.Invoke(&cycles, error, sizeof(error))) {
      board::Free(buf);
      return Error(error);
    }
    printf("m-class-%lu-%d\n", i, ArgMax(s.runner.output_tensor()));
    fflush(stdout);  // the host sends the next windows on these answers
  }
  board::Free(buf);
  ClassifyDone(s, count, crc, want);
}

void CmdWindows(FirmwareState& s, const Command& c) {
  if (c.argc != 0) return Error("bad arguments for windows: expected windows");
  StoredWindows stored;
  if (!ReadStoredWindows(&stored, s.line, sizeof(s.line))) return Error(s.line);
  char hex[65] = {};
  for (int i = 0; i < 32; ++i) snprintf(hex + 2 * i, 3, "%02x", stored.sha256[i]);
  printf("m-windows-count-%lu\nm-windows-values-%lu\nm-windows-sha256-%s\n",
         static_cast<unsigned long>(stored.count), static_cast<unsigned long>(stored.values),
         stored.count ? hex : "none");
}

void CmdResults(FirmwareState& s, const Command&) {
  if (!s.runner.loaded()) return Error("results: no model");
  PrintResults(s, true);
}

void CmdTimestamp(FirmwareState&, const Command&) {
  // At the pulse's falling edge: the monitor's timestamp.
  const int64_t now_us = board::MicrosSinceBoot();
  TimestampPulse();
  printf("m-lap-us-%llu\n", static_cast<unsigned long long>(now_us));
}

// EEMBC's profile: the firmware's profile text, then the model id the case presents.
void CmdProfile(FirmwareState& s, const Command&) {
  printf("m-profile-[tinyhil protocol %d, fw %s]\n", kProtocolVersion, kFirmwareName);
  printf("m-model-[%s]\n", s.model_id);
}

void CmdModelId(FirmwareState& s, const Command& c) {
  if (c.argc > 1 || (c.argc == 1 && !ValidModelId(c.arg(0)))) {
    return Error(
        "bad arguments for model_id: expected model_id [<id>], 1 to 31 of A-Z a-z 0-9 . _ -");
  }
  if (c.argc == 1) {
    snprintf(s.model_id, sizeof(s.model_id), "%s", c.arg(0));
    // the boot model presents the same id after the next boot
    if (s.remembered && strcmp(s.boot_model.id, s.model_id) != 0) RememberModel(s, s.boot_model);
  }
  printf("m-model-[%s]\n", s.model_id);
}

void CmdOpProfile(FirmwareState& s, const Command&) {
  if (!s.runner.loaded() || !s.runner.has_input()) return Error("opprofile: no model or input");
  char error[64];
  uint32_t cycles = 0;
  s.runner.profiler().Start();
  const bool ok = s.runner.Invoke(&cycles, error, sizeof(error));
  s.runner.profiler().Stop();
  if (!ok) return Error(error);
  const CycleProfiler& p = s.runner.profiler();
  for (int i = 0; i < p.count(); ++i) {
    printf("m-op-%d-%s-%lu\n", i, p.tag(i), static_cast<unsigned long>(p.cycles(i)));
  }
}

void CmdIdle(FirmwareState&, const Command& c) {
  unsigned long ms = 0;
  if (c.argc != 1 || !ParseUnsigned(c.arg(0), &ms) || ms > kMaxIdleMs) {
    char error[64];
    snprintf(error, sizeof(error), "bad arguments for idle: expected idle <ms 0..%u>",
             static_cast<unsigned>(kMaxIdleMs));
    return Error(error);
  }
  board::SetMarker(kMarkerIdle);
  board::IdleMs(ms);
  printf("m-idle-ms-%lu\n", ms);
}

void CmdReset(FirmwareState&, const Command&) {
  printf("m-reset\n");
  Ready();
  board::Restart();
}

const CommandSpec* FindCommand(const char* name) {
  for (const CommandSpec& spec : kCommands) {
    if (strcmp(spec.name, name) == 0) return &spec;
  }
  return nullptr;
}

void Dispatch(FirmwareState& s, const char* text) {
  Command c;
  char error[64];
  if (!ParseCommand(text, &c, error, sizeof(error))) {
    Error(error);
  } else if (const CommandSpec* spec = FindCommand(c.name)) {
    spec->handler(s, c);
  } else {
    snprintf(s.line, sizeof(s.line), "Unknown command: %s", c.name);  // EEMBC's text
    Error(s.line);
  }
  Ready();
}

// The boot model (PROTOCOL.md, "Boot"): loaded as `model partition …` loaded it, the partition's
// CRC checked again; `m-boot-model-[…]`, or `e-[boot model: …]` and forgotten. A load that
// crashed the last boot is not tried again: the mark set before it is still there.
void LoadBootModel(FirmwareState& s) {
  board::BootModel model = {};
  if (!board::LoadBootModel(&model)) return;
  if (model.loading || model.len == 0 || !ValidModelId(model.id)) {
    snprintf(s.line, sizeof(s.line),
             "boot model: %s did not finish loading at the last boot; forgotten",
             ValidModelId(model.id) ? model.id : kDefaultModelId);
    board::ForgetBootModel();
    return Error(s.line);
  }
  model.loading = true;
  board::SaveBootModel(model);
  char error[128];
  if (!LoadModel(s, true, model.len, model.crc, model.arena, model.ram, error, sizeof(error))) {
    board::ForgetBootModel();
    const char* reason = strncmp(error, "model: ", 7) == 0 ? error + 7 : error;
    snprintf(s.line, sizeof(s.line), "boot model: %s; %s forgotten", reason, model.id);
    return Error(s.line);
  }
  model.loading = false;
  snprintf(s.model_id, sizeof(s.model_id), "%s", model.id);
  RememberModel(s, model);
  char arena[16] = "auto";
  if (model.arena != 0) {
    snprintf(arena, sizeof(arena), "%lu", static_cast<unsigned long>(model.arena));
  }
  printf("m-boot-model-[%s,%lu,%08lx,%s,%s]\n", model.id, static_cast<unsigned long>(model.len),
         static_cast<unsigned long>(model.crc), arena, model.ram ? "ram" : "flash");
}

}  // namespace

void Serve() {
  // Static: its laps, line and interpreter would take kilobytes of the stack TFLM runs on.
  static FirmwareState state;
  snprintf(state.model_id, sizeof(state.model_id), "%s", kDefaultModelId);
  board::Init(kMarkerIdle);
  PrintBootBanner();
  LoadBootModel(state);
  PrintBootReady();
  LineAssembler assembler;
  uint8_t byte = 0;
  while (true) {
    if (board::ConsoleRead(&byte, 1, -1) != 1) continue;
    switch (assembler.Feed(static_cast<char>(byte))) {
      case LineAssembler::Event::kCommand:
        Dispatch(state, assembler.text());
        break;
      case LineAssembler::Event::kTooLong:
        Error("line too long (more than 127 characters)");
        Ready();
        break;
      case LineAssembler::Event::kNone:
        break;
    }
  }
}

}  // namespace tinyhil
