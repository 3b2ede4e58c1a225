# SPDX-License-Identifier: GPL-2.0
"""ArtifactMeta: a real cache entry's meta.json loads typed and is written back as the same JSON, unknown keys kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.kernel.artifact import ArtifactMeta, KernelArtifact
from harness.kernel.prebuilt import PrebuiltArtifact, load_entry

KERNELS = Path.home() / ".cache/bpf-audit-harness/kernels"
DEFAULT_KEY = "c0126a531f61da080440f68a"  # Debian 7.3.4 + patches/7.3 (the default kernel)
REAL = sorted(KERNELS.glob("*/meta.json")) if KERNELS.is_dir() else []


def _copy(meta_json: Path, tmp_path: Path) -> Path:
    """A copy of the entry's meta.json alone (the cache is only read), as a read-only file in a fresh entry dir."""
    entry = tmp_path / meta_json.parent.name
    entry.mkdir()
    shutil.copyfile(meta_json, entry / "meta.json")
    (entry / "meta.json").chmod(0o444)
    return entry


@pytest.mark.skipif(not (KERNELS / DEFAULT_KEY / "meta.json").is_file(), reason="the default kernel is not cached")
def test_the_default_kernels_real_meta_loads_typed_and_round_trips(tmp_path):
    entry = _copy(KERNELS / DEFAULT_KEY / "meta.json", tmp_path)
    text = (entry / "meta.json").read_text()
    art = KernelArtifact.load(entry)
    meta = art.meta
    assert (art.key, meta.key) == (DEFAULT_KEY, DEFAULT_KEY) and meta.release == art.release
    assert meta.kind == "" and meta.patches and meta.toolchain and meta.tree
    assert "build_seconds" in meta.extra and "phases" in meta.extra  # keys the harness does not read: kept
    assert json.dumps(meta.to_json(), indent=2, sort_keys=True) == text  # what cache.publish writes
    assert list(meta.to_json()) == list(json.loads(text))  # and in the file's order
    assert load_entry(entry).meta == meta


@pytest.mark.skipif(not REAL, reason="no cached kernel")
def test_every_cached_entrys_meta_round_trips(tmp_path):
    kinds = set()
    for path in REAL:
        data = json.loads(path.read_text())
        meta = ArtifactMeta.from_json(data)
        assert meta.to_json() == data and list(meta.to_json()) == list(data), path
        kinds.add(meta.kind)
        if meta.kind == "prebuilt-deb":
            art = load_entry(_copy(path, tmp_path))
            assert isinstance(art, PrebuiltArtifact) and art.meta.image_version
    assert kinds


def test_a_new_meta_writes_only_what_it_was_given_and_an_unknown_key_survives():
    meta = ArtifactMeta.from_json({"release": "7.3.4", "key": "k", "future_key": {"a": 1}, "patches": []})
    assert meta.to_json() == {"release": "7.3.4", "key": "k", "future_key": {"a": 1}, "patches": []}
    assert ArtifactMeta("k", "r", llvm="1").to_json() == {"key": "k", "release": "r", "llvm": "1"}
    with pytest.raises(KeyError):
        ArtifactMeta.from_json({"key": "k"})  # not a cache entry


def test_meta_still_reads_as_the_dict_meta_json_is():
    """`kernel_artifact.meta["tree"]` is how users' conftests (and the project's system tests) read an entry:
    typed fields and every other key answer by name, a missing one is a KeyError."""
    meta = ArtifactMeta.from_json({"release": "7.3.4", "key": "k", "tree": "/t", "slot": "/s", "patches": ["a"]})
    assert meta["tree"] == meta.tree == "/t" and meta["slot"] == "/s" and meta["patches"] == ["a"]
    assert meta.get("version_note") is None and meta.get("slot") == "/s" and "slot" in meta and "nope" not in meta
    with pytest.raises(KeyError):
        meta["nope"]
