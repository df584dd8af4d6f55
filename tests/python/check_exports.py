"""Runs textzoo's exports in the independent runtimes and compares them with textzoo.

Usage: check_exports.py REFERENCE.json

REFERENCE.json (written by crates/textzoo-cli/tests/exports.rs) holds the validation windows,
textzoo's float logits, textzoo-rt's int8 logits (and, for the TFLite flavour without the
embedding, the int8 embedded windows textzoo-rt computed) and the paths of the exports.
Prints one JSON object of measurements: onnx.checker verdicts, onnxruntime's max abs error
against the float model and the QDQ graph's against the int8 model, and for each .tflite the
share of int8 output elements within +-1 LSB of textzoo-rt's logits (quantized with the
output tensor's own scale and zero point) and the greedy next-token agreement.
"""
import json
import sys

import numpy as np


def onnx_logits(path, windows):
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    outs = []
    for w in windows:
        ids = np.asarray(w, dtype=np.int64)[None, :]
        outs.append(sess.run(None, {"input_ids": ids})[0].reshape(-1))
    ops = sorted({n.op_type for n in model.graph.node})
    return np.stack(outs), model.opset_import[0].version, ops


def tflite_outputs(path, inputs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    res = []
    for x in inputs:
        it.set_tensor(inp["index"], np.asarray(x, dtype=inp["dtype"]).reshape(inp["shape"]))
        it.invoke()
        res.append(it.get_tensor(out["index"]).reshape(-1).astype(np.int32))
    scale, zp = out["quantization"]
    return np.stack(res), inp, out, float(scale), int(zp)


def main():
    ref = json.load(open(sys.argv[1]))
    vocab = ref["vocab_size"]
    rows = ref["rows"]  # logits rows per window (seq_len for tiny_gpt, 1 for bert)
    windows = ref["windows"]
    result = {}
    if "onnx_float" in ref:
        got, opset, ops = onnx_logits(ref["onnx_float"], windows)
        want = np.asarray(ref["float_logits"], dtype=np.float32).reshape(got.shape)
        result["onnx_float"] = {
            "checker": "ok",
            "opset": opset,
            "ops": ops,
            "max_abs_error": float(np.max(np.abs(got - want))),
            "max_abs_logit": float(np.max(np.abs(want))),
            "greedy_agreement": float(np.mean(
                got.reshape(-1, vocab).argmax(1) == want.reshape(-1, vocab).argmax(1))),
        }
    if "onnx_qdq" in ref:
        got, opset, ops = onnx_logits(ref["onnx_qdq"], windows)
        want = np.asarray(ref["int8_logits"], dtype=np.float32).reshape(got.shape)
        err = np.abs(got - want)
        result["onnx_qdq"] = {
            "checker": "ok",
            "opset": opset,
            "ops": ops,
            "max_abs_error": float(np.max(err)),
            "mean_abs_error": float(np.mean(err)),
            "max_abs_logit": float(np.max(np.abs(want))),
            "greedy_agreement": float(np.mean(
                got.reshape(-1, vocab).argmax(1) == want.reshape(-1, vocab).argmax(1))),
        }
    for t in ref.get("tflite", []):
        inputs = t["inputs"]
        got, inp, out, scale, zp = tflite_outputs(t["path"], inputs)
        want = np.asarray(ref["int8_logits"], dtype=np.float64).reshape(len(inputs), -1)
        want_q = np.clip(np.round(want / scale) + zp, -128, 127).astype(np.int32)
        # Compare the rows the TFLite graph outputs (its last `out_rows` rows of each window).
        out_rows = got.shape[1] // vocab
        want_q = want_q.reshape(len(inputs), rows, vocab)[:, rows - out_rows:, :].reshape(got.shape)
        wantf = want.reshape(len(inputs), rows, vocab)[:, rows - out_rows:, :]
        diff = np.abs(got - want_q)
        result[t["name"]] = {
            "input_dtype": str(np.dtype(inp["dtype"])),
            "output_dtype": str(np.dtype(out["dtype"])),
            "output_scale": scale,
            "output_zero_point": zp,
            "within_1_lsb": float(np.mean(diff <= 1)),
            "exact": float(np.mean(diff == 0)),
            "max_lsb": int(diff.max()),
            "greedy_agreement": float(np.mean(
                got.reshape(-1, vocab).argmax(1) == wantf.reshape(-1, vocab).argmax(1))),
            "elements": int(diff.size),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
