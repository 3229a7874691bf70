"""Load test of the inference server on loopback: batching on vs off, then a burst at 10x capacity.

    python bench/bench_server.py [--model MODEL_DIR] [--seconds 10] [--burst-seconds 30]

Without --model it uses (building once, cached under $JOBMAIL_HOME/bench/) a full-size AWD-LSTM classifier
(fastai's awd_lstm config: 400-d embeddings, 3 LSTM layers of 1152) with random-init weights, written by
jobmail.classifier.export_model: the compute of the real model, not a useful one, which is all a speed
measurement needs. The server runs it with the
Predictor's CPU default, int8 (dynamic quantization).

Starts the real gunicorn (serve/gunicorn.conf.py, one worker) twice on 127.0.0.1, batching off
(JOBMAIL_SERVE_MAX_BATCH=1) and on (--max-batch, default 8), and drives single-email POST /v1/classify requests
from 1, 8 and 64 closed-loop clients (persistent connections, no think time) for a fixed time each: throughput
and p50/p99 latency. Then, batching on, an open-loop burst at 10x the capacity (the best throughput measured over
the client levels): every answer must be a 200 or a fast 503 (no 5xx, no client timeouts), and a single client's
latency must be back to normal (the 1-client p50, batching on) within 5 s after the burst. Every loop is bounded
by time; the script stops by itself and prints ratios against the batching-off baseline measured in the same
run, and which checks it skipped for want of the client levels they need. Client and server share this
machine's cores.
"""
import argparse, collections, http.client, json, os, queue, random, sys, threading, time
from pathlib import Path

from argtypes import positive_float, positive_int, positive_ints
from jobmail.core import get_config
from jobmail.server import LocalGunicorn

SUBJECTS = ["Your application to {c}", "Interview invitation: {c}", "Update on your application", "{c} weekly newsletter",
            "Complete your assessment for {c}", "Your order has shipped", "Offer letter from {c}", "Jobs you may like"]

def email(i):
    c = random.choice(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli'])
    return json.dumps({'id': f'b{i}', 'subject': random.choice(SUBJECTS).format(c=c), 'sender': f'talent@{c.lower()}.example',
                       'body': f"Hello, thank you for your interest in the analyst position at {c}. " * random.randint(1, 6)}).encode()

class Client:
    "One persistent connection; reconnects after an error or a close."
    def __init__(self, port, timeout): self.port, self.timeout, self.conn = port, timeout, None
    def post(self, body):
        t0 = time.perf_counter()
        try:
            if self.conn is None: self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=self.timeout)
            self.conn.request('POST', '/v1/classify', body, {'Content-Type': 'application/json'})
            r = self.conn.getresponse(); r.read()
            if r.getheader('Connection', '').lower() == 'close': self.close()
            return r.status, time.perf_counter() - t0
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return ('timeout' if isinstance(e, TimeoutError) else 'error'), time.perf_counter() - t0
    def close(self):
        if self.conn: self.conn.close()
        self.conn = None

def pct(xs, q): return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else float('nan')

def closed_loop(port, clients, seconds, warmup=2.0, timeout=30):
    "`clients` threads posting back to back; stats over `seconds` after `warmup`."
    t_start = time.monotonic(); t_measure, t_end = t_start + warmup, t_start + warmup + seconds
    lat, codes, lock = [], collections.Counter(), threading.Lock()
    def run(k):
        c, i = Client(port, timeout), 0
        while (now := time.monotonic()) < t_end:
            status, dt = c.post(email(k * 1_000_000 + i)); i += 1
            if now >= t_measure:
                with lock:
                    codes[status] += 1
                    if status == 200: lat.append(dt)
        c.close()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    return dict(clients=clients, rps=codes[200] / seconds, p50=pct(lat, .5), p99=pct(lat, .99), codes=dict(codes))

def burst(port, rate, seconds, pool=256, timeout=10):
    "Open loop: requests started at `rate` per second for `seconds`, whatever the answers; per-code latencies."
    tickets, results, lock = queue.Queue(), collections.defaultdict(list), threading.Lock()
    def worker():
        c = Client(port, timeout)
        while (i := tickets.get()) is not None:
            status, dt = c.post(email(i))
            with lock: results[status].append(dt)
        c.close()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(pool)]
    for t in threads: t.start()
    t0, n = time.monotonic(), int(rate * seconds)
    for i in range(n):
        time.sleep(max(0, t0 + i / rate - time.monotonic()))
        tickets.put(i)
    sent_in = time.monotonic() - t0
    for _ in threads: tickets.put(None)
    for t in threads: t.join(timeout + 5)
    return dict(offered_rps=rate, sent=n, send_seconds=sent_in, backlog_at_end=tickets.qsize(),
                codes={k: len(v) for k, v in results.items()},
                p99_200=pct(results[200], .99), p50_503=pct(results[503], .5), p99_503=pct(results[503], .99))

def recovery(port, normal_p50, seconds=10):
    "Seconds after the burst until a single client's latency is back under 2x normal (median of 3 in a row)."
    c, t0, recent = Client(port, 30), time.monotonic(), collections.deque(maxlen=3)
    while (t := time.monotonic() - t0) < seconds:
        status, dt = c.post(email(random.randrange(10**9)))
        recent.append(dt if status == 200 else float('inf'))
        if len(recent) == 3 and sorted(recent)[1] <= 2 * normal_p50: return t
    return float('inf')

def full_size_model() -> Path:
    "The cached full-size benchmark model directory (random-init weights), built on first use."
    dest = get_config().home/'bench'/'server-full-model'
    if (dest/'MANIFEST.json').exists(): return dest
    from jobmail.classifier import HEADS, toy_dataset, head_table, head_classes, classifier_config, classifier_learner, export_model
    print(f"building the full-size benchmark model in {dest} (once)...", flush=True)
    ds, config, heads, vocab = toy_dataset(200), classifier_config('full'), {}, None
    for head in HEADS:
        table = head_table(ds, head)
        classes = head_classes(table, head)
        learn = classifier_learner(table, classes, vocab, config)
        vocab = list(learn.dls.vocab[0])
        heads[head] = dict(learn=learn, classes=classes, config=config, schedule=[], n_train=int((~table['is_valid']).sum()),
                           n_valid=int(table['is_valid'].sum()), label_counts={k: int(v) for k, v in table['y'].value_counts().items()})
    return export_model(dict(heads=heads, vocab=vocab, size='full', lm=None), dest, ds)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', help="model directory (default: the cached full-size benchmark model)")
    ap.add_argument('--seconds', type=positive_float, default=10, help="measured seconds per concurrency level")
    ap.add_argument('--burst-seconds', type=float, default=30, help="seconds of the burst; 0 skips it")
    ap.add_argument('--clients', type=positive_ints, default='1,8,64', help="comma-separated client counts; the burst needs 1")
    ap.add_argument('--max-batch', type=positive_int, default=8, help="batch size when batching is on (8: best measured for int8 on a CPU)")
    ap.add_argument('--queue-size', type=positive_int, default=64)
    ap.add_argument('--torch-threads', type=positive_int, default=1,
                    help="the model's intra-op threads (1: the client threads need the other core, and 2 threads "
                         "collapse when other processes share the cores)")
    ap.add_argument('--json', help="also write the results here")
    args = ap.parse_args()
    levels, out = args.clients, {}
    if args.burst_seconds > 0 and 1 not in levels:
        ap.error("--clients must include 1 when the burst runs: normal latency after it is the 1-client p50 (or pass --burst-seconds 0)")
    random.seed(0)
    model = Path(args.model) if args.model else full_size_model()
    env = dict(JOBMAIL_SERVE_MODEL=model, JOBMAIL_SERVE_AUTH=0, JOBMAIL_WORKERS=1, JOBMAIL_SERVE_QUEUE_SIZE=args.queue_size,
               JOBMAIL_SERVE_TORCH_THREADS=args.torch_threads)
    for name, max_batch in (('off', 1), ('on', args.max_batch)):
        with LocalGunicorn({**env, 'JOBMAIL_SERVE_MAX_BATCH': max_batch}) as server:
            out[name] = [closed_loop(server.port, c, args.seconds) for c in levels]
            for r in out[name]: print(f"batching {name:3} clients {r['clients']:3}: {r['rps']:7.1f} req/s  p50 {r['p50']*1000:7.1f} ms  p99 {r['p99']*1000:7.1f} ms  {r['codes']}", flush=True)
            if name == 'on' and args.burst_seconds > 0:
                capacity, normal = max(r['rps'] for r in out['on']), out['on'][levels.index(1)]['p50']
                out['burst'] = b = burst(server.port, 10 * capacity, args.burst_seconds)
                b['recovery_s'] = recovery(server.port, normal)
                print(f"burst at {b['offered_rps']:.0f} req/s (10x capacity, the best throughput above) for {args.burst_seconds:g} s: {b['codes']}; "
                      f"200 p99 {b['p99_200']*1000:.0f} ms, 503 p50 {b['p50_503']*1000:.1f} ms p99 {b['p99_503']*1000:.1f} ms; "
                      f"back to normal latency {b['recovery_s']:.2f} s after", flush=True)
            server.stop()
    print()
    for off, on in zip(out['off'], out['on']):
        print(f"{on['clients']:3} clients: batched/unbatched throughput {on['rps']/off['rps']:.2f}x  (p99 {off['p99']*1000:.0f} -> {on['p99']*1000:.0f} ms)")
    checks, skipped = {}, []
    if 64 in levels:
        on64, off64 = out['on'][levels.index(64)], out['off'][levels.index(64)]
        checks['batched >= 1.4x unbatched at 64 clients'] = on64['rps'] >= 1.4 * off64['rps']
    else: skipped.append('batched >= 1.4x unbatched at 64 clients (needs 64 in --clients)')
    if 8 in levels: checks['p99 < 1 s at 8 clients (batched)'] = out['on'][levels.index(8)]['p99'] < 1
    else: skipped.append('p99 < 1 s at 8 clients (needs 8 in --clients)')
    if 'burst' in out:
        b = out['burst']
        checks['burst: only 200s and 503s'] = set(b['codes']) <= {200, 503}
        checks['burst: 503s fast (p99 < 100 ms)'] = b['p99_503'] < 0.1 if b['codes'].get(503) else True
        checks['latency normal within 5 s after burst'] = b['recovery_s'] <= 5
    else: skipped.append('the burst checks (--burst-seconds 0)')
    for k, v in checks.items(): print(f"{'PASS' if v else 'FAIL'}  {k}")
    for k in skipped: print(f"SKIP  {k}")
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0 if all(checks.values()) else 1

if __name__ == '__main__': sys.exit(main())
