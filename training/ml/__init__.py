"""Pure PyTorch core of faceweb: transforms, model, data, training loop, checkpoints, predictor.

Nothing here imports Django. Import the submodules you need (``training.ml.train``,
``training.ml.predictor``...); this package itself imports nothing, so that a web process
that only lists identities does not load torch.
"""
