"""The command line: flags, their rules, the training run, evaluation,
plots and video. `python -m pes_rl.train | evaluate | plot` start here."""
