"""disk: the network disk (issue 14)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: tables of the network disk (issue 14) land here


def downgrade() -> None:
    pass
