#!/usr/bin/env bash
# tools/device-check.sh: everything ONE call of the lent GPU machine does, in under 8 minutes.
#
# Prepare here with tools/device-build.sh, then call the device tool with
#   carry:     ["build-device/device-pack.tar.gz"]
#   command:   tools/device-check.sh
#   timeout_s: 540        (the script keeps itself to DEVICE_CHECK_BUDGET_S, 450 s by default)
#
# It finds the CUDA libraries the device has (runtime, cuDNN, cuBLAS, NCCL: in PyTorch's Python
# packages there), runs every GPU test executable (one per tests/gpu/test_*.cpp), our training
# benchmark on the GPU (alexnet-bench --device cuda), the end-to-end rate on a packed JPEG set it
# makes, the same network in PyTorch (tools/bench/pytorch_alexnet.py, eager and torch.compile),
# and the CPU tests with the time left.
# Full logs go to $OUT (the device tool brings back up to 8 files from there) or ./device-out;
# the last thing printed is one markdown table, also written to summary.md.
#
# Without a GPU (here) it is a dry run: the same steps, the GPU tests skip (AX_REQUIRE_GPU), the
# PyTorch script runs a tiny CPU step, and it exits 0 unless something is actually broken.
#
# Knobs: DEVICE_CHECK_BUDGET_S (seconds for everything, 450), DEVICE_CHECK_CPU_TESTS (auto: on
# the GPU machine only; 1: always; 0: never), DEVICE_CHECK_BENCH_STEPS (timed steps, 30).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-device
PACK=$BUILD/device-pack.tar.gz
LOGS=${OUT:-$ROOT/device-out}
BUDGET_S=${DEVICE_CHECK_BUDGET_S:-450}
CPU_TESTS=${DEVICE_CHECK_CPU_TESTS:-auto}
BENCH_STEPS=${DEVICE_CHECK_BENCH_STEPS:-30}
BATCH=128
START_S=$SECONDS
# The CUDA libraries our binaries load from the device (cmake/portable.cmake says why these:
# too large to carry, and the runtime shared so that a process has one).
CUDA_LIBS=(libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libnccl.so.2 libcudart.so.13)

# At most 8 files come back from $OUT: one per step (8 with the summary).
mkdir -p "$LOGS"
SUMMARY=$LOGS/summary.md
ENV_LOG=$LOGS/env.log
GPU_LOG=$LOGS/gpu-tests.log
CPU_LOG=$LOGS/cpu-tests.log
BENCH_LOG=$LOGS/alexnet-bench.log
TORCH_JSON=$LOGS/pytorch.jsonl
TORCH_LOG=$LOGS/pytorch.log
E2E_LOG=$LOGS/end-to-end.log
: >"$ENV_LOG"; : >"$GPU_LOG"; : >"$CPU_LOG"; : >"$BENCH_LOG"; : >"$TORCH_JSON"; : >"$TORCH_LOG"; : >"$E2E_LOG"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Results for the table, filled in by the steps.
HAVE_GPU=0
GPU_DESC="no GPU (dry run)"
LIB_DESC=""
MISSING_LIBS=""
PROBLEMS=0   # anything that should make the exit status non-zero
declare -A ROW

say() { printf '[%3ds] %s\n' "$((SECONDS - START_S))" "$*" | tee -a "$ENV_LOG"; }
left() { echo $((BUDGET_S - (SECONDS - START_S))); }

# limited CAP RESERVE LOG CMD...: run CMD with output appended to LOG, for at most CAP seconds
# and never into the last RESERVE seconds of the budget (kept for the steps after it). Returns
# CMD's status; 124 when it ran out of time; 125 when there was no time to start it.
limited() {
  local cap=$1 reserve=$2 log=$3 t
  shift 3
  t=$(($(left) - reserve))
  ((t > cap)) && t=$cap
  if ((t < 5)); then
    echo "(not started: no time left in the ${BUDGET_S}s budget)" >>"$log"
    return 125
  fi
  local rc=0
  timeout -k 5 "$t" "$@" >>"$log" 2>&1 || rc=$?
  ((rc == 137)) && rc=124
  return "$rc"
}

# --------------------------------------------------------------------------- 1. the build
# On the device only the pack travels (tools/device-build.sh); unpack it into build-device/.
unpack_build() {
  if [[ ! -x $BUILD/bin/alexnet-bench || ${DEVICE_CHECK_UNPACK:-0} == 1 ]]; then
    [[ -f $PACK ]] || { say "no $BUILD/bin and no $PACK: run tools/device-build.sh first"; exit 2; }
    say "unpacking $PACK"
    tar -C "$BUILD" -xzf "$PACK"
  fi
  [[ -f $BUILD/bin/device-build-info.txt ]] && sed 's/^/  build: /' "$BUILD/bin/device-build-info.txt" | tee -a "$ENV_LOG"
  return 0
}

# The tests were compiled with absolute paths (ALEXNET_SOURCE_DIR, ALEXNET_BIN_DIR under it).
# Where this checkout sits elsewhere on the device, make that path lead here.
link_build_paths() {
  local src
  src=$(sed -n 's/^source_dir=//p' "$BUILD/bin/device-build-info.txt" 2>/dev/null || true)
  [[ -z $src || $src == "$ROOT" ]] && return 0
  if [[ ! -e $src ]]; then
    mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src"
    say "linked $src -> $ROOT (the tests were built there)"
  elif [[ $(cd "$src" && pwd -P) != $(cd "$ROOT" && pwd -P) ]]; then
    say "WARNING: $src (where the tests were built) exists and is not this checkout: tests that run the binaries may use the wrong ones"
  fi
}

# --------------------------------------------------------------------------- 2. the machine
detect_gpu() {
  if command -v nvidia-smi >/dev/null &&
     GPU_DESC=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total \
                --format=csv,noheader 2>>"$ENV_LOG" | head -1) && [[ -n $GPU_DESC ]]; then
    HAVE_GPU=1
    timeout 30 nvidia-smi >>"$ENV_LOG" 2>&1 || true
  else
    GPU_DESC="no GPU (dry run)"
  fi
  say "GPU: $GPU_DESC"
}

# Files named NAME... under DIR, one "name path" line each (the first hit per name), searched in
# one pass of at most SECS seconds; /proc, /sys, /dev and this checkout are left out.
find_files() {
  local secs=$1 dir=$2 expr=() name
  shift 2
  for name in "$@"; do expr+=(${expr[0]+-o} -name "$name"); done
  timeout "$secs" find "$dir" \( -path /proc -o -path /sys -o -path /dev -o -path "$ROOT" \) -prune \
    -o \( "${expr[@]}" \) -print 2>/dev/null | awk -F/ '!seen[$NF]++ {print $NF, $0}' || true
}

ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
find_cuda_libraries() {
  local dirs=() name file hits missing=() extra d
  # PyTorch's environment first: its cuDNN, cuBLAS and NCCL belong together. Then anywhere.
  [[ -d /opt/torch/.venv ]] && hits=$(find_files 30 /opt/torch/.venv "${CUDA_LIBS[@]}")
  for name in "${CUDA_LIBS[@]}"; do
    grep -q "^$name " <<<"${hits:-}" || missing+=("$name")
  done
  ((${#missing[@]})) && hits+=$'\n'$(find_files 60 / "${missing[@]}")
  for name in "${CUDA_LIBS[@]}"; do
    file=$(awk -v n="$name" '$1 == n {print $2; exit}' <<<"${hits:-}")
    if [[ -z $file ]]; then
      say "NOT FOUND: $name"
      MISSING_LIBS+=" $name"
      continue
    fi
    say "found $name: $file$([[ $(readlink -f "$file") != "$file" ]] && echo " -> $(readlink -f "$file")")"
    dirs+=("$(dirname "$file")")
  done
  # cuDNN compiles some of its engines at run time with NVRTC: give it one from near the others
  # (the wheels keep it in a sibling folder, the toolkit in the same one).
  for d in "${dirs[@]}"; do
    extra=$(find "$d/../.." -maxdepth 3 -name 'libnvrtc.so.1[0-9]' 2>/dev/null | head -1 || true)
    if [[ -n $extra ]]; then
      say "found $(basename "$extra"): $(readlink -f "$extra")"
      dirs+=("$(dirname "$(readlink -f "$extra")")")
      break
    fi
  done
  # Our copies of the small libraries first (build-device/lib), then the CUDA ones.
  local path=$BUILD/lib
  for d in "${dirs[@]}"; do [[ :$path: == *:$d:* ]] || path+=:$d; done
  export LD_LIBRARY_PATH=$path${ORIG_LD_LIBRARY_PATH:+:$ORIG_LD_LIBRARY_PATH}
  say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
}

# Versions as PyTorch and pip see them (the library files in wheels carry no full version).
PYTHON=""
find_python() {
  local p
  for p in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && timeout 60 "$p" -c 'import torch' 2>/dev/null; then
      PYTHON=$(command -v "$p")
      break
    fi
  done
  say "python with torch: ${PYTHON:-none}"
}

library_versions() {
  [[ -n $PYTHON ]] || return 0
  LIB_DESC=$(LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH timeout 60 "$PYTHON" - 2>>"$ENV_LOG" <<'EOF' || true
import importlib.metadata as md
import torch
def pkg(*names):
    for n in names:
        try:
            return md.version(n)
        except md.PackageNotFoundError:
            pass
    return "?"
cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
nccl = torch.cuda.nccl.version() if torch.cuda.is_available() else None
nccl = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), cuDNN {cudnn} "
      f"[pip {pkg('nvidia-cudnn-cu13', 'nvidia-cudnn-cu12')}], "
      f"cuBLAS [pip {pkg('nvidia-cublas', 'nvidia-cublas-cu13', 'nvidia-cublas-cu12')}], "
      f"NCCL {nccl} [pip {pkg('nvidia-nccl-cu13', 'nvidia-nccl-cu12')}]")
EOF
)
  say "versions: ${LIB_DESC:-unknown}"
}

# Every library our binaries need must resolve (ldd says "not found" otherwise).
check_loading() {
  local f missing
  missing=$(for f in "$BUILD"/bin/test_* "$BUILD"/bin/alexnet-*; do ldd "$f" 2>&1; done |
            awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  ldd "$BUILD/bin/alexnet-bench" >>"$ENV_LOG" 2>&1 || true
  if [[ -n $missing ]]; then
    say "libraries that do not resolve: $missing"
    MISSING_LIBS+=" $missing"
  fi
}

# --------------------------------------------------------------------------- 3. test executables
# run_tests KIND SOURCE_GLOB LOG CAP RESERVE: runs the executable of every test_*.cpp in the
# glob; fills ROW[KIND] with what happened.
run_tests() {
  local kind=$1 glob=$2 log=$3 cap=$4 reserve=$5
  local src name exe out rc status passed failed skipped
  local n=0 ok=0 bad=0 skip=0 t_pass=0 t_fail=0 t_skip=0 no_gpu=0 bad_names=""
  for src in $glob; do
    [[ -e $src ]] || continue
    name=$(basename "$src" .cpp)
    exe=$BUILD/bin/$name
    n=$((n + 1))
    out=$TMP/$name.out
    : >"$out"
    if [[ ! -x $exe ]]; then
      echo "missing executable: $exe" >"$out"
      rc=127
    else
      rc=0
      limited "$cap" "$reserve" "$out" "$exe" --gtest_color=no || rc=$?
    fi
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    t_pass=$((t_pass + ${passed:-0})); t_fail=$((t_fail + ${failed:-0})); t_skip=$((t_skip + ${skipped:-0}))
    no_gpu=$((no_gpu + $(grep -c 'GPU test skipped: no usable CUDA device' "$out" || true)))
    case $rc in
      0) if [[ ${passed:-0} == 0 && ${skipped:-0} != 0 ]]; then status=skipped; skip=$((skip + 1))
         else status=passed; ok=$((ok + 1)); fi ;;
      124) status="timed out"; bad=$((bad + 1)); bad_names+=" $name(timeout)" ;;
      125) status="not run (no time)"; bad=$((bad + 1)); bad_names+=" $name(no time)" ;;
      127) status=missing; bad=$((bad + 1)); bad_names+=" $name(missing)" ;;
      *) status="failed (exit $rc)"; bad=$((bad + 1)); bad_names+=" $name" ;;
    esac
    {
      echo "=================== $name: $status"
      cat "$out"
    } >>"$log"
    # The skip reason, once, so a dry run says why.
    local why
    why=$(grep -m1 -o 'GPU test skipped: .*' "$out" || true)
    say "$kind $name: $status (tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped)${why:+ — $why}"
  done
  if ((n == 0)); then
    ROW[$kind]="no test executables"
    return
  fi
  ROW[$kind]="$ok passed, $bad failed, $skip skipped of $n executables (tests: $t_pass passed, $t_fail failed, $t_skip skipped)${bad_names:+; failed:$bad_names}"
  ((bad == 0)) || PROBLEMS=1
  # On the GPU machine a GPU test that found no usable GPU (a driver too old for our CUDA
  # runtime, say) is a failure of the check, not a pass. Tests that need two GPUs (the NCCL
  # exchange, two ranks' gradient sum) skip on a one-GPU machine, as they should.
  if [[ $kind == gpu && $HAVE_GPU == 1 && $no_gpu -gt 0 ]]; then
    ROW[$kind]+="; SKIPPED ON A GPU MACHINE (see gpu-tests.log)"
    PROBLEMS=1
  fi
}

# --------------------------------------------------------------------------- 4. benchmarks
OURS_IPS=""
run_our_bench() {
  local help
  help=$("$BUILD/bin/alexnet-bench" --help 2>&1 || true)
  if ! grep -- '--device' <<<"$help" | grep -qi cuda; then
    ROW[bench]="not yet supported (its --device takes: $(grep -m1 -- '--device' <<<"$help" | sed -E 's/.* {2,}//'))"
    say "alexnet-bench: ${ROW[bench]}"
    return
  fi
  if ((!HAVE_GPU)); then
    ROW[bench]="skipped: no GPU (dry run)"
    say "alexnet-bench: ${ROW[bench]}"
    return
  fi
  say "alexnet-bench --device cuda --batch $BATCH --steps $BENCH_STEPS"
  local rc=0
  # From $LOGS, where there is no configs/small.yaml: the paper network alone.
  (cd "$LOGS" && limited 120 250 "$BENCH_LOG" "$BUILD/bin/alexnet-bench" --device cuda \
     --batch "$BATCH" --steps "$BENCH_STEPS") || rc=$?
  OURS_IPS=$(sed -n 's/^step (median): .* = \([0-9.]*\) images\/s.*/\1/p' "$BENCH_LOG" | head -1)
  if ((rc != 0)) || [[ -z $OURS_IPS ]]; then
    ROW[bench]="failed (exit $rc; see alexnet-bench.log)"
    PROBLEMS=1
  else
    ROW[bench]="$OURS_IPS images/s ($(sed -n 's/^step (median): \([0-9.]* ms\).*/\1/p' "$BENCH_LOG" | head -1)/step)"
  fi
  say "alexnet-bench: ${ROW[bench]}"
  ROW[flops]=$(sed -n 's/^achieved: //p' "$BENCH_LOG" | head -1)
  ROW[memory]=$(sed -n 's/^device memory: //p' "$BENCH_LOG" | head -1)
}

# The real input pipeline: a packed JPEG set made here (alexnet-prep pack of the synthetic
# source, 256x256 at about a photo's bitrate), then alexnet-bench --loader on the GPU: the
# decode table and the end-to-end training rate (decode threads, pinned upload, GPU augment).
E2E_IPS=""
run_end_to_end() {
  local packed=$TMP/packed-e2e threads rc=0
  threads=$(nproc 2>/dev/null || echo 2)
  say "alexnet-prep pack: 1280 synthetic 256x256 JPEGs"
  limited 60 200 "$E2E_LOG" "$BUILD/bin/alexnet-prep" pack --set data.source=synthetic \
    --set data.synthetic.train_images=1280 --set data.synthetic.noise=8 \
    --set data.image_size=256 --set data.workers="$threads" --out "$packed" || rc=$?
  if ((rc != 0)); then
    ROW[e2e]="failed: alexnet-prep pack (exit $rc; see end-to-end.log)"
    PROBLEMS=1
    say "end to end: ${ROW[e2e]}"
    return
  fi
  if ((!HAVE_GPU)); then
    ROW[e2e]="skipped: no GPU (dry run; the packed set was made)"
    say "end to end: ${ROW[e2e]}"
    return
  fi
  say "alexnet-bench --device cuda --loader (packed set) --steps 20"
  limited 90 180 "$E2E_LOG" "$BUILD/bin/alexnet-bench" --device cuda --batch "$BATCH" \
    --loader "$packed" --loader-images 1280 --steps 20 || rc=$?
  E2E_IPS=$(sed -n 's/^end to end: \([0-9.]*\) images\/s.*/\1/p' "$E2E_LOG" | head -1)
  if ((rc != 0)) || [[ -z $E2E_IPS ]]; then
    ROW[e2e]="failed (exit $rc; see end-to-end.log)"
    PROBLEMS=1
  else
    ROW[e2e]="$E2E_IPS images/s with $threads decode threads"
  fi
  say "end to end: ${ROW[e2e]}"
}

# One JSON line per mode from tools/bench/pytorch_alexnet.py, run in the device's own library
# environment (our LD_LIBRARY_PATH holds Debian's libz etc., which are not PyTorch's business).
torch_ips() { sed -n "s/.*\"mode\": \"$1\".*\"images_per_s\": \([0-9.]*\).*/\1/p" "$TORCH_JSON" | tail -1; }
torch_why() { sed -n "s/.*\"mode\": \"$1\".*\"skipped\": \"\([^\"]*\)\".*/\1/p" "$TORCH_JSON" | tail -1; }
torch_ms() { sed -n "s/.*\"mode\": \"$1\".*\"median_ms\": \([0-9.]*\).*/\1/p" "$TORCH_JSON" | tail -1; }

run_pytorch_bench() {
  local script=$ROOT/tools/bench/pytorch_alexnet.py mode cap reserve rc
  if [[ -z $PYTHON ]]; then
    ROW[eager]="skipped: no python3 with torch"; ROW[compile]=${ROW[eager]}
    return
  fi
  for mode in eager compile; do
    if ((HAVE_GPU)); then
      # compile: code generation first (tens of seconds), so it gets the larger share; 40 s
      # stay for the CPU tests after it.
      if [[ $mode == eager ]]; then cap=100; reserve=150; else cap=200; reserve=30; fi
      say "pytorch_alexnet.py --device cuda --modes $mode"
      rc=0
      LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 \
        limited "$cap" "$reserve" "$TORCH_LOG" bash -c '"$@" >>"'"$TORCH_JSON"'"' _ \
        "$PYTHON" "$script" --device cuda --batch "$BATCH" --modes "$mode" || rc=$?
      ROW[$mode]=$(describe_torch "$mode" "$rc" "")
    else
      say "pytorch_alexnet.py --device cpu --batch 2 --steps 2 --warmup 1 --modes $mode (dry run)"
      rc=0
      LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH limited 120 0 "$TORCH_LOG" bash -c '"$@" >>"'"$TORCH_JSON"'"' _ \
        "$PYTHON" "$script" --device cpu --batch 2 --steps 2 --warmup 1 --modes "$mode" || rc=$?
      ROW[$mode]=$(describe_torch "$mode" "$rc" " (CPU, batch 2: a dry run of the script, not a measurement)")
    fi
    say "PyTorch $mode: ${ROW[$mode]}"
  done
}

describe_torch() {
  local mode=$1 rc=$2 note=$3 ips why
  ips=$(torch_ips "$mode"); why=$(torch_why "$mode")
  if [[ -n $ips ]]; then echo "$ips images/s ($(torch_ms "$mode") ms/step)$note"
  elif [[ -n $why ]]; then echo "skipped: $why"
  elif ((rc == 124 || rc == 125)); then echo "timed out (see pytorch.log)"
  else echo "failed (exit $rc; see pytorch.log)"; fi
}

ratio() {  # ratio A B: A/B to two decimals, or "–"
  if [[ -n $1 && -n $2 ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo "–"; fi
}

# --------------------------------------------------------------------------- 5. the table
write_summary() {
  local commit info=$BUILD/bin/device-build-info.txt
  commit=$(sed -n 's/^commit=//p' "$info" 2>/dev/null | cut -c1-10 || true)
  local dirty
  dirty=$(sed -n 's/^uncommitted_changes=//p' "$info" 2>/dev/null || true)
  {
    echo
    echo "### device check $(date -u +%Y-%m-%dT%H:%MZ), build of ${commit:-?}${dirty:+ (+$dirty uncommitted files)}, $((SECONDS - START_S)) s"
    echo
    echo "GPU: $GPU_DESC. ${LIB_DESC:+$LIB_DESC.}${MISSING_LIBS:+ Missing libraries:$MISSING_LIBS.}"
    echo
    echo "| check | result |"
    echo "|---|---|"
    echo "| GPU tests (tests/gpu) | ${ROW[gpu]:-?} |"
    echo "| CPU tests (tests/cpu) | ${ROW[cpu]:-?} |"
    echo "| ours: alexnet-bench --device cuda, batch $BATCH, fp32 | ${ROW[bench]:-?} |"
    echo "| ours: achieved FLOP rate | ${ROW[flops]:-?} |"
    echo "| ours: device memory | ${ROW[memory]:-?} |"
    echo "| ours: end to end on packed JPEGs | ${ROW[e2e]:-?} |"
    echo "| PyTorch eager, batch $BATCH, fp32 (TF32 off) | ${ROW[eager]:-?} |"
    echo "| PyTorch torch.compile, same | ${ROW[compile]:-?} |"
    echo "| ours / eager, ours / compile | $(ratio "$OURS_IPS" "$(torch_ips eager)"), $(ratio "$OURS_IPS" "$(torch_ips compile)") |"
  } >"$SUMMARY"
  cat "$SUMMARY"
}

# --------------------------------------------------------------------------- main
say "device-check in $ROOT, logs in $LOGS, budget ${BUDGET_S}s"
unpack_build
link_build_paths
detect_gpu
find_cuda_libraries
find_python
library_versions
check_loading

say "GPU tests"
run_tests gpu "$ROOT/tests/gpu/test_*.cpp" "$GPU_LOG" 120 270

run_our_bench
run_end_to_end
run_pytorch_bench

if [[ $CPU_TESTS == 1 || ($CPU_TESTS == auto && $HAVE_GPU == 1) ]]; then
  say "CPU tests, with the $(left)s left"
  run_tests cpu "$ROOT/tests/cpu/test_*.cpp" "$CPU_LOG" 90 10
else
  ROW[cpu]="skipped: dry run (CI runs them; DEVICE_CHECK_CPU_TESTS=1 runs them here)"
  say "CPU tests: ${ROW[cpu]}"
fi

# Missing libraries matter on the GPU machine; in a dry run the CUDA ones may just be elsewhere.
[[ -n $MISSING_LIBS && $HAVE_GPU == 1 ]] && PROBLEMS=1
write_summary
exit "$PROBLEMS"
