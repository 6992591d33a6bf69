"""Recording one episode of a trained agent's mean policy: an mp4 for
Gymnasium agents (MuJoCo's offscreen renderer) and Playground agents (the
env's own renderer), an HTML viewer for Brax agents."""

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from pes_rl.errors import ConfigError, MissingDependencyError

# The reset seed of the first evaluation episode (pes_rl.core.keys
# EVAL_SEED): by default the video shows the episode the evaluation starts with.
DEFAULT_VIDEO_SEED = 1_000_000


_RENDERER_HINT = (
    "for headless rendering install EGL (apt install libegl1 libgl1-mesa-dri) "
    "and set MUJOCO_GL=egl, or OSMesa (apt install libosmesa6) and set "
    "MUJOCO_GL=osmesa"
)


def default_gl() -> str:
    """Pick MuJoCo's OpenGL platform unless the user chose one: EGL renders
    without a display, where Gymnasium's default tries GLFW first and fails.
    Gymnasium reads MUJOCO_GL when an env's first renderer is created."""
    return os.environ.setdefault("MUJOCO_GL", "egl")


def check_gl() -> None:
    """Import MuJoCo under MUJOCO_GL: MuJoCo >= 3 loads the platform's GL
    bindings on import, and some broken setups (MUJOCO_GL=osmesa without
    libOSMesa) fail there rather than at the first frame."""
    gl = default_gl()
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return  # no MuJoCo: other envs may still render
    except Exception as err:
        raise MissingDependencyError(_renderer_error(gl, err)) from None


def _renderer_error(gl: str, err: Exception) -> str:
    lines = str(err).strip().splitlines()
    reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return f"cannot render frames with MUJOCO_GL={gl} ({reason}); {_RENDERER_HINT}"


def _has_tracking_camera(env) -> bool:
    """MuJoCo models of Gymnasium's locomotion envs have a "track" camera;
    their default free camera stays put while the body swims off screen."""
    model = getattr(env.unwrapped, "model", None)
    if model is None:
        return False
    import mujoco

    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0


def check_ffmpeg() -> None:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise MissingDependencyError(
            "writing mp4 needs ffmpeg: pip install imageio-ffmpeg"
        ) from None


def check_output(path: Path) -> None:
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: {path.parent} is not a directory")


def _append(writer, frame: np.ndarray, path: Path) -> None:
    try:
        writer.append_data(frame)
    except (OSError, RuntimeError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise ConfigError(f"cannot write video {path}: {reason}") from None


def _close(writer, path: Path) -> None:
    try:
        writer.close()
    except (OSError, RuntimeError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise ConfigError(f"cannot write video {path}: {reason}") from None


def episode_policy(agent):
    """obs -> action over one episode, keeping a recurrent policy's carry."""
    if not agent.recurrent:
        return agent.predict
    state = None

    def act(obs):
        nonlocal state
        action, state = agent.predict(obs, state)
        return action

    return act


def record_video(
    agent, path: str | os.PathLike, seed: int = DEFAULT_VIDEO_SEED
) -> dict[str, Any]:
    """Record one episode of the mean policy of a Gymnasium agent as a video
    (mp4, or any container ffmpeg writes). Frames are streamed to the file, so
    long episodes need little memory. Returns frames, return and fps."""
    path = Path(path)
    check_output(path)
    check_ffmpeg()
    gl = default_gl()
    try:
        # Gymnasium warns about an unsupported render mode; we say it better.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = agent.loop.make_env(render_mode="rgb_array")
            if _has_tracking_camera(env):  # follow the body as it moves away
                env.close()
                env = agent.loop.make_env(render_mode="rgb_array", camera_name="track")
    except TypeError:  # an env instance: copies take no render_mode
        env = agent.loop.make_env()
    try:
        if env.render_mode != "rgb_array":
            modes = env.metadata.get("render_modes", [])
            raise ConfigError(
                f"{agent.env_name} cannot render rgb_array frames "
                f"(its render modes: {modes or 'none'})"
            )
        obs, _ = env.reset(seed=seed)
        act = episode_policy(agent)
        try:
            first = env.render()
        except Exception as err:  # the GL stack fails in many ways
            raise MissingDependencyError(_renderer_error(gl, err)) from None
        fps = env.metadata.get("render_fps") or 30
        total = 0.0

        def frames():
            nonlocal obs, total
            yield first
            done = False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                total += float(reward)
                done = terminated or truncated
                yield env.render()

        count = write_video(path, frames(), fps)
    finally:
        env.close()
    return {"path": str(path), "frames": count, "return": total, "fps": fps}


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Stream ``frames`` into a video file; on an error none is left behind.
    Returns the number of frames."""
    import imageio.v2 as imageio

    # JAX warns at every fork; imageio-ffmpeg's subprocess execs ffmpeg
    # at once, so no lock held by JAX's threads is inherited.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
        )
        # macro_block_size=2: yuv420p needs even sizes, and the default
        # 16 would rescale most MuJoCo frame sizes with a warning.
        try:
            writer = imageio.get_writer(
                path, format="FFMPEG", fps=fps, macro_block_size=2
            )
        except (OSError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"cannot write video {path}: {err} (use a .mp4 path)"
            ) from None
        count, ok = 0, False
        try:
            for frame in frames:
                _append(writer, frame, path)
                count += 1
            _close(writer, path)
            ok = True
        finally:
            if not ok:  # no half-written video is left behind
                try:
                    writer.close()
                except Exception:
                    pass  # the error in flight says more
                path.unlink(missing_ok=True)
    return count


def record_playground_video(
    agent, path: str | os.PathLike, seed: int = DEFAULT_VIDEO_SEED
) -> dict[str, Any]:
    """One episode of the mean policy of a Playground agent as a video,
    drawn by the env's own renderer."""
    import jax
    import jax.numpy as jnp

    path = Path(path)
    check_output(path)
    check_ffmpeg()
    gl = default_gl()
    env = agent.problem.env
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.key_data(jax.random.key(seed)))
    states, total = [state], 0.0
    act = episode_policy(agent)
    for _ in range(agent.horizon):
        state = step(state, jnp.asarray(act(np.asarray(state.obs))))
        states.append(state)
        total += float(state.reward)
        if float(state.done):
            break
    try:
        images = env.render(states)
    except Exception as err:  # the GL stack fails in many ways
        raise MissingDependencyError(_renderer_error(gl, err)) from None
    fps = 1.0 / float(env.env.dt)
    count = write_video(path, images, fps)
    return {"path": str(path), "frames": count, "return": total, "fps": fps}


def render_brax_html(
    agent, path: str | os.PathLike, seed: int = DEFAULT_VIDEO_SEED
) -> dict[str, Any]:
    """Write Brax's interactive HTML viewer of one episode of the mean policy
    of a Brax agent (``agent.problem.env``, a ``brax.envs`` PipelineEnv).

    The viewer loads its JavaScript from a CDN when opened. Steps run one
    jitted env step at a time, which is fine for one episode."""
    import jax
    import jax.numpy as jnp

    try:
        from brax.io import html
    except ImportError as err:
        raise MissingDependencyError(f"the HTML viewer needs brax: {err}") from None
    path = Path(path)
    check_output(path)
    env = getattr(getattr(agent, "problem", None), "env", None)
    if env is None or not hasattr(env, "sys"):
        raise ConfigError(
            f"{agent.env_name} has no Brax system to render (a custom Brax env?)"
        )
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    # Brax envs take raw uint32 keys.
    state = reset(jax.random.key_data(jax.random.key(seed)))
    states, total = [state.pipeline_state], 0.0
    act = episode_policy(agent)
    for _ in range(agent.horizon):
        state = step(state, jnp.asarray(act(np.asarray(state.obs))))
        states.append(state.pipeline_state)
        total += float(state.reward)
        if float(state.done):
            break
    path.write_text(html.render(env.sys, states, height="100vh", colab=False))
    return {"path": str(path), "frames": len(states), "return": total, "fps": None}


def record(
    agent, path: str | os.PathLike, seed: int = DEFAULT_VIDEO_SEED
) -> dict[str, Any]:
    """One episode of the mean policy: an HTML viewer for a Brax agent, a
    video otherwise."""
    html = Path(path).suffix == ".html"
    if agent.module is None:
        raise ConfigError(f"{agent.env_name} is a Problem: it has no video to record")
    backend = getattr(agent, "backend_name", "gymnasium")
    if backend == "brax":
        if not html:
            raise ConfigError("a Brax agent records an HTML viewer: use a .html path")
        return render_brax_html(agent, path, seed)
    if html:
        raise ConfigError("the HTML viewer is for Brax agents: use a .mp4 path")
    if backend == "playground":
        return record_playground_video(agent, path, seed)
    return record_video(agent, path, seed)
