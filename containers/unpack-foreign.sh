#!/bin/sh
# Unpack (not install) Debian packages of other architectures, given as NAME:ARCH, under
# /opt/kmatrix/ARCH/ in the builder image: a cross-built boot guest takes its static busybox
# from there (busybox-static:arm64 -> /opt/kmatrix/arm64/bin/busybox). They cannot be
# installed beside the host's own busybox-static (same files), and only their files are needed.
# Run as root inside the image's root filesystem, by containers/Dockerfile and by the offline
# build in harness/image.py alike, so both ways of making the image give the same contents.
set -eu
[ "$#" -gt 0 ] || exit 0
for spec; do dpkg --add-architecture "${spec#*:}"; done
apt-get update
dir=$(mktemp -d)
cd "$dir"
apt-get download "$@"
for deb in *.deb; do
  arch=$(dpkg-deb -f "$deb" Architecture)
  mkdir -p "/opt/kmatrix/$arch"
  dpkg-deb -x "$deb" "/opt/kmatrix/$arch"
  printf '%s:%s\t%s\n' "$(dpkg-deb -f "$deb" Package)" "$arch" "$(dpkg-deb -f "$deb" Version)" \
    >> /opt/kmatrix/foreign-packages.tsv
done
cd /
rm -rf "$dir" /var/lib/apt/lists/*
for spec; do dpkg --remove-architecture "${spec#*:}"; done
