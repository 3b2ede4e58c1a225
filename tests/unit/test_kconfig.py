# SPDX-License-Identifier: GPL-2.0
"""Config fragments: parsing, merging, conflicts, and the did-it-stick check."""

import re
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


LINES = ("6.1", "6.12", "7.3")  # the kernel lines one kernel-config/ serves


@pytest.mark.parametrize("line", LINES)
def test_render_round_trips_through_dotconfig_parser(line):
    m = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR), line)
    assert kconfig.find_mismatches(m, kconfig.parse_dotconfig(m.render())) == []


@pytest.mark.parametrize("line", LINES)
def test_shipped_fragments_ask_for_what_the_suite_needs(line):
    m = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR), line).as_dict()
    for name in ("CONFIG_BPF_LSM", "CONFIG_AUDIT", "CONFIG_AUDITSYSCALL", "CONFIG_DEBUG_INFO_BTF", "CONFIG_BPF_JIT",
                 "CONFIG_SECURITY_NETWORK", "CONFIG_SECURITY_PATH", "CONFIG_CGROUP_BPF", "CONFIG_DYNAMIC_FTRACE"):
        assert m[name].value == "y", name
    assert "bpf" in m["CONFIG_LSM"].value


# -- kernel version conditions ----------------------------------------------------------------------------------

def test_a_condition_after_an_option_limits_it_to_those_kernel_lines():
    f = frag("CONFIG_PROC_SYSCTL=y  # kernel <7.3\nCONFIG_SYSCTL=y  # kernel >=7.3\nCONFIG_A=y\n"
             "# CONFIG_MODULES is not set  # kernel >=6.10\nCONFIG_MODULES=y  # kernel <6.10\n"
             'CONFIG_LSM="bpf#1"  # kernel >=6.1, <=7.3\n', "f.config")
    def names(version):
        return [(s.name, s.value) for s in kconfig.merge([f], version).settings]
    assert names("7.3.4") == [("CONFIG_SYSCTL", "y"), ("CONFIG_A", "y"), ("CONFIG_MODULES", "n"),
                              ("CONFIG_LSM", '"bpf#1"')]
    assert names("6.12.118") == [("CONFIG_PROC_SYSCTL", "y"), ("CONFIG_A", "y"), ("CONFIG_MODULES", "n"),
                                 ("CONFIG_LSM", '"bpf#1"')]
    assert names("6.1.0-rc1") == [("CONFIG_PROC_SYSCTL", "y"), ("CONFIG_A", "y"), ("CONFIG_MODULES", "y"),
                                  ("CONFIG_LSM", '"bpf#1"')]
    assert names("7.4") == [("CONFIG_SYSCTL", "y"), ("CONFIG_A", "y"), ("CONFIG_MODULES", "n")]
    # The rendered fragment carries no condition (make reads it); --dump shows each one's range.
    assert "kernel" not in kconfig.merge([f], "7.3").render()
    assert "CONFIG_SYSCTL=y  # from f.config:2 (kernel >=7.3)" in kconfig.merge([f], "7.3").render(annotate=True)


@pytest.mark.parametrize("text, says", [
    ("CONFIG_A=y  # needed for x\n", "only a kernel version condition may follow an option"),
    ("CONFIG_A=y  # kernel >= 7\n", "'>= 7' is not a kernel version clause"),
    ("CONFIG_A=y  # kernel ~7.3\n", "'~7.3' is not a kernel version clause"),
    ("CONFIG_A=y  # kernel >=7.3, <7.3\n", "holds for no kernel"),
    ("CONFIG_A=y  # kernel <7.3\n# CONFIG_A is not set  # kernel <=7.3\n",
     "set twice in f.config for the same kernels"),
    ("CONFIG_A=y\nCONFIG_A=n  # kernel ==6.1\n", "set twice in f.config for the same kernels"),
])
def test_a_bad_condition_is_an_error_naming_file_and_line(text, says):
    with pytest.raises(ConfigError, match=re.escape(says)) as e:
        frag(text, "f.config")
    assert "f.config" in str(e.value)


def test_ranges_that_do_not_overlap_may_give_one_option_different_values():
    f = frag("CONFIG_A=y  # kernel <7.3\n# CONFIG_A is not set  # kernel >=7.3\n"
             "CONFIG_B=y  # kernel <=6.12\nCONFIG_B=n  # kernel >6.12\n", "f.config")
    assert len(f.settings) == 4


def test_a_conflict_across_fragments_is_found_for_any_kernel_before_one_is_chosen():
    a = frag("CONFIG_X=y  # kernel >=6.6\n", "a.config")
    b = frag("# CONFIG_X is not set  # kernel <7.0\n", "b.config")  # both ask for 6.6 .. 6.x
    with pytest.raises(ConfigError) as e:
        kconfig.check_conflicts([a, b])
    assert "a.config:1 (kernel >=6.6)" in str(e.value) and "b.config:1 (kernel <7.0)" in str(e.value)
    kconfig.check_conflicts([a, frag("# CONFIG_X is not set  # kernel <6.6\n", "c.config")])  # disjoint: fine


def test_conditional_options_need_a_known_kernel_version():
    f = frag("CONFIG_A=y  # kernel >=7.3\n", "f.config")
    with pytest.raises(ConfigError, match="kernel version is not known"):
        kconfig.merge([f], "")
    assert kconfig.merge([frag("CONFIG_B=y\n")]).settings[0].name == "CONFIG_B"  # unconditional: no version needed


def test_an_option_that_did_not_stick_names_fragment_line_range_and_the_kernel():
    m = kconfig.merge([frag("CONFIG_SYSCTL=y  # kernel >=7.3\n", "base.config")], "7.3.4")
    with pytest.raises(ConfigError) as e:
        kconfig.verify(m, "# CONFIG_SYSCTL is not set\n", "/slot/.config", "7.3.4")
    msg = str(e.value)
    assert "1 requested option(s) did not stick in /slot/.config of Linux 7.3.4" in msg
    assert "CONFIG_SYSCTL: asked CONFIG_SYSCTL=y in base.config:1 (kernel >=7.3), got not set" in msg


def test_the_6_12_merge_is_what_it_was_before_conditions_existed():
    """The 6.12 cache key holds the merged fragments: the conditions must leave 6.12's merge as it was (the
    options and their order), so the 6.12 kernels built before keep their keys."""
    m = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR), "6.12.118")
    names = [s.name for s in m.settings]
    assert "CONFIG_PROC_SYSCTL" in names and "CONFIG_SYSCTL" not in names
    assert names.index("CONFIG_PROC_SYSCTL") == names.index("CONFIG_PROC_FS") + 1
    assert m.as_dict()["CONFIG_MODULES"].value == "n" and m.as_dict()["CONFIG_NETFILTER_BPF_LINK"].value == "y"


def test_load_fragments_empty_dir_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no \\*.config fragments"):
        kconfig.load_fragments(tmp_path)


def test_every_option_a_line_is_asked_for_exists_in_that_lines_kconfig():
    """Recorded from Debian's 6.1.192, 6.12.118 and 7.3.4 trees (tests/data/capture/kconfig-lines.py, which also
    ran the configure step and stick check on each): an option one line lacks carries a range that leaves it out."""
    from helpers import DATA

    defined = {}
    for row in (DATA / "kconfig-symbols-by-line.txt").read_text().splitlines():
        if row and not row.startswith("#"):
            name, *lines = row.split()
            defined[name] = set(lines)
    variants = tuple(sorted((DEFAULT_CONFIG_DIR / "variants").glob("*.config")))
    frags = kconfig.load_fragments(DEFAULT_CONFIG_DIR, variants)
    missing = []
    for f in frags:
        for s in f.settings:
            assert s.name in defined, f"{s.name} is not in the recording: run tests/data/capture/kconfig-lines.py"
            for line in LINES:
                if s.value != "n" and s.applies_to(kconfig.kernel_line(line)) and line not in defined[s.name]:
                    missing.append(f"{s.describe()}: Linux {line} has no such option")
    assert not missing, "\n".join(missing)
    assert defined["CONFIG_PROC_SYSCTL"] == {"6.1", "6.12"}  # the reason for the first condition


def test_a_variant_fragment_overrides_the_base(tmp_path: Path) -> None:
    """kernel-config/variants/ fragments (what a matrix target adds) change the base on purpose: the testmod row
    turns CONFIG_MODULES on over 00-guest-base's '# CONFIG_MODULES is not set'; any other disagreement stays an
    error."""
    (tmp_path / "00-base.config").write_text("# CONFIG_MODULES is not set\nCONFIG_BPF=y\n")
    (tmp_path / "variants").mkdir()
    variant = tmp_path / "variants" / "mods.config"
    variant.write_text("CONFIG_MODULES=y\n")
    frags = kconfig.load_fragments(tmp_path, (variant,))
    merged = {s.name: s.value for s in kconfig.merge(frags, "7.3.4").settings}
    assert merged == {"CONFIG_MODULES": "y", "CONFIG_BPF": "y"}
    other = tmp_path / "extra.config"
    other.write_text("CONFIG_MODULES=y\n")
    with pytest.raises(ConfigError, match="conflicting values for CONFIG_MODULES"):
        kconfig.merge(kconfig.load_fragments(tmp_path, (other,)), "7.3.4")


def test_a_base_config_counts_in_the_merged_config_by_its_content():
    """--kernel-config: the developer's .config is the base the fragments go onto; a different base is a different
    merged config (so a different cache key and build slot), the same base the same."""
    from dataclasses import replace

    frag = kconfig.parse_fragment("CONFIG_BPF=y\n", "f.config")
    merged = kconfig.merge([frag])
    mine = replace(merged, base="CONFIG_FOO=y\n")
    assert merged.render() == "CONFIG_BPF=y\n"
    assert mine.render().startswith("# onto a base .config, sha256 ") and mine.render().endswith("CONFIG_BPF=y\n")
    assert replace(merged, base="CONFIG_FOO=m\n").render() != mine.render()
    assert replace(merged, base="CONFIG_FOO=y\n").render() == mine.render()
    assert "from f.config" in mine.render(annotate=True)


@pytest.mark.source
def test_the_fragments_go_onto_the_developers_config(plain_source, tmp_path):
    """A real tree's kconfig: configure() with a base .config keeps the base's own choices and applies every
    fragment option on top (olddefconfig), and the stick check still holds the fragments to account."""
    from dataclasses import replace

    from harness.kernel.build import configure

    base = tmp_path / "base"
    configure(plain_source, base, kconfig.merge([kconfig.parse_fragment("CONFIG_HZ_1000=y\n", "b.config")]),
              tmp_path / "base.log")
    mine = (base / ".config").read_text()
    assert "CONFIG_HZ_1000=y" in mine and "CONFIG_BPF_SYSCALL=y" not in mine
    frags = kconfig.load_fragments(DEFAULT_CONFIG_DIR)
    merged = replace(kconfig.merge(frags, "6.12"), base=mine)
    final = configure(plain_source, tmp_path / "slot", merged, tmp_path / "slot.log", "6.12")
    assert "CONFIG_HZ_1000=y" in final, "the developer's own choice was lost"
    assert "CONFIG_BPF_SYSCALL=y" in final and "CONFIG_BPF_LSM=y" in final, "a fragment option was not applied"
    assert "olddefconfig" in (tmp_path / "slot.log").read_text()
