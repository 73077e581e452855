"""The link to a board: framing, the serial link, the device client, the EEMBC host, model delivery."""
