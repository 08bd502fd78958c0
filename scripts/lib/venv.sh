# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: create .venv with Python 3.11+ and install the
# locked dependencies (with the given extras) when the lock changed since the last install.
ensure_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"
        break
      fi
    done
  fi
  if [ -z "$python" ]; then
    echo "error: Python 3.11 or newer is needed (none found on PATH)." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$python" --version)..."
    "$python" -m venv .venv
  fi
  # Exactly what CI tested: the hash-pinned lock (scripts/requirements.lock for running,
  # scripts/requirements-dev.lock, a superset, for the tests and tools), reinstalled when
  # the lock changes. The dev install covers the plain one.
  local lock=scripts/requirements.lock
  [ "$extras" = dev ] && lock=scripts/requirements-dev.lock
  local hash
  hash=$(cat pyproject.toml "$lock" | sha256sum | cut -c1-16)
  local stamp=".venv/.installed-$hash-${extras:-base}"
  local dev_stamp
  dev_stamp=".venv/.installed-$(cat pyproject.toml scripts/requirements-dev.lock | sha256sum | cut -c1-16)-dev"
  if [ ! -f "$stamp" ] && ! { [ -z "$extras" ] && [ -f "$dev_stamp" ]; }; then
    echo "Installing dependencies into .venv from $lock..."
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      --require-hashes -r "$lock"; then
      echo "error: installing $lock failed (above); after changing pyproject.toml," \
        "update the locks with scripts/lock." >&2
      exit 1
    fi
    find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}
