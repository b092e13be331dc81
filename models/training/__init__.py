"""Training and evaluation of the 3D lifter: data, noise model, network, export, metrics.

Needs the motion capture (``../shared/data/mocap``) and, to train, torch. The runtime
(``models/``, the stages) never imports this package (docs/architecture.md).
"""
