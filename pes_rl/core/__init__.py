"""The pure-JAX core: estimators, algorithms, the training state and its
update, the window rules, normalisation, keys, schedules, policies and the
agent's settings. No environments, no files."""
