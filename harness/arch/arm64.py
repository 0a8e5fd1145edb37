"""arm64: cross-built with aarch64-linux-gnu- gcc (or clang --target with LLVM=1), the raw
``Image``, QEMU's virt machine under TCG, the PL011 serial console, and the reports only arm64
prints (its page-fault and exception-class Oopses, SError, the overflow and unhandled-exception
panics).

TCG CPU: ``cortex-a57`` (ARMv8.0: no pointer authentication, whose emulation makes ``max`` the
slowest model under TCG; docs/arm64.md has the measurements)."""

from __future__ import annotations

from . import Arch, ReportForm

TRAPS = "arch/arm64/kernel/traps.c"
REPORT_FORMS = (
    ReportForm("oops", r"Unable to handle kernel [\w -]+ at virtual address", "end-trace",
               "error", "arch/arm64/mm/fault.c (die_kernel_fault)"),
    ReportForm("undefined instruction", r"Internal error: Oops - (Undefined instruction|BTI|FPAC)",
               "end-trace", "error", TRAPS + " (do_el1_undef, do_el1_bti, do_el1_fpac)"),
    # 6.x before the 2025 debug-exception rework: die("BRK handler") via arm64_notify_die
    ReportForm("BRK", r"Internal error: (Oops - BRK|BRK handler)", "end-trace", "error",
               "arch/arm64/kernel/debug-monitors.c (do_el1_brk64 unhandled; `BRK handler` "
               "before the 2025 rework)"),
    ReportForm("stack overflow", r"Insufficient stack space to handle exception", "panic",
               "fatal", TRAPS + " (panic_bad_stack)"),
    ReportForm("SError", r"SError Interrupt on CPU\d+", "panic", "fatal",
               TRAPS + " (arm64_serror_panic)"),
    ReportForm("unhandled exception", r"Unhandled [\w -]+ exception on CPU\d+|Bad mode in [\w ]+ handler",
               "panic", "fatal", "arch/arm64/kernel/entry-common.c (__panic_unhandled; "
               "`Bad mode in` before 5.12)"),
)

ARM64 = Arch(
    name="arm64",
    make_arch="arm64",
    srcarch="arm64",
    cross_compile="aarch64-linux-gnu-",
    clang_target="aarch64-linux-gnu",
    image_target="Image",
    image_path="arch/arm64/boot/Image",
    qemu="qemu-system-aarch64",
    machine="virt",
    cpu_tcg="cortex-a57",
    cpu_kvm="host",
    console="ttyAMA0",
    host_machine="aarch64",
    # the virt machine's UART is a PL011 on the AMBA bus (ARM_AMBA, OF and COMMON_CLK for its
    # clock are selected by ARM64 itself)
    boot_config=("CONFIG_SERIAL_AMBA_PL011=y", "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y"),
    busybox="/opt/kmatrix/arm64/bin/busybox",
    report_forms=REPORT_FORMS,
)
