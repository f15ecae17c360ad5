"""background jobs; recipient phone of mailed applications

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

``jobs`` records every background job (kind, status, progress, outcome, error report) so a
clerk can follow an import started from a page and a job cut short by a stopped server is
reported, never lost. ``card_applications.recipient_phone`` (SM4-GCM encrypted, like the
mailing address) is who the courier calls when a card is mailed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_sm3", sa.String(length=64), nullable=True),
        sa.Column("stored_path", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_report", sa.JSON(), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("runner", sa.String(length=128), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status", ["status"], unique=False)
        batch_op.create_index("ix_jobs_region_created", ["region_code", "created_at"], unique=False)
    with op.batch_alter_table("card_applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_phone", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_applications", schema=None) as batch_op:
        batch_op.drop_column("recipient_phone")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_region_created")
        batch_op.drop_index("ix_jobs_status")
    op.drop_table("jobs")
