"""The link to a board: the protocol, reading replies, the device client, the serial link, the EEMBC host and db buffer, model delivery."""
