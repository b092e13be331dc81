"""File-level jobs: the batch runner and the TRC/CSV writers."""
