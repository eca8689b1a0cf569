"""The emulated-aarch64 parity run, in parts: exports (host, cached), chroot (environment, wheel, jobs), the job run
inside the chroot, and the comparison against x86 with the bounds of fnx.parity.CROSS_ARCH_BOUNDS."""
