# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times in messages: an age in words, a UTC minute, and the Docker engine's timestamps. Stdlib only and small:
docker.py imports it, so every module that reaches the engine carries it (report.py's parse_time is the general
ISO reader, too large for that)."""

import calendar
import re
import time

_DOCKER_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def age_text(seconds):
    """``42 s``, ``17 min``, ``3.5 h``."""
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 2 * 3600:
        return "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def iso_minute(epoch):
    """``2026-12-07 11:02`` (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch))


def docker_epoch(text):
    """Epoch seconds (to the microsecond, as a float) of a time as the engine writes it
    (``2026-12-07T11:02:44.123456789Z``: nanoseconds, which older Pythons' ISO parsers refuse; or an offset), None
    for anything else. The engine's "never" (``0001-01-01T00:00:00Z``) comes out far below 0."""
    match = _DOCKER_TIME.match(str(text or ""))
    if not match:
        return None
    fraction, offset = match.group(7), match.group(8) or "Z"
    shift = 0 if offset == "Z" else (1 if offset[0] == "+" else -1) * (int(offset[1:3]) * 3600 + int(offset[4:]) * 60)
    whole = calendar.timegm(tuple(int(g) for g in match.groups()[:6]) + (0, 0, 0)) - shift
    return whole + (int(fraction[:6].ljust(6, "0")) / 1e6 if fraction else 0.0)
