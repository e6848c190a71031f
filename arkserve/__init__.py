"""arkserve: self-hosted AI inference services.

The package is layered (see docs/architecture.md): pure cores (``auth.signing``,
``domain``) under I/O shells (``store``, ``runtimes``), and three processes that
meet only in the store (``api``, ``gateway``, ``reconciler``).
"""

__version__ = "0.1.0"
