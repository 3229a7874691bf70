"""Runs every notebook in nbs/ as a test, the way nbdev-test does, one pytest test per notebook.

nbdev-test prints only "Success.", so this wrapper gives CI a pytest summary that counts notebooks passed and
failed. Cells flagged with a `tst_flags` flag (slow, browser, gpu, notest) are skipped unless named in the
JOBMAIL_TEST_FLAGS environment variable, e.g. JOBMAIL_TEST_FLAGS="slow browser". Under pytest-xdist each worker's
notebooks get an equal share of the cores (OMP_NUM_THREADS): torch threads oversubscribing the cores made
the whole run several times slower.
"""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The longest notebooks start first, so that two workers finish together instead of one waiting on a long notebook
# it picked up last (seconds with the slow cells, two workers of one thread, stop 26: 13_quickstart 420, 09_predict 223,
# 02_text 190, 10_server 152, 04_labeling 131, 14_linear 93, 05_lm 82, 06_classifier 69; the rest under 60 each).
LONGEST_FIRST = ('13_quickstart', '09_predict', '02_text', '10_server', '04_labeling', '14_linear', '05_lm', '06_classifier')
NOTEBOOKS = sorted((p for p in (ROOT/'nbs').rglob('*.ipynb')
                    if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts)),
                   key=lambda p: (LONGEST_FIRST.index(p.stem) if p.stem in LONGEST_FIRST else len(LONGEST_FIRST), str(p)))

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(ROOT/'nbs')) for p in NOTEBOOKS])
def test_notebook(nb):
    flags = os.environ.get('JOBMAIL_TEST_FLAGS', '')
    cmd = ['nbdev-test', str(nb), '--flags', flags, '--n-workers', '0']
    env = dict(os.environ)
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1 and 'OMP_NUM_THREADS' not in env: env['OMP_NUM_THREADS'] = str(max(1, len(os.sched_getaffinity(0)) // workers))
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if res.returncode != 0: pytest.fail(f"{nb.name} failed:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}", pytrace=False)
