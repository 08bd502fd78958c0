"""The baseline of scripts/bench/rest.py: a plain, sync Django REST framework app over the
product's tables, served by gunicorn's sync workers (one per core).

It is written the way a typical DRF project is: ModelSerializers, generic views, cursor
pagination, simplejwt's JWTAuthentication (one user SELECT per request), persistent
database connections. It reads and writes the same PostgreSQL tables as the product
(unmanaged models over `users_user`, `tasks_task` and `tasks_taskevent`; the product's
migrations create them) and renders the same fields. A write updates or inserts the task
and inserts one event row, in one transaction.
"""
