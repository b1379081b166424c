"""A minimal project around wiregate_events, for its tests and the gateway's end-to-end tests.
The database is PostgreSQL, from the environment (the test script starts a private cluster)."""
import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-tests")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "wiregate_events",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
if os.environ.get("WIREGATE_FAULTS"):
    MIDDLEWARE.insert(0, "testproject.faults.FaultInjection")
ROOT_URLCONF = "testproject.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "wiregate"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {"UNAUTHENTICATED_USER": None}

# Who hears of a gateway changing state (wiregate_events.health.notify), and through which server:
# the end-to-end tests point these at a private SMTP sink.
WIREGATE_ALERT_EMAILS = [a for a in os.environ.get("WIREGATE_ALERT_EMAILS", "owner@house.example").split(",") if a]
WIREGATE_ALERT_FROM = os.environ.get("WIREGATE_ALERT_FROM", "wiregate@house.example")
EMAIL_HOST = os.environ.get("WIREGATE_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("WIREGATE_SMTP_PORT", "25"))
EMAIL_TIMEOUT = 10
