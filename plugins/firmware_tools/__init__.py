"""The firmware's contract as the host reads it (commands, ops, Kconfig) and its build tools (host build, ESP-IDF check).

Read by both the bench and the host verdict; none of it talks to a board.
"""
