"""billing: ledger, metering, balances, prepaid, quotas (issue 15)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('time', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('instance_type', sa.String(length=64), nullable=False),
    sa.Column('replica', sa.String(length=16), nullable=False),
    sa.Column('billing', sa.String(length=16), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Float(), nullable=True),
    sa.Column('period_end', sa.Float(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_billing_ledger_user_time', 'billing_ledger', ['user_id', 'time'], unique=False)
    op.create_table('billing_runs',
    sa.Column('replica_id', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('billing', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('instance_type', sa.String(length=64), nullable=False),
    sa.Column('price_micro_per_hour', sa.BigInteger(), nullable=False),
    sa.Column('from_at', sa.Float(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('ended', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('replica_id', 'started_at', 'billing')
    )
    op.create_index(op.f('ix_billing_runs_user_id'), 'billing_runs', ['user_id'], unique=False)
    op.create_table('prepaid_instances',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('instance_type', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('starts_at', sa.Float(), nullable=False),
    sa.Column('ends_at', sa.Float(), nullable=False),
    sa.Column('auto_renew', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('price_micro', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_prepaid_instances_user_id'), 'prepaid_instances', ['user_id'], unique=False)
    op.create_table('billing_accounts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('max_replicas', sa.Integer(), nullable=True),
    sa.Column('max_gpus', sa.Integer(), nullable=True),
    sa.Column('max_prepaid', sa.Integer(), nullable=True),
    sa.Column('low_since', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    # the meter's lock row: each pass (and each purchase) moves it first, so passes of several reconcilers
    # (PostgreSQL) run one after the other and never bill the same seconds twice
    versions = sa.table('versions', sa.column('name', sa.String(32)), sa.column('value', sa.BigInteger()))
    op.bulk_insert(versions, [{'name': 'billing', 'value': 1}])


def downgrade() -> None:
    op.execute("DELETE FROM versions WHERE name = 'billing'")
    op.drop_table('billing_accounts')
    op.drop_index(op.f('ix_prepaid_instances_user_id'), table_name='prepaid_instances')
    op.drop_table('prepaid_instances')
    op.drop_index(op.f('ix_billing_runs_user_id'), table_name='billing_runs')
    op.drop_table('billing_runs')
    op.drop_index('ix_billing_ledger_user_time', table_name='billing_ledger')
    op.drop_table('billing_ledger')
