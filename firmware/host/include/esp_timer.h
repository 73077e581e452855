// The one ESP-IDF call esp-tflite-micro's ESP-NN kernels make (their per-op timers):
// esp_timer_get_time(), microseconds since boot, from the host board layer (board_host.cc).
#ifndef TINYHIL_HOST_ESP_TIMER_H_
#define TINYHIL_HOST_ESP_TIMER_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int64_t esp_timer_get_time(void);

#ifdef __cplusplus
}
#endif

#endif  // TINYHIL_HOST_ESP_TIMER_H_
