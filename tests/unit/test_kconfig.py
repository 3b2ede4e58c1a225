# SPDX-License-Identifier: GPL-2.0
"""Config fragments: parsing, merging, conflicts, and the did-it-stick check."""

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.kernel import kconfig
from harness.settings import DEFAULT_CONFIG_DIR


def frag(text: str, name: str = "a.config") -> kconfig.Fragment:
    return kconfig.parse_fragment(text, name)


def test_parse_values_comments_and_unset():
    f = frag('# why\nCONFIG_A=y\n\n# CONFIG_B is not set\nCONFIG_LSM="bpf"\nCONFIG_N=64\n')
    assert [(s.name, s.value, s.line) for s in f.settings] == [
        ("CONFIG_A", "y", 2),
        ("CONFIG_B", "n", 4),
        ("CONFIG_LSM", '"bpf"', 5),
        ("CONFIG_N", "64", 6),
    ]


def test_malformed_line_names_file_and_line():
    with pytest.raises(ConfigError, match=r"x\.config:2: not a Kconfig line"):
        kconfig.parse_fragment("CONFIG_A=y\nBPF_LSM=y\n", "x.config")


def test_same_option_twice_in_one_fragment_differently():
    with pytest.raises(ConfigError, match=r"CONFIG_A is set twice in f\.config.*line 1.*line 2"):
        kconfig.parse_fragment("CONFIG_A=y\n# CONFIG_A is not set\n", "f.config")


def test_merge_conflict_names_both_fragments():
    a = frag("CONFIG_AUDIT=y\n", "base.config")
    b = frag("# CONFIG_AUDIT is not set\n", "vng.config")
    with pytest.raises(ConfigError) as e:
        kconfig.merge([a, b])
    assert "base.config:1" in str(e.value) and "vng.config:1" in str(e.value)


def test_merge_same_value_is_fine_and_keeps_first_origin():
    m = kconfig.merge([frag("CONFIG_A=y\n", "one"), frag("CONFIG_A=y\nCONFIG_B=y\n", "two")])
    assert [(s.name, s.source) for s in m.settings] == [("CONFIG_A", "one"), ("CONFIG_B", "two")]


def test_verify_lists_each_option_that_did_not_stick_with_its_fragment_line():
    m = kconfig.merge([frag("CONFIG_A=y\nCONFIG_BPF_LSM=y\n# CONFIG_C is not set\nCONFIG_LSM=\"bpf\"\n", "lsm.config")])
    final = 'CONFIG_A=y\n# CONFIG_BPF_LSM is not set\nCONFIG_C=y\nCONFIG_LSM="landlock"\n'
    with pytest.raises(ConfigError) as e:
        kconfig.verify(m, final, "/t/.config")
    msg = str(e.value)
    assert "3 requested option(s) did not stick" in msg
    assert "CONFIG_BPF_LSM: asked CONFIG_BPF_LSM=y in lsm.config:2, got not set" in msg
    assert "CONFIG_C: asked # CONFIG_C is not set in lsm.config:3, got y" in msg
    assert 'CONFIG_LSM: asked CONFIG_LSM="bpf" in lsm.config:4, got "landlock"' in msg
    assert "CONFIG_A" not in msg.split("\n", 1)[1]


def test_verify_absent_option_counts_as_unset():
    m = kconfig.merge([frag("# CONFIG_GONE is not set\nCONFIG_NEW=y\n", "f")])
    mism = kconfig.find_mismatches(m, kconfig.parse_dotconfig("CONFIG_OTHER=y\n"))
    assert [x.setting.name for x in mism] == ["CONFIG_NEW"]


def test_render_round_trips_through_dotconfig_parser():
    m = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR))
    assert kconfig.find_mismatches(m, kconfig.parse_dotconfig(m.render())) == []


def test_shipped_fragments_ask_for_what_the_suite_needs():
    m = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR)).as_dict()
    for name in ("CONFIG_BPF_LSM", "CONFIG_AUDIT", "CONFIG_AUDITSYSCALL", "CONFIG_DEBUG_INFO_BTF", "CONFIG_BPF_JIT",
                 "CONFIG_SECURITY_NETWORK", "CONFIG_SECURITY_PATH", "CONFIG_CGROUP_BPF", "CONFIG_DYNAMIC_FTRACE"):
        assert m[name].value == "y", name
    assert "bpf" in m["CONFIG_LSM"].value


def test_load_fragments_empty_dir_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no \\*.config fragments"):
        kconfig.load_fragments(tmp_path)
