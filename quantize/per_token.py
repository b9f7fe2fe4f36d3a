"""Per-token int8 activations for onnxruntime's dynamically quantized models.

onnxruntime's dynamic quantization (``quantize_dynamic``) gives each activation tensor one scale
and zero point, computed at run time over the whole tensor: over every row of a batch, padding
included. So a text's output moved with its batch-mates (MiniLM vectors: cosine down to 0.97
between alone and batched), and the same sentence could get another score, or other evidence,
depending on what the service batched it with. ``per_token_activations`` rewrites every
``DynamicQuantizeLinear`` so that the scale is taken over the last axis only: each token is
quantized on its own, and an input's output is the same alone or in any batch.

The scales are symmetric around a fixed zero point of 64, with 129 levels (-64..64 steps of
max|x| / 64), for two reasons:

- Without VNNI, x86 CPUs multiply u8 by s8 with ``vpmaddubsw``, which adds pairs of products in
  16 bits and saturates when both are large. Per-token scales make every row span its whole range,
  so full 8-bit activations saturate often (packaged MiniLM: mean cosine to torch 0.975); values of
  at most 128 never do.
- A zero point shared by all tokens lets onnxruntime's fused ``MatMulIntegerToFloat`` still do the
  product (an asymmetric range per token needs a correction per token and output, which cost
  about 17% of the encoder's time against 4-10% for this layout). The token's scale is one multiply
  after it.

Packaged MiniLM, 96 claims and 512 passages: mean cosine to torch 0.9945, against 0.9924 for
onnxruntime's per-tensor 8 bits (an asymmetric 7-bit range per token: 0.9969).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SCHEME = "per-token-symmetric"
"""Names this layout in export reports and file names, so that other layouts are never reused."""
MAX_BATCH_DRIFT = 1e-4
"""The most an output of a model quantized this way may change between running an input alone and
in a batch: float rounding in the unquantized ops, nothing more. Exports check it."""
PER_TOKEN_ZERO = 64
"""The activations' zero point: quantized values lie in 0..128, so u8 x s8 never saturates."""

# QuantizeLinear's block_size (one scale per block of the last axis) arrived in opset 21; the
# reductions take their axes as an input from opset 18.
_MIN_OPSET, _OPSET = 18, 21
# onnxruntime's contributed operators, for MatMulIntegerToFloat.
_CONTRIB = "com.microsoft"


class QuantizeError(Exception):
    """The model cannot be quantized per token (an unexpected graph or opset)."""


def quantize_int8(fp32: str | Path, out: str | Path) -> int:
    """Quantize ``fp32`` to ``out``: per-channel int8 weights, per-token int8 activations.

    Only the matrix products with constant weights are quantized; embeddings, layer norms and
    attention stay in float32. Returns the number of activation quantizers rewritten.

    Raises:
        QuantizeError: when onnxruntime's quantizer produced a graph this module cannot rewrite.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(out)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp:
        per_tensor = Path(tmp) / "per_tensor.onnx"
        quantize_dynamic(
            Path(fp32),
            per_tensor,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
        )
        model = onnx.load(str(per_tensor))
    rewritten = per_token_activations(model)
    onnx.save(model, str(target))
    return rewritten


def per_token_activations(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``, in place) to quantize activations per token.

    Returns the number of ``DynamicQuantizeLinear`` nodes rewritten.

    Raises:
        QuantizeError: when the opset is below 18, or a quantized activation feeds anything other
            than the weight products and scale multiplications that ``quantize_dynamic`` emits.
    """
    return _Rewriter(model).run()


def _key(node: Any) -> tuple[str, ...]:
    """Tells a graph's original nodes from the ones the rewrite adds (names may be empty)."""
    return (node.op_type, node.name, *node.input, "->", *node.output)


class _Rewriter:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.weights = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.producers = {out: node for node in self.graph.node for out in node.output}
        self.consumers: dict[str, list[tuple[Any, int]]] = {}
        for node in self.graph.node:
            for slot, name in enumerate(node.input):
                self.consumers.setdefault(name, []).append((node, slot))
        self.new_weights: list[Any] = []
        self.nodes: list[Any] = []

    def run(self) -> int:
        version = max((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if version < _MIN_OPSET:
            raise QuantizeError(
                f"per-token quantization needs ONNX opset {_MIN_OPSET} or newer, got {version}"
            )
        self.axes = self._const("per_token_axes", np.array([-1], dtype=np.int64))
        self.inv_half = self._const("per_token_inv_half", np.array(1 / PER_TOKEN_ZERO, dtype=np.float32))
        self.tiny = self._const("per_token_tiny", np.array(1e-12, dtype=np.float32))
        self.zero_point = self._const("per_token_zero_point", np.array(PER_TOKEN_ZERO, dtype=np.uint8))
        self.one = self._const("per_token_one", np.array(1.0, dtype=np.float32))
        token_scales: dict[str, str] = {}
        replaced: set[tuple[str, ...]] = set()
        for node in self.graph.node:
            if node.op_type == "DynamicQuantizeLinear":
                token_scales[node.output[2]] = self._quantize_per_token(node)
            elif node.op_type == "MatMulInteger" and node.input[2] in token_scales:
                replaced.update(self._product(node, token_scales[node.input[2]]))
            else:
                self.nodes.append(node)
        kept = [n for n in self.nodes if _key(n) not in replaced]
        del self.graph.node[:]
        self.graph.node.extend(kept)
        self.graph.initializer.extend(self.new_weights)
        for opset in self.model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, _OPSET)
        if not any(o.domain == _CONTRIB for o in self.model.opset_import):
            from onnx import helper

            self.model.opset_import.append(helper.make_opsetid(_CONTRIB, 1))
        return len(token_scales)

    def _const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.new_weights.append(numpy_helper.from_array(value, name))
        return name

    def _add(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(
            helper.make_node(op, inputs, [output], name=f"{output}/{op}", domain=domain, **attrs)
        )
        return output

    def _only(self, name: str, op: str) -> Any:
        """The single consumer of ``name``, which must be an ``op`` node."""
        found = self.consumers.get(name, [])
        if len(found) != 1 or found[0][0].op_type != op:
            raise QuantizeError(f"{name} is not read by exactly one {op} node")
        return found[0][0]

    def _width(self, node: Any) -> int:
        """The inner dimension K of every weight product that reads this quantizer's output."""
        quantized, scale, zero_point = node.output
        widths = set()
        for consumer, slot in self.consumers.get(quantized, []):
            if consumer.op_type != "MatMulInteger" or slot != 0 or consumer.input[1] not in self.weights:
                raise QuantizeError(
                    f"{quantized} feeds {consumer.op_type} input {slot}, not a weight product"
                )
            widths.add(int(self.weights[consumer.input[1]].shape[0]))
        if any(c.op_type != "MatMulInteger" or s != 2 for c, s in self.consumers.get(zero_point, [])):
            raise QuantizeError(f"{zero_point} is used beyond the weight products")
        if any(c.op_type != "Mul" for c, _ in self.consumers.get(scale, [])):
            raise QuantizeError(f"{scale} is used beyond the scale products")
        if len(widths) != 1:
            raise QuantizeError(f"{quantized} feeds products of widths {sorted(widths)}")
        return widths.pop()

    def _quantize_per_token(self, node: Any) -> str:
        """Emit the per-token quantizer in place of ``node``; returns the per-token scale's name."""
        width = self._width(node)
        x, quantized = node.input[0], node.output[0]
        p = f"{quantized}/per_token"
        high = self._add("ReduceMax", [x, self.axes], f"{p}/max", keepdims=1)
        low = self._add("ReduceMin", [x, self.axes], f"{p}/min", keepdims=1)
        largest = self._add("Max", [high, self._add("Neg", [low], f"{p}/neg")], f"{p}/abs_max")
        step = self._add("Mul", [largest, self.inv_half], f"{p}/step")
        scale = self._add("Max", [step, self.tiny], f"{p}/scale")  # a token of zeros: no 0/0
        zero_points = self._add(
            "Expand", [self.zero_point, self._add("Shape", [scale], f"{p}/shape")], f"{p}/zp"
        )
        self._add("QuantizeLinear", [x, scale, zero_points], quantized, axis=-1, block_size=width)
        return scale

    def _product(self, node: Any, token_scale: str) -> list[tuple[str, ...]]:
        """Replace MatMulInteger -> Cast -> Mul(a_scale x b_scale) by the fused product scaled per
        token; returns the keys of the nodes it replaces besides ``node``."""
        cast = self._only(node.output[0], "Cast")
        rescale = self._only(cast.output[0], "Mul")
        other = rescale.input[1] if rescale.input[0] == cast.output[0] else rescale.input[0]
        scales = self.producers.get(other)
        weight_scale = next((i for i in scales.input if i in self.weights), None) if scales else None
        if scales is None or scales.op_type != "Mul" or weight_scale is None:
            raise QuantizeError(f"{rescale.name}: the product's scale is not an activation x weight scale")
        inputs = [node.input[0], node.input[1], self.one, weight_scale, self.zero_point, *node.input[3:4]]
        product = self._add("MatMulIntegerToFloat", inputs, f"{node.output[0]}/float", domain=_CONTRIB)
        self._add("Mul", [product, token_scale], rescale.output[0])
        return [_key(cast), _key(rescale), _key(scales)]
