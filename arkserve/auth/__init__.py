"""Authentication: request signing (signing.py), and later keys, passwords and permissions."""
