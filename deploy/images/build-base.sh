#!/usr/bin/env bash
# Build the images the compose stack needs from Debian's packages alone, for machines that reach
# Debian's mirror and PyPI but no container registry:
#   autovoice-base:bookworm     Debian 12 (debootstrap, minbase) + Python 3.11 and its venv module
#   autovoice-redis:bookworm    + redis-server            (stands in for redis:7-alpine)
#   autovoice-postgres:bookworm + postgresql-15           (stands in for postgres:16-alpine)
#   autovoice-nginx:bookworm    + nginx-light             (stands in for nginx:1.27-alpine)
#
#   sudo deploy/images/build-base.sh [MIRROR]      # then:
#   docker compose -f deploy/docker-compose.yml -f deploy/compose.offline.yml up -d --build
#
# Needs root, debootstrap and a running Docker engine. ROOTFS (default /var/tmp/autovoice-rootfs) is kept
# and reused on a second run.
set -euo pipefail
mirror=${1:-http://deb.debian.org/debian}
rootfs=${ROOTFS:-/var/tmp/autovoice-rootfs}
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$rootfs/usr/bin/python3.11" ]; then
  if [ ! -x "$rootfs/bin/sh" ]; then
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror"
  fi
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  chroot "$rootfs" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv python3-venv \
    && ln -sf /usr/bin/python3.11 /usr/local/bin/python && apt-get clean && rm -rf /var/lib/apt/lists/*'
  : > "$rootfs/etc/resolv.conf"
fi
# The host's own certificate authorities (a TLS-inspecting proxy's, say) are trusted in the image too,
# so that pip and uv inside a build reach PyPI the way the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi
bundle=/etc/ssl/certs/ca-certificates.crt
tar -C "$rootfs" --exclude=./proc --exclude=./sys --exclude=./dev -c . \
  | docker import --change 'CMD ["/bin/bash"]' \
    --change "ENV SSL_CERT_FILE=$bundle PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle" - autovoice-base:bookworm
docker build --network host -t autovoice-redis:bookworm "$here/redis"
docker build --network host -t autovoice-postgres:bookworm "$here/postgres"
docker build --network host -t autovoice-nginx:bookworm "$here/nginx"
docker image ls --filter reference='autovoice-*'
