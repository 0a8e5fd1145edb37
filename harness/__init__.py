"""kmatrix: a kernel-config build matrix test harness.

The pipeline, one module per stage:
matrix (matrix.yaml -> combinations) -> kconfig (fragment -> resolved .config, config truth)
-> kbuild (make steps) -> linkcheck (kernel/module/built-in.a members) -> boot (QEMU) -> judge
(console log -> verdict) -> results (records, JUnit, summary).
"""

__version__ = "0.1.0"
