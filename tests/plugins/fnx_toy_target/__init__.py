"""A deployment target from outside fnx, laid out as fnx's own (`fnx.targets.NAME`): registered through the
`fnx.targets` entry point group of its own distribution (tests/test_targets_plugin.py writes that distribution's
metadata), with no edit under fnx/.

The target: the deploy-form model traced to TorchScript (`.toyscript`, a zip), run by torch.jit on the CPU. This
package holds its file facts; `export` its format, `engine` its engine, `toolchain` its converter environment."""

from fnx.formats import FileFormat, register_file_format

FILE = register_file_format(FileFormat("toyscript", ".toyscript", "NCHW", "TorchScript module (toy target)",
                                       sniff=lambda head: head[:2] == b"PK"))
