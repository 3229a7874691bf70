"""Benchmark jobmail.ingest against the stdlib parser, and its memory on a big mbox.

1. Throughput on the SpamAssassin corpus: jobmail's full extraction (`parse_message`: headers, MIME walk,
   charset and transfer decoding, HTML to text, quote/signature stripping) against a bare
   `email.message_from_bytes` of the same in-memory files, in the same run, interleaved, best of N rounds,
   in CPU seconds of the process (both are single-threaded; CPU time is not inflated by other jobs on the box).
   Target: ratio <= 2. Messages whose `error` is set are counted; with any, no ratio is printed (exit 1): a
   parser that fails would look fast.
2. Peak memory: `jobmail ingest big.mbox -o out.parquet` in a subprocess on an mbox of about `--mbox-gb` GB,
   generated in a temp dir by replicating the real SpamAssassin/Enron messages; peak RSS from the child's
   ru_maxrss. Target: < 500 MB.

Run: nice python bench/bench_ingest.py [--rounds 3] [--mbox-gb 1.0]   (needs ../shared/data; skips without it)
"""
import argparse, email, gc, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

from argtypes import positive_int
from jobmail.core import shared_data
from jobmail.ingest import parse_message


def load(folder:Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob('*/*.txt'))]


def timed(fn, blobs) -> float:
    "CPU seconds of this process for `fn` over `blobs` (wall time on a shared machine measures the neighbours)."
    gc.collect()
    t0 = time.process_time()
    for b in blobs: fn(b)  # nothing kept: results held alive would add garbage-collector work to the timing
    return time.process_time() - t0


def throughput(blobs:list[bytes], rounds:int):
    mb = sum(map(len, blobs)) / 1e6
    bare, full = [], []
    for _ in range(rounds):  # interleaved, so machine noise hits both alike
        bare.append(timed(email.message_from_bytes, blobs))
        full.append(timed(parse_message, blobs))
    errored = sum(bool(parse_message(b)['error']) for b in blobs)  # counted outside the timing (parse_message is deterministic)
    b, f = min(bare), min(full)
    print(f"SpamAssassin: {len(blobs)} messages, {mb:.1f} MB, best of {rounds} rounds; "
          f"{errored} of them set `error` in parse_message")
    if errored: sys.exit(f"no ratio: {errored} timed messages failed to parse, and a failing parser would look fast")
    print(f"  bare email.message_from_bytes : {b:6.2f} CPU s  {len(blobs)/b:7.0f} msg/s  {mb/b:5.1f} MB/s")
    print(f"  jobmail parse_message         : {f:6.2f} CPU s  {len(blobs)/f:7.0f} msg/s  {mb/f:5.1f} MB/s")
    print(f"  ratio jobmail / bare parse    : {f/b:.2f}x   (target <= 2x)")
    return f / b


def write_mbox(path:Path, blobs:list[bytes], target_bytes:int) -> tuple[int, int]:
    "Replicate `blobs` into an mbox of about `target_bytes`; return (messages, bytes)."
    n = size = 0
    with open(path, 'wb') as f:
        while size < target_bytes:
            for raw in blobs:
                if raw.startswith(b'From '): raw = raw[raw.find(b'\n') + 1:]
                raw = raw.replace(b'\nFrom ', b'\n>From ')
                chunk = b'From bench@jobmail Mon Jan  1 00:00:00 2024\n' + raw.rstrip(b'\n') + b'\n\n'
                f.write(chunk); n += 1; size += len(chunk)
                if size >= target_bytes: break
    return n, size


def peak_memory(blobs:list[bytes], gb:float):
    with tempfile.TemporaryDirectory() as d:
        mbox, out = Path(d)/'big.mbox', Path(d)/'out.parquet'
        n, size = write_mbox(mbox, blobs, int(gb * 1e9))
        code = ("import sys; from jobmail.ingest import ingest_cli; "
                f"ingest_cli({str(mbox)!r}, Output={str(out)!r}, progress=False)")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
        secs = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if proc.returncode: sys.exit(f"ingest failed: {proc.stderr[-2000:]}")
        print(f"big mbox: {n} messages, {size/1e9:.2f} GB -> {out.stat().st_size/1e6:.0f} MB parquet in {secs:.0f} s "
              f"({size/1e6/secs:.1f} MB/s)")
        print("  " + proc.stdout.splitlines()[0])
        print(f"  peak RSS of the ingest process: {peak:.0f} MB   (target < 500 MB)")
        return peak


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=positive_int, default=3)
    ap.add_argument('--mbox-gb', type=float, default=1.0, help='size of the generated mbox; 0 skips the memory test')
    args = ap.parse_args()
    base = shared_data('raw/spamassassin')
    if base is None: sys.exit(0)
    blobs = load(base)
    throughput(blobs, args.rounds)
    if args.mbox_gb > 0:
        enron = shared_data('raw/enron-berkeley')
        peak_memory(blobs + (load(enron) if enron else []), args.mbox_gb)
