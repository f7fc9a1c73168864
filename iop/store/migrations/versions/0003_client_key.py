"""a client's integer key is client_key; client_id is only ever the program's own id

The columns that point at a client row were named client_id, the name the program's own id
(Client.client_id, the CSV files' client_id) already has. They are renamed client_key, with their
indexes and constraints, and keep their data.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# table -> (its foreign key's ON DELETE, its index on the column or None, its unique constraint or None)
TABLES = {
    'plan': ('CASCADE', 'ix_plan_{}', None),
    'week_flag': ('CASCADE', None, ('uq_week_flag_{}', ['week_start'])),
    'client_group': ('CASCADE', None, None),
    'scan': (None, None, None),
    'attendance': (None, 'ix_attendance_{}', None),
}


def _rename(old: str, new: str) -> None:
    live_index = ('uq_attendance_live', dict(unique=True, sqlite_where=sa.text('voided_at IS NULL'),
                                             postgresql_where=sa.text('voided_at IS NULL')))
    if op.get_bind().dialect.name == 'postgresql':
        # Renaming a column carries its indexes and constraints along; only their names are left to change.
        for table, (_on_delete, index, unique) in TABLES.items():
            op.execute(f'ALTER TABLE {table} RENAME COLUMN {old} TO {new}')
            op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT fk_{table}_{old}_client TO fk_{table}_{new}_client')
            if index:
                op.execute(f'ALTER INDEX {index.format(old)} RENAME TO {index.format(new)}')
            if unique:
                op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT {unique[0].format(old)} TO {unique[0].format(new)}')
        return
    # SQLite renames the column in place and keeps the constraints' old names inside CREATE TABLE: each
    # table is then rebuilt (batch mode) to give them the new names.
    op.drop_index(live_index[0], table_name='attendance')
    for table, (on_delete, index, unique) in TABLES.items():
        if index:
            op.drop_index(index.format(old), table_name=table)
        op.execute(f'ALTER TABLE {table} RENAME COLUMN {old} TO {new}')
        with op.batch_alter_table(table, recreate='always') as batch_op:
            batch_op.drop_constraint(f'fk_{table}_{old}_client', type_='foreignkey')
            batch_op.create_foreign_key(f'fk_{table}_{new}_client', 'client', [new], ['id'], ondelete=on_delete)
            if unique:
                batch_op.drop_constraint(unique[0].format(old), type_='unique')
                batch_op.create_unique_constraint(unique[0].format(new), [new, *unique[1]])
        if index:
            op.create_index(index.format(new), table, [new], unique=False)
    op.create_index(live_index[0], 'attendance', ['session_id', new], **live_index[1])


def upgrade() -> None:
    _rename('client_id', 'client_key')


def downgrade() -> None:
    _rename('client_key', 'client_id')
