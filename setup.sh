#!/usr/bin/env bash
# Set up streamgenre in ./.venv on Debian/Ubuntu (or any Linux with Python >= 3.10).
#
#   ./setup.sh          runtime: the package and its dependencies (PortAudio for live capture)
#   ./setup.sh --dev    also the test, training and conversion tools, and the system packages the
#                       test suite drives for real (PulseAudio, icecast2, ffmpeg)
#
# As root, missing Debian packages are installed with apt-get; otherwise the exact command to run
# is printed. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PYTHON="${PYTHON:-python3}"
VENV="${STREAMGENRE_VENV:-.venv}"
say() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    say "error: $PYTHON not found; install Python >= 3.10 (Debian: apt-get install python3)"; exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    say "error: Python >= 3.10 needed, found $("$PYTHON" -V 2>&1)"; exit 1
fi

# --- system packages -----------------------------------------------------------------------------
apt_missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$1"); }
if command -v dpkg-query >/dev/null 2>&1; then
    ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so' || need_pkg libportaudio2
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkg "python3-venv"
    if [[ $DEV == 1 ]]; then
        for p in pulseaudio pulseaudio-utils libasound2-plugins icecast2 ffmpeg; do need_pkg "$p"; done
    fi
fi
if ((${#apt_missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian packages: ${apt_missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    else
        say "missing Debian packages: ${apt_missing[*]}"
        say "run: sudo apt-get install -y ${apt_missing[*]}   (then run this script again)"
        [[ " ${apt_missing[*]} " == *" python3-venv "* ]] && exit 1
    fi
fi

# --- virtual environment -------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if [[ $DEV == 1 ]]; then
    # torch pinned: 2.13.0 is the CPU build these machines carry; an unpinned torch pulls a multi-GB CUDA build.
    "${PIP[@]}" "torch==2.13.0"
    "${PIP[@]}" -e ".[dev,train]"
    # Conversion-time only (the runtime never imports it): the pretrained musicnn checkpoints.
    "${PIP[@]}" --no-deps "musicnn==0.1.0"
else
    "${PIP[@]}" -e .
fi

# --- warm numba's on-disk cache so the first run starts fast -------------------------------------
# (streamgenre sets NUMBA_CACHE_DIR itself when its package folder is not writable.)
"$VENV/bin/python" -c 'from streamgenre.features import warmup; warmup()'
say "ready: $VENV"
