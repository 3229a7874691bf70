"""Inference speed of the full-size AWD-LSTM classifier: fastai's `learn.predict` and `get_preds` against
`jobmail.predict.Predictor` (fp32 and int8), and Dask (LocalCluster, 2 worker processes) against in-process.

One run, one machine, one model: a fastai `text_classifier_learner` with the full `awd_lstm_clas_config`
(emb 400, hidden 1152, 3 layers) and random weights (speed does not depend on the values), written as a jobmail
model directory with one head (job_app), so every path runs exactly one classifier per email. Emails are ~300
tokens of plain words. On the CPU every path is timed in `--rounds` interleaved rounds (a busy spell on the
machine hits them alike) and the best round is reported. The fp32 FLOP bound is the CPU's measured matmul peak
(the fastest of several 4096 x 4096 products after a warm-up, on all threads and on one) divided by the LSTM's
FLOPs per email (2 * 4h(in+h) per token and layer; the embedding and head are negligible).

    nice python -u bench/bench_predict.py                 # defaults: 10 learn.predict, 64 emails elsewhere, 128 on Dask, 3 rounds
                                                          # (every path reads all tokens, except the row with the default token cap)
    nice python -u bench/bench_predict.py --n 256 --dask-n 512
    python -u bench/bench_predict.py --gpu                  # the same paths on a CUDA GPU: fp32, fp16, bf16 (8,192 emails)

On a shared machine the timings swing with the load: compare ratios from one run, and rerun when it is idle.
"""
import argparse, contextlib, io, json, os, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from safetensors.torch import save_file

warnings.filterwarnings('ignore')
from fastai.text.all import *  # noqa: E402  (fastai.text only; never fastai.vision)
from argtypes import positive_int
from jobmail.classifier import classifier_learner, classifier_config
from jobmail.text import model_input
from jobmail.predict import Predictor, score_records, PREP_CHUNK

WORDS = ("thank you for applying to the position we have received your application and our team will review it "
         "carefully unfortunately after consideration decided not move forward with other candidates whose "
         "experience more closely matches needs this role interview schedule please select time that works best "
         "assessment coding test complete within days offer letter attached salary benefits start date newsletter "
         "invoice shipping order account security alert weekly digest jobs you may like apply today").split()

def emails(n, words=280, seed=0):
    "`n` emails of `words` random words (about 300 tokens with the subject and sender tokens)."
    rng = np.random.default_rng(seed)
    return [dict(id=f'e{i}', subject='Your application', sender='Jobs <no-reply@acme.com>',
                 text=' '.join(rng.choice(WORDS, words))) for i in range(n)]

def model_texts(mails) -> list[str]:
    "What the classifier reads of each email."
    return [model_input(m['subject'], m['sender'], m['text']) for m in mails]

def full_model(dest:Path, mails):
    "A fastai learner with the full AWD-LSTM and random weights, and its jobmail model directory (job_app only)."
    texts = model_texts(mails)
    table = pd.DataFrame({'text': texts, 'y': ['True', 'False'] * (len(texts) // 2), 'is_valid': [i % 4 == 0 for i in range(len(texts))]})
    config = classifier_config('full')
    learn = classifier_learner(table, ['False', 'True'], None, config, bs=64)
    learn.model.eval()
    for bn in [m for m in learn.model.modules() if isinstance(m, nn.BatchNorm1d)]:
        bn.running_mean.uniform_(-.1, .1); bn.running_var.uniform_(.5, 2)
    dest.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().clone().contiguous() for k, v in learn.model.state_dict().items()}, str(dest/'job_app.safetensors'))
    enc = learn.model[0]
    (dest/'job_app.json').write_text(json.dumps(dict(arch='AWD_LSTM', config=config, n_out=2, classes=['False', 'True'],
                                                     bptt=enc.bptt, max_len=enc.max_len, lin_ftrs=[50], ps=[0.1])))
    (dest/'vocab.json').write_text(json.dumps(list(learn.dls.vocab[0])))
    (dest/'model.json').write_text(json.dumps({'format': 'jobmail-model/1', 'type': 'ulmfit', 'heads': ['job_app'],
        'text_builder': 'jobmail.text.model_input', 'tokenizer': 'jobmail.text.tokenize_texts', 'max_tokens': enc.max_len}))
    return learn, texts

def lstm_flops(cfg:dict, n_tok:float) -> float:
    "FLOPs of the full AWD-LSTM's three layers over `n_tok` tokens (2 * 4h(in+h) per token and layer)."
    sizes = [(cfg['emb_sz'], cfg['n_hid']), (cfg['n_hid'], cfg['n_hid']), (cfg['n_hid'], cfg['emb_sz'])]
    return 2 * sum(4 * h * (i + h) for i, h in sizes) * n_tok

def rate(fn, n):
    "emails/s of one call of `fn()` scoring `n` emails, and its output (warm it up beforehand)."
    t = time.perf_counter(); out = fn(); return n / (time.perf_counter() - t), out

def best_rates(paths:dict, rounds:int) -> tuple[dict, dict]:
    "Best emails/s of each path (name -> (emails, torch threads, fn scoring them)) over `rounds` interleaved rounds, and its last output."
    best, outputs = dict.fromkeys(paths, 0.0), {}
    for _ in range(rounds):  # interleaved, so a busy spell on a shared machine hits every path alike
        for name, (n, threads, fn) in paths.items():
            torch.set_num_threads(threads)
            r, outputs[name] = rate(fn, n)
            best[name] = max(best[name], r)
    return best, outputs

def peak_gflops(threads:int, size=4096, repeats=5):
    "fp32 GFLOP/s of the fastest of `repeats` `size` x `size` matmuls on `threads` torch threads, after a warm-up one: a ceiling, not an average."
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    fastest = float('inf')
    for _ in range(repeats):
        t = time.perf_counter(); a @ b; fastest = min(fastest, time.perf_counter() - t)
    return 2 * size**3 / fastest / 1e9

def against_peak(gflops:float, peak:float, threads:str) -> str:
    "`gflops` as a share of the measured `peak`; above it, that peak was no ceiling (measured in a busier moment) and no share is given."
    if gflops <= peak: return f"{gflops:.0f} GFLOP/s = {gflops/peak:.0%} of the measured {threads} peak"
    return f"{gflops:.0f} GFLOP/s, above the measured {threads} peak of {peak:.0f} (no ceiling then, so no percentage)"

def gpu_bench(args, model:Path, learn, flops:float):
    "learn.predict, get_preds and the Predictor's fp32, fp16 and bf16 on the GPU, as emails/s and ratios."
    mails = emails(args.gpu_n, seed=1)
    texts = model_texts(mails)
    learn.model.cuda()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.predict(texts[0])
        r_single, _ = rate(lambda: [learn.predict(t) for t in texts[:args.n_single]], args.n_single)
        dl = learn.dls.test_dl(pd.DataFrame({'text': texts}), bs=512)  # tokenized here, outside the timing
        learn.get_preds(dl=learn.dls.test_dl(pd.DataFrame({'text': texts[:512]}), bs=512))
        r_get, (pg, _) = rate(lambda: learn.get_preds(dl=dl), args.gpu_n)
    pg = pg[:, 1].float().numpy()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {len(os.sched_getaffinity(0))} CPU cores; {args.gpu_n} emails")
    print(f"\n{'path':<58}{'emails/s':>10}{'x learn.predict':>17}{'x get_preds':>13}{'labels = get_preds':>20}{'max |dp|':>10}")
    print(f"{'learn.predict (one at a time)':<58}{r_single:>10.1f}{1:>17.2f}{r_single/r_get:>13.2f}")
    print(f"{'get_preds (test DataLoader, bs 512, tokenized beforehand)':<58}{r_get:>10.1f}{r_get/r_single:>17.2f}{1:>13.2f}")
    for backend, procs in (('fp32', None), ('fp16', None), ('bf16', None), ('fp16', 1)):
        p = Predictor.from_dir(model, backend=backend, device='cuda', batch_size=512, batch_tokens=512*320, token_cap=10**6, prep_procs=procs)
        p.predict(mails[:2 * PREP_CHUNK + 1]); torch.cuda.synchronize()  # warm-up: kernels and the preparation pool
        r, out = rate(lambda: p.predict(mails), args.gpu_n)
        if backend == 'fp16' and procs is None:  # the GPU's share: the forward pass alone on prepared inputs
            ids = p._prepare(mails)
            torch.cuda.synchronize(); t = time.perf_counter(); p._forward(p.models['job_app'], ids); torch.cuda.synchronize()
            r_fwd = args.gpu_n / (time.perf_counter() - t)
        p.close()
        prob = np.array([o['job_app_prob'] for o in out])
        name = f"Predictor {backend}, " + ('in-process preparation' if p.prep_procs == 1 else f'{p.prep_procs} preparation processes')
        print(f"{name:<58}{r:>10.1f}{r/r_single:>17.2f}{r/r_get:>13.2f}{np.mean((prob > .5) == (pg > .5)):>20.1%}{np.abs(prob - pg).max():>10.4f}")
    print(f"\nfp16 forward pass alone (inputs prepared): {r_fwd:.0f} emails/s = {r_fwd*flops/1e12:.1f} TFLOP/s of LSTM work")

def cpu_bench(args, model:Path, learn, mails, cores:int):
    "learn.predict, get_preds and the Predictor's variants on the CPU, best of `args.rounds` interleaved rounds; then Dask against in-process."
    nocap = dict(token_cap=10**6)  # the same tokens as fastai reads; the default cap would only make the predictor faster
    one = dict(nocap, workers=cores)  # one torch thread: on a shared VM, OpenMP threads that wait on a busy core stall every time step
    fp32, int8 = Predictor.from_dir(model, backend='fp32', **nocap), Predictor.from_dir(model, backend='int8', **nocap)
    capped = Predictor.from_dir(model, backend='int8')  # the product's default: the first DEFAULT_TOKEN_CAP tokens
    fp32_1, int8_1 = Predictor.from_dir(model, backend='fp32', **one), Predictor.from_dir(model, backend='int8', **one)
    test_texts, single_texts = model_texts(mails[:args.n]), model_texts(mails[:args.n_single])
    n_tok = np.mean([len(x) for x in fp32._encode(test_texts)])
    flops = lstm_flops(json.loads((model/'job_app.json').read_text())['config'], n_tok)
    peak, peak_1 = peak_gflops(cores), peak_gflops(1)
    print(f"{cores} cores; torch {torch.__version__}; emails of {n_tok:.0f} tokens; {flops/1e9:.2f} GFLOP per email (LSTM); "
          f"measured fp32 matmul peak {peak:.0f} GFLOP/s ({peak_1:.0f} on 1 thread) -> FLOP bound {peak*1e9/flops:.1f} emails/s; "
          f"best of {args.rounds} interleaved rounds")

    dl = learn.dls.test_dl(pd.DataFrame({'text': test_texts}), bs=64)
    predictors = {'Predictor fp32': fp32, 'Predictor int8 (CPU default)': int8, f'Predictor int8, token cap {capped.token_cap}': capped,
                  'Predictor fp32, 1 thread': fp32_1, 'Predictor int8, 1 thread': int8_1}
    paths = {'learn.predict (one at a time)': (args.n_single, cores, lambda: [learn.predict(t) for t in single_texts]),
             'get_preds (test DataLoader, bs 64)': (args.n, cores, lambda: learn.get_preds(dl=dl)[0]),
             **{name: (args.n, p.threads, lambda p=p: p.predict(mails[:args.n])) for name, p in predictors.items()}}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.predict(test_texts[0]); learn.get_preds(dl=learn.dls.test_dl(pd.DataFrame({'text': test_texts[:4]})))
        for p in predictors.values(): torch.set_num_threads(p.threads); p.predict(mails[:4])
        rates, outputs = best_rates(paths, args.rounds)
    r_single, r_get = rates['learn.predict (one at a time)'], rates['get_preds (test DataLoader, bs 64)']
    print(f"\n{'path':<38}{'emails/s':>10}{'x learn.predict':>17}{'x get_preds':>13}")
    for name, r in rates.items(): print(f"{name:<38}{r:>10.2f}{r/r_single:>17.2f}{r/r_get:>13.2f}")
    gf, gf_1 = rates['Predictor fp32'] * flops / 1e9, rates['Predictor fp32, 1 thread'] * flops / 1e9
    print(f"\nfp32 runs at {against_peak(gf, peak, f'{cores}-thread')}; on 1 thread at {against_peak(gf_1, peak_1, '1-thread')}")
    job_prob = {name: np.array([r['job_app_prob'] for r in outputs[name]]) for name in predictors}
    p32, p8, p8c = job_prob['Predictor fp32'], job_prob['Predictor int8 (CPU default)'], job_prob[f'Predictor int8, token cap {capped.token_cap}']
    pg = outputs['get_preds (test DataLoader, bs 64)'][:, 1].numpy()
    print(f"same labels: fp32 vs get_preds {np.mean((p32 > .5) == (pg > .5)):.1%}, int8 vs fp32 {np.mean((p8 > .5) == (p32 > .5)):.1%}, "
          f"int8 capped vs fp32 {np.mean((p8c > .5) == (p32 > .5)):.1%} (random weights and random words: the cap's effect on real mail is in 09_predict)")

    # Dask: 2 worker processes with cores // 2 torch threads each, against in-process on the same chunks
    from distributed import Client, LocalCluster
    chunk = 32
    chunks = [mails[i:min(i + chunk, args.dask_n)] for i in range(0, args.dask_n, chunk)]
    model_dir = str(model)
    score_records(model_dir, 'int8', 1, chunks[0][:2])  # load the in-process predictor and run it once before timing
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(score_records, model_dir, 'int8', 2, chunks[0][:2])  # the same on each worker: load, then one real prediction
        def in_process(): return pd.concat([score_records(model_dir, 'int8', 1, c) for c in chunks], ignore_index=True)
        def on_dask():
            futs = client.map(score_records, [model_dir]*len(chunks), ['int8']*len(chunks), [2]*len(chunks), chunks, pure=False)
            return pd.concat(client.gather(futs), ignore_index=True)
        rates, outputs = best_rates({'in process': (args.dask_n, cores, in_process), 'dask': (args.dask_n, cores, on_dask)}, args.rounds)
    r_dask, r_in = rates['dask'], rates['in process']
    print(f"\nDask LocalCluster (2 workers x {cores//2} threads): {r_dask:.2f} emails/s; in process ({cores} threads): {r_in:.2f} emails/s;"
          f" ratio {r_dask/r_in:.2f}; output identical: {outputs['in process'].equals(outputs['dask'])}  ({args.dask_n} emails, best of {args.rounds})")

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n', type=positive_int, default=64, help='emails for get_preds and the predictor')
    ap.add_argument('--n-single', type=positive_int, default=10, help='emails for learn.predict (one at a time)')
    ap.add_argument('--dask-n', type=positive_int, default=128, help='emails for the Dask comparison')
    ap.add_argument('--rounds', type=positive_int, default=3, help='interleaved rounds on the CPU (the best of each path is reported)')
    ap.add_argument('--gpu', action='store_true', help='benchmark on the CUDA GPU instead of the CPU')
    ap.add_argument('--gpu-n', type=positive_int, default=8192, help='emails for the GPU run')
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)); torch.set_num_threads(cores)
    mails = emails(max(args.n, args.n_single, args.dask_n, 64))
    with tempfile.TemporaryDirectory(prefix='bench_predict.') as tmp:
        model = Path(tmp)/'model'
        with contextlib.redirect_stdout(io.StringIO()): learn, texts = full_model(model, mails[:64])
        if not args.gpu: return cpu_bench(args, model, learn, mails, cores)
        cfg = json.loads((model/'job_app.json').read_text())['config']
        n_tok = np.mean([len(x) for x in Predictor.from_dir(model, backend='fp32', device='cpu', token_cap=10**6)._encode(texts)])
        gpu_bench(args, model, learn, lstm_flops(cfg, n_tok))

if __name__ == '__main__': main()
