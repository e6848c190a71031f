"""Runtime backends: one module per backend behind the small interface in ``base``."""
