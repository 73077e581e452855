// The board's identity and memory figures, printed in the boot banner and by info%.
#ifndef TINYHIL_BOARD_INFO_H_
#define TINYHIL_BOARD_INFO_H_

#include "esp_partition.h"

namespace tinyhil {

// The "model" data partition (subtype 0x40) of partitions.csv, or nullptr.
const esp_partition_t* ModelPartition();

// m-info-<key>-<value> lines (PROTOCOL.md, "Boot").
void PrintInfo();

// m-boot-tinyhil, m-protocol-1, the info lines and m-ready.
void PrintBootBanner();

}  // namespace tinyhil

#endif  // TINYHIL_BOARD_INFO_H_
