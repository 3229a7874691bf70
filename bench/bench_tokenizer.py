"""Emails per second on one core: fastai's default tokenizer vs jobmail's `FastTokenizer`, same texts, same run.

Usage: python bench/bench_tokenizer.py [--n-per-source 300] [--repeats 3]
The texts are `model_input`s of real emails from the shared data folder (what training and serving tokenize);
without that folder it says so and exits 0.
"""
import argparse, sys, time

from fastai.text.core import tokenize_texts as fastai_tokenize_texts

from argtypes import positive_int
from jobmail.text import FastTokenizer, model_inputs, real_text_sample, tokenize_texts


def best_time(f, repeats):
    "The fastest of `repeats` runs of `f`, in seconds, and its last result."
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter(); res = f(); best = min(best, time.perf_counter() - t)
    return best, res


def main(n_per_source=300, repeats=3):
    sample = real_text_sample(n_per_source)
    if not len(sample): sys.exit(0)  # `shared_data` has printed what it did not find
    texts = model_inputs(sample)
    n = len(texts)
    t_fastai, theirs = best_time(lambda: [list(t) for t in fastai_tokenize_texts(texts, n_workers=0)], repeats)
    # a new FastTokenizer each run: the cache starts empty, as in a fresh process
    t_cold, ours = best_time(lambda: tokenize_texts(texts, tok=FastTokenizer()), repeats)
    warm = FastTokenizer(); tokenize_texts(texts, tok=warm)
    t_warm, _ = best_time(lambda: tokenize_texts(texts, tok=warm), repeats)
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"{n} real emails ({', '.join(f'{k} {v}' for k, v in sample.source.value_counts().items())}), one core, best of {repeats}")
    print(f"fastai default (spaCy + rules): {n/t_fastai:8.0f} emails/s")
    print(f"FastTokenizer, empty cache:     {n/t_cold:8.0f} emails/s  ratio {t_fastai/t_cold:.1f}x")
    print(f"FastTokenizer, warm cache:      {n/t_warm:8.0f} emails/s  ratio {t_fastai/t_warm:.1f}x")
    print(f"identical tokens: {same}/{n}")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n-per-source', type=positive_int, default=300)
    p.add_argument('--repeats', type=positive_int, default=3)
    a = p.parse_args()
    main(a.n_per_source, a.repeats)
