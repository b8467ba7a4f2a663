#!/usr/bin/env bash
# Installs the Debian packages Stagehand builds and tests against, only when missing:
# FFmpeg 5.1 libraries and tools, and the RTMP server (nginx-rtmp) and TLS
# proxy (stunnel) the integration tests run against.
# Idempotent: a machine that has everything runs no apt command at all.
set -euo pipefail

packages=(
  pkg-config gcc make
  libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libavutil-dev
  ffmpeg
  nginx-light libnginx-mod-rtmp stunnel4
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
