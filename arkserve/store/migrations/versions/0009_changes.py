"""change feed: service_changes (per-service versions) for work that follows change (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_changes',
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_id')
    )
    op.create_index(op.f('ix_service_changes_seq'), 'service_changes', ['seq'], unique=False)
    versions = sa.table('versions', sa.column('name', sa.String(32)), sa.column('value', sa.BigInteger()))
    op.bulk_insert(versions, [{'name': 'changes', 'value': 1}, {'name': 'keys', 'value': 1},
                              {'name': 'removals', 'value': 1}])


def downgrade() -> None:
    op.execute("DELETE FROM versions WHERE name IN ('changes', 'keys', 'removals')")
    op.drop_index(op.f('ix_service_changes_seq'), table_name='service_changes')
    op.drop_table('service_changes')
