// The board layer on the ESP32, through ESP-IDF (board.h).
#include <cstdio>

#include "board.h"
#include "driver/gpio.h"
#include "driver/uart.h"
#include "esp_app_desc.h"
#include "esp_cpu.h"
#include "esp_flash.h"
#include "esp_heap_caps.h"
#include "esp_idf_version.h"
#include "esp_mac.h"
#include "esp_partition.h"
#include "esp_rom_sys.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#if CONFIG_SPIRAM
#include "esp_psram.h"
#endif

namespace tinyhil {

void Serve();  // main.cc: the command loop

namespace board {
namespace {

constexpr uart_port_t kUart = UART_NUM_0;
constexpr gpio_num_t kMarker = static_cast<gpio_num_t>(CONFIG_TINYHIL_MARKER_GPIO);
// The marker drives a meter input: it must be a pin this chip can drive, and not one of
// the SPI flash pins (GPIO 6-11 on the ESP32's modules), which would stop the firmware.
static_assert(
    GPIO_IS_VALID_OUTPUT_GPIO(CONFIG_TINYHIL_MARKER_GPIO),
    "CONFIG_TINYHIL_MARKER_GPIO is not an output-capable GPIO of this chip (menuconfig: tinyhil)");
#if CONFIG_IDF_TARGET_ESP32
static_assert(CONFIG_TINYHIL_MARKER_GPIO < 6 || CONFIG_TINYHIL_MARKER_GPIO > 11,
              "CONFIG_TINYHIL_MARKER_GPIO: GPIO 6-11 carry the SPI flash on ESP32 modules");
#endif
// Model copies, arenas and payloads come from 8-bit-addressable internal RAM, and the
// heap-free / heap-largest figures the host budgets with must describe that same heap.
constexpr uint32_t kInternal8Bit = MALLOC_CAP_8BIT | MALLOC_CAP_INTERNAL;
// The arena and the model's RAM copy: internal RAM, or the module's PSRAM when the build
// puts them there (menuconfig -> tinyhil; the boot banner's arena-heap and model-copy-heap).
constexpr uint32_t kPsram8Bit = MALLOC_CAP_8BIT | MALLOC_CAP_SPIRAM;
#if CONFIG_TINYHIL_ARENA_IN_PSRAM
constexpr uint32_t kArenaCaps = kPsram8Bit;
#else
constexpr uint32_t kArenaCaps = kInternal8Bit;
#endif
#if CONFIG_TINYHIL_MODEL_COPY_IN_PSRAM
constexpr uint32_t kModelCopyCaps = kPsram8Bit;
#else
constexpr uint32_t kModelCopyCaps = kInternal8Bit;
#endif

uint32_t CapsFor(Use use) { return use == Use::kArena ? kArenaCaps : kModelCopyCaps; }
const char* HeapName(uint32_t caps) { return caps == kPsram8Bit ? "psram" : "internal"; }
constexpr esp_partition_subtype_t kModelSubtype = static_cast<esp_partition_subtype_t>(0x40);
constexpr esp_partition_subtype_t kWindowsSubtype = static_cast<esp_partition_subtype_t>(0x41);
// The UART driver's receive buffer: a whole db chunk fits while the firmware is busy.
constexpr int kRxBufferBytes = 16384;

esp_partition_mmap_handle_t g_map = 0;
bool g_mapped = false;
bool g_nvs = false;  // the nvs partition is initialised: the boot model can be kept

// The boot model in NVS: one blob, namespace "tinyhil", key "boot-model". The version
// changes with the layout; a blob of another version or size reads as none.
constexpr const char* kNvsNamespace = "tinyhil";
constexpr const char* kNvsKey = "boot-model";
constexpr uint32_t kBootModelVersion = 1;
struct StoredBootModel {
  uint32_t version;
  BootModel model;
};

// The NVS handle for the boot model, or false (NVS not initialised, or the namespace cannot
// be opened: read-only and no key written yet).
bool OpenNvs(nvs_open_mode_t mode, nvs_handle_t* handle) {
  return g_nvs && nvs_open(kNvsNamespace, mode, handle) == ESP_OK;
}

const esp_partition_t* Partition() {
  return esp_partition_find_first(ESP_PARTITION_TYPE_DATA, kModelSubtype, "model");
}

const char* ResetReason() {
  switch (esp_reset_reason()) {
    case ESP_RST_POWERON:
      return "poweron";
    case ESP_RST_EXT:
      return "ext";
    case ESP_RST_SW:
      return "sw";
    case ESP_RST_PANIC:
      return "panic";
    case ESP_RST_INT_WDT:
      return "int-wdt";
    case ESP_RST_TASK_WDT:
      return "task-wdt";
    case ESP_RST_WDT:
      return "wdt";
    case ESP_RST_DEEPSLEEP:
      return "deepsleep";
    case ESP_RST_BROWNOUT:
      return "brownout";
    case ESP_RST_SDIO:
      return "sdio";
    default:
      return "unknown";
  }
}

const char* FlashMode() {
#if CONFIG_ESPTOOLPY_FLASHMODE_QIO
  return "qio";
#elif CONFIG_ESPTOOLPY_FLASHMODE_QOUT
  return "qout";
#elif CONFIG_ESPTOOLPY_FLASHMODE_DIO
  return "dio";
#elif CONFIG_ESPTOOLPY_FLASHMODE_DOUT
  return "dout";
#else
  return "unknown";
#endif
}

}  // namespace

void Init(int marker_idle_level) {
  gpio_reset_pin(kMarker);
  gpio_set_direction(kMarker, GPIO_MODE_OUTPUT);
  gpio_set_level(kMarker, marker_idle_level);
  uart_config_t config = {};
  config.baud_rate = CONFIG_TINYHIL_UART_BAUD;
  config.data_bits = UART_DATA_8_BITS;
  config.parity = UART_PARITY_DISABLE;
  config.stop_bits = UART_STOP_BITS_1;
  config.flow_ctrl = UART_HW_FLOWCTRL_DISABLE;
  config.source_clk = UART_SCLK_DEFAULT;
  ESP_ERROR_CHECK(uart_driver_install(kUart, kRxBufferBytes, 0, 0, nullptr, 0));
  ESP_ERROR_CHECK(uart_param_config(kUart, &config));
  // NVS keeps the boot model. A partition from another NVS version, or full, is erased once;
  // without NVS the firmware runs, but forgets its model at every reset.
  esp_err_t err = nvs_flash_init();
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    if (nvs_flash_erase() == ESP_OK) err = nvs_flash_init();
  }
  g_nvs = err == ESP_OK;
}

size_t ConsoleRead(uint8_t* dst, size_t len, int timeout_ms) {
  const TickType_t ticks = timeout_ms < 0 ? portMAX_DELAY : pdMS_TO_TICKS(timeout_ms);
  const int n = uart_read_bytes(kUart, dst, len, ticks);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

size_t ConsoleRxBufferBytes() { return kRxBufferBytes; }

void* Alloc(size_t bytes, size_t alignment) {
  return alignment > 1 ? heap_caps_aligned_alloc(alignment, bytes, kInternal8Bit)
                       : heap_caps_malloc(bytes, kInternal8Bit);
}

void* AllocFor(Use use, size_t bytes, size_t alignment) {
  const uint32_t caps = CapsFor(use);
  return alignment > 1 ? heap_caps_aligned_alloc(alignment, bytes, caps)
                       : heap_caps_malloc(bytes, caps);
}

size_t LargestFor(Use use) { return heap_caps_get_largest_free_block(CapsFor(use)); }

void Free(void* p) { heap_caps_free(p); }
size_t HeapFree() { return heap_caps_get_free_size(kInternal8Bit); }
size_t HeapLargest() { return heap_caps_get_largest_free_block(kInternal8Bit); }

uint32_t Cycles() { return esp_cpu_get_cycle_count(); }
unsigned CpuMhz() { return esp_rom_get_cpu_ticks_per_us(); }
int64_t MicrosSinceBoot() { return esp_timer_get_time(); }
void BusyWaitUs(uint32_t us) { esp_rom_delay_us(us); }
void IdleMs(uint32_t ms) { vTaskDelay(pdMS_TO_TICKS(ms)); }

void SetMarker(int level) { gpio_set_level(kMarker, level); }

size_t ModelPartitionBytes() {
  const esp_partition_t* part = Partition();
  return part ? part->size : 0;
}

const uint8_t* MapModel(size_t len, char* error, size_t error_len) {
  UnmapModel();
  const esp_partition_t* part = Partition();
  if (part == nullptr || len > part->size) {
    snprintf(error, error_len, "model: %lu bytes > partition %lu", static_cast<unsigned long>(len),
             part ? static_cast<unsigned long>(part->size) : 0UL);
    return nullptr;
  }
  const void* ptr = nullptr;
  if (esp_partition_mmap(part, 0, len, ESP_PARTITION_MMAP_DATA, &ptr, &g_map) != ESP_OK) {
    snprintf(error, error_len, "model: cannot map the model partition");
    return nullptr;
  }
  g_mapped = true;
  return static_cast<const uint8_t*>(ptr);
}

size_t WindowsPartitionBytes() {
  const esp_partition_t* part =
      esp_partition_find_first(ESP_PARTITION_TYPE_DATA, kWindowsSubtype, "windows");
  return part ? part->size : 0;
}

bool ReadWindows(size_t offset, uint8_t* dst, size_t len, char* error, size_t error_len) {
  const esp_partition_t* part =
      esp_partition_find_first(ESP_PARTITION_TYPE_DATA, kWindowsSubtype, "windows");
  if (part == nullptr) {
    snprintf(error, error_len, "windows: the partition table has no windows partition");
    return false;
  }
  if (offset > part->size || len > part->size - offset) {
    snprintf(error, error_len, "windows: bytes %lu..%lu are past the partition's %lu",
             static_cast<unsigned long>(offset), static_cast<unsigned long>(offset + len),
             static_cast<unsigned long>(part->size));
    return false;
  }
  const esp_err_t err = esp_partition_read(part, offset, dst, len);
  if (err != ESP_OK) {
    snprintf(error, error_len, "windows: flash read failed (%s)", esp_err_to_name(err));
    return false;
  }
  return true;
}

void UnmapModel() {
  if (g_mapped) esp_partition_munmap(g_map);
  g_mapped = false;
}

void Restart() {
  vTaskDelay(pdMS_TO_TICKS(50));  // let the console send m-ready
  esp_restart();
}

bool SaveBootModel(const BootModel& model) {
  nvs_handle_t handle;
  if (!OpenNvs(NVS_READWRITE, &handle)) return false;
  const StoredBootModel stored = {kBootModelVersion, model};
  const bool ok = nvs_set_blob(handle, kNvsKey, &stored, sizeof(stored)) == ESP_OK &&
                  nvs_commit(handle) == ESP_OK;
  nvs_close(handle);
  return ok;
}

bool LoadBootModel(BootModel* model) {
  nvs_handle_t handle;
  if (!OpenNvs(NVS_READONLY, &handle)) return false;
  StoredBootModel stored = {};
  size_t len = sizeof(stored);
  const bool ok = nvs_get_blob(handle, kNvsKey, &stored, &len) == ESP_OK && len == sizeof(stored) &&
                  stored.version == kBootModelVersion;
  nvs_close(handle);
  if (!ok) return false;
  *model = stored.model;
  model->id[sizeof(model->id) - 1] = '\0';
  return true;
}

void ForgetBootModel() {
  nvs_handle_t handle;
  if (!OpenNvs(NVS_READWRITE, &handle)) return;
  if (nvs_erase_key(handle, kNvsKey) == ESP_OK) nvs_commit(handle);
  nvs_close(handle);
}

void Identify(Identity* id) {
  id->fw_version = esp_app_get_description()->version;
  esp_app_get_elf_sha256(id->elf_sha256, sizeof(id->elf_sha256));
  id->idf_version = esp_get_idf_version();
  id->chip = CONFIG_IDF_TARGET;
  esp_efuse_mac_get_default(id->mac);  // the factory MAC in eFuse: names this board in the CSV
  id->flash_bytes = 0;
  esp_flash_get_size(nullptr, &id->flash_bytes);
  id->flash_mode = FlashMode();
  id->psram_bytes = 0;
#if CONFIG_SPIRAM
  id->psram_bytes = esp_psram_get_size();
#endif
  id->reset_reason = ResetReason();
}

void PrintExtraInfo() {
  // Where the arena and a model's RAM copy are allocated (menuconfig -> tinyhil).
  printf("m-info-arena-heap-%s\n", HeapName(kArenaCaps));
  printf("m-info-model-copy-heap-%s\n", HeapName(kModelCopyCaps));
#if CONFIG_SPIRAM
  printf("m-info-psram-heap-free-%u\n", static_cast<unsigned>(heap_caps_get_free_size(kPsram8Bit)));
  printf("m-info-psram-heap-largest-%u\n",
         static_cast<unsigned>(heap_caps_get_largest_free_block(kPsram8Bit)));
#endif
}

}  // namespace board
}  // namespace tinyhil

extern "C" void app_main(void) { tinyhil::Serve(); }
