"""The builder image: one image, built once from containers/packages.txt and
containers/toolchains.txt (every toolchain of harness/toolchains), reused everywhere.

Two ways to make it, same contents: ``docker build`` of containers/Dockerfile where a registry
is reachable, or ``debootstrap --variant=minbase`` + ``docker import`` where none is (as on the
CI machines here). The tag carries a hash of the package list, so a changed list builds anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .cache import remove_tree
from .verdict import InfraError, InputError

CONTAINERS_DIR = Path(__file__).resolve().parent.parent / "containers"
SUITE = "bookworm"
# Steps never run as root (harness/ownership.py), and kmatrix run as root keeps its cache under
# /root: the image's /root is 0755 (Debian's is 0700), so a step can reach its mounts there.
# Part of the image's digest: an image made before this is made again.
ROOT_HOME_MODE = 0o755
MIRROR = "http://deb.debian.org/debian"  # when neither an override nor the host's apt names one
MIRROR_ENV = "KMATRIX_DEBIAN_MIRROR"
APT_DIR = Path("/etc/apt")
# suites that mark the main Debian archive (not -security, -updates, -backports, third parties)
DEBIAN_SUITES = {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
                 "oldoldstable", "oldstable", "stable", "testing", "unstable"}
_MIRROR_URL = re.compile(r"^(https?|ftp)://[^\s/]+|^file:/")


def _debian_uri(types: list[str], uris: list[str], suites: list[str]) -> str | None:
    if "deb" not in types or not any(s in DEBIAN_SUITES for s in suites):
        return None
    return next((u.rstrip("/") for u in uris if _MIRROR_URL.match(u)), None)


def _one_line_entries(text: str) -> list[tuple[list[str], list[str], list[str]]]:
    entries = []
    for line in text.splitlines():
        # deb [ option=value ... ] URI SUITE [COMPONENT...]  # comment
        words = re.sub(r"^(\s*\S+\s+)\[[^\]]*\]", r"\1", line.split("#", 1)[0]).split()
        if len(words) >= 3:
            entries.append(([words[0]], [words[1]], [words[2]]))
    return entries


def _deb822_entries(text: str) -> list[tuple[list[str], list[str], list[str]]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() != "no":
            entries.append((fields.get("types", "").split(), fields.get("uris", "").split(),
                            fields.get("suites", "").split()))
    return entries


def apt_sources_mirror(apt_dir: Path = APT_DIR) -> tuple[str, str] | None:
    """The first `deb` URI of the main Debian archive in the host's apt sources, and the file
    that names it: sources.list, then sources.list.d/*.list and deb822 *.sources by name."""
    parts = apt_dir / "sources.list.d"
    files = [apt_dir / "sources.list", *sorted(
        p for p in (parts.iterdir() if parts.is_dir() else ()) if p.suffix in (".list", ".sources"))]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for entry in entries:
            if uri := _debian_uri(*entry):
                return uri, str(path)
    return None


def choose_mirror(override: str | None = None, env: Mapping[str, str] = os.environ,
                  apt_dir: Path = APT_DIR) -> tuple[str, str]:
    """(mirror URL, where it came from): --mirror, else $KMATRIX_DEBIAN_MIRROR, else the host's
    apt sources, else deb.debian.org."""
    for url, origin in ((override, "--mirror"), (env.get(MIRROR_ENV), f"${MIRROR_ENV}")):
        if url:
            if not _MIRROR_URL.match(url):
                raise InputError(f"{origin} {url!r} is not a mirror URL: give one like {MIRROR}")
            return url, origin
    return apt_sources_mirror(apt_dir) or (MIRROR, "the default: no Debian archive in the apt "
                                           f"sources under {apt_dir}")


FOREIGN_SCRIPT = "unpack-foreign.sh"


@dataclass(frozen=True)
class ImageSpec:
    packages: tuple[str, ...]  # installed (the host's architecture)
    digest: str  # hash of the inputs that decide the image contents
    # NAME:ARCH packages of other architectures, unpacked under /opt/kmatrix/ARCH/ by
    # containers/unpack-foreign.sh (a cross-built guest's static busybox)
    foreign: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return f"kmatrix-builder:{self.digest}"


def read_list(path: Path) -> tuple[str, ...]:
    """A package list: one Debian package a line, # comments."""
    return tuple(line.strip() for line in path.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


def read_spec(containers_dir: Path = CONTAINERS_DIR) -> ImageSpec:
    """The base list (containers/packages.txt) and every toolchain's packages
    (containers/toolchains.txt, the same as harness.toolchains.image_packages(): a unit test
    holds them equal): one image holds every toolchain (docs/toolchains.md says why). NAME:ARCH
    lines are other architectures' packages, unpacked by containers/unpack-foreign.sh."""
    lines = read_list(containers_dir / "packages.txt")
    toolchains = containers_dir / "toolchains.txt"
    if toolchains.is_file():
        lines += tuple(p for p in read_list(toolchains) if p not in lines)
    script = containers_dir / FOREIGN_SCRIPT
    foreign = tuple(line for line in lines if ":" in line)
    inputs = ("\n".join(lines) + SUITE + f"/root {ROOT_HOME_MODE:o}"
              + (script.read_text() if foreign and script.exists() else ""))
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    return ImageSpec(tuple(line for line in lines if ":" not in line), digest, foreign)


DEBOOTSTRAP_TIMEOUT_S = 1800.0  # about 2 minutes here with a near mirror
TAR_TIMEOUT_S = 600.0
PACKAGE_LIST_TIMEOUT_S = 120.0


def debootstrap_argv(spec: ImageSpec, rootfs: Path, mirror: str = MIRROR) -> list[str]:
    return ["debootstrap", "--variant=minbase", "--include=" + ",".join(spec.packages),
            SUITE, str(rootfs), mirror]


def unpack_foreign_argv(spec: ImageSpec, rootfs: Path) -> list[str]:
    """The offline build's run of containers/unpack-foreign.sh inside the new root filesystem
    (the Dockerfile runs the same script); the script is copied to /tmp there first."""
    return ["chroot", str(rootfs), "sh", f"/tmp/{FOREIGN_SCRIPT}", *spec.foreign]


def ensure_image(client: object, spec: ImageSpec, cache_dir: Path,
                 log: Callable[[str], None] = print, mirror: str | None = None,
                 donor: Callable[[], object | None] | None = None) -> str:
    """Return the tag of the builder image, building it if it is missing (or copying it from
    the engine `donor()` connects to, when that has it: Docker's, for a Podman run)."""
    import docker.errors

    try:
        client.images.get(spec.tag)  # type: ignore[attr-defined]
        return spec.tag
    except docker.errors.ImageNotFound:
        pass
    other = donor() if donor is not None else None
    if other is not None:
        try:
            if copy_image(other, client, spec.tag):
                log(f"kmatrix: builder image {spec.tag} copied from the other engine")
                return spec.tag
        except Exception as exc:  # noqa: BLE001 - the build below makes it all the same
            log(f"kmatrix: copying {spec.tag} from the other engine failed "
                f"({' '.join(str(exc).split())[:120]}); building it")
    log(f"kmatrix: building the builder image {spec.tag} (once; about 2 minutes)")
    try:
        build_with_dockerfile(client, spec)
    except Exception as exc:  # noqa: BLE001 - no registry: fall back to the offline path
        log(f"kmatrix: the Dockerfile build failed ({str(exc).splitlines()[0][:120]}); "
            "building offline with debootstrap")
        build_offline(client, spec, cache_dir, log, mirror)
    return spec.tag


def build_with_dockerfile(client: object, spec: ImageSpec) -> None:
    client.images.build(path=str(CONTAINERS_DIR), tag=spec.tag, rm=True,  # type: ignore[attr-defined]
                        network_mode="default", timeout=1200)


def build_offline(client: object, spec: ImageSpec, cache_dir: Path,
                  log: Callable[[str], None] = print, mirror: str | None = None) -> None:
    if shutil.which("debootstrap") is None:
        raise InfraError("debootstrap is missing and no registry is reachable: "
                         "apt-get install debootstrap (as root), then rerun")
    mirror, origin = choose_mirror(mirror)
    log(f"kmatrix: Debian mirror {mirror} (from {origin})")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # not tempfile.TemporaryDirectory: its cleanup would remove through the /proc and /sys a
    # killed debootstrap leaves mounted in the root filesystem (cache.remove_tree does not)
    tmp = tempfile.mkdtemp(dir=cache_dir, prefix="rootfs-")
    try:
        rootfs = Path(tmp) / "rootfs"
        argv = debootstrap_argv(spec, rootfs, mirror)
        run_step(argv, log,
                 f"debootstrap did not finish in {DEBOOTSTRAP_TIMEOUT_S:g} s: check the Debian "
                 f"mirror {mirror} answers (or set ${MIRROR_ENV}), then rerun",
                 "debootstrap failed ({last}): check the Debian mirror "
                 f"{mirror} is reachable (or set ${MIRROR_ENV} or `kmatrix image --mirror URL`) "
                 "and there is 1 GB free, then rerun")
        if spec.foreign:
            shutil.copyfile(CONTAINERS_DIR / FOREIGN_SCRIPT, rootfs / "tmp" / FOREIGN_SCRIPT)
            what = " ".join(spec.foreign)
            run_step(unpack_foreign_argv(spec, rootfs), log,
                     f"unpacking {what} did not finish in {DEBOOTSTRAP_TIMEOUT_S:g} s: check "
                     f"the Debian mirror {mirror}",
                     f"unpacking {what} failed ({{last}}): check the Debian mirror {mirror} "
                     "is reachable, then rerun")
            (rootfs / "tmp" / FOREIGN_SCRIPT).unlink()
        os.chmod(rootfs / "root", ROOT_HOME_MODE)
        tarball = Path(tmp) / "rootfs.tar"
        packed = run_bounded(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], TAR_TIMEOUT_S,
                             f"packing the root filesystem took over {TAR_TIMEOUT_S:g} s: check "
                             f"the disk under {cache_dir}, then rerun")
        if packed.returncode != 0:
            raise InfraError(f"packing the root filesystem failed: {packed.stderr.strip()[:200]}"
                             f" (is the disk under {cache_dir} full?)")
        log(f"kmatrix: importing the root filesystem as {spec.tag}")
        import_tagged(client, tarball, spec.tag)
    finally:
        try:
            remove_tree(Path(tmp))
        except OSError as exc:
            log(f"kmatrix: {exc}: `kmatrix cache --prune` removes it later")
    log(f"kmatrix: builder image {spec.tag} ready")


def run_step(argv: list[str], log: Callable[[str], None], slow: str, failed: str) -> None:
    """One step of the offline build, logged and bounded: `slow` when it runs out of time,
    `failed` (its `{last}`: the tool's last three lines) when it fails; both infra-errors."""
    log("$ " + " ".join(argv))
    done = run_bounded(argv, DEBOOTSTRAP_TIMEOUT_S, slow)
    if done.returncode != 0:
        last = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise InfraError(failed.replace("{last}", last))


def die_with_parent() -> None:
    """In the child before exec: SIGKILL when kmatrix dies, even by SIGKILL (Linux
    PR_SET_PDEATHSIG), so a killed `kmatrix image` leaves no debootstrap running on."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


PR_SET_PDEATHSIG = 1


IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


def import_tagged(client: object, tarball: Path, name: str) -> None:
    """Import a root filesystem tarball as image `name` (REPO:TAG). Docker names it as asked;
    Podman's compatible API (4.3) drops the tag and names it REPO:latest: the image it reports
    is then named by hand."""
    import docker.errors
    import requests.exceptions

    repo, tag = name.split(":")
    try:
        answer = client.api.import_image(  # type: ignore[attr-defined]
            src=str(tarball), repository=repo, tag=tag)
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        raise InfraError(f"the container engine stopped answering while importing {name} "
                         f"({str(exc).splitlines()[0][:120]}): check `docker info` (or the "
                         "Podman service) and rerun `kmatrix image`") from exc
    try:
        client.images.get(name)  # type: ignore[attr-defined]
        return
    except docker.errors.ImageNotFound:
        pass
    found = IMAGE_ID.findall(str(answer))
    if not found:
        raise InfraError(f"importing the builder image gave no image id ({str(answer)[:160]}): "
                         "check the container engine, then rerun")
    name_image(client, found[-1], name)


def name_image(client: object, image_id: str, name: str) -> None:
    """Give image `image_id` the name `name`, as lookups of `name` find it (Podman: the
    docker.io/library/ form), and drop the names Podman made up for it (REPO:latest after an
    import, localhost/REPO:TAG after a load)."""
    import docker.errors

    repo, tag = name.split(":")
    client.images.get(image_id).tag(repo, tag)  # type: ignore[attr-defined]
    for stray in list(client.images.get(image_id).tags):  # type: ignore[attr-defined]
        short = stray.rsplit("/", 1)[-1]
        kept = stray == name or stray.endswith(f"/library/{name}")
        if short in (f"{repo}:latest", name) and not kept:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(stray)  # type: ignore[attr-defined]


def copy_image(donor: object, client: object, name: str) -> bool:
    """Image `name` copied from another engine (`docker save | podman load`, through the two
    APIs): seconds, where the offline build takes minutes. False when the donor lacks it."""
    import docker.errors

    try:
        saved = donor.images.get(name)  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        return False
    loaded = client.images.load(saved.save(named=True))  # type: ignore[attr-defined]
    try:
        client.images.get(name)  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        if not loaded:
            raise InfraError(f"loading {name} copied from the other engine gave no image: "
                             "check the container engine, then rerun") from None
        name_image(client, loaded[0].id, name)
    return True


def run_bounded(argv: list[str], timeout_s: float, why: str) -> subprocess.CompletedProcess[str]:
    """A host tool with a time limit: on timeout its whole process group is killed (debootstrap
    runs dpkg and chroot children) and the run stops with `why`, an infrastructure error."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=die_with_parent)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise InfraError(why) from exc
    except BaseException:  # Ctrl-C: never leave the tool running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def installed_packages(runner_image: str, client: object,
                       timeout_s: float = PACKAGE_LIST_TIMEOUT_S) -> dict[str, str]:
    """Package -> version inside the image, recorded in the results (the image's pin); a
    container that does not answer within `timeout_s` is an infrastructure error, not a hang."""
    import requests.exceptions

    container = client.containers.run(  # type: ignore[attr-defined]
        runner_image, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        detach=True, network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"])
    try:
        container.wait(timeout=timeout_s)
        out = container.logs(stdout=True, stderr=False)
    except requests.exceptions.RequestException as exc:
        raise InfraError(f"listing the packages of {runner_image} took over {timeout_s:g} s: "
                         "check the container engine answers (is it overloaded?), then rerun") from exc
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    pairs = (line.split("\t", 1) for line in out.decode().splitlines() if "\t" in line)
    return {name: version for name, version in pairs}


def packages_of(runner_image: str, image_id: str, client: object, cache: Path) -> dict[str, str]:
    """installed_packages, remembered in the cache by the image's id: an image id names its
    content, so its package list never changes; a damaged memo is listed again."""
    from .results import remembered_strings

    return remembered_strings(cache / "image-packages" / f"{image_id.removeprefix('sha256:')[:32]}.json",
                              lambda: installed_packages(runner_image, client))
