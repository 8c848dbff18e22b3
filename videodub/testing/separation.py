"""A tiny ONNX model of the MDX-Net interface ``videodub.separation`` runs, built with the
``onnx`` package (in the ``test`` extra): a real model cannot be fetched offline. Used by the
tests and ``benchmarks/bench_separation.py``."""

from __future__ import annotations

from pathlib import Path


def tiny_model(path: Path, gain: float) -> Path:
    """An MDX-Net-shaped model whose "voice" is ``gain`` times its input spectrogram."""
    import onnx
    from onnx import TensorProto, helper

    from videodub.separation import MdxShape

    shape = MdxShape()
    spec = ["batch", 4, shape.dim_f, shape.dim_t]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "gain"], ["output"])], "tiny_mdx",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, spec)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, spec)],
        [helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
