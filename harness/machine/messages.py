# SPDX-License-Identifier: GPL-2.0
"""The guest agent's message classes (guests/agent/messages.py), imported from the file the guest runs."""

# One definition for both sides: the agent must stay stdlib-only and runs from the zipapp built of guests/agent/, so
# the classes live there and the host loads that same package from GUESTS_DIR (the checkout's guests/ or the wheel's
# harness/_share/guests/) under a private name. mypy reads the same source as guests.agent.messages.

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

from harness.settings import GUESTS_DIR

_PACKAGE = "_harness_guest_agent"


def _load():
    name = f"{_PACKAGE}.messages"
    if name in sys.modules:
        return sys.modules[name]
    agent_dir = GUESTS_DIR / "agent"
    spec = importlib.util.spec_from_file_location(_PACKAGE, agent_dir / "__init__.py",
                                                  submodule_search_locations=[str(agent_dir)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PACKAGE] = package
    spec.loader.exec_module(package)
    return importlib.import_module(name)


if TYPE_CHECKING:
    from guests.agent import messages as msg
else:
    msg = _load()

__all__ = ["msg"]
