"""The FAB auth manager's settings for a plantlake deployment (AIRFLOW__FAB__CONFIG_FILE points
here): users and passwords in the metadata database, written by `plantlake deploy users`; no
self-registration, no public role; logins rate-limited; session cookies HTTP-only and, behind
the TLS reverse proxy (deploy/proxy), sent over HTTPS only."""

import os

from flask_appbuilder.const import AUTH_DB

AUTH_TYPE = AUTH_DB
AUTH_USER_REGISTRATION = False
AUTH_ROLE_PUBLIC = None  # nobody sees anything without logging in
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = "10 per minute"
WTF_CSRF_ENABLED = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = os.environ.get("PLANTLAKE_UI_TLS", "").lower() in ("1", "true", "yes")
