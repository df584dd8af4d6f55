"""Reads what textzoo's tracking wrote, with the real Python tools, and prints it as JSON.

The Rust tests (crates/textzoo-cli/tests/tracking.rs) compare the output with the run
directory, so this script only reads; it asserts nothing itself.

    tracking_read.py mlflow <tracking_uri> <experiment> <run_name>
        mlflow.search_runs on a local file store or a tracking server (http://...):
        {"run_id", "status", "params", "tags", "metrics": {key: [[step, value, timestamp]]},
         "artifacts": [paths]}
    tracking_read.py tensorboard <logdir>
        TensorBoard's EventAccumulator: {"scalars": {tag: [[step, value, wall_time]]}}
    tracking_read.py png <file.png>
        Decodes a PNG with the standard library only:
        {"width", "height", "distinct_colors", "non_white_fraction", "colors": {"r,g,b": count}}
"""

import json
import os
import struct
import sys
import zlib


def read_mlflow(uri, experiment, run_name):
    # mlflow >= 3 refuses file stores unless this is set (README "Tracking").
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.mlflow.runName = '{run_name}'",
        output_format="list",
    )
    if len(runs) != 1:
        return {"error": f"expected 1 run named {run_name!r}, found {len(runs)}"}
    run = runs[0]
    client = MlflowClient(tracking_uri=uri)
    metrics = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        metrics[key] = sorted([m.step, m.value, m.timestamp] for m in history)

    def walk(path):
        out = []
        for item in client.list_artifacts(run.info.run_id, path):
            if item.is_dir:
                out.extend(walk(item.path))
            else:
                out.append(item.path)
        return out

    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "params": run.data.params,
        "tags": run.data.tags,
        "metrics": metrics,
        "artifacts": sorted(walk(None)),
    }


def read_tensorboard(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    scalars = {
        tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }
    return {"scalars": scalars}


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return {"error": "not a PNG"}
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color_type, _, _, interlace = header
    if depth != 8 or color_type not in (2, 6) or interlace != 0:
        return {"error": f"unsupported PNG depth={depth} color_type={color_type}"}
    bpp = 3 if color_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colors = {}
    non_white = 0
    i = 0
    for _ in range(height):
        filt = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if filt == 1:
                line[x] = (line[x] + a) & 0xFF
            elif filt == 2:
                line[x] = (line[x] + b) & 0xFF
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        for x in range(0, stride, bpp):
            rgb = (line[x], line[x + 1], line[x + 2])
            colors[rgb] = colors.get(rgb, 0) + 1
            if rgb != (255, 255, 255):
                non_white += 1
        prev = line
    top = sorted(colors.items(), key=lambda kv: -kv[1])[:2000]
    return {
        "width": width,
        "height": height,
        "distinct_colors": len(colors),
        "non_white_fraction": non_white / float(width * height),
        "colors": {f"{r},{g},{b}": n for (r, g, b), n in top},
    }


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "mlflow":
        out = read_mlflow(*args)
    elif command == "tensorboard":
        out = read_tensorboard(*args)
    elif command == "png":
        out = read_png(*args)
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
