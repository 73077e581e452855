// The board layer as a Linux process: the firmware's own command loop, model runner and
// protocol core run here against TFLM built from source (plugins/firmware_tools/host_build.py), as
// the virtual board `--virtual-board=firmware`. Not an ESP32: what differs is said below and in the
// boot banner (m-info-simulated-1, m-info-host-build-…).
//
//   console    a pseudo-terminal; its slave path is the first line on stdout. Lines leave
//              as ESP-IDF's console sends them (\n becomes \r\n), optionally paced at
//              --baud (10 bits a byte).
//   partition  --partition FILE, the model partition (erased bytes read 0xff) of
//              --partition-bytes.
//   heap       --heap-bytes, the board profile's internal heap; one allocation takes at
//              most --largest-block (the profile's largest block) or what is left. A new
//              block is filled with 0xce, not zeros.
//   cycles     CLOCK_MONOTONIC counted at --cpu-mhz: host time, not the ESP32's.
//   marker     --marker-log FILE: "<ns> <level>" per change.
//   windows    --windows FILE, the windows partition (erased bytes read 0xff) of
//              --windows-bytes (0: none).
//   boot model FILE.boot-model beside --partition FILE, one line:
//              tinyhil-boot-model 1 <ready|loading> <id> <len> <crc32 hex> <arena|auto> <flash|ram>
//              (the Python virtual board writes the same file).
//   restart    reset% and a crash (SIGSEGV, SIGABRT, SIGFPE, SIGILL, SIGBUS) re-execute the
//              binary on the same pseudo-terminal, as ESP-IDF reboots after a panic: the host
//              sees a new boot banner with reset-reason sw or panic.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "board.h"

namespace tinyhil {

void Serve();  // main.cc: the command loop

namespace board {
namespace {

// Everything the board layer keeps while the firmware runs, in one place. One instance
// (`host`): the board API of board.h is free functions, and the crash handler reaches it
// with no argument to pass.
struct HostState {
  // The command line (a restart passes it on, with the console and its reset reason).
  std::string partition, marker_log, chip = "esp32", sha256 = "unknown", reset_reason = "poweron";
  size_t partition_bytes = 0x200000, heap_bytes = 270336, largest_block = 0;
  std::string windows;
  size_t windows_bytes = 0;
  unsigned cpu_mhz = 240;
  long baud = 0;
  uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0};
  int console_fd = -1, slave_fd = -1;
  std::vector<std::string> argv;  // as given, for the restart

  std::map<void*, size_t> blocks;  // the heap's live allocations and their sizes
  size_t used_bytes = 0;           // their sum, against heap_bytes
  const uint8_t* model = nullptr;  // the mapped model partition
  size_t model_len = 0;
  FILE* marker = nullptr;     // marker_log, opened by Init()
  int64_t boot_ns = 0;        // CLOCK_MONOTONIC at start-up, where Cycles() counts from
  double line_free_at_s = 0;  // pacing: when the line is free again (monotonic)
  // Prepared at start-up so the crash handler needs no allocation: the panic's reboot.
  std::vector<std::string> panic_args;
  std::vector<char*> panic_argv;
};

HostState host;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Waits until `bytes` more bytes would have crossed the line at --baud.
void Pace(size_t bytes) {
  if (host.baud <= 0) return;
  const double now = NowNs() / 1e9;
  if (host.line_free_at_s < now) host.line_free_at_s = now;
  host.line_free_at_s += bytes * 10.0 / host.baud;
  const double wait = host.line_free_at_s - now;
  if (wait > 0) {
    timespec ts = {static_cast<time_t>(wait),
                   static_cast<long>((wait - static_cast<time_t>(wait)) * 1e9)};
    nanosleep(&ts, nullptr);
  }
}

void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);  // the console is gone: nothing left to serve
    data += n;
    len -= static_cast<size_t>(n);
  }
}

// stdout and stderr (TFLM's DebugLog) as ESP-IDF's console writes them: LF becomes CRLF.
ssize_t ConsoleWrite(void*, const char* data, size_t len) {
  std::string out;
  out.reserve(len + 8);
  for (size_t i = 0; i < len; ++i) {
    if (data[i] == '\n') out.push_back('\r');
    out.push_back(data[i]);
  }
  Pace(out.size());
  WriteAll(host.console_fd, out.data(), out.size());
  return static_cast<ssize_t>(len);
}

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr,
          "tinyhil firmware host build: %s\n"
          "usage: tinyhil-firmware --partition FILE [--partition-bytes N] [--windows FILE] "
          "[--windows-bytes N] [--heap-bytes N] "
          "[--largest-block N]\n"
          "       [--cpu-mhz N]"
          "       [--chip NAME] [--mac aa:bb:cc:dd:ee:ff] [--elf-sha256 HEX] [--baud N] "
          "[--marker-log FILE]\n",
          why);
  exit(2);
}

unsigned long long Number(const char* flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0') {
    std::string why = std::string(flag) + " takes a number, got '" + text + "'";
    Usage(why.c_str());
  }
  return v;
}

void ParseArgs(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) host.argv.emplace_back(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Usage(("missing value after " + flag).c_str());
    const char* v = argv[++i];
    if (flag == "--partition") {
      host.partition = v;
    } else if (flag == "--partition-bytes") {
      host.partition_bytes = Number(argv[i - 1], v);
    } else if (flag == "--windows") {
      host.windows = v;
    } else if (flag == "--windows-bytes") {
      host.windows_bytes = Number(argv[i - 1], v);
    } else if (flag == "--heap-bytes") {
      host.heap_bytes = Number(argv[i - 1], v);
    } else if (flag == "--largest-block") {
      host.largest_block = Number(argv[i - 1], v);
    } else if (flag == "--cpu-mhz") {
      host.cpu_mhz = static_cast<unsigned>(Number(argv[i - 1], v));
    } else if (flag == "--baud") {
      host.baud = static_cast<long>(Number(argv[i - 1], v));
    } else if (flag == "--chip") {
      host.chip = v;
    } else if (flag == "--elf-sha256") {
      host.sha256 = v;
    } else if (flag == "--marker-log") {
      host.marker_log = v;
    } else if (flag == "--reset-reason") {
      host.reset_reason = v;
    } else if (flag == "--console-fd") {
      host.console_fd = static_cast<int>(Number(argv[i - 1], v));
    } else if (flag == "--slave-fd") {
      host.slave_fd = static_cast<int>(Number(argv[i - 1], v));
    } else if (flag == "--mac") {
      unsigned m[6];
      if (sscanf(v, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
        Usage("--mac takes aa:bb:cc:dd:ee:ff");
      }
      for (int k = 0; k < 6; ++k) host.mac[k] = static_cast<uint8_t>(m[k]);
    } else {
      Usage(("unknown option " + flag).c_str());
    }
  }
  if (host.partition.empty()) Usage("--partition FILE is required (the model partition)");
  if (host.cpu_mhz == 0) Usage("--cpu-mhz must be > 0");
}

// A new pseudo-terminal whose slave is raw (no echo, no line editing), its path on stdout.
void OpenConsole() {
  if (host.console_fd >= 0) return;  // a restart keeps the pseudo-terminal
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    perror("tinyhil firmware host build: posix_openpt");
    exit(1);
  }
  const char* path = ptsname(master);
  // Held open for the process's life: the master then never reads EIO between two hosts.
  const int slave = open(path, O_RDWR | O_NOCTTY);
  termios t;
  if (slave < 0 || tcgetattr(slave, &t) != 0) {
    perror("tinyhil firmware host build: pty slave");
    exit(1);
  }
  cfmakeraw(&t);
  tcsetattr(slave, TCSANOW, &t);
  host.console_fd = master;
  host.slave_fd = slave;
  printf("%s\n", path);
  fflush(stdout);
}

// This binary's arguments for the next boot: the same options, the console kept, and why
// it restarts.
std::vector<std::string> RestartArgs(const char* reason) {
  std::vector<std::string> args;
  for (size_t i = 0; i < host.argv.size(); ++i) {
    const std::string& a = host.argv[i];
    if (a == "--reset-reason" || a == "--console-fd" || a == "--slave-fd") {
      ++i;
      continue;
    }
    args.push_back(a);
  }
  args.insert(args.end(),
              {"--reset-reason", reason, "--console-fd", std::to_string(host.console_fd),
               "--slave-fd", std::to_string(host.slave_fd)});
  fcntl(host.console_fd, F_SETFD, 0);  // the pseudo-terminal survives the exec
  fcntl(host.slave_fd, F_SETFD, 0);
  return args;
}

void ExecAgain(const char* reason) {
  std::vector<std::string> args = RestartArgs(reason);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  _exit(4);
}

void OnCrash(int sig) {
  char text[128];
  const int n = snprintf(
      text, sizeof(text),
      "\r\nGuru Meditation Error: host build caught signal %d (%s)\r\nRebooting...\r\n", sig,
      sig == SIGSEGV   ? "SIGSEGV"
      : sig == SIGABRT ? "SIGABRT"
                       : "fatal");
  if (n > 0) (void)!write(host.console_fd, text, static_cast<size_t>(n));
  execv("/proc/self/exe", host.panic_argv.data());
  _exit(5);
}

void PreparePanic() {
  host.panic_args = RestartArgs("panic");
  for (std::string& a : host.panic_args) host.panic_argv.push_back(a.data());
  host.panic_argv.push_back(nullptr);
  struct sigaction sa = {};
  sa.sa_handler = OnCrash;
  sa.sa_flags = SA_NODEFER | SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGILL, SIGBUS}) sigaction(sig, &sa, nullptr);
}

}  // namespace

void Init(int marker_idle_level) {
  if (!host.marker_log.empty()) host.marker = fopen(host.marker_log.c_str(), "a");
  SetMarker(marker_idle_level);
}

size_t ConsoleRead(uint8_t* dst, size_t len, int timeout_ms) {
  pollfd p = {host.console_fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return 0;
  const ssize_t n = read(host.console_fd, dst, len);
  if (n <= 0) return 0;
  Pace(static_cast<size_t>(n));
  return static_cast<size_t>(n);
}

// As the ESP32 build's UART driver, so the host paces its windows the same way.
size_t ConsoleRxBufferBytes() { return 16384; }

void* Alloc(size_t bytes, size_t alignment) {
  if (bytes == 0 || bytes > HeapLargest()) return nullptr;
  void* p = nullptr;
  if (posix_memalign(&p, alignment > sizeof(void*) ? alignment : sizeof(void*), bytes) != 0) {
    return nullptr;
  }
  // A new block holds what the heap held before, never zeros to rely on: 0xce, as ESP-IDF's
  // comprehensive heap poisoning fills it (glibc's fresh pages would be zeros and hide a read of
  // memory nobody wrote).
  memset(p, 0xce, bytes);
  host.blocks[p] = bytes;
  host.used_bytes += bytes;
  return p;
}

void Free(void* p) {
  if (p == nullptr) return;
  auto it = host.blocks.find(p);
  if (it != host.blocks.end()) {
    host.used_bytes -= it->second;
    host.blocks.erase(it);
  }
  free(p);
}

size_t HeapFree() { return host.heap_bytes - host.used_bytes; }

size_t HeapLargest() {
  const size_t left = host.heap_bytes - host.used_bytes;
  return host.largest_block != 0 && host.largest_block < left ? host.largest_block : left;
}

// The host build has no PSRAM: the arena and the model copy come from the profile's heap.
void* AllocFor(Use, size_t bytes, size_t alignment) { return Alloc(bytes, alignment); }
size_t LargestFor(Use) { return HeapLargest(); }

uint32_t Cycles() {
  return static_cast<uint32_t>((NowNs() - host.boot_ns) * static_cast<int64_t>(host.cpu_mhz) /
                               1000);
}
unsigned CpuMhz() { return host.cpu_mhz; }
int64_t MicrosSinceBoot() { return (NowNs() - host.boot_ns) / 1000; }

void BusyWaitUs(uint32_t us) {
  const int64_t until = NowNs() + static_cast<int64_t>(us) * 1000;
  while (NowNs() < until) {
  }
}

void IdleMs(uint32_t ms) { usleep(static_cast<useconds_t>(ms) * 1000); }

void SetMarker(int level) {
  if (host.marker == nullptr) return;
  fprintf(host.marker, "%lld %d\n", static_cast<long long>(NowNs()), level);
  fflush(host.marker);
}

size_t ModelPartitionBytes() { return host.partition_bytes; }

size_t WindowsPartitionBytes() { return host.windows.empty() ? 0 : host.windows_bytes; }

bool ReadWindows(size_t offset, uint8_t* dst, size_t len, char* error, size_t error_len) {
  if (WindowsPartitionBytes() == 0) {
    snprintf(error, error_len, "windows: the partition table has no windows partition");
    return false;
  }
  if (offset > host.windows_bytes || len > host.windows_bytes - offset) {
    snprintf(error, error_len, "windows: bytes %lu..%lu are past the partition's %lu",
             static_cast<unsigned long>(offset), static_cast<unsigned long>(offset + len),
             static_cast<unsigned long>(host.windows_bytes));
    return false;
  }
  memset(dst, 0xff, len);  // erased flash past the file's end
  if (FILE* f = fopen(host.windows.c_str(), "rb")) {
    if (fseek(f, static_cast<long>(offset), SEEK_SET) == 0) (void)!fread(dst, 1, len, f);
    fclose(f);
  }
  return true;
}

const uint8_t* MapModel(size_t len, char* error, size_t error_len) {
  UnmapModel();
  if (len > host.partition_bytes) {
    snprintf(error, error_len, "model: %lu bytes > partition %lu", static_cast<unsigned long>(len),
             static_cast<unsigned long>(host.partition_bytes));
    return nullptr;
  }
  void* map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    snprintf(error, error_len, "model: cannot map the model partition");
    return nullptr;
  }
  uint8_t* bytes = static_cast<uint8_t*>(map);
  memset(bytes, 0xff, len);  // erased flash
  if (FILE* f = fopen(host.partition.c_str(), "rb")) {
    (void)!fread(bytes, 1, len, f);
    fclose(f);
  }
  mprotect(map, len, PROT_READ);  // flash is read-only through the cache
  host.model = bytes;
  host.model_len = len;
  return bytes;
}

void UnmapModel() {
  if (host.model != nullptr) munmap(const_cast<uint8_t*>(host.model), host.model_len);
  host.model = nullptr;
  host.model_len = 0;
}

// The boot model's file: beside the partition file, as the Python virtual board keeps it.
std::string BootModelPath() { return host.partition + ".boot-model"; }

bool SaveBootModel(const BootModel& model) {
  const std::string path = BootModelPath(), tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  char arena[16] = "auto";
  if (model.arena != 0) {
    snprintf(arena, sizeof(arena), "%lu", static_cast<unsigned long>(model.arena));
  }
  const bool ok =
      fprintf(f, "tinyhil-boot-model 1 %s %s %lu %08lx %s %s\n",
              model.loading ? "loading" : "ready", model.id, static_cast<unsigned long>(model.len),
              static_cast<unsigned long>(model.crc), arena, model.ram ? "ram" : "flash") > 0;
  // fsync: written through to the disk, as NVS commits before a power cut
  const bool written = fflush(f) == 0 && fsync(fileno(f)) == 0;
  fclose(f);
  return ok && written && rename(tmp.c_str(), path.c_str()) == 0;  // whole, or not at all
}

bool LoadBootModel(BootModel* model) {
  FILE* f = fopen(BootModelPath().c_str(), "r");
  if (f == nullptr) return false;
  char state[16] = {}, arena[16] = {}, place[16] = {};
  unsigned long len = 0, crc = 0;
  *model = {};
  const int n = fscanf(f, "tinyhil-boot-model 1 %15s %31s %lu %lx %15s %15s", state, model->id,
                       &len, &crc, arena, place);
  fclose(f);
  char* end = nullptr;
  const unsigned long arena_bytes = strcmp(arena, "auto") == 0 ? 0 : strtoul(arena, &end, 10);
  if (n != 6 || (arena_bytes == 0 && strcmp(arena, "auto") != 0) ||
      (end != nullptr && *end != '\0') ||
      (strcmp(state, "ready") != 0 && strcmp(state, "loading") != 0) ||
      (strcmp(place, "flash") != 0 && strcmp(place, "ram") != 0)) {
    return false;  // not a file this board wrote
  }
  model->len = static_cast<uint32_t>(len);
  model->crc = static_cast<uint32_t>(crc);
  model->arena = static_cast<uint32_t>(arena_bytes);
  model->ram = strcmp(place, "ram") == 0;
  model->loading = strcmp(state, "loading") == 0;
  return true;
}

void ForgetBootModel() { unlink(BootModelPath().c_str()); }

void Restart() {
  fflush(stdout);
  fflush(stderr);
  ExecAgain("sw");
  _exit(4);
}

void Identify(Identity* id) {
  id->fw_version = "0.1.0";
  snprintf(id->elf_sha256, sizeof(id->elf_sha256), "%s", host.sha256.c_str());
  id->idf_version = "none";
  id->chip = host.chip.c_str();
  memcpy(id->mac, host.mac, sizeof(host.mac));
  id->flash_bytes = 4u << 20;
  id->flash_mode = "none";
  id->psram_bytes = 0;
  id->reset_reason = host.reset_reason.c_str();
}

void PrintExtraInfo() {
  printf("m-info-simulated-1\n");
  printf("m-info-host-build-linux-%ubit\n", static_cast<unsigned>(sizeof(void*) * 8));
}

}  // namespace board
}  // namespace tinyhil

// esp-tflite-micro's ESP-NN kernels time themselves with ESP-IDF's esp_timer (include/esp_timer.h).
extern "C" int64_t esp_timer_get_time(void) { return tinyhil::board::MicrosSinceBoot(); }

int main(int argc, char** argv) {
  using namespace tinyhil::board;
  host.boot_ns = NowNs();
  ParseArgs(argc, argv);
  OpenConsole();
  PreparePanic();
  static cookie_io_functions_t io = {nullptr, ConsoleWrite, nullptr, nullptr};
  FILE* console = fopencookie(nullptr, "w", io);
  setvbuf(console, nullptr, _IOLBF, 4096);
  stdout = console;
  stderr = console;
  tinyhil::Serve();
}
