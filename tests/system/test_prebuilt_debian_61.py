# SPDX-License-Identifier: GPL-2.0
"""Debian's prebuilt 6.1 kernel as a matrix target for real: fetched, extracted, booted once for its BTF."""

from __future__ import annotations

import pytest

from harness.campaigns.matrix import spec as matrix_spec
from harness.cases import audit, features
from harness.kernel.prebuilt import PrebuiltRequest


@pytest.mark.vm
@pytest.mark.slow
def test_debian_61_artifact_has_guest_btf_and_features(kernel_options, tmp_path):
    """Fetch (apt-get download), extract into the cache, boot once, copy the guest's BTF: a cache hit after."""
    from harness.kernel.prebuilt import prepare

    t = matrix_spec.load().get("6.1-debian")
    res = prepare(PrebuiltRequest.for_target(t), kernel_options.layout(), tmp_path)
    art = res.artifact
    # Whatever 6.1 the archive serves today for the pin (the pin, or the newest 6.1 when the pin is gone).
    assert art.release.startswith("6.1.") and art.release.endswith("-amd64") and art.bzimage.is_file()
    assert (art.dir / "root" / "lib" / "modules" / art.release / "modules.dep").is_file()
    assert art.meta["image_package"] == f"linux-image-{art.release}"
    assert art.meta["pinned_version"] == t.version and art.meta["version"].startswith("6.1.")
    assert bool(art.meta["version_note"]) == (art.meta["version"] != t.version) == bool(res.notes)
    assert art.meta["packages"]["linux-image-amd64"] == art.meta["version"]
    # audit.h from a package of the same upstream kernel, whatever its Debian revision; and it says which.
    header_pkg, header_ver = art.meta["audit_h_from"].split()
    assert art.meta["packages"][header_pkg] == header_ver
    from harness.kernel.apt import upstream_version

    assert upstream_version(header_ver) == upstream_version(art.meta["image_version"])
    assert "bpf" in art.meta["guest_lsm"].split(",")  # Debian's CONFIG_LSM ends in bpf: no lsm= needed
    assert "audit=1" in art.meta["guest_cmdline"].split()
    assert "struct task_struct {" in art.vmlinux_h.read_text()
    feats = features.from_vmlinux(art.vmlinux)
    assert feats.missing("bpf_audit") == "kernel lacks bpf_audit_log_start (not in vmlinux BTF)"
    assert feats.missing("bpf_lsm") is None
    assert feats.missing("task_kfuncs") == "kernel lacks bpf_task_acquire (not in vmlinux BTF)"
    types = audit.parse_audit_h(art.audit_h.read_text())
    assert types[1400] == "AVC"  # the uapi audit.h of the same upstream version
    assert 1425 not in types  # the series' AUDIT_BPF_LSM_ACCESS number is not in 6.1's header
    again = prepare(PrebuiltRequest.for_target(t), kernel_options.layout(), tmp_path)
    assert again.cache_hit and again.artifact.dir == art.dir
