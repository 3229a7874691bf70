"""Time the registry's round trip (push + verified pull) of a full-size (~100 MB) model directory.

Stores: a `file://` folder and a versioned S3 bucket on moto's S3 server on loopback (a subprocess). Baselines
measured in the same run: for the folder a durable copy (`shutil.copytree` with an fsync of each copied file,
as the store fsyncs each file it writes), and plain boto3 `upload_file` / `download_file` of the same files for
S3 (no hashing, pinning or verification), so the ratios show what the registry's checks cost, not durability.

    nice python bench/bench_registry.py [--mb 100] [--repeats 3] [--model-dir DIR]

Without --model-dir it times a synthetic directory of random bytes shaped like a full-size model (two state
dicts, two pickles, vocab, card, plot); with it, a real sealed model directory (`jobmail train -o DIR`).
"""
import argparse, os, shutil, statistics, tempfile, time
from pathlib import Path

import boto3
from argtypes import positive_int
from jobmail.registry import local_s3_server, open_store, seal_model_dir

def model_dir(dest:Path, mb:int) -> Path:
    "A sealed model directory shaped like a real one: two big state dicts, two pickles, vocab, card, plots."
    dest.mkdir(parents=True)
    sizes = {'job_app.safetensors': .35, 'status.safetensors': .35, 'job_app.pkl': .14, 'status.pkl': .14, 'vocab.json': .02}
    for name, frac in sizes.items(): (dest/name).write_bytes(os.urandom(int(mb * frac * 2**20)))
    (dest/'card.json').write_text('{"name": "bench", "metrics": {"job_app_f1": 0.9}}')
    (dest/'lr_find.png').write_bytes(os.urandom(50_000))
    seal_model_dir(dest)
    return dest

def copy_and_fsync(src, dst):
    "`shutil.copy2`, then fsync the copy: on disk when it returns, as each file the store writes is."
    shutil.copy2(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try: os.fsync(fd)
    finally: os.close(fd)
    return dst

def timed(f) -> float:
    t = time.perf_counter(); f(); return time.perf_counter() - t

def median_time(f, repeats:int, setup=lambda: None) -> float:
    times = []
    for _ in range(repeats):
        setup()
        times.append(timed(f))
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--mb', type=positive_int, default=100, help='model directory size in MB')
    ap.add_argument('--repeats', type=positive_int, default=3, help='runs per measurement (the median is reported)')
    ap.add_argument('--model-dir', help='a real sealed model directory to time instead of a synthetic one')
    args = ap.parse_args()
    if args.model_dir and not (Path(args.model_dir)/'MANIFEST.json').is_file():
        ap.error(f"--model-dir {args.model_dir}: not a sealed model directory (no MANIFEST.json)")
    with tempfile.TemporaryDirectory(prefix='bench_registry.') as work: run(args, Path(work))

def run(args, work:Path):
    "Time both stores and their baselines with the scratch folder `work`, and print the table."
    src = Path(args.model_dir) if args.model_dir else model_dir(work/'model', args.mb)
    size = sum(p.stat().st_size for p in src.rglob('*') if p.is_file())
    mb = size / 2**20
    print(f"model directory: {src if args.model_dir else 'synthetic'}, {mb:.1f} MB in {len(list(src.rglob('*')))} files; median of {args.repeats} runs")
    rows = []

    def fresh(p:Path):
        def setup(): shutil.rmtree(p, ignore_errors=True)
        return setup

    # file:// store vs durable copies
    store = open_store((work/'store').as_uri())
    copy = median_time(lambda: shutil.copytree(src, work/'copy', copy_function=copy_and_fsync), args.repeats, fresh(work/'copy'))
    versions = []
    push = median_time(lambda: versions.append(store.push(src)), args.repeats)
    pull = median_time(lambda: store.pull(versions[-1], work/'pulled'), args.repeats, fresh(work/'pulled'))
    rows += [('file://', 'push', push, copy), ('file://', 'pull (verified)', pull, copy)]

    # versioned S3 bucket on moto's loopback server vs plain boto3 transfers
    with local_s3_server('bench', threaded=True) as endpoint:
        s3 = open_store('s3://bench/models', endpoint_url=endpoint)
        client, files = boto3.client('s3', endpoint_url=endpoint), [p for p in src.rglob('*') if p.is_file()]
        def raw_up():
            for p in files: client.upload_file(str(p), 'bench', f'raw/{p.relative_to(src).as_posix()}', Config=s3.transfer)
        def raw_down():
            for p in files:
                rel = p.relative_to(src).as_posix()
                (work/'raw'/rel).parent.mkdir(parents=True, exist_ok=True)
                client.download_file('bench', f'raw/{rel}', str(work/'raw'/rel), Config=s3.transfer)
        up = median_time(raw_up, args.repeats)
        down = median_time(raw_down, args.repeats, fresh(work/'raw'))
        versions = []
        push = median_time(lambda: versions.append(s3.push(src)), args.repeats)
        pull = median_time(lambda: s3.pull(versions[-1], work/'pulled'), args.repeats, fresh(work/'pulled'))
        rows += [('s3 (moto, loopback)', 'push', push, up), ('s3 (moto, loopback)', 'pull (verified)', pull, down)]

    print(f"{'store':<20} {'operation':<16} {'seconds':>8} {'MB/s':>8} {'baseline s':>11} {'registry/baseline':>18}")
    for where, op, t, base in rows:
        print(f"{where:<20} {op:<16} {t:>8.2f} {mb/t:>8.1f} {base:>11.2f} {t/base:>17.2f}x")
    rt_file = rows[0][2] + rows[1][2]
    rt_s3 = rows[2][2] + rows[3][2]
    print(f"round trip (push + verified pull): file:// {rt_file:.2f} s ({2*mb/rt_file:.0f} MB/s), "
          f"s3 {rt_s3:.2f} s ({2*mb/rt_s3:.0f} MB/s); s3/file {rt_s3/rt_file:.1f}x")
    print("baselines: file:// = shutil.copytree with an fsync of each copied file (durable, as the store's copies are); "
          "s3 = plain boto3 upload_file/download_file, same TransferConfig")

if __name__ == '__main__': main()
