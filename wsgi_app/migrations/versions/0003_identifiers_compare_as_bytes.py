"""identifiers compare as bytes on MariaDB (utf8mb4_bin); chat files found by name

MariaDB's default collation (utf8mb4_general_ci) made "Msg-1" and "msg-1" the
same clientMsgId (the second message was answered as a duplicate and lost),
and appkeys and order numbers match ignoring case. SQLite already compares
bytes, so this migration changes nothing there.

Downgrade returns the columns to the table's default collation; it fails if
two identifiers now differ only by case.

Revision ID: 0003
Revises: 0002_nearby_cells
Create Date: 2026-11-22 03:00:00
"""
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002_nearby_cells'
branch_labels = None
depends_on = None

# (table, column, length, nullable)
IDENTIFIER_COLUMNS = [
    ("applications", "appkey", 32, False),
    ("messages", "client_msg_id", 64, False),
    ("messages", "media_filename", 64, True),
    ("orders", "order_no", 32, False),
    ("orders", "provider_txn_id", 64, True),
    ("auth_tokens", "token_hash", 64, False),
    ("photos", "filename", 64, False),
]


def _set_collation(collation):
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, length, nullable in IDENTIFIER_COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=mysql.VARCHAR(length),
            type_=mysql.VARCHAR(length, charset="utf8mb4", collation=collation),
            existing_nullable=nullable,
            nullable=nullable,
        )


def upgrade():
    _set_collation("utf8mb4_bin")
    # GET /api/chat/media/<name> finds the message (and so who may read it) by file name.
    op.create_index("ix_messages_media_filename", "messages", ["media_filename"])


def downgrade():
    op.drop_index("ix_messages_media_filename", table_name="messages")
    _set_collation("utf8mb4_general_ci")
