#!/bin/sh
# Build a Debian bookworm base image with Debian's python3 (3.11), python3-venv and
# ca-certificates from Debian's packages alone: for machines that reach a Debian mirror but
# no image registry (python:3.11-slim cannot be pulled). Needs root, debootstrap and a
# running Docker daemon.
#   docker/base.sh [TAG]            # default paper-digest-base:bookworm
# Then build with: docker build --build-arg BASE_IMAGE=paper-digest-base:bookworm ...
# Environment: DEBIAN_MIRROR (default: the first Debian mirror in /etc/apt/sources.list*,
# else http://deb.debian.org/debian), DEBIAN_SUITE (bookworm).
set -eu

tag=${1:-paper-digest-base:bookworm}
suite=${DEBIAN_SUITE:-bookworm}

# The first ".../debian" URI of the host's apt sources (one-line or deb822 format).
detect_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null \
        | sed -n -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
                 -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        | grep -E '/debian/?$' | head -n 1
}
mirror=${DEBIAN_MIRROR:-$(detect_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security=${DEBIAN_SECURITY_MIRROR:-${mirror}-security}

command -v debootstrap >/dev/null || { echo "base.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/paper-digest-base.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root

echo "base.sh: debootstrap $suite from $mirror"
debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,passwd \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES

# Certificate authorities this host trusts locally (e.g. a TLS-inspecting egress proxy):
# without them pip in the image cannot reach PyPI from such a network.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
fi

# What an image does not need: package caches and lists, docs, man pages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/var/log/*.log "$root"/var/log/apt/*

# pip (vendored certifi) and httpx read these instead of their own bundles.
tar --numeric-owner -C "$root" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["/bin/bash"]' \
    - "$tag" >/dev/null
echo "base.sh: built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
