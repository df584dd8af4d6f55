#!/bin/sh
# Estimated decode speed of int8 tiny_gpt on the MCU boards (issue: benchmarking goal).
#
# Trains tiny_gpt for a few steps at the reference size (vocab 4096, seq 32, embed 128,
# 2 layers, ffn 512: 1.45 M parameters) and at a ~260 K-parameter size (embed 48, ffn 192,
# tied head), then runs `chain_qb` (int8 quantization + benchmarking) for STM32H7 (Cortex-M7,
# QEMU mps2-an500) and STM32N6570-DK (Cortex-M55, QEMU mps3-an547). Instruction counts do not
# depend on how well the model is trained. Prints each report's host timing and emulated run.
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
train reference
train small model.embed_dim=48 model.ffn_dim=192 model.tie_embeddings=true
for name in reference small; do
  for board in STM32H7 STM32N6570-DK; do
    echo "== tiny_gpt $name on $board"
    $tz operation_mode=chain_qb $ref general.model_path="$out/$name/train/saved_models/model.safetensors" \
      deployment.hardware_setup.board=$board benchmarking.num_tokens=8 \
      hydra.run.dir="$out/$name/$board" 2>/dev/null | sed -n '/^total/p;/^host timing/,/^run directory/p'
  done
done
