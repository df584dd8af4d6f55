#!/bin/sh
# Estimated decode speed of int8 tiny_gpt on the MCU boards (issue: benchmarking goal).
#
# Trains tiny_gpt for a few steps at the reference size (vocab 4096, seq 32, embed 128,
# 2 layers, ffn 512: 1.45 M parameters) and at a ~260 K-parameter size (embed 48, ffn 192,
# tied head), then runs `chain_qb` (int8 quantization + benchmarking) for STM32H7 (Cortex-M7,
# QEMU mps2-an500) and STM32N6570-DK (Cortex-M55, QEMU mps3-an547). Instruction counts do not
# depend on how well the model is trained. Prints each report's host timing and emulated run.
#
# On the Cortex-M7 the runtime reads the transformer's matrices as row pairs
# (TZ_PAIRED_WEIGHTS); for each STM32H7 run the script also counts the same firmware built
# with -DTZ_PLAIN_WEIGHTS, the plain-row kernels used before, and prints both per-token
# forward counts with the dual-MAC bound (MACC per token / 2) they compare against.
# "before" is the same firmware with the runtime of commit f7dbf40 (textzoo_rt.c before the
# smaller-steps work of issue 21), taken from git, so both figures come from one run.
#
#   benches/mcu_estimates.sh [OUT_DIR]      (default: target/mcu_estimates)
set -eu
cd "$(dirname "$0")/.."
out=${1:-target/mcu_estimates}
cargo build --release -q
tz=./target/release/textzoo
ref="--config-path config_file_examples --config-name reference_training.yaml"
train() { # name, extra overrides...
  name=$1; shift
  $tz $ref model.name=tiny_gpt training.max_minutes=null training.max_steps=20 \
    training.eval_interval=10 hydra.run.dir="$out/$name/train" "$@" >/dev/null 2>&1
}
# Mean instructions per decoded token (forward passes) of `make count-qemu` output: marks come
# in pairs around each forward pass, the first pair being the prefill.
per_token() {
  awk '$1 == "mark" { m[n++] = $2 } END {
    for (i = 2; i + 1 < n; i += 2) { s += m[i + 1] - m[i]; k++ }
    if (k) printf "%.0f", s / k }'
}
train reference
train small model.embed_dim=48 model.ffn_dim=192 model.tie_embeddings=true
for name in reference small; do
  for board in STM32H7 STM32N6570-DK; do
    echo "== tiny_gpt $name on $board"
    run="$out/$name/$board"
    $tz operation_mode=chain_qb $ref general.model_path="$out/$name/train/saved_models/model.safetensors" \
      deployment.hardware_setup.board=$board benchmarking.num_tokens=8 \
      hydra.run.dir="$run" 2>/dev/null | sed -n '/^total/p;/^host timing/,/^run directory/p'
    if [ "$board" = STM32H7 ]; then
      # The analysis total is the last macc_decode of the report (the layers' come first).
      macc=$(sed -n 's/^    "macc_decode": \([0-9]*\).*/\1/p' "$run/benchmark.json" | tail -1)
      flags="-DTZ_MAX_TOKENS=9 -DTZ_GREEDY=1"
      paired=$(make -s -C "$run/benchmark/c_board" count-qemu EXTRA_CFLAGS="$flags" | per_token)
      plain=$(make -s -C "$run/benchmark/c_board" count-qemu EXTRA_CFLAGS="$flags -DTZ_PLAIN_WEIGHTS" | per_token)
      before=n/a
      if git cat-file -e f7dbf40:crates/textzoo/src/deployment/c/textzoo_rt.c 2>/dev/null; then
        old="$out/$name/c_board_before"
        rm -rf "$old" && cp -r "$run/benchmark/c_board" "$old" && rm -rf "$old/build"
        git show f7dbf40:crates/textzoo/src/deployment/c/textzoo_rt.c > "$old/src/textzoo_rt.c"
        before=$(make -s -C "$old" count-qemu EXTRA_CFLAGS="$flags" | per_token)
      fi
      echo "instructions/token (forward): plain rows $plain, row pairs $paired" \
        "(before: $before); dual-MAC bound $((macc / 2)) ($macc MACC/token)"
    fi
  done
done
