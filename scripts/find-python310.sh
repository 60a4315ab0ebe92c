#!/bin/sh
# Print the path of a working Python 3.10 interpreter, or explain what to install.
for candidate in "${PYTHON310:-}" python3.10 "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
                 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
        command -v "$candidate" 2>/dev/null || echo "$candidate"
        exit 0
    fi
done
echo "error: Python 3.10 is required (Rasa 3.6 runs on Python 3.8-3.10 only) and none was found." >&2
echo "       Install it with 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv'," >&2
echo "       or point PYTHON310=/path/to/python3.10 at one." >&2
exit 1
