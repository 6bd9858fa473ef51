"""user_locations by grid cell: index (lat, lng) for nearby search

Stored positions are cell centres, so all users of one cell share one exact
(lat, lng) and a row of cells shares one lat: nearby search reads a cell, or a
row's run of cells, with one range on this index.

Revision ID: 0002_nearby_cells
Revises: 0001
"""
from alembic import op

revision = "0002_nearby_cells"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user_locations", schema=None) as batch_op:
        batch_op.create_index("ix_user_locations_cell", ["lat", "lng"], unique=False)


def downgrade():
    with op.batch_alter_table("user_locations", schema=None) as batch_op:
        batch_op.drop_index("ix_user_locations_cell")
