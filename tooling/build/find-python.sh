#!/usr/bin/env sh
# Prints an interpreter of the Lambda runtime's minor version (python3.12), or fails saying so.
# Tries $PYTHON, python3.12 on PATH, then pyenv's installs (whose shim may refuse to run).
want=3.12
for candidate in "${PYTHON:-}" python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/$want*/bin/python$want; do
  [ -n "$candidate" ] || continue
  if "$candidate" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$want')" 2>/dev/null; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
echo "find-python: no python$want found; install Python $want (the Lambda runtime) or set PYTHON" >&2
exit 1
