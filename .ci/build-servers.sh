#!/usr/bin/env bash
# Build the real LiveKit servers that the e2e tests (tests/e2e/) run on loopback.
#
# Idempotent and cached: binaries land in ${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}/bin
# next to a <name>.version stamp, and a rerun with the same versions builds nothing.
# Go module downloads stay in the default GOMODCACHE ($HOME/go/pkg/mod) so a rebuild
# after a version bump only fetches what changed.
#
# A failed build is reported and skipped (exit 0): the e2e tests then skip with a
# reason instead of the whole CI run failing on an infrastructure problem.
set -euo pipefail

LIVEKIT_SERVER_VERSION="v1.13.5"
LIVEKIT_SIP_VERSION="v1.11.0"

CACHE_DIR="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
BIN_DIR="$CACHE_DIR/bin"
mkdir -p "$BIN_DIR"

log() { echo "[build-servers] $*"; }

# --- system packages --------------------------------------------------------------
# pkg-config + libopus/opusfile/soxr: cgo deps of livekit-sip's audio code.
# redis-server: livekit-sip talks to livekit-server through Redis.
# sip-tester: sipp, the SIP user agent that places test calls.
# espeak-ng: speaks test prompts to WAV files for the audio path.
APT_PACKAGES=(pkg-config libopus-dev libopusfile-dev libsoxr-dev redis-server sip-tester espeak-ng)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing apt packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
           "${missing[@]}" >/dev/null; }; then
    log "WARNING: apt-get install failed for: ${missing[*]} (e2e tests needing them will skip)"
  fi
else
  log "apt packages present"
fi

if ! command -v go >/dev/null 2>&1; then
  log "WARNING: go not found; cannot build livekit-server / livekit-sip (e2e tests will skip)"
  exit 0
fi

# build NAME MODULE_PATH VERSION CGO
# `go install pkg@version` builds in module mode from the proxy, independent of any
# go.mod in the current directory. GOBIN is a scratch dir because the livekit-server
# main package is named `server`; we rename it when moving it into the cache.
build() {
  local name=$1 pkg=$2 version=$3 cgo=$4
  local stamp="$BIN_DIR/$name.version"
  if [[ -x "$BIN_DIR/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    log "$name $version cached at $BIN_DIR/$name"
    return 0
  fi
  local tmp start
  tmp=$(mktemp -d)
  start=$SECONDS
  log "building $name $version ..."
  if CGO_ENABLED=$cgo GOBIN="$tmp" go install "$pkg@$version" >"$tmp/build.log" 2>&1; then
    local built
    built=$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -n1)
    if [[ -n "$built" ]] && mv -f "$built" "$BIN_DIR/$name"; then
      echo "$version" >"$stamp"
      log "building $name $version ... done in $((SECONDS - start))s"
    else
      log "FAILED to build $name $version: go install produced no binary"
    fi
  else
    log "FAILED to build $name $version after $((SECONDS - start))s (e2e tests needing it will skip); last lines:"
    tail -n 20 "$tmp/build.log" | sed 's/^/    /'
    if grep -q '403 Forbidden' "$tmp/build.log"; then
      log "  (the Go module proxy reachable here refuses this module: it cannot be built on this machine)"
    fi
    rm -f "$stamp"
  fi
  rm -rf "$tmp"
}

build livekit-server github.com/livekit/livekit-server/cmd/server "$LIVEKIT_SERVER_VERSION" 0
build livekit-sip github.com/livekit/sip/cmd/livekit-sip "$LIVEKIT_SIP_VERSION" 1

exit 0
