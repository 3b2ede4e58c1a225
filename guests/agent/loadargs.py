# SPDX-License-Identifier: GPL-2.0
"""The agent's request arguments beyond scalars: a load's options, name maps, hex bytes."""

from .protocol import BadRequest, arg


class LoadOpts:
    """What one `load` request asks of libbpf besides the path."""

    def __init__(self, programs, log_level, log_levels, prog_flags, no_autocreate, object_name, drop,
                 btf_custom_path=None, btf_func_path=None) -> None:
        self.btf_custom_path = btf_custom_path
        self.btf_func_path = btf_func_path
        self.programs = programs
        self.log_level = log_level
        self.log_levels = log_levels
        self.prog_flags = prog_flags
        self.no_autocreate = no_autocreate
        self.object_name = object_name
        self.drop = drop


def _name_map(req: dict, name: str) -> dict:
    """An optional {program or flag name: integer} argument."""
    value = arg(req, name, dict, {})
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()):
        raise BadRequest(f"argument '{name}' must map names to integers")
    return value


def _name_lists(req: dict, name: str) -> dict:
    """An optional {program name: [string, ...]} argument."""
    value = arg(req, name, dict, {})
    if not all(isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
               for k, v in value.items()):
        raise BadRequest(f"argument '{name}' must map program names to lists of names")
    return value


def _hex_arg(req: dict, name: str, default):
    text = arg(req, name, str, None)
    if text is None:
        return default
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadRequest(f"argument '{name}' must be hex bytes") from None
