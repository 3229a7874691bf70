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
#                                 LOSO_SOURCES: the held-out mailboxes of the loso stage, in order (default all)
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if [ -f .whl/devsite.tgz ]; then mkdir -p /tmp/site && tar xzf .whl/devsite.tgz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD; fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
unbar() { tr '\r' '\n' | grep -v -E '^\s*$|\|[-█]*\| *[0-9.]+%|^█?Epoch [0-9]+/[0-9]+ :'; }  # drop progress-bar frames
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "${PREDICT_S:-150}" -gt 0 ]; then timeout "${PREDICT_S:-150}" python3 bench/bench_predict.py --gpu 2>&1 | unbar | tee "$OUT/predict.txt"; fi
mkdir -p /tmp/real && cp .gpu/real/dataset.parquet .gpu/real/lm_corpus.parquet /tmp/real/
end=$((SECONDS + ${REAL_S:-330}))
for stages in ${STAGES:-lm,model,linear,ensemble,nolm}; do
    [ $((end - SECONDS)) -gt 5 ] || break
    timeout $((end - SECONDS)) python3 bench/real_data_eval.py --out /tmp/real --size full --lm-corpus all --lm-bs 128 --lm-epochs "${LM_EPOCHS:-12}" --lm-clip 0.25 \
        --lm-minutes "${LM_MIN:-3}" --epochs "${EPOCHS:-3,3,3,10}" --loso-sources "${LOSO_SOURCES:-}" --stages "$stages" 2>&1 | unbar >> "$OUT/real.log"
done
cp /tmp/real/results.md /tmp/real/loso.json /tmp/real/lm/lm.json /tmp/real/lm/perplexity.png "$OUT/" 2>/dev/null
cp /tmp/real/eval_model/eval.json "$OUT/eval_model.json" 2>/dev/null
tail -n 40 "$OUT/real.log"
