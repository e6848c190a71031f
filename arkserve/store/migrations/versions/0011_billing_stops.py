"""billing stops: when a deleted replica stopped, so the meter bills its run to that instant (issue 15)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_stops',
    sa.Column('replica_id', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('stopped_at', sa.Float(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('instance_type', sa.String(length=64), nullable=False),
    sa.Column('billing', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('replica_id', 'started_at')
    )


def downgrade() -> None:
    op.drop_table('billing_stops')
