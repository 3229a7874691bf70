#!/usr/bin/env bash
# The GPU checks of issues #5 and #7 in one bounded run on a CUDA machine; results go to $OUT (default ./gpu-out).
#   1. bench/bench_predict.py --gpu: learn.predict, get_preds and the Predictor's fp32 / fp16 / bf16 on the GPU
#   2. bench/real_data_eval.py --size full: the full-size AWD-LSTM LM on all the unlabeled mail (time budget
#      LM_MIN minutes), then the job_app and status classifiers, linear, ensemble and no-LM, on the real data;
#      (gradients clipped at 0.25: without, one epoch diverged on an H100); STAGES is a space-separated list of passes, run in order within REAL_S seconds in all (e.g. "lm,loso model")
# Inputs beside the repository: .gpu/real/{dataset,lm_corpus}.parquet, written where the shared data folder is by
#     python bench/real_data_eval.py --out .gpu/real --lm-corpus all --stages data,corpus
# and optionally .whl/devsite.tgz, the packages the machine's image lacks (fastai, spaCy, ... built for its Python),
# unpacked onto PYTHONPATH: `bash bench/gpu_devsite.sh` builds it where pip reaches PyPI.
#     bash bench/gpu_checks.sh    # PREDICT_S, REAL_S: time limits in seconds (PREDICT_S=0 skips 1); LM_MIN: LM budget in minutes (0: exactly LM_EPOCHS, default 12); EPOCHS, STAGES;
#                                 LOSO_SOURCES: the held-out mailboxes of the loso stage, in order (default all);
#                                 PARALLEL=1: the passes after the first run at the same time, a pass of only "loso" as
#                                 one process per held-out mailbox (a classifier pair leaves the GPU mostly idle), then
#                                 one report over the test-split models of all passes;
#                                 SIZE: the model size (default full; micro tries the script out on a CPU)
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if [ -f .whl/devsite.tgz ]; then mkdir -p /tmp/site && tar xzf .whl/devsite.tgz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD; fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
unbar() { tr '\r' '\n' | grep -v -E '^\s*$|\|[-█]*\| *[0-9.]+%|^█?Epoch [0-9]+/[0-9]+ :'; }  # drop progress-bar frames
STAGES=${STAGES:-lm,model,linear,ensemble,nolm}
stage_words=" ${STAGES//,/ } "
if [[ $stage_words != *" lm "* && ! -f /tmp/real/lm/encoder.pth && $stage_words =~ \ (model|loso|ensemble|ablations|calibration|french|quotes)\  ]]; then
    # the LM lives in /tmp/real/lm only while the machine stays warm (30 s idle); a fresh one has none (stop 28)
    echo "no LM on this machine (/tmp/real/lm/encoder.pth): it lasts only while the machine stays warm; put lm in STAGES" | tee "$OUT/real.log" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "${PREDICT_S:-150}" -gt 0 ]; then timeout "${PREDICT_S:-150}" python3 bench/bench_predict.py --gpu 2>&1 | unbar | tee "$OUT/predict.txt"; fi
mkdir -p /tmp/real && cp .gpu/real/dataset.parquet .gpu/real/lm_corpus.parquet /tmp/real/
end=$((SECONDS + ${REAL_S:-330}))
real_eval() {  # $1: --out folder, $2: stages, $3: loso sources (empty: all), $4: log
    [ $((end - SECONDS)) -gt 5 ] || return 0
    timeout $((end - SECONDS)) python3 bench/real_data_eval.py --out "$1" --size "${SIZE:-full}" --lm-corpus all --lm-bs 128 \
        --lm-epochs "${LM_EPOCHS:-12}" --lm-clip 0.25 --lm-minutes "${LM_MIN:-3}" --epochs "${EPOCHS:-3,3,3,10}" \
        --loso-sources "$3" --stages "$2" 2>&1 | unbar >> "$4"
}
sources=${LOSO_SOURCES:-$(python3 -c "import pandas as pd; print(','.join(sorted(pd.read_parquet('/tmp/real/dataset.parquet')['source'].unique())))")}
first=1; rm -rf /tmp/real_logs; mkdir -p /tmp/real_logs; tested=""
for stages in $STAGES; do
    for s in ${stages//,/ }; do case $s in model|linear|ensemble|nolm) tested="$tested${tested:+,}$s";; esac; done
    if [ "${PARALLEL:-0}" = 1 ] && [ $first = 0 ]; then
        if [ "$stages" = loso ]; then
            for src in ${sources//,/ }; do  # each held-out mailbox in a folder of its own, on the same LM
                mkdir -p "/tmp/real_$src" && cp /tmp/real/dataset.parquet "/tmp/real_$src/" && ln -sfn /tmp/real/lm "/tmp/real_$src/lm"
                OMP_NUM_THREADS=2 real_eval "/tmp/real_$src" loso "$src" "/tmp/real_logs/loso_$src.log" &
            done
        else OMP_NUM_THREADS=2 real_eval /tmp/real "$stages" "$sources" "/tmp/real_logs/${stages//,/_}.log" & fi
    else real_eval /tmp/real "$stages" "$sources" "$OUT/real.log"; fi
    first=0
done
wait
for log in /tmp/real_logs/*.log; do [ -f "$log" ] && { echo "== $(basename "$log" .log)"; cat "$log"; } >> "$OUT/real.log"; done
if [ "${PARALLEL:-0}" = 1 ] && [ -n "$tested" ]; then  # one test-split table over the passes' models (each pass reported only its own)
    timeout 120 python3 bench/real_data_eval.py --out /tmp/real --size "${SIZE:-full}" --epochs "${EPOCHS:-3,3,3,10}" --stages "$tested" 2>&1 | unbar >> "$OUT/real.log"
fi
tail -n 40 "$OUT/real.log"
if [ "${PARALLEL:-0}" = 1 ]; then  # the held-out mailboxes' rows in one loso.json, in LOSO_SOURCES order
    python3 - "$sources" <<'PY'
import json, sys
from pathlib import Path
rows = [r for s in sys.argv[1].split(',') for p in [Path(f'/tmp/real_{s}/loso.json')] if p.exists() for r in json.loads(p.read_text())]
if rows: Path('/tmp/real/loso.json').write_text(json.dumps(rows, indent=1))
for r in rows: print(r['source'], r['n'], {k: round(v, 3) for k, v in r.items() if k.endswith('job_app_acc') and '_sure_' not in k}, f"{r['seconds']} s")
PY
fi
cp /tmp/real/results.md /tmp/real/loso.json /tmp/real/lm/lm.json /tmp/real/lm/perplexity.png "$OUT/" 2>/dev/null
# the test-split models' eval.json in one file: the device machine returns at most 8 files, and one per model pushed
# real.log and results.md out (stop 27)
python3 - "$OUT" /tmp/real/eval_*/eval.json <<'PY'
import json, sys
from pathlib import Path
evals = {Path(p).parent.name: json.loads(Path(p).read_text()) for p in sys.argv[2:] if Path(p).exists()}
if evals: (Path(sys.argv[1])/'evals.json').write_text(json.dumps(evals, indent=1))
PY
