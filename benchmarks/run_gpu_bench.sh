#!/usr/bin/env bash
# The one command for the GPU box, from the repository root:
#
#     bash benchmarks/run_gpu_bench.sh
#
# Installs the wheels carried in .whl/ (benchmarks/gpu_wheels.txt: the TRL peer and what it needs) into
# /tmp/site, prints the machine, then runs benchmarks/gpu_bench.py within BUDGET_S seconds (default 300),
# writing $OUT/gpu_bench.json and the whole log to $OUT/gpu_bench.log. Without wheels, or if they fail to
# install, the TRL peer is skipped with one line and everything else still runs.
set -u -o pipefail
OUT="${OUT:-$PWD/gpu_bench_out}"
BUDGET_S="${BUDGET_S:-300}"
SITE="${SITE:-/tmp/site}"
mkdir -p "$OUT"
{
  if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
      || { echo "pip install of .whl/ failed; unpacking the wheels instead"; mkdir -p "$SITE";
           for wheel in .whl/*.whl; do python3 -m zipfile -e "$wheel" "$SITE" || echo "could not unpack $wheel"; done; }
  else
    echo "no .whl/*.whl: the TRL peer will be skipped"
  fi
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1
  nvidia-smi || echo "nvidia-smi not available"
  python3 -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
  # gpu_bench.py scales its steps to the budget and cancels an overrunning run itself; timeout is the backstop.
  timeout -k 15 "$((BUDGET_S + 120))" python3 benchmarks/gpu_bench.py --budget-s "$BUDGET_S" --out "$OUT/gpu_bench.json" "$@"
  echo "gpu_bench.py exit status $?"
} 2>&1 | tee "$OUT/gpu_bench.log"
