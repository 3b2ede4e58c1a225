# SPDX-License-Identifier: GPL-2.0
"""`python -m harness.cli`: the same as the bpf-audit-harness command."""

import sys

from harness.cli import main

sys.exit(main())
