#!/usr/bin/env bash
# Install what kmatrix needs on a Debian 12 machine and start the Docker engine and the Podman
# service. Idempotent:
# run it before `python3 -m nox -s matrix` or `python3 -m nox -s tests`. Needs root to install;
# without root it says exactly what is missing and how to get it.
set -euo pipefail

debs=(docker.io debootstrap linux-source-6.12 qemu-system-x86 busybox-static git xz-utils cpio
      binutils python3-pip python3-venv ca-certificates
      chromium  # headless, for the report.html browser test
      stress-ng)  # the fault suite's loaded-host case (nox -s faults)
# What TuxMake needs to build a kernel on the host (`--runtime null`): `nox -s bench` compares
# against it, and tests/integration/test_bench_broken.py breaks it on purpose. Debian's gcc 12,
# the same compiler as the builder image's.
debs+=(gcc make bc bison flex libelf-dev libssl-dev)
# Podman (`kmatrix run --runtime podman`, tests/integration/test_podman_real.py): its service
# speaks Docker's API; catatonit is its `--init`; uidmap gives rootless Podman its id ranges.
debs+=(podman catatonit uidmap)

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "kmatrix setup: missing Debian packages: ${missing[*]}" >&2
    echo "kmatrix setup: install them as root: apt-get install ${missing[*]}" >&2
    exit 3
  fi
  echo "kmatrix setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import nox' 2>/dev/null; then
  echo "kmatrix setup: installing nox"
  python3 -m pip install -q nox 2>/dev/null || python3 -m pip install -q --break-system-packages nox
fi

"$(dirname "$0")/harness/scripts/start-dockerd"
"$(dirname "$0")/harness/scripts/start-podman"
