"""Characters whose template was deleted hold no seed, template version or generator version.

API.md: without a template, a character's ``seed``, ``template_version`` and
``generator_version`` are null. Deleting a template set only ``template_id`` to null (the
foreign key's ON DELETE SET NULL), so the characters made from it kept the rest; the service now
clears them, with the ``rerolls`` they were made with, when it deletes a template or an account
(app.character_templates.service.release_characters). This clears them on the characters whose
template was deleted before. Their attributes, name and everything else are kept; their
``row_version`` moves on, so their ETag changes with what their view shows.

Revision ID: 5fa10b613398
Revises: e2a7c9d41f58
Create Date: 2026-11-26 12:40:00
"""

from alembic import op

revision = "5fa10b613398"
down_revision = "e2a7c9d41f58"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "UPDATE characters SET seed = NULL, template_version = NULL, generator_version = NULL, "
        "rerolls = NULL, row_version = row_version + 1 WHERE template_id IS NULL AND (seed IS NOT NULL "
        "OR template_version IS NOT NULL OR generator_version IS NOT NULL OR rerolls IS NOT NULL)"
    )


def downgrade():
    pass  # what was cleared had no meaning without the template, and is not kept anywhere
