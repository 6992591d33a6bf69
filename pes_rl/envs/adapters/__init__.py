"""Envs from other packages: Brax and MuJoCo Playground as Problems, and
Gymnasium spaces flattened to vectors."""
