"""Settings, all read from the environment (and an optional `.env` file) in this one place.

With nothing configured the project runs embedded: SQLite, in-process cache and channel
layer, Celery jobs run in-process, emails printed to the console. `DATABASE_URL` and
`REDIS_URL` switch it to the distributed stack (PostgreSQL, Redis, Celery workers).
"""

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"
SECRET_KEY_MIN_LENGTH = 32

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH):
    raise ImproperlyConfigured(
        "DJANGO_DEBUG=false needs a real DJANGO_SECRET_KEY "
        f"(at least {SECRET_KEY_MIN_LENGTH} random characters)."
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.common",
    "apps.users",
    "apps.tasks",
    "apps.web",
    "realtime",
]

# Only async-native middleware: under ASGI each classic (MiddlewareMixin) middleware costs
# every request a thread hop or two. The API authenticates with JWTs, so it needs no
# sessions, CSRF cookies or messages (and there is no Django admin).
MIDDLEWARE = [
    "apps.common.middleware.problem_json_middleware",
    "apps.common.middleware.AsyncSecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
]
# AsyncSecurityMiddleware does what these checks look for under other names; the
# production headers it sets are tested (apps/tests/test_operations.py).
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002"]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": ["django.template.context_processors.request"],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs its sync work in a thread of its own, so persistent
    # connections (CONN_MAX_AGE) would pile up per thread; a pool hands them back instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        # While PostgreSQL is down a request waits this long for a connection, then
        # answers 503 with Retry-After (apps.common.exceptions). The API's threads are
        # fewer than the pool's connections, so a healthy server never makes one wait.
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=1.5),
    }
    # While PostgreSQL is down the pool tries to reconnect with a delay that doubles from
    # 1 s (1, 2, 4, 8 s...): after a 10 s outage its next attempt could be 8 s away, and
    # requests kept answering 503 long after PostgreSQL was back. A steady 0.5 s (a refused
    # connect costs next to nothing) makes the first request after the restart succeed.
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.INITIAL_DELAY = 0.5
    AttemptWithBackoff.DELAY_BACKOFF = 1.0
    # Each connection is checked as it leaves the pool, but without a round trip: an idle
    # connection whose socket has something to read has heard from the server, most
    # likely its goodbye (PostgreSQL stopped or restarted), and only then gets psycopg's
    # full check (an empty query). The full check on every checkout cost 10-25 % of the
    # REST rates (rest.py, side by side); this one costs a poll() of the socket.
    from psycopg_pool import ConnectionPool

    from apps.common.dbpool import check_connection_if_server_spoke

    # A deliberate patch of the pool class, which mypy reads as assigning to a method.
    ConnectionPool.check_connection = staticmethod(  # type: ignore[method-assign,assignment]
        check_connection_if_server_spoke
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 2)
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a query run twice on a connection is kept
        # prepared there (the pool keeps the connections): PostgreSQL parses and plans it
        # once, and psycopg skips quoting the values into the SQL. A list page cost 20 %
        # less CPU in daphne and PostgreSQL both (wrk with rest.py's data and script).
        # Turn it off behind a pooler in transaction mode (PgBouncer before 1.21), which
        # cannot follow prepared statements from one client to the next.
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let daphne's threads and in-process jobs share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# The threads that do the API's database work, per web process (apps.common.api.in_thread).
# Few: they share the process's one GIL with its event loop, and with 3 instead of 20 a
# detail GET served 10-25 % more requests per second with a lower p99 (same stack, side by
# side). Fewer than the pool's connections, so that a thread never waits for one.
DATABASE_THREADS = env.int("DATABASE_THREADS", default=4)

# --- Redis: cache, Celery broker and channel layer on separate db numbers ---------------
REDIS_URL = env.str("REDIS_URL", default="")


def redis_url_with_db(url: str, offset: int) -> str:
    """Return `url` pointing at its own db number plus `offset` (password kept)."""
    parts = urlsplit(url)
    base_db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base_db + offset}"))


if REDIS_URL:
    REDIS_CACHE_URL = redis_url_with_db(REDIS_URL, 0)
    REDIS_BROKER_URL = redis_url_with_db(REDIS_URL, 1)
    REDIS_CHANNELS_URL = redis_url_with_db(REDIS_URL, 2)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": "taskhub",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    # Pub/sub rather than the list-based RedisChannelLayer: scripts/bench/fanout.py measured
    # 2000 events to 3 of 500 sockets at 3677 deliveries/s, p50 0.5 ms, against 871/s, p50
    # 17 ms. Pub/sub keeps nothing for a socket that is not listening; nothing is lost by
    # that, since a socket fills any gap in `seq` from the event log. realtime.layers adds
    # the callback channels that keep an idle socket small.
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "realtime.layers.RedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py's default pool of 100 connections fails a storm of connects.
                "hosts": [
                    {
                        "address": REDIS_CHANNELS_URL,
                        "max_connections": env.int("REDIS_CHANNEL_MAX_CONNECTIONS", default=2000),
                    }
                ],
                "prefix": "taskhub",
            },
        }
    }
else:
    REDIS_CACHE_URL = REDIS_BROKER_URL = REDIS_CHANNELS_URL = ""
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
    }

# Live events: with Redis, the relay process (`manage.py relay_events`) publishes them;
# without it (the embedded mode), the web process does, after each commit.
LIVE_RELAY_IN_PROCESS = not REDIS_URL

# --- Celery -------------------------------------------------------------------------------
# Embedded, jobs run in-process and no message goes anywhere, but Celery still opens a
# connection to serialize each job's arguments: the in-memory transport, named with a
# host, since kombu warns "No hostname was supplied" about a URL without one.
CELERY_BROKER_URL = REDIS_BROKER_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Log through Django's LOGGING, so LOG_FORMAT=json applies to the worker too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a worker prints (the console email backend's emails) stays on its stdout, rather
# than becoming a `WARNING celery.redirected` log record per line.
CELERY_WORKER_REDIRECT_STDOUTS = False
# Dependable jobs: a job is acknowledged only once it has run, and runs again if its
# worker dies; each worker takes one job at a time. Redis hands an unacknowledged job to
# another worker after the visibility timeout, so a job a dead worker held comes back in
# a minute; the time limits keep every job well inside it (periodic jobs stop after
# 20 s, an SMTP send times out after EMAIL_TIMEOUT), so no job runs twice at once. No
# job waits in a worker with a countdown (email retries are due times in the database),
# which is what a short visibility timeout would otherwise duplicate.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Emails have a queue of their own, so that no backlog of upkeep delays them, and their
# workers can be scaled on their own (`-Q email`). A worker started without `-Q` takes
# both queues.
# Each bound by its own name, so the worker's banner says what each queue takes.
CELERY_TASK_QUEUES = [Queue("celery", routing_key="celery"), Queue("email", routing_key="email")]
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "tasks.send_email_deliveries": {"queue": "email"},
}
CELERY_TASK_SOFT_TIME_LIMIT = 40
CELERY_TASK_TIME_LIMIT = 50
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=60),
    # A Redis that restarts, fails over or sits behind a NAT can leave a connection that
    # is dead but still open. Without a socket timeout a publish or an ack waits on it
    # forever; keepalive and the health checks find such connections and replace them.
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 10,
}
# Workers survive their broker: a worker that loses Redis reconnects for as long as it
# takes (the default gives up after 100 attempts, about 45 minutes, and the worker exits).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Jobs running when the connection drops are left to finish: Redis has already put their
# messages back (their acks cannot arrive), and running an idempotent job twice is cheaper
# than killing it mid-send (Celery 6 will cancel them by default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Crontab entries, not intervals: an interval counts from when beat last ran the job as
# it remembers it, and a beat that restarts (the embedded mode's with every web process)
# starts that countdown again, so restarts more frequent than the interval would skip the
# job; a crontab entry is due at its wall-clock minute whatever beat went through.
# queue_due_emails stays an interval: crontab cannot go below a minute, and at 5 s a
# restart delays it by at most 5 s and skips nothing (each run queues every email due).
CELERY_BEAT_SCHEDULE = {
    "send-due-reminders": {"task": "tasks.send_due_reminders", "schedule": crontab(minute="*")},
    "queue-due-emails": {"task": "tasks.queue_due_emails", "schedule": 5.0},
    "prune-event-log": {"task": "tasks.prune_event_log", "schedule": crontab(minute=5)},
    "prune-idempotency-records": {
        "task": "tasks.prune_idempotency_records",
        "schedule": crontab(minute=35),
    },
    "purge-archived-tasks": {
        "task": "tasks.purge_archived_tasks",
        "schedule": crontab(hour=3, minute=30),
    },
}
# A request's hand-off of its emails to the broker must not hang when Redis is away:
# the deliveries are already recorded, and queue_due_emails queues them later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2}

# --- Email --------------------------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Each email printed to stdout as one readable block (To, Subject, the text body).
    EMAIL_BACKEND = "apps.common.mail.ConsoleEmailBackend"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Taskhub <taskhub@localhost>")
# Where people open the product; links in emails point here. By default the port that
# scripts/run and compose/django/start serve on (PORT).
SITE_URL = env.str("SITE_URL", default=f"http://localhost:{env.str('PORT', default='8000')}")

# --- Auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["apps.users.backends.UsernameOrEmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTH_THROTTLE_RATE = env.str("AUTH_THROTTLE_RATE", default="20/min")
# Requests per user to the API, counted per fixed window (apps.common.ratelimit); 429 with
# Retry-After past it. `0` turns the limit off.
API_USER_RATE = env.str("API_USER_RATE", default="1200/min")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.users.api.authentication.AccessTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["apps.common.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["apps.common.renderers.FastJSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.common.exceptions.problem_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": AUTH_THROTTLE_RATE},
    # The client address is REMOTE_ADDR; behind a proxy run daphne with --proxy-headers
    # rather than trusting X-Forwarded-For from anyone.
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Taskhub API",
    "DESCRIPTION": "Live task management: REST API and WebSocket event stream.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.common.schema.forbid_unknown_request_fields",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "apps.tasks.models.Status",
        "TaskPriorityEnum": ["low", "medium", "high", "urgent"],
        "RoleEnum": "apps.users.models.Role",
        "ProjectRoleEnum": ["owner", "member", "viewer"],
        "EmailNotificationsEnum": "apps.users.models.EmailNotifications",
    },
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# Requests larger than this are refused with 413 before Django reads them.
MAX_REQUEST_BODY_BYTES = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Domain settings ----------------------------------------------------------------------
REMINDER_LEAD_MINUTES = env.int("REMINDER_LEAD_MINUTES", default=60)
ARCHIVE_RETENTION_DAYS = env.int("ARCHIVE_RETENTION_DAYS", default=30)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=7)
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

# --- Internationalisation, static files ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Static files are indexed once at startup, straight from the apps (no collectstatic
# needed); autorefresh would cost every request a thread hop to look for a file.
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = False

# --- Production hardening (active when DJANGO_DEBUG=false) --------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Health probes come over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # No cookie authenticates anyone here, but any that is ever set goes over HTTPS only.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # Running behind a TLS-terminating proxy (nginx, Traefik, a load balancer), daphne
    # sees plain HTTP and would redirect every request to https:// forever. Set
    # DJANGO_TRUST_X_FORWARDED_PROTO=true so Django takes `X-Forwarded-Proto: https` as
    # proof of HTTPS, but only when the proxy overwrites that header on every request and
    # clients cannot reach daphne around it (anyone could send the header otherwise).
    # Run daphne with --proxy-headers there too, for the client address (README).
    if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # CSRF protects cookie-authenticated requests; the API authenticates with a bearer
    # token sent explicitly by the client (no session, no cookie), which a cross-site page
    # cannot make a browser attach, so there is nothing for CsrfViewMiddleware to guard.
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W003"]

# --- Logging --------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "apps.common.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives these a console handler of their own; the root's
        # is enough, so each line is printed once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "INFO"},
    },
}
if CELERY_TASK_ALWAYS_EAGER:
    # Embedded, Celery's "Task ... succeeded in ...s: None" line would double each job's
    # own line (and say every 5 s that queue_due_emails found nothing); its warnings and
    # errors stay. Workers keep their usual lines.
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}
