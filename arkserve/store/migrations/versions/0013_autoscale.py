"""autoscaling: per-service bounds, gateway load reports, wake requests (issue 18)

The policy lives in the service spec (``autoscale``); this adds the gateway workers' load reports (a wake is a
report with queued requests, plus a touch of the service in the change feed).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gateway_load',
    sa.Column('worker', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('inflight', sa.Integer(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('reported_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('worker', 'service')
    )


def downgrade() -> None:
    op.drop_table('gateway_load')
