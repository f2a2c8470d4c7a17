"""Captioning: vocabulary, COCO readers, NIC loss, batched beam search vs a plain per-image search, COCO metrics."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from cutmix_transfer.captioning import (
    END_ID,
    PAD_ID,
    SPECIALS,
    START_ID,
    UNK_ID,
    CocoCaptionDataset,
    NICCaptioner,
    Vocabulary,
    beam_search,
    build_vocab,
    encode_batch,
    score_captions,
    tokenize,
)
from cutmix_transfer.datasets.coco_captions import load_coco_captions, load_coco_json, load_karpathy
from cutmix_transfer.errors import ConfigError, DatasetError


# ------------------------------------------------------------------------------------------------ vocabulary
def test_vocab_threshold_specials_and_order():
    caps = [["a", "dog"]] * 5 + [["a", "cat"]] * 4 + [["the", "dog", "runs"]] * 6
    v = build_vocab(caps, min_count=5)
    # counts: a 9, dog 11, cat 4, the 6, runs 6 -> cat dropped; by count desc, ties alphabetical
    assert v.words == list(SPECIALS) + ["dog", "a", "runs", "the"]
    assert v.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert (PAD_ID, START_ID, END_ID, UNK_ID) == (0, 1, 2, 3)
    assert "cat" not in v and v.id("cat") == UNK_ID
    # a word seen exactly min_count times is kept, one fewer is not
    assert "w" in build_vocab([["w"]] * 5, 5) and "w" not in build_vocab([["w"]] * 4, 5)


def test_vocab_encode_decode_max_len_and_batch():
    v = Vocabulary(list(SPECIALS) + ["a", "red", "square"])
    assert v.encode(["a", "red", "blue", "square"], max_len=16) == [4, 5, UNK_ID, 6]
    assert v.encode(["a"] * 30, max_len=16) == [4] * 16
    t = encode_batch(v, [["a", "red"], ["square"] * 20], max_len=16)
    assert t.shape == (2, 18) and t.dtype == torch.long
    assert t[0].tolist() == [START_ID, 4, 5, END_ID] + [PAD_ID] * 14
    assert t[1].tolist() == [START_ID] + [6] * 16 + [END_ID]
    assert v.decode([START_ID, 4, UNK_ID, 6, END_ID, 5, 5]) == "a <unk> square"
    assert v.decode([4, 5, PAD_ID, PAD_ID]) == "a red"


def test_vocab_save_load_and_errors(tmp_path):
    v = build_vocab([["x", "y"]] * 5)
    v.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == v
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(DatasetError, match="missing.json"):
        Vocabulary.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        Vocabulary(["a", "b"])
    with pytest.raises(ConfigError):
        build_vocab([["a"]], min_count=0)


def test_tokenize_karpathy_style():
    assert tokenize("A red square, on the LEFT.") == ["a", "red", "square", "on", "the", "left"]
    assert tokenize("It's 2 dogs!") == ["it", "s", "2", "dogs"]


# ------------------------------------------------------------------------------------------------ data
def test_karpathy_and_coco_json_agree(demo_root):
    root = demo_root / "coco"
    kp = json.loads((root / "dataset_coco.json").read_text())
    split_of = {im["cocoid"]: im["split"] for im in kp["images"]}
    train = load_karpathy(root / "dataset_coco.json", root, "train")
    assert {it.image_id for it in train} == {i for i, s in split_of.items() if s in ("train", "restval")}
    for split in ("val", "test"):
        got = load_coco_captions(root, split)  # auto -> Karpathy file
        assert {it.image_id for it in got} == {i for i, s in split_of.items() if s == split}
    # captions and paths agree with the COCO json files, read independently
    refs, files = {}, {}
    for s in ("train", "val"):
        data = json.loads((root / "annotations" / f"captions_{s}2014.json").read_text())
        for im in data["images"]:
            files[im["id"]] = root / f"{s}2014" / im["file_name"]
        for a in data["annotations"]:
            refs.setdefault(a["image_id"], []).append(a["caption"])
    for it in train:
        assert it.captions == refs[it.image_id] and it.path == files[it.image_id] and it.path.is_file()
        assert it.tokens == [tokenize(c) for c in it.captions]
    coco_val = load_coco_captions(root, "val", source="coco")
    assert {it.image_id for it in coco_val} == {i for i in refs if files[i].parent.name == "val2014"}
    assert all(it.captions == refs[it.image_id] for it in coco_val)


def test_reader_errors_name_the_path(demo_root, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(demo_root / "coco", root)
    with pytest.raises(DatasetError, match="nowhere"):
        load_coco_captions(tmp_path / "nowhere", "train")
    (root / "dataset_coco.json").write_text('{"images": [')
    with pytest.raises(DatasetError, match="dataset_coco.json"):
        load_coco_captions(root, "train")
    (root / "dataset_coco.json").unlink()
    with pytest.raises(DatasetError, match="dataset_coco.json"):  # Karpathy test split without the split file
        load_coco_captions(root, "test")
    assert len(load_coco_captions(root, "train")) > 0  # auto falls back to the COCO json files
    shutil.rmtree(root / "val2014")
    with pytest.raises(DatasetError, match="val2014"):
        load_coco_captions(root, "val")
    victim = next((root / "train2014").iterdir())
    victim.unlink()
    with pytest.raises(DatasetError, match=victim.name):
        load_coco_json(root / "annotations" / "captions_train2014.json", root / "train2014")


def test_dataset_items(demo_root):
    root = demo_root / "coco"
    items = load_coco_captions(root, "train")
    vocab = build_vocab([t for it in items for t in it.tokens], min_count=1)
    ds = CocoCaptionDataset(str(root), "train", vocab=vocab, image_size=32, max_len=16, captions_per_image=5)
    torch.manual_seed(0)
    x = ds[0]
    assert x["inputs"].shape == (3, 32, 32) and x["inputs"].dtype == torch.float32
    assert x["captions"].shape == (5, 18) and x["image_id"] == items[0].image_id
    full = encode_batch(vocab, items[0].tokens, 16)
    # five captions of a five-caption image: the same rows, shuffled
    assert sorted(map(tuple, x["captions"].tolist())) == sorted(map(tuple, full.tolist()))
    test = CocoCaptionDataset(str(root), "test", image_size=32)
    assert set(test[0]) == {"inputs", "image_id"}
    assert test.metainfo["references"][test.items[0].image_id] == test.items[0].captions


# ------------------------------------------------------------------------------------------------ model
def _tiny_vocab(n: int = 16) -> Vocabulary:
    return Vocabulary(list(SPECIALS) + [f"w{i}" for i in range(n)])


STD = 0.6


def _tiny_model(vocab: Vocabulary, seed: int = 0, end_bias: float = 0.0, end_gain: float = 1.0) -> NICCaptioner:
    torch.manual_seed(seed)
    m = NICCaptioner(vocab, arch="resnet18", embed_dim=12, hidden_dim=10, dropout=0.3, max_len=8)
    for p in (m.embed.weight, m.img_proj.weight, m.logit.weight, *m.lstm.parameters()):
        torch.nn.init.normal_(p, 0.0, STD)  # peaky, varied distributions: beams diverge and finish at different steps
    with torch.no_grad():
        m.logit.bias[END_ID] += end_bias
        m.logit.weight[END_ID] *= end_gain  # <end> probability swings with the state: captions of many lengths
    return m.double().eval()


def test_teacher_forcing_loss_equals_stepwise_decoding():
    vocab = _tiny_vocab()
    m = _tiny_model(vocab)
    emb = torch.randn(3, 12, dtype=torch.float64)
    caps = encode_batch(vocab, [["w1", "w2", "w3"], ["w4"], ["w5", "w6", "w7", "w8", "w9"]], max_len=6)
    loss = m.caption_loss(emb, caps)
    total, count = 0.0, 0
    for i in range(3):  # -log p of every target word (and <end>), fed one token at a time
        state = m.init_state(emb[i : i + 1])
        seq = caps[i].tolist()
        for t in range(len(seq) - 1):
            if seq[t + 1] == PAD_ID:
                break
            with torch.no_grad():
                logp, state = m.step(torch.tensor([seq[t]]), state)
            total -= float(logp[0, seq[t + 1]])
            count += 1
    assert count == 4 + 2 + 6
    assert float(loss.detach()) == pytest.approx(total / count, rel=1e-10)


def test_frozen_encoder_and_norm_eval():
    m = NICCaptioner(_tiny_vocab(), arch="resnet18", embed_dim=8, hidden_dim=8, freeze_encoder=True).train()
    assert not m.encoder.training and all(not p.requires_grad for p in m.encoder.parameters())
    assert m.lstm.training and m.img_proj.weight.requires_grad
    m2 = NICCaptioner(_tiny_vocab(), arch="resnet18", embed_dim=8, hidden_dim=8).train()
    assert not m2.encoder.bn1.training and m2.encoder.layer1.training  # BN stats frozen, the rest trains


# ------------------------------------------------------------------------------------------------ decoding
def plain_beam_search(model, emb_row, k, max_len, length_norm=False):
    """One image, written plainly: hypotheses as Python lists, one LSTM step per hypothesis, full sort per step."""
    state = model.init_state(emb_row[None])
    beams = [([], 0.0, state, False, START_ID)]  # words, score, state, finished, last token
    for _ in range(max_len):
        cands = []
        for words, score, st, done, last in beams:
            if done:
                cands.append((score, words, st, True, PAD_ID))
                continue
            logp, st2 = model.step(torch.tensor([last]), st)
            for w in range(logp.shape[1]):
                if w in (PAD_ID, START_ID):
                    continue
                cands.append((score + float(logp[0, w]), words + [w], st2, w == END_ID, w))
        cands.sort(key=lambda c: -c[0])
        beams = [(w, s, st, d, last) for s, w, st, d, last in cands[:k]]
        if all(b[3] for b in beams):
            break
    if length_norm:  # mean log-prob per scored token (the words, plus <end> when finished)
        words, score, _, done, _ = max(beams, key=lambda b: b[1] / max(1, len(b[0])))
    else:
        words, score, _, done, _ = max(beams, key=lambda b: b[1])
    return [w for w in words if w != END_ID], score, done


@pytest.mark.parametrize(
    "k,seed,end_bias,end_gain,length_norm",
    [
        (3, 0, -3.0, 8.0, False),
        (3, 1, -3.0, 8.0, False),
        (4, 2, -3.0, 8.0, False),
        (5, 0, -3.0, 8.0, False),
        (1, 0, -1.0, 4.0, False),
        (3, 0, -2.0, 8.0, True),
        (3, 2, -2.0, 8.0, True),
    ],
)
def test_batched_beam_search_equals_plain_per_image(k, seed, end_bias, end_gain, length_norm):
    vocab = _tiny_vocab(12)
    m = _tiny_model(vocab, seed=seed, end_bias=end_bias, end_gain=end_gain)
    m.length_norm = length_norm
    emb = torch.randn(8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        out = beam_search(m, emb, beam_size=k, max_len=8, length_norm=length_norm)
        lengths, finished = set(), set()
        for i in range(8):
            words, score, done = plain_beam_search(m, emb[i], k, 8, length_norm)
            n = int(out.lengths[i])
            assert out.tokens[i, :n].tolist() == words
            assert (out.tokens[i, n:] == PAD_ID).all()
            assert float(out.scores[i]) == pytest.approx(score, rel=1e-9, abs=1e-9)
            assert bool(out.finished[i]) == done
            lengths.add(n)
            finished.add(done)
    # captions of several lengths, some cut at max_len: the finished-hypothesis bookkeeping was exercised
    assert len(lengths) >= 3 or k == 1
    assert finished == {True, False}


def test_greedy_is_beam_one_argmax():
    vocab = _tiny_vocab(12)
    m = _tiny_model(vocab, seed=0, end_bias=-1.0, end_gain=4.0)
    emb = torch.randn(4, 12, dtype=torch.float64)
    with torch.inference_mode():
        out = beam_search(m, emb, beam_size=1, max_len=8)
        for i in range(4):
            state, tok, words, total = m.init_state(emb[i : i + 1]), START_ID, [], 0.0
            for _ in range(8):
                logp, state = m.step(torch.tensor([tok]), state)
                logp[0, [PAD_ID, START_ID]] = -math.inf
                tok = int(logp[0].argmax())
                total += float(logp[0, tok])
                if tok == END_ID:
                    break
                words.append(tok)
            assert out.tokens[i, : out.lengths[i]].tolist() == words
            assert float(out.scores[i]) == pytest.approx(total)


def test_beam_search_rejects_bad_settings():
    m = _tiny_model(_tiny_vocab(1))
    with pytest.raises(ConfigError):
        beam_search(m, torch.randn(1, 12, dtype=torch.float64), beam_size=0)
    with pytest.raises(ConfigError, match="vocabulary"):
        beam_search(m, torch.randn(1, 12, dtype=torch.float64), beam_size=4)  # 5 tokens, only 3 can be generated


# ------------------------------------------------------------------------------------------------ metrics
def _ngrams(words, n):
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def independent_bleu(refs, hyps, n_max=4):
    """Corpus BLEU with clipped counts and coco-caption's 'closest' reference length brevity penalty."""
    match, total = [0] * n_max, [0] * n_max
    hyp_len = ref_len = 0
    for i in hyps:
        h = hyps[i].split()
        rs = [r.split() for r in refs[i]]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, n_max + 1):
            hc = _ngrams(h, n)
            best = Counter()
            for r in rs:
                best |= _ngrams(r, n)
            match[n - 1] += sum(min(c, best[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    ratio = hyp_len / ref_len
    bp = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    out, prod = [], 1.0
    for n in range(n_max):
        prod *= (match[n] + 1e-15) / (total[n] + 1e-9)  # coco-caption's guards against zero counts
        out.append(bp * prod ** (1.0 / (n + 1)))
    return out


def independent_cider_d(refs, hyps, sigma=6.0):
    """CIDEr-D as defined by Vedantam et al. / coco-caption: tf-idf n-gram vectors (n=1..4), clipped
    hypothesis counts, Gaussian length penalty, mean over references, x10, IDF over the evaluated references."""
    ids = sorted(hyps)
    df = Counter()
    for i in ids:
        df.update({g for r in refs[i] for n in range(1, 5) for g in _ngrams(r.split(), n)})
    log_n = math.log(len(ids))

    def vec(words):
        v = [{g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in _ngrams(words, n).items()} for n in range(1, 5)]
        return v, [math.sqrt(sum(x * x for x in d.values())) for d in v], len(words)

    scores = []
    for i in ids:
        vh, nh, lh = vec(hyps[i].split())
        acc = np.zeros(4)
        for r in refs[i]:
            vr, nr, lr = vec(r.split())
            for n in range(4):
                dot = sum(min(x, vr[n].get(g, 0.0)) * vr[n].get(g, 0.0) for g, x in vh[n].items())
                if nh[n] != 0 and nr[n] != 0:
                    dot /= nh[n] * nr[n]
                acc[n] += dot * math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
        scores.append(float(np.mean(acc)) / len(refs[i]) * 10.0)
    return float(np.mean(scores))


REFS = {
    1: ["a red square on a striped body", "the striped body has a red patch", "a small red block"],
    2: ["a blue spot inside a large round object", "there is a blue square on it", "a large object"],
    3: ["a green block on the left", "green patch on a striped thing on the left", "a thing on the left"],
    4: ["a yellow square at the top", "yellow patch at the top of a body", "the body at the top is yellow"],
}
HYPS = {
    1: "a red square on a body",
    2: "a blue square inside a large object",
    3: "a green patch on the left",
    4: "a yellow body at the top of a square",
}


@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs Java")
def test_metrics_identical_captions_score_one():
    refs = {i: [r[0]] for i, r in REFS.items()}
    hyps = {i: r[0] for i, r in REFS.items()}
    s = score_captions(refs, hyps, scorers=("bleu", "rouge", "cider"))
    for n in range(1, 5):
        assert s[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert s["ROUGE-L"] == pytest.approx(1.0)
    assert s["SPICE"] is None and any("SPICE" in note for note in s["notes"])
    # identical hypotheses: CIDEr-D equals its own independent value and beats swapped hypotheses
    assert s["CIDEr"] == pytest.approx(independent_cider_d(refs, hyps), rel=1e-9)
    swapped = {i: hyps[1 + (i % 4)] for i in hyps}
    assert score_captions(refs, swapped, scorers=("cider",))["CIDEr"] < s["CIDEr"]


@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs Java")
def test_metrics_match_independent_bleu_and_cider():
    s = score_captions(REFS, HYPS, scorers=("bleu", "cider"))
    ref_bleu = independent_bleu(REFS, HYPS)
    for n in range(4):
        assert s[f"BLEU-{n + 1}"] == pytest.approx(ref_bleu[n], rel=1e-6)
    assert s["CIDEr"] == pytest.approx(independent_cider_d(REFS, HYPS), rel=1e-9)
    assert 0.0 < s["BLEU-4"] < s["BLEU-1"] < 1.0
    # the PTB tokenizer strips case and punctuation: the same captions written with both score the same
    loud = {i: h.capitalize() + "." for i, h in HYPS.items()}
    assert score_captions(REFS, loud, scorers=("bleu",))["BLEU-4"] == pytest.approx(s["BLEU-4"])
    with pytest.raises(ValueError, match="same images"):
        score_captions(REFS, {1: "a"}, scorers=("bleu",))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_runs_offline_and_orders_captions():
    refs = {**REFS, **{i + 4: r for i, r in REFS.items()}}  # one JVM: images 1-4 exact, 5-8 nonsense
    hyps = {**{i: r[0] for i, r in REFS.items()}, **{i + 4: "zebra giraffe umbrella" for i in REFS}}
    s = score_captions(refs, hyps, scorers=("meteor",))
    per = dict(zip(s["image_ids"], s["per_image"]["METEOR"]))
    assert all(0.9 < per[i] <= 1.0 for i in (1, 2, 3, 4)) and all(per[i] < 0.05 for i in (5, 6, 7, 8))
    assert min(per.values()) < s["METEOR"] < max(per.values())
