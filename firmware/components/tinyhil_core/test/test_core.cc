// Checks the portable core against the shared vectors (PROTOCOL.md, "Test vectors").
// Usage: test_core path/to/vectors.tsv   -> prints "N passed, M failed", exit 1 on failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../tinyhil_core.h"

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

int passed = 0, failed = 0;

// db load's room: a fixed capacity, refused beyond it with the firmware's wording.
class TestStorage : public tinyhil::DbStorage {
 public:
  explicit TestStorage(size_t capacity) : capacity_(capacity) {}
  uint8_t* Reserve(size_t n, char* error, size_t error_len) override {
    if (n > capacity_) {
      std::snprintf(error, error_len, "db load: %u bytes do not fit: largest free block %u",
                    static_cast<unsigned>(n), static_cast<unsigned>(capacity_));
      return nullptr;
    }
    bytes_.assign(n, 0xee);
    return bytes_.data();
  }

 private:
  size_t capacity_;
  std::vector<uint8_t> bytes_;
};

class Collect : public tinyhil::LineSink {
 public:
  void Line(const char* text) override { lines.push_back(text); }
  std::vector<std::string> lines;
};

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

tinyhil::InputSource Source(const std::string& name) {
  if (name == "tinyhil") return tinyhil::InputSource::kTinyhil;
  if (name == "eembc") return tinyhil::InputSource::kEembc;
  return tinyhil::InputSource::kNone;
}

void Check(bool ok, int line, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL line %d: %s\n", line, what.c_str());
  }
}

bool Close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s vectors.tsv\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1]);
  if (!file) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::string line;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = Split(line, '\t');
    const std::string& kind = f[0];
    if (kind == "crc32") {
      std::vector<uint8_t> bytes;
      if (f[1] != "-") {
        for (size_t i = 0; i + 1 < f[1].size(); i += 2) {
          bytes.push_back(std::strtoul(f[1].substr(i, 2).c_str(), nullptr, 16));
        }
      }
      char got[9];
      std::snprintf(got, sizeof(got), "%08x",
                    static_cast<unsigned>(tinyhil::Crc32(bytes.data(), bytes.size())));
      Check(f[2] == got, number, "crc32 " + f[1] + " -> " + got);
    } else if (kind == "parse") {
      tinyhil::Command cmd;
      char error[64];
      std::string got;
      if (tinyhil::ParseCommand(f[1].c_str(), &cmd, error, sizeof(error))) {
        got = cmd.name;
        for (int i = 0; i < cmd.argc; ++i) got += std::string("|") + cmd.arg(i);
      } else {
        got = std::string("error:") + error;
      }
      Check(got == f[2], number, "parse '" + f[1] + "' -> '" + got + "'");
    } else if (kind == "stats") {
      std::vector<uint32_t> cycles;
      for (const auto& c : Split(f[2], ',')) cycles.push_back(std::strtoul(c.c_str(), nullptr, 10));
      tinyhil::LatencyStats s = tinyhil::ComputeLatency(cycles.data(), cycles.size(),
                                                        std::strtoul(f[1].c_str(), nullptr, 10));
      std::vector<std::string> e = Split(f[3], ',');
      const double got[5] = {s.median_ms, s.mean_ms, s.std_ms, s.min_ms, s.max_ms};
      bool ok = e.size() == 5;
      for (int i = 0; ok && i < 5; ++i) ok = Close(got[i], std::atof(e[i].c_str()));
      Check(ok, number, "stats " + f[2]);
    } else if (kind == "results") {
      char out[256];
      std::vector<std::string> vals = Split(f[2], ',');
      if (f[1] == "int8") {
        std::vector<int32_t> v;
        for (const auto& x : vals) v.push_back(std::atoi(x.c_str()));
        tinyhil::FormatResultsInt(v.data(), v.size(), out, sizeof(out));
      } else {
        std::vector<float> v;
        for (const auto& x : vals) v.push_back(std::strtof(x.c_str(), nullptr));
        tinyhil::FormatResultsFloat(v.data(), v.size(), out, sizeof(out));
      }
      Check(f[3] == out, number, std::string("results -> ") + out);
    } else if (kind == "dequant") {
      char out[256];
      std::vector<int32_t> v;
      for (const auto& x : Split(f[3], ',')) v.push_back(std::atoi(x.c_str()));
      tinyhil::FormatResultsDequantized(v.data(), v.size(), std::strtof(f[1].c_str(), nullptr),
                                        std::atoi(f[2].c_str()), out, sizeof(out));
      Check(f[4] == out, number, std::string("dequant -> ") + out);
    } else if (kind == "infer") {
      tinyhil::Command cmd;
      tinyhil::InferRequest req;
      char error[96];
      std::string got;
      const std::string text = f[1] == "-" ? "infer" : "infer " + f[1];
      if (!tinyhil::ParseCommand(text.c_str(), &cmd, error, sizeof(error))) {
        got = std::string("parse error:") + error;
      } else if (tinyhil::ResolveInfer(cmd, Source(f[2]), &req, error, sizeof(error))) {
        got = std::string(req.form == tinyhil::InferForm::kEembc ? "eembc" : "tinyhil") + "," +
              std::to_string(req.runs) + "," + std::to_string(req.warmup);
      } else {
        got = std::string("error:") + error;
      }
      Check(got == f[3], number, "infer '" + f[1] + "' after " + f[2] + " -> '" + got + "'");
    } else if (kind == "modelid") {
      const std::string got = tinyhil::ValidModelId(f[1].c_str()) ? "ok" : "bad";
      Check(got == f[2], number, "model id '" + f[1] + "' -> " + got);
    } else if (kind == "db") {
      TestStorage storage(std::strtoul(f[1].c_str(), nullptr, 10));
      tinyhil::DbBuffer buffer;
      std::vector<std::string> replies;
      for (const auto& text : Split(f[2], ';')) {
        tinyhil::Command cmd;
        char error[96];
        Collect out;
        if (!tinyhil::ParseCommand(text.c_str(), &cmd, error, sizeof(error))) {
          out.lines.push_back(std::string("parse error:") + error);
        } else if (!tinyhil::DbBuffer::Claims(cmd)) {
          out.lines.push_back("not an EEMBC db command");
        } else {
          buffer.Handle(cmd, storage, out);
        }
        replies.push_back(out.lines.empty() ? "-" : Join(out.lines, "|"));
      }
      Check(Join(replies, ";") == f[3], number, "db session -> " + Join(replies, ";"));
    } else {
      Check(false, number, "unknown vector kind " + kind);
    }
  }
  // The assembler is stream-level; checked here rather than by vectors.
  tinyhil::LineAssembler a;
  const char* stream = "\r\nname%info%";
  int commands = 0;
  for (const char* p = stream; *p; ++p) {
    commands += a.Feed(*p) == tinyhil::LineAssembler::Event::kCommand;
  }
  Check(commands == 2, 0, "assembler splits two commands");
  std::string long_cmd(200, 'x');
  long_cmd += '%';
  tinyhil::LineAssembler::Event last = tinyhil::LineAssembler::Event::kNone;
  for (char c : long_cmd) last = a.Feed(c);
  Check(last == tinyhil::LineAssembler::Event::kTooLong, 0, "assembler flags a line too long");
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
