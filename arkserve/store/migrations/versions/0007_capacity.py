"""capacity: hosts, GPU placement (issue 15)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hosts',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('cpus', sa.Float(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.JSON(), nullable=False),
    sa.Column('runtime', sa.String(length=32), nullable=False),
    sa.Column('gpu_error', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('instance_types') as batch:
        batch.add_column(sa.Column('gpu_fraction', sa.Float(), nullable=False, server_default='0'))
    with op.batch_alter_table('replicas') as batch:
        batch.add_column(sa.Column('node', sa.String(length=255), nullable=False, server_default=''))
        batch.add_column(sa.Column('instance_type', sa.String(length=64), nullable=False, server_default=''))
        batch.add_column(sa.Column('gpu_indices', sa.String(length=64), nullable=False, server_default=''))
        batch.add_column(sa.Column('gpu_share_mb', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('billing', sa.String(length=16), nullable=False, server_default='payg'))


def downgrade() -> None:
    with op.batch_alter_table('replicas') as batch:
        for column in ('billing', 'gpu_share_mb', 'gpu_indices', 'instance_type', 'node'):
            batch.drop_column(column)
    with op.batch_alter_table('instance_types') as batch:
        batch.drop_column('gpu_fraction')
    op.drop_table('hosts')
