#!/usr/bin/env bash
# Create or refresh the project-local virtualenv (.venv) with vidcls installed in it.
# Needs only python3 (>= 3.11). Re-runs are quick: packages are reinstalled only when
# pyproject.toml or this script changed. Set VIDCLS_TORCH to pick another torch build.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_spec=${VIDCLS_TORCH:-torch==2.13.0}   # the CPU build; pip takes a GPU build on GPU machines via VIDCLS_TORCH=torch
extras=${1:-}                               # "test" adds the test tools

if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        echo "python3 -m venv failed; installing Debian's python3-venv" >&2
        rm -rf .venv
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
    fi
fi

# One stamp per set of extras, so running the demo after the tests does not reinstall.
stamp=.venv/.vidcls-installed${extras:+-$extras}
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setting up .venv ($torch_spec${extras:+, $extras extras})" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check "$torch_spec"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
fi
