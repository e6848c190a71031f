"""list indexes: a user's service pages by (owner_id, name) and the status filter (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:10:00
"""
from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_services_owner_name', 'services', ['owner_id', 'name'], unique=False)
    op.create_index('ix_services_status', 'services', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_services_status', table_name='services')
    op.drop_index('ix_services_owner_name', table_name='services')
