// The board's identity and memory figures, printed in the boot banner and by info%.
#ifndef TINYHIL_BOARD_INFO_H_
#define TINYHIL_BOARD_INFO_H_

namespace tinyhil {

// m-info-<key>-<value> lines (PROTOCOL.md, "Boot").
void PrintInfo();

// m-boot-tinyhil, m-protocol-1, the info lines and m-ready.
void PrintBootBanner();

}  // namespace tinyhil

#endif  // TINYHIL_BOARD_INFO_H_
