"""Writes two small .tflite files with LiteRT's own schema bindings (ai_edge_litert's
schema_py_generated object API), for `textzoo check` to read files textzoo did not write.

Usage: make_tflite.py OUT_DIR
- float_add.tflite: y = x + c in float32 (a clean float model; LiteRT runs it here to prove
  the file is valid);
- int8_with_problems.tflite: an int8 graph with a float ADD between DEQUANTIZE and QUANTIZE,
  and a RANDOM_UNIFORM operator.
"""
import os
import sys

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def code(op):
    c = s.OperatorCodeT()
    c.builtinCode = op
    c.deprecatedBuiltinCode = min(op, 127)
    c.version = 1
    return c


def tensor(name, shape, ttype, buffer=0, scale=None, zp=None):
    t = s.TensorT()
    t.name = name.encode()
    t.shape = shape
    t.type = ttype
    t.buffer = buffer
    if scale is not None:
        q = s.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zp]
        t.quantization = q
    return t


def buffer(data=None):
    b = s.BufferT()
    if data is not None:
        b.data = np.frombuffer(data, dtype=np.uint8)
    return b


def op(index, inputs, outputs, opt_type=0, opt=None):
    o = s.OperatorT()
    o.opcodeIndex = index
    o.inputs = inputs
    o.outputs = outputs
    o.builtinOptionsType = opt_type
    o.builtinOptions = opt
    return o


def save(model, path):
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    with open(path, "wb") as f:
        f.write(b.Output())


def model(codes, tensors, ops, inputs, outputs, buffers):
    sg = s.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = tensors, ops, inputs, outputs
    m = s.ModelT()
    m.version = 3
    m.operatorCodes, m.subgraphs, m.buffers = codes, [sg], buffers
    m.description = b"made with ai_edge_litert schema bindings"
    return m


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    F32, I8, I32 = s.TensorType.FLOAT32, s.TensorType.INT8, s.TensorType.INT32
    c = np.arange(4, dtype=np.float32).tobytes()
    m = model(
        [code(s.BuiltinOperator.ADD)],
        [tensor("x", [1, 4], F32), tensor("c", [1, 4], F32, 1), tensor("y", [1, 4], F32)],
        [op(0, [0, 1], [2], s.BuiltinOptions.AddOptions, s.AddOptionsT())],
        [0], [2], [buffer(), buffer(c)],
    )
    path = os.path.join(out, "float_add.tflite")
    save(m, path)
    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((1, 4), np.float32))
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])
    assert np.allclose(y, [[1, 2, 3, 4]]), y

    shape = np.array([1, 4], dtype=np.int32).tobytes()
    m = model(
        [code(s.BuiltinOperator.DEQUANTIZE), code(s.BuiltinOperator.ADD),
         code(s.BuiltinOperator.QUANTIZE), code(s.BuiltinOperator.RANDOM_UNIFORM)],
        [tensor("x", [1, 4], I8, 0, 0.1, 0), tensor("xf", [1, 4], F32),
         tensor("c", [1, 4], F32, 1), tensor("yf", [1, 4], F32),
         tensor("y", [1, 4], I8, 0, 0.1, 0), tensor("shape", [2], I32, 2),
         tensor("noise", [1, 4], F32)],
        [op(0, [0], [1]), op(1, [1, 2], [3], s.BuiltinOptions.AddOptions, s.AddOptionsT()),
         op(2, [3], [4]), op(3, [5], [6])],
        [0], [4, 6], [buffer(), buffer(c), buffer(shape)],
    )
    save(m, os.path.join(out, "int8_with_problems.tflite"))
    print("ok")


if __name__ == "__main__":
    main()
