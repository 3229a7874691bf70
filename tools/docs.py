"""Docs checks that need no quarto: nbdev's pre-render step, and README.md generated from nbs/index.ipynb.

    python tools/docs.py readme   # write README.md from nbs/index.ipynb
    python tools/docs.py check    # run nbdev's pre-render (proc_nbs) on every notebook; fail if README.md is stale

The docs site itself is rendered by quarto in the GitHub deploy workflow (quarto cannot be installed here).
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r'^\s*#\s*\|')

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _directives(src):
    return {l.split('|', 1)[1].strip().split()[0] for l in src.splitlines() if DIRECTIVE.match(l) and l.split('|', 1)[1].strip()}

def _output_text(out):
    if out.get('output_type') == 'stream': return ''.join(out.get('text', ''))
    data = out.get('data', {})
    if 'text/markdown' in data: return None
    return ''.join(data.get('text/plain', ''))

def readme_text(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "The README's markdown: index.ipynb's cells less hidden ones and nbdev directives, code cells fenced."
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for cell in nb['cells']:
        src = _src(cell)
        flags = _directives(src)
        if flags & {'hide', 'exporti', 'default_exp'}: continue
        body = '\n'.join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip()
        if cell['cell_type'] == 'markdown':
            if body: parts.append(body)
            continue
        if body and 'hide_input' not in flags: parts.append(f"```python\n{body}\n```")
        if 'hide_output' in flags: continue
        for out in cell.get('outputs', []):
            text = _output_text(out)
            if text: parts.append(f"```\n{text.rstrip()}\n```")
    parts[0] = re.sub(r'^# (.*)\n+> (.*)', r'# \1\n\n> \2', parts[0])
    return '\n\n'.join(parts) + '\n'

def proc_docs():
    "nbdev's pre-render step (what `nbdev-proc-nbs` runs before quarto), without installing quarto."
    import os
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.serve import proc_nbs
    cfg = get_config(); os.chdir(cfg.config_path)
    refresh_quarto_yml()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    return proc_nbs(cfg.nbs_path, n_workers=0, force=True)

def main(cmd):
    readme = ROOT/'README.md'
    if cmd == 'readme':
        readme.write_text(readme_text()); print(f"wrote {readme}")
    elif cmd == 'check':
        cache = proc_docs()
        n = len(list(Path(cache).rglob('*.ipynb')))
        if not n: sys.exit("docs: nbdev's pre-render produced no notebooks")
        print(f"docs: nbdev pre-render processed {n} notebooks")
        if not readme.exists() or readme.read_text() != readme_text():
            sys.exit("docs: README.md does not match nbs/index.ipynb; run `python tools/docs.py readme` and commit")
        print("docs: README.md matches nbs/index.ipynb")
    else: sys.exit(__doc__)

if __name__ == '__main__': main(sys.argv[1] if len(sys.argv) > 1 else '')
