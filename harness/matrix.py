"""matrix.yaml: load, validate and expand into combinations with stable ids.

Loading checks the file's shape (no kernel tree needed); ``check_against_tree`` then checks every
symbol and value against the tree's Kconfig. Nothing builds until both have passed.

Why this module is long: every key of matrix.yaml is validated here with the file:line of each
error, and `sample:` and `axes: {from: ...}` add their own checks; the sample itself and the
axes from the tree live in harness/sample.py and harness/cover.py. The validators of the
optional blocks (sample, build, expect) are the piece to split out next.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import arch as archmod
from . import kconfig, linkcheck, toolchains, variants, yamlsrc
from .arch import Arch
from .kconfig import Config, SymbolTable
from .runtime import RUNTIMES
from .sample import MAX_T, STRATEGIES, Axis, Rule, SampleSpec
from .toolchains import Toolchain
from .verdict import InputError

TOP_KEYS = {"kernel", "base", "config", "fragments", "axes", "exclude", "include", "expect",
            "build", "repair", "short_names", "sample"}
SAMPLE_KEYS = {"strategy", "t", "seed"}
KERNEL_KEYS = {"source", "arch", "toolchain"}
INCLUDE_KEYS = {"id", "config", "boot", "repair", "arch", "toolchain"}
BOOT_KEYS = {"cmdline"}
BUILD_KEYS = {"targets", "timeout", "boot_timeout", "trees", "max_combinations", "runtime"}
TREE_POLICIES = ("nearest", "lanes", "own")  # see harness/schedule.py
BASES = ("tinyconfig", "allnoconfig", "defconfig")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")  # used with fullmatch: no "abc\n"
NAME_RE = re.compile(r"(CONFIG_)?[A-Z0-9][A-Z0-9_]*\Z")
ID_MAX = 200  # a directory name under results/<run-id>/ (file names stop at 255 bytes)
# what a run directory holds besides the combinations' directories (results.py, session.py)
RESERVED_IDS = {"run.json", "symbols.json", "summary.md", "junit.xml", "seed.log", "resolve.log",
                "resolve.json", "accel.json", "accel.lock", "guest", "guest.lock", "kvm-probe",
                "steps", "configs", "latest", "summary.html", "bisect.json", "bisect.txt",
                "state.json", "report.html", "input-matrix.yaml", "kcidb.json",
                "bisect-new-failures.json"}
DEFAULT_BOOT_TIMEOUT_S = 300.0  # build.boot_timeout; harness/boot.py's default too
MAX_COMBINATIONS = 4096  # build.max_combinations raises it
_BAD_CHAR_RE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class BootRequest:
    cmdline: str = ""


@dataclass(frozen=True)
class Combination:
    """One point of the matrix: its own requested values on top of the common ones."""

    id: str
    values: tuple[tuple[str, str], ...]  # (CONFIG_NAME, value as written in the matrix)
    line: int
    boot: BootRequest | None = None
    repair: bool = False
    arch: str = ""  # its own architecture and toolchain ("": the matrix's), harness/variants.py
    toolchain: str = ""

    @property
    def axis_values(self) -> dict[str, str]:
        """Its values as the reports show them: arch and toolchain too, where it has its own."""
        own = {k: v for k, v in (("arch", self.arch), ("toolchain", self.toolchain)) if v}
        return {**own, **dict(self.values)}


@dataclass(frozen=True)
class BuildSettings:
    targets: tuple[str, ...] = ("kernel/module/",)
    timeout_s: float = 1800.0
    boot_timeout_s: float = DEFAULT_BOOT_TIMEOUT_S
    trees: str = "nearest"  # nearest | lanes | own: which tree builds what (harness/schedule.py)
    runtime: str = "docker"  # docker | podman: the container engine (harness/runtime.py)


@dataclass
class Matrix:
    path: Path
    source: str  # "debian" (Debian's linux-source package), a directory, or a tarball
    arch: Arch  # harness/arch: everything architecture-specific
    base: str  # tinyconfig | allnoconfig | defconfig | path to a config file
    common: tuple[tuple[str, str, int], ...]  # inline common values with their lines
    fragment_files: tuple[Path, ...]
    combinations: list[Combination]
    expect: dict[str, dict[str, str]] = field(default_factory=dict)
    build: BuildSettings = field(default_factory=BuildSettings)
    expect_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    sample: SampleSpec = field(default_factory=SampleSpec)
    axes: list[Axis] = field(default_factory=list)  # as written (without the `from` ones)
    axes_from: tuple[str, ...] = ()  # tree directories whose Makefile options are axes too
    rules: list[Rule] = field(default_factory=list)  # exclude rules
    axes_line: int = 0
    short_names: dict[str, str] = field(default_factory=dict)
    repair: bool = False  # the matrix-wide default

    @property
    def deferred(self) -> bool:
        """The axes' combinations wait for the tree (axes.from) or Kconfig (a sample):
        `harness/cover.py` makes them."""
        return self.sample.sampled or bool(self.axes_from)
    # the ids of the include entries (rows of their own in the reports)
    include_ids: tuple[str, ...] = ()
    toolchain: Toolchain = field(default_factory=toolchains.default)  # kernel.toolchain

    @property
    def variant(self) -> str:
        """The architecture and toolchain this matrix (or view) builds with: `<arch>-<toolchain>`."""
        return variants.name(self.arch.name, self.toolchain.name)

    def views(self, only: list[str] | tuple[str, ...] = ()) -> list[Matrix]:
        """One view per architecture and toolchain its combinations (those in `only`, when
        given) build with, in their order; the matrix's own first when its combinations are
        made later (a sample, axes from the tree) or none is selected."""
        out = {self.variant: self} if self.deferred else {}
        for combo in self.combinations:
            if not only or combo.id in only:
                view = self.built_with(combo)
                out.setdefault(view.variant, view)
        return list(out.values()) or [self]

    def built_with(self, combo: Combination) -> Matrix:
        """The matrix as `combo` builds: with its own architecture and toolchain, where it has
        them (every stage reads `matrix.arch` and `matrix.toolchain` of this view)."""
        arch = archmod.get(combo.arch) if combo.arch else self.arch
        chain = toolchains.get(combo.toolchain) if combo.toolchain else self.toolchain
        if arch == self.arch and chain == self.toolchain:
            return self
        return replace(self, arch=arch, toolchain=chain)

    @property
    def srcarch(self) -> str:
        return self.arch.srcarch

    def combination(self, combo_id: str) -> Combination:
        for combo in self.combinations:
            if combo.id == combo_id:
                return combo
        known = ", ".join(c.id for c in self.combinations[:8])
        raise InputError(f"{self.path}: no combination {combo_id!r}: known ids: {known}")


def _fail(path: Path, line: int, message: str) -> InputError:
    return InputError(f"{path}:{line}: {message}")


def _symbol(path: Path, line: int, name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _fail(path, line, f"{name!r} is not a CONFIG_ symbol: write it like "
                    "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS (upper case, digits, _)")
    return kconfig.config_name(name)


def _value(path: Path, line: int, symbol: str, value: Any) -> str:
    if isinstance(value, bool):
        raise _fail(path, line, f"{symbol}: YAML read {value!r} as a boolean: write y or n")
    if isinstance(value, int):
        return getattr(value, "text", str(value))
    if isinstance(value, str) and value != "" and not _BAD_CHAR_RE.search(value):
        return value
    raise _fail(path, line, f"{symbol}: {repr(value)[:80]} is not a value: write y, m, n, a "
                "number or a string")


def _mapping(path: Path, node: Any, what: str, line: int) -> yamlsrc.LineDict:
    if not isinstance(node, dict):
        raise _fail(path, yamlsrc.line_of(node) or line, f"{what} must be a mapping")
    return node  # type: ignore[return-value]


def _list(path: Path, node: Any, what: str, line: int) -> yamlsrc.LineList:
    if not isinstance(node, list):
        raise _fail(path, yamlsrc.line_of(node) or line, f"{what} must be a list")
    return node  # type: ignore[return-value]


def _unknown_keys(path: Path, node: yamlsrc.LineDict, allowed: set[str], where: str) -> None:
    for key in node:
        if key not in allowed:
            raise _fail(path, yamlsrc.line_of(node, key),
                        f"unknown key {key!r} in {where}: expected one of "
                        f"{', '.join(sorted(allowed))}")


def _assignments(path: Path, node: Any, what: str, line: int) -> list[tuple[str, str, int]]:
    mapping = _mapping(path, node, what, line)
    out = []
    for key, value in mapping.items():
        at = yamlsrc.line_of(mapping, key)
        sym = _symbol(path, at, key)
        out.append((sym, _value(path, at, sym, value), at))
    return out


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "empty"


def make_id(values: list[tuple[str, str]], short_names: dict[str, str]) -> str:
    """`dups-y.trace-n`; an architecture or toolchain value stands for itself: `clang-16.dups-y`."""
    parts = [val if sym in variants.KEYS else
             f"{short_names.get(sym, slug(sym.removeprefix('CONFIG_')))}-{slug(val)}"
             for sym, val in values]
    return ".".join(parts) if parts else "base"


def load_matrix(path: Path) -> Matrix:
    """Load and check a matrix file's shape. Raises InputError naming file:line and the fix."""
    path = path.resolve()
    doc = yamlsrc.load(path)
    if doc is None:
        raise _fail(path, 1, "the matrix is empty: see the README for a minimal matrix.yaml")
    top = _mapping(path, doc, "the matrix", 1)
    _unknown_keys(path, top, TOP_KEYS, "the matrix")
    here = path.parent

    kernel = _mapping(path, top.get("kernel", yamlsrc.LineDict()), "kernel",
                      yamlsrc.line_of(top, "kernel"))
    if kernel:
        _unknown_keys(path, kernel, KERNEL_KEYS, "kernel")
    source = str(kernel.get("source", "debian"))
    if source != "debian":
        source = str((here / source).resolve()) if not Path(source).is_absolute() else source
    try:
        arch = archmod.get(str(kernel.get("arch", archmod.DEFAULT)))
    except InputError as exc:
        raise _fail(path, yamlsrc.line_of(kernel, "arch"), exc.message) from None
    try:
        chain = toolchains.get(str(kernel.get("toolchain", toolchains.DEFAULT)))
    except InputError as exc:
        raise _fail(path, yamlsrc.line_of(kernel, "toolchain"), exc.message) from None

    base = top.get("base", "tinyconfig")
    if not isinstance(base, str):
        raise _fail(path, yamlsrc.line_of(top, "base"), "base must be tinyconfig, allnoconfig, "
                    "defconfig or a config file path")
    if base not in BASES:
        base_path = (here / base).resolve()
        if not base_path.is_file():
            raise _fail(path, yamlsrc.line_of(top, "base"),
                        f"base {base!r} is neither {', '.join(BASES)} nor an existing file")
        base = str(base_path)

    common = tuple(_assignments(path, top["config"], "config", yamlsrc.line_of(top, "config"))
                   ) if "config" in top else ()
    fragment_files = []
    if "fragments" in top:
        frags = _list(path, top["fragments"], "fragments", yamlsrc.line_of(top, "fragments"))
        for i, item in enumerate(frags):
            at = frags.item_lines[i]
            frag = (here / str(item)).resolve()
            if not frag.is_file():
                raise _fail(path, at, f"fragment {item!r} does not exist: fix the path "
                            "(relative to the matrix file)")
            fragment_files.append(frag)

    short_names: dict[str, str] = {}
    if "short_names" in top:
        for sym, name, at in _assignments(path, top["short_names"], "short_names",
                                          yamlsrc.line_of(top, "short_names")):
            if not ID_RE.fullmatch(name):
                raise _fail(path, at, f"short name {name!r} may only use letters, digits, _ . + -")
            short_names[sym] = name

    default_repair = top.get("repair", False)
    if not isinstance(default_repair, bool):
        raise _fail(path, yamlsrc.line_of(top, "repair"), "repair must be true or false")

    spec = _sample(path, top)
    axes, axes_from, rules = _axes(path, top)
    if why := variants.not_sampled(any(a.symbol in variants.KEYS for a in axes),
                                   spec.sampled or bool(axes_from)):
        raise _fail(path, yamlsrc.line_of(top, "axes"), why)
    combos = [] if spec.sampled or axes_from else \
        axes_combinations(path, top, axes, rules, short_names, default_repair,
                          _max_combinations(path, top))
    includes = _includes(path, top, short_names, default_repair)
    combos += includes
    if not combos and not (axes_from or (spec.sampled and axes)):
        raise _fail(path, top.line, "the matrix expands to no combination: add axes or include "
                    "entries, or loosen exclude")
    seen: dict[str, int] = {}
    for combo in combos:
        chain_ = toolchains.get(combo.toolchain) if combo.toolchain else chain
        if why := chain_.cannot_build(archmod.get(combo.arch) if combo.arch else arch):
            raise _fail(path, combo.line, f"{combo.id}: {why} (exclude it)")
        if combo.id in RESERVED_IDS or len(combo.id) > ID_MAX:
            why = ("names a file kmatrix keeps in the run directory" if len(combo.id) <= ID_MAX
                   else f"is longer than {ID_MAX} characters")
            raise _fail(path, combo.line, f"combination id {combo.id[:80]!r} {why}: "
                        "give it another id (or shorter short_names)")
        if combo.id in seen:
            raise _fail(path, combo.line, f"combination id {combo.id!r} is used twice (also line "
                        f"{seen[combo.id]}): give one of them its own id")
        seen[combo.id] = combo.line

    expect, expect_lines = _expect(path, top)
    build = _build(path, top)
    for directory in expect:
        if not builds_directory(build.targets, directory, arch):
            raise _fail(path, yamlsrc.line_of(top["expect"], directory),
                        f"expect {directory}: no build target builds it, so its built-in.a "
                        f"could never be checked: add {directory} to build.targets")
    return Matrix(path, source, arch, base, common, tuple(fragment_files), combos, expect, build,
                  expect_lines, spec, axes, axes_from, rules, yamlsrc.line_of(top, "axes"),
                  short_names, default_repair,
                  tuple(c.id for c in includes), chain)


def _max_combinations(path: Path, top: yamlsrc.LineDict) -> int:
    build = top.get("build")
    if not isinstance(build, dict) or "max_combinations" not in build:
        return MAX_COMBINATIONS
    value = build["max_combinations"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, yamlsrc.line_of(build, "max_combinations"),
                    "max_combinations must be a positive whole number")
    return int(value)


def _sample(path: Path, top: yamlsrc.LineDict) -> SampleSpec:
    """`sample: all` (the default), `sample: pairwise`, or `{strategy: pairwise | t-wise, t: N,
    seed: N}`."""
    if "sample" not in top:
        return SampleSpec()
    raw, at = top["sample"], yamlsrc.line_of(top, "sample")
    if isinstance(raw, str):
        raw_map: dict[str, Any] = {"strategy": raw}
    else:
        node = _mapping(path, raw, "sample", at)
        _unknown_keys(path, node, SAMPLE_KEYS, "sample")
        raw_map = dict(node)
        at = yamlsrc.line_of(node, "strategy")
    strategy = raw_map.get("strategy", "pairwise")
    if strategy not in STRATEGIES:
        raise _fail(path, at, f"sample strategy {strategy!r} is not one of "
                    f"{', '.join(STRATEGIES)}: write sample: all, sample: pairwise or "
                    "sample: {strategy: t-wise, t: 3}")
    t = raw_map.get("t", 2 if strategy != "t-wise" else 3)
    if isinstance(t, bool) or not isinstance(t, int) or not 2 <= t <= MAX_T:
        raise _fail(path, yamlsrc.line_of(raw, "t"), f"sample t must be a whole number from 2 "
                    f"to {MAX_T} (got {t!r})")
    if strategy == "pairwise" and t != 2:
        raise _fail(path, yamlsrc.line_of(raw, "t"), "pairwise means t: 2: write "
                    f"strategy: t-wise to cover {t}-tuples")
    seed = raw_map.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _fail(path, yamlsrc.line_of(raw, "seed"), f"sample seed must be a whole number "
                    f"0 or more (got {seed!r})")
    if strategy == "all" and ("t" in raw_map or "seed" in raw_map):
        raise _fail(path, at, "sample: all takes no t or seed: the product has no choice to make")
    return SampleSpec(strategy, int(t), int(seed))


def _axes(path: Path, top: yamlsrc.LineDict) -> tuple[list[Axis], tuple[str, ...], list[Rule]]:
    """The axes as written, the tree directories they come from (`from:`), the exclude rules."""
    if "axes" not in top:
        if "exclude" in top:
            raise _fail(path, yamlsrc.line_of(top, "exclude"), "exclude trims the axes, but the "
                        "matrix has none: add axes, or remove exclude")
        return [], (), []
    axes = _mapping(path, top["axes"], "axes", yamlsrc.line_of(top, "axes"))
    out: list[Axis] = []
    sources: list[str] = []
    for key, values in axes.items():
        at = yamlsrc.line_of(axes, key)
        if key == "from":
            dirs = values if isinstance(values, list) else [values]
            for d in dirs:
                if not isinstance(d, str) or not d.strip("/") or d.startswith("/") or ".." in d:
                    raise _fail(path, at, f"axes from {d!r}: give a directory of the kernel "
                                "tree with a Kbuild Makefile, like kernel/module/")
                sources.append(d if d.endswith("/") else d + "/")
            continue
        if key in variants.KEYS:
            vals = values if isinstance(values, list) else None
            if not vals:
                raise _fail(path, at, f"axis {key} needs a non-empty list of names")
            out.append(Axis(key, tuple(_variant(path, at, key, v) for v in vals), at))
            continue
        sym = _symbol(path, at, key)
        vals = values if isinstance(values, list) else None
        if not vals:
            raise _fail(path, at, f"axis {sym} needs a non-empty list of values, e.g. [y, n]")
        out.append(Axis(sym, tuple(_value(path, at, sym, v) for v in vals), at))
    names = [a.symbol for a in out]
    rules: list[Rule] = []
    if "exclude" in top:
        raw_rules = _list(path, top["exclude"], "exclude", yamlsrc.line_of(top, "exclude"))
        for i, rule in enumerate(raw_rules):
            at = raw_rules.item_lines[i]
            rule_map = _mapping(path, rule, "an exclude rule", at)
            parsed = {}
            for key, value in rule_map.items():
                vals = value if isinstance(value, list) else [value]
                if key in variants.KEYS and key in names:
                    parsed[key] = frozenset(_variant(path, at, key, v) for v in vals)
                    continue
                sym = _symbol(path, at, key)
                if sym not in names and not sources:  # `from` axes are known with the tree
                    raise _fail(path, yamlsrc.line_of(rule_map, key),
                                f"exclude names {sym}, which is not an axis")
                parsed[sym] = frozenset(_value(path, at, sym, v) for v in vals)
            rules.append(parsed)
    return out, tuple(sources), rules


def axes_combinations(path: Path, top: yamlsrc.LineDict, axes: list[Axis], rules: list[Rule],
                      short_names: dict[str, str], repair: bool,
                      cap: int = MAX_COMBINATIONS) -> list[Combination]:
    """The cartesian product of the axes, less the excluded points (`sample: all`)."""
    from .sample import product_rows

    if not axes:
        return []
    product = 1
    for axis in axes:
        product *= len(axis.values)
    if product > cap:  # counted, never expanded: 20 boolean axes are a million combinations
        raise _fail(path, yamlsrc.line_of(top, "axes"),
                    f"the axes expand to {product} combinations (before exclude), more than "
                    f"the limit of {cap}: use fewer axes, raise build.max_combinations, or "
                    "sample them (sample: pairwise)")
    line = yamlsrc.line_of(top, "axes")
    return [Combination(make_id(list(row), short_names), *_split(row, line, repair))
            for row in product_rows(axes, rules)]


def _split(row: tuple[tuple[str, str], ...], line: int, repair: bool
           ) -> tuple[tuple[tuple[str, str], ...], int, None, bool, str, str]:
    values, arch, chain = variants.split(row)
    return values, line, None, repair, arch, chain


def _variant(path: Path, line: int, key: str, value: Any) -> str:
    try:
        return variants.check(key, value)
    except InputError as exc:
        raise _fail(path, line, exc.message) from None


def _includes(path: Path, top: yamlsrc.LineDict, short_names: dict[str, str],
              default_repair: bool) -> list[Combination]:
    if "include" not in top:
        return []
    entries = _list(path, top["include"], "include", yamlsrc.line_of(top, "include"))
    combos = []
    for i, entry in enumerate(entries):
        at = entries.item_lines[i]
        entry = _mapping(path, entry, "an include entry", at)
        _unknown_keys(path, entry, INCLUDE_KEYS, "an include entry")
        values = [(s, v) for s, v, _ in _assignments(
            path, entry.get("config", yamlsrc.LineDict()), "include config", at)]
        own = [(k, _variant(path, yamlsrc.line_of(entry, k), k, entry[k]))
               for k in variants.KEYS if k in entry]
        combo_id = entry.get("id", make_id(own + values, short_names))
        if not isinstance(combo_id, str) or not ID_RE.fullmatch(combo_id):
            raise _fail(path, yamlsrc.line_of(entry, "id"),
                        f"id {str(combo_id)[:80]!r} may only use letters, digits, _ . + -")
        boot = None
        if "boot" in entry:
            raw = entry["boot"]
            if raw is True:
                boot = BootRequest()
            elif isinstance(raw, yamlsrc.LineDict):  # every YAML mapping loads as one
                _unknown_keys(path, raw, BOOT_KEYS, "boot")
                cmdline = raw.get("cmdline", "")
                if not isinstance(cmdline, str) or _BAD_CHAR_RE.search(cmdline):
                    raise _fail(path, yamlsrc.line_of(raw, "cmdline"),
                                "cmdline must be a string on one line (no control characters)")
                boot = BootRequest(cmdline)
            elif raw is not False:
                raise _fail(path, yamlsrc.line_of(entry, "boot"),
                            "boot must be true, false or {cmdline: ...}")
        repair = entry.get("repair", default_repair)
        if not isinstance(repair, bool):
            raise _fail(path, yamlsrc.line_of(entry, "repair"), "repair must be true or false")
        combos.append(Combination(combo_id, tuple(values), at, boot, repair,
                                  dict(own).get("arch", ""), dict(own).get("toolchain", "")))
    return combos


def _expect(path: Path, top: yamlsrc.LineDict
            ) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], int]]:
    lines: dict[tuple[str, str], int] = {}
    if "expect" not in top:
        return {}, lines
    expect = _mapping(path, top["expect"], "expect", yamlsrc.line_of(top, "expect"))
    result: dict[str, dict[str, str]] = {}
    for directory, objects in expect.items():
        at = yamlsrc.line_of(expect, directory)
        if not isinstance(directory, str) or not directory.endswith("/"):
            raise _fail(path, at, f"expect key {directory!r} must be a directory like kernel/module/")
        if problem := _tree_path_problem(directory):
            raise _fail(path, at, f"expect key {directory[:80]!r} {problem}: write a directory "
                        "of the kernel tree like kernel/module/")
        objs = _mapping(path, objects, f"expect {directory}", at)
        result[directory] = {}
        for obj, cond in objs.items():
            oat = yamlsrc.line_of(objs, obj)
            if not isinstance(obj, str) or not obj.endswith(".o") or "/" in obj \
                    or _BAD_CHAR_RE.search(obj):
                raise _fail(path, oat, f"{obj!r} is not an object name like dups.o")
            cond_text = {True: "y", False: "n"}.get(cond, cond) if isinstance(cond, bool) else cond
            if not isinstance(cond_text, str):
                raise _fail(path, oat, f"{obj}: condition must be y, n or an expression like "
                            "MODULE_SIG && !FOO")
            try:
                linkcheck.evaluate(cond_text, {})
            except linkcheck.ConditionError as exc:
                raise _fail(path, oat, f"{obj}: {exc}") from exc
            result[directory][obj] = cond_text
            lines[(directory, obj)] = oat
    return result, lines


def _tree_path_problem(text: str) -> str:
    """Why a path from the matrix would leave the kernel tree (or is not a path), else ""."""
    if _BAD_CHAR_RE.search(text) or any(c.isspace() for c in text):
        return "has spaces or control characters"
    if text.startswith("/"):
        return "is an absolute path"
    if any(part in ("..", ".") for part in text.split("/")) or "//" in text:
        return "has . or .. or an empty part"
    return ""


def builds_directory(targets: tuple[str, ...] | list[str], directory: str, arch: Arch) -> bool:
    """A make target that produces `directory`'s built-in.a: the directory itself, a directory
    above it, or a whole-kernel target."""
    for target in targets:
        if target in ("all", "vmlinux", arch.image_target):
            return True
        t = target if target.endswith("/") else target + "/"
        if directory.startswith(t):
            return True
    return False


def _build(path: Path, top: yamlsrc.LineDict) -> BuildSettings:
    if "build" not in top:
        return BuildSettings()
    build = _mapping(path, top["build"], "build", yamlsrc.line_of(top, "build"))
    _unknown_keys(path, build, BUILD_KEYS, "build")
    targets = build.get("targets", list(BuildSettings.targets))
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise _fail(path, yamlsrc.line_of(build, "targets"), "targets must be a list of make targets")
    for target in targets:
        if target.startswith("-") or "=" in target or _tree_path_problem(target):
            raise _fail(path, yamlsrc.line_of(build, "targets"),
                        f"target {target[:80]!r} is not a make target (no options, no "
                        "VAR=value, no paths outside the tree): write e.g. kernel/module/")
    for key in ("timeout", "boot_timeout"):
        value = build.get(key, 1.0)  # a bool is an int, and .nan/.inf are floats: not seconds
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value <= 0:
            raise _fail(path, yamlsrc.line_of(build, key), f"{key} must be a positive number of seconds")
    trees = build.get("trees", BuildSettings.trees)
    if trees not in TREE_POLICIES:
        raise _fail(path, yamlsrc.line_of(build, "trees"),
                    f"trees must be one of {', '.join(TREE_POLICIES)} (got {trees!r})")
    runtime = build.get("runtime", BuildSettings.runtime)
    if runtime not in RUNTIMES:
        raise _fail(path, yamlsrc.line_of(build, "runtime"),
                    f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
    return BuildSettings(tuple(targets), float(build.get("timeout", 1800)),
                         float(build.get("boot_timeout", DEFAULT_BOOT_TIMEOUT_S)), trees, runtime)


def check_against_tree(matrix: Matrix, symbols: SymbolTable) -> None:
    """Every symbol the matrix names must exist in the tree, with a value of the right type."""
    def check(sym: str, value: str | None, line: int) -> None:
        if sym not in symbols:
            hint = symbols.close_matches(sym)
            tip = f"did you mean {', '.join(hint)}?" if hint else "check the spelling"
            raise _fail(matrix.path, line, f"{sym} is not defined by any Kconfig file in this "
                        f"kernel tree: {tip}")
        if value is not None and (problem := kconfig.check_value(symbols.type_of(sym), value)):
            raise _fail(matrix.path, line, f"{sym}={value}: {problem}")

    for sym, value, line in matrix.common:
        check(sym, value, line)
    for frag in matrix.fragment_files:
        for number, text in enumerate(frag.read_text().splitlines(), start=1):
            for sym in kconfig.parse_config(text):
                if sym not in symbols:
                    hint = symbols.close_matches(sym)
                    tip = f"did you mean {', '.join(hint)}?" if hint else "fix or remove it"
                    raise InputError(f"{frag}:{number}: {sym} is not defined by any Kconfig "
                                     f"file in this kernel tree: {tip}")
    for combo in matrix.combinations:
        for sym, value in combo.values:
            check(sym, value, combo.line)
    for axis in matrix.axes:
        if axis.symbol in variants.KEYS:  # checked against harness/arch and harness/toolchains
            continue
        for value in axis.values:
            check(axis.symbol, value, axis.line or matrix.axes_line)
    for rule in matrix.rules:
        for sym, values in rule.items():
            if sym in variants.KEYS:
                continue
            for value in values:
                check(sym, value, matrix.axes_line)
    for directory, objects in matrix.expect.items():
        for obj, cond in objects.items():
            for sym in linkcheck.condition_symbols(cond):
                check(sym, None, matrix.expect_lines.get((directory, obj), 0))


def requested_config(matrix: Matrix, combo: Combination, symbols: SymbolTable,
                     extra: Config | None = None) -> Config:
    """What the combination asks of Kconfig: fragments, then common values, then its own."""
    fragments = [kconfig.parse_config(f.read_text()) for f in matrix.fragment_files]
    common = {s: kconfig.config_value(symbols.type_of(s), v) for s, v, _ in matrix.common}
    own = {s: kconfig.config_value(symbols.type_of(s), v) for s, v in combo.values}
    return kconfig.merge({}, *fragments, common, extra or {}, own)
