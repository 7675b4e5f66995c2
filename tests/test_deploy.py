"""deploy/kubernetes: every overlay renders with `kubectl kustomize`, passes
`kubernetes-validate --strict`, and says what the service needs (settings, resources,
probes, a locked-down pod, a drain inside the grace period)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from bench.server import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir())
# The newest Kubernetes whose schemas kubernetes-validate bundles (its default), and an
# older one, so the manifests use no field a cluster of a few releases ago lacks.
VERSIONS = [None, "1.30.0"]
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = (
            "kubectl is missing: it is on this project's machine image; elsewhere install it "
            "from Kubernetes' apt repository (pkgs.k8s.io) or any kubectl on PATH"
        )
        if os.environ.get("ONEBYONE_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def render(overlay: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def validate(path: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    args = [str(VALIDATE), "--strict", *(["-k", version] if version else []), str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, render(request.param)


def docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def container(rendered: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (c,) = rendered["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(c, dict)
    return c


def settings_of(rendered: dict[str, dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = rendered["ConfigMap"]["data"]
    return data


def test_both_overlays_are_there() -> None:
    assert OVERLAYS == ["cpu", "gpu"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_overlay_passes_strict_validation(
    overlay: tuple[str, str], version: str | None, tmp_path: Path
) -> None:
    name, text = overlay
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    done = validate(path, version)
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("configmap", "service", "deployment", "poddisruptionbudget"):
        assert f"passed for resource {kind}/onebyone" in done.stdout
    assert "horizontalpodautoscaler/onebyone" in done.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["Deployment"]["spec"]["template"]["spec"].update(securityContxt={}),
         "Additional properties are not allowed"),
        (lambda d: d["ConfigMap"]["data"].update(ONEBYONE_GRACE_PERIOD_S=30),
         "is not of type 'string'"),
    ],
)  # fmt: skip
def test_strict_validation_refuses_a_misspelt_field_and_a_number_for_a_string(
    change: Any, message: str, tmp_path: Path
) -> None:
    rendered = docs(render("cpu"))
    change(rendered)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(rendered.values()))
    done = validate(path, None)
    assert done.returncode != 0 and message in done.stdout + done.stderr


def test_the_settings_are_valid_and_the_drain_ends_before_the_kill(
    overlay: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = docs(overlay[1])
    data = settings_of(rendered)
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    sleep, seconds = container(rendered)["lifecycle"]["preStop"]["exec"]["command"]
    # Copied from the Deployment by kustomize's replacements, not typed twice.
    assert sleep == "sleep" and data["ONEBYONE_PRESTOP_S"] == seconds
    assert data["ONEBYONE_GRACE_PERIOD_S"] == str(grace)
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # what the service reads at start; refuses a drain past the grace
    assert settings.prestop_s + settings.drain_timeout_s + 1 <= grace
    assert settings.grace_period_s == grace


def test_cpu_matches_the_slots_and_torch_threads(overlay: tuple[str, str]) -> None:
    rendered = docs(overlay[1])
    data = settings_of(rendered)
    compute = int(data["ONEBYONE_COMPUTE_SLOTS"]) * int(data["ONEBYONE_TORCH_THREADS"])
    resources = container(rendered)["resources"]
    assert int(resources["requests"]["cpu"]) == compute
    # One core more for the event loop, so a busy pod still answers its probes.
    assert int(resources["limits"]["cpu"]) == compute + 1


def test_the_pod_runs_locked_down(overlay: tuple[str, str]) -> None:
    rendered = docs(overlay[1])
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    c = container(rendered)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    # The only writable place is an emptyDir, where bodies spool (TMPDIR) and matplotlib
    # keeps its config (the image's MPLCONFIGDIR is under /tmp).
    (mount,) = c["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount["mountPath"] == "/tmp" and volume["name"] == mount["name"]
    assert "emptyDir" in volume and volume["emptyDir"]["sizeLimit"]
    assert {"name": "TMPDIR", "value": "/tmp"} in c["env"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "MPLCONFIGDIR=/tmp/matplotlib" in dockerfile and "--uid 10001" in dockerfile


def test_probes_and_selectors(overlay: tuple[str, str]) -> None:
    rendered = docs(overlay[1])
    c = container(rendered)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # A pod full for a moment must not leave the endpoints at once: if every replica did, a
    # Service would refuse connections instead of answering 503 with Retry-After.
    ready = c["readinessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] >= 6
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        # A loopback Host is served whatever ONEBYONE_ALLOWED_HOSTS says.
        assert c[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
    labels = rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selectors = [
        rendered["Deployment"]["spec"]["selector"]["matchLabels"],
        rendered["Service"]["spec"]["selector"],
        rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector and selector.items() <= labels.items()
    assert rendered["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    hpa = rendered["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == rendered["Deployment"]["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_gpu_overlay_asks_for_one_gpu_on_a_gpu_node() -> None:
    rendered = docs(render("gpu"))
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    c = container(rendered)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"].endswith("-cuda")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert settings_of(rendered)["ONEBYONE_COMPUTE_SLOTS"] == "4"
    cpu = docs(render("cpu"))
    assert "nvidia.com/gpu" not in container(cpu)["resources"]["limits"]
    assert "tolerations" not in cpu["Deployment"]["spec"]["template"]["spec"]
