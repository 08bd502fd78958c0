from django.db import migrations

# Any change to what a request knows of its user (apps.users.state) NOTIFYs the live relay,
# however it was made: a model's save(), QuerySet.update(), raw SQL. PostgreSQL delivers
# the notification when the transaction commits, and never for a rollback.
NOTIFY_TRIGGER = """
CREATE OR REPLACE FUNCTION users_user_state_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR NEW.is_active IS DISTINCT FROM OLD.is_active
       OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.username IS DISTINCT FROM OLD.username THEN
        PERFORM pg_notify('taskhub_user_state', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_user_state_notify AFTER UPDATE OR DELETE ON users_user
    FOR EACH ROW EXECUTE FUNCTION users_user_state_notify();
"""
DROP_NOTIFY_TRIGGER = """
DROP TRIGGER IF EXISTS users_user_state_notify ON users_user;
DROP FUNCTION IF EXISTS users_user_state_notify();
"""


def add_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_TRIGGER)


def drop_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_NOTIFY_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = [migrations.RunPython(add_notify_trigger, drop_notify_trigger)]
