"""models: the model market (issue 14)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: tables of the model market (issue 14) land here


def downgrade() -> None:
    pass
