"""The control-plane REST API (``/api/v1``): owns desired state, never talks to a runtime."""
