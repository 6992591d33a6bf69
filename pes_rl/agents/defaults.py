"""The Python API's defaults are the command line's: the settings of the
environment's (or Problem's) preset, else the generic defaults
(``pes_rl.agents.presets``), with the agent's own arguments overriding them.

A preset's decays (``sigma_final``, ``learning_rate_final``) become
``LinearDecay`` schedules without a length: the agent sizes them by the
budget of its first ``learn`` call, as the CLI sizes them by
``--total-steps``. An argument given explicitly is used as it is: a number
stays constant whatever decay the preset has (as on the command line).
"""

import dataclasses
import inspect
from dataclasses import fields
from typing import Any

from pes_rl.agents.presets import GENERIC, PRESETS, preset_for
from pes_rl.core.config import PRESET_KEYS, AgentConfig
from pes_rl.core.schedules import LinearDecay
from pes_rl.envs.registry import ALIASES
from pes_rl.errors import ConfigError
from pes_rl.problems import registered_name

AUTO = "auto"
__all__ = [
    "AUTO",
    "PRESET_KEYS",
    "agent_settings",
    "agent_signature",
    "own_preset",
    "size_decays",
]
_BARE = {f.name: f.default for f in fields(AgentConfig)}


def preset_name(env: str) -> str | None:
    """The preset of ``env``: by its name, or the alias of its Gymnasium id
    or Brax name (``Swimmer-v5`` and ``swimmer`` share one)."""
    if env in PRESETS:
        return env
    return next((a for a, ids in ALIASES.items() if env in ids.values()), None)


def own_preset(env: Any, problem: Any) -> str:
    """The preset the CLI gives this env (by alias or id) or Problem (by its
    registered name); the generic defaults where there is none."""
    name = registered_name(problem) if problem is not None else env
    found = preset_name(name) if isinstance(name, str) else None
    return found or GENERIC


def agent_settings(
    preset: str | None, algo: str, env: Any, problem: Any, given: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """(the preset applied, or None; a value for each of ``PRESET_KEYS``):
    ``given`` where not None, else the preset's, else AgentConfig's.
    ``preset``: "auto" (the env's own), a preset's name, "generic", or
    None (AgentConfig's bare defaults)."""
    if preset == AUTO:
        preset = own_preset(env, problem)
    if preset is None:
        chosen = {}
    elif isinstance(preset, str) and (preset in PRESETS or preset == GENERIC):
        chosen = preset_for(preset, algo, problem=problem is not None)
    else:
        names = ", ".join([AUTO, GENERIC, *PRESETS])
        raise ConfigError(f"unknown preset {preset!r}: use None or one of {names}")
    settings = {}
    for key in PRESET_KEYS:
        if given.get(key) is not None:
            settings[key] = given[key]
        elif key in chosen:
            final = chosen.get(f"{key}_final")
            value = chosen[key]
            value = dict(value) if isinstance(value, dict) else value
            settings[key] = value if final is None else LinearDecay(value, final)
        else:
            settings[key] = _BARE[key]
    return preset, settings


def size_decays(config: AgentConfig, windows: int) -> AgentConfig | None:
    """``config`` with its decays without a length given ``windows``; None
    where it has none."""
    sized = {
        name: dataclasses.replace(value, steps=windows)
        for name in ("sigma", "learning_rate")
        if isinstance(value := getattr(config, name), LinearDecay)
        and value.steps is None
    }
    return dataclasses.replace(config, **sized) if sized else None


def agent_signature() -> inspect.Signature:
    """The agent's keyword arguments, AgentConfig's fields in its order:
    None for those a preset sets (the preset's value then), "auto" for the
    preset, AgentConfig's default for the rest."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in dataclasses.fields(AgentConfig):
        default = None if f.name in PRESET_KEYS or f.name == "env" else f.default
        parameters.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=AUTO if f.name == "preset" else default,
                annotation=f.type,
            )
        )
    return inspect.Signature(parameters)
