"""The architecture records (harness/arch/) and every place that takes its values from them:
make's arguments, the guest's compiler and busybox, QEMU's command line, the boot fragment,
the judge's report forms, the builder image's foreign packages and config truth's wording."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from testhelpers import CONSOLE_DATA, RecordingRunner

from harness import arch as archmod
from harness import boot, image, variants
from harness.arch import ARCHES
from harness.boot_stage import boot_fragment
from harness.judge import judge, scan_reports
from harness.kbuild import Kbuild
from harness.kconfig import parse_config
from harness.kconfig.planner import arch_label, arch_names, defined_in_arches
from harness.matrix import load_matrix
from harness.settings import RunSettings
from harness.verdict import InputError, Verdict

ARM64 = archmod.get("arm64")
X86_64 = archmod.get("x86_64")


def test_every_known_architecture_is_listed() -> None:
    assert set(ARCHES) == {"x86_64", "arm64"}
    assert archmod.default() is X86_64
    with pytest.raises(InputError, match="use one of arm64, x86_64"):
        archmod.get("riscv64")


def test_the_arm64_record() -> None:
    assert (ARM64.make_arch, ARM64.srcarch, ARM64.cross_compile) == \
        ("arm64", "arm64", "aarch64-linux-gnu-")
    assert ARM64.gcc == "aarch64-linux-gnu-gcc" and X86_64.gcc == "gcc"
    assert (ARM64.image_target, ARM64.image_path) == ("Image", "arch/arm64/boot/Image")
    assert (ARM64.qemu, ARM64.machine, ARM64.console) == ("qemu-system-aarch64", "virt", "ttyAMA0")
    assert "pauth" not in ARM64.cpu_tcg and ARM64.cpu_tcg != "max"  # pointer auth is slow in TCG
    assert ARM64.base_cmdline[0] == "console=ttyAMA0"
    assert ARM64.busybox == "/opt/kmatrix/arm64/bin/busybox"


@pytest.mark.parametrize("name", sorted(ARCHES))
def test_every_record_is_consistent(name: str) -> None:
    arch = ARCHES[name]
    assert arch.image_path.startswith(f"arch/{arch.srcarch}/boot/")
    assert arch.image_path.endswith("/" + arch.image_target)
    assert arch.cross_compile == "" or arch.cross_compile.endswith("-")
    assert arch.boot_config and all(re.fullmatch(r"CONFIG_\w+=\S+", ln) for ln in arch.boot_config)
    for form in arch.report_forms:
        re.compile(form.pattern)
        assert form.severity in ("fatal", "error", "warning") and form.source


def test_make_gets_the_cross_prefix_of_a_cross_built_architecture(tmp_path: Path) -> None:
    argv = Kbuild(tmp_path, ARM64).make_argv(tmp_path / "o", "Image")
    assert "ARCH=arm64" in argv and "CROSS_COMPILE=aarch64-linux-gnu-" in argv
    assert argv[-1] == "Image"
    cached = Kbuild(tmp_path, ARM64, ccache_dir=tmp_path / "c").make_argv(tmp_path / "o")
    assert "CC=ccache aarch64-linux-gnu-gcc" in cached
    native = Kbuild(tmp_path, X86_64, ccache_dir=tmp_path / "c").make_argv(tmp_path / "o")
    assert not any(a.startswith("CROSS_COMPILE=") for a in native)
    assert "CC=ccache gcc" in native


def test_the_guest_is_built_with_the_architectures_gcc_and_busybox(tmp_path: Path) -> None:
    init, busybox = boot.guest_steps(tmp_path, arch=ARM64)
    assert init.argv[:2] == ("aarch64-linux-gnu-gcc", "-static")
    assert busybox.argv == ("cp", "/opt/kmatrix/arm64/bin/busybox", str(tmp_path / "busybox"))
    init, busybox = boot.guest_steps(tmp_path)
    assert init.argv[0] == "gcc" and busybox.argv[1] == "/bin/busybox"


def test_qemu_for_arm64(tmp_path: Path) -> None:
    argv = boot.qemu_argv(tmp_path / "Image", tmp_path / "c.log", "console=ttyAMA0", "tcg",
                          tmp_path / "i.cpio", arch=ARM64)
    assert argv[3:10] == ("qemu-system-aarch64", "-M", "virt", "-accel", "tcg",
                          "-cpu", "cortex-a57")
    assert boot.kernel_image(tmp_path, ARM64) == tmp_path / "arch/arm64/boot/Image"
    assert boot.kernel_cmdline(arch=ARM64).startswith("console=ttyAMA0 panic=-1")
    step = boot.bzimage_step(tmp_path / "src", tmp_path / "out", 2, arch=ARM64)
    assert step.argv[-1] == "Image" and "CROSS_COMPILE=aarch64-linux-gnu-" in step.argv


def test_the_boot_fragment_has_the_architectures_serial_console() -> None:
    arm = boot.fragment_lines(ARM64)
    assert "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y" in arm and "CONFIG_BLK_DEV_INITRD=y" in arm
    assert not any("8250" in line for line in arm)
    x86 = boot.fragment_lines()
    assert "CONFIG_SERIAL_8250_CONSOLE=y" in x86 and not any("PL011" in ln for ln in x86)
    assert boot_fragment(ARM64)["CONFIG_SERIAL_AMBA_PL011"] == "y"
    assert "CONFIG_SERIAL_8250" in boot_fragment(None)


def test_x86_forms_are_not_arm64s() -> None:
    line = "PANIC: double fault, error_code: 0x0"
    assert [r.kind for r in scan_reports([line], X86_64)] == ["double fault"]
    assert [r.kind for r in scan_reports([line], ARM64)] == []
    brk = "Internal error: Oops - BRK: 00000000f2000800 [#1] PREEMPT SMP"
    assert [r.kind for r in scan_reports([brk], X86_64)] == ["oops"]  # the generic row


def test_foreign_packages_of_the_builder_image(tmp_path: Path) -> None:
    (tmp_path / "packages.txt").write_text("# c\ngcc\nbusybox-static\nbusybox-static:arm64\n")
    (tmp_path / image.FOREIGN_SCRIPT).write_text("#!/bin/sh\n")
    spec = image.read_spec(tmp_path)
    assert spec.packages == ("gcc", "busybox-static")
    assert spec.foreign == ("busybox-static:arm64",)
    assert "busybox-static:arm64" not in image.debootstrap_argv(spec, tmp_path / "r")[2]
    assert image.unpack_foreign_argv(spec, tmp_path / "r") == [
        "chroot", str(tmp_path / "r"), "sh", "/tmp/unpack-foreign.sh", "busybox-static:arm64"]
    (tmp_path / image.FOREIGN_SCRIPT).write_text("#!/bin/sh\necho changed\n")
    assert image.read_spec(tmp_path).digest != spec.digest  # the script decides contents too


def test_the_real_package_list_unpacks_every_architectures_busybox() -> None:
    spec = image.read_spec()
    for arch in ARCHES.values():
        if arch.busybox != "/bin/busybox":
            debian = arch.busybox.split("/")[3]
            assert f"busybox-static:{debian}" in spec.foreign
        assert arch.cross_compile == "" or f"gcc-{arch.cross_compile.rstrip('-')}" in spec.packages


def test_config_truth_names_kmatrix_architectures() -> None:
    assert arch_names("x86") == ["x86_64"] and arch_names("arm64") == ["arm64"]
    assert arch_label("arch/arm64") == "arm64 (arch/arm64)"
    assert arch_label("arch/mips") == "arch/mips"


def test_no_kvm_probe_for_a_guest_the_hosts_kvm_cannot_run(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    runner = RecordingRunner()
    log = io.StringIO()
    monkeypatch.setattr(boot.platform, "machine", lambda: "x86_64")
    assert boot.probe_accel(runner, tmp_path / "Image", tmp_path, log, kvm_device=kvm,
                            arch=ARM64) == "tcg"
    assert runner.steps == [] and "cannot run arm64 guests" in log.getvalue()
    monkeypatch.setattr(boot.platform, "machine", lambda: "aarch64")
    boot.probe_accel(runner, tmp_path / "Image", tmp_path, log, kvm_device=kvm, arch=ARM64)
    assert [s.name for s in runner.steps] == ["kvm-probe"]
    assert runner.steps[0].argv[3] == "qemu-system-aarch64"


def test_output_trees_are_kept_per_architecture(tmp_path: Path) -> None:
    settings = RunSettings(run_id="r", matrix_path="m", run_dir=str(tmp_path / "run"),
                           cache=str(tmp_path / "cache"), tree="/src", kernel={}, image="img")
    arm64, x86_64 = variants.name("arm64", "gcc-12"), variants.name("x86_64", "gcc-12")
    assert settings.work_dir(arm64) != settings.work_dir(x86_64) == settings.work_dir()
    assert settings.work_dir(arm64).parent == settings.work_dir().parent


def test_the_arm64_example_is_the_default_matrix_cross_built() -> None:
    repo = Path(__file__).resolve().parents[2]
    example = load_matrix(repo / "examples" / "arm64.yaml")
    default = load_matrix(repo / "matrix.yaml")
    assert example.arch is ARM64 and default.arch is X86_64
    # LIVEPATCH does not exist on arm64 in 6.12; the default's clang-16 entries are x86_64's,
    # its arm64 entries the example's dups axis again
    assert {c.id for c in default.combinations} - {c.id for c in example.combinations} == \
        {"livepatch", "clang-dups-on", "clang-dups-off", "arm64-dups-on", "arm64-dups-off"}
    assert sum(c.boot is not None for c in example.combinations) == 3


def test_a_symbol_only_some_architectures_source_is_named_as_theirs(tmp_path: Path) -> None:
    (tmp_path / "kernel" / "livepatch").mkdir(parents=True)
    (tmp_path / "kernel" / "livepatch" / "Kconfig").write_text("config LIVEPATCH\n\tbool\n")
    for arch, text in (("x86", 'source "kernel/livepatch/Kconfig"\n'), ("arm64", "")):
        (tmp_path / "arch" / arch).mkdir(parents=True)
        (tmp_path / "arch" / arch / "Kconfig").write_text(text + "config ARCH_OWN\n\tbool\n")
    assert defined_in_arches(tmp_path, "LIVEPATCH") == ["arch/x86"]
    assert defined_in_arches(tmp_path, "ARCH_OWN") == ["arch/arm64", "arch/x86"]
    assert defined_in_arches(tmp_path, "NOWHERE") == []


ARM64_CONSOLE = CONSOLE_DATA / "arm64"
ARM64_CMDLINE = "console=ttyAMA0 panic=-1 printk.devkmsg=on loglevel=7"


@pytest.mark.parametrize("dups", ["on", "off"])
def test_real_arm64_consoles_are_judged_with_the_same_rules(dups: str) -> None:
    log = (ARM64_CONSOLE / f"dups-{dups}.log").read_text()
    config = parse_config((ARM64_CONSOLE / f"dups-{dups}.config").read_text())
    result = judge(log, config, ARM64_CMDLINE, known_guest=True, arch=ARM64)
    assert result.verdict is Verdict.PASS, result.reasons
    other = parse_config((ARM64_CONSOLE / f"dups-{'off' if dups == 'on' else 'on'}.config")
                         .read_text())
    # the same console under the other dups setting is a failure of the dups rules
    assert judge(log, other, ARM64_CMDLINE, known_guest=True, arch=ARM64).verdict is \
        Verdict.BOOT_FAIL


def test_an_arm64_oops_in_a_real_console_fails_the_boot() -> None:
    lines = (ARM64_CONSOLE / "dups-on.log").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "KMATRIX-PHASE begin phase=repeat-fs" in line)
    oops = ["[    5.000000] Unable to handle kernel paging request at virtual address "
            "dead000000000108", "[    5.000001] Internal error: Oops: 0000000096000044 [#1] SMP",
            "[    5.000002] ---[ end trace 0000000000000000 ]---"]
    text = "\n".join(lines[:at + 1] + oops + lines[at + 1:]) + "\n"
    config = parse_config((ARM64_CONSOLE / "dups-on.config").read_text())
    result = judge(text, config, ARM64_CMDLINE, known_guest=True, arch=ARM64)
    assert result.verdict is Verdict.BOOT_FAIL and result.kind == "oops"
    assert "Unable to handle kernel paging request" in result.reasons[0]
