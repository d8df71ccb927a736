#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine or a cluster: every compose profile renders
(docker-compose config) and every convoy container is hardened; every compose build target exists in
the Dockerfile; every k8s overlay builds (kubectl kustomize) and what it renders is checked object by
object (security context, resources, probes, a PodDisruptionBudget per Deployment, a default-deny
NetworkPolicy, generated Secrets' keys, ConfigMap copies equal to deploy/rabbitmq, KEDA queues that
exist, a PrometheusRule equal to deploy/prometheus/alerts.yml, the prod operators' resources, TLS to the
prod broker and database); and
every flag passed in compose, Dockerfile or k8s is a flag the binary really has."""
import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

if len(sys.argv) == 2 and sys.argv[1] == "--write-prometheusrule":
    root = Path(__file__).resolve().parents[2]
    groups = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())["groups"]
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "convoy", "labels": {"app.kubernetes.io/part-of": "convoy"}}, "spec": {"groups": groups}}
    head = ("# Generated from deploy/prometheus/alerts.yml (the deploy test keeps the groups identical):\n"
            "#   python3 tests/deploy/check_deploy.py --write-prometheusrule\n")
    (root / "k8s/overlays/prod/prometheusrule.yaml").write_text(
        head + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True))
    sys.exit(0)

src, build = Path(sys.argv[1]), Path(sys.argv[2])
failures = []


def fail(msg):
    failures.append(msg)


def binary_flags(name):
    folder = "tests" if name.startswith("fake-") else "services/common" if name in ("topology", "migrate") else f"services/{name}"
    path = build / folder / f"convoy-{name}"
    out = subprocess.run([str(path), "--helpfull"], capture_output=True, text=True)
    return set(re.findall(r"^\s+-([a-z0-9_]+) \(", out.stdout + out.stderr, re.M))


flags = {n: binary_flags(n) for n in ["ingress", "conversation", "media", "outbound", "fake-graph", "fake-receiver",
                                      "topology", "migrate"]}
for n, f in flags.items():
    if "amqp_url" not in f and "pg_dsn" not in f:
        fail(f"convoy-{n} --helpfull lists neither --amqp_url nor --pg_dsn (binary missing?)")


def topology_output(*args):
    out = subprocess.run([str(build / "services/common/convoy-topology"), *args], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"convoy-topology {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


production_definitions = {}  # by quorum group size


def production_definitions_for(group_size):
    if group_size not in production_definitions:
        production_definitions[group_size] = topology_output("--production", f"--quorum_group_size={group_size}")
    return production_definitions[group_size]


grants = {line.split("\t")[0]: dict(zip(("configure", "write", "read"), line.split("\t")[1:]))
          for line in topology_output("--grants").splitlines() if line}


def check_args(where, service, args):
    for a in args:
        m = re.match(r"--([a-z0-9_]+)(=|$)", a)
        if m and m.group(1) not in flags[service]:
            fail(f"{where}: --{m.group(1)} is not a flag of convoy-{service}")


MONITORING_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def metrics_port(args):
    """The --metrics_port a container is given (the last one wins, as with gflags), else None."""
    ports = [a.split("=", 1)[1] for a in args if a.startswith("--metrics_port=")]
    return int(ports[-1]) if ports else None


dockerfile = (src / "deploy/docker/Dockerfile").read_text()
targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M))
for target, entry in re.findall(r"^FROM runtime AS (\S+)\n(?:.*\n)*?ENTRYPOINT (\[.*\])$", dockerfile, re.M):
    check_args(f"Dockerfile target {target}", target, yaml.safe_load(entry)[1:])
# What the images copy from the source tree is there, and the conversation image carries the
# console where convoy-conversation looks for it (<bin>/../share/convoy/console, --console_dir).
for source in re.findall(r"^COPY (?!--)(\S+) \S+$", dockerfile, re.M):
    if not (src / source).exists():
        fail(f"Dockerfile: COPY {source}: no such file or folder in the source tree")
if not re.search(r"^COPY services/console /usr/share/convoy/console$", dockerfile, re.M):
    fail("Dockerfile: the runtime image does not copy services/console to /usr/share/convoy/console")
if not (src / "services/console/index.html").exists():
    fail("services/console/index.html: the console has no index")

compose = yaml.safe_load((src / "deploy/compose/docker-compose.yml").read_text())
for name, svc in compose["services"].items():
    build_spec = svc.get("build")
    if build_spec:
        if build_spec.get("target") not in targets:
            fail(f"compose service {name}: build target {build_spec.get('target')} not in Dockerfile")
        check_args(f"compose service {name}", build_spec["target"], svc.get("command", []))
    for vol in svc.get("volumes", []):
        host = vol.split(":")[0]
        if host.startswith(".") and not (src / "deploy/compose" / host).resolve().exists():
            fail(f"compose service {name}: volume source {host} does not exist")

# Compose: each convoy service serves /metrics on a port of its own, unpublished, which
# deploy/compose/prometheus.yml scrapes.
prometheus_targets = {t for job in yaml.safe_load((src / "deploy/compose/prometheus.yml").read_text())["scrape_configs"]
                      for sc in job.get("static_configs", []) for t in sc.get("targets", [])}
for name, svc in compose["services"].items():
    if (svc.get("build") or {}).get("target") not in ("ingress", "conversation", "media", "outbound"):
        continue
    port = metrics_port(svc.get("command", []))
    if port is None or port < 1:
        fail(f"compose service {name}: no --metrics_port")
        continue
    if f"{name}:{port}" not in prometheus_targets:
        fail(f"compose service {name}: deploy/compose/prometheus.yml does not scrape {name}:{port}")
    if any(str(p).split(":")[-1] == str(port) for p in svc.get("ports", [])):
        fail(f"compose service {name}: the metrics port {port} is published")

# --- docker compose: every profile renders (docker-compose config), every convoy service hardened
compose_file = src / "deploy/compose/docker-compose.yml"
for profiles in ([], ["dev"], ["dev", "observability"]):
    cmd = ["docker-compose", "-f", str(compose_file)] + [a for p in profiles for a in ("--profile", p)] + ["config", "-q"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail(f"docker-compose config {' '.join(profiles) or '(no profile)'}: {r.stderr.strip()}")
    except FileNotFoundError:
        fail("docker-compose is not installed (scripts/setup.sh installs it)")
for name, svc in compose["services"].items():
    if svc.get("build") and not (svc.get("read_only") and "ALL" in svc.get("cap_drop", [])):
        fail(f"compose service {name}: not read-only with every capability dropped")
for name in ("fake-graph", "fake-receiver"):
    if "dev" not in compose["services"][name].get("profiles", []):
        fail(f"compose service {name}: a fake belongs to the dev profile")
for name in ("prometheus", "grafana"):
    if "observability" not in compose["services"][name].get("profiles", []):
        fail(f"compose service {name}: belongs to the observability profile")

# --- Kubernetes: every overlay builds; what it renders is checked object by object
topology = yaml.safe_load((src / "deploy/rabbitmq/definitions.json").read_text())
work_queues = {q["name"] for q in topology["queues"]} 
# conversation.inbound's partitions as the definitions declare them (convoy-topology's default
# --conversation_partitions): the autoscaler watches every one of them, no more.
partitions = {q["name"] for q in topology["queues"] if re.fullmatch(r"conversation\.inbound\.[0-9]+", q["name"])}
alerts = yaml.safe_load((src / "deploy/prometheus/alerts.yml").read_text())
container_binary = {"ingress": "ingress", "conversation": "conversation", "media": "media", "outbound": "outbound",
                    "fake-graph": "fake-graph", "fake-receiver": "fake-receiver", "topology": "topology",
                    "migrate": "migrate"}
overlays = sorted(p for p in (src / "k8s/overlays").iterdir() if (p / "kustomization.yaml").exists())
if [o.name for o in overlays] != ["dev", "prod"]:
    fail(f"k8s overlays: expected dev and prod, found {[o.name for o in overlays]}")


def selects(selector, labels):
    selector = selector or {}
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        present, value = e["key"] in labels, labels.get(e["key"])
        if {"In": not (present and value in e.get("values", [])), "NotIn": present and value in e.get("values", []),
                "Exists": not present, "DoesNotExist": present}[e["operator"]]:
            return False
    return True



def env_secret(container, name):
    for e in container.get("env", []):
        if e.get("name") == name:
            return (e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name"), e.get("value")
    return None, None


def check_credentials(where, overlay, by_kind, text):
    """Each part holds only its own keys: a broker user and a database role of its own, never the
    owner's, never guest; in production the users are the Topology Operator's, equal to the grants."""
    if overlay == "prod" and re.search(r"\bguest\b", text):
        fail(f"{where}: the production overlay mentions guest")
    broker_secrets, owner_secrets = {}, {"convoy-db-owner", "convoy-postgres-app", "convoy-postgres-superuser"}
    for kind in ("Deployment", "Job"):
        for w in by_kind.get(kind, []):
            for c in w["spec"]["template"]["spec"]["containers"]:
                part = container_binary.get(c["name"])
                if not part or part.startswith("fake-"):
                    continue
                user_secret, _ = env_secret(c, "CONVOY_AMQP_USERNAME")
                if part != "migrate":
                    if user_secret != f"convoy-{part}-user-credentials" or env_secret(c, "CONVOY_AMQP_PASSWORD")[0] != user_secret:
                        fail(f"{where}: {kind} {w['metadata']['name']}: broker credentials must be its own Secret "
                             f"convoy-{part}-user-credentials")
                    if user_secret in broker_secrets:
                        fail(f"{where}: {kind} {w['metadata']['name']}: shares a broker user with {broker_secrets[user_secret]}")
                    broker_secrets[user_secret] = w["metadata"]["name"]
                pg_secret, _ = env_secret(c, "PGUSER")
                if part in ("conversation", "media", "outbound") and pg_secret != f"convoy-db-{part}":
                    fail(f"{where}: {kind} {w['metadata']['name']}: must log in as its own role (Secret convoy-db-{part}), "
                         f"not {pg_secret}")
                if part != "migrate" and pg_secret in owner_secrets:
                    fail(f"{where}: {kind} {w['metadata']['name']}: a service connects as the database owner")
    for sec in by_kind.get("Secret", []):
        data = sec.get("data") or {}
        if "amqp-url" in data and "@" in base64.b64decode("".join(data["amqp-url"].split())).decode():
            fail(f"{where}: Secret {sec['metadata']['name']}: amqp-url carries credentials; each part has its own")
        if "pg-dsn" in data and "user=" in base64.b64decode("".join(data["pg-dsn"].split())).decode():
            fail(f"{where}: Secret {sec['metadata']['name']}: pg-dsn names a user; each service has its own role")
    if overlay == "prod":
        users = {u["metadata"]["name"] for u in by_kind.get("User", [])}
        perms = {p["spec"]["userReference"]["name"]: p["spec"]["permissions"] for p in by_kind.get("Permission", [])
                 if p["spec"].get("vhost") == "/"}
        if users != set(grants) or perms != grants:
            fail(f"{where}: broker users and permissions differ from `convoy-topology --grants` "
                 f"(users {sorted(users)}, permissions {perms})")
        for u in by_kind.get("User", []):
            if u["spec"].get("tags") or u["spec"].get("importCredentialsSecret"):
                fail(f"{where}: User {u['metadata']['name']}: no management tags, generated credentials only")
        roles = {r["name"]: r for c in by_kind.get("Cluster", []) for r in ((c["spec"].get("managed") or {}).get("roles") or [])}
        for part in ("conversation", "media", "outbound"):
            role = roles.get(f"convoy_{part}")
            if not role or (role.get("passwordSecret") or {}).get("name") != f"convoy-db-{part}":
                fail(f"{where}: Cluster: no managed role convoy_{part} with passwordSecret convoy-db-{part}")


rendered = {}
for overlay in overlays:
    where = f"k8s/overlays/{overlay.name}"
    r = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"{where}: kubectl kustomize: {r.stderr.strip()}")
        continue
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    rendered[overlay.name] = docs
    by_kind = {}
    for d in docs:
        if not (d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name")):
            fail(f"{where}: an object without apiVersion, kind or metadata.name: {str(d)[:80]}")
            continue
        by_kind.setdefault(d["kind"], []).append(d)
    secrets = {s["metadata"]["name"]: set((s.get("data") or {}) | (s.get("stringData") or {})) for s in by_kind.get("Secret", [])}
    if overlay.name == "prod" and secrets:
        fail(f"{where}: Secrets are written into the overlay ({sorted(secrets)}); production references them")
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    pdbs = by_kind.get("PodDisruptionBudget", [])
    for name, d in deployments.items():
        spec = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        convoy = labels.get("app.kubernetes.io/part-of") == "convoy"
        pod_sc = spec.get("securityContext", {})
        if not pod_sc.get("runAsNonRoot") or pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{where}: Deployment {name}: pod must run as non-root with seccomp RuntimeDefault")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and "ALL" in sc.get("capabilities", {}).get("drop", [])):
                fail(f"{where}: Deployment {name}: container {c['name']}: read-only root, no privilege escalation, "
                     f"all capabilities dropped")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(kind, {})):
                    fail(f"{where}: Deployment {name}: container {c['name']}: {kind} for cpu and memory")
            if not (c.get("livenessProbe") or c.get("readinessProbe")):
                fail(f"{where}: Deployment {name}: container {c['name']}: no probe")
            binary = container_binary.get(c["name"])
            if binary:
                check_args(f"{where}: Deployment {name}", binary, c.get("args", []))
            if any(a.startswith(("--amqp_url", "--pg_dsn")) for a in c.get("args", [])):
                fail(f"{where}: Deployment {name}: credentials on the command line")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and secrets and not ref.get("optional") and ref["key"] not in secrets.get(ref["name"], set()):
                    fail(f"{where}: Deployment {name}: secret key {ref['name']}/{ref['key']} is not generated")
        if convoy and not any(selects(p["spec"].get("selector"), labels) for p in pdbs):
            fail(f"{where}: Deployment {name}: no PodDisruptionBudget")
    policies = by_kind.get("NetworkPolicy", [])
    # /metrics on a port of its own, reachable from the namespace named monitoring only: every
    # ingress rule of a policy selecting the pod that admits that port (or every port) must name
    # that namespace and nothing else; and one must, or nothing scrapes it.
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        annotations = d["spec"]["template"]["metadata"].get("annotations", {})
        for c in d["spec"]["template"]["spec"]["containers"]:
            if container_binary.get(c["name"]) not in ("ingress", "conversation", "media", "outbound"):
                continue
            port = metrics_port(c.get("args", []))
            if port is None or port < 1:
                fail(f"{where}: Deployment {name}: container {c['name']}: no --metrics_port, so /metrics shares the "
                     f"service's port and cannot be opened to the monitoring namespace alone")
                continue
            named = {cp.get("name"): cp["containerPort"] for cp in c.get("ports", [])}
            if named.get("metrics") != port:
                fail(f"{where}: Deployment {name}: container port 'metrics' is not {port}")
            if annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") != str(port):
                fail(f"{where}: Deployment {name}: prometheus.io/port is not the metrics port {port}")
            admitted = False
            for pol in policies:
                if "Ingress" not in pol["spec"].get("policyTypes", []) or not selects(pol["spec"].get("podSelector"), labels):
                    continue
                for rule in pol["spec"].get("ingress") or []:
                    rule_ports = {pt.get("port") for pt in rule.get("ports") or []}
                    if rule.get("ports") and port not in rule_ports and "metrics" not in rule_ports:
                        continue
                    peers = rule.get("from") or []
                    if not peers or any(peer != MONITORING_PEER for peer in peers):
                        fail(f"{where}: NetworkPolicy {pol['metadata']['name']}: admits Deployment {name}'s metrics port "
                             f"{port} from more than the monitoring namespace (kubernetes.io/metadata.name: monitoring)")
                    else:
                        admitted = True
            if not admitted:
                fail(f"{where}: Deployment {name}: no NetworkPolicy admits the metrics port {port} from the monitoring "
                     f"namespace")
    for sm in by_kind.get("ServiceMonitor", []):
        for ep in sm["spec"].get("endpoints", []):
            if ep.get("path", "/metrics") == "/metrics" and ep.get("port") != "metrics":
                fail(f"{where}: ServiceMonitor {sm['metadata']['name']}: scrapes port {ep.get('port')}, not 'metrics'")
    if not any(p["spec"].get("policyTypes") == ["Ingress", "Egress"] and not p["spec"].get("ingress")
               and not p["spec"].get("egress") for p in policies):
        fail(f"{where}: no default-deny NetworkPolicy for convoy's pods")
    # Egress to the broker's or the database's port goes to their pods by label, never to an address
    # (an ipBlock, or no `to` at all: anywhere) nor to whole namespaces; DNS only to kube-dns.
    service_ports = {5432: "database", 5672: "broker", 5671: "broker"}
    for p in policies:
        pname = p["metadata"]["name"]
        for rule in p["spec"].get("egress") or []:
            ports = {pt.get("port") for pt in rule.get("ports") or []}
            peers = rule.get("to") or []
            for port in sorted(ports & set(service_ports)):
                if not peers or any("ipBlock" in peer or "podSelector" not in peer for peer in peers):
                    fail(f"{where}: NetworkPolicy {pname}: egress to the {service_ports[port]}'s port {port} must name its "
                         f"pods by label, not an address or a namespace")
            if 53 in ports and (not peers or any(peer.get("podSelector", {}).get("matchLabels", {}).get("k8s-app") != "kube-dns"
                                                 for peer in peers)):
                fail(f"{where}: NetworkPolicy {pname}: DNS egress must go to the cluster's DNS (k8s-app: kube-dns) only")
    # A container's args name only env vars it has ($(VAR) is Kubernetes' expansion: an unknown one
    # stays literal), and a ConfigMap it reads is rendered (dev) with the key.
    configmaps = {c["metadata"]["name"]: set(c.get("data") or {}) for c in by_kind.get("ConfigMap", [])}
    for name, d in deployments.items():
        for c in d["spec"]["template"]["spec"]["containers"]:
            env_names = {e["name"] for e in c.get("env", [])}
            for a in c.get("args", []):
                for var in re.findall(r"\$\(([A-Z0-9_]+)\)", a):
                    if var not in env_names:
                        fail(f"{where}: Deployment {name}: {a} names $({var}), which the container's env lacks")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and overlay.name == "dev" and ref["key"] not in configmaps.get(ref["name"], set()):
                    fail(f"{where}: Deployment {name}: env {e['name']} reads ConfigMap {ref['name']} key {ref['key']}, "
                         f"which the overlay does not render")
    # conversation's console backends: each forwarded service reachable (an egress rule to its pods
    # on its port), the parked messages as the ops user with credentials of its own.
    conv = deployments.get("convoy-conversation")
    if conv:
        c = conv["spec"]["template"]["spec"]["containers"][0]
        conv_labels = conv["spec"]["template"]["metadata"].get("labels", {})
        for a in c.get("args", []):
            m = re.match(r"--(outbound_admin_url|media_api_url)=http://(convoy-[a-z]+):([0-9]+)$", a)
            if not m:
                continue
            target, port = deployments.get(m.group(2)), int(m.group(3))
            target_labels = target["spec"]["template"]["metadata"].get("labels", {}) if target else {}
            if not any("Egress" in p["spec"].get("policyTypes", []) and selects(p["spec"].get("podSelector"), conv_labels)
                       and any(port in {pt.get("port") for pt in rule.get("ports") or []}
                               and any("podSelector" in peer and "namespaceSelector" not in peer
                                       and selects(peer["podSelector"], target_labels) for peer in rule.get("to") or [])
                               for rule in p["spec"].get("egress") or [])
                       for p in policies):
                fail(f"{where}: --{m.group(1)}: no NetworkPolicy lets convoy-conversation reach {m.group(2)}'s pods on {port}")
        if any(a.startswith("--ops_amqp_url=") for a in c.get("args", [])):
            for var in ("CONVOY_OPS_AMQP_USERNAME", "CONVOY_OPS_AMQP_PASSWORD"):
                if env_secret(c, var)[0] != "convoy-ops-user-credentials":
                    fail(f"{where}: convoy-conversation: {var} must come from the Secret convoy-ops-user-credentials")
            if overlay.name == "dev" and secrets.get("convoy-ops-user-credentials") != {"username", "password"}:
                fail(f"{where}: the dev overlay does not generate convoy-ops-user-credentials (username, password)")
    for role in ("broker", "database"):
        if not any(p["spec"].get("podSelector", {}).get("matchLabels", {}).get("convoy.dev/role") == role
                   and "Ingress" in p["spec"].get("policyTypes", []) for p in policies):
            fail(f"{where}: no NetworkPolicy guards the {role}'s pods (convoy.dev/role: {role})")
    role_labels = []
    for kind in ("StatefulSet", "RabbitmqCluster", "Cluster"):
        for o in by_kind.get(kind, []):
            spec = o.get("spec", {})
            labels = {**((spec.get("template") or {}).get("metadata") or {}).get("labels", {}),
                      **((((spec.get("override") or {}).get("statefulSet") or {}).get("spec") or {}).get("template") or {})
                      .get("metadata", {}).get("labels", {}),
                      **(spec.get("inheritedMetadata") or {}).get("labels", {})}
            role_labels.append(labels.get("convoy.dev/role"))
    for role in ("broker", "database"):
        if role not in role_labels:
            fail(f"{where}: no broker/database workload carries convoy.dev/role: {role}, so no policy reaches it")
    for cm in by_kind.get("ConfigMap", []):
        for key, value in (cm.get("data") or {}).items():
            original = src / "deploy/rabbitmq" / key
            if overlay.name == "prod" and key == "definitions.json":
                replicas = next((rc["spec"].get("replicas") for rc in by_kind.get("RabbitmqCluster", [])), 0)
                if value != production_definitions_for(replicas):
                    fail(f"{where}: ConfigMap {cm['metadata']['name']}: {key} differs from `convoy-topology --production "
                         f"--quorum_group_size={replicas}` (the RabbitmqCluster's replicas)")
            elif key in ("definitions.json", "rabbitmq.conf", "advanced.config", "enabled_plugins") and original.read_text() != value:
                fail(f"{where}: ConfigMap {cm['metadata']['name']}: {key} differs from deploy/rabbitmq/{key}")
            if key == "roles.sql" and (src / "deploy/compose/postgres-roles.sql").read_text() != value:
                fail(f"{where}: ConfigMap {cm['metadata']['name']}: roles.sql differs from deploy/compose/postgres-roles.sql")
    check_credentials(where, overlay.name, by_kind, r.stdout)
    for so in by_kind.get("ScaledObject", []):
        target = so["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            fail(f"{where}: ScaledObject {so['metadata']['name']}: no Deployment {target}")
        for t in so["spec"]["triggers"]:
            if t["type"] == "rabbitmq" and t["metadata"].get("queueName") not in work_queues:
                fail(f"{where}: ScaledObject {so['metadata']['name']}: queue {t['metadata'].get('queueName')} is not convoy's")
            if t["type"] == "rabbitmq" and t["metadata"].get("mode") != "QueueLength":
                fail(f"{where}: ScaledObject {so['metadata']['name']}: mode must be QueueLength")
        watched = {t["metadata"].get("queueName") for t in so["spec"]["triggers"] if t["type"] == "rabbitmq"}
        if watched & partitions and watched & partitions != partitions:
            fail(f"{where}: ScaledObject {so['metadata']['name']}: watches conversation.inbound partitions "
                 f"{sorted(watched & partitions)}, the definitions declare {sorted(partitions)}")
    for rule in by_kind.get("PrometheusRule", []):
        if rule["spec"]["groups"] != alerts["groups"]:
            fail(f"{where}: PrometheusRule {rule['metadata']['name']} differs from deploy/prometheus/alerts.yml "
                 f"(regenerate: python3 tests/deploy/check_deploy.py --write-prometheusrule)")
    if overlay.name == "prod":
        for kind in ("RabbitmqCluster", "Cluster", "ScaledObject", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"):
            if kind not in by_kind:
                fail(f"{where}: no {kind}")
        for rc in by_kind.get("RabbitmqCluster", []):
            if not isinstance(rc["spec"].get("replicas"), int) or rc["spec"]["replicas"] < 3:
                fail(f"{where}: RabbitmqCluster: fewer than 3 replicas")
        for pg in by_kind.get("Cluster", []):
            if not isinstance(pg["spec"].get("instances"), int) or pg["spec"]["instances"] < 3:
                fail(f"{where}: Cluster: fewer than 3 instances")
            # A failover must not lose a commit a service was told of (a standby acknowledges each),
            # and a COMMIT in doubt is settled by its commit timestamp (pg.h PgConnection::Commit).
            postgresql = pg["spec"].get("postgresql") or {}
            sync = postgresql.get("synchronous") or {}
            if sync.get("method") not in ("any", "first") or not isinstance(sync.get("number"), int) or sync["number"] < 1 \
                    or sync.get("dataDurability", "required") != "required":
                fail(f"{where}: Cluster: no synchronous replication (spec.postgresql.synchronous: method any, number >= 1)")
            if (postgresql.get("parameters") or {}).get("track_commit_timestamp") != "on":
                fail(f"{where}: Cluster: track_commit_timestamp is not on (a COMMIT in doubt cannot be settled)")
            anti = pg["spec"].get("affinity") or {}
            if not anti.get("enablePodAntiAffinity") or anti.get("podAntiAffinityType") != "required":
                fail(f"{where}: Cluster: instances may share a node (affinity.podAntiAffinityType: required)")
        for rc in by_kind.get("RabbitmqCluster", []):
            terms = (((rc["spec"].get("affinity") or {}).get("podAntiAffinity") or {})
                     .get("requiredDuringSchedulingIgnoredDuringExecution") or [])
            if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in terms):
                fail(f"{where}: RabbitmqCluster: nodes may share a Kubernetes node (required pod anti-affinity)")
            # Every quorum queue with one member per node: the topology Job creates them so, and the
            # definitions loaded at boot (checked against `convoy-topology --production` below) too.
            for job in (j for j in by_kind.get("Job", []) if j["metadata"]["name"] == "convoy-topology"):
                command = job["spec"]["template"]["spec"]["containers"][0].get("command", [])
                if f"--quorum_group_size={rc['spec'].get('replicas')}" not in command:
                    fail(f"{where}: Job convoy-topology: no --quorum_group_size={rc['spec'].get('replicas')} "
                         f"(the RabbitmqCluster's replicas), so quorum queues get the broker's default members")
        # Transport: the broker over amqps:// with its CA (a service given a CA file refuses a plain
        # amqp:// URL, even one from a Secret the check cannot read), the database with
        # sslmode=verify-full against a mounted CA. Local runs (compose, the dev overlay) stay plain.
        for rc in by_kind.get("RabbitmqCluster", []):
            if not (rc["spec"].get("tls") or {}).get("secretName"):
                fail(f"{where}: RabbitmqCluster {rc['metadata']['name']}: no TLS (spec.tls.secretName)")
        for name, d in deployments.items():
            spec = d["spec"]["template"]["spec"]
            secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
            for c in spec["containers"]:
                env = {e["name"]: e for e in c.get("env", [])}
                args = c.get("args", [])
                mounted = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", []) if m["name"] in secret_volumes]

                def from_secret_mount(path):
                    return any(path.startswith(m) for m in mounted)

                if "CONVOY_AMQP_URL" in env or any(a.startswith("--amqp_url=") for a in args):
                    urls = [env["CONVOY_AMQP_URL"].get("value")] if "CONVOY_AMQP_URL" in env else []
                    urls += [a.split("=", 1)[1] for a in args if a.startswith("--amqp_url=")]
                    for url in (u for u in urls if u is not None):
                        if not url.startswith("amqps://"):
                            fail(f"{where}: Deployment {name}: the broker URL is not amqps://")
                    ca = (env.get("CONVOY_AMQP_CA_FILE") or {}).get("value") or next(
                        (a.split("=", 1)[1] for a in args if a.startswith("--amqp_ca_file=")), None)
                    if not ca or not from_secret_mount(ca):
                        fail(f"{where}: Deployment {name}: container {c['name']}: no broker CA (CONVOY_AMQP_CA_FILE or "
                             f"--amqp_ca_file on a mounted Secret), so amqps:// is not verified and amqp:// not refused")
                if "CONVOY_PG_DSN" in env or any(a.startswith("--pg_dsn=") for a in args):
                    dsn = env["CONVOY_PG_DSN"].get("value") if "CONVOY_PG_DSN" in env else None
                    if dsn is None:
                        fail(f"{where}: Deployment {name}: container {c['name']}: the DSN comes from a Secret, so "
                             f"sslmode=verify-full cannot be checked: write it in the overlay, the password apart")
                        continue
                    params = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
                    if params.get("sslmode") != "verify-full":
                        fail(f"{where}: Deployment {name}: container {c['name']}: the DSN lacks sslmode=verify-full")
                    if not from_secret_mount(params.get("sslrootcert", "")):
                        fail(f"{where}: Deployment {name}: container {c['name']}: the DSN's sslrootcert is not a mounted "
                             f"CA Secret")
                    if "password" in params:
                        fail(f"{where}: Deployment {name}: container {c['name']}: a password in the DSN")

# Every rendered object against its schema (tests/deploy/validate_k8s.mjs: the kubernetes-models
# packages from npm, and the RabbitmqCluster CRD pinned in tests/deploy/schemas).
validator = src / "tests/deploy/validate_k8s.mjs"
if not (src / "tests/deploy/node_modules/kubernetes-models").exists():
    fail("tests/deploy/node_modules is missing: scripts/setup.sh installs it (npm ci in tests/deploy)")
elif rendered:
    for docs in rendered.values():
        for d in docs:
            if d["kind"] == "Secret":  # kustomize wraps base64 lines; the API server's decoder skips the newlines
                d["data"] = {k: "".join(v.split()) for k, v in (d.get("data") or {}).items()}
    r = subprocess.run(["node", str(validator)], input=json.dumps(rendered), capture_output=True, text=True, timeout=300)
    for line in r.stdout.splitlines():
        if line.startswith("FAIL: "):
            fail(line[len("FAIL: "):])
        else:
            print(line)
    if r.returncode != 0 and "FAIL: " not in r.stdout:
        fail(f"schema validation did not run: {r.stderr.strip()[-500:]}")

for f in failures:
    print("FAIL:", f)
checked = sum(len(v) > 0 for v in flags.values())
print(f"checked {checked} binaries, compose (3 profiles), Dockerfile, {len(overlays)} kustomize overlays")
print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
