"""Runtimes that step Gymnasium envs on the host: the pair-aware backend,
the env pool and its worker processes, and Ray workers."""
