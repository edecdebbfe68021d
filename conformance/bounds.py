"""Every wait the kit makes, in seconds, in one place.

A target that needs longer than these is reported as failing the contract under test,
with the bound in the message; nothing the kit does waits without one.
"""

# A handler instance reports setup/handle/finish within this after its client is done.
HANDLER_REPORT = 5.0
# After a half-close, the client must read EOF within this.
EOF = 5.0
# After finish(), a handler's own thread or forked process must have ended within this.
HANDLER_EXIT = 3.0
# A datagram's reply must arrive within this.
DATAGRAM_REPLY = 3.0
# Echoing a burst of clients: a fixed allowance plus a per-MiB one.
ECHO_BASE = 10.0
ECHO_PER_MIB = 5.0
# How long the stalled client stays silent: "a second or more".
STALL = 1.2
# While one client stalls, the others must be fully served within this.
OTHERS_SERVED = 5.0


def echo_timeout(total_bytes: int) -> float:
    """The bound on echoing ``total_bytes`` across all clients of one example."""
    return ECHO_BASE + ECHO_PER_MIB * total_bytes / (1 << 20)
