"""Issue 14, runtimes: Docker (the default) or Podman's Docker-compatible service, chosen in the
matrix (build.runtime) or with --runtime; the reproducer lines name the runtime that ran, with
the same flags; the run records the runtime and its version. No engine here: fakes only."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import reportdata
import requests.exceptions
from test_container_faults import FakeClient, FakeContainer
from test_container_limits import STEP
from test_matrix import error, load

from harness import arch, cli, container, image, metadata, pipeline, runinfo, runtime
from harness.matrix import Combination, Matrix
from harness.verdict import EXIT_INFRA, InfraError, InputError

PODMAN = runtime.Runtime("podman", "unix:///run/podman/podman.sock")


def test_docker_is_the_default_and_podman_listens_where_podman_does() -> None:
    assert runtime.runtime() == runtime.runtime("docker") == runtime.Runtime("docker")
    assert runtime.runtime("podman", env={}).base_url.startswith("unix://")
    with pytest.raises(InputError, match="unknown container runtime 'rkt'"):
        runtime.runtime("rkt")


def test_the_podman_socket_comes_from_the_environment_or_podmans_own_default() -> None:
    env_path = {runtime.PODMAN_SOCKET_ENV: "/srv/p.sock"}
    assert runtime.podman_url(env_path, uid=1000) == "unix:///srv/p.sock"
    assert runtime.podman_url({runtime.PODMAN_SOCKET_ENV: "tcp://h:1"}, uid=0) == "tcp://h:1"
    assert runtime.podman_url({}, uid=0) == "unix:///run/podman/podman.sock"
    assert runtime.podman_url({"XDG_RUNTIME_DIR": "/run/user/1000"}, uid=1000) == \
        "unix:///run/user/1000/podman/podman.sock"
    assert runtime.podman_url({}, uid=1001) == "unix:///run/user/1001/podman/podman.sock"


def test_the_podman_line_is_the_docker_line_with_the_same_flags() -> None:
    docker_line = shlex.split(container.docker_run_line("kmatrix-builder:x", STEP))
    podman_line = shlex.split(container.docker_run_line("kmatrix-builder:x", STEP, PODMAN.cli))
    assert docker_line[:2] == ["docker", "run"]
    # the service the run used: its storage and its containers.conf
    assert podman_line[:4] == ["podman", "--url", "unix:///run/podman/podman.sock", "run"]
    assert podman_line[4:] == docker_line[2:]


def test_a_podman_runner_logs_and_returns_podman_lines() -> None:
    client = FakeClient(FakeContainer(0))
    runner = container.DockerRunner("kmatrix-builder:x", client, "r1", PODMAN)
    log = io.StringIO()
    result = runner.run(STEP, log)
    assert result.command.startswith("podman --url unix:///run/podman/podman.sock run --rm ")
    assert log.getvalue().startswith(f"\n$ {result.command}\n")
    assert runner.reproducer(STEP) == result.command
    # the same security settings go to either engine
    assert client.kwargs["cap_drop"] == ["ALL"] and client.kwargs["read_only"] is True
    assert client.kwargs["labels"][container.RUN_LABEL] == "r1"


def test_a_lost_podman_service_is_named_with_what_to_check() -> None:
    client = FakeClient(FakeContainer(requests.exceptions.ConnectionError("reset")))
    runner = container.DockerRunner("kmatrix-builder:x", client, "r1", PODMAN)
    with pytest.raises(InfraError, match=r"Podman engine .*podman --url unix:///run/podman/"):
        runner.run(STEP, io.StringIO())


def test_no_podman_service_is_one_line_and_an_infrastructure_error(tmp_path: Path) -> None:
    absent = runtime.Runtime("podman", f"unix://{tmp_path}/no/podman.sock")
    with pytest.raises(InfraError) as info:
        runtime.connect(absent)
    message = info.value.message
    assert info.value.exit_status == EXIT_INFRA and "\n" not in message
    assert message.startswith(f"no Podman service answers at unix://{tmp_path}/no/podman.sock")
    assert "harness/scripts/start-podman" in message


def test_the_engine_version_names_podman_or_docker() -> None:
    podman = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
    docker_ = {"Version": "28.2.2", "Components": [{"Name": "Engine", "Version": "28.2.2"}]}
    assert runtime.describe_version(podman) == "Podman 4.3.1"
    assert runtime.describe_version(docker_) == "Docker 28.2.2"
    assert runtime.describe_version({}) == ""


def test_the_matrix_chooses_the_runtime(tmp_path: Path) -> None:
    assert load(tmp_path, "include: [{}]\n").build.runtime == "docker"
    assert load(tmp_path, "include: [{}]\nbuild: {runtime: podman}\n").build.runtime == "podman"
    assert error(tmp_path, "include: [{}]\nbuild:\n  runtime: lxc\n") == \
        "M:3: runtime must be one of docker, podman (got 'lxc')"


def test_run_and_image_take_runtime() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["run", "--runtime", "podman"]).runtime == "podman"
    assert parser.parse_args(["run"]).runtime is None  # the matrix's build.runtime
    assert parser.parse_args(["image", "--runtime", "podman"]).runtime == "podman"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run", "--runtime", "lxc"])
    assert exit_info.value.code == 2


def test_the_kmatrix_reproducer_names_a_runtime_the_matrix_did_not() -> None:
    m = Matrix(Path("/m.yaml"), "debian", arch.get("x86_64"), "tinyconfig", (), (),
               [Combination("dups-y", (), 1)])
    assert pipeline.reproducer_line(m, m.combinations[0], "docker") == \
        "kmatrix run /m.yaml --only dups-y"
    assert pipeline.reproducer_line(m, m.combinations[0], "podman") == \
        "kmatrix run /m.yaml --only dups-y --runtime podman"


def test_metadata_and_kcidb_carry_the_runtime_that_ran() -> None:
    record = reportdata.make_record("x", "pass", {})
    old = runinfo.RunInfo("r", "m.yaml")  # a run directory from before runtimes
    assert old.runtime == "docker"
    assert metadata.metadata(record, old)["build"]["runtime"] == "docker"
    record.image["runtime"] = "podman"
    info = runinfo.RunInfo("r", "m.yaml", settings={"runtime": "podman",
                                                    "runtime_version": "Podman 4.3.1"})
    meta = metadata.metadata(record, info)
    assert meta["build"]["runtime"] == "podman"
    assert meta["runtime"]["version"] == "Podman 4.3.1"


def test_runinfo_reads_the_runtime_from_run_json(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "runtime": "podman",
                                                   "runtime_version": "Podman 4.3.1"}))
    info = runinfo.load(tmp_path)
    assert info.runtime == "podman" and info.settings["runtime_version"] == "Podman 4.3.1"


class FakeImage:
    def __init__(self, images: FakeImages, image_id: str, tags: list[str]) -> None:
        self.images, self.id, self.tags = images, image_id, tags

    def tag(self, repo: str, tag: str) -> bool:
        self.tags.append(f"docker.io/library/{repo}:{tag}")
        return True


class FakeImages:
    """Podman 4.3's compatible API: import drops the tag and names the image REPO:latest."""

    def __init__(self) -> None:
        self.by_id: dict[str, FakeImage] = {}
        self.removed: list[str] = []

    def get(self, name: str) -> FakeImage:
        for img in self.by_id.values():
            if name == img.id or f"docker.io/library/{name}" in img.tags:
                return img
        raise docker.errors.ImageNotFound(name)

    def remove(self, name: str) -> None:
        self.removed.append(name)
        for img in self.by_id.values():
            img.tags = [t for t in img.tags if t != name]


class FakeApi:
    def __init__(self, images: FakeImages) -> None:
        self.images = images

    def import_image(self, src: str, repository: str, tag: str) -> str:
        image_id = "sha256:" + "ab" * 32
        self.images.by_id[image_id] = FakeImage(self.images, image_id,
                                                [f"docker.io/library/{repository}:latest"])
        return json.dumps({"status": image_id, "id": image_id}) + "\n"


class FakePodman:
    def __init__(self) -> None:
        self.images = FakeImages()
        self.api: Any = FakeApi(self.images)


def test_an_import_podman_names_repo_latest_is_tagged_as_asked(tmp_path: Path) -> None:
    client = FakePodman()
    image.import_tagged(client, tmp_path / "rootfs.tar", "kmatrix-builder:abc")
    imported = client.images.get("kmatrix-builder:abc")
    assert imported.tags == ["docker.io/library/kmatrix-builder:abc"]
    assert client.images.removed == ["docker.io/library/kmatrix-builder:latest"]


class FakeInfo:
    def __init__(self, host: dict[str, Any]) -> None:
        self.host = host

    def json(self) -> dict[str, Any]:
        return {"host": self.host}


class FakeLibpod:
    base_url = "http+docker://localhost"

    def __init__(self, host: dict[str, Any]) -> None:
        self.host = host
        self.asked: list[str] = []

    def get(self, url: str, timeout: float) -> FakeInfo:
        self.asked.append(url)
        return FakeInfo(self.host)


class FakeService:
    def __init__(self, host: dict[str, Any]) -> None:
        self.api = FakeLibpod(host)


def test_rootless_podman_that_would_ignore_the_limits_is_refused() -> None:
    # seen here (Debian 12, cgroup v1): rootless Podman runs the container and drops --memory
    # and --pids-limit with a warning on its own terminal only
    rootless_v1 = FakeService({"cgroupControllers": [], "cgroupVersion": "v1",
                               "security": {"rootless": True}})
    with pytest.raises(InfraError) as info:
        runtime.check_limits(rootless_v1, PODMAN)
    assert info.value.exit_status == EXIT_INFRA
    assert "rootless Podman service at unix:///run/podman/podman.sock cannot enforce the " \
        "memory and pids limits" in info.value.message
    assert rootless_v1.api.asked == ["http+docker://localhost/v4.0.0/libpod/info"]
    root = FakeService({"cgroupControllers": ["cpu", "memory", "pids"], "cgroupVersion": "v1",
                        "security": {"rootless": False}})
    runtime.check_limits(root, PODMAN)  # nothing raised
    delegated_v2 = FakeService({"cgroupControllers": ["memory", "pids"], "cgroupVersion": "v2",
                                "security": {"rootless": True}})
    runtime.check_limits(delegated_v2, PODMAN)


class FakeSaved:
    def save(self, named: bool) -> list[bytes]:
        assert named
        return [b"tar", b"chunks"]


class FakeDonorImages:
    def __init__(self, has: bool) -> None:
        self.has = has

    def get(self, name: str) -> FakeSaved:
        if not self.has:
            raise docker.errors.ImageNotFound(name)
        return FakeSaved()


class FakeDonor:
    def __init__(self, has: bool) -> None:
        self.images = FakeDonorImages(has)


class LoadingImages(FakeImages):
    """Podman's load: the image comes back as localhost/REPO:TAG."""

    def load(self, data: list[bytes]) -> list[FakeImage]:
        assert b"".join(data) == b"tarchunks"
        image_id = "sha256:" + "cd" * 32
        self.by_id[image_id] = FakeImage(self, image_id, ["localhost/kmatrix-builder:abc"])
        return [self.by_id[image_id]]


def test_a_missing_podman_image_is_copied_from_docker_when_docker_has_it(tmp_path: Path) -> None:
    client = FakePodman()
    client.images = LoadingImages()
    assert image.copy_image(FakeDonor(has=False), client, "kmatrix-builder:abc") is False
    assert image.copy_image(FakeDonor(has=True), client, "kmatrix-builder:abc") is True
    assert client.images.get("kmatrix-builder:abc").tags == \
        ["docker.io/library/kmatrix-builder:abc"]
    logged: list[str] = []
    spec = image.ImageSpec(("gcc",), "abc")
    assert image.ensure_image(client, spec, tmp_path, logged.append,
                              donor=lambda: FakeDonor(has=True)) == "kmatrix-builder:abc"
    assert logged == []  # there already: nothing copied, nothing built


def test_docker_has_no_donor() -> None:
    assert runtime.donor(runtime.runtime("docker")) is None


def test_report_html_names_the_runtime_and_its_version(tmp_path: Path) -> None:
    from harness import report_html

    record = reportdata.make_record("x", "pass", {})
    info = runinfo.RunInfo("r", "m.yaml", settings={"runtime": "podman",
                                                    "runtime_version": "Podman 4.3.1"})
    page = report_html.render(tmp_path, [record], info, None, None, "t")
    assert "<dt>container runtime</dt><dd>podman (Podman 4.3.1)</dd>" in page
    old = report_html.render(tmp_path, [record], runinfo.RunInfo("r", "m.yaml"), None, None, "t")
    assert "<dt>container runtime</dt><dd>docker</dd>" in old


def test_ensure_image_copies_a_missing_image_before_building_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    client = FakePodman()
    client.images = LoadingImages()
    built: list[str] = []
    monkeypatch.setattr(image, "build_with_dockerfile", lambda *a: built.append("dockerfile"))
    logged: list[str] = []
    spec = image.ImageSpec(("gcc",), "abc")
    assert image.ensure_image(client, spec, tmp_path, logged.append,
                              donor=lambda: FakeDonor(has=True)) == "kmatrix-builder:abc"
    assert logged == ["kmatrix: builder image kmatrix-builder:abc copied from the other engine"]
    assert built == []
