"""payer authorizations; every attendance's modality (in person or telehealth)

authorization holds a payer's approval of units of one service for one client between two dates;
the units used are counted from the attendance, never stored. attendance gains modality,
'in_person' for every record made before (the kiosk's, and the default).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import iop.store.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('authorization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_key', sa.Integer(), nullable=False),
    sa.Column('payer', sa.String(length=120), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('service', sa.String(length=20), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('created_at', iop.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_key'], ['client.id'], name=op.f('fk_authorization_client_key_client'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization')),
    sa.UniqueConstraint('client_key', 'service', 'number', name=op.f('uq_authorization_client_key'))
    )
    with op.batch_alter_table('authorization', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_client_key'), ['client_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_end_date'), ['end_date'], unique=False)

    # A plain ADD COLUMN with a default on both databases (no table rebuild: attendance is the big table).
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('modality', sa.String(length=20), nullable=False, server_default='in_person'))


def downgrade() -> None:
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_column('modality')
    with op.batch_alter_table('authorization', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_end_date'))
        batch_op.drop_index(batch_op.f('ix_authorization_client_key'))
    op.drop_table('authorization')
