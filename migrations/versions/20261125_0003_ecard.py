"""electronic card and QR code nonces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

One e-card per card (unique card_id) and at most one e-card in use per resident (a partial
unique index over active and suspended e-cards). The nonce store keeps each accepted QR code
nonce until the code could no longer verify; its expiry index makes pruning cheap.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE_ECARDS = "status IN ('active', 'suspended')"


def upgrade() -> None:
    op.create_table(
        "ecards",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("resident_id", BIG_ID, nullable=False),
        sa.Column("card_id", BIG_ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_reason", sa.String(length=32), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("previous_ecard_id", BIG_ID, nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_ecards_card_id_cards")),
        sa.ForeignKeyConstraint(
            ["previous_ecard_id"], ["ecards.id"], name=op.f("fk_ecards_previous_ecard_id_ecards")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_ecards_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecards")),
        sa.UniqueConstraint("card_id", name=op.f("uq_ecards_card_id")),
    )
    with op.batch_alter_table("ecards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ecards_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index(
            "uq_ecards_one_live_per_resident",
            ["resident_id"],
            unique=True,
            sqlite_where=sa.text(LIVE_ECARDS),
            postgresql_where=sa.text(LIVE_ECARDS),
        )

    op.create_table(
        "ecard_qr_nonces",
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_ecard_qr_nonces")),
    )
    with op.batch_alter_table("ecard_qr_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ecard_qr_nonces_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ecard_qr_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ecard_qr_nonces_expires_at"))
    op.drop_table("ecard_qr_nonces")

    with op.batch_alter_table("ecards", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ecards_one_live_per_resident",
            sqlite_where=sa.text(LIVE_ECARDS),
            postgresql_where=sa.text(LIVE_ECARDS),
        )
        batch_op.drop_index(batch_op.f("ix_ecards_resident_id"))
    op.drop_table("ecards")
