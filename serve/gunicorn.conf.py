"""gunicorn settings for the jobmail inference server: `gunicorn -c serve/gunicorn.conf.py` (from the repo root).

Sizing. Inference is the work; HTTP threads mostly wait. On a GPU run one worker per GPU (JOBMAIL_WORKERS=1 in
the image; one GPU per container), so that every request meets in one batching queue. On CPU there are
cores // JOBMAIL_TORCH_THREADS workers (default min(4, cores) threads: one worker on up to 4 cores), and each
worker's model uses JOBMAIL_TORCH_THREADS torch threads when it is set, else cores // workers, so workers x torch threads = cores.
Each worker runs JOBMAIL_THREADS HTTP threads (default: the queue, JOBMAIL_SERVE_QUEUE_SIZE, plus a batch,
JOBMAIL_SERVE_MAX_BATCH, plus 32; 128 with their defaults): more than the requests the queue and a batch can hold,
so that when the queue is full there is always a free thread to answer 503 at once instead of leaving requests
waiting for a thread, past their deadline.

The app is not preloaded: each worker imports serve/wsgi.py after the fork and loads the model there (CUDA and
torch threads do not survive a fork). On SIGTERM each worker reports draining on /readyz, keeps accepting for
JOBMAIL_SERVE_DRAIN_DELAY_S (give the load balancer time to notice), then stops accepting and finishes every
request in flight within graceful_timeout (by default the drain delay + the deadline + 5 s, at least 30 s).
"""
import glob, math, os, shutil, signal, tempfile

_here = os.path.dirname(os.path.abspath(__file__))
_cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
_torch_threads = int(os.environ.get('JOBMAIL_TORCH_THREADS', min(4, _cores)))
if _torch_threads < 1: raise ValueError(f"JOBMAIL_TORCH_THREADS={_torch_threads}: each worker needs at least 1 torch thread")

pythonpath = _here
wsgi_app = 'wsgi:app'
bind = os.environ.get('JOBMAIL_BIND', '0.0.0.0:8080')
worker_class = 'gthread'
workers = int(os.environ.get('JOBMAIL_WORKERS', max(1, _cores // _torch_threads)))
# each queued or batched request holds a thread: fewer threads than that and the others wait for one, unanswered (ServerConfig's defaults)
threads = int(os.environ.get('JOBMAIL_THREADS', int(os.environ.get('JOBMAIL_SERVE_QUEUE_SIZE', 64)) + int(os.environ.get('JOBMAIL_SERVE_MAX_BATCH', 32)) + 32))
if workers < 1: raise ValueError(f"JOBMAIL_WORKERS={workers}: gunicorn needs at least 1 worker")
if threads < 1: raise ValueError(f"JOBMAIL_THREADS={threads}: each worker needs at least 1 HTTP thread")
worker_connections = max(1000, 2 * threads)  # gunicorn's default, or room for kept-alive connections beside a thread each
preload_app = False
timeout = 60  # heartbeat: the model loads in a background thread, so a worker boots fast
# after SIGTERM a worker accepts for the drain delay, then answers what it has (up to deadline_s): by default allow both
_drain_then_deadline_s = float(os.environ.get('JOBMAIL_SERVE_DRAIN_DELAY_S', 0)) + float(os.environ.get('JOBMAIL_SERVE_DEADLINE_S', 10))  # ServerConfig's defaults
graceful_timeout = int(os.environ.get('JOBMAIL_GRACEFUL_TIMEOUT', max(30, math.ceil(_drain_then_deadline_s) + 5)))
keepalive = 5
accesslog = os.environ.get('JOBMAIL_ACCESS_LOG', '-') or None  # method, path, status: never bodies
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = '-'

os.environ.setdefault('JOBMAIL_SERVE_TORCH_THREADS', os.environ.get('JOBMAIL_TORCH_THREADS') or str(max(1, _cores // workers)))  # as set, else workers x torch threads = cores
# /metrics adds up every worker's numbers through files in this folder (prometheus_client multiprocess mode):
# PROMETHEUS_MULTIPROC_DIR when set, else a temporary folder of this server's own, removed when it exits.
# Which folder is this server's own is kept in the environment: a reload (SIGHUP) runs this file again, with the
# variable set by then.
if not os.environ.get('PROMETHEUS_MULTIPROC_DIR'):
    os.environ['PROMETHEUS_MULTIPROC_DIR'] = os.environ['JOBMAIL_OWN_METRICS_DIR'] = tempfile.mkdtemp(prefix='jobmail-metrics-')

def on_starting(server):
    "Start the metrics from zero: remove files a previous run left in PROMETHEUS_MULTIPROC_DIR."
    os.makedirs(os.environ['PROMETHEUS_MULTIPROC_DIR'], exist_ok=True)
    for f in glob.glob(os.path.join(os.environ['PROMETHEUS_MULTIPROC_DIR'], '*.db')): os.remove(f)

def on_exit(server):
    "Remove the metrics folder this server made for itself."
    own = os.environ.get('JOBMAIL_OWN_METRICS_DIR')
    if own and own == os.environ.get('PROMETHEUS_MULTIPROC_DIR'): shutil.rmtree(own, ignore_errors=True)

def post_worker_init(worker):
    "Replace the worker's SIGTERM handler: report draining first, then gunicorn's graceful stop."
    from jobmail.server import drain_on_sigterm
    drain_on_sigterm(lambda: worker.handle_exit(signal.SIGTERM, None), float(os.environ.get('JOBMAIL_SERVE_DRAIN_DELAY_S', 0)))

def child_exit(server, worker):
    "Drop an exited worker's live gauges (queue depth) from /metrics."
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
control_socket_disable = True  # no shared ~/.gunicorn/gunicorn.ctl between servers on one machine
