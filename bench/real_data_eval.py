"""ULMFiT on the real data in ../shared/data: LM fine-tuning, both classifiers, evaluation against TF-IDF, the effect
of LM fine-tuning, and a leave-one-source-out table.

    nice python bench/real_data_eval.py --out runs/real [--lm-a DIR] [--lm-epochs 6] [--stages data,lm_a,lm,model,nolm,linear,ensemble,loso]

Stages (each writes into --out and is skipped when its output exists, so a run can be resumed):
  data   the labeled set cleaned like MIME bodies (jobmail.ingest.fields_to_row), split with
         jobmail.dataset.build_dataset (group-aware, 50/50 job_app in every split)          -> dataset.parquet
  lm_a   (optional, slow) a general email LM from scratch on a sample of Enron-Spam            -> lm_a/
  lm     the email LM on the non-test labeled texts, a sample of the raw SpamAssassin + Enron mail
         (jobmail.ingest) and of Enron-Spam; from lm_a/fastai (--pretrained PATH) when lm_a exists, else
         from scratch                                                                   -> lm/
  model  job_app + status classifiers on lm/, exported and evaluated on the test split   -> model/, eval_model/
  nolm   the same classifiers without LM fine-tuning (random encoder, vocab of the training texts) -> nolm/, eval_nolm/
  linear jobmail.linear on the train split                                              -> linear/, eval_linear/
  ensemble  model/ + linear/, weight chosen on the valid split (jobmail.ensemble)        -> ensemble/, eval_ensemble/
  loso   for each source: ULMFiT on lm/, linear and their ensemble trained without it, tested on all its rows;
         TF-IDF + LR alongside                                                          -> loso.json
Prints the tables and writes results.md. Size: jobmail.lm.LM_SIZES['small'] (64/256, 2 layers), what a shared
2-core CPU allows; no Wikitext-103 weights (no internet here).
"""
import argparse, json, re, sys, time
from pathlib import Path

import pandas as pd

from jobmail.core import shared_data, read_table, write_table
from jobmail.dataset import build_dataset
from jobmail.ingest import fields_to_row, ingest
from jobmail.lm import lm_corpus, train_lm, load_lm_dir
from jobmail.classifier import train_heads, export_model
from jobmail.linear import LinearModel
from jobmail.ensemble import build_ensemble
from jobmail.evaluate import evaluate, summary_table, classification_metrics, tfidf_baseline, labels_of, model_predictions

SIZE, EPOCHS, NUM_IT, BS = 'small', (3, 3, 3, 10), 40, 32

def labeled_emails(path) -> pd.DataFrame:
    "The labeled set as an emails table (bodies cleaned like MIME bodies) with job_app and status."
    raw = read_table(path)
    df = pd.DataFrame([fields_to_row(subject=r.subject, sender=r.sender, body=r.body, id=r.id, source=r.source) for r in raw.itertuples()])
    df['job_app'], df['status'] = raw['job_app'].astype(bool).to_numpy(), raw['status'].fillna('').to_numpy()
    return df

def split_dataset(df:pd.DataFrame, seed:int=42) -> pd.DataFrame:
    "jobmail.dataset.build_dataset: 5 per template group, 50/50 job_app in every split, 70/10/20 group-aware."
    ds, report = build_dataset(df.drop(columns=['job_app', 'status']), df[['id', 'job_app', 'status']], split=(0.7, 0.1, 0.2), seed=seed, progress=False)
    return ds

def raw_corpus(n:int, seed:int=42) -> pd.DataFrame:
    "A sample of the raw SpamAssassin and Enron messages, ingested by jobmail.ingest."
    paths = [p for p in (shared_data('raw/spamassassin'), shared_data('raw/enron-berkeley')) if p]
    df = ingest(paths)
    return df.sample(min(n, len(df)), random_state=seed)

def loso(ds:pd.DataFrame, lm, out:Path) -> list[dict]:
    "Per held-out source: ULMFiT (on `lm`), linear and their ensemble trained on the other sources, TF-IDF + LR alongside."
    path = out/'loso.json'
    rows = {r['source']: r for r in json.loads(path.read_text())} if path.exists() else {}
    for src in sorted(ds['source'].unique()):
        if 'ensemble_job_app_acc' in rows.get(src, {}): continue
        t0 = time.time()
        test = ds[ds['source'] == src].assign(split='test')
        rest = ds[ds['source'] != src].copy()
        rest.loc[rest['split'] == 'test', 'split'] = 'train'
        md = out/f'loso_{re.sub(r"[^a-z0-9]+", "_", src)}'
        if not (md/'MANIFEST.json').exists(): export_model(train_heads(rest, lm, out=md, epochs=EPOCHS, bs=BS, num_it=NUM_IT), md, rest)
        lin, ens = md.with_name(md.name + '_linear'), md.with_name(md.name + '_ensemble')
        if not (lin/'linear.json').exists(): LinearModel.train(rest[rest['split'] == 'train']).save(lin)
        if not (ens/'MANIFEST.json').exists(): build_ensemble(md, lin, ens, valid=rest[rest['split'] == 'valid'])
        ja, st = labels_of(test)
        row = dict(source=src, n=len(test))
        for name, model_dir in (('ulmfit', md), ('linear', lin), ('ensemble', ens)):
            pred = model_predictions(model_dir, test)
            m = classification_metrics(ja, st, pred['job_app_prob'].to_numpy(), pred['status_pred'].to_numpy())
            row.update({f'{name}_job_app_acc': m['job_app']['accuracy'], f'{name}_status_f1': m['status']['macro_f1_core'], f'{name}_ece': m['job_app']['ece']})
        b = tfidf_baseline(rest[rest['split'] == 'train'], test)
        mb = classification_metrics(ja, st, b['job_app_prob'].to_numpy(), b['status_pred'].to_numpy())
        row.update(tfidf_job_app_acc=mb['job_app']['accuracy'], tfidf_status_f1=mb['status']['macro_f1_core'],
                   ensemble_weight_ulmfit=json.loads((ens/'model.json').read_text())['members'][0]['weight'], seconds=round(time.time() - t0))
        rows[src] = row
        path.write_text(json.dumps(list(rows.values()), indent=1))
        print(pd.DataFrame(list(rows.values())).round(3).to_string(index=False), flush=True)
    return list(rows.values())

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='runs/real'); ap.add_argument('--lm-a', default='')
    ap.add_argument('--stages', default='data,lm,model,nolm,linear,ensemble,loso'); ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--lm-a-docs', type=int, default=4000); ap.add_argument('--raw-docs', type=int, default=3000)
    ap.add_argument('--enron-docs', type=int, default=3000)
    ap.add_argument('--epochs', default='3,3,3,10', help='classifier epochs of the four unfreezing stages')
    ap.add_argument('--lm-epochs', type=int, default=0, help='LM epochs (default 10 from scratch, 3 from --lm-a)')
    args = ap.parse_args()
    global EPOCHS
    EPOCHS = tuple(int(e) for e in args.epochs.split(','))
    labeled = shared_data('labeled/job_emails.jsonl')
    if labeled is None: return 0
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(',')
    t0 = time.time()
    if not (out/'dataset.parquet').exists(): write_table(split_dataset(labeled_emails(labeled), args.seed), out/'dataset.parquet')
    ds = read_table(out/'dataset.parquet')
    print(pd.crosstab(ds['split'], ds['job_app']).to_string(), flush=True)
    lm_a = Path(args.lm_a) if args.lm_a else out/'lm_a'
    if 'lm_a' in stages and not (lm_a/'encoder.pth').exists():
        enron = shared_data('corpus/enron_spam.jsonl.gz')
        train_lm(lm_corpus([read_table(enron)], max_chars=1500, max_docs=args.lm_a_docs, seed=args.seed), lm_a, size=SIZE,
                 pretrained='none', epochs=2, lr=5e-3, max_vocab=8000, seed=args.seed)
    if 'lm' in stages and not (out/'lm'/'encoder.pth').exists():
        enron = read_table(shared_data('corpus/enron_spam.jsonl.gz')).sample(args.enron_docs, random_state=args.seed)
        texts = lm_corpus([ds, raw_corpus(args.raw_docs, args.seed), enron], max_chars=1500, seed=args.seed)
        print(f'LM fine-tuning corpus: {len(texts)} texts', flush=True)
        start = lm_a/'fastai' if (lm_a/'encoder.pth').exists() else None
        train_lm(texts, out/'lm', size=SIZE, pretrained=str(start) if start else 'none', epochs=args.lm_epochs or (3 if start else 10),
                 lr=2e-3 if start else 1e-2, max_vocab=12000, seed=args.seed)
    results = {}
    for name, lm in (('model', out/'lm'), ('nolm', None), ('linear', None), ('ensemble', None)):
        if name not in stages: continue
        if not (out/f'eval_{name}'/'eval.json').exists():
            if name == 'linear' and not (out/name/'linear.json').exists(): LinearModel.train(ds[ds['split'] == 'train']).save(out/name)
            elif name == 'ensemble' and not (out/name/'MANIFEST.json').exists(): build_ensemble(out/'model', out/'linear', out/name, valid=ds[ds['split'] == 'valid'])
            elif name in ('model', 'nolm') and not (out/name/'MANIFEST.json').exists():
                trained = train_heads(ds, lm, size=SIZE, out=out/name, epochs=EPOCHS, bs=BS, num_it=NUM_IT, seed=args.seed)
                export_model(trained, out/name, ds)
            evaluate(out/name, ds, out=out/f'eval_{name}')
        results[name] = json.loads((out/f'eval_{name}'/'eval.json').read_text())
    lines = [f"# ULMFiT on ../shared/data (size {SIZE}, unfreezing epochs {EPOCHS}, no Wikitext-103)", ""]
    for d in [d for d in (lm_a, out/'lm') if (d/'lm.json').exists()]:
        meta = load_lm_dir(d)
        lines.append(f"- LM {d.name}: {meta['n_texts']} texts, vocab {meta['vocab_size']}, perplexity by epoch {[round(p, 1) for p in meta['perplexities']]}, {meta['seconds']} s")
    lines.append("")
    if 'model' in results:
        tab = summary_table(results['model'])
        for col, name in (('ULMFiT without LM fine-tuning', 'nolm'), ('linear (jobmail.linear)', 'linear'), ('ensemble', 'ensemble')):
            if name in results: tab.insert(len(tab.columns) - 1, col, summary_table(results[name])['ULMFiT'])
        lines += [f"## Test split (n={results['model']['model']['n']}, balanced, group-aware)", "", tab.to_markdown(), ""]
        lines += ["## Per source (test split, ULMFiT)", "", pd.DataFrame(results['model']['per_source']).round(3).to_markdown(index=False), ""]
    if 'loso' in stages:
        t = pd.DataFrame(loso(ds, out/'lm', out))
        means = ', '.join(f"{m} {t[f'{m}_job_app_acc'].mean():.3f}" for m in ('ulmfit', 'linear', 'ensemble', 'tfidf'))
        lines += ["## Leave one source out (train on the others, test on every row of the held-out source)", "",
                  "The LM saw the non-test texts of every source, unlabeled.", "", t.round(3).to_markdown(index=False), "",
                  f"mean job_app accuracy: {means}", ""]
    lines.append(f"total {time.time() - t0:.0f} s")
    (out/'results.md').write_text('\n'.join(lines))
    print('\n'.join(lines))

if __name__ == '__main__': sys.exit(main())
