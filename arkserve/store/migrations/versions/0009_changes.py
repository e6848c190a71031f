"""change feed: per-service versions for work that follows change (issue 16)

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
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_seq', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_index('ix_services_change_seq', ['change_seq'], unique=False)
    versions = sa.table('versions', sa.column('name', sa.String(32)), sa.column('value', sa.BigInteger()))
    op.bulk_insert(versions, [{'name': 'changes', 'value': 1}, {'name': 'keys', 'value': 1},
                              {'name': 'removals', 'value': 1}])


def downgrade() -> None:
    op.execute("DELETE FROM versions WHERE name IN ('changes', 'keys', 'removals')")
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index('ix_services_change_seq')
        batch_op.drop_column('change_seq')
