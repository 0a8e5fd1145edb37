"""explain.py on dumps captured from the real 6.12 tree (tests/data/kconfig/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testhelpers import KCONFIG_DATA as DATA

from harness.kconfig import Config
from harness.kconfig.command import parse_request
from harness.kconfig.dump import KconfigDump
from harness.kconfig.explain import explain
from harness.kconfig.expr import TRI_NAME, And, Compare, Or, Sym, evaluate, render, symbols_in
from harness.kconfig.repair import repair
from harness.verdict import InputError


@pytest.fixture(scope="module")
def dump() -> KconfigDump:
    return KconfigDump.from_file(DATA / "tiny-modules.jsonl")


@pytest.fixture(scope="module")
def sig_dump() -> KconfigDump:
    return KconfigDump.from_file(DATA / "tiny-modules-sig.jsonl")


def conditions(dump: KconfigDump):
    for name in dump.names():
        sym = dump.symbol(name)
        assert sym is not None
        yield from (c for c in (sym.dir_dep, sym.rev_dep, sym.implied,
                                *(p.visible for p in sym.prompts),
                                *(p.cond for p in sym.defaults + sym.selects)) if c)


# -- the dump

def test_dump_header_and_symbol(dump: KconfigDump) -> None:
    assert dump.kernel == "Linux 6.12.117 (SRCARCH=x86)"
    dups = dump.symbol("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS")
    assert dups is not None
    assert (dups.type, dups.value, dups.where) == ("bool", "n", "kernel/module/Kconfig:63")
    assert dups.dir_dep is not None and dups.dir_dep.text == "MODULES [=y] && MODULE_DEBUG [=n]"
    assert dups.prompts[0].text == "Debug duplicate modules with auto-loading"
    assert dump.symbol("NO_SUCH_THING") is None


def test_menuconfig_prompts_are_prompts(dump: KconfigDump) -> None:
    virt = dump.symbol("VIRTUALIZATION")  # `menuconfig`: a P_MENU prompt in lkc
    assert virt is not None and virt.prompts and virt.prompts[0].text == "Virtualization"


def test_choice_members(dump: KconfigDump) -> None:
    xz = dump.symbol("MODULE_COMPRESS_XZ")
    assert xz is not None and xz.choice is not None
    choice = dump.choices[xz.choice]
    assert choice.prompt == "Module compression type"
    assert choice.members == ("MODULE_COMPRESS_GZIP", "MODULE_COMPRESS_XZ",
                              "MODULE_COMPRESS_ZSTD")


def test_python_evaluation_agrees_with_kconfig(dump: KconfigDump) -> None:
    """Every condition in the dump: our tristate evaluation equals lkc's expr_calc_value."""
    checked = 0
    for cond in conditions(dump):
        assert TRI_NAME[evaluate(cond.expr)] == cond.tri, cond.text
        checked += 1
    assert checked > 100


def test_rendering_agrees_with_menuconfig(dump: KconfigDump) -> None:
    """Where no constant, comparison or undefined symbol is involved (there kmatrix prints
    `y`, `A [=n] = y` and `MIPS [undefined]`), the text is expr_gstr_print's, byte for byte."""
    plain = [c for c in conditions(dump)
             if not any(s.const or s.undefined for s in symbols_in(c.expr))
             and "=" not in c.text.replace("[=", "")]
    assert len(plain) > 50
    for cond in plain:
        assert render(cond.expr) == cond.text


def test_render_precedence() -> None:
    a, b, c = Sym("A", "y"), Sym("B", "n"), Sym("C", "m")
    assert render(And(a, Or(b, c))) == "A [=y] && (B [=n] || C [=m])"
    assert render(Or(And(a, b), c)) == "A [=y] && B [=n] || C [=m]"
    assert render(Compare("!=", c, Sym("n", "n", const=True))) == "C [=m] != n"
    assert evaluate(And(a, c)) == 1 and evaluate(Or(b, c)) == 1
    assert evaluate(a, {"A": "n"}) == 0


# -- explain

def test_dups_chain(dump: KconfigDump) -> None:
    why = explain("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "y", dump)
    assert not why.holds and why.unsatisfiable is None
    assert why.summary() == ("MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]; "
                             "MODULE_DEBUG=y needs DEBUG_FS [=n]")
    assert why.proposal == {"MODULE_DEBUG": "y", "DEBUG_FS": "y"}
    assert [n.kind for n in why.needs] == ["depends", "depends"]


def test_trace_chain_goes_through_dups(dump: KconfigDump) -> None:
    why = explain("MODULE_DEBUG_AUTOLOAD_DUPS_TRACE", "y", dump)
    assert why.summary().startswith("MODULE_DEBUG_AUTOLOAD_DUPS_TRACE=y needs "
                                    "MODULE_DEBUG [=n] && MODULE_DEBUG_AUTOLOAD_DUPS [=n]")
    assert set(why.proposal) == {"MODULE_DEBUG", "DEBUG_FS", "MODULE_DEBUG_AUTOLOAD_DUPS"}


def test_taint_tracking(dump: KconfigDump) -> None:
    why = explain("MODULE_UNLOAD_TAINT_TRACKING", "y", dump)
    assert why.summary() == "MODULE_UNLOAD_TAINT_TRACKING=y needs MODULE_UNLOAD [=n]"
    assert why.proposal == {"MODULE_UNLOAD": "y"}
    assert why.selects == ["MODULE_DEBUGFS [=n] if MODULES [=y] && MODULE_UNLOAD [=n]"]


def test_decompress_and_choice_member(dump: KconfigDump) -> None:
    assert explain("MODULE_DECOMPRESS", "y", dump).proposal == {"MODULE_COMPRESS": "y"}
    why = explain("MODULE_COMPRESS_XZ", "y", dump)
    assert why.summary() == ('MODULE_COMPRESS_XZ=y is a member of choice "Module compression '
                             'type", which needs MODULE_COMPRESS [=n]')
    assert why.proposal == {"MODULE_COMPRESS": "y"}
    both = explain("MODULE_COMPRESS_XZ", "y", dump, {"CONFIG_MODULE_COMPRESS_GZIP": "y"})
    assert "only one can be y" in (both.unsatisfiable or "")


def test_select_forces_a_value(sig_dump: KconfigDump) -> None:
    why = explain("MODULE_SIG_FORMAT", "n", sig_dump)
    assert why.summary() == ("MODULE_SIG_FORMAT=n is forced to y by select: "
                             "MODULE_SIG [=y] && MODULES [=y]")
    assert why.needs[0].kind == "selected"
    assert why.proposal == {"MODULE_SIG": "n"}  # not MODULES=n: leftmost of equal costs
    assert why.selected_by[0] == "MODULE_SIG [=y] && MODULES [=y]"
    stuck = explain("MODULE_SIG_FORMAT", "n", sig_dump, {"MODULE_SIG": "y"})
    assert stuck.unsatisfiable == ("needs MODULE_SIG=n, but MODULE_SIG=y is requested; "
                                   "MODULES=n would break the requested MODULE_SIG=y "
                                   "(it needs MODULES [=y])")


def test_unknown_symbol(dump: KconfigDump) -> None:
    why = explain("CONFIG_MODULE_DEBUG_AUTOLOAD_DUP", "y", dump)
    assert not why.exists and not why.holds
    assert "did you mean CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in why.summary()


def test_other_architecture(dump: KconfigDump, tmp_path: Path) -> None:
    why = explain("BMIPS_CPUFREQ", "y", dump)
    assert why.summary() == ("BMIPS_CPUFREQ=y needs CPU_FREQ [=n] && MIPS [undefined]; "
                             "unsatisfiable: MIPS is defined nowhere in this tree's Kconfig "
                             "for this architecture (SRCARCH=x86)")
    (tmp_path / "arch" / "mips").mkdir(parents=True)
    (tmp_path / "arch" / "x86").mkdir()
    (tmp_path / "arch" / "mips" / "Kconfig").write_text("config MIPS\n\tbool\n")
    why = explain("BMIPS_CPUFREQ", "y", dump, tree=tmp_path)
    assert why.unsatisfiable == "MIPS exists only on arch/mips, not on x86_64 (SRCARCH=x86)"


def test_holds_settable_and_types(dump: KconfigDump) -> None:
    assert explain("MODULES", "y", dump).holds
    assert explain("MODULES", "y", dump).summary() == "MODULES=y holds"
    x32 = explain("X86_X32_ABI", "y", dump)
    assert x32.summary() == "X86_X32_ABI=y is settable, but the config sets it to n"
    assert x32.proposal == {}
    assert "is a bool" in (explain("MODULES", "m", dump).unsatisfiable or "")
    assert "not bool" in (explain("NR_CPUS", "y", dump).unsatisfiable or "")


def test_kvm_needs_virtualization_menu(dump: KconfigDump) -> None:
    why = explain("KVM_AMD", "y", dump)
    assert why.needs[0].line() == "KVM_AMD=y needs VIRTUALIZATION [=n] && KVM [=n]"
    assert why.proposal["VIRTUALIZATION"] == "y"


def test_parse_request() -> None:
    assert parse_request("CONFIG_FOO") == ("CONFIG_FOO", "y")
    assert parse_request("FOO=n") == ("CONFIG_FOO", "n")
    with pytest.raises(InputError):
        parse_request("CONFIG_FOO BAR")


# -- repair's loop, with a fake Kconfig: DUPS holds only with MODULE_DEBUG and DEBUG_FS

class FakeSession:
    """olddefconfig drops DUPS unless its chain is set, and BMIPS_CPUFREQ always;
    dump() is the captured dump."""

    def __init__(self, dump: KconfigDump) -> None:
        self._dump = dump
        self.tree = None
        self.resolves: list[Config] = []

    def olddefconfig(self, config: Config) -> Config:
        self.resolves.append(dict(config))
        resolved = dict(config)
        resolved.pop("CONFIG_BMIPS_CPUFREQ", None)  # needs MIPS: never holds on x86
        chain = config.get("CONFIG_DEBUG_FS") == "y" and config.get("CONFIG_MODULE_DEBUG") == "y"
        if not chain:
            resolved.pop("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", None)
            resolved.pop("CONFIG_MODULE_DEBUG", None)
        return resolved

    def dump(self) -> KconfigDump:
        return self._dump


def test_repair_loop(dump: KconfigDump) -> None:
    session = FakeSession(dump)
    fixed = repair({"MODULE_DEBUG_AUTOLOAD_DUPS": "y"}, {"CONFIG_MODULES": "y"},
                   session)  # type: ignore[arg-type]
    assert fixed.holds and fixed.rounds == 2
    assert fixed.describe() == "repaired: +DEBUG_FS=y +MODULE_DEBUG=y"
    assert len(session.resolves) == 2  # both additions provably needed: no drop trials


def test_repair_gives_up_with_reason(dump: KconfigDump) -> None:
    fixed = repair({"BMIPS_CPUFREQ": "y"}, {}, FakeSession(dump))  # type: ignore[arg-type]
    assert not fixed.holds and fixed.added == {}
    assert fixed.describe().startswith("cannot repair: BMIPS_CPUFREQ=y needs CPU_FREQ [=n]")
