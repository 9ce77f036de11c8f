"""Jobs count their deliveries: a job whose worker dies before it starts is re-sent a bounded number of
times (``attempts`` only counts starts).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        # A job queued before this revision was delivered as often as it was started, as far as anyone
        # knows: its attempts stand in for its deliveries.
        batch.add_column(sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE jobs SET deliveries = attempts")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("deliveries")
