#include "board_info.h"

#include <cstdio>

#include "board.h"
#include "sdkconfig.h"
#include "tinyhil_core.h"

namespace tinyhil {

void PrintInfo() {
  board::Identity id = {};
  board::Identify(&id);
  printf("m-info-fw-%s\n", id.fw_version);
  printf("m-info-fw-sha256-%s\n", id.elf_sha256);
  printf("m-info-idf-%s\n", id.idf_version);
  printf("m-info-tflm-esp-tflite-micro %s\n", TINYHIL_ESP_TFLITE_MICRO_VERSION);
  printf("m-info-esp-nn-%d\n", TINYHIL_ESP_NN);
  printf("m-info-kernels-%s\n", TINYHIL_ESP_NN ? "esp-nn" : "reference");
  printf("m-info-chip-%s\n", id.chip);
  printf("m-info-mac-%02x:%02x:%02x:%02x:%02x:%02x\n", id.mac[0], id.mac[1], id.mac[2], id.mac[3],
         id.mac[4], id.mac[5]);
  printf("m-info-cpu-mhz-%u\n", board::CpuMhz());
  // TFLM's arena needs depend on it: its bookkeeping holds pointers (4 bytes on the ESP32).
  printf("m-info-pointer-bits-%u\n", static_cast<unsigned>(sizeof(void*) * 8));
  printf("m-info-flash-bytes-%lu\n", static_cast<unsigned long>(id.flash_bytes));
  printf("m-info-flash-mode-%s\n", id.flash_mode);
  printf("m-info-psram-bytes-%u\n", static_cast<unsigned>(id.psram_bytes));
  printf("m-info-heap-free-%u\n", static_cast<unsigned>(board::HeapFree()));
  printf("m-info-heap-largest-%u\n", static_cast<unsigned>(board::HeapLargest()));
  printf("m-info-reset-reason-%s\n", id.reset_reason);
  printf("m-info-marker-gpio-%d\n", CONFIG_TINYHIL_MARKER_GPIO);
#if CONFIG_TINYHIL_MARKER_EEMBC_TIMESTAMP
  printf("m-info-marker-mode-timestamp\n");
#else
  printf("m-info-marker-mode-window\n");
#endif
  printf("m-info-model-partition-bytes-%lu\n",
         static_cast<unsigned long>(board::ModelPartitionBytes()));
  printf("m-info-windows-partition-bytes-%lu\n",
         static_cast<unsigned long>(board::WindowsPartitionBytes()));
  printf("m-info-rx-buffer-bytes-%u\n", static_cast<unsigned>(board::ConsoleRxBufferBytes()));
  board::PrintExtraInfo();
}

void PrintBootBanner() {
  printf("m-boot-tinyhil\n");
  printf("m-protocol-%d\n", kProtocolVersion);
  PrintInfo();
}

void PrintBootReady() {
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
