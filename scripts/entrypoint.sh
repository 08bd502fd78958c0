#!/usr/bin/env bash
# Every container's entrypoint, and the same natively:
#   scripts/entrypoint.sh compose/django/start        (or celery-worker, celery-beat)
# Waits until PostgreSQL and Redis really accept connections (DATABASE_WAIT_SECONDS and
# REDIS_WAIT_SECONDS, 60 each, then gives up naming the service), applies migrations in
# the web service only, then becomes the command, so signals reach the server.
#
# Migrations run when RUN_MIGRATIONS=1, or, with it unset, when the command is the web
# service's compose/django/start: the worker and beat never migrate, so two processes
# never run `migrate` at once.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...] (e.g. compose/django/start)" >&2
  exit 2
fi

python scripts/lib/wait_for_services.py

run_migrations="${RUN_MIGRATIONS:-}"
if [ -z "$run_migrations" ]; then
  case "$1" in
    compose/django/start | */compose/django/start) run_migrations=1 ;;
    *) run_migrations=0 ;;
  esac
fi
case "$run_migrations" in
  1 | true | yes)
    echo "Applying database migrations..."
    python manage.py migrate --noinput
    ;;
  0 | false | no) ;;
  *)
    echo "error: RUN_MIGRATIONS must be 1 or 0, not '$run_migrations'." >&2
    exit 2
    ;;
esac

exec "$@"
