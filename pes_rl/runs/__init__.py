"""A run's files: checkpoints, the run directory, callbacks, writers and
tracking (TensorBoard, W&B)."""
