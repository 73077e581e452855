// The board's identity and memory figures, printed in the boot banner and by info%.
#ifndef TINYHIL_BOARD_INFO_H_
#define TINYHIL_BOARD_INFO_H_

namespace tinyhil {

// m-info-<key>-<value> lines (PROTOCOL.md, "Boot").
void PrintInfo();

// The banner's head: m-boot-tinyhil, m-protocol-1, the info lines.
void PrintBootBanner();
// Its end, after the boot model's line: EEMBC's m-timestamp-mode-…, m-init-done, then m-ready.
void PrintBootReady();

}  // namespace tinyhil

#endif  // TINYHIL_BOARD_INFO_H_
