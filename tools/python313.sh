#!/usr/bin/env bash
# Prints the path of a working Python 3.13 (Colab's Python) for `make colab-check`: python3.13
# on PATH, else pyenv's, else one that uv installed; when there is none, says the one command
# that installs it and exits 1 (CI fails instead of skipping the Colab-stack check).
set -u
want=3.13
candidates=("$(command -v "python$want" 2>/dev/null)")
root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
candidates+=("$root"/versions/"$want".*/bin/"python$want")
if [ -x .venv/bin/uv ]; then
    candidates+=("$(UV_PYTHON_DOWNLOADS=never .venv/bin/uv python find "$want" 2>/dev/null)")
fi
for py in "${candidates[@]}"; do
    # a pyenv shim is on PATH even where it cannot run 3.13: each candidate must run
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null
    then
        echo "$py"
        exit 0
    fi
done
echo "Python $want (Colab's Python) is not installed here; install it with:" >&2
echo "    .venv/bin/uv python install $want      (uv comes with 'make venv'; or: pyenv install $want)" >&2
exit 1
