"""explain/repair against the real 6.12 tree, in the real builder container.

One output directory for the whole module (tinyconfig is made once); every olddefconfig is a
few seconds. Set KMATRIX_CAPTURE_KCONFIG_FIXTURES=1 to rewrite the unit-test dumps in
tests/data/kconfig/ from this tree.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.kconfig import Config, merge, render_config
from harness.kconfig.command import explain_main
from harness.kconfig.explain import explain
from harness.kconfig.repair import diagnose, repair
from harness.kconfig.session import KconfigSession
from harness.verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("explain")]  # one out dir

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "kconfig"


@pytest.fixture(scope="module")
def session(kernel_tree: Path, docker_runner, work_cache: Path, tmp_path_factory):
    # one output dir per xdist worker: the module's tests share it, and nothing else may
    out = work_cache / f"explain-real-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    log_path = tmp_path_factory.mktemp("explain") / "kconfig.log"
    with open(log_path, "w", encoding="utf-8") as log:
        yield KconfigSession(kernel_tree, out, docker_runner, log)
    print(f"commands and output: {log_path}")


@pytest.fixture(scope="module")
def base(session: KconfigSession) -> Config:
    """tinyconfig + MODULES=y, as the default matrix starts."""
    return merge(session.config_target("tinyconfig"), {"CONFIG_MODULES": "y"})


def explained(session: KconfigSession, config: Config, symbol: str, value: str,
              requested: Config | None = None):
    session.olddefconfig(config)
    dump = session.dump()
    return explain(symbol, value, dump, requested, session.tree)


def assert_oracle(session: KconfigSession, config: Config, resolved: Config) -> None:
    """The repaired config is a fixed point of the real olddefconfig, and the dumper's own
    resolution (conf_read + conf_write) writes exactly the bytes olddefconfig writes."""
    again = session.olddefconfig(resolved)
    assert again == resolved
    (session.out / "input.config").write_text(render_config(config))
    session.olddefconfig(config)
    real = (session.out / ".config").read_text()
    session.dump("input.config", write="dumper.config")
    assert (session.out / "dumper.config").read_text() == real


def test_dups_chain_explained_and_repaired(session: KconfigSession, base: Config) -> None:
    started = time.monotonic()
    why = explained(session, merge(base, {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}),
                    "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "y")
    explain_s = time.monotonic() - started
    assert why.summary() == ("MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]; "
                             "MODULE_DEBUG=y needs DEBUG_FS [=n]")
    assert why.proposal == {"MODULE_DEBUG": "y", "DEBUG_FS": "y"}

    started = time.monotonic()
    fixed = repair({"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}, base, session)
    repair_s = time.monotonic() - started
    assert fixed.holds, fixed.describe()
    assert fixed.added == {"CONFIG_DEBUG_FS": "y", "CONFIG_MODULE_DEBUG": "y"}
    assert fixed.describe() == "repaired: +DEBUG_FS=y +MODULE_DEBUG=y"
    assert fixed.resolved["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"] == "y"
    assert_oracle(session, merge(base, fixed.added, fixed.requested), fixed.resolved)
    print(f"explain {explain_s:.1f} s, repair {repair_s:.1f} s ({fixed.rounds} rounds)")


def test_trace_needs_dups_too(session: KconfigSession, base: Config) -> None:
    fixed = repair({"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE": "y"}, base, session)
    assert fixed.holds, fixed.describe()
    assert set(fixed.added) == {"CONFIG_DEBUG_FS", "CONFIG_MODULE_DEBUG",
                                "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"}


def test_taint_tracking_needs_module_unload(session: KconfigSession, base: Config) -> None:
    why = explained(session, merge(base, {"CONFIG_MODULE_UNLOAD_TAINT_TRACKING": "y"}),
                    "MODULE_UNLOAD_TAINT_TRACKING", "y")
    assert why.summary() == "MODULE_UNLOAD_TAINT_TRACKING=y needs MODULE_UNLOAD [=n]"
    fixed = repair({"CONFIG_MODULE_UNLOAD_TAINT_TRACKING": "y"}, base, session)
    assert fixed.holds and fixed.added == {"CONFIG_MODULE_UNLOAD": "y"}


def test_decompress_needs_compress_and_its_choice(session: KconfigSession, base: Config) -> None:
    why = explained(session, merge(base, {"CONFIG_MODULE_DECOMPRESS": "y"}),
                    "MODULE_DECOMPRESS", "y")
    assert why.summary() == "MODULE_DECOMPRESS=y needs MODULE_COMPRESS [=n]"
    assert any(s.startswith("ZLIB_INFLATE [=n] if ") for s in why.selects)
    fixed = repair({"CONFIG_MODULE_DECOMPRESS": "y"}, base, session)
    assert fixed.holds and fixed.added == {"CONFIG_MODULE_COMPRESS": "y"}
    # the choice underneath picks its default member, and the matching select follows
    assert fixed.resolved["CONFIG_MODULE_COMPRESS_GZIP"] == "y"
    assert fixed.resolved["CONFIG_ZLIB_INFLATE"] == "y"


def test_choice_member_needs_the_choice_visible(session: KconfigSession, base: Config) -> None:
    why = explained(session, merge(base, {"CONFIG_MODULE_COMPRESS_XZ": "y"}),
                    "MODULE_COMPRESS_XZ", "y")
    assert why.needs[0].kind == "choice"
    assert why.summary().startswith('MODULE_COMPRESS_XZ=y is a member of choice "Module '
                                    'compression type", which needs MODULE_COMPRESS [=n]')
    fixed = repair({"CONFIG_MODULE_COMPRESS_XZ": "y", "CONFIG_MODULE_DECOMPRESS": "y"},
                   base, session)
    assert fixed.holds and fixed.added == {"CONFIG_MODULE_COMPRESS": "y"}
    assert fixed.resolved["CONFIG_MODULE_COMPRESS_GZIP"] == "n"
    assert fixed.resolved["CONFIG_XZ_DEC"] == "y"


def test_option_forced_by_a_select(session: KconfigSession, base: Config) -> None:
    with_sig = merge(base, {"CONFIG_MODULE_SIG": "y"})
    why = explained(session, merge(with_sig, {"CONFIG_MODULE_SIG_FORMAT": "n"}),
                    "MODULE_SIG_FORMAT", "n")
    assert why.summary() == ("MODULE_SIG_FORMAT=n is forced to y by select: "
                             "MODULE_SIG [=y] && MODULES [=y]")
    assert why.selected_by[0] == "MODULE_SIG [=y] && MODULES [=y]"
    fixed = repair({"CONFIG_MODULE_SIG_FORMAT": "n"}, with_sig, session)
    assert fixed.holds and fixed.added == {"CONFIG_MODULE_SIG": "n"}
    # when MODULE_SIG=y is requested too, nothing can make both hold
    both = repair({"CONFIG_MODULE_SIG": "y", "CONFIG_MODULE_SIG_FORMAT": "n"}, base, session)
    assert not both.holds and both.added == {}
    assert "MODULE_SIG=y is requested" in (both.unsatisfiable or "")


def test_symbol_that_does_not_exist(session: KconfigSession, base: Config) -> None:
    why = explained(session, base, "CONFIG_MODULE_DEBUG_AUTOLOAD_DUP", "y")
    assert not why.exists
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in why.summary()  # did you mean
    fixed = repair({"CONFIG_NO_SUCH_OPTION_XYZ": "y"}, base, session)
    assert not fixed.holds and "defined nowhere" in (fixed.unsatisfiable or "")


def test_request_that_needs_another_architecture(session: KconfigSession, base: Config) -> None:
    why = explained(session, merge(base, {"CONFIG_BMIPS_CPUFREQ": "y"}), "BMIPS_CPUFREQ", "y")
    assert why.summary() == ("BMIPS_CPUFREQ=y needs CPU_FREQ [=n] && MIPS [undefined]; "
                             "unsatisfiable: MIPS exists only on arch/mips, "
                             "not on x86_64 (SRCARCH=x86)")
    fixed = repair({"CONFIG_BMIPS_CPUFREQ": "y"}, base, session)
    assert not fixed.holds and fixed.rounds == 1 and fixed.added == {}
    arm_only = explained(session, base, "ARM64_4K_PAGES", "y")
    assert arm_only.unsatisfiable == "ARM64_4K_PAGES exists only on arm64 (arch/arm64), " \
                                     "not on x86_64 (SRCARCH=x86)"


def test_diagnose_before_building(session: KconfigSession, base: Config) -> None:
    assert diagnose({"CONFIG_MODULES": "y"}, base, session) == []
    found = diagnose({"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y", "CONFIG_BMIPS_CPUFREQ": "y"},
                     base, session)
    assert [(e.symbol, e.unsatisfiable is None) for e in found] == [
        ("MODULE_DEBUG_AUTOLOAD_DUPS", True), ("BMIPS_CPUFREQ", False)]


def test_explain_main(session: KconfigSession, base: Config, tmp_path: Path) -> None:
    config = tmp_path / "tiny-modules.config"
    config.write_text(render_config(base))
    started = time.monotonic()
    text, status = explain_main("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", config, session.tree,
                                session.out, session.runner, session.log)
    print(f"explain_main {time.monotonic() - started:.1f} s\n{text}")
    assert status == EXIT_KERNEL_FAILED
    assert "  MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]" in text
    assert "repaired: +DEBUG_FS=y +MODULE_DEBUG=y" in text
    assert "docker run" in text
    text, status = explain_main("CONFIG_MODULES", config, session.tree, session.out,
                                session.runner, session.log)
    assert status == EXIT_OK and "CONFIG_MODULES=y: holds" in text
    text, status = explain_main("CONFIG_NOPE=y", config, session.tree, session.out,
                                session.runner, session.log)
    assert status == EXIT_BAD_INPUT


def test_capture_unit_fixtures(session: KconfigSession, base: Config) -> None:
    """Rewrite tests/data/kconfig/*.jsonl from this tree (only when asked)."""
    if not os.environ.get("KMATRIX_CAPTURE_KCONFIG_FIXTURES"):
        pytest.skip("set KMATRIX_CAPTURE_KCONFIG_FIXTURES=1 to rewrite the unit-test dumps")
    seeds = ["MODULE_DEBUG_AUTOLOAD_DUPS", "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE", "MODULE_STATS",
             "MODULE_UNLOAD_TAINT_TRACKING", "MODULE_DECOMPRESS", "MODULE_COMPRESS_XZ",
             "MODULE_SIG_FORMAT", "MODULE_SIG", "MODULES_TREE_LOOKUP", "BMIPS_CPUFREQ",
             "X86_X32_ABI", "KVM_AMD", "HZ_100", "HZ_1000", "PREEMPT", "NR_CPUS"]
    for name, extra in (("tiny-modules", {}), ("tiny-modules-sig", {"CONFIG_MODULE_SIG": "y"})):
        session.olddefconfig(merge(base, extra))
        session.dump()
        lines = (session.out / "kconfig-dump.jsonl").read_text().splitlines()
        FIXTURES.mkdir(parents=True, exist_ok=True)
        (FIXTURES / f"{name}.jsonl").write_text("\n".join(_subset(lines, seeds)) + "\n")


def _subset(lines: list[str], seeds: list[str]) -> list[str]:
    """The header, every choice, the seed symbols and every symbol their records mention,
    two levels deep: enough for the unit tests, small enough to read."""
    records = [json.loads(line) for line in lines]
    symbols = {r["name"]: r for r in records if r["kind"] == "symbol"}
    keep: set[str] = set()
    frontier = set(seeds)
    for _ in range(2):
        keep |= frontier
        mentioned: set[str] = set()
        for name in frontier:
            mentioned |= set(_names_in(symbols.get(name, {})))
        frontier = {n for n in mentioned if n in symbols} - keep
    for r in records:
        if r["kind"] == "choice" and set(r["members"]) & keep:
            keep |= set(r["members"])
    return [line for line, r in zip(lines, records)
            if r["kind"] != "symbol" or r["name"] in keep]


def _names_in(data: object) -> list[str]:
    if isinstance(data, dict):
        found = [data["s"]] if "s" in data and not data.get("c") else []
        return found + [n for v in data.values() for n in _names_in(v)]
    if isinstance(data, list):
        return [n for v in data for n in _names_in(v)]
    return []


def test_one_parse_resolves_each_config_as_make_olddefconfig_does(
        session: KconfigSession, base: Config, tmp_path: Path) -> None:
    """The resolve step's one Kconfig session (the dumper's --each) writes, for every config,
    exactly the bytes `make olddefconfig` writes: a request that holds, one Kconfig drops, a
    choice, a select cascade, and the same config twice (no state leaks between them)."""
    configs = [merge(base, {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}),  # dropped
               merge(base, {"CONFIG_DEBUG_FS": "y", "CONFIG_MODULE_DEBUG": "y",
                            "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}),
               merge(base, {"CONFIG_MODULE_COMPRESS": "y", "CONFIG_MODULE_COMPRESS_XZ": "y",
                            "CONFIG_MODULE_DECOMPRESS": "y"}),
               merge(base, {"CONFIG_PERF_EVENTS": "y"}),
               merge(base, {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"})]
    session.prepare_each(base)
    each = session.resolve_each(configs, tmp_path / "each")
    for i, config in enumerate(configs):
        session.olddefconfig(config)
        real = (session.out / ".config").read_text()
        assert (tmp_path / "each" / f"{i:05d}.config.resolved").read_text() == real, i
        assert each[i] == session.olddefconfig(config)
    assert each[0] == each[4] and each[0] != each[1]
    assert each[0] is not None and each[0].get("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "n") == "n"
