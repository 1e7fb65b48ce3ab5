"""deploy/kafka/kafka.sh says exactly what to install, and starts nothing for a user's cluster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"


@pytest.fixture
def without_java_or_maven(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the usual tools but neither java nor mvn."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/bin", "/bin"):
        for tool in os.listdir(folder):
            if tool not in ("java", "mvn") and not os.path.lexists(bin_dir / tool):
                (bin_dir / tool).symlink_to(Path(folder) / tool)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path),
            "DEMANDFLOW_KAFKA_CACHE": str(tmp_path / "cache"),
            "DEMANDFLOW_KAFKA_RUN_DIR": str(tmp_path / "run"),
            "DEMANDFLOW_KAFKA_PORT": "59392"}


def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True,
                          text=True, timeout=60)


def test_missing_maven_names_the_package(without_java_or_maven: dict[str, str]) -> None:
    result = run("fetch", without_java_or_maven)
    assert result.returncode == 1
    assert "Maven is required" in result.stderr and "apt-get install maven" in result.stderr


def test_missing_java_names_the_package(without_java_or_maven: dict[str, str]) -> None:
    result = run("start", without_java_or_maven)
    assert result.returncode == 1
    assert "Java 17 or newer is required" in result.stderr
    assert "apt-get install openjdk-17-jre-headless" in result.stderr


def test_a_users_cluster_means_nothing_starts_locally(without_java_or_maven: dict[str, str]
                                                      ) -> None:
    env = {**without_java_or_maven, "DEMANDFLOW_BOOTSTRAP_SERVERS": "kafka.example:9092"}
    result = run("start", env)
    assert result.returncode == 0, result.stderr
    assert "using that cluster, starting nothing" in result.stdout
    assert not Path(env["DEMANDFLOW_KAFKA_RUN_DIR"]).exists()
