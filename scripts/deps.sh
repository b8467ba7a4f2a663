#!/usr/bin/env bash
# Installs the Debian packages Stagehand builds against (FFmpeg 5.1 libraries
# and tools), only when missing. With --test, also the servers the
# integration tests run against: nginx-rtmp, stunnel, versitygw (S3) and
# Chromium (the browser end-to-end test of the stage), and helm and
# kubeconform (the Helm chart's lint, render and validation). With
# --containers, the container engine of `make test-containers`: podman, run
# with runc (crun fails here), and debootstrap, which makes the Debian base
# image (nothing is pulled from a registry).
# Idempotent: a machine that has everything runs no apt command at all.
set -euo pipefail

packages=(
  pkg-config gcc make
  libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libavutil-dev
  ffmpeg
)
if [ "${1:-}" = "--test" ]; then
  packages+=(nginx-light libnginx-mod-rtmp stunnel4 chromium chromium-driver)
fi
if [ "${1:-}" = "--containers" ]; then
  packages+=(podman runc debootstrap)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3-compatible server of the integration tests: Debian has none.
if [ "${1:-}" = "--test" ]; then
  gobin="$(go env GOPATH)/bin"
  if [ ! -x "$gobin/versitygw" ]; then
    echo "deps: installing versitygw v1.8.0 into $gobin (S3 test server; about 2 minutes the first time)" >&2
    GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  fi
  # The Helm chart's tools (cmd/stagehand TestHelmChart).
  if ! "$gobin/helm" version 2>/dev/null | grep -q 'Version:"v4'; then
    echo "deps: installing helm v4.3.2 into $gobin (about a minute the first time)" >&2
    GOFLAGS= go install helm.sh/helm/v4/cmd/helm@v4.3.2
  fi
  if [ ! -x "$gobin/kubeconform" ]; then
    echo "deps: installing kubeconform v0.8.0 into $gobin" >&2
    GOFLAGS= go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
  fi
fi
