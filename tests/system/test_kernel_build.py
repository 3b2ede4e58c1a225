# SPDX-License-Identifier: GPL-2.0
"""Integration: the default kernel (matrix.toml's default target: a Debian source line the harness fetches, its
line's series, kernel-config/) builds through the cache."""

import time

import pytest

from harness.kernel import kconfig
from harness.kernel.artifact import kernel_has_btf
from harness.kernel.request import build_kernel

pytestmark = pytest.mark.slow


def test_artifact_is_complete_and_configured(kernel_artifact):
    art = kernel_artifact
    assert art.bzimage.stat().st_size > 1_000_000
    assert kernel_has_btf(art.vmlinux), f"{art.vmlinux} has no .BTF section"
    cfg = kconfig.parse_dotconfig(art.config.read_text())
    assert cfg["CONFIG_BPF_LSM"] == "y"
    assert cfg["CONFIG_AUDIT"] == "y"
    assert cfg["CONFIG_DEBUG_INFO_BTF"] == "y"
    assert "bpf" in cfg["CONFIG_LSM"].strip('"').split(",")
    assert "#define AUDIT_BPF\t" in art.audit_h.read_text() or "AUDIT_BPF " in art.audit_h.read_text()
    assert "struct task_struct {" in art.vmlinux_h.read_text()
    header = art.bzimage.read_bytes()[:0x210]
    assert header[0x202:0x206] == b"HdrS", "bzImage lacks the x86 boot protocol header"


def test_second_request_is_a_cache_hit_without_make(kernel_artifact, kernel_options, tmp_path):
    t0 = time.monotonic()
    again = build_kernel(kernel_options, run_dir=tmp_path, progress=False)
    elapsed = time.monotonic() - t0
    assert again.cache_hit, "unchanged inputs rebuilt the kernel"
    assert again.log is None and not list(tmp_path.glob("build-*.log")), "make was invoked on a cache hit"
    assert again.artifact.key == kernel_artifact.key
    print(f"cache hit in {elapsed:.2f}s")


def test_the_artifact_records_the_debian_package_version_it_was_built_from(kernel_artifact, kernel_options):
    """The meta's `packages` entry keeps its shape ({package: version}); the fetched line is recorded beside it."""
    from harness.kernel.request import effective

    meta = kernel_artifact.meta
    line = meta.get("debian_source")
    if effective(kernel_options).kernel_src and line is None:
        pytest.skip(f"this run's kernel is not from a Debian source line ({meta.get('source_path')})")
    assert meta["packages"] == {line["package"]: line["version"]}
    assert meta["source_description"] == f"Debian {line['package']} {line['version']} ({line['suite']})"
    assert meta["kernelversion"].startswith(line["package"].removeprefix("linux-source-") + ".")
