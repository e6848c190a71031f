"""asynchronous inference: the durable request queue and results (issue 18)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('async_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('access_key', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('body_file', sa.Text(), nullable=True),
    sa.Column('body_size', sa.BigInteger(), nullable=False),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.Float(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('result_status', sa.Integer(), nullable=True),
    sa.Column('result_headers', sa.JSON(), nullable=True),
    sa.Column('result_body', sa.LargeBinary(), nullable=True),
    sa.Column('result_file', sa.Text(), nullable=True),
    sa.Column('result_size', sa.BigInteger(), nullable=True),
    sa.Column('callback_state', sa.String(length=16), nullable=False),
    sa.Column('callback_attempts', sa.Integer(), nullable=False),
    sa.Column('callback_next_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_async_requests_status_next', 'async_requests', ['status', 'next_at'], unique=False)
    op.create_index('ix_async_requests_callback', 'async_requests', ['callback_state', 'callback_next_at'],
                    unique=False)
    op.create_index('ix_async_requests_expires', 'async_requests', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_async_requests_expires', table_name='async_requests')
    op.drop_index('ix_async_requests_callback', table_name='async_requests')
    op.drop_index('ix_async_requests_status_next', table_name='async_requests')
    op.drop_table('async_requests')
