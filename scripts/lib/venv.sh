# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: create .venv with Python 3.11+ and install the
# project (with the given extras) when pyproject.toml changed since the last install.
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
  # One stamp per pyproject.toml version and extras; the dev install covers the plain one.
  local hash
  hash=$(sha256sum pyproject.toml | cut -c1-16)
  local stamp=".venv/.installed-$hash-${extras:-base}"
  if [ ! -f "$stamp" ] && ! { [ -z "$extras" ] && [ -f ".venv/.installed-$hash-dev" ]; }; then
    echo "Installing dependencies into .venv..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check ".${extras:+[$extras]}"
    find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}
