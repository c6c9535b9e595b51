"""The base face network's embedding of face chips: the same for every model version.

Stored with each enrolled face (FaceImage.embedding) so that grouping unknown faces, "is
this face already someone else's" and anything else that compares faces works across
model versions without running a network again.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from training.ml.backbones import get_backbone
from training.ml.model import mirror_averaged

BASE_BACKBONE = "dlib-face-resnet"
# Names the network and how it is run (mirror-averaged); a stored embedding made another
# way is recomputed by `manage.py recompute_faces`.
EMBEDDING_MODEL = "dlib-face-resnet-v1-flip"
BATCH_SIZE = 32

_network = None
_network_lock = threading.Lock()


def base_network():
    """The frozen face network (no head), loaded once per process; thread-safe.

    Raises model.PretrainedWeightsError when its weights are not installed.
    """
    global _network
    with _network_lock:
        if _network is None:
            implementation = get_backbone(BASE_BACKBONE).implementation()
            network = implementation.DlibFaceResNet()
            implementation.load_dlib_weights(network, implementation.weights_path())
            _network = network.eval()
        return _network


def embed_chips(chips) -> np.ndarray:
    """Embeddings of 150x150 face chips (PIL, any mode): N x 128 float32, each the mean of
    the chip's and its mirror image's embedding. Batched; no side effects."""
    from training.ml.transforms import eval_transform

    if not chips:
        return np.zeros((0, 128), dtype=np.float32)
    backbone = get_backbone(BASE_BACKBONE)
    transform = eval_transform(backbone.image_size, backbone.mean, backbone.std)
    network = base_network()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(chips), BATCH_SIZE):
            batch = torch.stack([transform(chip) for chip in chips[start : start + BATCH_SIZE]])
            outputs.append(mirror_averaged(network, batch).float())
    return torch.cat(outputs).numpy().astype(np.float32)
