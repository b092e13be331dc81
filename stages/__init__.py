"""Pipeline stages, one module each: capture, detect, markers, augment, ... and sinks."""
