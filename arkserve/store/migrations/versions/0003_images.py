"""images: the platform registry's repositories (issue 13)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image_repositories',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_index(op.f('ix_image_repositories_owner_id'), 'image_repositories', ['owner_id'], unique=False)
    op.create_table('image_quotas',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('quota_bytes', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    with op.batch_alter_table('replicas') as batch:
        batch.add_column(sa.Column('image_digest', sa.String(length=80), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('replicas') as batch:
        batch.drop_column('image_digest')
    op.drop_table('image_quotas')
    op.drop_index(op.f('ix_image_repositories_owner_id'), table_name='image_repositories')
    op.drop_table('image_repositories')
