"""Checking and reporting for benchmarks/bench_matrix.py (no Docker, no kernel: unit-testable).

Every approach's figures come with one check per combination: the step exited 0, the expected
artifacts exist (the members of each target directory's built-in.a, or the bzImage), and, for a
cold build, the compiler ran at least as often as the artifacts need. An approach with any
failed check is FAILED: its row shows the first error line and it takes part in no ratio.

The text table (`--report FILE.json`) and the Markdown sections of README.md and
docs/performance.md (`--report FILE.json --write-docs`) are both made from the JSON here, so the
docs never say anything the JSON does not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

Fig = dict[str, Any]

# Lines that say what went wrong, most telling first: a missing program or file, a compiler or
# make error, then TuxMake's and Python's own failure lines.
_ERROR_PATTERNS = [
    re.compile(p) for p in (
        r"not found|No such file or directory|command not found|executable file not found",
        r"\berror\b|\bError\b|\bERROR\b|fatal",
        r"\*\*\*",
        r"\bFAIL\b|Traceback|cannot|denied",
    )
]

BEGIN = "<!-- bench:begin"
END = "<!-- bench:end -->"


# ---------------------------------------------------------------- checks

def first_error_line(text: str) -> str:
    """The first line of a log that says what went wrong (the earliest line of the most telling
    kind), or its last non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for pattern in _ERROR_PATTERNS:
        for line in lines:
            # not the logged command, TuxMake's warnings ("W: ... (socat not found)") or
            # its comment lines
            if pattern.search(line) and not line.startswith(("$ ", "W: ", "# ")):
                return line[:240]
    return lines[-1][:240] if lines else "(empty log)"


def thin_archive_members(path: Path) -> list[str]:
    """Member paths (relative to the archive's directory) of a GNU thin archive such as kbuild's
    built-in.a or vmlinux.a; [] for anything else."""
    data = path.read_bytes()
    if not data.startswith(b"!<thin>\n"):
        return []
    names, members, pos = b"", [], 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode(errors="replace").rstrip()
        size = int(header[48:58].decode().strip() or 0)
        pos += 60
        if name in ("/", "/SYM64/"):  # symbol table: stored
            pos += size + (size & 1)
        elif name == "//":  # long-name table: stored
            names = data[pos:pos + size]
            pos += size + (size & 1)
        else:  # a member: only its header is in a thin archive
            if name.startswith("/") and name[1:].isdigit():
                start = int(name[1:])
                end = names.find(b"/\n", start)
                members.append(names[start:end].decode())
            else:
                members.append(name.rstrip("/"))
    return members


def expected_artifacts(out: Path, targets: list[str] | tuple[str, ...]) -> list[Path]:
    """What a build of `targets` in output tree `out` must have produced: for a directory target
    (`kernel/module/`), its built-in.a and every object that archive lists; for a file target
    (the architecture's kernel image, `arch/x86/boot/bzImage`), that file."""
    paths: list[Path] = []
    for target in targets:
        if not target.endswith("/"):
            paths.append(out / target)
            continue
        archive = out / target / "built-in.a"
        paths.append(archive)
        if archive.is_file():
            paths += [archive.parent / m for m in thin_archive_members(archive)]
    return paths


def cold_minimum(out: Path, targets: list[str] | tuple[str, ...]) -> int:
    """How many compiler runs a cold build of `targets` in `out` needs at the least: one per
    object in a directory's built-in.a, or per object in vmlinux.a for a kernel image."""
    total = 0
    for target in targets:
        archive = out / target / "built-in.a" if target.endswith("/") else out / "vmlinux.a"
        if archive.is_file():
            total += len([m for m in thin_archive_members(archive) if m.endswith(".o")])
    return max(total, 1)


def check(exit_status: int | None, artifacts: list[Path], compiles: int | None,
          min_compiles: int, log_text: str = "", error: str = "") -> Fig:
    """One combination of one approach: did it build what it was asked to build?"""
    problems: list[str] = []
    if error:
        problems.append(error)
    if exit_status != 0:
        problems.append("killed at its timeout" if exit_status is None and not error
                        else f"exit status {exit_status}")
    if not artifacts:
        problems.append("no artifacts expected: nothing to check")
    missing = [str(p) for p in artifacts if not p.is_file() or p.stat().st_size == 0]
    if missing:
        problems.append(f"{len(missing)} of {len(artifacts)} expected artifacts missing, "
                        f"first {missing[0]}")
    if compiles is not None and compiles < min_compiles:
        problems.append(f"{compiles} compiler runs, a cold build needs at least {min_compiles}")
    result: Fig = {"ok": not problems, "exit_status": exit_status,
                   "artifacts": len(artifacts), "artifacts_missing": len(missing),
                   "compiles": compiles, "min_compiles": min_compiles, "problems": problems}
    if problems:
        result["error"] = error or (first_error_line(log_text) if log_text else problems[0])
    return result


def judge(fig: Fig) -> Fig:
    """Set fig["status"] ("ok" or "failed") and, when failed, fig["error"]: the first failed
    combination and its first error line."""
    checks: dict[str, Fig] = fig.get("checks") or {}
    bad = [(combo, c) for combo, c in checks.items() if not c.get("ok")]
    if fig.get("error"):
        fig["status"] = "failed"
    elif not checks:
        fig["status"] = "failed"
        fig["error"] = "no combination was checked"
    elif bad:
        combo, c = bad[0]
        fig["status"] = "failed"
        fig["error"] = f"{combo}: {c.get('error') or '; '.join(c.get('problems', []))}"
    else:
        fig["status"] = "ok"
    fig["failed_combos"] = [combo for combo, _ in bad]
    return fig


def usable(fig: Fig) -> bool:
    """Only checked, successful approaches are figures (runs before checks existed are not)."""
    return fig.get("status") == "ok" and "wall_s" in fig


# ---------------------------------------------------------------- ratios

def _r(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(result: Fig) -> list[Fig]:
    """naive and TuxMake against each kmatrix object-tier run, only between usable approaches.
    TuxMake runs on fewer combinations than kmatrix scale by their per-combination mean."""
    rows = [r for r in result.get("approaches", []) if usable(r)]
    by = {r["approach"]: r for r in rows}
    n = result.get("combos", 0)
    out: list[Fig] = []
    for km in [r for r in rows if r["approach"].startswith("kmatrix") and not r.get("boot_tier")]:
        for peer in ("naive", "tuxmake-dir", "tuxmake"):
            if peer not in by:
                continue
            p = by[peer]
            scale = n / p["combos"] if p.get("combos") else 0
            out.append({"peer": peer, "kmatrix": km["approach"],
                        "wall": _r(p["wall_s"] * scale, km["wall_s"]),
                        "cpu": _r(p["cpu_s"] * scale, km["cpu_s"]),
                        "extrapolated_from": p["combos"] if p["combos"] != n else None})
    return out


# ---------------------------------------------------------------- text report

def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v else "n/a"


def _ccache(r: Fig) -> str:
    return f"{r['ccache_hits']}/{r['ccache_misses']}" if "ccache_hits" in r else "-"


def _minimum(result: Fig) -> int | None:
    """Distinct gcc steps the object tier needs, counted on fresh per-combination trees."""
    rows = [r for r in result.get("approaches", []) if usable(r)]
    return next((r["minimum"] for r in rows if r.get("minimum") and not r.get("boot_tier")
                 and r["approach"] in ("naive", "tuxmake-dir", "kmatrix-own-cold",
                                       "kmatrix-cold")), None)


def _own_minimum(r: Fig, result: Fig) -> bool:
    """Whether a row is measured against its own minimum rather than the object tier's: the boot
    tier, TuxMake's whole kernels, and any approach that ran fewer combinations than the run."""
    return bool(r.get("boot_tier") or r["approach"] == "tuxmake"
                or r.get("combos") != result.get("combos"))


def _status_word(r: Fig) -> str:
    if r.get("status") == "ok":
        return "ok"
    return "FAILED" if r.get("status") == "failed" else "UNCHECKED"


def report(result: Fig) -> str:
    m = result["machine"]
    lines = [f"kmatrix benchmark {m['date']} on {m['cores']} cores ({m['cpu']}), "
             f"Linux {result['tree']['version']} ({result['tree']['origin']}), "
             f"{result['combos']} combinations, kmatrix {m.get('kmatrix_commit')}", ""]
    if m.get("loadavg_start") is not None:
        lines[-1:] = [f"load average (1/5/15 min) {_load(m['loadavg_start'])} at the start, "
                      f"{_load(m.get('loadavg_end'))} at the end, mean "
                      f"{m.get('loadavg_mean_during', '?')} during; host gcc: "
                      f"{m.get('host_gcc', '?')}; builder image gcc: {m.get('image_gcc', '?')}", ""]
    if result.get("note"):
        lines[-1:] = [f"conditions: {result['note']}", ""]
    head = (f"{'approach':<18}{'status':>8}{'combos':>7}{'wall s':>9}{'cpu s':>9}{'sys busy':>9}"
            f"{'median/c':>9}{'gcc steps':>10}{'minimum':>8}{'/min':>8}{'ccache h/m':>11}"
            f"{'peak MiB':>9}")
    lines += [head, "-" * len(head)]
    minimum = _minimum(result)
    for r in result.get("approaches", []):
        word = _status_word(r)
        if word == "FAILED" or "wall_s" not in r:
            lines.append(f"{r.get('approach', '?'):<18}{'FAILED':>8}  {r.get('error', '')}")
            continue
        whole = _own_minimum(r, result)
        mn = r.get("minimum") if whole or not minimum else minimum
        steps = r.get("invocations")
        lines.append(f"{r['approach']:<18}{word:>8}{r['combos']:>7}{r['wall_s']:>9}{r['cpu_s']:>9}"
                     f"{r['system_busy_s']:>9}{str(r.get('marginal_median_s')):>9}"
                     f"{str(steps):>10}{str(mn):>8}"
                     f"{_x(_r(steps, mn)) if steps else '-':>8}{_ccache(r):>11}"
                     f"{r['peak_rss_mib']:>9}")
    lines.append("")
    for q in ratios(result):
        lines.append(f"{q['peer']} / {q['kmatrix']}: wall {_x(q['wall'])}, cpu {_x(q['cpu'])}"
                     + (f" ({q['peer']} ran {q['extrapolated_from']} of {result['combos']}: its "
                        f"per-combination mean extrapolated to {result['combos']})"
                        if q["extrapolated_from"] else ""))
    failed = [r.get("approach", "?") for r in result.get("approaches", [])
              if _status_word(r) != "ok"]
    if failed:
        lines.append("no ratio against " + ", ".join(failed) + " (failed or unchecked)")
    by = {r["approach"]: r for r in result.get("approaches", []) if usable(r)}
    if "kmatrix-cold" in by:
        lines.append(f"marginal cost of one more combination (median per-combination duration): "
                     f"cold {by['kmatrix-cold']['marginal_median_s']} s, warm "
                     f"{by.get('kmatrix-warm', {}).get('marginal_median_s')} s (target <= 10 s)")
    for name in ("boot-cold", "boot-warm"):
        if name in by:
            r = by[name]
            seq = sorted(r["per_combo_s"].items())
            lines.append(f"{name}: " + ", ".join(f"{c} {s} s" for c, s in seq)
                         + f"; first kernel {r.get('boot_first_s')} s, each further boot "
                         f"combination (median) {r.get('boot_marginal_s')} s (target <= 120 s)")
    d = result.get("tuxmake_dropped")
    if d:
        lines.append(f"TuxMake on a silently dropped option: exit {d.get('exit_status')}, "
                     f"{' | '.join(d.get('summary', []))}; DUPS in .config: "
                     f"{d.get('dups_in_config')}")
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown

LABELS = {
    "kmatrix-cold": "kmatrix, cold (empty cache)",
    "kmatrix-warm": "kmatrix, warm (same cache)",
    "kmatrix-own-cold": "kmatrix `--trees own`, cold",
    "kmatrix-own-warm": "kmatrix `--trees own`, warm",
    "kmatrix-lanes-cold": "kmatrix `--trees lanes`, cold",
    "kmatrix-lanes-warm": "kmatrix `--trees lanes`, warm",
    "boot-cold": "boot tier, cold",
    "boot-warm": "boot tier, warm",
    "naive": "naive: fresh tree, `olddefconfig`, `make -j2 kernel/module/`, in turn",
    "tuxmake-dir": "TuxMake `config -M kernel/module/`",
    "tuxmake": "TuxMake `config kernel` (a bzImage per combination)",
}
PEERS = {"naive": "naive", "tuxmake-dir": "TuxMake `-M kernel/module/`",
         "tuxmake": "TuxMake bzImage per combination"}


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _load(v: Any) -> str:
    """A load average as recorded: three numbers (1, 5, 15 min) or one."""
    if isinstance(v, list | tuple):
        return " / ".join(f"{x:.2f}" for x in v)
    return "?" if v is None else f"{v}"


def _tuxmake_version(result: Fig) -> str:
    v = str(result.get("tools", {}).get("tuxmake_version") or "?")
    return v.removeprefix("tuxmake ")


def same_compiler(machine: Fig) -> bool | None:
    """Whether both sides' gcc is the same version, whatever the driver's name
    (`x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0` on the host, `gcc (...)` inside);
    None when either is not recorded."""
    host, image = machine.get("host_gcc"), machine.get("image_gcc")
    if not host or not image or host.startswith("(") or image.startswith("("):
        return None
    return bool(host.split(" ", 1)[-1] == image.split(" ", 1)[-1])


def _command(result: Fig) -> str:
    """The command that made the figures, its --note (printed as the conditions) shortened."""
    command = str(result.get("command") or "nox -s bench")
    note = result.get("note")
    for quoted in (f'"{note}"', f"'{note}'", str(note)) if note else ():
        command = command.replace(quoted, "NOTE")
    return command


def _conditions(result: Fig, json_name: str) -> list[str]:
    m = result["machine"]
    tm = result.get("tools", {})
    n = result["combos"]
    tux = result.get("tuxmake_combos")
    same = same_compiler(m)
    return [
        f"Measured {m['date'][:16].replace('T', ' ')} UTC by `{_command(result)}` "
        f"on {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB, {m.get('os', 'Linux')}, host "
        f"kernel {m['kernel']}; load average (1 / 5 / 15 min) {_load(m.get('loadavg_start'))} "
        f"at the start and {_load(m.get('loadavg_end'))} at the end"
        + (f"; the 1-minute load averaged {m['loadavg_mean_during']} (highest "
           f"{m.get('loadavg_max_during')}) while the approaches ran"
           if m.get("loadavg_mean_during") is not None else "")
        + (f", {m['duration_s'] / 60:.0f} minutes in all" if m.get("duration_s") else "")
        + (f". Conditions: {result['note'].rstrip('.')}" if result.get("note") else "")
        + ". A load above the core count means other work competed for the CPUs: compare ratios "
        "within the run, not seconds across runs.",
        "",
        f"The first {n} object-tier combinations of `matrix.yaml`"
        + (f"; both TuxMake rows on the first {tux} of them" if tux and tux != n else "")
        + f". kmatrix {m.get('kmatrix_commit')}, Linux {result['tree']['version']} "
        f"({result['tree']['origin']}), builder image `{result.get('image')}` "
        f"({m.get('image_gcc', '?')}); TuxMake {_tuxmake_version(result)} "
        f"`--runtime {tm.get('tuxmake_runtime', 'null')}` on the host "
        f"({m.get('host_gcc', '?')})"
        + ("; the same gcc on both sides" if same else
           "; **not the same gcc on both sides**" if same is False else "")
        + f". Raw figures: [{json_name}]({json_name}).",
    ]


def markdown(result: Fig, json_link: str, detail: bool = True) -> str:
    """The generated Markdown: conditions, the table (FAILED rows with their first error line),
    the ratios between successful approaches, and (detail) the checks and targets."""
    n = result["combos"]
    minimum = _minimum(result)
    lines = _conditions(result, json_link) + [""]
    lines += ["| approach | combos | wall s | cpu s | median s / combo | gcc steps | / minimum "
              "| peak MiB |", "| --- | --: | --: | --: | --: | --: | --: | --: |"]
    for r in result.get("approaches", []):
        label = LABELS.get(r.get("approach", ""), r.get("approach", "?"))
        if not detail and r.get("approach", "").startswith(("kmatrix-own", "kmatrix-lanes")):
            continue
        if _status_word(r) != "ok":
            lines.append(f"| {label} | **{_status_word(r)}** | "
                         f"{_md_cell(r.get('error', 'not checked'))} | | | | | |")
            continue
        whole = _own_minimum(r, result)
        mn = r.get("minimum") if whole or not minimum else minimum
        steps = r.get("invocations")
        lines.append(f"| {label} | {r['combos']} | {r['wall_s']} | {r['cpu_s']} | "
                     f"{r.get('marginal_median_s')} | {steps} | "
                     f"{_x(_r(steps, mn)) if steps and mn else '-'} | {r['peak_rss_mib']} |")
    qs = [q for q in ratios(result) if q["kmatrix"] in ("kmatrix-cold", "kmatrix-warm")]
    if qs:
        lines += ["", "| ratio (wall / CPU), peer / kmatrix | kmatrix cold | kmatrix warm |",
                  "| --- | --: | --: |"]
        for peer in [p for p in PEERS if any(q["peer"] == p for q in qs)]:
            cells = []
            for km in ("kmatrix-cold", "kmatrix-warm"):
                q = next((q for q in qs if q["peer"] == peer and q["kmatrix"] == km), None)
                cells.append(f"{_x(q['wall'])} / {_x(q['cpu'])}" if q else "n/a")
            ext = next((q["extrapolated_from"] for q in qs if q["peer"] == peer), None)
            label = PEERS[peer] + (f" (ran {ext} of {n}: per-combination mean x {n})"
                                   if ext else "")
            lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    failed = [LABELS.get(r.get("approach", ""), r.get("approach", "?"))
              for r in result.get("approaches", []) if _status_word(r) != "ok"]
    if failed:
        lines += ["", "No ratio is computed against " + "; ".join(failed)
                  + ": a failed or unchecked run is not a figure."]
    if detail:
        lines += ["", "Every row above was checked per combination before it was printed: exit "
                  "status 0, the expected artifacts present (each object listed in "
                  "`kernel/module/built-in.a`, or the bzImage), and for cold builds at least "
                  "as many compiler runs as those objects need:", "",
                  "| approach | checks ok | artifacts checked | compiler runs "
                  "(needed at least) | 1-min load: start / mean / max / end | sys busy s |",
                  "| --- | --: | --: | --: | --: | --: |"]
        for r in result.get("approaches", []):
            checks: dict[str, Fig] = r.get("checks") or {}
            arts = sum(c.get("artifacts", 0) for c in checks.values())
            comp = [c for c in checks.values() if c.get("compiles") is not None]
            comp_cell = (f"{sum(c['compiles'] for c in comp)} "
                         f"({sum(c.get('min_compiles', 0) for c in comp)})" if comp else "- (warm)")
            okc = sum(1 for c in checks.values() if c.get("ok"))
            lines.append(f"| {LABELS.get(r.get('approach', ''), r.get('approach'))} | "
                         f"{okc} of {len(checks)} | {arts} | {comp_cell} | "
                         f"{r.get('loadavg_start', '-')} / {r.get('loadavg_mean', '-')} / "
                         f"{r.get('loadavg_max', '-')} / {r.get('loadavg_end', '-')} | "
                         f"{r.get('system_busy_s', '-')} |")
        lines += _targets(result)
        d = result.get("tuxmake_dropped")
        if d and "exit_status" in d:
            said = [ln for ln in d.get("summary", []) if "build output" not in ln]
            lines += ["", f"TuxMake on an option Kconfig silently drops (`-K CONFIG_MODULES=y -K "
                      f"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y`, target `config`): exit status "
                      f"{d['exit_status']}, `{_md_cell(' | '.join(said))}`, "
                      f"option in its `.config`: {d.get('dups_in_config')}. kmatrix says "
                      f"`config-dropped` and names the symbol."]
    return "\n".join(lines)


def _targets(result: Fig) -> list[str]:
    by = {r["approach"]: r for r in result.get("approaches", []) if usable(r)}
    rows: list[str] = []
    cold, warm = by.get("kmatrix-cold"), by.get("kmatrix-warm")
    if cold:
        med = cold.get("marginal_median_s")
        wmed = warm.get("marginal_median_s") if warm else None
        rows.append(f"| marginal cost of one more combination <= 10 s (median) | "
                    f"{'met' if med is not None and med <= 10 else 'not met'}: {med} s cold, "
                    f"{wmed} s warm |")
    qs = {(q["peer"], q["kmatrix"]): q for q in ratios(result)}
    for peer, goal in (("naive", 5.0), ("tuxmake", 10.0)):
        qc, qw = qs.get((peer, "kmatrix-cold")), qs.get((peer, "kmatrix-warm"))
        if qc:
            met = "met" if (qc["wall"] or 0) >= goal else "not met"
            rows.append(f"| {goal:g}x faster than {PEERS[peer]} | {met} cold ({_x(qc['wall'])} "
                        f"wall, {_x(qc['cpu'])} CPU)"
                        + (f"; warm {_x(qw['wall'])} wall, {_x(qw['cpu'])} CPU" if qw else "")
                        + " |")
    minimum = _minimum(result)
    if cold and minimum:
        q = _r(cold.get("invocations"), minimum)
        rows.append(f"| compiler invocations within 1.5x of the minimum | "
                    f"{'met' if q is not None and q <= 1.5 else 'not met'}: "
                    f"{cold.get('invocations')} gcc steps cold for a minimum of {minimum} "
                    f"({_x(q)}) |")
    if not rows:
        return []
    return ["", "| target (issue 5) | in this run |", "| --- | --- |", *rows]


def replace_section(text: str, body: str, source: str) -> str:
    """Rewrite what lies between the bench:begin and bench:end marker lines of `text`."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no `{BEGIN} ...-->` ... `{END}` markers")
    marker = (f"{BEGIN} generated from {source} by `python3 benchmarks/bench_matrix.py --report "
              f"{source} --write-docs`; do not edit by hand -->\n")
    return text[:start] + marker + body.rstrip("\n") + "\n" + text[end:]
