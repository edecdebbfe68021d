"""The harness: runs the implementation under test in its own interpreter and reports back.

This package's names below are the whole of what contracts use: servers to start
(``Harness``, ``ServedServer``) with handlers to run in them (``HandlerSpec`` and its
kinds), and what comes back, as small frozen classes (``CallOutcome``, ``StopReport``,
``Construction``, ``ServerState``, ``Processes``, ``HeldSockets``, ``ServerCall``,
``ClassInspection``, ``Hello`` with its ``UserServerClass``es, and each ``Handler``'s
reports), and the ``RequestWatch`` that lets a client's wait end once the server is done
with its requests. Its modules are the harness's own business.
"""

from conformance.harness.handlers import (
    HANDLER_EXCEPTION,
    MARK_ATTRIBUTE,
    DatagramEcho,
    DatagramFile,
    Defaults,
    Echo,
    HandlerSpec,
    Idle,
    Lines,
    UserClass,
    is_datagram_class,
)
from conformance.harness.observations import (
    HANDLER_LIFECYCLE,
    FinishError,
    HandleError,
    Handler,
    HandleReturn,
    RequestView,
    ServerCall,
    SetupReport,
    ShortRead,
    ShortWrite,
    StreamFacts,
)
from conformance.harness.process import (
    AGENT_PATH,
    Harness,
    HarnessError,
    RequestWatch,
    ServedServer,
)
from conformance.harness.replies import (
    CallOutcome,
    ClassInspection,
    Construction,
    HeldSockets,
    Hello,
    Processes,
    ServerState,
    StopReport,
    UserServerClass,
)

__all__ = [
    "AGENT_PATH",
    "HANDLER_EXCEPTION",
    "HANDLER_LIFECYCLE",
    "MARK_ATTRIBUTE",
    "CallOutcome",
    "ClassInspection",
    "Construction",
    "DatagramEcho",
    "DatagramFile",
    "Defaults",
    "Echo",
    "FinishError",
    "HandleError",
    "HandleReturn",
    "Handler",
    "HandlerSpec",
    "Harness",
    "HarnessError",
    "HeldSockets",
    "Hello",
    "Idle",
    "Lines",
    "Processes",
    "RequestView",
    "RequestWatch",
    "ServedServer",
    "ServerCall",
    "ServerState",
    "SetupReport",
    "ShortRead",
    "ShortWrite",
    "StopReport",
    "StreamFacts",
    "UserClass",
    "UserServerClass",
    "is_datagram_class",
]
