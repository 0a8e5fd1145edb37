"""The builder image: one image, built once from containers/packages.txt, reused everywhere.

Two ways to make it, same contents: ``docker build`` of containers/Dockerfile where a registry
is reachable, or ``debootstrap --variant=minbase`` + ``docker import`` where none is (as on the
CI machines here). The tag carries a hash of the package list, so a changed list builds anew.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .verdict import InfraError

CONTAINERS_DIR = Path(__file__).resolve().parent.parent / "containers"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class ImageSpec:
    packages: tuple[str, ...]
    digest: str  # hash of the inputs that decide the image contents

    @property
    def tag(self) -> str:
        return f"kmatrix-builder:{self.digest}"


def read_spec(containers_dir: Path = CONTAINERS_DIR) -> ImageSpec:
    text = (containers_dir / "packages.txt").read_text()
    packages = tuple(line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))
    digest = hashlib.sha256(("\n".join(packages) + SUITE).encode()).hexdigest()[:12]
    return ImageSpec(packages, digest)


def debootstrap_argv(spec: ImageSpec, rootfs: Path) -> list[str]:
    return ["debootstrap", "--variant=minbase", "--include=" + ",".join(spec.packages),
            SUITE, str(rootfs), MIRROR]


def ensure_image(client: object, spec: ImageSpec, cache_dir: Path,
                 log: Callable[[str], None] = print) -> str:
    """Return the tag of the builder image, building it if it is missing."""
    import docker.errors

    try:
        client.images.get(spec.tag)  # type: ignore[attr-defined]
        return spec.tag
    except docker.errors.ImageNotFound:
        pass
    log(f"kmatrix: building the builder image {spec.tag} (once; about 2 minutes)")
    try:
        build_with_dockerfile(client, spec)
    except Exception as exc:  # noqa: BLE001 - no registry: fall back to the offline path
        log(f"kmatrix: docker build failed ({str(exc).splitlines()[0][:120]}); "
            "building offline with debootstrap")
        build_offline(client, spec, cache_dir, log)
    return spec.tag


def build_with_dockerfile(client: object, spec: ImageSpec) -> None:
    client.images.build(path=str(CONTAINERS_DIR), tag=spec.tag, rm=True,  # type: ignore[attr-defined]
                        network_mode="default", timeout=1200)


def build_offline(client: object, spec: ImageSpec, cache_dir: Path,
                  log: Callable[[str], None] = print) -> None:
    if shutil.which("debootstrap") is None:
        raise InfraError("debootstrap is missing and no registry is reachable: "
                         "apt-get install debootstrap (as root), then rerun")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv = debootstrap_argv(spec, rootfs)
        log("$ " + " ".join(argv))
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise InfraError(f"debootstrap failed ({' | '.join(last)}): check the Debian "
                             "mirror is reachable and there is 1 GB free, then rerun")
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        repo, tag = spec.tag.split(":")
        client.api.import_image(src=str(tarball), repository=repo, tag=tag)  # type: ignore[attr-defined]
    log(f"kmatrix: builder image {spec.tag} ready")


def installed_packages(runner_image: str, client: object) -> dict[str, str]:
    """Package -> version inside the image, recorded in the results (the image's pin)."""
    out = client.containers.run(  # type: ignore[attr-defined]
        runner_image, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        remove=True, network_mode="none")
    pairs = (line.split("\t", 1) for line in out.decode().splitlines() if "\t" in line)
    return {name: version for name, version in pairs}
