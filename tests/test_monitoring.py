"""deploy/monitoring/: the alert rules and the Grafana dashboard name only metrics the
daemon really exports, and have the shape their consumers need.

Rule syntax and behaviour are checked by promtool in scripts/check-deploy.sh; this
checks them against a real daemon's /metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from standins.nebuly.server import NebulyStandIn
from tests.conftest import person, write_csv
from tests.test_daemon import DaemonProcess, daemon_config

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
_METRIC = re.compile(r"\bsyncd_[a-z_]+\b")


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return loaded


def _dashboard_exprs(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return exprs


def _exported_names(tmp_path: Path, standin: NebulyStandIn) -> set[str]:
    """Sample names in /metrics of `syncd run` after its first run (counters as *_total)."""
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(3)])
    daemon = DaemonProcess(daemon_config(tmp_path / "syncd.yaml", standin.url, csv_path,
                                         interval="1h"))
    try:
        daemon.wait_event("sync.finished", timeout=60)
        text = daemon.get("/metrics").text
    finally:
        code, _ = daemon.terminate()
        for stream in (daemon.proc.stdout, daemon.proc.stderr):
            if stream is not None:
                stream.close()
    assert code == 0
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_every_metric_the_alerts_and_dashboard_name_is_exported(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    named = {m for expr in [r["expr"] for r in _rules()] + _dashboard_exprs(_dashboard())
             for m in _METRIC.findall(expr)}
    exported = _exported_names(tmp_path, standin)
    assert len(named) >= 15  # the files really use the metrics, not one or two
    assert sorted(named - exported) == []


def test_alerts_cover_the_operational_failures() -> None:
    rules = {r["alert"]: r for r in _rules()}
    # Stale sync, failing runs, guard tripped, blocked plan waiting (issue 15), and more.
    assert {"SyncdNotSyncing", "SyncdRunsFailing", "SyncdGuardTripped",
            "SyncdBlockedPlanWaiting"} <= set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_dashboard_shape() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert "datasource" in variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert _METRIC.search(target["expr"]), target["expr"]
            # Balanced brackets: a typo here would only show up as an empty panel.
            for open_, close in ("()", "{}", "[]"):
                assert target["expr"].count(open_) == target["expr"].count(close), target
