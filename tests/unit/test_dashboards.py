"""The dashboards (issue 16 item 4): Prometheus console templates (roles/monitoring/files/consoles) and the same three
dashboards as Grafana JSON (docs/grafana). Every PromQL expression in them must parse (`promtool check rules` on a
throwaway rules file) and use only metrics we export or document.

The live rendering of the consoles (200, numbers on the page) is checked by tests/integration/test_monitoring.py.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "tools" / "usr" / "bin"
GRAFANA = ROOT / "docs" / "grafana"
CONSOLES = ROOT / "roles" / "monitoring" / "files" / "consoles"
LIBRARIES = ROOT / "roles" / "monitoring" / "files" / "console_libraries"
BOARDS = ("system-overview", "app-performance", "business-metrics")

# Exporter metrics the dashboards rely on (Debian's node, postgres, mysqld and blackbox exporters; Prometheus itself).
EXPORTER_METRICS = {
    "up", "ALERTS",
    "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
    "pg_up", "pg_stat_database_numbackends", "mysql_up", "mysql_global_status_threads_connected",
    "probe_success", "probe_http_status_code", "probe_duration_seconds",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan"}


def tool(name):
    path = TOOLS / name
    assert path.is_file(), "%s is missing: run `make tools` (tests/tools.sh unpacks it from Debian's package)" % path
    return str(path)


def grafana_expressions(board):
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def console_expressions(text):
    """PromQL in a console template: `query "..."`, `args "..."` / `printf "..."` (a %s becomes a label value),
    rollcall_row's second argument, and every string of a PromConsole.Graph's `expr:`."""
    found = re.findall(r'"rollcall_row" \(args "[^"]*" "([^"]*)"', text)
    text = re.sub(r'"rollcall_row" \(args "[^"]*" "[^"]*"', "", text)
    found += [s for s in re.findall(r'\b(?:query|args|printf) "([^"]*)"', text) if not s.startswith("%")]
    for line in text.splitlines():
        if line.strip().startswith("expr:"):
            found += re.findall(r'"([^"]*)"', line)
    return [s.replace("%s", "x") for s in found]


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", expr)
    return {n for n in names if n not in KEYWORDS}


def boards():
    return {name: json.loads((GRAFANA / (name + ".json")).read_text()) for name in BOARDS}


def consoles():
    return {p.name: p.read_text() for p in sorted(CONSOLES.glob("*.html"))}


def test_every_grafana_dashboard_loads_and_asks_for_its_prometheus():
    assert sorted(p.stem for p in GRAFANA.glob("*.json")) == sorted(BOARDS)
    uids = set()
    for name, board in boards().items():
        uids.add(board["uid"])
        ds = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
        assert ds and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus", name
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert len(panels) >= 6, name
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), name
        for p in panels:
            assert p["targets"], (name, p["title"])
            assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, (name, p["title"])
            assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in p["targets"]), (name, p["title"])
    assert len(uids) == len(BOARDS)


def test_every_console_and_library_is_there_and_linked():
    pages = consoles()
    assert set(pages) == {"index.html"} | {b + ".html" for b in BOARDS}
    assert {p.name for p in LIBRARIES.glob("*.lib")} == {"prom.lib", "menu.lib"}
    menu = (LIBRARIES / "menu.lib").read_text()
    for board in BOARDS:
        assert '"%s.html"' % board in menu
        assert "consoles/%s.html" % board in (GRAFANA / (board + ".json")).read_text()
    for name, text in pages.items():
        assert text.count("{{ template \"head\" . }}") == 1 and "{{ template \"tail\" }}" in text, name


def test_the_extractors_find_what_they_should():
    text = ('{{ template "rollcall_row" (args "Students" "sum(a_total)" "" "printf.1f") }} '
            '{{ range query "up{job=\'node\'}" }}{{ template "prom_query_drilldown" (args (printf "b{i=\'%s\'}" .L)) }}'
            '{{ . | value | printf "%.0f" }}\n  expr: ["c", "d"],\n')
    assert console_expressions(text) == ["sum(a_total)", "up{job='node'}", "b{i='x'}", "c", "d"]
    assert metric_names('sum by (path, le) (rate(x_bucket{a="b"}[5m])) / on (i) y:z:5m > 0.95 or vector(0)') == {
        "x_bucket", "y:z:5m"}


def all_expressions():
    exprs = [(name, e) for name, board in boards().items() for e in grafana_expressions(board)]
    for name, text in consoles().items():
        found = console_expressions(text)
        assert found, name
        exprs += [(name, e) for e in found]
    return exprs


def test_every_expression_parses(tmp_path):
    exprs = all_expressions()
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": "dashboard:expr_%d" % i, "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % len(exprs) in out.stdout


def test_every_metric_is_one_we_export_or_document():
    app = (ROOT / "images" / "sms-app" / "sms_app" / "observability.py").read_text()
    textfiles = (ROOT / "plugins" / "module_utils" / "report.py").read_text()
    recorded = {r["record"] for g in yaml.safe_load((ROOT / "roles/monitoring/files/alerts.rules.yml").read_text())
                ["groups"] for r in g["rules"] if "record" in r}
    for where, expr in all_expressions():
        for name in metric_names(expr):
            if name.startswith("sms_app_"):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in app, "%s uses %s, which the app does not export" % (where, name)
            elif ":" in name:
                assert name in recorded, "%s uses %s, which alerts.rules.yml does not record" % (where, name)
            elif name.startswith("rollcall_"):
                assert '"%s"' % name in textfiles, "%s uses %s, which no textfile writes" % (where, name)
            else:
                assert name in EXPORTER_METRICS, "%s uses %s: add it to EXPORTER_METRICS if an exporter has it" % (
                    where, name)


@pytest.mark.parametrize("board", BOARDS)
def test_each_grafana_dashboard_matches_its_console(board):
    """The same dashboard twice: each metric of the Grafana JSON is on the console page too."""
    grafana = set().union(*(metric_names(e) for e in grafana_expressions(boards()[board])))
    console = set().union(*(metric_names(e) for e in console_expressions(consoles()[board + ".html"])))
    assert grafana - {"ALERTS", "up"} <= console | {"ALERTS", "up"}, grafana - console
