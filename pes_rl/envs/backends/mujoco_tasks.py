"""The Gymnasium MuJoCo v5 tasks, batched over simulations in numpy.

Each task reads its settings from a Gymnasium env built with the run's
constructor keywords (so ``env_kwargs`` and the defaults mean what they
mean to Gymnasium), and computes observations, rewards, terminations and
initial states for many simulations at once with the same floating-point
operations, in the same order, as the env's own ``step`` and ``reset``:
the results are equal bit for bit (``tests/integration/test_mujoco_backend.py``).

A task sees the simulations through ``Rows``: the batch's bound fields, at
the rows of the simulations concerned.
"""

import numpy as np


class Rows:
    """Bound fields (``name -> [nsim, ...]``) at rows ``ids`` (a slice for all)."""

    def __init__(self, fields: dict, ids):
        self._fields, self._ids = fields, ids

    def __getattr__(self, name: str) -> np.ndarray:
        return self._fields[name][self._ids]


def ctrl_cost(weight, actions: np.ndarray) -> np.ndarray:
    """``weight * np.sum(np.square(action))`` per row, in the action's dtype."""
    return weight * np.sum(np.square(actions), axis=1)


def scalar_square(values: np.ndarray) -> np.ndarray:
    """``x ** 2`` as Gymnasium computes it on numpy scalars: libm's
    ``pow(x, 2.0)``, which differs from an array's ``x ** 2`` (``x * x``)
    in the last bit now and then."""
    return np.power(values, np.full_like(values, 2.0))


def between(low, values, high) -> np.ndarray:
    """Python's ``low < values < high``, elementwise."""
    return (low < values) & (values < high)


class Task:
    """One v5 env's definitions; subclasses fill them in."""

    fields = ("qpos", "qvel")  # the batch fields the task reads
    contact_forces = False  # reads cfrc_ext, which Gymnasium computes every step

    def __init__(self, env):
        self.dt = env.dt
        self.init_qpos = env.init_qpos.copy()
        self.init_qvel = env.init_qvel.copy()
        self.nq, self.nv = env.model.nq, env.model.nv
        self.noise = getattr(env, "_reset_noise_scale", 0.0)

    def initial_state(self, rng: np.random.Generator) -> tuple:
        """(qpos, qvel) after ``reset(seed)``, drawn from the env's generator."""
        low, high = -self.noise, self.noise
        qpos = self.init_qpos + rng.uniform(low=low, high=high, size=self.nq)
        qvel = self.init_qvel + rng.uniform(low=low, high=high, size=self.nv)
        return qpos, qvel

    def before(self, rows: Rows):
        """What the reward needs from before the step."""
        return None

    def observe(self, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    def outcome(self, before, rows: Rows, actions: np.ndarray) -> tuple:
        """(rewards [n], terminated [n]) after a step."""
        raise NotImplementedError


class _Forward(Task):
    """Locomotion: a forward reward from the x displacement, a control cost."""

    skipped = 1  # leading qpos entries excluded from the observation

    def __init__(self, env):
        super().__init__(env)
        self.forward_weight = env._forward_reward_weight
        self.ctrl_weight = env._ctrl_cost_weight
        self.exclude = env._exclude_current_positions_from_observation

    def before(self, rows: Rows):
        return rows.qpos[:, 0].copy()

    def x_velocity(self, before, rows: Rows) -> np.ndarray:
        return (rows.qpos[:, 0] - before) / self.dt

    def position(self, rows: Rows) -> np.ndarray:
        qpos = rows.qpos
        return qpos[:, self.skipped :] if self.exclude else qpos

    def observe(self, rows: Rows) -> np.ndarray:
        return np.concatenate([self.position(rows), rows.qvel], axis=1)


class Swimmer(_Forward):
    skipped = 2

    def before(self, rows: Rows):
        return rows.qpos[:, 0:2].copy()

    def x_velocity(self, before, rows: Rows) -> np.ndarray:
        return ((rows.qpos[:, 0:2] - before) / self.dt)[:, 0]

    def outcome(self, before, rows, actions):
        forward = self.forward_weight * self.x_velocity(before, rows)
        reward = forward - ctrl_cost(self.ctrl_weight, actions)
        return reward, np.zeros(len(reward), bool)


class HalfCheetah(_Forward):
    def initial_state(self, rng):
        low, high = -self.noise, self.noise
        qpos = self.init_qpos + rng.uniform(low=low, high=high, size=self.nq)
        qvel = self.init_qvel + self.noise * rng.standard_normal(self.nv)
        return qpos, qvel

    def outcome(self, before, rows, actions):
        forward = self.forward_weight * self.x_velocity(before, rows)
        reward = forward - ctrl_cost(self.ctrl_weight, actions)
        return reward, np.zeros(len(reward), bool)


class _Hopping(_Forward):
    """Hopper and Walker2d: clipped velocities, a healthy reward, and an end
    when unhealthy."""

    def __init__(self, env):
        super().__init__(env)
        self.healthy_reward = env._healthy_reward
        self.terminate = env._terminate_when_unhealthy
        self.z_range = env._healthy_z_range
        self.angle_range = env._healthy_angle_range

    def observe(self, rows):
        velocity = np.clip(rows.qvel, -10, 10)
        return np.concatenate([self.position(rows), velocity], axis=1)

    def outcome(self, before, rows, actions):
        forward = self.forward_weight * self.x_velocity(before, rows)
        healthy = self.is_healthy(rows)
        rewards = forward + healthy * self.healthy_reward
        reward = rewards - ctrl_cost(self.ctrl_weight, actions)
        return reward, ~healthy & self.terminate

    def is_healthy(self, rows) -> np.ndarray:
        qpos = rows.qpos
        z, angle = qpos[:, 1], qpos[:, 2]
        healthy_z = between(self.z_range[0], z, self.z_range[1])
        return healthy_z & between(self.angle_range[0], angle, self.angle_range[1])


class Hopper(_Hopping):
    def __init__(self, env):
        super().__init__(env)
        self.state_range = env._healthy_state_range

    def is_healthy(self, rows):
        state = np.concatenate([rows.qpos, rows.qvel], axis=1)[:, 2:]
        low, high = self.state_range
        return between(low, state, high).all(axis=1) & super().is_healthy(rows)


class Walker2d(_Hopping):
    pass


class Ant(_Forward):
    skipped = 2
    fields = ("qpos", "qvel", "xpos", "cfrc_ext")

    def __init__(self, env):
        super().__init__(env)
        self.main_body = env.model.body(env._main_body).id
        self.contact_weight = env._contact_cost_weight
        self.force_range = env._contact_force_range
        self.healthy_reward = env._healthy_reward
        self.terminate = env._terminate_when_unhealthy
        self.z_range = env._healthy_z_range
        self.include_forces = env._include_cfrc_ext_in_observation
        self.contact_forces = self.include_forces or self.contact_weight != 0

    initial_state = HalfCheetah.initial_state

    def before(self, rows):
        return rows.xpos[:, self.main_body, :2].copy()

    def forces(self, rows) -> np.ndarray:
        return np.clip(rows.cfrc_ext, *self.force_range)

    def observe(self, rows):
        parts = [self.position(rows), rows.qvel]
        if self.include_forces:
            forces = self.forces(rows)[:, 1:]
            parts.append(forces.reshape(len(forces), -1))
        return np.concatenate(parts, axis=1)

    def outcome(self, before, rows, actions):
        xy_velocity = (rows.xpos[:, self.main_body, :2] - before) / self.dt
        forward = xy_velocity[:, 0] * self.forward_weight
        state = np.concatenate([rows.qpos, rows.qvel], axis=1)
        low, high = self.z_range
        z = state[:, 2]
        healthy = np.isfinite(state).all(axis=1) & (low <= z) & (z <= high)
        rewards = forward + healthy * self.healthy_reward
        forces = self.forces(rows)
        contact = self.contact_weight * np.sum(
            np.square(forces.reshape(len(forces), -1)), axis=1
        )
        costs = ctrl_cost(self.ctrl_weight, actions) + contact
        return rewards - costs, ~healthy & self.terminate


class InvertedPendulum(Task):
    def observe(self, rows):
        return np.concatenate([rows.qpos, rows.qvel], axis=1)

    def outcome(self, before, rows, actions):
        obs = self.observe(rows)
        terminated = ~np.isfinite(obs).all(axis=1) | (np.abs(obs[:, 1]) > 0.2)
        return (~terminated).astype(np.float64), terminated


class InvertedDoublePendulum(Task):
    fields = ("qpos", "qvel", "site_xpos", "qfrc_constraint")

    def __init__(self, env):
        super().__init__(env)
        self.healthy_reward = env._healthy_reward

    initial_state = HalfCheetah.initial_state

    def observe(self, rows):
        qpos = rows.qpos
        return np.concatenate(
            [
                qpos[:, :1],
                np.sin(qpos[:, 1:]),
                np.cos(qpos[:, 1:]),
                np.clip(rows.qvel, -10, 10),
                np.clip(rows.qfrc_constraint, -10, 10)[:, :1],
            ],
            axis=1,
        )

    def outcome(self, before, rows, actions):
        site = rows.site_xpos[:, 0]
        x, y = site[:, 0], site[:, 2]
        terminated = y <= 1
        qvel = rows.qvel
        v1, v2 = qvel[:, 1], qvel[:, 2]
        dist_penalty = 0.01 * scalar_square(x) + scalar_square(y - 2)
        vel_penalty = 0.001 * scalar_square(v1) + 0.005 * scalar_square(v2)
        alive_bonus = self.healthy_reward * (~terminated).astype(np.int64)
        return alive_bonus - dist_penalty - vel_penalty, terminated


class Reacher(Task):
    fields = ("qpos", "qvel", "xpos")

    def __init__(self, env):
        super().__init__(env)
        self.dist_weight = env._reward_dist_weight
        self.control_weight = env._reward_control_weight
        self.fingertip = env.model.body("fingertip").id
        self.target = env.model.body("target").id

    def initial_state(self, rng):
        qpos = rng.uniform(low=-0.1, high=0.1, size=self.nq) + self.init_qpos
        while True:
            goal = rng.uniform(low=-0.2, high=0.2, size=2)
            if np.linalg.norm(goal) < 0.2:
                break
        qpos[-2:] = goal
        qvel = self.init_qvel + rng.uniform(low=-0.005, high=0.005, size=self.nv)
        qvel[-2:] = 0
        return qpos, qvel

    def to_target(self, rows) -> np.ndarray:
        xpos = rows.xpos
        return xpos[:, self.fingertip] - xpos[:, self.target]

    def observe(self, rows):
        qpos, theta = rows.qpos, rows.qpos[:, :2]
        parts = [np.cos(theta), np.sin(theta), qpos[:, 2:], rows.qvel[:, :2]]
        return np.concatenate([*parts, self.to_target(rows)[:, :2]], axis=1)

    def outcome(self, before, rows, actions):
        # np.linalg.norm of one vector is sqrt(x.dot(x)) (BLAS): row by row,
        # as a batched sum may round differently.
        distance = np.array([np.linalg.norm(v) for v in self.to_target(rows)])
        reward_dist = -distance * self.dist_weight
        reward_ctrl = -np.square(actions).sum(axis=1) * self.control_weight
        return reward_dist + reward_ctrl, np.zeros(len(distance), bool)


class Humanoid(Task):
    fields = ("qpos", "qvel", "ctrl", "xipos", "cinert", "cvel", "qfrc_actuator")
    fields += ("cfrc_ext",)
    contact_forces = True

    def __init__(self, env):
        super().__init__(env)
        self.forward_weight = env._forward_reward_weight
        self.ctrl_weight = env._ctrl_cost_weight
        self.contact_weight = env._contact_cost_weight
        self.contact_range = env._contact_cost_range
        self.healthy_reward = env._healthy_reward
        self.terminate = env._terminate_when_unhealthy
        self.z_range = env._healthy_z_range
        self.exclude = env._exclude_current_positions_from_observation
        self.body_mass = env.model.body_mass.copy()
        self.include = [
            getattr(env, f"_include_{name}_in_observation") is True
            for name in ("cinert", "cvel", "qfrc_actuator", "cfrc_ext")
        ]

    def before(self, rows):
        return self.mass_center(rows)

    def mass_center(self, rows) -> np.ndarray:
        # Gymnasium's einsum, simulation by simulation: a batched einsum
        # may sum in another order.
        mass = self.body_mass
        return np.stack(
            [(np.einsum("b,bj->j", mass, x) / mass.sum())[0:2] for x in rows.xipos]
        )

    def observe(self, rows):
        n = len(rows.qpos)
        position = rows.qpos[:, 2:] if self.exclude else rows.qpos
        extra = (
            rows.cinert[:, 1:].reshape(n, -1),
            rows.cvel[:, 1:].reshape(n, -1),
            rows.qfrc_actuator[:, 6:],
            rows.cfrc_ext[:, 1:].reshape(n, -1),
        )
        parts = [part for part, on in zip(extra, self.include, strict=True) if on]
        return np.concatenate([position, rows.qvel, *parts], axis=1)

    def outcome(self, before, rows, actions):
        xy_velocity = (self.mass_center(rows) - before) / self.dt
        forward = self.forward_weight * xy_velocity[:, 0]
        z = rows.qpos[:, 2]
        healthy = between(self.z_range[0], z, self.z_range[1])
        rewards = forward + healthy * self.healthy_reward
        forces = rows.cfrc_ext
        contact = self.contact_weight * np.sum(
            np.square(forces.reshape(len(forces), -1)), axis=1
        )
        contact = np.clip(contact, *self.contact_range)
        costs = ctrl_cost(self.ctrl_weight, rows.ctrl) + contact
        return rewards - costs, ~healthy & self.terminate


TASKS = {
    "Swimmer-v5": ("swimmer_v5", "SwimmerEnv", Swimmer),
    "HalfCheetah-v5": ("half_cheetah_v5", "HalfCheetahEnv", HalfCheetah),
    "Hopper-v5": ("hopper_v5", "HopperEnv", Hopper),
    "Walker2d-v5": ("walker2d_v5", "Walker2dEnv", Walker2d),
    "Ant-v5": ("ant_v5", "AntEnv", Ant),
    "InvertedPendulum-v5": (
        "inverted_pendulum_v5",
        "InvertedPendulumEnv",
        InvertedPendulum,
    ),
    "InvertedDoublePendulum-v5": (
        "inverted_double_pendulum_v5",
        "InvertedDoublePendulumEnv",
        InvertedDoublePendulum,
    ),
    "Reacher-v5": ("reacher_v5", "ReacherEnv", Reacher),
    "Humanoid-v5": ("humanoid_v5", "HumanoidEnv", Humanoid),
}


def task_for(env) -> Task | None:
    """The batched definitions of ``env`` (a Gymnasium env), or None when
    it is not exactly one of the covered v5 classes."""
    import importlib

    inner = env.unwrapped
    for module, cls, task in TASKS.values():
        gym_class = getattr(
            importlib.import_module(f"gymnasium.envs.mujoco.{module}"), cls
        )
        if type(inner) is gym_class:
            return task(inner)
    return None
