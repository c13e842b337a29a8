"""Signed, time-limited download links for uploaded files.

A link carries the upload's id, its stored name and when it expires, signed (HMAC, itsdangerous) with SECRET_KEY.
It is verified with SECRET_KEY and every earlier key in SECRET_KEY_FALLBACKS whose grace period has not ended, so a
key rotation (playbooks/rotate_secret_key.yml) leaves the links people already hold working until the grace ends,
and no longer.
"""

import time

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "sms.download-link.v1"
# Longest lifetime a request may ask for (7 days); the default is the configuration's download_link_seconds.
MAX_LINK_SECONDS = 7 * 24 * 3600


class LinkError(Exception):
    """The link cannot be used: ``status`` is the HTTP status to answer, the message says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def make_token(config, upload, seconds, now=None):
    """(token, expires at in seconds since the epoch) for ``upload``, signed with the current key only."""
    now = time.time() if now is None else now
    expires = int(now + seconds)
    serializer = URLSafeSerializer([config.secret_key], salt=SALT)
    return serializer.dumps({"u": upload.id, "n": upload.stored_name, "x": expires}), expires


def read_token(config, token, now=None):
    """The link's (upload id, stored name) when a key still honoured signed it and it has not expired."""
    now = time.time() if now is None else now
    serializer = URLSafeSerializer(config.verifying_keys(now), salt=SALT)
    try:
        data = serializer.loads(token)
    except BadSignature:
        raise LinkError(403, "this download link is not valid: it was altered, or the key that signed it has been "
                             "retired; ask for a new link") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("x"), int):
        raise LinkError(403, "this download link is not valid; ask for a new link")
    if data["x"] <= now:
        raise LinkError(410, "this download link has expired; ask for a new link")
    return data["u"], data.get("n")
