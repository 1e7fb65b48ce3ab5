"""The shipped deployment files are valid and agree with the shipped configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install prometheus-alertmanager " \
                 "(make test installs it when run as root)"
    return path


def test_amtool_accepts_the_shipped_alertmanager_config() -> None:
    result = subprocess.run([tool("amtool"), "check-config",
                             str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_configured_area_reaches_its_own_duty_inspector() -> None:
    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    routed = {}
    for route in am["route"]["routes"]:
        [matcher] = route["matchers"]
        label, _, value = matcher.partition("=")
        assert label == "area"
        routed[value.strip('"')] = route["receiver"]
    areas = {a.code for a in load_config().areas}
    assert set(routed) == areas
    assert len(set(routed.values())) == len(areas), "one receiver per area"
    assert am["route"]["receiver"] not in routed.values(), "force-wide alerts go elsewhere"
    severities = {r.severity for r in load_config().rules}
    assert "critical" in severities and severities <= {"critical", "warning", "info"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120,
                          cwd=DEPLOY / "prometheus")


def test_promtool_accepts_the_config_and_rules_and_their_unit_tests_pass() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (make test does as root)"
    for args in (("check", "config", "prometheus.yml"),
                 ("check", "rules", "demandflow-recording.rules.yml",
                  "demandflow-pipeline.rules.yml"),
                 ("test", "rules", "tests/demandflow.test.yml")):
        result = run(promtool, *args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_committed_dashboards_are_exactly_what_the_generator_makes() -> None:
    from pipeline.dashboards import dashboards, render

    folder = DEPLOY / "grafana" / "dashboards"
    generated = dashboards(load_config())
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(generated)
    for name, dashboard in generated.items():
        assert (folder / name).read_bytes() == render(dashboard), \
            f"{name} drifted from pipeline/dashboards.py: run `demandflow dashboards`"


def test_wall_panels_are_readable_from_across_the_room() -> None:
    from pipeline.dashboards import control_room

    wall = control_room(load_config())
    stats = [p for p in wall["panels"] if p["type"] == "stat"]
    assert len(wall["panels"]) <= 12 and len(stats) >= 4
    for p in stats:
        assert p["options"]["colorMode"] == "background", p["title"]
        assert len(p["fieldConfig"]["defaults"]["thresholds"]["steps"]) >= 2 or \
            p["title"].startswith("Demand"), p["title"]


def test_docker_compose_accepts_the_compose_file() -> None:
    # The Docker client here has no compose plugin; Debian's docker-compose parses the
    # same file format (make test installs it as root). No engine is needed for `config`.
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: apt-get install docker-compose"
    result = subprocess.run([compose, "-f", str(DEPLOY / "docker-compose.yml"), "--profile",
                             "simulator", "config", "--services"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"kafka", "worker-1", "worker-2", "simulator",
                                          "prometheus", "alertmanager", "grafana"}


def test_the_secured_compose_variant_puts_every_kafka_client_on_mutual_tls() -> None:
    """deploy/docker-compose.secured.yml: the broker requires client certificates, and every
    service that talks to Kafka presents one, from secrets it mounts (the same broker
    settings and certificate script are proven by test_secured_kafka's mtls broker)."""
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: apt-get install docker-compose"
    result = subprocess.run([compose, "-f", str(DEPLOY / "docker-compose.yml"), "-f",
                             str(DEPLOY / "docker-compose.secured.yml"), "--profile",
                             "simulator", "config"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_SSL_CLIENT_AUTH"] == "required"
    assert "PLAINTEXT" not in kafka["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("worker-1", "worker-2", "simulator"):
        env = services[name]["environment"]
        assert env["DEMANDFLOW_KAFKA_SECURITY_PROTOCOL"] == "SSL", name
        mounted = {f"/run/secrets/{s['source']}" for s in services[name]["secrets"]}
        for setting in ("CA_FILE", "CERT_FILE", "KEY_FILE"):
            assert env[f"DEMANDFLOW_KAFKA_{setting}"] in mounted, (name, setting)
    assert (DEPLOY / "tls" / "make-certs.sh").stat().st_mode & 0o111


def _kustomize() -> dict[str, dict]:
    """The built manifests by kind: with kubectl when present, else from the files."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    labels = kustomization["labels"][0]["pairs"]
    docs = {}
    for name in kustomization["resources"]:
        doc = yaml.safe_load((DEPLOY / "k8s" / name).read_text())
        if doc["kind"] == "Deployment":
            doc["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {})
            doc["spec"]["template"]["metadata"]["labels"].update(labels)
        if doc["kind"] == "Service":
            doc["spec"].setdefault("selector", {}).update(labels)
        docs[doc["kind"]] = doc
    return docs


def test_kubernetes_manifests_build_with_probes_and_a_disruption_budget() -> None:
    docs = _kustomize()
    pod = docs["Deployment"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # Security review (issue 15): non-root, read-only root, no capabilities, limits, and the
    # view token from a Secret, not from the manifests.
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "view-token")
    assert env["DEMANDFLOW_VIEW_TOKEN_FILE"].startswith(mount["mountPath"])
    secret = next(v for v in pod["spec"]["volumes"] if v["name"] == "view-token")["secret"]
    assert secret["secretName"] == "demandflow-view-token"
    # Kafka's CA and password from a Secret too, mounted where the settings point.
    kafka = next(m for m in container["volumeMounts"] if m["name"] == "kafka")
    for setting in ("DEMANDFLOW_KAFKA_CA_FILE", "DEMANDFLOW_KAFKA_PASSWORD_FILE"):
        assert env[setting].startswith(kafka["mountPath"] + "/"), setting
    kafka_secret = next(v for v in pod["spec"]["volumes"] if v["name"] == "kafka")["secret"]
    assert kafka_secret["secretName"] == "demandflow-kafka"
    pdb = docs["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert docs["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_make_demo_source_replay_has_its_files_in_the_repository() -> None:
    """`make demo SOURCE=replay` from a plain clone: the default files ship with the project
    and read as a week of incidents with the default mapping."""
    from pipeline.replay import load_mapping, plan

    out = subprocess.run(["make", "-n", "demo", "SOURCE=replay"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    files = [Path(ROOT / f) for f in re.findall(r"--replay-file (\S+)", out)]
    assert files and all(f.is_file() and ROOT in f.resolve().parents for f in files)
    docs, summary = plan(files, load_mapping("decc-cad"), load_config())
    assert summary.incidents > 500 and len(docs) == summary.events
