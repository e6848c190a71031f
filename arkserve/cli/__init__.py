"""The ``arkserve`` command: ``arkserve <noun> <verb>``, plus the server commands (up, api, gateway, reconciler)."""
