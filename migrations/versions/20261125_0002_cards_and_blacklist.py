"""cards and blacklist

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

The partial unique indexes enforce one live card and one open application per resident in
the database itself. The blacklist head row starts at version 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blacklist_changes",
        sa.Column(
            "version",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_blacklist_changes")),
    )
    with op.batch_alter_table("blacklist_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blacklist_changes_token"), ["token"], unique=False)

    op.create_table(
        "blacklist_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blacklist_head")),
    )
    op.create_table(
        "card_counters",
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("region_code", name=op.f("pk_card_counters")),
    )
    op.create_table(
        "cards",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("card_number", sa.String(length=9), nullable=False),
        sa.Column("identification_code", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_before_loss", sa.String(length=16), nullable=True),
        sa.Column("temporary_loss_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issuing_region", sa.String(length=6), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("bank_code", sa.String(length=16), nullable=True),
        sa.Column("bank_account", sa.LargeBinary(), nullable=True),
        sa.Column("bank_account_index", sa.LargeBinary(length=16), nullable=True),
        sa.Column("social_security_activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bank_activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_ref", sa.String(length=32), nullable=False),
        sa.Column(
            "replaced_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"], ["cards.id"], name=op.f("fk_cards_replaced_by_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_cards_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("card_number", name=op.f("uq_cards_card_number")),
        sa.UniqueConstraint("identification_code", name=op.f("uq_cards_identification_code")),
        sa.UniqueConstraint("token", name=op.f("uq_cards_token")),
    )
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cards_bank_account_index"), ["bank_account_index"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cards_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index("ix_cards_state", ["state", "region_code"], unique=False)
        batch_op.create_index(
            "uq_cards_one_live_per_resident",
            ["resident_id"],
            unique=True,
            sqlite_where=sa.text(
                "state IN ('in_production', 'ready', 'issued', 'active', 'temporary_loss')"
            ),
            postgresql_where=sa.text(
                "state IN ('in_production', 'ready', 'issued', 'active', 'temporary_loss')"
            ),
        )

    op.create_table(
        "card_applications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("outlet", sa.String(length=64), nullable=True),
        sa.Column("mailing_address", sa.LargeBinary(), nullable=True),
        sa.Column("tracking_number", sa.String(length=32), nullable=True),
        sa.Column(
            "replaces_card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("proxy_name", sa.String(length=64), nullable=True),
        sa.Column("proxy_id_number", sa.LargeBinary(), nullable=True),
        sa.Column("proxy_relation", sa.String(length=32), nullable=True),
        sa.Column("birth_certificate_number", sa.String(length=32), nullable=True),
        sa.Column("factory_batch", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_applications_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_card_id"],
            ["cards.id"],
            name=op.f("fk_card_applications_replaces_card_id_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_card_applications_resident_id_residents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_applications")),
    )
    with op.batch_alter_table("card_applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_applications_card_id"), ["card_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_card_applications_resident_id"), ["resident_id"], unique=False
        )
        batch_op.create_index(
            "ix_card_applications_status", ["status", "region_code"], unique=False
        )
        batch_op.create_index(
            "uq_card_applications_one_open",
            ["resident_id"],
            unique=True,
            sqlite_where=sa.text(
                "status IN ('submitted', 'checked', 'in_production', 'ready', 'mailed')"
            ),
            postgresql_where=sa.text(
                "status IN ('submitted', 'checked', 'in_production', 'ready', 'mailed')"
            ),
        )

    op.create_table(
        "card_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("outlet", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_events_card_id_cards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_events")),
    )
    with op.batch_alter_table("card_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_events_card_id"), ["card_id"], unique=False)

    op.create_table(
        "card_application_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("outlet", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["card_applications.id"],
            name=op.f("fk_card_application_events_application_id_card_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_application_events")),
    )
    with op.batch_alter_table("card_application_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_card_application_events_application_id"),
            ["application_id"],
            unique=False,
        )

    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_date", sa.Date(), nullable=True))

    op.execute(sa.text("INSERT INTO blacklist_head (id, version) VALUES (1, 0)"))


def downgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("status_date")

    with op.batch_alter_table("card_application_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_application_events_application_id"))

    op.drop_table("card_application_events")
    with op.batch_alter_table("card_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_events_card_id"))

    op.drop_table("card_events")
    with op.batch_alter_table("card_applications", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_card_applications_one_open",
            sqlite_where=sa.text(
                "status IN ('submitted', 'checked', 'in_production', 'ready', 'mailed')"
            ),
            postgresql_where=sa.text(
                "status IN ('submitted', 'checked', 'in_production', 'ready', 'mailed')"
            ),
        )
        batch_op.drop_index("ix_card_applications_status")
        batch_op.drop_index(batch_op.f("ix_card_applications_resident_id"))
        batch_op.drop_index(batch_op.f("ix_card_applications_card_id"))

    op.drop_table("card_applications")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_cards_one_live_per_resident",
            sqlite_where=sa.text(
                "state IN ('in_production', 'ready', 'issued', 'active', 'temporary_loss')"
            ),
            postgresql_where=sa.text(
                "state IN ('in_production', 'ready', 'issued', 'active', 'temporary_loss')"
            ),
        )
        batch_op.drop_index("ix_cards_state")
        batch_op.drop_index(batch_op.f("ix_cards_resident_id"))
        batch_op.drop_index(batch_op.f("ix_cards_bank_account_index"))

    op.drop_table("cards")
    op.drop_table("card_counters")
    op.drop_table("blacklist_head")
    with op.batch_alter_table("blacklist_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blacklist_changes_token"))

    op.drop_table("blacklist_changes")
