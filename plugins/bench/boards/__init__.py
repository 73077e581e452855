"""The boards: the virtual boards (Python, and the firmware's host build) and labgrid places."""
