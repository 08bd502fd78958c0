from django.db import migrations

# The people search (apps.users.selectors.search_users) looks for a prefix of the
# username or the email, in any case, among active users: Django's `istartswith` is
# `UPPER(column::text) LIKE UPPER('prefix%')`. These indexes hold that expression; with
# text_pattern_ops a LIKE with a fixed prefix uses them whatever the database's collation.
# PostgreSQL only: other databases scan their (small, development) table.
CREATE_INDEXES = """
CREATE INDEX IF NOT EXISTS users_user_username_prefix
    ON users_user (UPPER(username::text) text_pattern_ops) WHERE is_active;
CREATE INDEX IF NOT EXISTS users_user_email_prefix
    ON users_user (UPPER(email::text) text_pattern_ops) WHERE is_active;
"""
DROP_INDEXES = """
DROP INDEX IF EXISTS users_user_username_prefix;
DROP INDEX IF EXISTS users_user_email_prefix;
"""


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_INDEXES)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_INDEXES)


class Migration(migrations.Migration):
    dependencies = [("users", "0002_user_state_notify")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
