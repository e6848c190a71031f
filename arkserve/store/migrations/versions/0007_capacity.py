"""capacity: hosts, GPU placement (issue 15)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved placeholder: filled by the helper that owns this area


def downgrade() -> None:
    pass
