#!/usr/bin/env bash
# Build the docker backend's worker image (runner/sandbox/docker/Dockerfile) with no registry but
# PyPI and Debian's mirror, and nothing from them when the caches are warm:
#   1. wheelhouse: `pip download` of torch and the platform's dependencies on the host, into a
#      cache folder reused while pyproject.toml's requirements stay the same;
#   2. base image: BASE_IMAGE when it exists locally or can be pulled, else a Debian bookworm base
#      made with debootstrap and `docker import` (kept as a local tag, built once per engine);
#   3. `docker build` from a temporary context holding only the platform's files and the wheelhouse.
# Settings (environment): GRADER_DOCKER_IMAGE (the tag; the docker backend's default), BASE_IMAGE,
# GRADER_WHEELHOUSE, DEBIAN_MIRROR, GRADER_TORCH_INDEX (the index torch's wheel comes from; unset, pip's
# own configuration decides, and plain PyPI serves the CUDA build: an operator who can reach it sets
# https://download.pytorch.org/whl/cpu for the CPU wheel, or a cu12x index for GPU workers).
# `--context-only DIR` writes the build context to DIR and stops (the tests check what it holds).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${GRADER_DOCKER_IMAGE:-diffusion-grader-worker:latest}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
DEBIAN_BASE=diffusion-grader-base:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WHEELHOUSE=${GRADER_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/diffusion-grader/wheelhouse}
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
step_start=0
step() { step_start=$EPOCHREALTIME; echo "==> $*"; }
took() { echo "    $1: $(since "$step_start") s"; }
total_start=$EPOCHREALTIME

CONTEXT_ONLY=""
if [ "${1:-}" = "--context-only" ]; then
    CONTEXT_ONLY=${2:?--context-only needs a folder}
fi

# --- 1. the wheelhouse ---------------------------------------------------------------------------
# The requirements the image installs: the platform's dependencies, plus its build backend (the
# platform's own wheel is built inside the build, from the wheelhouse too).
requirements=$("$PYTHON" - <<'PY'
import tomllib
meta = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(meta["project"]["dependencies"] + meta["build-system"]["requires"]))
PY
)
stamp=$(printf '%s\n%s\n' "$requirements" "${GRADER_TORCH_INDEX:-}" | sha256sum | cut -c1-16)
step "wheelhouse $WHEELHOUSE"
if [ -f "$WHEELHOUSE/.complete-$stamp" ]; then
    echo "    up to date (requirements unchanged)"
else
    mkdir -p "$WHEELHOUSE"
    printf '%s\n' "$requirements" > "$WHEELHOUSE/requirements.txt"
    torch=$(grep '^torch==' "$WHEELHOUSE/requirements.txt")
    if [ -n "${GRADER_TORCH_INDEX:-}" ]; then
        "$PYTHON" -m pip download -q --no-deps --index-url "$GRADER_TORCH_INDEX" -d "$WHEELHOUSE" "$torch"
    fi
    # Binary wheels only, for the interpreter the image runs (3.11 on Linux x86_64, as the host's);
    # --find-links: a torch wheel already in the wheelhouse (from GRADER_TORCH_INDEX) satisfies the pin.
    "$PYTHON" -m pip download -q --only-binary=:all: --find-links "$WHEELHOUSE" -d "$WHEELHOUSE" \
        -r "$WHEELHOUSE/requirements.txt"
    rm -f "$WHEELHOUSE"/.complete-*
    touch "$WHEELHOUSE/.complete-$stamp"
fi
took "wheelhouse ($(du -sh "$WHEELHOUSE" | cut -f1))"

# --- 3a. the build context (the platform's files and the wheelhouse only) -------------------------
context=${CONTEXT_ONLY:-$(mktemp -d)}
[ -n "$CONTEXT_ONLY" ] || trap 'rm -rf "$context"' EXIT
mkdir -p "$context"
cp runner/sandbox/docker/Dockerfile pyproject.toml README.md "$context/"
tar -c --exclude=__pycache__ --exclude='*.pyc' runner | tar -x -C "$context"
# Hard links when the cache is on the same file system: no copy of torch's 200 MB per build.
cp -al "$WHEELHOUSE" "$context/wheelhouse" 2>/dev/null || cp -r "$WHEELHOUSE" "$context/wheelhouse"
rm -f "$context"/wheelhouse/.complete-*
if [ -n "$CONTEXT_ONLY" ]; then
    echo "build context written to $context"
    exit 0
fi

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || {
    echo "no Docker engine is reachable: start it (e.g. dockerd --storage-driver overlay2) or set DOCKER_HOST" >&2
    exit 1
}

# --- 2. the base image ---------------------------------------------------------------------------
step "base image"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    base=$BASE_IMAGE
    echo "    $BASE_IMAGE (local)"
elif docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    base=$BASE_IMAGE
    echo "    $BASE_IMAGE (pulled)"
elif docker image inspect "$DEBIAN_BASE" >/dev/null 2>&1; then
    base=$DEBIAN_BASE
    echo "    $BASE_IMAGE cannot be pulled; using $DEBIAN_BASE (made earlier with debootstrap)"
else
    base=$DEBIAN_BASE
    echo "    $BASE_IMAGE cannot be pulled; making $DEBIAN_BASE with debootstrap from $DEBIAN_MIRROR"
    command -v debootstrap >/dev/null || {
        echo "debootstrap is not installed (apt-get install debootstrap), and $BASE_IMAGE cannot be pulled" >&2
        exit 1
    }
    [ "$(id -u)" = 0 ] || { echo "debootstrap needs root (run this script with sudo)" >&2; exit 1; }
    rootfs=$(mktemp -d)
    # python3-venv: the Dockerfile makes its venv with it (ensurepip)
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - "$DEBIAN_BASE" >/dev/null
    rm -rf "$rootfs"
fi
took "base image $base"

# --- 3b. the image ---------------------------------------------------------------------------------
step "docker build -t $IMAGE (base $base)"
# The classic builder: the engine's own (BuildKit needs the buildx plugin, which Debian's docker.io
# 20.10 lacks); the context is the temporary folder, so no ignore file decides what is sent.
# --network none: the build must not need a network, and an engine without a bridge can build;
# --force-rm: a failed step leaves no container behind.
DOCKER_BUILDKIT=0 docker build -q --force-rm --network none --build-arg "BASE_IMAGE=$base" -t "$IMAGE" "$context" >/dev/null
took "docker build"
echo "==> $IMAGE built in $(since "$total_start") s"
