# SPDX-License-Identifier: GPL-2.0
"""Debian's prebuilt kernel as a matrix target: package parsing and the cache key (the real 6.1 artifact:
tests/system/test_prebuilt_debian_61.py)."""

from __future__ import annotations

from harness.kernel.prebuilt import PrebuiltRequest, image_dependency, kernel_release_from_members


def test_image_dependency_of_the_metapackage():
    # `dpkg-deb -f linux-image-amd64_6.1.192-2_amd64.deb Depends`
    assert image_dependency("linux-image-6.1.0-56-amd64 (= 6.1.192-2)") == ("linux-image-6.1.0-56-amd64", "6.1.192-2")
    assert image_dependency("linux-image-6.1.0-56-amd64-unsigned | linux-image-6.1.0-56-amd64, kmod") == (
        "linux-image-6.1.0-56-amd64-unsigned", None)
    assert image_dependency("kmod, linux-base (>= 4.3~)") is None


def test_kernel_release_from_package_members():
    members = ["./boot/", "./boot/System.map-6.1.0-56-amd64", "./boot/vmlinuz-6.1.0-56-amd64", "./lib/modules/"]
    assert kernel_release_from_members(members) == "6.1.0-56-amd64"
    assert kernel_release_from_members(["./usr/share/doc/linux-image-amd64/copyright"]) is None


def test_key_changes_with_what_is_booted():
    a = PrebuiltRequest("linux-image-amd64", "6.1.192-2")
    assert a.key() == PrebuiltRequest("linux-image-amd64", "6.1.192-2", accel="tcg").key()  # accel is not content
    assert a.key() != PrebuiltRequest("linux-image-amd64", "6.1.176-1").key()
    assert a.key() != PrebuiltRequest("linux-image-amd64", "6.1.192-2", ("lsm=bpf",)).key()
