"""A nanocnn Sequential as an ONNX graph: one converter per layer class, looked up in a registry.

Opset 13 with IR version 7, the pair onnx 1.8 introduced (onnx.helper.VERSION_TABLE): conservative on
purpose. onnxruntime reads IR 3 and newer, and onnxruntime-web runs the same CPU kernels compiled to
WebAssembly, so both take it (the tests run onnxruntime; no browser was tried). The ops used here (Conv,
Relu, MaxPool, Flatten, Gemm, Identity) have not changed meaning since opset 11, where Gemm's bias became
optional, so nothing is lost by not going newer, and older tools that stop at 13 still read the file.

The graph computes what ``model.eval()`` computes (Dropout is the identity, so it is left out), always
in float32 (float64 weights are rounded, as web runtimes have no float64 kernels):
    input : float32 (N, C, H, W), N open (dim_param "N")  ->  output : float32 (N, ...) logits
Initializers carry the state_dict names ('0.weight', '0.bias', ...). ``onnx`` is an optional extra,
imported only when a graph is built.
"""

import numpy as np

from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from .model import Sequential
from .validation import UserError

OPSET = 13
IR_VERSION = 7


class GraphBuilder:
    """Collects the nodes and initializers of one graph; tensors are named by the layer path ('3', '1.0')."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers = [], []

    def weight(self, name, array):
        """Add ``array`` (any shape) as a float32 initializer called ``name``; returns the name."""
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, path, **attributes):
        """Add one ``op`` node reading ``inputs``; returns the name of its output tensor."""
        output = f"{path}.output"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=f"{path}.{op}", **attributes))
        return output


def conv2d(layer, path, x, graph):
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    inputs = [x, graph.weight(f"{path}.weight", layer.weight.data)]  # weight: (F, C, KH, KW)
    if layer.bias is not None:
        inputs.append(graph.weight(f"{path}.bias", layer.bias.data))  # bias: (F,)
    return graph.node("Conv", inputs, path, kernel_shape=[KH, KW], strides=[SH, SW], pads=[PH, PW, PH, PW])


def relu(layer, path, x, graph):
    return graph.node("Relu", [x], path)


def max_pool2d(layer, path, x, graph):
    # ONNX ignores padded cells when taking the max, which is what nanocnn's -inf padding does
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    return graph.node("MaxPool", [x], path, kernel_shape=[KH, KW], strides=[SH, SW], pads=[PH, PW, PH, PW])


def flatten(layer, path, x, graph):
    return graph.node("Flatten", [x], path, axis=1)  # (N, C, H, W) -> (N, C*H*W)


def linear(layer, path, x, graph):
    inputs = [x, graph.weight(f"{path}.weight", layer.weight.data)]  # weight: (out, in), hence transB
    if layer.bias is not None:
        inputs.append(graph.weight(f"{path}.bias", layer.bias.data))
    return graph.node("Gemm", inputs, path, transB=1)  # (N, in) -> (N, out)


def dropout(layer, path, x, graph):
    return x  # the identity at inference


def sequential(model, path, x, graph):
    for i, layer in enumerate(model.layers):
        convert = CONVERTERS.get(type(layer))  # the exact class: a subclass may compute something else
        name = f"{path}.{i}" if path else str(i)
        if convert is None:
            raise UserError(
                f"export_onnx: layer {name} ({type(layer).__name__}) has no ONNX equivalent; "
                f"nanocnn exports {', '.join(cls.__name__ for cls in CONVERTERS)}"
            )
        x = convert(layer, name, x, graph)
    return x


CONVERTERS = {
    Conv2d: conv2d,
    ReLU: relu,
    MaxPool2d: max_pool2d,
    Flatten: flatten,
    Linear: linear,
    Dropout: dropout,
    Sequential: sequential,
}


def import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise UserError("exporting to ONNX needs the onnx package: pip install 'nanocnn[export]'") from None
    return onnx


def onnx_bytes(model, input_shape, output_shape, metadata):
    """The serialized ONNX model of ``model`` (a Sequential), checked by onnx.checker.

    input_shape : (C, H, W) and output_shape : one example's output shape, e.g. (K,), both already
    checked against the model; metadata : {str: str}, stored in the model's metadata_props.
    """
    onnx = import_onnx()
    helper, FLOAT = onnx.helper, onnx.TensorProto.FLOAT
    graph = GraphBuilder(onnx)
    last = sequential(model, "", "input", graph)
    if last == "input":  # nothing but Dropout: the graph still needs a node
        last = graph.node("Identity", ["input"], "identity")
    graph.nodes[-1].output[0] = "output"  # the last node made the last tensor; give it a plain name
    inputs = [helper.make_tensor_value_info("input", FLOAT, ["N", *input_shape])]  # (N, C, H, W)
    outputs = [helper.make_tensor_value_info("output", FLOAT, ["N", *output_shape])]  # (N, K) for a classifier
    body = helper.make_graph(graph.nodes, "nanocnn", inputs, outputs, graph.initializers)
    proto = helper.make_model(
        body,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="nanocnn",
        producer_version=metadata.get("nanocnn_version", ""),
        doc_string="nanocnn model: float32 (N, C, H, W) images in [0, 1] -> logits",
    )
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)  # a bug here must never reach a file
    return proto.SerializeToString()
