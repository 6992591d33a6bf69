"""Run directories written by hand, as the train command writes them."""

import json

CONFIG = {"env": "linear_quadratic", "env_id": "linear_quadratic", "algo": "pes"}


def write_run(path, rows, **config):
    """A run directory as the train command writes it; rows are
    (env_steps, eval_return) or (env_steps, seconds, eval_return)."""
    path.mkdir(parents=True)
    config = {**CONFIG, "seed": 0, "run_dir": str(path), **config}
    (path / "config.json").write_text(json.dumps(config))
    lines = []
    for row in rows:
        steps, seconds, ret = row if len(row) == 3 else (row[0], row[0] / 100, row[1])
        lines.append({"env_steps": steps, "seconds": seconds, "eval_return": ret})
    (path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path
