#!/usr/bin/env python3
"""deploy/prometheus: promtool accepts the rules, every alert has severity, summary, description
and a runbook_url that names a section of runbook.md, and every section is an alert's.
deploy/grafana/convoy.json: every panel's query is PromQL promtool accepts, and every convoy_*
metric the dashboard or the rules name is one the services export."""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

root = sys.argv[1]
rules = root + "/deploy/prometheus/alerts.yml"
runbook = open(root + "/deploy/prometheus/runbook.md", encoding="utf-8").read()
failures = []
out = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
if out.returncode != 0:
    failures.append("promtool check rules: " + out.stdout + out.stderr)
sections = {h.strip().lower() for h in re.findall(r"^## (.+)$", runbook, re.M)}
alerts = []
text = open(rules, encoding="utf-8").read()
for block in re.split(r"\n      - alert: ", text)[1:]:
    name = block.split("\n", 1)[0].strip()
    alerts.append(name)
    for key in ("severity:", "summary:", "description:", "runbook_url:"):
        if key not in block:
            failures.append(f"{name}: no {key[:-1]}")
    sev = re.search(r"severity: (\w+)", block)
    if sev and sev.group(1) not in ("warning", "critical"):
        failures.append(f"{name}: severity {sev.group(1)} is neither warning nor critical")
    url = re.search(r'runbook_url: "deploy/prometheus/runbook.md#([a-z0-9-]+)"', block)
    if not url or url.group(1) != name.lower():
        failures.append(f"{name}: runbook_url must be deploy/prometheus/runbook.md#{name.lower()}")
    if name.lower() not in sections:
        failures.append(f"{name}: no '## {name}' section in runbook.md")
for s in sections - {a.lower() for a in alerts} - {"convoy runbook"}:
    failures.append(f"runbook section '{s}' is no alert's")
# The metrics the services export (the names they register).
exported = set()
# Sources and headers: a service may register its metrics in a header its files share.
for path in glob.glob(root + "/services/**/*.cpp", recursive=True) + glob.glob(root + "/services/**/*.h", recursive=True):
    if path.endswith("_test.cpp"):
        continue
    exported |= set(re.findall(r'"(convoy_[a-z_]+)"', open(path, encoding="utf-8").read()))
dashboard = json.load(open(root + "/deploy/grafana/convoy.json", encoding="utf-8"))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
if not exprs:
    failures.append("the dashboard has no queries")
for e in exprs + re.findall(r"expr: (.+)", text):
    for m in re.findall(r"\b(convoy_[a-z_]+)", e):
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        if base not in exported:
            failures.append(f"{m} is not a metric any service exports: {e}")
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$__range", "1h")
        f.write(f"      - record: convoy:dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
out = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
os.unlink(f.name)
if out.returncode != 0:
    failures.append("dashboard queries: " + out.stdout + out.stderr)
for f in failures:
    print("FAIL:", f)
print(f"checked {len(alerts)} alerts, {len(sections)} runbook sections, {len(exprs)} dashboard queries")
sys.exit(1 if failures else 0)
