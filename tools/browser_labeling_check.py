"""Real-browser check of the labeling widget: JupyterLab + headless Chromium open a labeling notebook, click a label
button and type a keyboard shortcut; both decisions must be in the label store. Saves a screenshot of the widget.

    python tools/browser_labeling_check.py [--screenshot nbs/images/labeling_widget.png]

Needs: Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`), the Python `playwright` package
(the dev extra; never `playwright install`: it drives the system chromium), jupyterlab and ipywidgets.
Exit status 0 when both decisions reached the store, 1 otherwise.
"""
import argparse, json, os, secrets, shutil, socket, sqlite3, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
NOTEBOOK_CELLS = [
    "import pandas as pd\nfrom jobmail.labeling import LabelStore, ReviewWidget, sample_emails, suggest\n"
    "store = LabelStore('labels.sqlite')\nsuggest(store, sample_emails())  # rule suggestions\n"
    "store.add_predictions(pd.DataFrame({'interview': [0.81], 'assessment': [0.12], 'other': [0.07]}, index=['s03']), 'demo-model')",
    "ReviewWidget(store, sample_emails(), reviewer='browser')",
]

def write_notebook(path:Path):
    "A two-cell labeling notebook over the package's made-up sample emails."
    cells = [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [], 'source': src}
             for i, src in enumerate(NOTEBOOK_CELLS)]
    nb = {'cells': cells, 'nbformat': 4, 'nbformat_minor': 5,
          'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}}}
    path.write_text(json.dumps(nb))

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def wait_http(url:str, timeout:float):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")

def lab_command(port:int, root:Path) -> list[str]:
    "JupyterLab on 127.0.0.1:`port` serving `root`; its token comes from the environment (JUPYTER_TOKEN), not the command line anyone can read."
    return ([sys.executable, '-m', 'jupyterlab', '--no-browser', f'--port={port}', '--ServerApp.ip=127.0.0.1', f'--ServerApp.root_dir={root}',
             '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
            + (['--allow-root'] if os.geteuid() == 0 else []))

def decisions(db:Path) -> list[tuple]:
    "The reviewer decisions in the store: (item, status, action)."
    if not db.exists(): return []
    con = sqlite3.connect(db)
    try: return con.execute("SELECT item, status, action FROM events WHERE who='browser' ORDER BY seq").fetchall()
    except sqlite3.OperationalError: return []
    finally: con.close()

def wait_for(pred, timeout:float, what:str):
    end = time.time() + timeout
    while time.time() < end:
        if (v := pred()): return v
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

def run(screenshot:Path|None, timeout:float=120) -> list[tuple]:
    "Open the labeling notebook in JupyterLab with headless Chromium, label two emails; the store's decisions."
    from playwright.sync_api import sync_playwright, TimeoutError as PlaywrightTimeout
    work, failed = Path(tempfile.mkdtemp(prefix='jobmail-browser-')), False
    try:
        write_notebook(work/'labeling.ipynb')
        port, token = free_port(), secrets.token_urlsafe()  # any local user could run code in a server without one
        env = {**os.environ, 'JUPYTER_TOKEN': token, 'JUPYTERLAB_SETTINGS_DIR': str(work/'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(work/'workspaces')}
        with open(work/'lab.log', 'w') as log: lab = subprocess.Popen(lab_command(port, work), cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_http(f'http://127.0.0.1:{port}/api', 90)
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(str(work/'chromium-profile'), executable_path=CHROMIUM, headless=True,
                                                           args=FLAGS, viewport={'width': 1400, 'height': 1000})
                page = ctx.new_page()
                try:
                    page.set_default_timeout(timeout * 1000)
                    page.goto(f'http://127.0.0.1:{port}/lab/tree/labeling.ipynb?token={token}')
                    page.locator('.jp-Notebook .jp-Cell').first.wait_for()
                    try: page.locator('.jp-Dialog button.jp-mod-accept').first.click(timeout=20_000)  # "Select Kernel": the default
                    except PlaywrightTimeout: pass  # some versions start the notebook's kernel without asking
                    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for()
                    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
                    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
                    page.locator('.widget-button', has_text='applied').first.click()
                    wait_for(lambda: ('s01', 'applied', 'label') in decisions(work/'labels.sqlite'), 60, 'the click in the store')
                    page.locator('.widget-html', has_text='saved: s01').first.wait_for()
                    page.locator('input[placeholder^="shortcuts"]').first.fill('5')  # 5 = rejection, for the next email s02
                    wait_for(lambda: ('s02', 'rejection', 'label') in decisions(work/'labels.sqlite'), 60, 'the shortcut in the store')
                    page.locator('.widget-html', has_text='saved: s02').first.wait_for()
                    if screenshot:
                        screenshot.parent.mkdir(parents=True, exist_ok=True)
                        page.locator('.jp-OutputArea-output .widget-vbox').first.screenshot(path=str(screenshot))
                except Exception:
                    failed = True
                    page.screenshot(path=str(work/'failure.png'))
                    print(f"browser check failed; page screenshot {work/'failure.png'}, JupyterLab log {work/'lab.log'} (kept)", file=sys.stderr)
                    raise
                finally: ctx.close()
            return decisions(work/'labels.sqlite')
        finally:
            lab.terminate()
            try: lab.wait(20)
            except subprocess.TimeoutExpired: lab.kill()
    finally:
        if not failed: shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--screenshot', type=Path, default=None, help='save a PNG of the widget here')
    args = ap.parse_args()
    t0 = time.time()
    got = run(args.screenshot)
    ok = ('s01', 'applied', 'label') in got and ('s02', 'rejection', 'label') in got
    print(f"browser check {'passed' if ok else 'FAILED'} in {time.time()-t0:.0f}s: store holds {got}"
          + (f"; screenshot {args.screenshot}" if args.screenshot else ''))
    sys.exit(0 if ok else 1)
