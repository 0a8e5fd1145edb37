"""x86_64: native gcc on an x86_64 host, bzImage, QEMU's pc machine, the 16550 serial console."""

from __future__ import annotations

from . import Arch

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
)
