"""spans keyed by (trace_id, span_id), not by span_id alone

A span id is unique within its trace (W3C trace context), which is all the key needs to say.
Trace ids begin with the time (tracing.TimeOrderedIdGenerator), so each new span is appended to
the key's index, where random span ids were scattered through it: a run's two spans took 12.4
against 7.0 us in a batch of 16 (24.2 against 18.7 alone), and the gap grows with the table.
The key's index also serves reads by trace, so ix_spans_trace goes.

Revision ID: 0008_spans_trace_key
Revises: 0007_postgres_text_search
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_spans_trace_key"
down_revision = "0007_postgres_text_search"
branch_labels = None
depends_on = None


def _rebuild(key: list[str]) -> None:
    # SQLite cannot change a table's primary key in place: a new table with the columns as they
    # are (read from the database) and the new key, the rows, then the old table's name.
    columns = sa.Table("spans", sa.MetaData(), autoload_with=op.get_bind()).columns
    op.create_table("spans_rebuilt", *[sa.Column(c.name, c.type, nullable=c.nullable) for c in columns],
                    sa.PrimaryKeyConstraint(*key))
    names = ", ".join(c.name for c in columns)
    op.execute(f"INSERT OR IGNORE INTO spans_rebuilt ({names}) SELECT {names} FROM spans ORDER BY rowid")
    op.drop_table("spans")  # its indexes go with it
    op.rename_table("spans_rebuilt", "spans")
    op.create_index("ix_spans_start", "spans", ["start_ms"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(["trace_id", "span_id"])
        return
    op.drop_index("ix_spans_trace", "spans")
    op.drop_constraint("spans_pkey", "spans", type_="primary")
    op.create_primary_key("spans_pkey", "spans", ["trace_id", "span_id"])


def downgrade() -> None:
    # A span id that two traces share keeps its first span only: the old key cannot hold both.
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(["span_id"])
    else:
        op.execute("DELETE FROM spans a USING spans b WHERE a.span_id = b.span_id AND a.ctid > b.ctid")
        op.drop_constraint("spans_pkey", "spans", type_="primary")
        op.create_primary_key("spans_pkey", "spans", ["span_id"])
    op.create_index("ix_spans_trace", "spans", ["trace_id", "start_ms"])
