"""The toy target's converter environment: it needs nothing beyond fnx's own; here to show a plugin declaring one."""

from fnx.toolchains import Toolchain, register_toolchain

register_toolchain(Toolchain("toyscript", "the toy target's converter (an empty environment)", ()))
