"""Sub-environment pools: the part of the Gymnasium backend that steps envs.

``SerialPool`` steps them in this process. ``ProcessPool`` spreads them over
worker processes (``spawn`` context, safe once JAX is loaded) that step their
share in parallel. Both step only the envs they are asked to, so a member
whose episode ended can absorb without being simulated.
"""

import copy
import multiprocessing as mp
import pickle
import signal
import traceback
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray]  # obs, rewards, done


class UnsavableEnvError(TypeError):
    """An env whose state cannot be copied or pickled (Box2D's SWIG handles,
    a lock, a socket): its episodes cannot be continued elsewhere."""


def _flat_obs(obs) -> np.ndarray:
    return np.asarray(obs, np.float32).reshape(-1)


class _Envs:
    """A list of envs with batched reset, step, and state snapshots."""

    def __init__(self, make_env: Callable[[], gym.Env], count: int):
        self.envs = [make_env() for _ in range(count)]

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        return np.stack(
            [
                _flat_obs(self.envs[i].reset(seed=int(s))[0])
                for i, s in zip(indices, seeds, strict=True)
            ]
        )

    def step(self, indices: Sequence[int], actions: np.ndarray) -> StepResult:
        obs, rewards, done = [], np.empty(len(indices)), np.empty(len(indices), bool)
        for k, i in enumerate(indices):
            o, r, terminated, truncated, _ = self.envs[i].step(actions[k])
            obs.append(_flat_obs(o))
            rewards[k] = r
            done[k] = terminated or truncated
        return np.stack(obs), rewards, done

    def snapshot(self, index: int):
        return snapshot_env(self.envs[index])

    def restore(self, indices: Sequence[int], snapshot) -> None:
        for i in indices:
            restore_env(self.envs[i], snapshot)

    def close(self) -> None:
        for env in self.envs:
            env.close()


class SerialPool(_Envs):
    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int):
        super().__init__(make_env, num_envs)
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space


def _worker(conn, make_env, count) -> None:
    # A terminal's Ctrl-C or a scheduler's SIGTERM reaches the whole process
    # group; the main process decides when to stop, and closes the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        envs = _Envs(make_env, count)
        conn.send(("ok", None))
        while True:
            command, args = conn.recv()
            if command == "close":
                envs.close()
                break
            _answer(conn, envs, command, args)
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _answer(conn, envs: _Envs, command: str, args) -> None:
    """Run one command; a state that cannot be copied or sent back is an
    answer of its own, and the worker lives on."""
    try:
        result = getattr(envs, command)(*args)
    except UnsavableEnvError as err:
        conn.send(("unsavable", str(err)))
        return
    try:
        conn.send(("ok", result))  # pickles first: a failure sends nothing
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        name = type(envs.envs[0].unwrapped).__name__
        conn.send(("unsavable", f"the state of {name} cannot be pickled ({err})"))


class EnvironmentWorkerError(RuntimeError):
    """An env failed in a worker process; the message is its last line, the
    worker's traceback is in ``worker_traceback``."""

    def __init__(self, worker_traceback: str):
        last = worker_traceback.strip().splitlines()[-1]
        super().__init__(f"an environment worker process failed: {last}")
        self.worker_traceback = worker_traceback


class _InProcess:
    """This process's block of envs behind a pipe-like interface. A command
    runs when its answer is received, after the workers have theirs, so this
    process steps its block while they step theirs."""

    def __init__(self, make_env: Callable[[], gym.Env], count: int):
        self.envs = _Envs(make_env, count)
        self.pending = None

    def send(self, message) -> None:
        self.pending = message

    def recv(self):
        (command, args), self.pending = self.pending, None
        if command == "close":
            return "ok", self.envs.close()
        return "ok", getattr(self.envs, command)(*args)


class ProcessPool:
    """Envs split into contiguous blocks: one stepped in this process, one in
    each of ``num_workers`` worker processes, all in parallel."""

    def __init__(
        self, make_env: Callable[[], gym.Env], num_envs: int, num_workers: int
    ):
        num_blocks = max(2, min(num_workers + 1, num_envs))
        bounds = np.linspace(0, num_envs, num_blocks + 1).astype(int)
        self.starts = bounds[:-1]
        self.worker_of = np.repeat(np.arange(num_blocks), np.diff(bounds))
        context = mp.get_context("spawn")
        self.conns, self.processes = [], []
        for count in np.diff(bounds)[1:]:
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker, args=(child, make_env, int(count)), daemon=True
            )
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)
        for conn in self.conns:
            self._receive(conn)
        local = _InProcess(make_env, int(bounds[1]))
        self.conns.insert(0, local)
        self.observation_space = local.envs.envs[0].observation_space
        self.action_space = local.envs.envs[0].action_space

    @staticmethod
    def _receive(conn):
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            raise EnvironmentWorkerError("the process exited") from None
        if status == "error":
            raise EnvironmentWorkerError(payload)
        if status == "unsavable":
            raise UnsavableEnvError(payload)
        return payload

    def _scatter(self, command: str, indices: Sequence[int], *arrays) -> list:
        """Send each worker its share of ``indices`` (and rows of ``arrays``),
        then gather the answers in worker order."""
        indices = np.asarray(indices, int)
        owners = self.worker_of[indices]
        busy = []
        for worker, conn in enumerate(self.conns):
            rows = np.flatnonzero(owners == worker)
            if rows.size:
                local = (indices[rows] - self.starts[worker]).tolist()
                conn.send((command, (local, *(a[rows] for a in arrays))))
                busy.append(conn)
        return [self._receive(conn) for conn in busy]

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        return np.concatenate(self._scatter("reset", indices, np.asarray(seeds)))

    def step(self, indices: Sequence[int], actions: np.ndarray) -> StepResult:
        parts = self._scatter("step", indices, actions)
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def snapshot(self, index: int):
        worker = self.worker_of[index]
        self.conns[worker].send(("snapshot", (index - self.starts[worker],)))
        return self._receive(self.conns[worker])

    def restore(self, indices: Sequence[int], snapshot) -> None:
        indices = np.asarray(indices, int)
        for worker, conn in enumerate(self.conns):
            local = indices[self.worker_of[indices] == worker] - self.starts[worker]
            if local.size:
                conn.send(("restore", (local.tolist(), snapshot)))
                self._receive(conn)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("close", ()))
            except (BrokenPipeError, OSError):
                pass
        self.conns[0].recv()  # this process's own block
        for process in self.processes:
            process.join(timeout=5)


def snapshot_env(env: gym.Env):
    """Everything needed to continue ``env`` elsewhere: the MuJoCo physics
    state with the unwrapped env's plain data (a maze's goal, its random
    generator), or the whole unwrapped env otherwise, and the wrappers' own
    bookkeeping (the time limit's step count, the order and checker flags)."""
    inner = env.unwrapped
    if hasattr(inner, "model") and hasattr(inner, "data"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(inner.model, spec))
        mujoco.mj_getState(inner.model, inner.data, physics, spec)
        own = {
            k: copy.deepcopy(v)
            for k, v in vars(inner).items()
            if _is_counter(v) or isinstance(v, np.random.Generator)
        }
        core = physics, own
    else:
        try:
            core = copy.deepcopy(inner.__dict__)
        except Exception as err:  # whatever an attribute's __deepcopy__ raises
            raise UnsavableEnvError(
                f"the state of {type(inner).__name__} cannot be copied ({err})"
            ) from None
    wrappers = []
    while isinstance(env, gym.Wrapper):
        wrappers.append(
            {k: copy.copy(v) for k, v in env.__dict__.items() if _is_counter(v)}
        )
        env = env.env
    return core, wrappers


def check_copyable(make_env: Callable[[], gym.Env], pickled: bool) -> None:
    """``UnsavableEnvError`` unless a fresh env's snapshot can be taken and
    put back (and pickled, for worker processes)."""
    env = make_env()
    try:
        env.reset(seed=0)
        snapshot = snapshot_env(env)
        if pickled:
            try:
                pickle.dumps(snapshot)
            except (pickle.PicklingError, TypeError, AttributeError) as err:
                name = type(env.unwrapped).__name__
                raise UnsavableEnvError(
                    f"the state of {name} cannot be pickled ({err})"
                ) from None
        restore_env(env, snapshot)
    finally:
        env.close()


def _is_counter(value) -> bool:
    """Wrapper state that changes during an episode (step counts, flags, the
    checker's last data) is plain data; spaces and specs are left alone."""
    plain = int | float | tuple | np.generic | np.ndarray
    return value is None or isinstance(value, plain)


def restore_env(env: gym.Env, snapshot) -> None:
    core, wrappers = snapshot
    inner = env.unwrapped
    if isinstance(core, np.ndarray):  # checkpoints before the plain data
        core = core, {}
    if isinstance(core, tuple):
        import mujoco

        physics, own = core
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(inner.model, inner.data, physics, spec)
        mujoco.mj_forward(inner.model, inner.data)
        inner.__dict__.update(copy.deepcopy(own))
    else:
        inner.__dict__.update(copy.deepcopy(core))
    for state in wrappers:
        env.__dict__.update({k: copy.copy(v) for k, v in state.items()})
        env = env.env
