"""scripts/ethos_u_board.py: an Ethos-U file and its manifest as TFLite Micro firmware sources. The model array is the
file byte for byte and 16-byte aligned, the header carries the manifest's I/O facts, the input is fnx's preprocessing
quantized within half a step; the sources compile and link with g++; a plain TFLite or a file without its manifest is
refused in one line with nothing written."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fnx.errors import FnxError

pytest.importorskip("ethosu.vela", reason="the ethos-u extra (Arm's Vela) is not installed")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ethos_u_board.py"
LABELS = [f"digit {i}" for i in range(9)] + ['nine "9" \\ é']  # quotes, a backslash and UTF-8 escaped in C


def _script():
    spec = importlib.util.spec_from_file_location("ethos_u_board", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ethos_u_file(t0_tflite_int8, tmp_path_factory):
    """The shared int8 TFLite fixture compiled by Vela for the default U55-256, with the manifest fnx export writes."""
    from fnx.fileio import sha256_file
    from fnx.manifest import write_manifest
    from fnx.targets.ethos_u.vela import compile_tflite

    path = tmp_path_factory.mktemp("ethos-u") / "fasternet_t0_64_ethos-u_int8.tflite"
    shutil.copyfile(t0_tflite_int8.artifact, path)
    comp = compile_tflite(path, "ethos-u55-256")
    m = t0_tflite_int8.manifest
    art = replace(m.artifact, format="ethos-u", file=path.name, sha256=sha256_file(path),
                  size_bytes=path.stat().st_size)
    write_manifest(path, replace(m, artifact=art, compilation=comp, labels=LABELS))
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def sources(ethos_u_file, image, tmp_path_factory):
    out = tmp_path_factory.mktemp("firmware")
    return out, _script().write_sources(ethos_u_file, out, image)


def _array(text: str, name: str) -> list[int]:
    body = re.search(name + r"\[[^\]]*\] = \{(.*?)\};", text, re.S).group(1)
    return [int(v, 0) for v in re.findall(r"-?(?:0x[0-9a-f]+|\d+)", body)]


def test_the_model_array_is_the_file_and_the_header_the_manifest(sources, ethos_u_file):
    from fnx.manifest import read_manifest

    out, written = sources
    assert [p.name for p in written] == ["fnx_model.h", "fnx_model.cc", "fnx_input.cc"]
    cc, h = (out / "fnx_model.cc").read_text(), (out / "fnx_model.h").read_text()
    assert bytes(_array(cc, "kModel")) == ethos_u_file.read_bytes() and "alignas(16)" in cc
    m = read_manifest(ethos_u_file)
    q, e = m.inputs[0].quantization, m.compilation.estimate
    consts = dict(re.findall(r"(k\w+) = ([-\w.+]+?)f?[;,]", h))
    assert int(consts["kModelSize"]) == ethos_u_file.stat().st_size
    assert (int(consts["kInputHeight"]), int(consts["kInputWidth"]), int(consts["kInputChannels"])) == (64, 64, 3)
    assert float(consts["kInputScale"]) == pytest.approx(q.scale, rel=1e-6)
    assert int(consts["kInputZeroPoint"]) == q.zero_point
    assert int(consts["kNumClasses"]) == 10 and int(consts["kNumLabels"]) == 10
    assert int(consts["kVelaSramBytes"]) == e.sram_bytes > 0


def test_the_input_is_fnx_s_preprocessing_quantized_within_half_a_step(sources, ethos_u_file, image):
    from fnx.manifest import read_manifest
    from fnx.runtime.preprocess import preprocess

    out, _ = sources
    m = read_manifest(ethos_u_file)
    q = m.inputs[0].quantization
    values = np.array(_array((out / "fnx_input.cc").read_text(), "kInput"), dtype=np.float32)
    x = preprocess(image, m.preprocessing).reshape(-1)  # HWC, as the array is NHWC
    assert values.size == 64 * 64 * 3 and values.min() >= -128 and values.max() <= 127
    inside = (x / q.scale + q.zero_point > -128) & (x / q.scale + q.zero_point < 127)  # not clipped
    assert inside.mean() > 0.9
    assert np.abs((values[inside] - q.zero_point) * q.scale - x[inside]).max() <= q.scale / 2 + 1e-6


def test_the_sources_compile_and_link_with_a_main_that_reads_them(sources, ethos_u_file, tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++ on this machine to compile the firmware sources")
    out, _ = sources
    (tmp_path / "main.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "fnx_model.h"\n'
        "int main() {\n  long sum = 0;\n"
        "  for (int i = 0; i < kInputHeight * kInputWidth * kInputChannels; ++i) sum += kInput[i];\n"
        '  std::printf("%.4s %d %zu %ld %d %s\\n", (const char*)kModel + 4, (int)((uintptr_t)kModel % 16),\n'
        "              kModelSize, sum, kNumClasses, kLabels[kNumLabels - 1]);\n}\n")
    exe = tmp_path / "check"
    subprocess.run([cxx, "-std=c++17", "-O0", "-I", str(out), str(tmp_path / "main.cc"), str(out / "fnx_model.cc"),
                    str(out / "fnx_input.cc"), "-o", str(exe)], check=True, capture_output=True, timeout=300)
    printed = subprocess.run([str(exe)], capture_output=True, timeout=60).stdout.decode()
    total = sum(_array((out / "fnx_input.cc").read_text(), "kInput"))
    assert printed.split()[:5] == ["TFL3", "0", str(ethos_u_file.stat().st_size), str(total), "10"]
    assert printed.rstrip("\n").endswith(LABELS[-1])


def test_a_plain_tflite_or_a_file_without_its_manifest_is_refused_and_nothing_is_written(t0_tflite_int8,
                                                                                        ethos_u_file, tmp_path):
    script = _script()
    with pytest.raises(FnxError, match=r"holds no ethos-u op \(not compiled by Vela\): fnx export MODEL --format"):
        script.write_sources(t0_tflite_int8.artifact, tmp_path / "a")
    bare = tmp_path / "bare.tflite"
    shutil.copyfile(ethos_u_file, bare)
    with pytest.raises(FnxError, match=r"no manifest beside .*bare.tflite: copy bare.json with it"):
        script.write_sources(bare, tmp_path / "b")
    r = subprocess.run([sys.executable, str(SCRIPT), str(ethos_u_file), str(tmp_path / "c"), "--image",
                        str(tmp_path / "missing.jpg")], capture_output=True, text=True, timeout=120)
    said = r.stderr.strip().splitlines()
    assert r.returncode == 1 and said == [f"error: image {tmp_path / 'missing.jpg'} does not exist"]
    assert not any((tmp_path / d).exists() for d in "abc")
