"""faceweb settings, read from the environment. See README.md for every variable."""

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("FACEWEB_DATA_DIR", str(BASE_DIR / "data"))).resolve()


def _secret_key():
    """DJANGO_SECRET_KEY, or DJANGO_SECRET_KEY_FILE, or one kept in the data folder."""
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    key_file = env_str("DJANGO_SECRET_KEY_FILE")
    if key_file:
        return Path(key_file).read_text().strip()
    # Embedded default: a random key made once and kept beside the data, so sessions survive
    # restarts without anyone having to invent a secret.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "accounts.apps.FacewebAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "api",
    "identities",
    "training",
    "imports",
]

MIDDLEWARE = [
    "accounts.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "accounts.middleware.RequestHygieneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "faceweb.urls"
WSGI_APPLICATION = "faceweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "accounts.context_processors.csp_nonce",
                "accounts.context_processors.nav_section",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'faceweb.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web process read while the worker writes progress.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "identities:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Media is personal data: it lives outside any public folder and is only served by
# identities.views.media, which checks the user.
MEDIA_ROOT = Path(env_str("FACEWEB_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
# "local" keeps photos and models under MEDIA_ROOT; "s3" puts them in an S3-compatible
# bucket, so that web and workers on several hosts see the same files.
FACEWEB_STORAGE = env_choice("FACEWEB_STORAGE", "local", ["local", "s3"])
_s3_options = {
    "bucket_name": env_str("FACEWEB_S3_BUCKET"),
    "endpoint_url": env_str("FACEWEB_S3_ENDPOINT_URL") or None,
    "region_name": env_str("FACEWEB_S3_REGION") or None,
    "access_key": env_str("FACEWEB_S3_ACCESS_KEY_ID") or None,
    "secret_key": env_str("FACEWEB_S3_SECRET_ACCESS_KEY") or None,
    "default_acl": "private",
    "querystring_auth": True,
    "file_overwrite": False,
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if FACEWEB_STORAGE == "local"
    else {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
FILE_UPLOAD_PERMISSIONS = 0o640

# How many reverse proxies stand in front of gunicorn, each adding the address it saw to
# X-Forwarded-For. 0: none, REMOTE_ADDR is the client (the header is then ignored, since
# anyone can write it).
FACEWEB_TRUSTED_PROXIES = env_int("FACEWEB_TRUSTED_PROXIES", 0)

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# One switch for a deployment served over HTTPS (usually behind a TLS-terminating proxy):
# secure cookies, HSTS, redirects to https, and trust in the proxy's X-Forwarded-Proto.
FACEWEB_HTTPS = env_bool("FACEWEB_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = FACEWEB_HTTPS
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", FACEWEB_HTTPS)
# Probes come over plain HTTP from inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if FACEWEB_HTTPS else 0)
# Only the deployer knows whether every subdomain is HTTPS too; the documented production
# environment turns both on.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if FACEWEB_HTTPS else None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Throttles and login lockouts must be counted across all web processes: Redis for teams,
# a folder in the data directory on one machine.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL"),
    }
    if env_str("CACHE_URL")
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
    }
}

# --- uploads ------------------------------------------------------------------------------
FACEWEB_MAX_UPLOAD_BYTES = env_int("FACEWEB_MAX_UPLOAD_BYTES", 15 * 1024 * 1024)
FACEWEB_MAX_PIXELS = env_int("FACEWEB_MAX_PIXELS", 40_000_000)
FACEWEB_MAX_FILES_PER_UPLOAD = env_int("FACEWEB_MAX_FILES_PER_UPLOAD", 200)
# Identifying several photos: up to this many are identified during the request; more go
# to a worker in the background. A batch (files or a zip) holds at most the second number.
FACEWEB_IDENTIFY_INLINE_PHOTOS = env_int("FACEWEB_IDENTIFY_INLINE_PHOTOS", 4)
FACEWEB_IDENTIFY_MAX_PHOTOS = env_int("FACEWEB_IDENTIFY_MAX_PHOTOS", 500)
# --- bulk import (a zip or a folder, one sub-folder per person) ----------------------------
FACEWEB_IMPORT_MAX_ZIP_BYTES = env_int("FACEWEB_IMPORT_MAX_ZIP_BYTES", 1024 * 1024 * 1024)
# What the zip may unpack to in all, and how many times its packed size one file may grow
# (photos barely compress, so a high ratio means a zip bomb).
FACEWEB_IMPORT_MAX_TOTAL_BYTES = env_int("FACEWEB_IMPORT_MAX_TOTAL_BYTES", 2 * 1024**3)
FACEWEB_IMPORT_MAX_RATIO = env_int("FACEWEB_IMPORT_MAX_RATIO", 100)
FACEWEB_IMPORT_MAX_FILES = env_int("FACEWEB_IMPORT_MAX_FILES", 10_000)
# A folder chosen in the browser arrives as one file per photo; bigger ones go as a zip.
FACEWEB_IMPORT_MAX_FOLDER_FILES = env_int("FACEWEB_IMPORT_MAX_FOLDER_FILES", 1000)
# A job, import or batch queued this long without a worker taking it is sent to the broker
# again (its message may have been lost in a broker restart).
FACEWEB_QUEUE_LOST_SECONDS = env_int("FACEWEB_QUEUE_LOST_SECONDS", 600)
# ... up to this many sends in all; then it fails with the reason instead of staying queued.
FACEWEB_QUEUE_MAX_SENDS = env_int("FACEWEB_QUEUE_MAX_SENDS", 3)
# A running import whose worker has not reported for this long is stopped, to be resumed.
FACEWEB_IMPORT_STALE_SECONDS = env_int("FACEWEB_IMPORT_STALE_SECONDS", 300)
# The data quality page warns about people with fewer usable photos than this.
FACEWEB_MIN_PHOTOS_PER_IDENTITY = env_int("FACEWEB_MIN_PHOTOS_PER_IDENTITY", 10)
DATA_UPLOAD_MAX_NUMBER_FILES = max(FACEWEB_MAX_FILES_PER_UPLOAD, FACEWEB_IMPORT_MAX_FOLDER_FILES)
# Above this Django spools uploads to disk instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- training -----------------------------------------------------------------------------
FACEWEB_PRETRAINED = env_str("FACEWEB_PRETRAINED", "imagenet")
# Starting weights a trainer names in a job must be files in this folder (on the workers).
FACEWEB_PRETRAINED_DIR = Path(env_str("FACEWEB_PRETRAINED_DIR", str(DATA_DIR / "pretrained")))
FACEWEB_EPOCHS = env_int("FACEWEB_EPOCHS", None)  # None: TrainConfig's default
FACEWEB_VAL_FRACTION = env_float("FACEWEB_VAL_FRACTION", 0.2)
FACEWEB_SPLIT_SEED = env_int("FACEWEB_SPLIT_SEED", 0)
FACEWEB_WORK_DIR = Path(env_str("FACEWEB_WORK_DIR", str(DATA_DIR / "work")))
# A running job that has not reported for this long is taken for dead (its worker was killed).
FACEWEB_JOB_STALE_SECONDS = env_int("FACEWEB_JOB_STALE_SECONDS", 15 * 60)
# A running job silent this long is shown with a warning that no worker has reported.
FACEWEB_JOB_SILENT_SECONDS = env_int("FACEWEB_JOB_SILENT_SECONDS", 2 * 60)
FACEWEB_TRAINING_SOFT_TIME_LIMIT = env_int("FACEWEB_TRAINING_SOFT_TIME_LIMIT", 6 * 3600)
FACEWEB_TRAINING_TIME_LIMIT = env_int("FACEWEB_TRAINING_TIME_LIMIT", 6 * 3600 + 300)
# Intra-op threads for identification in web processes. One per process keeps several
# gunicorn workers from spin-waiting on each other's cores; 0 leaves torch's own choice.
FACEWEB_TORCH_THREADS = env_int("FACEWEB_TORCH_THREADS", 1)
# Overrides every model's calibrated "unknown" threshold when set (a number; see README).
FACEWEB_UNKNOWN_THRESHOLD = env_float("FACEWEB_UNKNOWN_THRESHOLD", None)

# --- face detection (training/ml/detection.py; figures in the README) -----------------------
# "hog": dlib's HOG detector, fast, frontal faces; "cnn": dlib's CNN detector in PyTorch,
# about 5x slower on a CPU (use it with a GPU); "hog+cnn": HOG, and the CNN on photos where
# HOG found no face (turned faces, a face filling the photo).
FACEWEB_FACE_DETECTOR = env_choice("FACEWEB_FACE_DETECTOR", "hog+cnn", ("hog", "cnn", "hog+cnn"))
# The smallest face to find, in the photo's own pixels: photos are searched at the scale
# where such a face is what the detector needs. Smaller is slower (by the square).
FACEWEB_MIN_FACE_SIZE = env_int("FACEWEB_MIN_FACE_SIZE", 64)
# The most pixels searched per photo, in millions: a larger photo is searched at a coarser
# scale (its result says from which size faces may be missed), so one photo cannot hold
# a web worker for long. 24 MP take about 1 s with HOG on 2 cores.
FACEWEB_DETECT_MAX_MEGAPIXELS = env_float("FACEWEB_DETECT_MAX_MEGAPIXELS", 24.0)
# Threads that search parts of a large photo at once (HOG); 0: one per core.
FACEWEB_DETECT_THREADS = env_int("FACEWEB_DETECT_THREADS", 0)
if FACEWEB_MIN_FACE_SIZE < 8 or FACEWEB_DETECT_MAX_MEGAPIXELS <= 0 or FACEWEB_DETECT_THREADS < 0:
    raise ImproperlyConfigured(
        "FACEWEB_MIN_FACE_SIZE must be at least 8, FACEWEB_DETECT_MAX_MEGAPIXELS positive "
        "and FACEWEB_DETECT_THREADS 0 or more"
    )

# --- identification history, review and retention ------------------------------------------
# Faces named with a confidence below this (or unknown) wait in the Review inbox.
FACEWEB_REVIEW_BELOW_CONFIDENCE = env_float("FACEWEB_REVIEW_BELOW_CONFIDENCE", 0.6)
# Unknown faces at least this similar (cosine of centred embeddings) are grouped together
# on the "Do you know this person?" page.
FACEWEB_GROUP_SIMILARITY = env_float("FACEWEB_GROUP_SIMILARITY", 0.5)
# Photos sent to identification (and the faces nobody reviewed) are deleted after this many
# days by the beat task, keeping only the results; 0 keeps them.
FACEWEB_PREDICTION_RETENTION_DAYS = env_int("FACEWEB_PREDICTION_RETENTION_DAYS", 30)
# Off: photos sent to identification are never stored, nor their faces (results only;
# nothing can then be learnt from a review).
FACEWEB_KEEP_PREDICTION_PHOTOS = env_bool("FACEWEB_KEEP_PREDICTION_PHOTOS", True)

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
_broker_folder = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_folder / "queue"),
        "data_folder_out": str(_broker_folder / "queue"),
        "processed_folder": str(_broker_folder / "processed"),
        # kombu's default is "control" in the current directory.
        "control_folder": str(_broker_folder / "control"),
        "store_processed": False,
    }
else:
    # A task not acknowledged within this time is handed to another worker, so it must be
    # longer than the longest training run or a long job would run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": FACEWEB_TRAINING_TIME_LIMIT + 3600,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"training.tasks.run_training_job": {"queue": "training"}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Scheduled retraining (beat: `celery -A faceweb beat`, or inside scripts/run's worker): a
# crontab "minute hour day month weekday"; empty turns it off. Hourly by default: it only
# trains when the photos changed, and the default model takes seconds to build.
FACEWEB_RETRAIN_SCHEDULE = env_str("FACEWEB_RETRAIN_SCHEDULE", "0 * * * *")
CELERY_BEAT_SCHEDULE = {}
if FACEWEB_RETRAIN_SCHEDULE:
    from celery.schedules import crontab

    try:
        _minute, _hour, _day, _month, _weekday = FACEWEB_RETRAIN_SCHEDULE.split()
    except ValueError:
        raise ImproperlyConfigured(
            "FACEWEB_RETRAIN_SCHEDULE must be five crontab fields, e.g. '0 3 * * *'"
        ) from None
    CELERY_BEAT_SCHEDULE["retrain-if-data-changed"] = {
        "task": "training.tasks.retrain_if_data_changed",
        "schedule": crontab(_minute, _hour, _day, _month, _weekday),
    }
if FACEWEB_PREDICTION_RETENTION_DAYS:
    CELERY_BEAT_SCHEDULE["purge-expired-predictions"] = {
        "task": "identities.tasks.purge_expired_predictions",
        "schedule": 3600.0,
    }
# Photos a process killed mid-upload left without a row (identities.housekeeping).
CELERY_BEAT_SCHEDULE["remove-orphan-files"] = {
    "task": "identities.tasks.remove_orphan_files",
    "schedule": 24 * 3600.0,
}
# Queued jobs and imports whose message a broker restart lost are sent again (a second
# delivery does nothing twice).
CELERY_BEAT_SCHEDULE["requeue-lost-jobs"] = {
    "task": "training.tasks.requeue_lost_jobs",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["requeue-lost-imports"] = {
    "task": "imports.tasks.requeue_lost_imports",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["requeue-lost-batches"] = {
    "task": "identities.tasks.requeue_lost_batches",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_ANNOTATIONS = {
    "training.tasks.run_training_job": {
        "soft_time_limit": FACEWEB_TRAINING_SOFT_TIME_LIMIT,
        "time_limit": FACEWEB_TRAINING_TIME_LIMIT,
    }
}
# Activate a new model version automatically (see training.jobs.maybe_activate).
FACEWEB_AUTO_ACTIVATE = env_bool("FACEWEB_AUTO_ACTIVATE", True)

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "identify": env_str("FACEWEB_IDENTIFY_RATE", "120/min"),
    },
    # Throttles count clients by the address the trusted proxy saw (accounts.addresses).
    "NUM_PROXIES": FACEWEB_TRUSTED_PROXIES or None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "faceweb API",
    "DESCRIPTION": "Identities, their photos, training jobs, model versions and identification.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Separate request and response components: an upload is a binary file in a request and
    # read-only fields are left out of it, so a client generated from the schema can send.
    "COMPONENT_SPLIT_REQUEST": True,
    # api.urls' converter of ids in paths.
    "PATH_CONVERTER_OVERRIDES": {
        "int64": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
    },
    # Swagger UI from the installed package, so the docs page works without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
