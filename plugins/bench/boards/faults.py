"""Failures the Python virtual board can inject (``--virtual-fault``); light: read by the option table."""

FAULTS = ("none", "panic-on-infer", "garbage-on-infer", "hang-on-infer")
