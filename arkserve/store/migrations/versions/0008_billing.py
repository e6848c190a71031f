"""billing: ledger, metering, balances, prepaid, quotas (issue 15)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved placeholder: filled by the helper that owns this area


def downgrade() -> None:
    pass
