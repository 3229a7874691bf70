"""Leave-one-source-out evaluation on the real labeled set: train on four mailboxes, test on the fifth.

    python bench/loso.py [--models linear,ulmfit] [--out bench/out/loso.md]

Prints, for each held-out mailbox and model, job_app accuracy, status macro-F1 over applied / rejection / other
(on the held-out job_app rows), and the expected calibration error of the job_app probability; then the mean
over mailboxes. Reads ../shared/data/labeled/job_emails.jsonl (or $JOBMAIL_SHARED_DATA) and exits cleanly,
saying so, when it is absent.
"""
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from sklearn.metrics import f1_score

from jobmail.core import shared_data, read_table
from jobmail.ingest import fields_to_row
from jobmail.linear import LinearModel
from jobmail.text import model_inputs

STATUS_EVAL = ['applied', 'rejection', 'other']

def labeled_emails(path) -> pd.DataFrame:
    "The labeled set as a cleaned emails table with its labels (bodies cleaned like MIME bodies)."
    raw = read_table(path)
    rows = [fields_to_row(subject=r.subject, sender=r.sender, body=r.body, id=r.id, source=r.source) for r in raw.itertuples()]
    df = pd.DataFrame(rows)
    df['job_app'], df['status'] = raw['job_app'].astype(bool).to_numpy(), raw['status'].fillna('').to_numpy()
    return df

def ece(prob:np.ndarray, y:np.ndarray, bins:int=10) -> float:
    "Expected calibration error of binary probabilities `prob` for labels `y`."
    conf = np.where(prob >= 0.5, prob, 1 - prob); correct = (prob >= 0.5) == y
    edges = np.linspace(0.5, 1, bins + 1); total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf >= lo) & ((conf < hi) | (hi == 1))
        if m.any(): total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)

def scores(job_prob:np.ndarray, status_pred:np.ndarray, test:pd.DataFrame) -> dict:
    y = test['job_app'].to_numpy()
    jobs = y.astype(bool)
    st_true, st_pred = test.loc[jobs, 'status'].to_numpy(), status_pred[jobs]
    present = [c for c in STATUS_EVAL if c in set(st_true)]
    f1 = f1_score(st_true, st_pred, labels=present, average='macro', zero_division=0) if present else float('nan')
    return {'n': len(test), 'job_app_acc': float(((job_prob >= 0.5) == y).mean()), 'status_macro_f1': float(f1),
            'ece': ece(job_prob, y)}

def run_linear(train:pd.DataFrame, test:pd.DataFrame) -> dict:
    model = LinearModel.train(train)
    p = model.predict_proba(model_inputs(test))
    job_prob = p['job_app'][:, model.heads['job_app'].classes.index('True')]
    status = np.array(model.heads['status'].classes)[p['status'].argmax(1)]
    return scores(job_prob, status, test)

MODELS = {'linear': run_linear}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='linear'); ap.add_argument('--out', default='')
    args = ap.parse_args()
    path = shared_data('labeled/job_emails.jsonl')
    if path is None: return 0
    df = labeled_emails(path)
    rows = []
    for source in sorted(df['source'].unique()):
        train, test = df[df['source'] != source], df[df['source'] == source]
        for name in args.models.split(','):
            t0 = time.time()
            r = MODELS[name](train, test)
            rows.append({'held_out': source, 'model': name, **r, 'seconds': round(time.time() - t0, 1)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean = table.groupby('model')[['job_app_acc', 'status_macro_f1', 'ece']].mean().reset_index().assign(held_out='MEAN')
    table = pd.concat([table, mean], ignore_index=True)
    md = table.to_markdown(index=False, floatfmt='.3f')
    print(md)
    if args.out: Path(args.out).parent.mkdir(parents=True, exist_ok=True); Path(args.out).write_text(md + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
