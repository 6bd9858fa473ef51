"""the event stream (events, per-person counters), likes and matches, privacy and presence

Revision ID: 0004_event_stream
Revises: 0003
Create Date: 2026-12-07 23:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_event_stream"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "event_counters",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("last_id", BigId, nullable=False),
        sa.Column("pruned_through", BigId, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", BigId, nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_table(
        "likes",
        sa.Column("liker_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("liked_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_likes_liked", "likes", ["liked_id", "created_at"])
    op.create_index("ix_likes_liker_created", "likes", ["liker_id", "created_at"])
    op.create_table(
        "matches",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("peer_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_matches_user_created", "matches", ["user_id", "created_at"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_receipts", sa.Boolean(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("presence_hidden", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_active_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("vip_expiry_announced_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("vip_expiry_announced_at")
        batch_op.drop_column("last_active_at")
        batch_op.drop_column("presence_hidden")
        batch_op.drop_column("read_receipts")
    op.drop_table("matches")
    op.drop_table("likes")
    op.drop_table("events")
    op.drop_table("event_counters")
