"""a group's members found by the group (rosters, the week board)

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('client_group', schema=None) as batch_op:
        batch_op.create_index('ix_client_group_group_id', ['group_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('client_group', schema=None) as batch_op:
        batch_op.drop_index('ix_client_group_group_id')
