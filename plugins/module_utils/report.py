# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: one document rendered as JSON, Markdown, one self-contained HTML page and Prometheus textfile metrics.

Pure rendering (stdlib only, unit-testable without Ansible) plus the two atomic writes the modules need:

* report files (``<name>.json``, ``<name>.md``, ``<name>.html``) are written under a temporary name, fsync'd and
  linked into place with ``os.link``, which refuses to replace an existing file: a report is never overwritten;
* the Prometheus textfile (node_exporter textfile collector) is written to a temporary file in the same
  directory (a name node_exporter ignores: it does not end in ``.prom``) and renamed over the previous one, so
  the collector never reads half a file.

Everything that comes from outside (host names, check names, reasons, paths, messages) is HTML-escaped in the
page and in the Markdown, and escaped per the exposition format in label values. The HTML page has no script,
loads nothing, and says so in its Content-Security-Policy.

Used by ``health_report`` (``health_document`` → ``render_*``) and ``log_audit`` (``render_audit_*``).
"""

import datetime
import html
import json
import math
import os
import re

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
STATUSES = (OK, WARNING, CRITICAL)
LEVEL = {OK: 0, WARNING: 1, CRITICAL: 2}
STAMP = "%Y%m%dT%H%M%SZ"
FORMATS = ("json", "md", "html")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MASK = "********"
REPORT_MODE = 0o640
PROM_MODE = 0o644

_SYMBOL = {OK: "\u2714", WARNING: "\u26a0", CRITICAL: "\u2716"}
_COLOR = {OK: "#1a7f37", WARNING: "#9a6700", CRITICAL: "#cf222e"}
_PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#9a6700", "#57606a")


class ReportError(Exception):
    """Something about a report is wrong; the message says what and what to do."""


# ---------------------------------------------------------------------------------------------- basics
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def isoformat(when):
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_name(prefix, when=None):
    """``<prefix>-<UTC YYYYmmddTHHMMSSZ>``, the default report name."""
    return "%s-%s" % (prefix, (when or utcnow()).astimezone(datetime.timezone.utc).strftime(STAMP))


def parse_time(value):
    """An aware UTC datetime from an ISO 8601 string (``Z`` or an offset; naive means UTC), or None."""
    if isinstance(value, datetime.datetime):
        when = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def normalize_status(value):
    """ok / warning / critical; anything else (missing, unknown, a typo) counts as critical: fail safe."""
    text = str(value or "").strip().lower()
    return text if text in LEVEL else CRITICAL


def worst(statuses):
    level = max([LEVEL[normalize_status(s)] for s in statuses] or [0])
    return STATUSES[level]


def number(value):
    """``value`` as int/float when it is a finite number (bools excluded), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value if not (isinstance(value, float) and (math.isnan(value) or math.isinf(value))) else None
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if not (math.isnan(parsed) or math.isinf(parsed)) else None


def redact(value, secrets):
    """``value`` (str, list, dict, nested) with every occurrence of each secret string replaced by a mask."""
    secrets = sorted({str(s) for s in secrets or () if s is not None and str(s) != ""}, key=len, reverse=True)
    if not secrets:
        return value
    return _redact(value, secrets)


def _redact(value, secrets):
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return dict((_redact(k, secrets), _redact(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_redact(v, secrets) for v in value]
    return value


def truncate(text, limit):
    text = str(text)
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "\u2026"


# ---------------------------------------------------------------------------------------------- health document
def _checks_of(entry):
    checks = entry.get("checks")
    if isinstance(checks, dict):  # {name: {...}} as well as [{name: ...}]
        checks = [dict(value, name=value.get("name") or key) if isinstance(value, dict) else
                  {"name": key, "status": value} for key, value in checks.items()]
    out = []
    for check in checks or []:
        if not isinstance(check, dict):
            continue
        metrics = check.get("metrics")
        out.append({"name": str(check.get("name") or check.get("kind") or "check"),
                    "kind": str(check.get("kind") or ""),
                    "status": normalize_status(check.get("status")),
                    "reason": "" if check.get("reason") is None else str(check.get("reason")),
                    "metrics": dict(metrics) if isinstance(metrics, dict) else {}})
    return out


def _host(entry, index):
    if not isinstance(entry, dict):
        entry = {"msg": "not a health_check result: %s" % truncate(repr(entry), 200)}
    host = str(entry.get("host") or entry.get("inventory_hostname") or "host-%d" % (index + 1))
    checks = _checks_of(entry)
    if not checks and (entry.get("failed") or entry.get("unreachable") or entry.get("msg")
                       or not entry.get("status")):
        reason = entry.get("msg") or "no check results (the health check did not run?)"
        checks.append({"name": "health_check", "kind": "", "status": CRITICAL, "reason": str(reason),
                       "metrics": {}})
    statuses = [c["status"] for c in checks]
    if entry.get("status"):
        statuses.append(normalize_status(entry.get("status")))
    if entry.get("failed") or entry.get("unreachable"):
        statuses.append(CRITICAL)
    summary = dict((s, sum(1 for c in checks if c["status"] == s)) for s in STATUSES)
    # Worst first, then as given: the eye lands on what is wrong.
    ordered = sorted(checks, key=lambda c: -LEVEL[c["status"]])
    return {"host": host, "status": worst(statuses), "checked_at": entry.get("checked_at"),
            "checks": ordered, "summary": summary}


def _history_point(at, host):
    newest = [number(c["metrics"].get("newest_age_s")) for c in host["checks"] if c["kind"] == "backup"]
    newest = [n for n in newest if n is not None]
    p95 = [number(c["metrics"].get("p95_ms")) for c in host["checks"] if c["kind"] == "http"]
    p95 = [n for n in p95 if n is not None]
    return {"at": at, "host": host["host"], "newest_backup_age_s": min(newest) if newest else None,
            "p95_ms": max(p95) if p95 else None, "status": host["status"]}


def normalize_history(history):
    """Entries with a host and a parseable ``at``, oldest first; other entries are dropped."""
    out = []
    for entry in history or []:
        if not isinstance(entry, dict) or not entry.get("host"):
            continue
        when = parse_time(entry.get("at"))
        if when is None:
            continue
        out.append({"at": isoformat(when), "host": str(entry["host"]),
                    "newest_backup_age_s": number(entry.get("newest_backup_age_s")),
                    "p95_ms": number(entry.get("p95_ms")),
                    "status": normalize_status(entry.get("status")) if entry.get("status") else None})
    return sorted(out, key=lambda e: (e["at"], e["host"]))


def normalize_sizes(sizes):
    """Database sizes over time (the maintenance report's capacity chart): ``[{at, host, bytes}]`` with a host, a
    parseable time and a number, oldest first; other entries are dropped."""
    out = []
    for entry in sizes or []:
        if not isinstance(entry, dict) or not entry.get("host"):
            continue
        when, size = parse_time(entry.get("at")), number(entry.get("bytes"))
        if when is not None and size is not None:
            out.append({"at": isoformat(when), "host": str(entry["host"]), "bytes": size})
    return sorted(out, key=lambda e: (e["at"], e["host"]))


def health_document(results, history=None, title=None, generated_at=None, secrets=(), sizes=None):
    """The health report as one dict: hosts (worst first), their checks, overall status and counts.

    ``results`` are ``health_check`` results (one per host); ``history`` earlier runs' points for the charts;
    ``sizes`` database sizes over time (the maintenance report's chart). ``secrets`` are masked everywhere before
    anything is rendered.
    """
    generated_at = generated_at or utcnow()
    results = redact(list(results or []), secrets)
    hosts = [_host(entry, i) for i, entry in enumerate(results)]
    hosts.sort(key=lambda h: (-LEVEL[h["status"]], h["host"]))
    at = isoformat(generated_at)
    counts = {
        "hosts": dict([(s, sum(1 for h in hosts if h["status"] == s)) for s in STATUSES] + [("total", len(hosts))]),
        "checks": dict([(s, sum(h["summary"][s] for h in hosts)) for s in STATUSES]
                       + [("total", sum(len(h["checks"]) for h in hosts))]),
    }
    status = worst([h["status"] for h in hosts])
    failing = ["%s: %s %s%s" % (h["host"], c["name"], c["status"], (" (%s)" % c["reason"]) if c["reason"] else "")
               for h in hosts for c in h["checks"] if c["status"] != OK]
    return {
        "kind": "health",
        "title": redact(title or "Rollcall health report", secrets),
        "generated_at": at,
        "status": status,
        "critical": status == CRITICAL,
        "counts": counts,
        "failing": failing,
        "hosts": hosts,
        "history_entries": [_history_point(at, h) for h in hosts],
        "history": redact(normalize_history(history), secrets),
        "sizes": redact(normalize_sizes(sizes), secrets),
    }


# ---------------------------------------------------------------------------------------------- formatting helpers
def esc(value):
    """HTML-escape anything (quotes too: safe in text and in attribute values)."""
    return html.escape("" if value is None else str(value), quote=True)


def md_cell(value):
    """A Markdown table cell: HTML-escaped (renderers pass raw HTML through), pipes and newlines neutralised."""
    text = esc(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text.replace("`", "\\`")


def md_table(headers, rows):
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines.extend("| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def fmt_number(value, digits=1):
    value = number(value)
    if value is None:
        return "\u2013"
    if abs(value - round(value)) < 1e-9:
        return "%d" % round(value)
    return ("%%.%df" % digits) % value


def axis_digits(highest, fractions=(0, 0.5, 1)):
    """Decimal places that keep the axis labels 0, highest/2, highest apart (0.06 h and 0.12 h, not 0.1 twice)."""
    for digits in range(1, 7):
        if len({fmt_number(highest * f, digits) for f in fractions}) == len(fractions):
            return digits
    return 6


def fmt_duration(seconds):
    seconds = number(seconds)
    if seconds is None:
        return "\u2013"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return "%s %s" % (fmt_number(seconds / size), unit)
    return "%s s" % fmt_number(seconds)


_METRIC_FORMAT = (
    ("p50_ms", "p50 %s ms"), ("p95_ms", "p95 %s ms"), ("p99_ms", "p99 %s ms"), ("error_rate", "errors %s"),
    ("samples", "%s samples"), ("running", "running %s"), ("restart_count", "%s restarts"),
    ("active_connections", "%s connections"), ("max_connections", "max %s"), ("long_queries", "%s long queries"),
    ("used_percent", "%s %% used"), ("newest_age_s", "newest %s"), ("newest_verified_age_s", "verified %s"),
    ("error_lines", "%s error lines"), ("days_left", "%s days left"),
)


def metrics_summary(metrics):
    """A short, human line of a check's metrics (known keys first, nicely formatted; others as key=value)."""
    parts, seen = [], set()
    for key, template in _METRIC_FORMAT:
        if key not in metrics or metrics[key] is None:
            continue
        seen.add(key)
        value = metrics[key]
        if key.endswith("_age_s"):
            text = fmt_duration(value)
        elif key == "error_rate":
            rate = number(value)
            text = "\u2013" if rate is None else ("%s %%" % fmt_number(rate * 100 if rate <= 1 else rate, 2))
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = fmt_number(value) if number(value) is not None else str(value)
        parts.append(template % text)
    for key in sorted(k for k in metrics if k not in seen and not isinstance(metrics[k], (dict, list))):
        if metrics[key] is not None:
            parts.append("%s=%s" % (key, truncate(metrics[key], 60)))
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------- html
CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#57606a;margin:0 0 12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #d8dee4;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;min-width:88px;padding:2px 8px;border-radius:12px;font-weight:700;font-size:12px;
letter-spacing:.03em;color:#fff;text-align:center;white-space:nowrap}
.st-ok .badge,.badge.st-ok{background:#1a7f37}.st-warning .badge,.badge.st-warning{background:#9a6700}
.st-critical .badge,.badge.st-critical{background:#cf222e}
tr.st-warning td{background:#fff8c5}tr.st-critical td{background:#ffebe9}
.overall{font-size:20px;padding:10px 16px;border-radius:8px;color:#fff;display:inline-block;font-weight:700}
.overall.st-ok{background:#1a7f37}.overall.st-warning{background:#9a6700}.overall.st-critical{background:#cf222e}
.counts span{margin-right:14px}.reason{word-break:break-word}.metrics{color:#57606a;font-size:12px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
svg{max-width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#1f2328}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:12px}
footer{color:#57606a;font-size:12px;margin:24px 0}
@media print{body{background:#fff}.card{border:none}}
"""


def badge(status):
    status = normalize_status(status)
    return '<span class="badge st-%s">%s %s</span>' % (status, _SYMBOL[status], status.upper())


def html_table(headers, rows, numeric=(), row_classes=None, raw=()):
    """A table; cells are escaped unless their column index is in ``raw`` (pre-rendered, already escaped)."""
    head = "".join('<th%s>%s</th>' % (' class="num"' if i in numeric else "", esc(h)) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = (row_classes[r] if row_classes else "") or ""
        cells = "".join('<td%s>%s</td>' % (' class="num"' if i in numeric else "", c if i in raw else esc(c))
                        for i, c in enumerate(row))
        body.append('<tr%s>%s</tr>' % (' class="%s"' % esc(cls) if cls else "", cells))
    return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (head, "".join(body))


def html_page(title, body, generated_at=None):
    """One self-contained page: inline CSS, no script, nothing loaded from anywhere (enforced by CSP)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<title>%s</title><style>%s</style></head><body><main>\n%s\n<footer>Generated by rollcall.ops%s."
            "</footer></main></body></html>\n"
            % (esc(title), CSS, body, (" at " + esc(generated_at)) if generated_at else ""))


def svg_bars(rows, series, unit="", title="", width=640):
    """Horizontal grouped bars: ``rows`` = [(label, [value per series])]; None values are left out."""
    rows = [(label, [number(v) for v in values]) for label, values in rows]
    values = [v for label, vs in rows for v in vs if v is not None]
    if not rows or not values:
        return ""
    top = max(values) or 1.0
    label_w, pad, bar_h, gap, legend_h = 190, 8, 11, 10, 22
    plot_w = width - label_w - 70
    group_h = bar_h * len(series) + gap
    height = legend_h + group_h * len(rows) + pad
    out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" '
           'aria-label="%s"><title>%s</title>' % (width, height, width, height, esc(title), esc(title))]
    x = label_w
    for i, name in enumerate(series):
        out.append('<rect x="%d" y="4" width="10" height="10" fill="%s"/><text x="%d" y="13">%s</text>'
                   % (x, _PALETTE[i % len(_PALETTE)], x + 14, esc(name)))
        x += 14 + 8 * len(str(name)) + 16
    for r, (label, vals) in enumerate(rows):
        y0 = legend_h + r * group_h
        out.append('<text x="%d" y="%d" text-anchor="end"><title>%s</title>%s</text>'
                   % (label_w - 8, y0 + group_h // 2, esc(label), esc(truncate(label, 30))))
        for i, value in enumerate(vals):
            if value is None:
                continue
            y = y0 + i * bar_h
            w = max(1.0, plot_w * value / top)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s%s</title></rect>'
                       '<text x="%.1f" y="%d">%s%s</text>'
                       % (label_w, y, w, bar_h - 2, _PALETTE[i % len(_PALETTE)], esc(label), esc(series[i]),
                          esc(fmt_number(value)), esc(unit), label_w + w + 4, y + bar_h - 3,
                          esc(fmt_number(value)), esc(unit)))
    out.append("</svg>")
    return "".join(out)


def svg_lines(series, unit="", title="", width=640, height=220, threshold=None):
    """Lines over time: ``series`` = [(name, [(datetime, value)])]; None values are gaps."""
    points = [(name, sorted((t, number(v)) for t, v in pts if t is not None and number(v) is not None))
              for name, pts in series]
    points = [(name, pts) for name, pts in points if pts]
    if not points:
        return ""
    times = [when.timestamp() for name, pts in points for when, value in pts]
    values = [value for name, pts in points for when, value in pts] + ([threshold] if threshold is not None else [])
    t0, t1 = min(times), max(times)
    highest = max(values) or 1.0
    top = highest * 1.1
    left, right, top_pad, bottom = 56, 16, 26, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def sx(t):
        return left + (plot_w * (t.timestamp() - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)

    def sy(v):
        return top_pad + plot_h - plot_h * v / top

    out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" '
           'aria-label="%s"><title>%s</title>' % (width, height, width, height, esc(title), esc(title))]
    digits = axis_digits(highest)
    for frac in (0, 0.5, 1):
        v = highest * frac
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d8dee4"/>'
                   '<text x="%d" y="%.1f" text-anchor="end">%s%s</text>'
                   % (left, left + plot_w, sy(v), sy(v), left - 4, sy(v) + 4, esc(fmt_number(v, digits)), esc(unit)))
    first = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc)
    last = datetime.datetime.fromtimestamp(t1, datetime.timezone.utc)
    out.append('<text x="%d" y="%d">%s</text>' % (left, height - 8, esc(isoformat(first)[:16].replace("T", " "))))
    if t1 > t0:
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                   % (left + plot_w, height - 8, esc(isoformat(last)[:16].replace("T", " "))))
    if threshold is not None:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#cf222e" stroke-dasharray="4 3"/>'
                   % (left, left + plot_w, sy(threshold), sy(threshold)))
    x = left
    for i, (name, pts) in enumerate(points):
        color = _PALETTE[i % len(_PALETTE)]
        out.append('<rect x="%d" y="6" width="10" height="10" fill="%s"/><text x="%d" y="15">%s</text>'
                   % (x, color, x + 14, esc(truncate(name, 24))))
        x += 14 + 7 * len(truncate(name, 24)) + 16
        if len(pts) > 1:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (color, " ".join("%.1f,%.1f" % (sx(t), sy(v)) for t, v in pts)))
        for t, v in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s %s: %s%s</title></circle>'
                       % (sx(t), sy(v), color, esc(name), esc(isoformat(t)), esc(fmt_number(v)), esc(unit)))
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------- health renderers
def _counts_line(counts):
    return ", ".join("%d %s" % (counts.get(s, 0), s) for s in STATUSES)


def render_json(doc):
    document = dict((k, v) for k, v in doc.items() if k not in ("history", "sizes"))
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def render_markdown(doc):
    out = ["# %s" % md_cell(doc["title"]), "",
           "Generated %s. Overall status: **%s**. Hosts: %s. Checks: %s."
           % (md_cell(doc["generated_at"]), doc["status"].upper(), _counts_line(doc["counts"]["hosts"]),
              _counts_line(doc["counts"]["checks"])), ""]
    out.append(md_table(["host", "status", "ok", "warning", "critical"],
                        [[h["host"], h["status"].upper(), h["summary"][OK], h["summary"][WARNING],
                          h["summary"][CRITICAL]] for h in doc["hosts"]]))
    for host in doc["hosts"]:
        out += ["", "## %s \u2014 %s" % (md_cell(host["host"]), host["status"].upper()), ""]
        out.append(md_table(["check", "status", "reason"],
                            [[c["name"], c["status"].upper(), c["reason"]] for c in host["checks"]]))
    return "\n".join(out) + "\n"


def _latency_chart(host):
    rows = [(c["name"], [c["metrics"].get(k) for k in ("p50_ms", "p95_ms", "p99_ms")])
            for c in host["checks"] if c["kind"] == "http"]
    return svg_bars(rows, ["p50", "p95", "p99"], unit=" ms", title="HTTP latency per endpoint, %s" % host["host"])


def _history_charts(doc):
    points = normalize_history(list(doc.get("history") or []) + list(doc.get("history_entries") or []))
    if not doc.get("history"):
        return []
    charts = []
    by_host = {}
    for p in points:
        by_host.setdefault(p["host"], []).append(p)
    backup = [(host, [(parse_time(p["at"]), None if p["newest_backup_age_s"] is None
                       else p["newest_backup_age_s"] / 3600.0) for p in pts]) for host, pts in sorted(by_host.items())]
    svg = svg_lines(backup, unit=" h", title="Newest backup age (hours)")
    if svg:
        charts.append(("Newest backup age (hours)", svg))
    latency = [(host, [(parse_time(p["at"]), p["p95_ms"]) for p in pts]) for host, pts in sorted(by_host.items())]
    svg = svg_lines(latency, unit=" ms", title="HTTP p95 latency (ms, slowest endpoint)")
    if svg:
        charts.append(("HTTP p95 latency (slowest endpoint)", svg))
    return charts


def _size_chart(doc):
    """Database size per host over time (MiB), from the document's ``sizes``; "" when there are none."""
    by_host = {}
    for p in normalize_sizes(doc.get("sizes")):
        by_host.setdefault(p["host"], []).append((parse_time(p["at"]), p["bytes"] / 1048576.0))
    return svg_lines(sorted(by_host.items()), unit=" MiB", title="Database size (MiB)")


def render_html(doc):
    counts = doc["counts"]
    parts = ['<h1>%s</h1><p class="meta">Generated %s</p>' % (esc(doc["title"]), esc(doc["generated_at"])),
             '<div class="overall st-%s">%s Overall: %s</div>'
             % (doc["status"], _SYMBOL[doc["status"]], doc["status"].upper()),
             '<p class="counts"><span>Hosts: %s</span><span>Checks: %s</span></p>'
             % (esc(_counts_line(counts["hosts"])), esc(_counts_line(counts["checks"])))]
    rows, classes = [], []
    for i, h in enumerate(doc["hosts"]):
        bad = ", ".join(c["name"] for c in h["checks"] if c["status"] != OK)
        rows.append(['<a href="#host-%d">%s</a>' % (i, esc(h["host"])), badge(h["status"]), h["summary"][OK],
                     h["summary"][WARNING], h["summary"][CRITICAL], bad or "\u2013"])
        classes.append("st-" + h["status"])
    parts.append('<section class="card"><h2>Hosts</h2>%s</section>'
                 % html_table(["host", "status", "ok", "warning", "critical", "not ok"], rows, numeric=(2, 3, 4),
                              row_classes=classes, raw=(0, 1)))
    for i, h in enumerate(doc["hosts"]):
        rows = [[c["name"], c["kind"] or "\u2013", badge(c["status"]), c["reason"] or "\u2013",
                 metrics_summary(c["metrics"])] for c in h["checks"]]
        section = ['<section class="card" id="host-%d"><h2>%s %s</h2>' % (i, esc(h["host"]), badge(h["status"]))]
        if h.get("checked_at"):
            section.append('<p class="meta">Checked at %s</p>' % esc(h["checked_at"]))
        section.append(html_table(["check", "kind", "status", "reason", "metrics"], rows, raw=(2,),
                                  row_classes=["st-" + c["status"] for c in h["checks"]]))
        chart = _latency_chart(h)
        if chart:
            section.append("<h3>HTTP latency per endpoint</h3>" + chart)
        section.append("</section>")
        parts.append("".join(section))
    charts = _history_charts(doc)
    sizes = _size_chart(doc)
    if sizes:
        charts.append(("Database size (MiB)", sizes))
    if charts:
        parts.append('<section class="card"><h2>History</h2><div class="charts">%s</div></section>'
                     % "".join("<div><h3>%s</h3>%s</div>" % (esc(t), svg) for t, svg in charts))
    return html_page(doc["title"], "\n".join(parts), doc["generated_at"])


# ---------------------------------------------------------------------------------------------- prometheus
def prom_label_value(value):
    """A label value escaped per the exposition format: backslash, double quote and line feed."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prom_help(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n")


def prom_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return "%d" % value
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class Metrics(object):
    """Collects samples; renders each family once with ``# HELP`` / ``# TYPE``, duplicates dropped (first wins)."""

    def __init__(self):
        self.families = []
        self.by_name = {}

    def add(self, name, help_text, labels, value, kind="gauge"):
        if value is None or (not isinstance(value, bool) and number(value) is None):
            return
        family = self.by_name.get(name)
        if family is None:
            family = {"name": name, "help": help_text, "type": kind, "samples": [], "seen": set()}
            self.by_name[name] = family
            self.families.append(family)
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        if key in family["seen"]:
            return
        family["seen"].add(key)
        family["samples"].append((labels, value))

    def render(self):
        out = []
        for family in self.families:
            out.append("# HELP %s %s" % (family["name"], prom_help(family["help"])))
            out.append("# TYPE %s %s" % (family["name"], family["type"]))
            for labels, value in family["samples"]:
                text = ",".join('%s="%s"' % (k, prom_label_value(v)) for k, v in labels.items())
                out.append("%s%s %s" % (family["name"], "{%s}" % text if text else "", prom_value(value)))
        return "\n".join(out) + "\n"


def render_prometheus(doc):
    metrics = Metrics()
    generated = parse_time(doc["generated_at"])
    metrics.add("rollcall_health_report_timestamp_seconds", "When the health report was generated (Unix time).",
                {}, int(generated.timestamp()) if generated else None)
    for h in doc["hosts"]:
        metrics.add("rollcall_health_status", "Overall health of the host: 0 ok, 1 warning, 2 critical.",
                    {"host": h["host"]}, LEVEL[h["status"]])
    for h in doc["hosts"]:
        for c in h["checks"]:
            metrics.add("rollcall_check_status", "State of one health check: 0 ok, 1 warning, 2 critical.",
                        {"host": h["host"], "check": c["name"], "kind": c["kind"]}, LEVEL[c["status"]])
    families = (
        ("backup", "newest_age_s", "rollcall_backup_newest_age_seconds", "Age of the newest backup in seconds.",
         "check", 1),
        ("backup", "newest_verified_age_s", "rollcall_backup_newest_verified_age_seconds",
         "Age of the newest backup whose latest verification passed, in seconds.", "check", 1),
        ("backup", "newest_verify_passed", "rollcall_backup_newest_verify_passed",
         "1 when the newest backup's latest verification passed, 0 when it failed or never ran.", "check", 1),
        ("backup", "newest_verify_failed", "rollcall_backup_newest_verify_failed",
         "1 when the newest backup's latest verification failed (not when it never ran or could not run).", "check",
         1),
        ("http", "p95_ms", "rollcall_http_latency_p95_seconds", "95th percentile of the sampled HTTP latency.",
         "endpoint", 0.001),
        ("http", "error_rate", "rollcall_http_error_ratio", "Share of the sampled HTTP requests that failed (0-1).",
         "endpoint", 1),
        ("container", "restart_count", "rollcall_container_restarts", "Restart count of the container.",
         "container", 1),
        ("tls", "days_left", "rollcall_tls_certificate_days_left", "Days until the TLS certificate expires.",
         "check", 1),
        ("lock", "held_s", "rollcall_deploy_lock_held_seconds",
         "Seconds the deploy lock has been held (0 when free).", "check", 1),
        ("database", "archive_failing", "rollcall_wal_archive_failing",
         "1 while PostgreSQL's WAL archiving fails (point-in-time recovery), else 0.", "check", 1),
        ("database", "binlog_unshipped_s", "rollcall_binlog_unshipped_seconds",
         "Age of the oldest change MariaDB's binary log archive does not hold yet, in seconds (0 when none).",
         "check", 1),
    )
    for kind, key, name, help_text, label, scale in families:
        for h in doc["hosts"]:
            for c in h["checks"]:
                value = number(c["metrics"].get(key)) if c["kind"] == kind else None
                if value is None:
                    continue
                if key == "error_rate" and value > 1:
                    value = value / 100.0  # given in percent
                metrics.add(name, help_text, {"host": h["host"], label: c["name"]},
                            value * scale if scale != 1 else value)
    return metrics.render()


def render_maintenance_prometheus(doc):
    """The maintenance report (issue 15; a health-shaped document of maintenance and diagnostics findings) as its
    own metric families, so its textfile sits next to the health one without a name clash."""
    metrics = Metrics()
    generated = parse_time(doc["generated_at"])
    metrics.add("rollcall_maintenance_report_timestamp_seconds", "When the maintenance report was generated.", {},
                int(generated.timestamp()) if generated else None)
    for h in doc["hosts"]:
        metrics.add("rollcall_maintenance_status", "Overall maintenance status: 0 ok, 1 warning, 2 critical.",
                    {"host": h["host"]}, LEVEL[h["status"]])
    for h in doc["hosts"]:
        for c in h["checks"]:
            metrics.add("rollcall_maintenance_check_status", "One maintenance finding: 0 ok, 1 warning, 2 critical.",
                        {"host": h["host"], "check": c["name"], "kind": c["kind"]}, LEVEL[c["status"]])
    for h in doc["hosts"]:
        for c in h["checks"]:
            for key in sorted(c["metrics"]):
                metrics.add("rollcall_maintenance_figure", "A figure of a maintenance finding (its name in figure).",
                            {"host": h["host"], "check": c["name"], "figure": key}, number(c["metrics"][key]))
    return metrics.render()


# ---------------------------------------------------------------------------------------------- job results
JOB_SUCCESS = "rollcall_job_last_success_timestamp_seconds"


def job_textfile_name(playbook):
    """``rollcall_job_<playbook>.prom``: one file per playbook, so each run replaces only its own numbers."""
    return "rollcall_job_%s.prom" % re.sub(r"[^A-Za-z0-9_]", "_", str(playbook))


def previous_success(text, playbook):
    """The last success time recorded in a previous job textfile for ``playbook`` (None when there is none)."""
    pattern = r'^%s\{playbook="%s"\} (\S+)$' % (JOB_SUCCESS, re.escape(prom_label_value(playbook)))
    match = re.search(pattern, text or "", re.M)
    value = number(match.group(1)) if match else None
    return int(value) if value is not None and value == int(value) else value


def render_job_metrics(playbook, status, finished, previous_text="", duration=None):
    """Prometheus textfile of one playbook run (issue 16 item 5): when it ran, whether it passed, the last time it
    passed (kept from ``previous_text`` when this run failed) and, when known, how long it took."""
    ok = normalize_job_status(status)
    when = int(finished)
    labels = {"playbook": playbook}
    metrics = Metrics()
    metrics.add("rollcall_job_last_run_timestamp_seconds", "When the playbook last finished (Unix time).", labels,
                when)
    metrics.add("rollcall_job_last_run_ok", "1 when the playbook's last run passed on every host, 0 when not.",
                labels, ok)
    metrics.add(JOB_SUCCESS, "When the playbook last passed on every host (Unix time).", labels,
                when if ok else previous_success(previous_text, playbook))
    metrics.add("rollcall_job_last_run_duration_seconds", "How long the playbook's last run took.", labels,
                duration)
    return metrics.render()


def normalize_job_status(status):
    if status not in ("ok", "failed"):
        raise ReportError("a job's status is ok or failed, not %r" % (status,))
    return status == "ok"


# ---------------------------------------------------------------------------------------------- audit renderers
def _top_rows(items, *keys):
    return [[item.get(k) for k in keys] for item in items or []]


def render_audit_json(doc):
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render_audit_markdown(doc):
    w = doc["window"]
    out = ["# %s" % md_cell(doc["title"]), "",
           "Window %s \u2192 %s (source: %s). Generated %s." % (md_cell(w["since"]), md_cell(w["until"]),
                                                                md_cell(doc.get("source") or "\u2013"),
                                                                md_cell(doc["generated_at"])), ""]
    out.append(md_table(["measure", "count"], _audit_totals(doc)))
    sections = (
        ("SQL-injection attempts: top clients", ["client", "requests"], _top_rows(doc["sqli"]["top_clients"],
                                                                                  "client", "count")),
        ("SQL-injection attempts: samples", ["client", "pattern", "status", "path"],
         _top_rows(doc["sqli"]["samples"], "client", "pattern", "status", "path")),
        ("401/403 by client", ["client", "401", "403", "total"],
         _top_rows(doc["auth_failures_by_client"], "client", "unauthorized", "forbidden", "count")),
        ("429 by client", ["client", "requests"], _top_rows(doc["rate_limited_by_client"], "client", "count")),
        ("Top error messages", ["message", "count"], _top_rows(doc["top_errors"], "message", "count")),
        ("Most used endpoints", ["route", "requests"], _top_rows(doc["top_endpoints"], "route", "count")),
        ("Slowest endpoints (p95)", ["route", "p95 ms", "requests"],
         _top_rows(doc["slowest_endpoints"], "route", "p95_ms", "count")),
    )
    for title, headers, rows in sections:
        out += ["", "## %s" % title, ""]
        out.append(md_table(headers, rows) if rows else "None.")
    return "\n".join(out) + "\n"


def _audit_totals(doc):
    lines = doc["lines"]
    return [["requests", doc["requests"]], ["401 unauthorized", doc["unauthorized"]],
            ["403 forbidden", doc["forbidden"]], ["429 rate limited", doc["rate_limited"]],
            ["5xx server errors", doc["server_errors"]], ["SQL-injection patterns", doc["sqli"]["count"]],
            ["error log records", doc["error_records"]], ["lines read", lines["total"]],
            ["non-JSON lines (ignored)", lines["non_json"]], ["outside the window", lines["outside_window"]],
            ["JSON without a timestamp (ignored)", lines["no_timestamp"]]]


def render_audit_html(doc):
    w = doc["window"]
    attention = doc["server_errors"] or doc["sqli"]["count"]
    status = WARNING if attention or doc["unauthorized"] or doc["forbidden"] or doc["rate_limited"] else OK
    parts = ['<h1>%s</h1><p class="meta">Window %s \u2192 %s \u00b7 source %s \u00b7 generated %s</p>'
             % (esc(doc["title"]), esc(w["since"]), esc(w["until"]), esc(doc.get("source") or "\u2013"),
                esc(doc["generated_at"]))]
    totals = _audit_totals(doc)
    flagged = {"401 unauthorized", "403 forbidden", "429 rate limited", "5xx server errors",
               "SQL-injection patterns"}
    classes = [("st-warning" if row[0] in flagged and row[1] else "") for row in totals]
    parts.append('<section class="card"><h2>Totals %s</h2>%s</section>'
                 % (badge(status), html_table(["measure", "count"], totals, numeric=(1,), row_classes=classes)))
    classes_chart = svg_bars([(k, [v]) for k, v in sorted(doc["status_classes"].items())], ["requests"],
                             title="Requests by status class")
    if classes_chart:
        parts.append('<section class="card"><h2>Requests by status class</h2>%s</section>' % classes_chart)
    sqli = doc["sqli"]
    parts.append('<section class="card"><h2>SQL-injection attempts (%d)</h2>' % sqli["count"])
    if sqli["count"]:
        parts.append(html_table(["pattern", "requests"], sorted(sqli["patterns"].items(), key=lambda i: -i[1]),
                                numeric=(1,)))
        parts.append("<h3>Top clients</h3>" + html_table(["client", "requests"],
                                                         _top_rows(sqli["top_clients"], "client", "count"),
                                                         numeric=(1,)))
        samples = [[s.get("client"), s.get("pattern"), s.get("status"), "<code>%s</code>" % esc(s.get("path"))]
                   for s in sqli["samples"]]
        parts.append("<h3>Samples</h3>" + html_table(["client", "pattern", "status", "path"], samples, raw=(3,)))
    else:
        parts.append("<p>None.</p>")
    parts.append("</section>")
    for title, headers, rows, numeric in (
            ("401/403 by client", ["client", "401", "403", "total"],
             _top_rows(doc["auth_failures_by_client"], "client", "unauthorized", "forbidden", "count"), (1, 2, 3)),
            ("429 by client", ["client", "requests"], _top_rows(doc["rate_limited_by_client"], "client", "count"),
             (1,)),
            ("Top error messages", ["message", "count"], _top_rows(doc["top_errors"], "message", "count"), (1,))):
        parts.append('<section class="card"><h2>%s</h2>%s</section>'
                     % (esc(title), html_table(headers, rows, numeric=numeric) if rows else "<p>None.</p>"))
    used = svg_bars([(e["route"], [e["count"]]) for e in doc["top_endpoints"]], ["requests"],
                    title="Most used endpoints")
    parts.append('<section class="card"><h2>Most used endpoints</h2>%s%s</section>'
                 % (used, html_table(["route", "requests"], _top_rows(doc["top_endpoints"], "route", "count"),
                                     numeric=(1,)) if doc["top_endpoints"] else "<p>None.</p>"))
    slow = svg_bars([(e["route"], [e["p95_ms"]]) for e in doc["slowest_endpoints"]], ["p95"], unit=" ms",
                    title="Slowest endpoints (p95 ms)")
    parts.append('<section class="card"><h2>Slowest endpoints (p95)</h2>%s%s</section>'
                 % (slow, html_table(["route", "p95 ms", "requests"],
                                     _top_rows(doc["slowest_endpoints"], "route", "p95_ms", "count"),
                                     numeric=(1, 2)) if doc["slowest_endpoints"] else "<p>None.</p>"))
    return html_page(doc["title"], "\n".join(parts), doc["generated_at"])


def render_audit_prometheus(doc):
    metrics = Metrics()
    source = {"source": doc.get("source") or ""}
    generated = parse_time(doc["generated_at"])
    metrics.add("rollcall_audit_timestamp_seconds", "When the log audit ran (Unix time).", source,
                int(generated.timestamp()) if generated else None)
    for key, help_text in (("requests", "Requests in the audit window."),
                           ("unauthorized", "401 answers in the audit window."),
                           ("forbidden", "403 answers in the audit window."),
                           ("rate_limited", "429 answers in the audit window."),
                           ("server_errors", "5xx answers in the audit window."),
                           ("error_records", "Error-level log records in the audit window.")):
        metrics.add("rollcall_audit_%s" % key, help_text, source, doc[key])
    metrics.add("rollcall_audit_sqli_requests", "Requests matching SQL-injection patterns in the audit window.",
                source, doc["sqli"]["count"])
    window = [parse_time(doc["window"]["since"]), parse_time(doc["window"]["until"])]
    if all(window):
        metrics.add("rollcall_audit_window_seconds", "Length of the audit window.", source,
                    int((window[1] - window[0]).total_seconds()))
    return metrics.render()


# ---------------------------------------------------------------------------------------------- files
def check_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise ReportError("report name %r cannot be used: use letters, digits, '_', '-' or '.', starting with a "
                          "letter or digit, at most 128 characters" % (name,))
    return name


def report_paths(directory, name, formats=FORMATS):
    """``{format: path}`` of the files a report ``name`` would have in ``directory``."""
    check_name(name)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ReportError("unknown report format(s) %s; use %s" % (", ".join(unknown), ", ".join(FORMATS)))
    return dict((fmt, os.path.join(directory, "%s.%s" % (name, fmt))) for fmt in formats)


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory, basename, text, mode):
    temp = os.path.join(directory, ".%s.%d.tmp" % (basename, os.getpid()))
    handle = os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w", encoding="utf-8")
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)  # the umask may have taken bits away; the mode is what the caller asked for
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def write_new(path, text, mode=REPORT_MODE):
    """Write ``text`` to ``path`` through temp + fsync + ``os.link``: never replaces an existing file."""
    directory = os.path.dirname(path) or "."
    temp = _write_temp(directory, os.path.basename(path), text, mode)
    try:
        os.link(temp, path)
    except FileExistsError:
        raise ReportError("%s already exists; refusing to overwrite it (choose another name)" % path) from None
    finally:
        os.unlink(temp)
    _fsync_directory(directory)


def write_replace(path, text, mode=PROM_MODE):
    """Write ``text`` to ``path`` through a temp file in the same directory + fsync + rename (replaces)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise ReportError("directory %s does not exist; create it first (the node_exporter textfile directory)"
                          % directory)
    temp = _write_temp(directory, os.path.basename(path), text, mode)
    try:
        os.replace(temp, path)
    except OSError:
        os.unlink(temp)
        raise
    _fsync_directory(directory)


def write_report(directory, name, contents):
    """Write ``{format: text}`` as ``<directory>/<name>.<format>``, all new; returns ``{format: path}``.

    Refuses before writing anything when any of the files exists; removes what it wrote when a later file
    fails, so a report is complete or absent.
    """
    paths = report_paths(directory, name, list(contents))
    existing = [p for p in paths.values() if os.path.lexists(p)]
    if existing:
        raise ReportError("report %s already exists in %s (%s); refusing to overwrite it"
                          % (name, directory, ", ".join(os.path.basename(p) for p in existing)))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    written = []
    try:
        for fmt, text in contents.items():
            write_new(paths[fmt], text)
            written.append(paths[fmt])
    except BaseException:
        for path in written:
            os.unlink(path)
        raise
    return paths


def publish(doc, renderers, paths, name, directory, textfile=None, render_textfile=None, check_mode=False):
    """What both report modules do with a rendered ``doc``: the report files (``paths`` from report_paths(),
    never over an existing one) and the Prometheus textfile (replaced). Returns whether anything was (or, in
    check mode, would be) written."""
    changed = False
    if directory:
        existing = [path for path in paths.values() if os.path.lexists(path)]
        if existing:
            raise ReportError("report %s already exists (%s); refusing to overwrite it" % (name, ", ".join(existing)))
        if not check_mode:
            write_report(directory, name, dict((fmt, renderers[fmt](doc)) for fmt in paths))
        changed = True
    if textfile:
        text = render_textfile(doc)
        if not check_mode:
            write_replace(textfile, text)
        changed = True
    return changed
