"""Benchmark `jobmail.dataset.build_dataset` (group, cap, split, balance) at 75,000 and 750,000 emails.

The corpus replicates and perturbs real email: the hand-labeled job emails and the Enron-Spam corpus from the
shared data folder, each base email compiled as a template and filled `COPIES` times with other employers,
roles, names, numbers, months, links and addresses (`jobmail.dataset.fill_template`). Enron-Spam has no
senders, so each of its emails gets one of 500 invented sender domains. Bodies are cut to 4,000 characters
(the fingerprint reads 2,000). Fingerprinting uses both cores (`workers=2`). Each size runs in a fresh process so its peak memory is its own: the main
process's ru_maxrss (corpus generation included) and the sampled total of main process + workers while
`build_dataset` runs. CPU seconds include the workers'.

    nice python bench/bench_dataset.py                       # 75k then 750k
    nice python bench/bench_dataset.py --sizes 75000         # just the small one
"""
import argparse, json, os, re, resource, subprocess, sys, threading, time, warnings
import numpy as np, pandas as pd
from argtypes import positive_int, positive_ints
from jobmail.core import shared_data
from jobmail.dataset import build_dataset, common_words, compile_template, fill_template, DatasetWarning

COPIES, MAX_CHARS = 22, 4000

def base_emails():
    "The real emails the corpus is made of, with labels, or None when the shared data is absent."
    labeled, enron = shared_data('labeled/job_emails.jsonl'), shared_data('corpus/enron_spam.jsonl.gz')
    if not (labeled and enron): return None
    lab = pd.read_json(labeled, lines=True, dtype=False).rename(columns={'body': 'text'})
    ens = pd.read_json(enron, lines=True, dtype=False)
    first, _, rest = ens.text.str.partition('\n').values.T
    is_subject = pd.Series(first).str.startswith('subject:')
    rng = np.random.default_rng(0)
    ens = pd.DataFrame({'subject': np.where(is_subject, pd.Series(first).str[8:].str.strip(), ''),
                        'text': np.where(is_subject, rest, ens.text), 'source': 'enron-' + ens.label,
                        'sender': [f"user{i}@org{d}.example.com" for i, d in enumerate(rng.integers(0, 500, len(ens)))],
                        'job_app': False, 'status': ''})
    base = pd.concat([lab[['subject', 'text', 'source', 'sender', 'job_app', 'status']], ens], ignore_index=True)
    return base.assign(text=base.text.str[:MAX_CHARS])

def corpus(n, seed=0):
    "`n` emails: `n // COPIES` base emails (sampled), each with COPIES fillings."
    base = base_emails()
    if base is None: return None
    rng = np.random.default_rng(seed)
    base = base.iloc[rng.permutation(len(base))[:-(-n // COPIES)]].reset_index(drop=True)
    common = common_words(pd.concat([base.subject, base.text]))
    blocks = []  # built a thousand base emails at a time, so only one block's Python strings are alive
    for lo in range(0, len(base), 1000):
        cols = {k: [] for k in ('subject', 'text', 'sender', 'source', 'job_app', 'status')}
        for e in base.iloc[lo:lo+1000].itertuples():
            subject, text = compile_template(e.subject, common), compile_template(e.text, common)
            for _ in range(COPIES):
                spans = {}
                cols['subject'].append(fill_template(subject, rng, spans)); cols['text'].append(fill_template(text, rng, spans))
            for k in ('sender', 'source', 'job_app', 'status'): cols[k] += [getattr(e, k)] * COPIES
        blocks.append(pd.DataFrame(cols))
    df = pd.concat(blocks, ignore_index=True).iloc[:n]
    df.insert(0, 'id', [f"b{i}" for i in range(len(df))])
    return df

def rss_tree_gb():
    "Resident memory of this process and its children (the fingerprint workers), from /proc, in GB."
    me = os.getpid()
    pids = [me] + [int(p) for t in os.listdir(f'/proc/{me}/task') for p in open(f'/proc/{me}/task/{t}/children').read().split()]
    kb = 0
    for pid in pids:
        try: kb += int(re.search(r'VmRSS:\s+(\d+)', open(f'/proc/{pid}/status').read()).group(1))
        except (OSError, AttributeError): pass  # a worker that just exited
    return kb / 2**20

class PeakSampler(threading.Thread):
    "Samples `rss_tree_gb` every 0.2 s until stopped; `.peak` is the largest total seen."
    def __init__(self): super().__init__(daemon=True); self.peak, self.done = 0.0, threading.Event()
    def run(self):
        while not self.done.wait(0.2): self.peak = max(self.peak, rss_tree_gb())

def run_one(n):
    t0 = time.time()
    df = corpus(n)
    if df is None: return print(json.dumps(dict(n=n, skipped=True)))
    gen = time.time() - t0
    sampler = PeakSampler(); sampler.start()
    t0, c0 = time.time(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DatasetWarning)
        out, report = build_dataset(df, seed=42, workers=2, progress=False)
    seconds = time.time() - t0
    sampler.done.set(); sampler.join()
    cpu = time.process_time() - c0 + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(dict(n=len(df), seconds=seconds, cpu_seconds=cpu, generate_seconds=gen, peak_gb=peak, tree_peak_gb=max(sampler.peak, rss_tree_gb()),
                          groups=report['groups']['before_cap'], rows=report['rows'],
                          shares=report['job_app_share'])))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', type=positive_ints, default='75000,750000', help='comma-separated corpus sizes, each run in a fresh process')
    p.add_argument('--one', type=positive_int, help='run one size in this process and print its JSON (what each fresh process does)')
    args = p.parse_args()
    if args.one is not None: return run_one(args.one)
    results = []
    for n in args.sizes:
        child = subprocess.run([sys.executable, __file__, '--one', str(n)], stdout=subprocess.PIPE, text=True)  # its stderr passes through
        if child.returncode: sys.exit(f"the {n:,}-email run failed (exit code {child.returncode}; its error is above)")
        r = json.loads(child.stdout.strip().splitlines()[-1])
        if r.get('skipped'): return print("skipping: shared data not found")
        results.append(r)
        print(f"{r['n']:>8,} emails: {r['seconds']:7.1f} s wall ({r['cpu_seconds']:.1f} s CPU), {r['n'] / r['seconds']:8,.0f} emails/s, "
              f"peak RSS {r['peak_gb']:.2f} GB main process (corpus generation included), {r['tree_peak_gb']:.2f} GB main + workers "
              f"while building (sampled), generating the corpus took {r['generate_seconds']:.0f} s, "
              f"{r['groups']:,} groups -> {r['rows']:,} rows, job_app share {r['shares']}", flush=True)
    if len(results) > 1:
        small, big = results[0], results[-1]
        print(f"scaling {small['n']:,} -> {big['n']:,} ({big['n'] / small['n']:.0f}x emails): "
              f"{big['seconds'] / small['seconds']:.1f}x wall time, {big['cpu_seconds'] / small['cpu_seconds']:.1f}x CPU time "
              f"(per-email cost {big['seconds'] / big['n'] / (small['seconds'] / small['n']):.2f}x of the small run's)")

if __name__ == '__main__': main()
