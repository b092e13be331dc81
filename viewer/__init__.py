"""The 3D viewer: an application on top of the engine, a subscriber of the public stream.

The live window (``viewer.window``) and the TRC replay (``viewer.replay``) draw with vispy
on Qt; ``viewer.app`` starts either. Nothing below the applications imports this package.
"""
