"""x86_64: native gcc on an x86_64 host, bzImage, QEMU's pc machine, the 16550 serial console,
and the reports only x86 prints (traps, page faults, CR pinning, machine checks, the unwinder)."""

from __future__ import annotations

from . import Arch, ReportForm

TRAPS = "arch/x86/kernel/traps.c"
REPORT_FORMS = (
    ReportForm("double fault", r"PANIC: double fault", "end-trace", "fatal", TRAPS),
    ReportForm("stack guard page", r"BUG: \w+ stack guard page was hit|kernel stack overflow",
               "end-trace", "error", TRAPS + " (handle_stack_overflow)"),
    ReportForm("general protection fault", r"general protection fault", "end-trace", "error",
               TRAPS),
    ReportForm("divide error", r"divide error:", "end-trace", "error", TRAPS),
    ReportForm("invalid opcode", r"invalid opcode:", "end-trace", "error", TRAPS),
    ReportForm("CR pinning", r"pinned CR[04] bits changed", "end-trace", "error",
               "arch/x86/kernel/cpu/common.c"),
    ReportForm("oops", r"BUG: unable to handle (page fault|kernel)|"
               r"BUG: kernel NULL pointer dereference|kernel tried to execute NX-protected page|"
               r"unable to execute userspace code", "end-trace", "error",
               "arch/x86/mm/fault.c (show_fault_oops)"),
    ReportForm("machine check", r"mce: \[Hardware Error\]|Machine check events logged", "line",
               "error", "arch/x86/kernel/cpu/mce/core.c"),
    ReportForm("unwinder", r"WARNING: (kernel stack (regs|frame pointer) at .* has bad|"
               r"stack going in the wrong direction|stack recursion on stack type)", "line",
               "error", "arch/x86/kernel/unwind_frame.c, arch/x86/kernel/dumpstack_64.c"),
)

X86_64 = Arch(
    name="x86_64",
    make_arch="x86_64",
    srcarch="x86",
    cross_compile="",
    clang_target="x86_64-linux-gnu",
    image_target="bzImage",
    image_path="arch/x86/boot/bzImage",
    qemu="qemu-system-x86_64",
    machine="pc",
    cpu_tcg="max",
    cpu_kvm="host",
    console="ttyS0",
    host_machine="x86_64",
    # the pc machine's first serial port is a 16550; a gzip bzImage (tinyconfig's xz is the
    # slowest to compress at the link and to unpack under TCG)
    boot_config=("CONFIG_SERIAL_8250=y", "CONFIG_SERIAL_8250_CONSOLE=y", "CONFIG_KERNEL_GZIP=y"),
    report_forms=REPORT_FORMS,
)
