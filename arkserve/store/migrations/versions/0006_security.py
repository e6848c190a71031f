"""security: login throttling and other hardening (issue 11)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: tables of login throttling and other hardening (issue 11) land here


def downgrade() -> None:
    pass
