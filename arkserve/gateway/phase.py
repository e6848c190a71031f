"""Where an exchange is in its life: two small phases instead of a set of booleans.

The request and the response do not move in one line: a body may still be arriving while the response is already
being relayed (or an error answered), and an error may be committed while the exchange still waits behind another
one on its connection. So there are two phases, each moving only forward (``QUEUED`` goes back to ``ACTIVE`` when
a replica frees up):

``stage`` (the way to a replica): ``PENDING`` behind another exchange of its connection, ``ACTIVE`` at the front and
being placed (a spooled body checked, a connection opening), ``QUEUED`` waiting for a free replica (``Core.enqueue``),
``SENDING`` an upstream connection attached (head written, the body streams).

``resp`` (the answer): ``NO_RESPONSE``, ``STARTED`` (a head was relayed or an error committed: from now on a failure
aborts the connection instead of answering), ``FINISHED`` (recorded; nothing more happens).

Whether the client's body has fully arrived stays the boolean ``Exchange.req_done``: it is independent of both.
Plain ``Final`` ints, not an ``IntEnum``: a comparison costs what a boolean test does, in Python and compiled.
"""

from __future__ import annotations

from typing import Final

PENDING: Final = 0
ACTIVE: Final = 1
QUEUED: Final = 2
SENDING: Final = 3

NO_RESPONSE: Final = 0
STARTED: Final = 1
FINISHED: Final = 2
