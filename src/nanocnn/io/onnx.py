"""A nanocnn Sequential as an ONNX graph, each layer adding its own nodes (``Module.to_onnx``).

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

from ..validation import UserError

OPSET = 13
IR_VERSION = 7


class GraphBuilder:
    """Collects the nodes and initializers of one graph; tensors are named by the layer path ('3', '1.0').

    A layer adds itself with its ``to_onnx(graph, x, name)`` method (the Module contract), calling
    ``graph.node`` and ``graph.weight``, and returns the name of its output tensor.
    """

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers = [], []

    def weight(self, name, array):
        """Add ``array`` (any shape) as a float32 initializer called ``name``; returns the name."""
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, name, **attributes):
        """Add one ``op`` node reading ``inputs``; returns the name of its output tensor."""
        output = f"{name}.output"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=f"{name}.{op}", **attributes))
        return output

    def layer(self, layer, x, name):
        """Add ``layer`` (named by its path, e.g. '3') reading tensor x; returns its output tensor's name."""
        to_onnx = layer.declared("to_onnx")
        if to_onnx is None:
            kind = type(layer).__name__
            raise UserError(
                f"export_onnx: layer {name} ({kind}) has no ONNX form: give {kind} a to_onnx(graph, x, name) "
                f"method (the README's 'Writing your own layer' shows one)"
            )
        return to_onnx(self, x, name)


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
    last = graph.layer(model, "input", "")
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
