"""Per-token int8 activations: a row's output is its own, and close to float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantize import QuantizeError, per_token_activations, quantize_int8

WIDTH, HIDDEN = 48, 96


def _two_layer_model(path: Path, opset: int = 20) -> None:
    """x [batch, tokens, 48] -> MatMul -> Add -> Relu -> MatMul -> y: a feed-forward block."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, (WIDTH, HIDDEN)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (HIDDEN, WIDTH)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", WIDTH])],
        [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def _inputs() -> np.ndarray:
    """Four rows of very different ranges, as real batches hold (one has a large outlier)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (4, 5, WIDTH)).astype(np.float32)
    x[1] *= 0.05
    x[2, 0, 0] = 40.0
    x[3, 2] = 0.0  # a token of zeros must not divide by zero
    return x


def test_a_row_gets_the_same_output_alone_and_in_any_batch(tmp_path: Path) -> None:
    fp32, ours = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    _two_layer_model(fp32)
    assert quantize_int8(fp32, ours) == 2  # one activation quantizer per product
    x = _inputs()
    batched = _run(ours, x)
    alone = np.concatenate([_run(ours, x[i : i + 1]) for i in range(len(x))])
    assert np.isfinite(batched).all()
    assert np.array_equal(batched, alone)
    # Reversed, the rows must come back the same too.
    assert np.array_equal(_run(ours, x[::-1].copy())[::-1], batched)
    assert not list(tmp_path.glob(".quantize-*")), "the per-tensor intermediate is removed"


def test_onnxruntimes_own_dynamic_quantization_depends_on_the_batch(tmp_path: Path) -> None:
    """What the rewrite is for: per-tensor scales move the small-range row with its batch-mates."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, theirs = tmp_path / "fp32.onnx", tmp_path / "per_tensor.onnx"
    _two_layer_model(fp32)
    quantize_dynamic(fp32, theirs, weight_type=QuantType.QInt8, per_channel=True)
    x = _inputs()
    batched, alone = _run(theirs, x)[1], _run(theirs, x[1:2])[0]
    assert np.abs(batched - alone).max() > 0.05 * np.abs(alone).max()


def test_per_token_outputs_stay_close_to_float32_and_beat_per_tensor(tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, ours, theirs = tmp_path / "fp32.onnx", tmp_path / "int8.onnx", tmp_path / "per_tensor.onnx"
    _two_layer_model(fp32)
    quantize_int8(fp32, ours)
    quantize_dynamic(fp32, theirs, weight_type=QuantType.QInt8, per_channel=True)
    x = _inputs()
    ref = _run(fp32, x)

    def error(path: Path) -> float:
        got = _run(path, x)
        # Relative error per row, so that the small-range row counts as much as the others.
        return float(max(np.abs(got[i] - ref[i]).max() / np.abs(ref[i]).max() for i in range(len(x))))

    assert error(ours) < 0.05
    assert error(ours) < error(theirs)


def test_the_rewrite_refuses_old_opsets_and_unknown_graphs(tmp_path: Path) -> None:
    old = tmp_path / "old.onnx"
    _two_layer_model(old, opset=17)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(old, tmp_path / "old_int8.onnx", weight_type=QuantType.QInt8)
    with pytest.raises(QuantizeError, match="opset 18"):
        per_token_activations(onnx.load(str(tmp_path / "old_int8.onnx")))
    # A quantized activation read by anything but a weight product is left to no guesswork.
    fp32 = tmp_path / "fp32.onnx"
    _two_layer_model(fp32)
    quantize_dynamic(fp32, tmp_path / "int8.onnx", weight_type=QuantType.QInt8)
    model = onnx.load(str(tmp_path / "int8.onnx"))
    quantized = next(n.output[0] for n in model.graph.node if n.op_type == "DynamicQuantizeLinear")
    model.graph.node.append(helper.make_node("Cast", [quantized], ["stray"], to=TensorProto.INT32))
    with pytest.raises(QuantizeError, match="not a weight product"):
        per_token_activations(model)
