"""The bench: the link to a board, measurement, and the boards themselves (virtual, labgrid)."""
