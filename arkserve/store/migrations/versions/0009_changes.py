"""change feed: per-service versions for work that follows change (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved placeholder: filled by the helper that owns this area


def downgrade() -> None:
    pass
