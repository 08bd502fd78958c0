from django.db import migrations

# Tasks now show `assignee_user` ({id, username} or null) beside `assignee`. The task
# snapshots written before (in events, which the history, the event list and a resuming
# socket replay, and in the responses an Idempotency-Key replays) gain it here, so that
# every task a client is given has the same shape. A snapshot of a deletion ({id}) has
# no assignee and stays as it is.
SNAPSHOTS = (("TaskEvent", "task_snapshot"), ("IdempotencyRecord", "response_body"))
ADD_ASSIGNEE_USER = """
UPDATE {table} SET {column} = {column} || jsonb_build_object(
    'assignee_user',
    (SELECT jsonb_build_object('id', person.id, 'username', person.username)
     FROM users_user AS person WHERE person.id = ({column} ->> 'assignee')::bigint)
)
WHERE {column} ? 'assignee' AND NOT {column} ? 'assignee_user'
"""
BATCH_SIZE = 1000


def add_assignee_user(apps, schema_editor):
    User = apps.get_model("users", "User")
    for model_name, column in SNAPSHOTS:
        model = apps.get_model("tasks", model_name)
        if schema_editor.connection.vendor == "postgresql":  # one statement, in place
            table = model._meta.db_table
            schema_editor.execute(ADD_ASSIGNEE_USER.format(table=table, column=column))
            continue
        old = model.objects.filter(**{f"{column}__has_key": "assignee"}).exclude(
            **{f"{column}__has_key": "assignee_user"}
        )
        last = None
        while batch := list(
            (old if last is None else old.filter(pk__gt=last)).order_by("pk")[:BATCH_SIZE]
        ):
            _fill(model, column, batch, User)
            last = batch[-1].pk


def _fill(model, column, rows, User):
    ids = {getattr(row, column)["assignee"] for row in rows} - {None}
    names = dict(User.objects.filter(pk__in=ids).values_list("id", "username"))
    for row in rows:
        snapshot = getattr(row, column)
        assignee = snapshot["assignee"]
        snapshot["assignee_user"] = (
            {"id": assignee, "username": names[assignee]} if assignee in names else None
        )
    model.objects.bulk_update(rows, [column])


class Migration(migrations.Migration):
    dependencies = [("tasks", "0003_live_outbox")]

    # Going back, the older code does not mind the extra field.
    operations = [migrations.RunPython(add_assignee_user, migrations.RunPython.noop)]
