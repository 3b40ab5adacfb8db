"""curriculum: the aligned resource's title on the alignment, kept by triggers

The recommender needs, per node of this and last week's lessons, the first few aligned
resources by title.  At 100,000 resources that meant joining every alignment of the
weeks' nodes (~18,700) to its resource and sorting them.  ``resource_title`` (the title
of the published version, code-point order on PostgreSQL) with an index on (node,
target type, alignment type, title, content id) lets it walk each node's alignments in
title order and stop after a few (issue 14, docs/portraits.md "Third round").  Triggers
write it on every insert or update of an alignment and of a published resource row, so
no write path can leave it stale.

Revision ID: curr0003
Revises: search0003
Create Date: 2026-11-30 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "curr0003"
down_revision = "search0003"
branch_labels = None
depends_on = None

# As app/curriculum/models.ALIGNMENT_TITLE_TRIGGERS at this revision (frozen here).
POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION curriculum_alignment_resource_title() RETURNS trigger AS $$
BEGIN
    IF NEW.target_type = 'resource' THEN
        NEW.resource_title := (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1);
    ELSE
        NEW.resource_title := NULL;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql SET enable_seqscan = off""",
    """CREATE TRIGGER curriculum_alignments_resource_title
BEFORE INSERT OR UPDATE ON curriculum_alignments
FOR EACH ROW EXECUTE FUNCTION curriculum_alignment_resource_title()""",
    """CREATE OR REPLACE FUNCTION resources_alignment_title() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'published' THEN
        UPDATE curriculum_alignments SET resource_title = NEW.title
        WHERE target_type = 'resource' AND target_key = NEW.content_id
            AND resource_title IS DISTINCT FROM (NEW.title COLLATE "C");
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql SET enable_seqscan = off""",
    """CREATE TRIGGER resources_alignment_title
AFTER INSERT OR UPDATE OF title, state, content_id ON resources
FOR EACH ROW EXECUTE FUNCTION resources_alignment_title()""",
]
SQLITE = [
    """CREATE TRIGGER curriculum_alignments_title_insert
AFTER INSERT ON curriculum_alignments
BEGIN
    UPDATE curriculum_alignments SET resource_title = CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END
    WHERE id = NEW.id;
END""",
    """CREATE TRIGGER curriculum_alignments_title_update
AFTER UPDATE OF target_type, target_key, resource_title ON curriculum_alignments
BEGIN
    UPDATE curriculum_alignments SET resource_title = CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END
    WHERE id = NEW.id AND resource_title IS NOT CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END;
END""",
    """CREATE TRIGGER resources_alignment_title_insert
AFTER INSERT ON resources WHEN NEW.state = 'published'
BEGIN
    UPDATE curriculum_alignments SET resource_title = NEW.title
    WHERE target_type = 'resource' AND target_key = NEW.content_id
        AND resource_title IS NOT NEW.title;
END""",
    """CREATE TRIGGER resources_alignment_title_update
AFTER UPDATE OF title, state, content_id ON resources WHEN NEW.state = 'published'
BEGIN
    UPDATE curriculum_alignments SET resource_title = NEW.title
    WHERE target_type = 'resource' AND target_key = NEW.content_id
        AND resource_title IS NOT NEW.title;
END""",
]
BACKFILL = """UPDATE curriculum_alignments SET resource_title = (
    SELECT r.title FROM resources r
    WHERE r.content_id = curriculum_alignments.target_key AND r.state = 'published' LIMIT 1)
WHERE target_type = 'resource'"""


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    title = sa.String(length=200)
    op.add_column(
        "curriculum_alignments",
        sa.Column(
            "resource_title",
            title.with_variant(sa.String(length=200, collation="C"), "postgresql"),
            nullable=True,
        ),
    )
    op.execute(BACKFILL)
    op.create_index(
        "ix_curriculum_alignments_node_title",
        "curriculum_alignments",
        ["node_id", "target_type", "alignment_type", "resource_title", "target_key"],
        unique=False,
    )
    for statement in POSTGRESQL if postgres else SQLITE:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER resources_alignment_title ON resources")
        op.execute("DROP TRIGGER curriculum_alignments_resource_title ON curriculum_alignments")
        op.execute("DROP FUNCTION resources_alignment_title()")
        op.execute("DROP FUNCTION curriculum_alignment_resource_title()")
    else:
        for name in (
            "resources_alignment_title_update",
            "resources_alignment_title_insert",
            "curriculum_alignments_title_update",
            "curriculum_alignments_title_insert",
        ):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_curriculum_alignments_node_title", table_name="curriculum_alignments")
    with op.batch_alter_table("curriculum_alignments", schema=None) as batch_op:
        batch_op.drop_column("resource_title")
