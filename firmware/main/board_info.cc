#include "board_info.h"

#include <cstdio>

#include "esp_app_desc.h"
#include "esp_flash.h"
#include "esp_heap_caps.h"
#include "esp_idf_version.h"
#include "esp_mac.h"
#include "esp_rom_sys.h"
#include "esp_system.h"
#include "memory_caps.h"
#include "sdkconfig.h"
#include "tinyhil_core.h"
#if CONFIG_SPIRAM
#include "esp_psram.h"
#endif

namespace tinyhil {
namespace {

constexpr esp_partition_subtype_t kModelSubtype = static_cast<esp_partition_subtype_t>(0x40);

const char* ResetReason() {
  switch (esp_reset_reason()) {
    case ESP_RST_POWERON: return "poweron";
    case ESP_RST_EXT: return "ext";
    case ESP_RST_SW: return "sw";
    case ESP_RST_PANIC: return "panic";
    case ESP_RST_INT_WDT: return "int-wdt";
    case ESP_RST_TASK_WDT: return "task-wdt";
    case ESP_RST_WDT: return "wdt";
    case ESP_RST_DEEPSLEEP: return "deepsleep";
    case ESP_RST_BROWNOUT: return "brownout";
    case ESP_RST_SDIO: return "sdio";
    default: return "unknown";
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

const esp_partition_t* ModelPartition() {
  return esp_partition_find_first(ESP_PARTITION_TYPE_DATA, kModelSubtype, "model");
}

void PrintInfo() {
  char sha[65] = {};
  esp_app_get_elf_sha256(sha, sizeof(sha));
  uint32_t flash_bytes = 0;
  esp_flash_get_size(nullptr, &flash_bytes);
  size_t psram_bytes = 0;
#if CONFIG_SPIRAM
  psram_bytes = esp_psram_get_size();
#endif
  const esp_partition_t* part = ModelPartition();
  printf("m-info-fw-%s\n", esp_app_get_description()->version);
  printf("m-info-fw-sha256-%s\n", sha);
  printf("m-info-idf-%s\n", esp_get_idf_version());
  printf("m-info-tflm-esp-tflite-micro %s\n", TINYHIL_ESP_TFLITE_MICRO_VERSION);
  printf("m-info-esp-nn-%d\n", TINYHIL_ESP_NN);
  printf("m-info-chip-%s\n", CONFIG_IDF_TARGET);
  uint8_t mac[6] = {};
  esp_efuse_mac_get_default(mac);  // the factory MAC in eFuse: names this board in the CSV
  printf("m-info-mac-%02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  printf("m-info-cpu-mhz-%u\n", static_cast<unsigned>(esp_rom_get_cpu_ticks_per_us()));
  printf("m-info-flash-bytes-%lu\n", static_cast<unsigned long>(flash_bytes));
  printf("m-info-flash-mode-%s\n", FlashMode());
  printf("m-info-psram-bytes-%u\n", static_cast<unsigned>(psram_bytes));
  printf("m-info-heap-free-%u\n", static_cast<unsigned>(heap_caps_get_free_size(kInternal8Bit)));
  printf("m-info-heap-largest-%u\n", static_cast<unsigned>(heap_caps_get_largest_free_block(kInternal8Bit)));
  printf("m-info-reset-reason-%s\n", ResetReason());
  printf("m-info-marker-gpio-%d\n", CONFIG_TINYHIL_MARKER_GPIO);
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  printf("m-info-marker-mode-timestamp\n");
#else
  printf("m-info-marker-mode-window\n");
#endif
  printf("m-info-model-partition-bytes-%lu\n", part ? static_cast<unsigned long>(part->size) : 0UL);
}

void PrintBootBanner() {
  printf("m-boot-tinyhil\n");
  printf("m-protocol-%d\n", kProtocolVersion);
  PrintInfo();
  // EEMBC's lines: which timestamp mode the firmware is in, and that it is initialised.
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  printf("m-timestamp-mode-energy\n");
#else
  printf("m-timestamp-mode-performance\n");
#endif
  printf("m-init-done\n");
  printf("m-ready\n");
  fflush(stdout);
}

}  // namespace tinyhil
