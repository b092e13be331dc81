"""The bottom layer: plain facts and formats every other package may use.

The packet and the stage contract, marker sets, MediaPipe landmark indices, the joint-angle
set, camera files, and the output file formats with atomic writes. Nothing here imports
from another package of the project (docs/architecture.md).
"""
