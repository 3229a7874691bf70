"""ULMFiT on the real data in ../shared/data: LM fine-tuning, both classifiers, evaluation against TF-IDF, the effect
of LM fine-tuning, and a leave-one-source-out table.

    nice python bench/real_data_eval.py --out runs/real [--lm-a DIR] [--lm-epochs 6] [--stages data,lm_a,lm,model,nolm,linear,ensemble,loso]
    python bench/real_data_eval.py --out runs/full --size full --lm-corpus all --lm-minutes 4 --stages data,lm,model,linear,ensemble,nolm   # a GPU

Stages (each writes into --out and is skipped when its output exists, so a run can be resumed):
  data   the labeled set cleaned like MIME bodies (jobmail.ingest.fields_to_row), split with
         jobmail.dataset.build_dataset (group-aware, 50/50 job_app in every split)          -> dataset.parquet
  lm_a   (optional, slow) a general email LM from scratch on a sample of Enron-Spam            -> lm_a/
  corpus only the LM corpus below                                                       -> lm_corpus.parquet
  lm     the email LM on the non-test labeled texts, a sample of the raw SpamAssassin + Enron mail
         (jobmail.ingest) and of Enron-Spam (--lm-corpus all: every message of them); from lm_a/fastai
         (--pretrained PATH) when lm_a exists, else from scratch; --lm-demo adds the demo mailbox's texts (English
         and French)                                                                   -> lm_corpus.parquet, lm/
  model  job_app + status classifiers on lm/, exported and evaluated on the test split (--ulmfit-demo: trained with
         the demo mailbox too, here and in loso, as the linear model is)                 -> model/, eval_model/
  nolm   the same classifiers without LM fine-tuning (random encoder, vocab of the training texts) -> nolm/, eval_nolm/
  linear jobmail.linear on the train split plus the demo mailbox (`jobmail train --demo-mail`) -> linear/, eval_linear/
  ensemble  model/ + linear/, weight chosen on the valid split (jobmail.ensemble)        -> ensemble/, eval_ensemble/
  loso   for each source: ULMFiT on lm/, linear (with the demo mailbox) and their ensemble trained without it,
         tested on all its rows; TF-IDF + LR alongside, on the labeled rows only (tfidf) and with the demo mailbox
         the linear model gets (tfidf_demo; a cached row gains the --loso-models it lacks); the linear model's job_app also adapted to the
         held-out mailbox's own share (jobmail.predict.adapt_prior, `jobmail predict --adapt-prior`); the
         linear model's status against the true one, pooled over the held-out mailboxes       -> loso.json
  french the models trained without the French mailbox (capitalyzer-linkedin), and TF-IDF + LR without and with
         the demo mailbox, tested on every one of its 195 labeled emails, not only the dataset's capped and balanced
         rows                                                                              -> french.json
  ablations  the same leave-one-source-out runs for ULMFiT without LM fine-tuning, on a 2-epoch LM (lm_e2/), and
         ULMFiT and linear without the sender and header signals; linear with the sender's identity, without
         the opening view, and without the package's demo mailbox in its training mail         -> loso_*.json
  demo_seeds  the linear recipe (leave one source out, and the test split) with the demo mailbox drawn from seeds
         42, 1 and 2 (`jobmail.classifier.training_demo`; --seed's are the loso and linear stages' runs when they are
         among the stages): how much the draw of generated mail moves the figures; beside it on the test split, TF-IDF
         + LR given the same demo mailbox                                                    -> loso_demoseed*.json
  quotes the linear recipe beside the same without the message a reply answers (no xxquote: `quoted` emptied in the
         labeled and the demo mail), leave one source out and the test split               -> loso_noquote.json
  unseen every raw SpamAssassin and Enron message (no candidate's application mail expected; Enron's "Employment
         arrangements" folder is mostly the hiring side's mail), scored by the test-split models: how many each
         flags as job applications                                                         -> unseen.json
  calibration  for each leave-one-source-out ULMFiT model: a temperature (and an isotonic map) fitted on its valid
         split, and the held-out mailbox's job_app ECE without and with it                -> calibration.json
Prints the tables and rewrites results.md after every stage. A --out whose dataset.parquet was built from other
labeled data or another version of the ingest or dataset code is refused (dataset.fingerprint), since every stage
is cached on it. Size (--size): jobmail.lm.LM_SIZES['small'] (64/256,
2 layers) by default, what a shared 2-core CPU allows; 'full' (400/1152, 3 layers) on a GPU. No Wikitext-103
weights (no internet here). Once dataset.parquet and lm_corpus.parquet are in --out, the shared data folder is not
needed (how the run travels to a GPU machine).
"""
import argparse, json, re, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
from fastcore.basics import noop
from sklearn.isotonic import IsotonicRegression

from jobmail.core import STATUSES, shared_data, read_table, write_table
from jobmail.dataset import build_dataset
from jobmail.ingest import fields_to_row, ingest
from jobmail.lm import lm_corpus, train_lm, load_lm_dir
from jobmail.classifier import train_heads, export_model, train_linear, training_demo
from jobmail.linear import LinearModel, TFIDF_PARTS, fit_temperature
from jobmail.registry import load_pickle_learner
from jobmail.text import model_inputs
from jobmail.predict import adapt_prior
from jobmail.ensemble import build_ensemble
from jobmail.evaluate import (evaluate, summary_table, classification_metrics, tfidf_baseline, labels_of, model_predictions,
                              expected_calibration_error, accuracy_intervals, sure_labels, job_app_decision)

SIZE, EPOCHS, NUM_IT, BS = 'small', (3, 3, 3, 10), 40, 32

def labeled_emails(path) -> pd.DataFrame:
    "The labeled set as an emails table (bodies cleaned like MIME bodies) with job_app, status and the labelers' confidence."
    raw = read_table(path)
    df = pd.DataFrame([fields_to_row(subject=r.subject, sender=r.sender, body=r.body, id=r.id, source=r.source) for r in raw.itertuples()])
    df['job_app'], df['status'] = raw['job_app'].astype(bool).to_numpy(), raw['status'].fillna('').to_numpy()
    if 'confidence' in raw.columns: df['confidence'] = raw['confidence'].to_numpy()  # the labelers' high / low
    return df

def split_dataset(df:pd.DataFrame, seed:int=42) -> pd.DataFrame:
    "jobmail.dataset.build_dataset: 5 per template group, 50/50 job_app in every split, 70/10/20 group-aware."
    labels = [c for c in ('id', 'job_app', 'status', 'confidence') if c in df.columns]
    ds, report = build_dataset(df.drop(columns=labels[1:]), df[labels], split=(0.7, 0.1, 0.2), seed=seed, progress=False)
    return ds

def raw_corpus(n:int, seed:int=42) -> pd.DataFrame:
    "A sample of the raw SpamAssassin and Enron messages, ingested by jobmail.ingest."
    paths = [p for p in (shared_data('raw/spamassassin'), shared_data('raw/enron-berkeley')) if p]
    df = ingest(paths)
    return df.sample(min(n, len(df)), random_state=seed)

def data_fingerprint(labeled:Path) -> str:
    "What dataset.parquet depends on: the labeled file and the code (comments aside) of jobmail.ingest and jobmail.dataset."
    import hashlib, jobmail.ingest, jobmail.dataset
    h = hashlib.sha256(Path(labeled).read_bytes())
    for mod in (jobmail.ingest, jobmail.dataset):
        h.update('\n'.join(l for l in Path(mod.__file__).read_text().splitlines() if not l.lstrip().startswith('#')).encode())
    return h.hexdigest()[:16]

def lm_texts(ds:pd.DataFrame, corpus:str, args) -> list[str]:
    "The LM corpus: the non-test labeled texts plus a sample ('sample') or all ('all') of the outside mail (and with --lm-demo the demo mailbox's), de-duplicated."
    enron = read_table(shared_data('corpus/enron_spam.jsonl.gz'))
    raw = raw_corpus(10**9 if corpus == 'all' else args.raw_docs, args.seed)
    if corpus != 'all': enron = enron.sample(args.enron_docs, random_state=args.seed)
    demo = [training_demo(args.seed)] if args.lm_demo else []
    return list(dict.fromkeys(lm_corpus([ds, raw, enron, *demo], max_chars=1500, seed=args.seed)))

def without_signals(ds:pd.DataFrame) -> pd.DataFrame:
    "The dataset with no sender and no headers: model inputs without the sender and mailing-list tokens."
    return ds.assign(sender='', headers=None)

def held_out_scores(key:str, job_app:np.ndarray, status:np.ndarray, sure:np.ndarray, job_app_prob:np.ndarray, status_pred:np.ndarray) -> dict:
    "A `loso` row's figures of one model (`key`): job_app accuracy, status macro-F1 and ECE on every row, accuracy and status on the sure labels (NaN where none is sure)."
    m, ms = (classification_metrics(job_app[s], status[s], job_app_prob[s], status_pred[s]) for s in (slice(None), sure))
    return {f'{key}_job_app_acc': m['job_app']['accuracy'], f'{key}_status_f1': m['status']['macro_f1_core'], f'{key}_ece': m['job_app']['ece'],
            f'{key}_sure_job_app_acc': ms['job_app']['accuracy'], f'{key}_sure_status_f1': ms['status']['macro_f1_core']}

LOSO_MODELS = ('ulmfit', 'linear', 'ensemble', 'tfidf', 'tfidf_demo')
LOSO_NAMES = {'ulmfit': 'ULMFiT', 'linear': 'linear', 'linear_prior': 'linear, prior adapted', 'ensemble': 'ensemble',
              'tfidf': 'TF-IDF + LR (labeled rows only)', 'tfidf_demo': 'TF-IDF + LR (labeled rows + demo mailbox)'}  # how the tables name each loso key

def loso(ds:pd.DataFrame, lm, out:Path, variant:str='', models=LOSO_MODELS, linear_parts:dict|None=None,
         linear_extra:pd.DataFrame|None=None, sources:list[str]|None=None, ulmfit_extra:pd.DataFrame|None=None) -> list[dict]:
    "Per held-out source (`sources`, in that order; default all): ULMFiT (on `lm`; None: no LM fine-tuning; `ulmfit_extra`: more training rows), linear (`linear_parts`: its TF-IDF parts; `linear_extra`: more training rows), their ensemble, TF-IDF + LR on the labeled rows (tfidf) and with `linear_extra` too (tfidf_demo), trained on the other sources."
    tag = f'_{variant}' if variant else ''
    path = out/f'loso{tag}.json'
    rows = {r['source']: r for r in json.loads(path.read_text())} if path.exists() else {}
    for src in sources or sorted(ds['source'].unique()):
        todo = [m for m in models if f'{m}_job_app_acc' not in rows.get(src, {})]  # a row written before a model was asked for gains it
        if not todo: continue
        t0 = time.time()
        test = ds[ds['source'] == src].assign(split='test')
        rest = ds[ds['source'] != src].copy()
        rest.loc[rest['split'] == 'test', 'split'] = 'train'
        md = out/f'loso{tag}_{_dir_tag(src)}'
        lin, ens = md.with_name(md.name + '_linear'), md.with_name(md.name + '_ensemble')
        if {'ulmfit', 'ensemble'} & set(todo) and not (md/'MANIFEST.json').exists():
            train = pd.concat([rest, ulmfit_extra], ignore_index=True)
            export_model(train_heads(train, lm, size=SIZE, out=md, epochs=EPOCHS, bs=BS, num_it=NUM_IT), md, train)
        if {'linear', 'ensemble'} & set(todo) and not (lin/'linear.json').exists(): LinearModel.train(pd.concat([rest[rest['split'] == 'train'], linear_extra]), features=linear_parts).save(lin)
        if 'ensemble' in todo and not (ens/'MANIFEST.json').exists(): build_ensemble(md, lin, ens, valid=rest[rest['split'] == 'valid'])
        ja, st = labels_of(test)
        sure = np.asarray(sure_labels(test))
        row = dict(rows.get(src, {}), source=src, n=len(test), n_sure=int(sure.sum()))
        score = lambda key, p, status_pred: row.update(held_out_scores(key, ja, st, sure, p, status_pred))
        for name, model_dir in (('ulmfit', md), ('linear', lin), ('ensemble', ens)):
            if name not in todo: continue
            pred = model_predictions(model_dir, test)
            p, status_pred = pred['job_app_prob'].to_numpy(), pred['status_pred'].to_numpy()
            score(name, p, status_pred)
            if name == 'linear':  # the held-out mailbox as one person's mail
                adapted, row['linear_prior_share'] = adapt_prior(p)
                score('linear_prior', adapted, status_pred)
        for name, extra in (('tfidf', None), ('tfidf_demo', linear_extra)):
            if name not in todo: continue
            b = tfidf_baseline(rest[rest['split'] == 'train'], test, extra=extra)
            score(name, b['job_app_prob'].to_numpy(), b['status_pred'].to_numpy())
        if 'ensemble' in todo: row['ensemble_weight_ulmfit'] = json.loads((ens/'model.json').read_text())['members'][0]['weight']
        rows[src] = dict(row, seconds=row.get('seconds', 0) + round(time.time() - t0))
        path.write_text(json.dumps(list(rows.values()), indent=1))
        print(pd.DataFrame(list(rows.values())).round(3).to_string(index=False), flush=True)
    return list(rows.values())

MIN_STATUS_JOBS = 5  # a held-out mailbox's status macro-F1 enters the status means only with this many job emails

def status_sources(ds:pd.DataFrame) -> list[str]:
    "The sources with at least `MIN_STATUS_JOBS` job emails: a status F1 of one email is 0 or 1 and would swing a mean."
    n = ds[ds['job_app'].astype(bool)].groupby('source').size()
    return sorted(n[n >= MIN_STATUS_JOBS].index)

def ablations(ds:pd.DataFrame, out:Path, args, recipe:list[dict], demo:pd.DataFrame) -> pd.DataFrame:
    "Leave-one-source-out means and per-source job_app accuracy of the recipe (`loso`'s rows) against its ablations."
    if not (out/'lm_e2'/'encoder.pth').exists():  # the same corpus and schedule as lm/, for 2 epochs
        meta = load_lm_dir(out/'lm')
        train_lm(read_table(out/'lm_corpus.parquet')['text'].tolist(), out/'lm_e2', size=SIZE, pretrained='none', epochs=2,
                 lr=meta['stages'][-1]['lr'], bs=meta['bs'], max_vocab=12000, seed=args.seed, clip=meta.get('clip'))
    plain = loso(without_signals(ds), out/'lm', out, 'nosignals', ('ulmfit', 'linear'), linear_extra=without_signals(demo))
    with_sender = lambda parts: {k: {**v, 'sender': 'full'} for k, v in parts.items()}  # the linear model's ablations
    whole_only = lambda parts: {k: v for k, v in parts.items() if v.get('view') != 'opening'}
    variants = [('recipe (LM fine-tuned, signals)', 'ulmfit', recipe),
                ('no LM fine-tuning', 'ulmfit', loso(ds, None, out, 'nolm', ('ulmfit',))),
                ('LM 2 epochs', 'ulmfit', loso(ds, out/'lm_e2', out, 'lm2', ('ulmfit',))),
                ('no sender/header signals', 'ulmfit', plain),
                ('linear (recipe)', 'linear', recipe),
                ('linear, no sender/header signals', 'linear', plain),
                ("linear with the sender's name and address", 'linear', loso(ds, None, out, 'linsender', ('linear',), with_sender(TFIDF_PARTS), demo)),
                ('linear without the opening view', 'linear', loso(ds, None, out, 'linwhole', ('linear',), whole_only(TFIDF_PARTS), demo)),
                ('linear with the sender, without the opening view', 'linear', loso(ds, None, out, 'linbefore', ('linear',), with_sender(whole_only(TFIDF_PARTS)), demo)),
                ('linear without the demo mailbox (the model before)', 'linear', loso(ds, None, out, 'linnodemo', ('linear',)))]
    table, enough = [], status_sources(ds)
    for name, model, rows in variants:
        t = pd.DataFrame(rows).set_index('source')
        table.append({'variant': name, 'model': model, 'mean job_app acc': t[f'{model}_job_app_acc'].mean(),
                      'mean status F1 (core)': t[f'{model}_status_f1'].mean(),
                      f'mean status F1, >= {MIN_STATUS_JOBS} job emails': t.loc[t.index.isin(enough), f'{model}_status_f1'].mean(), 'mean ECE': t[f'{model}_ece'].mean(),
                      **{src: t.loc[src, f'{model}_job_app_acc'] for src in t.index}})
    return pd.DataFrame(table)

def test_split_adapted(ds:pd.DataFrame, out:Path) -> pd.DataFrame:
    "The linear model on the test split with job_app adapted per mailbox (each source's test emails as that person's mail), beside the plain one."
    test, rows = ds[ds['split'] == 'test'], []
    pred = model_predictions(out/'linear', test)
    plain = pred['job_app_prob'].to_numpy()
    adapted = plain.copy()
    for src in sorted(test['source'].unique()):
        m = (test['source'] == src).to_numpy()
        adapted[m], share = adapt_prior(plain[m])
        y = test['job_app'].to_numpy(bool)[m]
        rows.append({'mailbox': src, 'emails': int(m.sum()), 'true share': y.mean(), 'share found': share,
                     'accuracy': (job_app_decision(plain[m]) == y).mean(), 'accuracy adapted': (job_app_decision(adapted[m]) == y).mean()})
    y = test['job_app'].to_numpy(bool)
    rows.append({'mailbox': 'all', 'emails': len(test), 'true share': y.mean(), 'accuracy': (job_app_decision(plain) == y).mean(),
                 'accuracy adapted': (job_app_decision(adapted) == y).mean(), 'ECE': expected_calibration_error(y, plain),
                 'ECE adapted': expected_calibration_error(y, adapted)})
    return pd.DataFrame(rows)

def held_out_predictions(ds:pd.DataFrame, out:Path, variant:str='') -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    "Every email of `ds` with its prediction by the `loso` linear model (`variant`) that never saw its mailbox, and its job_app probability adapted to that mailbox's prior."
    tag = f'_{variant}' if variant else ''
    mailboxes, preds, adapted = [], [], []
    for src, mail in ds.groupby('source', sort=True):
        preds.append(model_predictions(out/f'loso{tag}_{_dir_tag(src)}_linear', mail))
        adapted.append(adapt_prior(preds[-1]['job_app_prob'].to_numpy())[0]); mailboxes.append(mail)
    return pd.concat(mailboxes), pd.concat(preds), np.concatenate(adapted)

def pooled_held_out(ds:pd.DataFrame, out:Path, variant:str='') -> dict:
    "Every email scored by the `loso` linear model (`variant`) that never saw its mailbox, pooled: job_app accuracy, ECE (plain and prior adapted per mailbox), status macro-F1."
    mail, pred, adapted = held_out_predictions(ds, out, variant)
    ja, st = labels_of(mail)
    m = classification_metrics(ja, st, pred['job_app_prob'].to_numpy(), pred['status_pred'].to_numpy())
    return {'pooled job_app acc': m['job_app']['accuracy'], 'pooled ECE': m['job_app']['ece'],
            'pooled ECE adapted': expected_calibration_error(ja, adapted), 'pooled status F1': m['status']['macro_f1_core']}

def held_out_status(ds:pd.DataFrame, out:Path) -> pd.DataFrame|None:
    "The status of every job email (true label) against the `loso` linear model's status for it, pooled over the held-out mailboxes; with each true status's low-confidence labels (None until every mailbox has its model)."
    if not all((out/f'loso_{_dir_tag(s)}_linear'/'linear.json').exists() for s in ds['source'].unique()): return None
    mail, pred, _ = held_out_predictions(ds, out)
    ja, st = labels_of(mail)
    order = [s for s in STATUSES if s in set(st[ja]) | set(pred['status_pred'].to_numpy()[ja])]
    table = pd.crosstab(pd.Categorical(st[ja], order), pd.Categorical(pred['status_pred'].to_numpy()[ja], order), dropna=False)
    table.index.name, table.columns.name = 'true status', 'predicted'
    table.columns = table.columns.astype(str)
    table['low-confidence labels'] = pd.Series(~sure_labels(mail)[ja]).groupby(st[ja]).sum().reindex(order).fillna(0).astype(int).to_numpy()
    return table

def linear_summary(rows:list[dict], lin:Path, test:pd.DataFrame, enough:list[str], pooled:dict|None=None) -> dict:
    "Held-out means of a linear model's leave-one-source-out `rows` (and `pooled_held_out`'s figures), and the test-split figures of `lin` (its model trained on the train split)."
    t = pd.DataFrame(rows).set_index('source')
    ja, st = labels_of(test)
    pred = model_predictions(lin, test)
    m = classification_metrics(ja, st, pred['job_app_prob'].to_numpy(), pred['status_pred'].to_numpy())
    return {'held out: mean job_app acc': t['linear_job_app_acc'].mean(), 'prior adapted': t['linear_prior_job_app_acc'].mean(),
            f'status F1 (>= {MIN_STATUS_JOBS} job emails)': t.loc[t.index.isin(enough), 'linear_status_f1'].mean(), 'ECE': t['linear_ece'].mean(),
            'ECE adapted': t['linear_prior_ece'].mean(), **(pooled or {}), **{f'{s}': t.loc[s, 'linear_job_app_acc'] for s in t.index},
            'test split job_app acc': m['job_app']['accuracy'], 'test ECE': m['job_app']['ece'], 'test status F1': m['status']['macro_f1_core']}

DEMO_SEEDS = (42, 1, 2)

def demo_seeds(ds:pd.DataFrame, out:Path, recipe_seed:int, recipe_rows:list|None) -> pd.DataFrame:
    "The linear recipe with the demo mailbox of each of `DEMO_SEEDS`: leave-one-source-out means and the test split, to show how much the generated mail's draw moves them."
    rows, enough, test = [], status_sources(ds), ds[ds['split'] == 'test']
    for seed in DEMO_SEEDS:
        recipe = seed == recipe_seed and recipe_rows is not None and (out/'linear'/'linear.json').exists()  # the `loso` and `linear` stages' own runs
        held = recipe_rows if recipe else loso(ds, None, out, f'demoseed{seed}', ('linear',), linear_extra=training_demo(seed))
        lin = out/'linear' if recipe else out/f'linear_demoseed{seed}'
        if not (lin/'linear.json').exists(): train_linear(ds, lin, seed=seed, demo_mail=True)
        baseline = tfidf_baseline(ds[ds['split'] == 'train'], test, extra=training_demo(seed))  # the baseline given the same mail
        base = classification_metrics(*labels_of(test), baseline['job_app_prob'].to_numpy(), baseline['status_pred'].to_numpy())
        rows.append({'demo seed': seed, **linear_summary(held, lin, test, enough, pooled_held_out(ds, out, '' if recipe else f'demoseed{seed}')),
                     'test split TF-IDF + LR with the demo mailbox': base['job_app']['accuracy']})
    return pd.DataFrame(rows)

def without_quotes(df:pd.DataFrame) -> pd.DataFrame:
    "The table with no reply's quoted part: model inputs without `xxquote`."
    return df.assign(quoted='')

def quote_ablation(ds:pd.DataFrame, out:Path, recipe_rows:list, demo:pd.DataFrame, seed:int) -> pd.DataFrame:
    "The linear recipe beside the same without the message a reply answers (`xxquote`), in its training mail, the demo mailbox's and the test mail."
    enough, bare = status_sources(ds), without_quotes(ds)
    if not (out/'linear'/'linear.json').exists(): train_linear(ds, out/'linear', seed=seed, demo_mail=True)  # the `linear` stage's model
    lin = out/'linear_noquote'
    if not (lin/'linear.json').exists(): LinearModel.train(pd.concat([bare[bare['split'] == 'train'], without_quotes(demo)])).save(lin)
    held = loso(bare, None, out, 'noquote', ('linear',), linear_extra=without_quotes(demo))
    return pd.DataFrame([{'linear': 'the recipe (with the quoted message)', **linear_summary(recipe_rows, out/'linear', ds[ds['split'] == 'test'], enough)},
                         {'linear': 'without the quoted message', **linear_summary(held, lin, bare[bare['split'] == 'test'], enough)}])

FRENCH = 'capitalyzer-linkedin'  # the one mailbox in French

def _dir_tag(source:str) -> str: return re.sub(r"[^a-z0-9]+", "_", source)

def french_mailbox(ds:pd.DataFrame, out:Path, labeled:Path, demo:pd.DataFrame) -> pd.DataFrame:
    "Every labeled email of the French mailbox, classified by the leave-one-source-out models trained without it, and TF-IDF + LR on the labeled rows alone and with `demo`, the linear recipe's demo mailbox."
    path = out/'french.json'
    baselines = {LOSO_NAMES['tfidf']: None, LOSO_NAMES['tfidf_demo']: demo}
    if path.exists() and set(baselines) <= {r['model'] for r in json.loads(path.read_text())}: return pd.DataFrame(json.loads(path.read_text()))  # one from before a baseline was added is redone
    full = labeled_emails(labeled)
    fr = full[full['source'] == FRENCH]
    ja, st = labels_of(fr)
    tag, rows = _dir_tag(FRENCH), []
    def row(name, job_app_prob, status_pred):
        m = classification_metrics(ja, st, job_app_prob, status_pred)
        pred = job_app_decision(job_app_prob)
        rows.append({'model': name, 'emails': len(fr), 'job_app accuracy': m['job_app']['accuracy'], 'job emails found': pred[ja].mean(),
                     'other emails rejected': (~pred[~ja]).mean(), 'ECE': m['job_app']['ece'], 'status macro-F1': m['status']['macro_f1_core']})
    for name, d, adapted in (('ULMFiT', out/f'loso_{tag}', False), ('linear (recipe: with the demo mailbox)', out/f'loso_{tag}_linear', True),
                             ('linear without the demo mailbox', out/f'loso_linnodemo_{tag}_linear', False), ('ensemble', out/f'loso_{tag}_ensemble', False)):
        if d.exists():
            pred = model_predictions(d, fr)
            row(name, pred['job_app_prob'].to_numpy(), pred['status_pred'].to_numpy())
            if adapted: row('linear (recipe), job_app prior adapted to the mailbox', adapt_prior(pred['job_app_prob'].to_numpy())[0], pred['status_pred'].to_numpy())
    rest = ds[(ds['source'] != FRENCH) & (ds['split'] != 'valid')]
    for name, extra in baselines.items():
        b = tfidf_baseline(rest, fr, extra=extra)
        row(name, b['job_app_prob'].to_numpy(), b['status_pred'].to_numpy())
    path.write_text(json.dumps(rows, indent=1))
    return pd.DataFrame(rows)

def raw_corpus_name(path:str) -> str:
    "Which raw corpus a message of `raw/` comes from: SpamAssassin ham or spam, Enron, or Enron's 'Employment arrangements' folder."
    if '/enron-berkeley/' in path: return 'Enron: employment arrangements (1.5)' if '/enron-berkeley/5/' in path else 'Enron: other categories'
    return 'SpamAssassin spam' if '/spam-' in path else 'SpamAssassin ham'

def unseen_mail(ds:pd.DataFrame, out:Path) -> pd.DataFrame:
    "Every raw SpamAssassin and Enron message (2002-2003 mail, in no training set) scored by the test-split models and TF-IDF + LR: how many each flags as job applications, per corpus."
    path = out/'unseen.json'
    if path.exists(): return pd.DataFrame(json.loads(path.read_text()))
    df = ingest([p for p in (shared_data('raw/spamassassin'), shared_data('raw/enron-berkeley')) if p])
    df['corpus'] = df['source'].map(raw_corpus_name)
    table = df.groupby('corpus').size().rename('messages').to_frame()
    flagged = lambda prob: pd.Series(job_app_decision(prob), index=df.index).groupby(df['corpus']).sum()
    for name, label in (('model', 'ULMFiT'), ('linear', 'linear'), ('ensemble', 'ensemble')):
        if (out/name).exists(): table[f'flagged by {label}'] = flagged(model_predictions(out/name, df)['job_app_prob'])
    table[f"flagged by {LOSO_NAMES['tfidf']}"] = flagged(tfidf_baseline(ds[ds['split'] == 'train'], df)['job_app_prob'])
    rows = table.reset_index().to_dict('records')
    path.write_text(json.dumps(rows, indent=1, default=int))
    return pd.DataFrame(rows)

def job_app_logits(model_dir:Path, df:pd.DataFrame) -> np.ndarray:
    "The ULMFiT job_app learner's logits (False, True) for the rows of `df`, from its sealed pickle."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # our own freshly sealed pickle
        learn = load_pickle_learner(model_dir, head='job_app')
    classes = [str(c) for c in learn.dls.vocab[1]]
    z = learn.get_preds(dl=learn.dls.test_dl(pd.DataFrame({'text': model_inputs(df)}), bs=64), act=noop)[0].float().numpy()
    return z[:, [classes.index('False'), classes.index('True')]]

def calibration(ds:pd.DataFrame, out:Path) -> pd.DataFrame:
    "Per held-out source: ECE of the leave-one-source-out ULMFiT model as trained, after temperature scaling and after isotonic regression fitted on its valid split."
    path, rows = out/'calibration.json', []
    if path.exists(): return pd.DataFrame(json.loads(path.read_text()))
    soft = lambda z: np.exp(z[:, 1] - np.logaddexp(z[:, 0], z[:, 1]))
    for src in sorted(ds['source'].unique()):
        md = out/f'loso_{_dir_tag(src)}'
        valid, test = ds[(ds['source'] != src) & (ds['split'] == 'valid')], ds[ds['source'] == src]
        zv, zt = job_app_logits(md, valid), job_app_logits(md, test)
        yv, yt = valid['job_app'].to_numpy(bool), test['job_app'].to_numpy(bool)
        t = fit_temperature(zv, yv.astype(int))
        iso = IsotonicRegression(out_of_bounds='clip', y_min=1e-3, y_max=1 - 1e-3).fit(soft(zv), yv)
        rows.append(dict(source=src, n_valid=len(valid), temperature=t, ece=expected_calibration_error(yt, soft(zt)),
                         ece_temperature=expected_calibration_error(yt, soft(zt / t)), ece_isotonic=expected_calibration_error(yt, iso.predict(soft(zt))),
                         accuracy=float((job_app_decision(soft(zt)) == yt).mean()), accuracy_isotonic=float((job_app_decision(iso.predict(soft(zt))) == yt).mean())))
    path.write_text(json.dumps(rows, indent=1))
    return pd.DataFrame(rows)

def report(out:Path, ds:pd.DataFrame, lm_a:Path, results:dict, loso_rows:list|None, seconds:float, ablation=None, calib=None, french=None, adapted=None,
           seeds=None, unseen=None, quotes=None, status=None) -> str:
    "results.md: the LMs, the test-split table, per source, and the leave-one-source-out table (what has run so far)."
    lines = [f"# ULMFiT on ../shared/data (size {SIZE}, unfreezing epochs {EPOCHS}, no Wikitext-103)", ""]
    for d in [d for d in (lm_a, out/'lm') if (d/'lm.json').exists()]:
        meta = load_lm_dir(d)
        lines.append(f"- LM {d.name}: {meta['n_texts']} texts, {meta.get('n_train_tokens') or 0:,} training tokens, vocab {meta['vocab_size']}, "
                     f"perplexity by epoch {[round(p, 1) for p in meta['perplexities']]}, {meta['seconds']} s")
    lines.append("")
    if 'model' in results:
        tab = summary_table(results['model']).rename(columns={'TF-IDF + LR': LOSO_NAMES['tfidf']})
        for col, name in (('ULMFiT without LM fine-tuning', 'nolm'), ('linear (jobmail.linear)', 'linear'), ('ensemble', 'ensemble')):
            if name in results: tab.insert(len(tab.columns) - 1, col, summary_table(results[name]).iloc[:, 0])
        named = {'ULMFiT': 'model', 'ULMFiT without LM fine-tuning': 'nolm', 'linear': 'linear', 'ensemble': 'ensemble'}
        intervals = accuracy_intervals({**{k: results[v]['model'] for k, v in named.items() if v in results}, LOSO_NAMES['tfidf']: results['model']['baseline']})
        lines += [f"## Test split (n={results['model']['model']['n']}, balanced, group-aware)", "", tab.to_markdown(), "", intervals, ""]
        sure = {k: results[v]['sure_labels'] for k, v in named.items() if v in results and 'sure_labels' in results[v]}
        if sure:
            first = next(iter(sure.values()))
            models = {**{k: v['model'] for k, v in sure.items()}, **({LOSO_NAMES['tfidf']: first['baseline']} if 'baseline' in first else {})}
            headline = lambda m: {'job_app accuracy': m['job_app']['accuracy'], 'job_app ECE': m['job_app']['ece'],
                                  'status macro-F1 (applied/rejection/other)': m['status']['macro_f1_core']}
            lines += [f"On the {first['model']['n']} sure labels ({first['n_doubtful']} marked low confidence by the labelers left out):", "",
                      pd.DataFrame({k: headline(m) for k, m in models.items()}).round(3).to_markdown(), "", accuracy_intervals(models), ""]
        lines += ["## Per source (test split, ULMFiT)", "", pd.DataFrame(results['model']['per_source']).round(3).to_markdown(index=False), ""]
    if loso_rows:
        t = pd.DataFrame(loso_rows)
        means = lambda col, rows: ', '.join(f"{name} {rows[f'{m}_{col}'].mean():.3f}" for m, name in LOSO_NAMES.items() if f'{m}_{col}' in rows)
        enough = t[t['source'].isin(status_sources(ds))]
        lines += ["## Leave one source out (train on the others, test on every row of the held-out source)", "",
                  "The LM saw the non-test texts of every source, unlabeled. "
                  f"tfidf: {LOSO_NAMES['tfidf']}; tfidf_demo: TF-IDF + LR on the labeled rows and the demo mailbox the linear model trains with.", "",
                  t.round(3).to_markdown(index=False), "", f"mean job_app accuracy: {means('job_app_acc', t)}", "",
                  f"mean status macro-F1 (applied/rejection/other) over the {len(enough)} held-out sources with >= {MIN_STATUS_JOBS} job emails: "
                  f"{means('status_f1', enough)}", ""]
        if 'linear_sure_job_app_acc' in t:
            lines += [f"on the sure labels ({int(t['n_sure'].sum())} of {int(t['n'].sum())} held-out emails): mean job_app accuracy "
                      f"{means('sure_job_app_acc', t)}; mean status macro-F1 {means('sure_status_f1', enough)}", ""]
    if status is not None:
        lines += ["## Status held out, pooled: every job email's true status against the linear model that never saw its mailbox", "",
                  status.to_markdown(), ""]
    if ablation is not None:
        lines += ["## Ablations (leave one source out: mean over the five held-out mailboxes, and job_app accuracy per mailbox)", "",
                  "LM epochs: `lm/` against `lm_e2/`, the same corpus and rate for 2 epochs. Without signals: no sender and no",
                  "headers in training and test (no xxfrom / xxdomain / xxats / xxbulk tokens).", "",
                  ablation.round(3).to_markdown(index=False), ""]
    if adapted is not None:
        lines += ["## The linear model on the test split, job_app adapted per mailbox (jobmail.predict.adapt_prior)", "",
                  adapted.round(3).to_markdown(index=False), ""]
    if seeds is not None:
        lines += ["## The linear recipe with the demo mailbox drawn from other seeds", "", seeds.round(3).to_markdown(index=False), ""]
    if quotes is not None:
        lines += ["## The linear recipe with and without the message a reply answers (xxquote)", "", quotes.round(3).to_markdown(index=False), ""]
    if unseen is not None:
        lines += ["## Raw SpamAssassin and Enron mail, flagged as job applications by the test-split models", "",
                  unseen.to_markdown(index=False), ""]
    if french is not None:
        lines += [f"## The French mailbox ({FRENCH}), every labeled email, by models trained without it", "",
                  french.round(3).to_markdown(index=False), ""]
    if calib is not None:
        lines += ["## Calibration of ULMFiT (leave one source out; temperature / isotonic fitted on each model's valid split)", "",
                  calib.round(3).to_markdown(index=False), "", f"mean ECE: as trained {calib['ece'].mean():.3f}, temperature "
                  f"{calib['ece_temperature'].mean():.3f}, isotonic {calib['ece_isotonic'].mean():.3f}; mean temperature {calib['temperature'].mean():.2f}", ""]
    lines.append(f"total {seconds:.0f} s")
    (out/'results.md').write_text('\n'.join(lines))
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='runs/real'); ap.add_argument('--lm-a', default='')
    ap.add_argument('--stages', default='data,lm,model,nolm,linear,ensemble,loso'); ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--size', default='small', help="jobmail.lm.LM_SIZES name of the LM and classifiers ('full' wants a GPU)")
    ap.add_argument('--lm-a-docs', type=int, default=4000); ap.add_argument('--raw-docs', type=int, default=3000)
    ap.add_argument('--enron-docs', type=int, default=3000)
    ap.add_argument('--lm-corpus', default='sample', choices=['sample', 'all'], help='outside mail in the LM corpus: a sample or all of it')
    ap.add_argument('--epochs', default='3,3,3,10', help='classifier epochs of the four unfreezing stages')
    ap.add_argument('--lm-epochs', type=int, default=0, help='LM epochs (default 10 from scratch, 3 from --lm-a)')
    ap.add_argument('--lm-minutes', type=float, default=None, help='LM time budget: as many of --lm-epochs as fit')
    ap.add_argument('--lm-clip', type=float, default=None, help='clip the LM gradient norm (0.25 keeps a short full-size run from diverging)')
    ap.add_argument('--lm-demo', action='store_true', help="add the demo mailbox's texts (English and French) to the LM corpus")
    ap.add_argument('--ulmfit-demo', action='store_true', help='train the ULMFiT classifiers with the demo mailbox too, as the linear recipe is')
    ap.add_argument('--lm-bs', type=int, default=64); ap.add_argument('--bs', type=int, default=32, help='classifier batch size')
    ap.add_argument('--loso-sources', default='', help='the loso stage: these held-out sources, in this order (default all)')
    ap.add_argument('--loso-models', default=','.join(LOSO_MODELS), help="the loso stage's models (linear,tfidf,tfidf_demo: no LM needed; tfidf: TF-IDF + LR on the labeled rows only, tfidf_demo: with the demo mailbox too)")
    args = ap.parse_args()
    global EPOCHS, SIZE, BS
    EPOCHS, SIZE, BS = tuple(int(e) for e in args.epochs.split(',')), args.size, args.bs
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(',')
    t0 = time.time()
    labeled, stamp = shared_data('labeled/job_emails.jsonl'), out/'dataset.fingerprint'
    if not (out/'dataset.parquet').exists():
        if labeled is None: return 0
        write_table(split_dataset(labeled_emails(labeled), args.seed), out/'dataset.parquet')
        stamp.write_text(data_fingerprint(labeled))
    elif labeled is not None and stamp.exists() and stamp.read_text() != data_fingerprint(labeled):
        sys.exit(f"{out}/dataset.parquet was built from other labeled data or another jobmail.ingest / jobmail.dataset, "
                 "and every later stage is cached on it: use a new --out")
    ds = read_table(out/'dataset.parquet')
    print(pd.crosstab(ds['split'], ds['job_app']).to_string(), flush=True)
    lm_a = Path(args.lm_a) if args.lm_a else out/'lm_a'
    if 'lm_a' in stages and not (lm_a/'encoder.pth').exists():
        enron = shared_data('corpus/enron_spam.jsonl.gz')
        train_lm(lm_corpus([read_table(enron)], max_chars=1500, max_docs=args.lm_a_docs, seed=args.seed), lm_a, size=SIZE,
                 pretrained='none', epochs=2, lr=5e-3, max_vocab=8000, seed=args.seed)
    needs_corpus = ('corpus' in stages or 'lm' in stages and not (out/'lm'/'encoder.pth').exists()
                    or 'ablations' in stages and not (out/'lm_e2'/'encoder.pth').exists())
    if needs_corpus and not (out/'lm_corpus.parquet').exists():
        write_table(pd.DataFrame({'text': lm_texts(ds, args.lm_corpus, args)}), out/'lm_corpus.parquet')
    if 'lm' in stages and not (out/'lm'/'encoder.pth').exists():
        texts = read_table(out/'lm_corpus.parquet')['text'].tolist()
        print(f'LM fine-tuning corpus: {len(texts)} texts', flush=True)
        start = lm_a/'fastai' if (lm_a/'encoder.pth').exists() else None
        train_lm(texts, out/'lm', size=SIZE, pretrained=str(start) if start else 'none', epochs=args.lm_epochs or (3 if start else 10),
                 lr=2e-3 if start else 1e-2, bs=args.lm_bs, max_vocab=12000, seed=args.seed, minutes=args.lm_minutes, clip=args.lm_clip)
        print(report(out, ds, lm_a, {}, None, time.time() - t0), flush=True)
    demo = training_demo(args.seed) if {'loso', 'ablations', 'calibration', 'french', 'quotes'} & set(stages) or args.ulmfit_demo else None
    ulmfit_extra = demo if args.ulmfit_demo else None
    results = {}
    for name in [s for s in stages if s in ('model', 'linear', 'ensemble', 'nolm')]:
        if not (out/f'eval_{name}'/'eval.json').exists():
            if name == 'linear' and not (out/name/'linear.json').exists(): train_linear(ds, out/name, seed=args.seed, demo_mail=True)  # as `jobmail train --demo-mail`
            elif name == 'ensemble' and not (out/name/'MANIFEST.json').exists(): build_ensemble(out/'model', out/'linear', out/name, valid=ds[ds['split'] == 'valid'])
            elif name in ('model', 'nolm') and not (out/name/'MANIFEST.json').exists():
                train = pd.concat([ds, ulmfit_extra], ignore_index=True)
                trained = train_heads(train, out/'lm' if name == 'model' else None, size=SIZE, out=out/name, epochs=EPOCHS, bs=BS, num_it=NUM_IT, seed=args.seed)
                export_model(trained, out/name, train)
            evaluate(out/name, ds, out=out/f'eval_{name}')
        results[name] = json.loads((out/f'eval_{name}'/'eval.json').read_text())
        print(report(out, ds, lm_a, results, None, time.time() - t0), flush=True)
    rows = loso(ds, out/'lm', out, models=tuple(args.loso_models.split(',')), linear_extra=demo, sources=[s for s in args.loso_sources.split(',') if s] or None, ulmfit_extra=ulmfit_extra) if {'loso', 'ablations', 'calibration', 'french', 'quotes'} & set(stages) else None
    abl = ablations(ds, out, args, rows, demo) if 'ablations' in stages else None
    print(report(out, ds, lm_a, results, rows, time.time() - t0, abl, calibration(ds, out) if 'calibration' in stages else None,
                 french_mailbox(ds, out, labeled, demo) if 'french' in stages and labeled is not None else None,
                 test_split_adapted(ds, out) if 'loso' in stages and (out/'linear').exists() else None,
                 demo_seeds(ds, out, args.seed, rows) if 'demo_seeds' in stages else None,
                 unseen_mail(ds, out) if 'unseen' in stages and shared_data('raw/spamassassin') else None,
                 quote_ablation(ds, out, rows, demo, args.seed) if 'quotes' in stages else None,
                 held_out_status(ds, out) if 'loso' in stages else None))

if __name__ == '__main__': sys.exit(main())
