# SPDX-License-Identifier: GPL-2.0
# Packages and package data: the harness, plus the checkout's data directories shipped inside it as harness/_share.
import warnings

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# harness._share is the checkout's root seen as a package holding only these files (same names, same layout), so an
# installed harness finds them where harness/settings.py looks (DATA_ROOT). Only the patterns below are taken.
SHARE = [
    "guests/boot-sshd.sh",
    "guests/test_progs-shim.c",
    "guests/auparse_dump.py",
    "kernel-config/*.config",
    "kernel-config/*.toml",
    "kernel-config/*/*.config",
    "patches/*/series",
    "patches/*/*.patch",
    "patches/*/mutants/*.patch",
    "cases/harness.h",
]


# setuptools warns for each directory of data files that Python could import as a namespace package (cases/,
# guests/, patches/ ...): they are data here on purpose.
warnings.filterwarnings("ignore", message=r"Package 'harness\._share\.")


class BuildPy(build_py):
    """The root's own modules (setup.py) are not part of harness._share: only the data files above are."""

    def find_package_modules(self, package, package_dir):
        return [] if package == "harness._share" else super().find_package_modules(package, package_dir)


setup(
    # the guest agent is a package of its own (zipped for the guest by harness.machine.ssh), shipped as one
    packages=[*find_packages(include=["harness", "harness.*"]), "harness._share", "harness._share.guests.agent"],
    package_dir={"harness._share": ".", "harness._share.guests.agent": "guests/agent"},
    package_data={"harness._share": SHARE},
    cmdclass={"build_py": BuildPy},
)
