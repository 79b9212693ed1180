#!/usr/bin/env bash
# Every CUDA test and GPU benchmark in one run, for a lent CUDA machine (shared docs: gpu.md).
#
#   bash benchmarks/gpu_checks.sh OUTDIR [WHEELS_DIR] [ADBENCH_DIR]
#
# Run from the repository root on the CUDA machine. WHEELS_DIR (default .whl) holds the wheels that machine
# lacks (gensim, faiss-cpu, smart_open, implicit, pecanpy, numba-progress, nptyping); they are installed into
# /tmp/site. Steps, in order of priority, each under its own time cap and all under one deadline (DEADLINE_S,
# default 560 s) so that a slow step cannot take the others' time (on the H200 of 2026-11-30 the whole list needs
# about 700 s: run it as two calls, e.g. ONLY="cuda_tests encoders_epoch_time node2vec_bench", then the rest):
#   1. the CUDA tests (every test with "cuda" in its name: walks, node2vec, MF, the encoders)
#   2. encoders_bench section 3: epoch time of both encoders on 1M rows at batch 1024 and 8192 (ENC_BATCHES;
#      ENC_MODELS=autoencoder or siamese for one family)
#   3. node2vec_bench on the GPU beside PecanPy on all CPU cores (PecanPy with the numpy-2 shim)
#   4. mf_bench on the GPU beside implicit on all CPU cores
#   5. the trainer test modules with CUDA present (device="auto" picks it)
# Everything goes to OUTDIR/log.txt; the benchmarks also write JSON there.
# DEV=cpu QUICK=1 bash benchmarks/gpu_checks.sh /tmp/out   checks the plumbing on a machine without a GPU;
# ONLY="node2vec_bench mf_bench" runs only the steps named; MF_ARGS="--sizes l" passes arguments to mf_bench.
set -u
OUT=${1:?usage: gpu_checks.sh OUTDIR [WHEELS_DIR] [ADBENCH_DIR]}
WHL=${2:-.whl}
AD=${3:-.devdata/adbench}
DEV=${DEV:-cuda}
QUICK=${QUICK:-}
DEADLINE=$(( $(date +%s) + ${DEADLINE_S:-560} ))
LOG=$OUT/log.txt
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

step() {  # step NAME CAP_SECONDS COMMAND...   (ONLY="name ..." runs just those steps)
    local name=$1 cap=$2 left t0 rc
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    left=$(( DEADLINE - $(date +%s) ))
    if (( left < 15 )); then echo "=== $name: skipped (deadline)" | tee -a "$LOG"; return; fi
    (( cap > left )) && cap=$left
    echo "=== $name (cap ${cap}s) $(date -u +%T)" | tee -a "$LOG"
    t0=$(date +%s)
    timeout -k 5 "$cap" "$@" >>"$LOG" 2>&1
    rc=$?
    echo "=== $name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$LOG"
}

if [ -d "$WHL" ] && ls "$WHL"/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl \
        >>"$LOG" 2>&1 || { echo "wheel install failed" | tee -a "$LOG"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
    SITE=/tmp/site
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    SITE=${PECANPY_SITE:-}
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || true
  nproc; $PY -c "import sys, torch, numpy, faiss, gensim; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'faiss', faiss.__version__, 'gensim', gensim.__version__)"
} 2>&1 | tee -a "$LOG"

if [ -n "$QUICK" ]; then
    SIZES=(--sizes 10000 --pq 1,0.5 --fit-seeds 1 --quick); MF=(--sizes s --rating-sizes s --bpr-epochs 5)
    ROWS=20000
else
    SIZES=(--pq 1,0.5 --fit-seeds 2 --walk-steps 1e8 --max-walks-per-node 100); MF=(${MF_ARGS:-}); ROWS=1000000
fi
step cuda_tests 90 $PY -m pytest -q -p no:cacheprovider -rs -k "cuda or gpu" tests/test_cuda_encoders.py \
    tests/test_walks.py tests/test_node2vec.py tests/test_mf.py tests/test_word2vec.py
step encoders_epoch_time 240 $PY benchmarks/encoders_bench.py --device "$DEV" --sections 3 --rows "$ROWS" \
    --batch-sizes "${ENC_BATCHES:-1024,8192}" --epoch-models "${ENC_MODELS:-all}" \
    --adbench "$AD" --json "$OUT/encoders_epoch.json"
step node2vec_bench 240 $PY benchmarks/node2vec_bench.py --device "$DEV" --pecanpy-python "$(command -v "$PY")" \
    --pecanpy-path "$PWD/benchmarks/_pecanpy_shim${SITE:+:$SITE}" "${SIZES[@]}" --json "$OUT/node2vec.json"
step mf_bench 150 $PY benchmarks/mf_bench.py --device "$DEV" "${MF[@]}"
XDIST=(); $PY -c "import xdist" 2>/dev/null && XDIST=(-n 8)
step trainer_tests 120 $PY -m pytest -q -p no:cacheprovider "${XDIST[@]}" tests/test_autoencoder.py tests/test_siamese.py \
    tests/test_encoders_extras.py tests/test_evaluate_encoders.py tests/test_node2vec.py tests/test_walks.py \
    tests/test_graph.py tests/test_mf.py tests/test_word2vec.py tests/test_fasttext.py tests/test_metapath2vec.py \
    tests/test_continued.py
echo "=== done $(date -u +%T)" | tee -a "$LOG"
grep -E "^=== |passed|failed|error" "$LOG" | tail -40
