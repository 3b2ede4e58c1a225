# SPDX-License-Identifier: GPL-2.0
"""Start a child the way a terminal would, so a test's Ctrl-C (SIGINT) reaches it for real."""

import signal


def sigint_default() -> None:
    """preexec_fn: undo an inherited SIG_IGN for SIGINT.

    A shell starts background jobs (`cmd &`, CI runners, nohup) with SIGINT ignored; children inherit that and
    Python then installs no KeyboardInterrupt handler at all, so a Ctrl-C test would see nothing happen."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
