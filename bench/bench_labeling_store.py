"""Label store: durable appends per second, SQLite WAL (jobmail.labeling.LabelStore) against the baseline of an
append-only JSONL file with flush + fsync per event (the same guarantee: on disk when the call returns), and the
time to derive current labels and the review state as the store grows. Both measured in this run.

    python bench/bench_labeling_store.py [--events 2000] [--big 50000]
"""
import argparse, json, os, random, tempfile, time
from pathlib import Path
from argtypes import int_at_least, positive_int
from jobmail.core import STATUSES
from jobmail.labeling import LabelStore

def jsonl_appends(path:Path, events:list[dict]) -> float:
    "Seconds to append `events` to a JSONL file, fsync after each (the baseline)."
    t0 = time.perf_counter()
    with open(path, 'a') as f:
        for e in events:
            f.write(json.dumps(e) + '\n'); f.flush(); os.fsync(f.fileno())
    return time.perf_counter() - t0

def store_appends(store:LabelStore, events:list[dict]) -> float:
    "Seconds to `add` `events` one at a time (each its own durable transaction)."
    t0 = time.perf_counter()
    for e in events: store.add(**e)
    return time.perf_counter() - t0

def main(n_events:int, n_big:int, folder:Path):
    rng = random.Random(0)
    make = lambda n, items: [dict(item=f'i{rng.randrange(items)}', job_app=True, status=rng.choice(STATUSES), source=rng.choice(['reviewer', 'aggregate', 'model', 'rule', 'vendor']), who='bench') for _ in range(n)]
    events = make(n_events, n_events)
    with LabelStore(folder/'small.sqlite') as small: base, ours = jsonl_appends(folder/'events.jsonl', events), store_appends(small, events)
    print(f"durable appends: JSONL+fsync {n_events/base:,.0f}/s, LabelStore {n_events/ours:,.0f}/s, ratio {base/ours:.2f}x (>1: the store is faster)")
    with LabelStore(folder/'big.sqlite') as big:
        big.add_many(make(n_big, n_big // 5))
        for name, f in [('current()', big.current), ('item_state()', big.item_state), ("item_state(one item)", lambda: big.item_state('i1'))]:
            t0 = time.perf_counter(); f(); print(f"{name} at {n_big:,} events: {time.perf_counter()-t0:.3f}s")

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--events', type=positive_int, default=2000)
    ap.add_argument('--big', type=int_at_least(5), default=50_000, help='events in the big store, over a fifth as many items')
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-labels-') as folder: main(a.events, a.big, Path(folder))
