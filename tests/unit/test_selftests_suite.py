# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.suite: a file's subtests as test_loader runs them (order, auxiliaries loaded beside each
subtest of their mode, capabilities, unpriv map autocreation) and the reasons a file or program is unsupported."""

from __future__ import annotations

from pathlib import Path

from harness.selftests.discover import Caps, Skeleton
from harness.selftests.elf import BtfMap
from harness.selftests.spec import PRIV, UNPRIV, Reason, parse_spec
from harness.selftests.suite import FileSpecs, load_file, unpriv_capable

T = "comment:"
SKEL = Skeleton("toy", None, "verifier", "prog_tests/verifier.c:1", "test_toy", Caps((), ("CAP_SYS_ADMIN",)))


def spec(name: str, *tags: str):
    return parse_spec([T + t for t in tags], name)


def test_subtests_in_order_with_auxiliaries_of_their_mode() -> None:
    specs = (
        spec("aux_priv", "test_auxiliary"),
        spec("first", "test_expect_success", "test_expect_failure_unpriv"),
        spec("aux_unpriv", "test_auxiliary_unpriv"),
        spec("second", "test_description=the second"),
        spec("broken", "test_retval=nope"),
    )
    f = FileSpecs(SKEL, Path("toy.o"), specs, (BtfMap("h", 1, 0), BtfMap("seeded", 1, 64), BtfMap("lru", 9, 0)))
    subs = f.subtests()
    assert [(s.name, s.mode) for s in subs] == [("first", PRIV), ("first @unpriv", UNPRIV), ("the second", PRIV)]
    assert subs[0].autoload == ("first", "aux_priv") and subs[1].autoload == ("first", "aux_unpriv")
    assert subs[0].drop_caps == ("CAP_SYS_ADMIN",) and subs[0].no_autocreate_maps == ()
    assert subs[1].drop_caps == ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_BPF")
    assert subs[1].no_autocreate_maps == ("seeded", "lru")  # a zero-seeded hash and an LRU hash: priv only
    assert subs[2].prog_name == "second" and subs[2].log_level(1) == 1


def test_an_unsupported_auxiliary_makes_the_subtests_beside_it_unsupported() -> None:
    aux = spec("aux", "test_auxiliary").with_unsupported(Reason("struct_ops program", "needs its map"))
    f = FileSpecs(SKEL, Path("toy.o"), (aux, spec("t", "test_expect_success", "test_expect_success_unpriv")))
    priv, unpriv = f.subtests()
    assert [str(r) for r in priv.spec.unsupported_reasons(PRIV)] == [
        "struct_ops program (auxiliary program aux: needs its map)"]
    assert unpriv.spec.unsupported_reasons(UNPRIV) == ()  # aux is loaded in priv mode only
    assert f.specs[1].unsupported == ()  # the file's own spec is unchanged


def test_unpriv_capable_maps() -> None:
    assert unpriv_capable(BtfMap("a", 2, 0)) and unpriv_capable(BtfMap("r", 27, 0))
    assert unpriv_capable(BtfMap("h", 13, 0)) and not unpriv_capable(BtfMap("h", 13, 64))
    assert not unpriv_capable(BtfMap("sk", 24, 0)) and not unpriv_capable(BtfMap("ops", 26, 0))


def test_an_unreadable_object_is_a_file_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.o"
    bogus.write_bytes(b"not an object at all, not even close" * 4)
    f = load_file(SKEL, bogus)
    assert f.error and "libbpf would not open bogus.o" in f.error and f.subtests() == []
    missing = load_file(SKEL, tmp_path / "gone.o")
    assert missing.error and "gone.o" in missing.error
