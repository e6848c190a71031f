"""Asynchronous inference beyond the gateway: the store-backed queue the gateway is given (``intake.py``), the
dispatcher part that sends stored requests and keeps their results (``dispatcher.py``, ``delivery.py``), callbacks
(``callbacks.py``) and body files (``files.py``). See docs/async.md."""
