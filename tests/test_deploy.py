"""The shipped Grafana dashboard, Prometheus rules and KEDA example (deploy/): every PromQL
expression in them is read, each metric it names must be one corral exports
(corral.metrics.names) or a rule's recorded name, and each function one PromQL has. Where
Debian's `prometheus` package gives `promtool`, every expression is also parsed by Prometheus
itself and the alert rules run their unit tests (deploy/prometheus/corral-rules.test.yaml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.metrics.names import exported_names

DEPLOY = Path(__file__).parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "corral-rules.yaml"
DASHBOARD = DEPLOY / "grafana" / "corral.json"
MANIFEST = DEPLOY / "kubernetes" / "corral-workers.yaml"
PROMTOOL = shutil.which("promtool")

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count", "count_over_time", "delta", "deriv", "floor",
    "histogram_quantile", "idelta", "increase", "irate", "label_replace", "max", "max_over_time",
    "min", "min_over_time", "quantile", "quantile_over_time", "rate", "round", "scalar", "sort",
    "sort_desc", "sum", "sum_over_time", "time", "topk", "bottomk", "vector",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}  # fmt: skip
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) of a PromQL expression: strings, label matchers, ranges
    and grouping clauses are removed first; an identifier before `(` is a function."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " ", text)
    metrics, functions = set(), set()
    for match in IDENT.finditer(text):
        word = match.group()
        if word.lower() in KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            functions.add(word)
        else:
            metrics.add(word)
    assert text.count("(") == text.count(")"), f"unbalanced parentheses in {expr!r}"
    return metrics, functions


def rule_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [
        (rule.get("record") or rule["alert"], str(rule["expr"]).strip())
        for group in doc["groups"]
        for rule in group["rules"]
    ]


def recorded() -> set[str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expression) of every target, and the template variables' queries, with
    Grafana's variables replaced by what they stand for."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    for v in board["templating"]["list"]:
        if v["type"] == "query":  # Grafana's label_values(METRIC, LABEL): the metric's series
            query = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", v["query"])
            found.append((f"variable {v['name']}", query))
    return [(title, expr.replace("$pool", ".*")) for title, expr in found]


def scaler_exprs() -> list[tuple[str, str]]:
    """The KEDA ScaledObjects' Prometheus queries in the sample manifest."""
    docs = yaml.safe_load_all(MANIFEST.read_text())
    return [
        (f"ScaledObject {doc['metadata']['name']}", trigger["metadata"]["query"])
        for doc in docs
        if doc["kind"] == "ScaledObject"
        for trigger in doc["spec"]["triggers"]
        if trigger["type"] == "prometheus"
    ]


def test_every_expression_names_only_metrics_corral_exports() -> None:
    known = exported_names() | recorded()
    exprs = rule_exprs() + dashboard_exprs() + scaler_exprs()
    assert len(exprs) >= 20
    used: set[str] = set()
    for where, expr in exprs:
        metrics, functions = names_in(expr)
        assert metrics, f"{where}: {expr!r} names no metric"
        assert metrics <= known, f"{where}: {sorted(metrics - known)} are not corral's"
        assert functions <= FUNCTIONS, f"{where}: unknown functions {functions - FUNCTIONS}"
        used |= metrics
    # the figures the dashboard promises are on it
    for name in (
        "corral_task_wait_seconds_bucket",
        "corral_attempts_total",
        "corral_tasks",
        "corral_group_active_tasks",
        "corral_desired_workers",
        "corral_worker_slots",
    ):
        assert name in used, name  # fmt: skip


def test_the_checker_catches_a_name_corral_does_not_export() -> None:
    metrics, functions = names_in('sum by (pool) (rate(celery_task_runtime_count{a="b"}[5m]))')
    assert metrics == {"celery_task_runtime_count"} and functions == {"sum", "rate"}
    assert names_in("a > on (pool) max by (pool) (b)")[0] == {"a", "b"}


def test_the_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] == "corral"
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for topic in (
        "throughput",
        "wait p50 / p95",
        "failures",
        "backlog",
        "cap use",
        "desired",
        "schedule lateness",
    ):
        assert topic in titles, topic  # fmt: skip


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_parses_every_expression_and_passes_the_rules_unit_tests(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                             text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    board = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_exprs() + scaler_exprs())
    ]}]}  # fmt: skip
    as_rules = tmp_path / "dashboard-rules.yaml"
    as_rules.write_text(yaml.safe_dump(board))
    parsed = subprocess.run([PROMTOOL, "check", "rules", str(as_rules)], capture_output=True,
                            text=True)  # fmt: skip
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    tested = subprocess.run([PROMTOOL, "test", "rules", "corral-rules.test.yaml"],
                            cwd=RULES.parent, capture_output=True, text=True)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
