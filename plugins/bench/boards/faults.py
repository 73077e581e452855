"""Failures the Python virtual board can inject (``--virtual-fault``); light: read by the option table."""

FAULTS = ("none", "panic-on-infer", "garbage-on-infer", "hang-on-infer", "wrong-class-2pct")

# wrong-class-2pct: a kernel that computes something else on some inputs. Which windows is
# fixed by their bytes (CRC-32 modulo 50 == 0: 2 %), so a window answers the same every time
# and the host's seeded order alone decides which of them a run meets.
WRONG_CLASS_MODULUS = 50
