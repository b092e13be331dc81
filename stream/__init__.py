"""Engine core: the packet that flows between stages and the stage contract."""
