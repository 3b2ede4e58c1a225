# SPDX-License-Identifier: GPL-2.0
"""Typed errors: each names the stage that failed, carries its output, and says what to do next."""

from __future__ import annotations

from pathlib import Path

# The CLI's exit codes (the same in every subcommand; `bpf-audit-harness --help` documents them).
EXIT_OK = 0  # everything asked for passed
EXIT_FAILED = 1  # it ran and found something: a case failed, a mutant survived, no single bad commit
EXIT_USAGE = 2  # the command line, or a file it names, is wrong: refused before anything ran
EXIT_HARNESS = 3  # the harness or the machine failed: a build, a boot, a lost VM, a missing tool


class HarnessError(Exception):
    """Base class. `str()` is the one-paragraph message a user sees.

    `usage` says whether the error is about what the user typed (an option, a path, a file an option names:
    exit 2) rather than about the machine or a stage that ran (exit 3). A class sets the default; a raise site
    that checks user input passes usage=True."""

    stage = "harness"
    usage = False

    def __init__(self, message: str, *, log_path: Path | None = None, output: str = "",
                 usage: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_path = log_path
        self.output = output
        if usage is not None:
            self.usage = usage

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if self.usage else EXIT_HARNESS

    def __str__(self) -> str:
        text = self.message
        if self.log_path is not None:
            text += f"\nFull log: {self.log_path}"
        return text


class UsageError(HarnessError):
    """An option or argument the harness refuses (argparse's own errors exit 2 too)."""

    stage = "usage"
    usage = True


class SourceError(HarnessError):
    stage = "source"


class PatchError(HarnessError):
    stage = "patch"


class ConfigError(HarnessError):
    stage = "config"


class BuildError(HarnessError):
    stage = "build"


class CacheError(HarnessError):
    stage = "cache"


class MissingToolError(HarnessError):
    stage = "tools"


class LostVMError(HarnessError):
    """The guest died, hung or never came up: not a test failure, its own status."""

    stage = "vm"

    def __init__(
        self, message: str, *, console_log: Path | None = None, findings: tuple = (), output: str = ""
    ) -> None:
        super().__init__(message, log_path=console_log, output=output)
        self.console_log = console_log
        self.findings = findings


class GuestCommandError(HarnessError):
    stage = "guest"


class AgentExitedError(GuestCommandError):
    """The guest agent's process ended while the guest itself may still answer: the VM's per-agent state (audit
    registration, loaded programs) is gone with it."""


class CaseError(HarnessError):
    """A case file is malformed (annotation syntax) or does not compile."""

    stage = "case"


class RefusedError(HarnessError):
    """BPF_AUDIT_HARNESS_FORBID forbids what was about to happen (a kernel build, a VM boot) in this process."""

    stage = "policy"
