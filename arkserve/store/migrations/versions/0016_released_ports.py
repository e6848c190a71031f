"""released gateway ports: a deleted service's port is reused last, not next

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('released_ports',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('port')
    )


def downgrade() -> None:
    op.drop_table('released_ports')
