"""Transports between stage processes: a msgpack codec with zero-copy numpy arrays and
ZeroMQ socket wrappers (lossless and newest-frame-wins queues, the public PUB stream)."""
