# SPDX-License-Identifier: GPL-2.0
# Entry points the README names: install deps, run the suite, run the project's tests, bench.

PY        ?= python3
VENV      ?= .venv
VPY       := $(VENV)/bin/python
PYTEST    := $(VPY) -m pytest
STAMP     := $(VENV)/.installed

# Debian packages the harness uses on the host (and, through virtme-ng's shared root, in the guest).
# The kernel sources are not among them: the harness fetches each Debian source line of kernel-config/sources.toml
# into its cache itself (its own apt configuration, checked against debian-archive-keyring).
APT_PACKAGES := make gcc flex bison bc libelf-dev libssl-dev dwarves ccache zstd xz-utils cpio kmod git patch \
	debian-archive-keyring qemu-system-x86 clang-19 llvm-19 bpftool libbpf-dev \
	openssh-server openssh-client busybox-static iproute2 procps auditd python3 python3-audit linux-libc-dev \
	chromium
# Needed as commands, from whichever package provides them: NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package, so these are installed only when the command is missing (command:package).
CMD_PACKAGES := node:nodejs npm:npm

.PHONY: conformance test unit deps venv doctor build lint bench matrix report clean-venv

## The conformance suite on the default kernel (matrix.toml's default target: Debian 7.3 + patches/7.3), one VM per
## xdist worker.
conformance: deps venv
	$(PYTEST) -n auto cases

## The project's own tests: unit tests on recorded data, plus the real build/boot integration tests.
test: deps venv
	$(PYTEST) -n auto tests

## Only the fast tests that need neither a kernel build nor a VM (tests/unit; tests/conftest.py keeps them so).
unit: deps venv
	$(PYTEST) tests/unit

## Install missing Debian packages (idempotent: only what dpkg does not already have); `make doctor` then checks.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done; \
		for cp in $(CMD_PACKAGES); do command -v $${cp%%:*} >/dev/null || echo $${cp#*:}; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing \
			&& echo "installed: $$missing (\`make doctor\` checks that a run can work: tools, KVM, the cache)"; \
	fi

## A project venv with the harness installed in editable mode (re-done when pyproject.toml changes).
venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

## Can a run work here? Every tool with its version and package, KVM's verdict, the cache; exit 3 if not.
doctor: deps venv
	$(VENV)/bin/bpf-audit-harness doctor

build: deps venv
	$(VENV)/bin/bpf-audit-harness build

## ruff (with RUF100: no stale noqa), mypy on harness/, and the layers contract (imports point down the stages).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## The suite on every kernel of kernel-config/matrix.toml: JUnit, JSON and HTML in results/matrix-<time>/.
matrix: deps venv
	$(VENV)/bin/bpf-audit-harness matrix $(MATRIX_ARGS)

bench: deps venv
	$(VPY) -m benchmarks.run

## The benchmark history (benchmarks/results/*.json) as a PNG and an HTML page in results/report/.
report: venv
	$(VENV)/bin/bpf-audit-harness report

clean-venv:
	rm -rf $(VENV)
