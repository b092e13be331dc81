"""Learned 3D lifting: mocap training pairs, the POF network, its solver and ONNX wrappers."""
