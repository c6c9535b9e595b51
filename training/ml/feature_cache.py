"""Training on what the frozen layers make of each photo, computed once instead of per epoch.

When only the deeper layers are fine-tuned (fine_tune_from "layer3", "layer4" or "fc"), the
frozen layers before them turn the same pixels into the same features in every epoch:
their weights do not change and their BatchNorm layers run on running statistics in
training too (see model.set_train_mode). For "layer4" that prefix is about three quarters
of ResNet18's forward pass, and the backward pass never enters it.

Augmentation is the catch: it happens on pixels, before the frozen layers, so caching one
unaugmented copy of each photo's features would train without augmentation, and with 16
photos a person the trained layers would then learn the training photos by heart. Moving
the augmentation after the frozen layers (flipping or shifting feature maps) would change
what it means: a feature map of a mirrored face is not the mirror of the face's feature
map. So the cache holds `views` augmented views of each training photo, drawn exactly as
the uncached path draws them, and each epoch trains every photo on one of its views chosen
at random: augmentation with a finite pool of views (1 when augmentation is "none", where
all views would be equal). Validation photos are never augmented and are cached once too.
"""

from __future__ import annotations

import torch

from training.ml.data import InMemoryBatches
from training.ml.model import (
    autocast,
    frozen_features,
    is_cacheable,
    mirror_averaged,
    to_model_input,
)

# The cache lives in memory (on the training device). Past this size it keeps fewer views,
# and when not even one view fits, training recomputes the frozen layers in every epoch.
MAX_CACHE_BYTES = 1 << 30


class FeatureBatches:
    """Cached features served in batches of (features, labels), like InMemoryBatches.

    features is V x N x ... (V views of each of N images). Each pass yields batches of
    batch_size, in the order of a randperm drawn from generator when shuffle is True
    (InMemoryBatches draws the same order from the same generator), each image on one of
    its views drawn from view_generator.
    """

    def __init__(self, features, labels, batch_size, shuffle, generator=None, view_generator=None):
        self.features = features
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.view_generator = view_generator

    @property
    def views(self) -> int:
        return self.features.shape[0]

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        count = len(self.labels)
        if self.shuffle:
            order = torch.randperm(count, generator=self.generator)
        else:
            order = torch.arange(count)
        if self.views > 1:
            views = torch.randint(self.views, (count,), generator=self.view_generator)
        else:
            views = torch.zeros(count, dtype=torch.int64)
        for start in range(0, count, self.batch_size):
            chosen = order[start : start + self.batch_size]
            yield self.features[views[chosen].to(self.features.device), chosen], self.labels[chosen]


def views_to_cache(
    requested: int, augmentation: str, train_images: int, val_images: int, bytes_per_image: int
) -> int:
    """How many views of each training photo to cache: requested, 1 without augmentation,
    fewer when the cache would pass MAX_CACHE_BYTES, 0 (no cache) when one view does not fit.
    """
    wanted = min(requested, 1) if augmentation == "none" else requested
    room = MAX_CACHE_BYTES // bytes_per_image - val_images
    return max(0, min(wanted, room // max(1, train_images)))


def cache_features(
    model,
    batches: InMemoryBatches,
    transform,
    views,
    fine_tune_from,
    device,
    dtype,
    flip_average=False,
):
    """Run the frozen layers before fine_tune_from over every image of batches, views times.

    transform(pixels) makes a float batch of a uint8 one (an augmenting transform gives a
    new view each call); dtype is the autocast dtype (None: float32), as in training.
    Returns a V x N x ... tensor of features on device, in the order of batches.pixels.
    flip_average (fine_tune_from "fc" only: the features are embeddings) caches the mean of
    each image's and its mirror image's embedding. Leaves the model in eval mode; changes
    nothing else.
    """
    if not is_cacheable(fine_tune_from):
        raise ValueError("with fine_tune_from 'all' no layer is frozen: nothing to cache")
    model.eval()
    ordered = InMemoryBatches(batches.pixels, batches.labels, batches.batch_size, shuffle=False)
    cache = None
    # no_grad, not inference_mode: training saves these tensors for its backward pass,
    # which inference tensors refuse.
    with torch.no_grad(), autocast(device, dtype):
        for view in range(views):
            filled = 0
            for pixels, _ in ordered:
                images = to_model_input(transform(pixels), device)
                if flip_average:
                    features = mirror_averaged(
                        lambda x: frozen_features(model, x, fine_tune_from), images
                    )
                else:
                    features = frozen_features(model, images, fine_tune_from)
                if cache is None:
                    shape = (views, len(batches.labels), *features.shape[1:])
                    cache = torch.empty(shape, dtype=features.dtype, device=device)
                cache[view, filled : filled + len(features)] = features
                filled += len(features)
    return cache
