"""canary: a second revision beside the stable one with a traffic weight (issue 18)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('services', sa.Column('canary_spec', sa.JSON(), nullable=True))
    op.add_column('services', sa.Column('canary_weight', sa.Integer(), server_default='0', nullable=False))
    op.add_column('request_log', sa.Column('revision', sa.String(length=16), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('request_log') as batch:
        batch.drop_column('revision')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('canary_weight')
        batch.drop_column('canary_spec')
