"""gunicorn entry point: sms_app.wsgi:app (configuration validated by `sms-app serve` before it execs)."""

from . import config
from .app import create_app

app = create_app(config.load())
