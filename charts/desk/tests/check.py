#!/usr/bin/env python3
"""Offline checks of the desk Helm chart (charts/desk), the NATS values beside it and the image.

Run by `make chart-check` (part of `make lint`, so of `make test`) with <repo>/.tools/venv's
python, where infra/deps.sh installs:

- helm-python-sdk: Helm's own Go SDK (v4) in a shared library, for lint, schema validation and
  rendering exactly as `helm lint --strict` / `helm template` would;
- kubernetes-validate: the Kubernetes API's JSON schemas, for every rendered object (1.30, strict:
  an unknown field is an error). The custom resources the chart may render (Gateway API routes,
  the Prometheus Operator's ServiceMonitor) are not in them; CUSTOM_RESOURCE_SCHEMAS below
  checks the fields the chart writes, with the same strictness.

What is checked, for the default values, the three region examples and tests/values/*.yaml:
the chart lints strictly; the values pass values.schema.json (through Helm and through
jsonschema) and name a real IANA time zone; every rendered manifest validates; and the rendered
output keeps its promises: each enabled target renders its Deployment, Service, ServiceAccount,
HPA, PDB and NetworkPolicy exactly once, every container has gRPC probes, limits and the hardened
security context, only the gateway is reachable from outside (its Ingress or routes and its
NetworkPolicy), the migration Job is a pre-install/pre-upgrade hook ordered before the
Deployments, the gateway rolls with surge and no unavailability. Every file in tests/bad/ must be
refused, with the message its `# refused:` line names. The NATS values must join the three
regions into one super-cluster. infra/Dockerfile must build with `make release`'s command.

Prints one line per finding and a closing `N passed, N failed` line; exits 1 on any finding.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import time
import zoneinfo
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
RELEASE = "desk-emea"
NAMESPACE = "desk"
REGIONS = ("emea", "apac", "amer")


class Findings:
    """Collects what is wrong; each check is counted as passed unless it added a finding."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.checks = 0

    def check(self, ok: bool, what: str) -> bool:
        self.checks += 1
        if not ok:
            self.failed.append(what)
            print(f"FAIL {what}")
        return ok


findings = Findings()


# ---- custom resources: the fields the chart writes, strictly ---------------------------------

def _strict(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(required)}


_METADATA = {"type": "object", "required": ["name"],
             "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}
_PARENT_REFS = {"type": "array", "minItems": 1, "items": _strict(
    {"name": {"type": "string"}, "namespace": {"type": "string"}, "sectionName": {"type": "string"},
     "kind": {"type": "string"}, "group": {"type": "string"}, "port": {"type": "integer"}}, ("name",))}
_BACKEND_REFS = {"type": "array", "minItems": 1, "items": _strict(
    {"name": {"type": "string"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535}},
    ("name", "port"))}
_HOSTNAMES = {"type": "array", "items": {"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}}
# gateway.networking.k8s.io/v1 (Gateway API >= 1.1) and monitoring.coreos.com/v1, the subset used.
CUSTOM_RESOURCE_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "GRPCRoute"): _strict({
        "apiVersion": {}, "kind": {}, "metadata": _METADATA,
        "spec": _strict({"parentRefs": _PARENT_REFS, "hostnames": _HOSTNAMES,
                         "rules": {"type": "array", "items": _strict({"backendRefs": _BACKEND_REFS})}},
                        ("parentRefs", "rules"))}, ("apiVersion", "kind", "metadata", "spec")),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _strict({
        "apiVersion": {}, "kind": {}, "metadata": _METADATA,
        "spec": _strict({"parentRefs": _PARENT_REFS, "hostnames": _HOSTNAMES,
                         "rules": {"type": "array", "items": _strict({
                             "matches": {"type": "array", "items": _strict({"path": _strict(
                                 {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                  "value": {"type": "string"}}, ("type", "value"))})},
                             "backendRefs": _BACKEND_REFS})}},
                        ("parentRefs", "rules"))}, ("apiVersion", "kind", "metadata", "spec")),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _strict({
        "apiVersion": {}, "kind": {}, "metadata": _METADATA,
        "spec": _strict({"selector": _strict({"matchLabels": {"type": "object"}}, ("matchLabels",)),
                         "endpoints": {"type": "array", "minItems": 1, "items": _strict({
                             "port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                             "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}, ("port",))}},
                        ("selector", "endpoints"))}, ("apiVersion", "kind", "metadata", "spec")),
}


def validate_manifest(doc: dict, source: str) -> None:
    """Against the Kubernetes 1.30 schemas, or the custom resource's schema above."""
    name = f"{source}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    custom = CUSTOM_RESOURCE_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if custom is not None:
        errors = sorted(jsonschema.Draft7Validator(custom).iter_errors(doc), key=str)
        findings.check(not errors, f"{name} does not match its custom resource schema: "
                       + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:3]))
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        findings.check(True, name)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        findings.check(False, f"{name} is not valid Kubernetes {KUBERNETES_VERSION}: {path}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        findings.check(False, f"{name}: {error.message} (and no custom resource schema here)")


# ---- rendering --------------------------------------------------------------------------------

def load_values(path: Path | None) -> dict:
    return {} if path is None else helm.values_from_yaml(path.read_text())


def render(chart: helm.Chart, values: dict, *, upgrade: bool) -> list[dict]:
    """The manifests of an install (or upgrade) of RELEASE, in template order, NOTES left out."""
    files = chart.render(values, name=RELEASE, namespace=NAMESPACE,
                         is_install=not upgrade, is_upgrade=upgrade, revision=2 if upgrade else 1)
    docs = []
    for path in sorted(files):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(files[path]):
            if doc:
                doc["__template"] = path
                docs.append(doc)
    return docs


def strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "__template"}


# ---- the assertions on rendered output --------------------------------------------------------

def labels_of(doc: dict) -> dict:
    return doc.get("metadata", {}).get("labels", {}) or {}


def annotations_of(doc: dict) -> dict:
    return doc.get("metadata", {}).get("annotations", {}) or {}


def hook_of(doc: dict) -> set[str]:
    hook = annotations_of(doc).get("helm.sh/hook", "")
    return {h.strip() for h in hook.split(",") if h.strip()}


def fullname(values: dict) -> str:
    if values.get("fullnameOverride"):
        return values["fullnameOverride"]
    name = values.get("nameOverride") or "desk"
    return RELEASE if name in RELEASE else f"{RELEASE}-{name}"


def enabled_targets(values: dict) -> dict:
    targets = {}
    for name, own in values["targets"].items():
        if own.get("enabled"):
            merged = copy.deepcopy(values["targetDefaults"])
            deep_merge(merged, own)
            targets[name] = merged
    return targets


def deep_merge(into: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def check_hardened(where: str, pod: dict, container: dict) -> None:
    context = container.get("securityContext", {})
    pod_context = pod.get("securityContext", {})
    findings.check(context.get("runAsNonRoot") is True and pod_context.get("runAsNonRoot") is True,
                   f"{where}: runs as non-root")
    findings.check(context.get("readOnlyRootFilesystem") is True, f"{where}: read-only root file system")
    findings.check(context.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
    findings.check(context.get("privileged") is not True, f"{where}: not privileged")
    findings.check("ALL" in context.get("capabilities", {}).get("drop", []), f"{where}: drops ALL capabilities")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    findings.check(seccomp == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
    findings.check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
                   f"{where}: no host namespaces")
    findings.check(all("hostPort" not in p for p in container.get("ports", [])), f"{where}: no host port")
    findings.check(pod.get("automountServiceAccountToken") is False, f"{where}: no API token mounted")
    limits = container.get("resources", {}).get("limits", {})
    findings.check("cpu" in limits and "memory" in limits, f"{where}: cpu and memory limits")
    requests = container.get("resources", {}).get("requests", {})
    findings.check("cpu" in requests and "memory" in requests, f"{where}: cpu and memory requests")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    findings.check("/tmp" in mounts and "emptyDir" in volumes.get(mounts["/tmp"], {}),
                   f"{where}: /tmp is an emptyDir")
    names = [e["name"] for e in container.get("env", [])]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    findings.check(not duplicates, f"{where}: environment names once each (twice: {duplicates})")


def check_rendered(source: str, values: dict, docs: list[dict]) -> None:
    prefix = fullname(values)
    targets = enabled_targets(values)
    expose = values["expose"]
    exposed = expose["target"] if expose["kind"] != "none" else None
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    def named(kind: str, name: str) -> list[dict]:
        return [d for d in by_kind.get(kind, []) if d["metadata"]["name"] == name]

    # Each enabled target exactly once; nothing of a disabled one.
    for name, target in targets.items():
        resource = f"{prefix}-{name}"
        expected = {"Deployment": 1, "Service": 1, "ServiceAccount": 1, "PodDisruptionBudget": 1,
                    "HorizontalPodAutoscaler": 1 if target["autoscaling"]["enabled"] else 0,
                    "NetworkPolicy": 1 if values["networkPolicy"]["enabled"] else 0,
                    "ServiceMonitor": 1 if values["metrics"]["serviceMonitor"]["enabled"] else 0}
        for kind, count in expected.items():
            found = named(kind, resource)
            findings.check(len(found) == count, f"{source}: target {name} renders {count} {kind} (found {len(found)})")
            findings.check(all(labels_of(d).get("app.kubernetes.io/component") == name for d in found),
                           f"{source}: {kind}/{resource} carries component={name}")
    for name, own in values["targets"].items():
        if not own.get("enabled"):
            leftovers = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
                         if labels_of(d).get("app.kubernetes.io/component") == name]
            findings.check(not leftovers, f"{source}: disabled target {name} renders nothing ({leftovers})")
    deployments = by_kind.get("Deployment", [])
    findings.check(len(deployments) == len(targets), f"{source}: one Deployment per enabled target")

    # Containers: the target's command, gRPC health probes, limits, hardening.
    image = None
    for deployment in deployments:
        name = labels_of(deployment)["app.kubernetes.io/component"]
        target = targets.get(name, {})
        pod = deployment["spec"]["template"]["spec"]
        findings.check(deployment["spec"]["selector"]["matchLabels"].items()
                       <= deployment["spec"]["template"]["metadata"]["labels"].items(),
                       f"{source}: Deployment {name} selects its own pods")
        findings.check(bool(deployment.get("spec", {}).get("template")) and not hook_of(deployment),
                       f"{source}: Deployment {name} is a regular release object, not a hook")
        for container in pod["containers"]:
            where = f"{source}: Deployment {name} container {container['name']}"
            findings.check(container.get("args") == ["serve", "--target", name], f"{where}: runs desk serve --target {name}")
            image = image or container["image"]
            findings.check(container["image"] == image, f"{where}: the one desk image")
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                grpc = container.get(probe, {}).get("grpc")
                findings.check(grpc is not None and grpc.get("port") == values["grpcPort"],
                               f"{where}: {probe} through the gRPC health protocol on the gRPC port")
            readiness = container.get("readinessProbe", {}).get("grpc", {})
            findings.check(readiness.get("service") == target.get("grpcService"),
                           f"{where}: readiness asks for {target.get('grpcService')}")
            check_hardened(where, pod, container)
            env = {e["name"]: e for e in container.get("env", [])}
            findings.check(env.get("DESK_REGION", {}).get("value") == values["region"]["name"], f"{where}: DESK_REGION")
            findings.check(env.get("TZ", {}).get("value") == values["region"]["timeZone"], f"{where}: TZ")
            findings.check(env.get("DESK_GRPC__LISTEN", {}).get("value") == f"0.0.0.0:{values['grpcPort']}",
                           f"{where}: listens on all addresses at the gRPC port")
            for other in targets:
                url = env.get(f"DESK_SERVICES__{other.upper()}__URL", {}).get("value")
                if other == name:
                    findings.check(url is None, f"{where}: no address for itself")
                else:
                    findings.check(url == f"http://{prefix}-{other}:{values['grpcPort']}" and named("Service", f"{prefix}-{other}"),
                                   f"{where}: calls {other} at its Service")
            peers = [n for n in env if n.startswith("DESK_GATEWAY__PEERS__")]
            if name == exposed:
                findings.check(sorted(peers) == sorted(f"DESK_GATEWAY__PEERS__{r.upper()}__URL" for r in values["region"]["peers"]),
                               f"{where}: knows every peer region's gateway")
            else:
                findings.check(not peers, f"{where}: peers are the gateway's alone")
            if target.get("database"):
                findings.check(f"DESK_DATABASE__SERVICES__{name.upper()}" in env or "DESK_DATABASE__URL" in env,
                               f"{where}: has its database URL")
                findings.check(all("value" not in env[n] for n in env if n.startswith("DESK_DATABASE__SERVICES__") or n == "DESK_DATABASE__URL"),
                               f"{where}: database URLs come from Secrets only")
            findings.check("value" not in env.get("DESK_NATS__PASSWORD", {"valueFrom": {}}),
                           f"{where}: the NATS password comes from a Secret")
        spread = pod.get("topologySpreadConstraints", [])
        findings.check(len(spread) == len(target.get("topologySpread", [])) and all(
            c["labelSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items() for c in spread),
            f"{source}: Deployment {name} spreads its own pods as configured")
        findings.check(pod.get("priorityClassName", "") == target.get("priorityClassName", ""),
                       f"{source}: Deployment {name} priority class")
        strategy = deployment["spec"]["strategy"]
        if name == exposed:
            rolling = strategy.get("rollingUpdate", {})
            surge = rolling.get("maxSurge")
            findings.check(strategy.get("type") == "RollingUpdate" and rolling.get("maxUnavailable") in (0, "0%")
                           and surge not in (None, 0, "0%"),
                           f"{source}: the gateway rolls with surge and zero unavailable")
        findings.check(("replicas" in deployment["spec"]) != target["autoscaling"]["enabled"],
                       f"{source}: Deployment {name} leaves replicas to its HPA exactly when autoscaling")

    # Only the gateway is exposed.
    for service in by_kind.get("Service", []):
        findings.check(service["spec"].get("type", "ClusterIP") == "ClusterIP",
                       f"{source}: Service {service['metadata']['name']} is ClusterIP")
    routes = by_kind.get("Ingress", []) + by_kind.get("GRPCRoute", []) + by_kind.get("HTTPRoute", [])
    backends = set()
    for route in routes:
        if route["kind"] == "Ingress":
            spec = route["spec"]
            if "defaultBackend" in spec:
                backends.add(spec["defaultBackend"]["service"]["name"])
            for rule in spec.get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    backends.add(path["backend"]["service"]["name"])
        else:
            for rule in route["spec"]["rules"]:
                backends.update(b["name"] for b in rule["backendRefs"])
    if exposed:
        findings.check(backends == {f"{prefix}-{exposed}"}, f"{source}: the routes in lead to the gateway only ({sorted(backends)})")
        kinds = sorted(r["kind"] for r in routes)
        wanted = ["Ingress"] if expose["kind"] == "ingress" else (
            ["GRPCRoute", "HTTPRoute"] if expose["gatewayApi"].get("grpcWebHost") else ["GRPCRoute"])
        findings.check(kinds == sorted(wanted), f"{source}: exposed through {wanted} (found {kinds})")
    else:
        findings.check(not routes, f"{source}: nothing exposed when expose.kind is none")
    if values["networkPolicy"]["enabled"]:
        release_selector = {"app.kubernetes.io/name": "desk", "app.kubernetes.io/instance": RELEASE}
        metrics_port = values["metrics"]["serviceMonitor"]["port"]
        for name in targets:
            policies = named("NetworkPolicy", f"{prefix}-{name}")
            if not policies:
                continue
            policy = policies[0]["spec"]
            findings.check(sorted(policy.get("policyTypes", [])) == ["Egress", "Ingress"],
                           f"{source}: NetworkPolicy {name} restricts ingress and egress")
            findings.check(policy["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == name,
                           f"{source}: NetworkPolicy {name} selects {name}'s pods")
            for rule in policy.get("ingress", []):
                ports = {p.get("port") for p in rule.get("ports", [])}
                internal = bool(rule.get("from")) and all(
                    set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels") == release_selector
                    for peer in rule["from"])
                metrics = values["metrics"]["serviceMonitor"]["enabled"] and ports <= {"metrics", metrics_port}
                if name != exposed:
                    findings.check(internal or metrics,
                                   f"{source}: {name} is reachable from the release's pods only ({rule})")
            if name == exposed:
                scraping = values["metrics"]["serviceMonitor"]["enabled"]
                outside = [r for r in policy.get("ingress", []) if (not r.get("from") or any(
                    set(p) != {"podSelector"} for p in r["from"])) and not (
                    scraping and {p.get("port") for p in r.get("ports", [])} <= {"metrics", metrics_port})]
                wanted_from = values["networkPolicy"]["exposedFrom"]
                findings.check(len(outside) == 1 and outside[0].get("from", []) == wanted_from,
                               f"{source}: the gateway is reachable from outside as networkPolicy.exposedFrom says")

    # The migration Job: a pre-install/pre-upgrade hook, ordered before the Deployments.
    database_targets = sorted(n for n, t in targets.items() if t.get("database"))
    jobs = by_kind.get("Job", [])
    if values["migrations"]["enabled"] and database_targets:
        findings.check(len(jobs) == 1, f"{source}: one migration Job")
        for job in jobs:
            hook = hook_of(job)
            findings.check({"pre-install", "pre-upgrade"} <= hook, f"{source}: the migration Job is a pre-install and pre-upgrade hook")
            findings.check("before-hook-creation" in annotations_of(job).get("helm.sh/hook-delete-policy", ""),
                           f"{source}: a new migration Job replaces the last one")
            pod = job["spec"]["template"]["spec"]
            findings.check(pod.get("restartPolicy") == "Never", f"{source}: the migration pod does not restart in place")
            account = pod.get("serviceAccountName")
            accounts = named("ServiceAccount", account or "")
            findings.check(len(accounts) == 1 and {"pre-install", "pre-upgrade"} <= hook_of(accounts[0]) and
                           int(annotations_of(accounts[0]).get("helm.sh/hook-weight", "0")) <
                           int(annotations_of(job).get("helm.sh/hook-weight", "0")),
                           f"{source}: the Job's ServiceAccount is a hook of its own, made before the Job")
            for container in pod["containers"]:
                where = f"{source}: migration container {container['name']}"
                findings.check(container.get("args") == ["migrate", "--target", ",".join(database_targets)],
                               f"{where}: desk migrate --target {','.join(database_targets)}")
                findings.check(container["image"] == image, f"{where}: the one desk image")
                check_hardened(where, pod, container)
                env = {e["name"] for e in container.get("env", [])}
                for name in database_targets:
                    findings.check(f"DESK_DATABASE__SERVICES__{name.upper()}" in env or "DESK_DATABASE__URL" in env,
                                   f"{where}: has {name}'s database URL")
        hooked = [f"{d['kind']}/{d['metadata']['name']}" for d in docs if hook_of(d) and d["kind"] not in ("Job", "ServiceAccount")]
        findings.check(not hooked, f"{source}: only the migration Job and its account are hooks ({hooked})")
        findings.check(all(not hook_of(d) for d in deployments),
                       f"{source}: Deployments are applied after the pre-install/pre-upgrade hooks succeeded")
    else:
        findings.check(not jobs, f"{source}: no migration Job without database targets")


# ---- values: schema, time zone, bad files -----------------------------------------------------

def check_values(chart: helm.Chart, schema: dict, source: str, values: dict) -> dict:
    merged = chart.merge_values(values)
    try:
        chart.validate_schema(values)
        findings.check(True, f"{source}: Helm accepts the values")
    except helm.HelmValuesError as error:
        findings.check(False, f"{source}: Helm refuses the values: {error}")
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(merged), key=str)
    findings.check(not errors, f"{source}: values.schema.json accepts the values: "
                   + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:3]))
    zone = merged["region"]["timeZone"]
    findings.check(zone in zoneinfo.available_timezones(), f"{source}: {zone} is an IANA time zone")
    return merged


def check_bad_values(chart: helm.Chart, schema: dict) -> int:
    """Each tests/bad/*.yaml must be refused by Helm and by jsonschema, with its `# refused:` text."""
    refused = 0
    for path in sorted((CHART / "tests" / "bad").glob("*.yaml")):
        text = path.read_text()
        match = re.search(r"^# refused: (.+)$", text, re.MULTILINE)
        if not findings.check(match is not None, f"{path.name}: names the refusal it expects (# refused: ...)"):
            continue
        expected = match.group(1).strip()
        values = helm.values_from_yaml(text)
        try:
            chart.validate_schema(values)
            findings.check(False, f"{path.name}: Helm accepted a bad value set")
        except helm.HelmValuesError as error:
            findings.check(expected in str(error), f"{path.name}: Helm refuses it with {expected!r} (said: {error})")
        try:
            chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            findings.check(False, f"{path.name}: rendered despite bad values")
        except helm.HelmError:
            findings.check(True, f"{path.name}: does not render")
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(chart.merge_values(values)))
        if findings.check(bool(errors), f"{path.name}: values.schema.json refuses it"):
            refused += 1
    findings.check(refused >= 5, f"tests/bad: at least five bad value sets refused ({refused})")
    return refused


# ---- NATS values, the examples' agreement with them, the image ---------------------------------

def check_nats_and_examples() -> None:
    for region in REGIONS:
        source = f"examples/nats/{region}.yaml"
        nats = yaml.safe_load((CHART / "examples" / "nats" / f"{region}.yaml").read_text())
        desk = yaml.safe_load((CHART / "examples" / f"{region}.yaml").read_text())
        config = nats["config"]
        gateway = config["gateway"]
        findings.check(config["cluster"]["enabled"] and config["cluster"]["replicas"] >= 3,
                       f"{source}: a cluster of at least three servers")
        findings.check(gateway["enabled"] and config["cluster"]["merge"]["name"] == gateway["merge"]["name"] == region,
                       f"{source}: cluster and gateway are both named {region}")
        names = [g["name"] for g in gateway["merge"]["gateways"]]
        findings.check(sorted(names) == sorted(REGIONS), f"{source}: gateways to every region once ({names})")
        urls = {g["name"]: g["urls"] for g in gateway["merge"]["gateways"]}
        findings.check(gateway["merge"].get("advertise", "") in {u.removeprefix("nats://") for u in urls.get(region, [])},
                       f"{source}: advertises the address the others dial")
        jetstream = config["jetstream"]
        findings.check(jetstream["enabled"] and jetstream["fileStore"]["enabled"] and not jetstream["memoryStore"]["enabled"],
                       f"{source}: JetStream on file storage")
        findings.check("domain" not in json.dumps(jetstream), f"{source}: no JetStream domain (one super-cluster)")
        findings.check(config["merge"].get("$include") == "desk/desk-accounts.conf", f"{source}: includes the desk accounts")
        secret = nats["container"]["merge"]["envFrom"][0]["secretRef"]["name"]
        findings.check(secret == desk["nats"]["credentialsSecret"],
                       f"examples/{region}.yaml: the services' NATS passwords come from the Secret nats-server reads ({secret})")
        findings.check(desk["region"]["name"] == region, f"examples/{region}.yaml: region {region}")
        findings.check(sorted(desk["region"]["peers"]) == sorted(r for r in REGIONS if r != region),
                       f"examples/{region}.yaml: peers are the other regions")
    # The same generator that writes infra/nats/ prints the accounts the NATS values include.
    generator = (REPO / "infra" / "nats" / "desk-nats-config.sh").read_text()
    findings.check("accounts) accounts" in generator, "infra/nats/desk-nats-config.sh prints the accounts alone")


def check_image() -> None:
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^release:\n\t\$\(CARGO\) (build [^\n]+)$", makefile, re.MULTILINE)
    if not findings.check(match is not None, "Makefile has a release target"):
        return
    dockerfile = (REPO / "infra" / "Dockerfile").read_text()
    findings.check(f"cargo {match.group(1)}" in dockerfile,
                   f"infra/Dockerfile builds with make release's command (cargo {match.group(1)})")
    findings.check(re.search(r"^USER 65532:65532$", dockerfile, re.MULTILINE) is not None, "the image runs as user 65532")
    findings.check('ENTRYPOINT ["/usr/local/bin/desk"]' in dockerfile, "the image's entrypoint is desk")


def main() -> int:
    started = time.monotonic()
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    value_sets = [("values.yaml", None)] + [(f"examples/{r}.yaml", CHART / "examples" / f"{r}.yaml") for r in REGIONS] + [
        (f"tests/values/{p.name}", p) for p in sorted((CHART / "tests" / "values").glob("*.yaml"))]
    manifests = 0
    with helm.Chart.load(CHART) as chart:
        for source, path in value_sets:
            values = load_values(path)
            report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
            problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
            findings.check(not problems, f"{source}: helm lint --strict: {problems}")
            merged = check_values(chart, schema, source, values)
            for upgrade in (False, True):
                docs = render(chart, values, upgrade=upgrade)
                if not upgrade:
                    for doc in docs:
                        validate_manifest(strip(doc), source)
                    manifests += len(docs)
                check_rendered(f"{source} ({'upgrade' if upgrade else 'install'})", merged, docs)
        refused = check_bad_values(chart, schema)
    check_nats_and_examples()
    check_image()
    seconds = time.monotonic() - started
    print(f"chart check: {len(value_sets)} value sets, {manifests} manifests against Kubernetes "
          f"{KUBERNETES_VERSION}, {refused} bad value sets refused, in {seconds:.1f} s")
    print(f"{findings.checks - len(findings.failed)} passed, {len(findings.failed)} failed")
    return 1 if findings.failed else 0


if __name__ == "__main__":
    sys.exit(main())
