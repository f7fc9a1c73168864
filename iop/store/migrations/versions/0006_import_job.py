"""import jobs: web imports run outside the request, their progress and outcome kept for any process

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

import iop.store.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('import_job',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('created_at', iop.store.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', iop.store.models.UTCDateTime(), nullable=False),
    sa.Column('finished_at', iop.store.models.UTCDateTime(), nullable=True),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('first_row_id', sa.Integer(), nullable=True),
    sa.Column('stamp', iop.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_import_job_user_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )


def downgrade() -> None:
    op.drop_table('import_job')
