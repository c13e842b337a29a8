"""The SMS web service: health endpoints, the v1 API, uploads and their signed download links, metrics."""

import hashlib
import os
import re
import sys
import time
import uuid
from datetime import UTC, date, datetime

from flask import Flask, Response, g, jsonify, request, send_file
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.utils import secure_filename

from . import APP_VERSION, BROKEN, REVISIONS, expected_head
from .db import make_engine, make_session_factory, ping
from .models import ATTENDANCE_STATUSES, Attendance, Course, Grade, Student, Upload
from .observability import Metrics, RateLimiter, access_log
from .seed import letter_for
from .signing import MAX_LINK_SECONDS, LinkError, make_token, read_token

EXEMPT = ("/health", "/metrics")
# A download link's token is a credential: the access log shows this prefix and *** instead of it.
FILES = "/api/v1/files/"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BadRequest(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


# A connection ended by the server (a restore's swap ends the sessions of the database it renames).
CUT_MESSAGES = ("terminating connection due to administrator command", "server closed the connection unexpectedly",
                "Lost connection to", "MySQL server has gone away", "Connection was killed")
# The database cannot be reached or went away (stopped, restarting, its host unknown): the request may work in a
# moment, so it is answered 503 with Retry-After (a load balancer, a client or health.yml tells it from a bug), not
# 500. Connection errors only: SQLite's "no such table" is an OperationalError too and stays a 500.
UNAVAILABLE_MESSAGES = CUT_MESSAGES + (
    "could not connect to server", "Connection refused", "could not translate host name", "connection to server at",
    "the database system is starting up", "the database system is shutting down", "is not currently accepting",
    "Can't connect to MySQL server", "No route to host", "timeout expired")
UNAVAILABLE_RETRY_AFTER_S = 5


def database_unavailable(exc):
    """True when ``exc`` says the database could not be reached, not that a statement failed."""
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated
                                            or any(m in str(exc) for m in UNAVAILABLE_MESSAGES))


class SMSFlask(Flask):
    """Flask, answering a read again once when its database connection was cut under it.

    A restore swaps the database in under its name and ends the sessions of the old one; a request that had just
    taken a pooled connection then loses it mid-query. A GET or HEAD changes nothing, so it runs again, once, on a
    fresh session (the pool reconnects, waiting through the swap); anything else fails as before.

    Also when the connection was ended while it was being set up (the swap ends every session it finds, one that
    connected a moment before the database stopped taking connections included): the driver's OperationalError
    then comes from the pool's connect, which SQLAlchemy does not mark as invalidated.
    """

    def dispatch_request(self):
        try:
            return super().dispatch_request()
        except DBAPIError as exc:
            cut = exc.connection_invalidated or (isinstance(exc, OperationalError)
                                                 and any(m in str(exc) for m in CUT_MESSAGES))
            if not cut or request.method not in ("GET", "HEAD") or g.get("db_retried"):
                raise
            g.db_retried = True
            g.db.close()
            g.db = self.sessions()
            return super().dispatch_request()


def create_app(config):
    app = SMSFlask(__name__)
    app.config["SECRET_KEY"] = config.secret_key
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes
    app.json.sort_keys = False
    engine = make_engine(config.database_url)
    sessions = app.sessions = make_session_factory(engine)
    limiter = RateLimiter(config.rate_limit_per_minute)
    metrics = Metrics(APP_VERSION)

    def client_address():
        if config.trust_proxy and request.headers.get("X-Forwarded-For"):
            return request.headers["X-Forwarded-For"].split(",")[0].strip()
        return request.remote_addr or "-"

    @app.before_request
    def start():
        g.started = time.monotonic()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        if config.debug_delay_ms and request.path.startswith("/api/"):
            time.sleep(config.debug_delay_ms / 1000.0)  # test-only fault knob (SMS_DEBUG_DELAY_MS)
        if request.path.startswith(EXEMPT):
            return None
        wait = limiter.check(client_address())
        if wait:
            response = jsonify(error="rate limit exceeded", limit_per_minute=config.rate_limit_per_minute,
                               retry_after=wait)
            response.status_code = 429
            response.headers["Retry-After"] = str(wait)
            return response
        g.db = sessions()
        return None

    @app.teardown_request
    def close(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.after_request
    def finish(response):
        seconds = time.monotonic() - g.get("started", time.monotonic())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.observe(request.method, route, response.status_code, seconds)
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        response.headers["X-App-Version"] = APP_VERSION  # which release answered (deploys are watched by it)
        access_log({"ts": datetime.utcnow().isoformat(timespec="milliseconds") + "Z", "level": "info",
                    "request_id": g.get("request_id"), "client": client_address(), "method": request.method,
                    "path": FILES + "***" if request.path.startswith(FILES) else request.path,
                    "query": request.query_string.decode("utf-8", "replace")[:500],
                    "route": route, "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2), "bytes": response.calculate_content_length(),
                    "user_agent": request.headers.get("User-Agent", "")[:200]})
        return response

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error=exc.message), 400

    @app.errorhandler(LinkError)
    def bad_link(exc):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(Exception)
    def internal_error(exc):
        from .db import short_reason

        access_log({"ts": datetime.utcnow().isoformat(timespec="milliseconds") + "Z", "level": "error",
                    "request_id": g.get("request_id"), "path": request.path, "error": type(exc).__name__,
                    "message": short_reason(exc)}, stream=sys.stderr)
        if database_unavailable(exc):
            return (jsonify(error="database unavailable, try again shortly", request_id=g.get("request_id")), 503,
                    {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
        return jsonify(error="internal error", request_id=g.get("request_id")), 500

    @app.errorhandler(IntegrityError)
    def conflict(_exc):
        g.db.rollback()
        return jsonify(error="conflicts with an existing record (duplicate or missing reference)"), 409

    # ------------------------------------------------------------------ health
    def health_document():
        ok, latency, detail, revision = ping(engine)
        metrics.db_up = int(ok)
        checks = {"database": {"status": "ok" if ok else "error", "latency_ms": latency}}
        if detail:
            checks["database"]["detail"] = detail
        wanted = expected_head()
        if not ok:
            checks["migrations"] = {"status": "unknown", "revision": None, "expected": wanted}
        elif revision in REVISIONS and REVISIONS.index(revision) >= REVISIONS.index(wanted):
            checks["migrations"] = {"status": "ok", "revision": revision, "expected": wanted}
        else:
            checks["migrations"] = {"status": "error", "revision": revision, "expected": wanted,
                                    "detail": "schema at %s, this release needs %s; run sms-app migrate"
                                    % (revision, wanted)}
        writable = os.path.isdir(config.upload_dir) and os.access(config.upload_dir, os.W_OK)
        checks["uploads"] = {"status": "ok" if writable else "error", "path": config.upload_dir}
        if not writable:
            checks["uploads"]["detail"] = "upload directory missing or not writable"
        if BROKEN:
            checks["release"] = {"status": "error", "detail": "this build is deliberately broken (test release)"}
        healthy = all(c["status"] == "ok" for c in checks.values())
        return healthy, {"status": "healthy" if healthy else "unhealthy", "checks": checks, "version": APP_VERSION}

    @app.get("/health")
    def health():
        healthy, document = health_document()
        return jsonify(document), 200 if healthy else 503

    @app.get("/health/live")
    def live():
        return jsonify(status="alive", version=APP_VERSION)

    @app.get("/health/ready")
    def ready():
        healthy, document = health_document()
        return jsonify(status="ready" if healthy else "not ready", checks=document["checks"],
                       version=APP_VERSION), 200 if healthy else 503

    @app.get("/metrics")
    def prometheus():
        metrics.db_up = int(ping(engine)[0])  # fresh on every scrape, not only when /health was asked
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ API helpers
    def page_of(query, serialize):
        page = _int_arg("page", 1, minimum=1)
        per_page = min(_int_arg("per_page", 20, minimum=1), 100)
        total = g.db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = g.db.scalars(query.limit(per_page).offset((page - 1) * per_page))
        return jsonify(items=[serialize(r) for r in rows], page=page, per_page=per_page, total=total)

    def create(obj):
        g.db.add(obj)
        g.db.commit()
        return jsonify(obj.as_dict()), 201

    # ------------------------------------------------------------------ students
    @app.get("/api/v1/students")
    def list_students():
        query = select(Student).order_by(Student.id)
        if request.args.get("grade_level"):
            query = query.where(Student.grade_level == _int_arg("grade_level", 0))
        return page_of(query, Student.as_dict)

    @app.get("/api/v1/students/<int:student_id>")
    def get_student(student_id):
        return jsonify(_get_or_404(Student, student_id).as_dict())

    @app.post("/api/v1/students")
    def create_student():
        data = _json_body()
        student = Student(
            student_number=_text(data, "student_number", 20), first_name=_text(data, "first_name", 100),
            last_name=_text(data, "last_name", 100), email=_email(data),
            grade_level=_number(data, "grade_level", 1, 13),
            enrolled_on=_date(data, "enrolled_on", default=date.today()))
        if hasattr(Student, "full_name"):
            student.full_name = "%s %s" % (student.first_name, student.last_name)
        return create(student)

    # ------------------------------------------------------------------ courses
    @app.get("/api/v1/courses")
    def list_courses():
        return page_of(select(Course).order_by(Course.code), Course.as_dict)

    @app.post("/api/v1/courses")
    def create_course():
        data = _json_body()
        return create(Course(code=_text(data, "code", 20), title=_text(data, "title", 200),
                             credits=_number(data, "credits", 0, 10)))

    # ------------------------------------------------------------------ grades
    @app.get("/api/v1/grades")
    def list_grades():
        query = select(Grade).order_by(Grade.id)
        for field in ("student_id", "course_id"):
            if request.args.get(field):
                query = query.where(getattr(Grade, field) == _int_arg(field, 0))
        return page_of(query, Grade.as_dict)

    @app.post("/api/v1/grades")
    def create_grade():
        data = _json_body()
        score = _number(data, "score", 0, 100, kind=float)
        student, course = _get_or_400(Student, data, "student_id"), _get_or_400(Course, data, "course_id")
        return create(Grade(student_id=student.id, course_id=course.id, term=_text(data, "term", 20),
                            score=round(score, 2), letter=letter_for(score)))

    # ------------------------------------------------------------------ attendance
    @app.get("/api/v1/attendance")
    def list_attendance():
        query = select(Attendance).order_by(Attendance.day, Attendance.id)
        for field in ("student_id", "course_id"):
            if request.args.get(field):
                query = query.where(getattr(Attendance, field) == _int_arg(field, 0))
        if request.args.get("day"):
            query = query.where(Attendance.day == _date(request.args, "day"))
        return page_of(query, Attendance.as_dict)

    @app.post("/api/v1/attendance")
    def create_attendance():
        data = _json_body()
        status = _text(data, "status", 10)
        if status not in ATTENDANCE_STATUSES:
            raise BadRequest("status must be one of %s" % ", ".join(ATTENDANCE_STATUSES))
        student, course = _get_or_400(Student, data, "student_id"), _get_or_400(Course, data, "course_id")
        return create(Attendance(student_id=student.id, course_id=course.id, day=_date(data, "day"), status=status))

    # ------------------------------------------------------------------ uploads
    @app.get("/api/v1/students/<int:student_id>/uploads")
    def list_uploads(student_id):
        _get_or_404(Student, student_id)
        return page_of(select(Upload).where(Upload.student_id == student_id).order_by(Upload.id), Upload.as_dict)

    @app.post("/api/v1/students/<int:student_id>/uploads")
    def upload(student_id):
        _get_or_404(Student, student_id)
        incoming = request.files.get("file")
        if incoming is None or not incoming.filename:
            raise BadRequest("send the file as multipart form field 'file'")
        filename = secure_filename(incoming.filename)[:255] or "upload"
        stored_name = uuid.uuid4().hex + os.path.splitext(filename)[1][:10]
        final = os.path.join(config.upload_dir, stored_name)
        temp = final + ".part"
        digest, size = hashlib.sha256(), 0
        with open(temp, "wb") as out:
            for chunk in iter(lambda: incoming.stream.read(1 << 16), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
        return create(Upload(student_id=student_id, filename=filename, stored_name=stored_name, size=size,
                             sha256=digest.hexdigest(),
                             content_type=(incoming.mimetype or "application/octet-stream")[:100]))

    # A signed, time-limited link to one upload (signing.py): whoever holds it may download that file until it
    # expires, without other credentials. Signed with SECRET_KEY; accepted with the unexpired SECRET_KEY_FALLBACKS
    # too, so a key rotation leaves the links already handed out working for its grace period.
    @app.post("/api/v1/students/<int:student_id>/uploads/<int:upload_id>/link")
    def upload_link(student_id, upload_id):
        _get_or_404(Student, student_id)
        found = g.db.get(Upload, upload_id)
        if found is None or found.student_id != student_id:
            return _abort(404, "upload %s of student %s not found" % (upload_id, student_id))
        data = request.get_json(silent=True) if request.content_length else {}
        if not isinstance(data, dict):
            raise BadRequest("send nothing, or a JSON object like {\"expires_in\": 600}")
        seconds = min(config.download_link_seconds, MAX_LINK_SECONDS)
        if data.get("expires_in") is not None:
            seconds = _number(data, "expires_in", 1, MAX_LINK_SECONDS)
        token, expires = make_token(config, found, seconds)
        return jsonify(upload_id=found.id, path=FILES + token, expires_in=seconds,
                       expires_at=datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")), 201

    @app.get(FILES + "<token>")
    def download(token):
        upload_id, stored_name = read_token(config, token)
        found = g.db.get(Upload, upload_id)
        path = os.path.join(config.upload_dir, found.stored_name) if found is not None else None
        if found is None or found.stored_name != stored_name or not os.path.isfile(path):
            return _abort(404, "the file of this link no longer exists")
        return send_file(path, mimetype=found.content_type, as_attachment=True, download_name=found.filename,
                         max_age=0)

    return app


# ---------------------------------------------------------------------- validation helpers
def _json_body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object with Content-Type: application/json")
    return data


def _text(data, field, max_length):
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("%s is required (text)" % field)
    if len(value) > max_length:
        raise BadRequest("%s is longer than %d characters" % (field, max_length))
    return value.strip()


def _email(data):
    value = _text(data, "email", 255)
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
        raise BadRequest("email is not a valid address")
    return value


def _number(data, field, minimum, maximum, kind=int):
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise BadRequest("%s is required (%s)" % (field, "whole number" if kind is int else "number"))
    if not minimum <= value <= maximum:
        raise BadRequest("%s must be between %s and %s" % (field, minimum, maximum))
    return kind(value)


def _date(data, field, default=None):
    value = data.get(field)
    if value is None and default is not None:
        return default
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest("%s must be a date like 2026-09-01" % field) from None


def _int_arg(name, default, minimum=None):
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("%s must be a whole number" % name) from None
    if minimum is not None and value < minimum:
        raise BadRequest("%s must be at least %d" % (name, minimum))
    return value


def _get_or_404(model, key):
    obj = g.db.get(model, key)
    if obj is None:
        return _abort(404, "%s %s not found" % (model.__tablename__.rstrip("s"), key))
    return obj


def _get_or_400(model, data, field):
    key = data.get(field)
    if isinstance(key, bool) or not isinstance(key, int):
        raise BadRequest("%s is required (whole number)" % field)
    obj = g.db.get(model, key)
    if obj is None:
        raise BadRequest("%s %s does not exist" % (field, key))
    return obj


def _abort(status, message):
    from flask import abort

    abort(status, description=message)
