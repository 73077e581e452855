// The board layer: everything the firmware needs from the chip and its SDK.
//
// The command loop (main.cc), the board report (board_info.cc) and the model runner
// call only these functions, so the same code runs on two boards:
//   - board_esp32.cc: ESP-IDF on the ESP32 (UART0 console, the `model` flash partition,
//     the CPU cycle counter, the marker GPIO, the 8-bit internal heap, the boot model in NVS);
//   - firmware/host/board_host.cc: a Linux process (console on a pseudo-terminal, the
//     partition as a file, a monotonic clock counted at the board's MHz, the marker as
//     timestamped events in a file, a heap with the board profile's budget, the boot model
//     in a file beside the partition file).
#ifndef TINYHIL_BOARD_H_
#define TINYHIL_BOARD_H_

#include <cstddef>
#include <cstdint>

namespace tinyhil {
namespace board {

// Start-up: console at CONFIG_TINYHIL_UART_BAUD, marker at its idle level.
void Init(int marker_idle_level);

// Console input: waits up to `timeout_ms` for the first byte (forever when negative),
// then takes what is there, at most `len`; returns how many bytes arrived.
size_t ConsoleRead(uint8_t* dst, size_t len, int timeout_ms);
// Bytes the console's receive buffer holds while the firmware is busy: what the host may
// send ahead of the firmware's answers (classify%) without flow control.
size_t ConsoleRxBufferBytes();

// The heap that models, arenas and payloads come from (on the ESP32: 8-bit-capable
// internal RAM, the heap the host budgets with).
void* Alloc(size_t bytes, size_t alignment);
void Free(void* p);
size_t HeapFree();
size_t HeapLargest();

// The heap a model's arena and its RAM copy come from: the one above, or PSRAM on a board
// whose build says so (CONFIG_TINYHIL_ARENA_IN_PSRAM, CONFIG_TINYHIL_MODEL_COPY_IN_PSRAM).
// Free() frees either.
enum class Use { kArena, kModelCopy };
void* AllocFor(Use use, size_t bytes, size_t alignment);
size_t LargestFor(Use use);

// Time: the CPU cycle counter (wraps), its rate, microseconds since boot.
uint32_t Cycles();
unsigned CpuMhz();
int64_t MicrosSinceBoot();
void BusyWaitUs(uint32_t us);
void IdleMs(uint32_t ms);

void SetMarker(int level);

// The `model` data partition: its size (0 when there is none), and its first `len`
// bytes readable in place until UnmapModel(); nullptr and the reason in `error`.
size_t ModelPartitionBytes();
const uint8_t* MapModel(size_t len, char* error, size_t error_len);
void UnmapModel();

// The `windows` data partition (test windows the host writes once a session): its size (0
// when there is none), and `len` bytes from `offset` into `dst`; false with the reason in
// `error`.
size_t WindowsPartitionBytes();
bool ReadWindows(size_t offset, uint8_t* dst, size_t len, char* error, size_t error_len);

[[noreturn]] void Restart();

// The model the firmware loads at boot (PROTOCOL.md, "Boot"): the last one loaded from the
// model partition, as the `model` command took it, with its model id. Kept across resets and
// power cycles (on the ESP32 in NVS, on the host build in a file beside the partition file).
struct BootModel {
  uint32_t len;
  uint32_t crc;
  uint32_t arena;  // bytes; 0 for auto
  bool ram;        // placement: copied into RAM, or used in place in flash
  bool loading;    // set while the boot loads it: still set at the next boot, the load crashed
  char id[32];     // the model id, NUL-terminated
};
// False when it cannot be kept; Load: false when none is kept (or it cannot be read).
bool SaveBootModel(const BootModel& model);
bool LoadBootModel(BootModel* model);
void ForgetBootModel();

// What the boot banner says about the board (PROTOCOL.md, "Boot").
struct Identity {
  const char* fw_version;
  char elf_sha256[65];
  const char* idf_version;
  const char* chip;
  uint8_t mac[6];
  uint32_t flash_bytes;
  const char* flash_mode;
  size_t psram_bytes;
  const char* reset_reason;
};
void Identify(Identity* id);
// Lines of m-info-… only this board has (the host build: simulated, host-build).
void PrintExtraInfo();

}  // namespace board
}  // namespace tinyhil

#endif  // TINYHIL_BOARD_H_
