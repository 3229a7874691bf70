"""Inference speed of the full-size AWD-LSTM classifier: fastai's `learn.predict` and `get_preds` against
`jobmail.predict.Predictor` (fp32 and int8), and Dask (LocalCluster, 2 worker processes) against in-process.

One run, one machine, one model: a fastai `text_classifier_learner` with the full `awd_lstm_clas_config`
(emb 400, hidden 1152, 3 layers) and random weights (speed does not depend on the values), written as a jobmail
model directory with one head (job_app), so every path runs exactly one classifier per email. Emails are ~300
tokens of plain words. The fp32 FLOP bound is the CPU's measured matmul peak divided by the LSTM's FLOPs per
email (2 * 4h(in+h) per token and layer; the embedding and head are negligible).

    nice python -u bench/bench_predict.py                 # defaults: 10 learn.predict, 64 emails elsewhere, 128 on Dask
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
from jobmail.classifier import classifier_learner, classifier_config
from jobmail.text import model_input
from jobmail.predict import Predictor, score_records, results_table, PREP_CHUNK

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

def full_model(dest:Path, mails):
    "A fastai learner with the full AWD-LSTM and random weights, and its jobmail model directory (job_app only)."
    texts = [model_input(m['subject'], m['sender'], m['text']) for m in mails]
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
    "emails/s of `fn()` scoring `n` emails (after one warm-up call on a few)."
    t = time.perf_counter(); out = fn(); return n / (time.perf_counter() - t), out

def peak_gflops(size=4096, reps=5):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t = time.perf_counter()
    for _ in range(reps): a @ b
    return 2 * size**3 * reps / (time.perf_counter() - t) / 1e9

def gpu_bench(args, model:Path, learn, flops:float):
    "learn.predict, get_preds and the Predictor's fp32, fp16 and bf16 on the GPU, as emails/s and ratios."
    mails = emails(args.gpu_n, seed=1)
    texts = [model_input(m['subject'], m['sender'], m['text']) for m in mails]
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

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n', type=int, default=64, help='emails for get_preds and the predictor')
    ap.add_argument('--n-single', type=int, default=10, help='emails for learn.predict (one at a time)')
    ap.add_argument('--dask-n', type=int, default=128, help='emails for the Dask comparison')
    ap.add_argument('--gpu', action='store_true', help='benchmark on the CUDA GPU instead of the CPU')
    ap.add_argument('--gpu-n', type=int, default=8192, help='emails for the GPU run')
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)); torch.set_num_threads(cores)
    tmp = Path(tempfile.mkdtemp())
    mails = emails(max(args.n, args.dask_n, 64))
    with contextlib.redirect_stdout(io.StringIO()): learn, texts = full_model(tmp/'model', mails[:64])
    if args.gpu:
        cfg = json.loads((tmp/'model'/'job_app.json').read_text())['config']
        n_tok = np.mean([len(x) for x in Predictor.from_dir(tmp/'model', backend='fp32', device='cpu', token_cap=10**6)._encode(texts)])
        return gpu_bench(args, tmp/'model', learn, lstm_flops(cfg, n_tok))
    nocap = dict(token_cap=10**6)  # the same tokens as fastai reads; the default cap would only make the predictor faster
    fp32, int8 = Predictor.from_dir(tmp/'model', backend='fp32', **nocap), Predictor.from_dir(tmp/'model', backend='int8', **nocap)
    n_tok = np.mean([len(x) for x in fp32._encode([model_input(m['subject'], m['sender'], m['text']) for m in mails[:args.n]])])
    flops = lstm_flops(json.loads((tmp/'model'/'job_app.json').read_text())['config'], n_tok)
    peak = peak_gflops()
    print(f"{cores} cores; torch {torch.__version__}; emails of {n_tok:.0f} tokens; {flops/1e9:.2f} GFLOP per email (LSTM); "
          f"measured fp32 matmul peak {peak:.0f} GFLOP/s -> FLOP bound {peak*1e9/flops:.1f} emails/s")

    test_texts = [model_input(m['subject'], m['sender'], m['text']) for m in mails[:args.n]]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.predict(test_texts[0])
        r_single, _ = rate(lambda: [learn.predict(t) for t in test_texts[:args.n_single]], args.n_single)
        dl = learn.dls.test_dl(pd.DataFrame({'text': test_texts}), bs=64)
        r_get, (pg, _) = rate(lambda: learn.get_preds(dl=dl), args.n)
    fp32.predict(mails[:4]); int8.predict(mails[:4])
    r32, o32 = rate(lambda: fp32.predict(mails[:args.n]), args.n)
    r8, o8 = rate(lambda: int8.predict(mails[:args.n]), args.n)
    capped = Predictor.from_dir(tmp/'model', backend='int8')  # the product's default: the first DEFAULT_TOKEN_CAP tokens
    capped.predict(mails[:4])
    r8c, o8c = rate(lambda: capped.predict(mails[:args.n]), args.n)
    one = dict(nocap, workers=cores)  # one torch thread: on a shared VM, OpenMP threads that wait on a busy core stall every time step
    fp32_1, int8_1 = Predictor.from_dir(tmp/'model', backend='fp32', **one), Predictor.from_dir(tmp/'model', backend='int8', **one)
    fp32_1.predict(mails[:4]); int8_1.predict(mails[:4])
    r32_1, _ = rate(lambda: fp32_1.predict(mails[:args.n]), args.n)
    r8_1, _ = rate(lambda: int8_1.predict(mails[:args.n]), args.n)
    torch.set_num_threads(cores)
    p32, p8 = np.array([r['job_app_prob'] for r in o32]), np.array([r['job_app_prob'] for r in o8])
    rows = [('learn.predict (one at a time)', r_single), ('get_preds (test DataLoader, bs 64)', r_get),
            ('Predictor fp32', r32), ('Predictor int8 (CPU default)', r8), (f'Predictor int8, token cap {capped.token_cap}', r8c),
            ('Predictor fp32, 1 thread', r32_1), ('Predictor int8, 1 thread', r8_1)]
    print(f"\n{'path':<38}{'emails/s':>10}{'x learn.predict':>17}{'x get_preds':>13}")
    for name, r in rows: print(f"{name:<38}{r:>10.2f}{r/r_single:>17.2f}{r/r_get:>13.2f}")
    print(f"\nfp32 runs at {r32*flops/1e9:.0f} GFLOP/s = {r32*flops/1e9/peak:.0%} of the measured {cores}-core peak; "
          f"on 1 thread {r32_1*flops/1e9:.0f} GFLOP/s = {r32_1*flops/1e9/(peak/cores):.0%} of one core's share")
    p8c = np.array([r['job_app_prob'] for r in o8c])
    print(f"same labels: fp32 vs get_preds {np.mean((p32 > .5) == (pg[:, 1].numpy() > .5)):.1%}, int8 vs fp32 {np.mean((p8 > .5) == (p32 > .5)):.1%}, "
          f"int8 capped vs fp32 {np.mean((p8c > .5) == (p32 > .5)):.1%} (random weights and random words: the cap's effect on real mail is in 09_predict)")

    # Dask: 2 worker processes with cores // 2 torch threads each, against in-process on the same chunks
    from distributed import Client, LocalCluster
    chunk = 32
    chunks = [mails[i:i + chunk] for i in range(0, args.dask_n, chunk)]
    model = str(tmp/'model')
    score_records(model, 'int8', 1, chunks[0][:2])  # load the in-process predictor before timing
    r_in, inproc = rate(lambda: pd.concat([score_records(model, 'int8', 1, c) for c in chunks], ignore_index=True), args.dask_n)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__('jobmail.predict').predict.cached_predictor(model, 'int8', 2))  # load once per worker
        t0 = time.perf_counter()
        futs = client.map(score_records, [model]*len(chunks), ['int8']*len(chunks), [2]*len(chunks), chunks, pure=False)
        dask_out = pd.concat(client.gather(futs), ignore_index=True)
        r_dask = args.dask_n / (time.perf_counter() - t0)
    torch.set_num_threads(cores)
    same = inproc.equals(dask_out)
    print(f"\nDask LocalCluster (2 workers x {cores//2} threads): {r_dask:.2f} emails/s; in process ({cores} threads): {r_in:.2f} emails/s;"
          f" ratio {r_dask/r_in:.2f}; output identical: {same}")

if __name__ == '__main__': main()
