#!/usr/bin/env bash
# Builds the Titan-KV container image on a machine that has a Docker engine
# but no image registry.  The two base images docker/Dockerfile starts from
# are made locally: debootstrap writes a minimal Debian 12 (bookworm,
# variant minbase) root into a cache directory, which is packed twice -- as
# it is (the build base) and slimmed the way debian:12-slim is (no docs, man
# pages or locales; the runtime base) -- and each tarball is loaded with
# `docker import`.  Bases are cached by tag, and the tarballs on disk, so
# debootstrap runs once per cache; then `docker build` makes titan-kv:latest
# with --build-arg pointing the Dockerfile at the local bases.  With a
# registry none of this is needed: `docker-compose build` uses debian:12.
#
# Usage: docker/build-images.sh [--bases-only] [--rebuild-bases] [--no-cache]
# Environment: TITAN_IMAGE (titan-kv:latest), TITAN_BASE_IMAGE
# (titan-base/debian:12), TITAN_SLIM_IMAGE (titan-base/debian:12-slim),
# TITAN_DEBIAN_MIRROR (http://deb.debian.org/debian), TITAN_DOCKER_CACHE
# (~/.cache/titan-kv/docker), TITAN_MAKE_JOBS (2),
# TITAN_DOCKER_BUILD_NETWORK (docker build --network, empty: default).
# Exits 0 with the image built, 2 on bad usage, 1 on any other failure.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
image=${TITAN_IMAGE:-titan-kv:latest}
base_image=${TITAN_BASE_IMAGE:-titan-base/debian:12}
slim_image=${TITAN_SLIM_IMAGE:-titan-base/debian:12-slim}
suite=bookworm
mirror=${TITAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${TITAN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${TITAN_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/titan-kv/docker}
jobs=${TITAN_MAKE_JOBS:-2}
build_network=${TITAN_DOCKER_BUILD_NETWORK:-}

bases_only=0
rebuild_bases=0
no_cache=()
for arg in "$@"; do
  case "$arg" in
    --bases-only) bases_only=1 ;;
    --rebuild-bases) rebuild_bases=1 ;;
    --no-cache) no_cache=(--no-cache) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

log () { echo "build-images: $*" >&2; }
die () { log "error: $*"; exit 1; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info' (is dockerd running, may this user use it?)"

# The classic builder handles this Dockerfile; use it when buildx is absent
# so that the client does not fail looking for BuildKit.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

image_exists () { docker image inspect "$1" >/dev/null 2>&1; }

# Writes the files every Docker base image of Debian carries into the root
# $1: full apt sources (with updates and security), apt settings that keep
# layers small, and a policy-rc.d that stops daemons starting at install.
prepare_root () {
  local root=$1
  $sudo rm -f "$root/etc/apt/sources.list"
  $sudo tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $sudo tee "$root/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  $sudo tee "$root/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
  $sudo tee "$root/usr/sbin/policy-rc.d" >/dev/null <<'EOF'
#!/bin/sh
exit 101
EOF
  $sudo chmod 0755 "$root/usr/sbin/policy-rc.d"
  $sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/tmp/* \
    "$root"/var/tmp/*
  # No inherited identity: each container gets its own.
  : | $sudo tee "$root/etc/machine-id" >/dev/null
  $sudo rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
}

# Removes what debian:12-slim leaves out and tells dpkg not to install it
# again later (same paths as the official slim images).
slim_root () {
  local root=$1
  $sudo tee "$root/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  $sudo find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  $sudo find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  $sudo rm -rf "$root"/usr/share/groff/* "$root"/usr/share/info/* \
    "$root"/usr/share/linda/* "$root"/usr/share/lintian/* \
    "$root"/usr/share/locale/* "$root"/usr/share/man/*
}

# Makes the two rootfs tarballs in the cache with debootstrap.
make_tarballs () {
  local root="$cache/rootfs.tmp"
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends debootstrap >/dev/null \
      || { $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
             $sudo apt-get install -y -q --no-install-recommends debootstrap >/dev/null; } \
      || die "cannot install debootstrap with apt-get"
  fi
  mkdir -p "$cache"
  $sudo rm -rf "$root"
  log "debootstrap $suite (minbase) from $mirror into $root"
  $sudo debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $cache/debootstrap.log"
  prepare_root "$root"
  $sudo tar --numeric-owner --xattrs -C "$root" -cf "$cache/$suite-minbase.tar.part" .
  mv "$cache/$suite-minbase.tar.part" "$cache/$suite-minbase.tar"
  slim_root "$root"
  $sudo tar --numeric-owner --xattrs -C "$root" -cf "$cache/$suite-slim.tar.part" .
  mv "$cache/$suite-slim.tar.part" "$cache/$suite-slim.tar"
  $sudo rm -rf "$root"
}

# Loads tarball $1 as image tag $2.
import_base () {
  log "docker import $1 as $2"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase, made by titan-kv docker/build-images.sh\"" \
    --message "debootstrap --variant=minbase $suite $mirror" \
    "$1" "$2" >/dev/null || die "docker import of $1 failed"
}

bases_start=$(date +%s.%N)
if [ $rebuild_bases -eq 1 ]; then
  rm -f "$cache/$suite-minbase.tar" "$cache/$suite-slim.tar"
  docker image rm "$base_image" "$slim_image" >/dev/null 2>&1 || true
fi
if image_exists "$base_image" && image_exists "$slim_image"; then
  log "reusing base images $base_image and $slim_image"
else
  if [ ! -f "$cache/$suite-minbase.tar" ] || [ ! -f "$cache/$suite-slim.tar" ]; then
    make_tarballs
  else
    log "reusing cached root tarballs in $cache"
  fi
  image_exists "$base_image" || import_base "$cache/$suite-minbase.tar" "$base_image"
  image_exists "$slim_image" || import_base "$cache/$suite-slim.tar" "$slim_image"
fi
bases_end=$(date +%s.%N)
log "base images ready in $(awk -v a="$bases_start" -v b="$bases_end" 'BEGIN{printf "%.1f", b-a}') s"
[ $bases_only -eq 1 ] && exit 0

network=()
[ -n "$build_network" ] && network=(--network "$build_network")
build_start=$(date +%s.%N)
log "docker build -t $image (build base $base_image, runtime base $slim_image)"
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
docker build --force-rm "${no_cache[@]}" "${network[@]}" \
  -f "$top/docker/Dockerfile" \
  --build-arg BUILD_IMAGE="$base_image" \
  --build-arg RUNTIME_IMAGE="$slim_image" \
  --build-arg MAKE_JOBS="$jobs" \
  -t "$image" "$top" 2>&1 | tee "$build_log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "docker build failed"
build_end=$(date +%s.%N)
log "image $image built in $(awk -v a="$build_start" -v b="$build_end" 'BEGIN{printf "%.1f", b-a}') s"

# The classic builder leaves each build's build stage as an untagged image
# (about 700 MB).  Tag the current one -- the last image id printed before
# the runtime stage's FROM -- so that the next build reuses its layers (the
# -dev packages above all), then drop the stale ones, and the runtime
# images that earlier builds left untagged.  BuildKit keeps its
# cache elsewhere and needs none of this.
if [ "${DOCKER_BUILDKIT:-}" = 0 ]; then
  build_stage_tag="${image%%:*}-build:latest"
  stage_id=$(awk '/^Step [0-9]+\/[0-9]+ : FROM .* AS runtime/ {print id; exit}
                  /^ ---> [0-9a-f]+$/ {id = $2}' "$build_log")
  if [ -n "$stage_id" ] && docker tag "$stage_id" "$build_stage_tag"; then
    # Untagged images of either stage are earlier builds of this script.
    { docker image prune -f --filter label=org.titan-kv.stage=build >/dev/null \
        && docker image prune -f --filter label=org.titan-kv.stage=runtime >/dev/null; } \
      || log "warning: could not prune stale images of earlier builds"
  else
    log "warning: build stage not found in the build output; stale build-stage images kept"
  fi
fi

size_mb () { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1/1000000}'; }
log "sizes: $image $(size_mb "$image"); $slim_image $(size_mb "$slim_image"); $base_image $(size_mb "$base_image")"
