"""HiLLIE's annotators (Sec. 3.2.1, Appendix B): who labels the selected pairs.

* ``study`` (people): the stage's pairs become a 2AFC study of llbench's study server
  (:func:`llbench.study.create_study_from_pairs`, one study per stage, named after the training
  and the stage). Each annotator opens the page, enters a participant id and clicks the better
  image of every pair; nothing but the two images is shown (no ground truth, as in the paper).
  Until every pair has ``votes`` answers (3) and a majority, :meth:`StudyAnnotator.annotate`
  raises :class:`~llbench.errors.WaitingForInput` with the study's URL, the command serving it
  and the progress; run the training again once the answers are in.
* ``simulated``: a committee of no-reference models, one per annotator, each voting for the
  image it scores better; the majority is the label. Following our reading of the paper
  (notes, choice 1) the committee must not contain the evaluation metrics (PI, NIQE, MUSIQ),
  which would make the evaluation circular. The default committee needs no weights, so it runs
  offline anywhere:

  - ``exposedness``: mean well-exposedness of Mertens, Kautz and Van Reeth, "Exposure Fusion"
    (PG 2007), ``prod_c exp(-(I_c - 0.5)^2 / (2 * 0.2^2))`` per pixel; higher is better;
  - ``colorfulness``: Hasler and Suesstrunk, "Measuring colourfulness in natural images"
    (SPIE 2003), ``sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2)`` on 8-bit RGB with
    ``rg = R - G``, ``yb = (R + G) / 2 - B``; higher is better;
  - ``entropy``: Shannon entropy (bits) of the 256-bin histogram of BT.601 luma, the "discrete
    entropy" of contrast-enhancement papers; higher is better.

  Any registered no-reference metric plugin may be a member instead (e.g. ``nima``,
  ``clipiqa``, ``unique``, ``brisque`` once their weights are in the cache), with its declared
  direction. ``noise`` flips each member's vote with that probability, drawn from the run's
  seed, the stage and the pair, so labels are deterministic for a seed.
* ``oracle``: a full-reference metric (default ``lpips``) against held-out references of the
  training inputs; every vote goes to the image closer to the reference. It reads ground truth
  that unpaired training must not see: its spec is marked ``leaks_supervision`` and runs with
  it are an ablation (an upper bound of what labels can do), not human-in-the-loop training.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llbench.api.annotators import AnnotationContext, Annotator, Label, Pair
from llbench.errors import ConfigError, DatasetError, WaitingForInput

EVALUATION_METRICS = ("niqe", "pi", "musiq")
DEFAULT_COMMITTEE = ("exposedness", "colorfulness", "entropy")


def majority(pair: str, votes: Sequence[str]) -> Label:
    """The label of ``pair`` from its annotators' votes (``"a"``/``"b"``); HiLLIE: three."""
    bad = [v for v in votes if v not in ("a", "b")]
    if bad:
        raise ValueError(f"votes must be 'a' or 'b', got {bad}")
    return Label.from_votes(pair, sum(v == "a" for v in votes), sum(v == "b" for v in votes))


# -- simulated committee ------------------------------------------------------------------------
def exposedness(x):
    """Mean well-exposedness (Mertens et al. 2007, sigma 0.2) of ``N x 3 x H x W`` in [0, 1]."""
    import torch

    w = torch.exp(-((x - 0.5) ** 2) / (2 * 0.2**2)).prod(dim=1)
    return w.flatten(1).mean(1)


def colorfulness(x):
    """Hasler-Suesstrunk colourfulness M^(3) on 8-bit levels, per image."""
    import torch

    r, g, b = (x * 255.0).unbind(1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def entropy(x):
    """Shannon entropy in bits of the 256-bin histogram of BT.601 luma, per image."""
    import torch

    y = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]) * 255.0
    out = []
    for im in y:
        hist = torch.bincount(im.round().clamp(0, 255).long().flatten(), minlength=256).double()
        p = hist[hist > 0] / hist.sum()
        out.append(-(p * torch.log2(p)).sum())
    return torch.stack(out).float()


BUILTIN_MEASURES: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "exposedness": (exposedness, True),
    "colorfulness": (colorfulness, True),
    "entropy": (entropy, True),
}


def _read(path):
    from llbench.io.images import read_image, to_tensor

    return to_tensor(read_image(path))


def _rng(seed: int, stage: int, pair: str, who: int) -> random.Random:
    h = hashlib.sha256(f"{seed}|{stage}|{pair}|{who}".encode()).hexdigest()
    return random.Random(int(h[:16], 16))


class SimulatedAnnotator(Annotator):
    """A committee of no-reference models, one vote each (see the module docstring)."""

    human = False

    def __init__(self, committee: Sequence[str] = DEFAULT_COMMITTEE, noise: float = 0.0):
        committee = [str(m) for m in committee]
        if not committee or len(committee) % 2 == 0:
            raise ConfigError(
                f"hillie: the simulated committee needs an odd number of members (majority "
                f"vote), got {committee}"
            )
        if not 0.0 <= float(noise) <= 0.5:
            raise ConfigError(f"hillie: simulated noise must be in [0, 0.5], got {noise}")
        self.committee = committee
        self.noise = float(noise)
        self._measures: list[tuple[Callable[[Any], Any], bool]] | None = None

    def _build(self, device: Any) -> list[tuple[Callable[[Any], Any], bool]]:
        if self._measures is not None:
            return self._measures
        from llbench.pluginhost.host import get_host

        measures = []
        for name in self.committee:
            if name in BUILTIN_MEASURES:
                measures.append(BUILTIN_MEASURES[name])
                continue
            spec = get_host().metric(name)
            if spec.kind != "no-reference" or "reference" in spec.needs:
                raise ConfigError(f"hillie: committee member {name!r} is not a no-reference metric")
            missing = spec.available()
            if missing:
                raise ConfigError(f"hillie: committee member {name!r} is unavailable: {missing}")
            metric = spec.build(device, {})
            measures.append((lambda x, m=metric: m(x), spec.higher_better))
        self._measures = measures
        return measures

    def votes(self, pair: Pair, context: AnnotationContext) -> list[str]:
        """Each member's vote on ``pair`` (``"a"``/``"b"``)."""
        import torch

        measures = self._build(context.device)
        a, b = _read(pair.path_a), _read(pair.path_b)
        out = []
        with torch.no_grad():
            for j, (fn, higher) in enumerate(measures):
                sa, sb = float(fn(a).reshape(-1)[0]), float(fn(b).reshape(-1)[0])
                rng = _rng(context.seed, context.stage, pair.id, j)
                if sa == sb or sa != sa or sb != sb:
                    vote = "a" if rng.random() < 0.5 else "b"
                else:
                    vote = "a" if (sa > sb) == higher else "b"
                if rng.random() < self.noise:
                    vote = "b" if vote == "a" else "a"
                out.append(vote)
        return out

    def annotate(self, pairs: Sequence[Pair], context: AnnotationContext) -> list[Label]:
        return [majority(p.id, self.votes(p, context)) for p in pairs]

    def provenance(self) -> dict[str, Any]:
        return {
            "committee": list(self.committee),
            "noise": self.noise,
            "circular": sorted(set(self.committee) & set(EVALUATION_METRICS)),
        }


# -- oracle ---------------------------------------------------------------------------------------
class OracleAnnotator(Annotator):
    """Every vote for the image closer to the held-out reference (an ablation)."""

    leaks_supervision = True

    def __init__(self, metric: str = "lpips"):
        self.metric_name = str(metric)
        self._metric: tuple[Any, bool] | None = None

    def _build(self, device: Any) -> tuple[Any, bool]:
        if self._metric is None:
            from llbench.pluginhost.host import get_host

            spec = get_host().metric(self.metric_name)
            if spec.kind != "full-reference":
                raise ConfigError(
                    f"hillie: the oracle needs a full-reference metric; {spec.name!r} is "
                    f"{spec.kind}"
                )
            missing = spec.available()
            if missing:
                raise ConfigError(f"hillie: oracle metric {spec.name!r} is unavailable: {missing}")
            self._metric = (spec.build(device, {}), spec.higher_better)
        return self._metric

    def annotate(self, pairs: Sequence[Pair], context: AnnotationContext) -> list[Label]:
        import torch

        metric, higher = self._build(context.device)
        labels = []
        with torch.no_grad():
            for p in pairs:
                if p.reference is None:
                    raise DatasetError(
                        f"hillie oracle: no held-out reference for {p.content!r}; set "
                        "oracle.references to the paired dataset holding the training inputs' "
                        "references"
                    )
                ref = _read(p.reference)
                sa = float(metric(_read(p.path_a), ref, None).reshape(-1)[0])
                sb = float(metric(_read(p.path_b), ref, None).reshape(-1)[0])
                if sa == sb:
                    win = "a" if _rng(context.seed, context.stage, p.id, 0).random() < 0.5 else "b"
                else:
                    win = "a" if (sa > sb) == higher else "b"
                n = context.votes
                labels.append(Label(p.id, win, n if win == "a" else 0, n if win == "b" else 0))
        return labels

    def provenance(self) -> dict[str, Any]:
        return {"metric": self.metric_name, "leaks_supervision": True}


# -- people, through the study server ------------------------------------------------------------
INSTRUCTIONS = (
    "Two versions of the same low-light photo, enhanced in two ways, are shown side by side. "
    "Click the one that looks better to you at first overall impression (or press the left or "
    "right arrow key). There is no right answer and no reference: follow your own preference. "
    "Scroll over an image to zoom in, drag to pan, press 0 to reset the view."
)


class StudyAnnotator(Annotator):
    """Three people per pair through llbench's study server (see the module docstring)."""

    human = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, title: str = ""):
        self.host = str(host)
        self.port = int(port)
        self.title = str(title) or "Which enhanced image looks better?"
        self.studies: list[str] = []

    @staticmethod
    def study_name(context: AnnotationContext) -> str:
        return f"hillie-{context.run[:12]}-s{context.stage}"

    def annotate(self, pairs: Sequence[Pair], context: AnnotationContext) -> list[Label]:
        from llbench.study import PairSource, create_study_from_pairs, majority_vote
        from llbench.study.store import StudyStore

        name = self.study_name(context)
        if name not in self.studies:
            self.studies.append(name)
        sstore = StudyStore(context.home)
        by_content = {p.content: p for p in pairs}
        if len(by_content) != len(pairs):
            raise ValueError("hillie: one pair per content and stage is expected")
        if sstore.get_study(name) is None:
            create_study_from_pairs(
                context.home,
                name,
                [
                    PairSource(p.content, p.condition_a, p.path_a, p.condition_b, p.path_b)
                    for p in pairs
                ],
                seed=context.seed,
                title=self.title,
                instructions=INSTRUCTIONS,
                batch=f"stage{context.stage}",
                source={"from": "hillie", "run": context.run, "stage": context.stage},
            )
        frame = majority_vote(context.home, name, min_votes=context.votes)
        labels: dict[str, Label] = {}
        for r in frame.itertuples():
            p = by_content.get(r.content)
            if p is None or not r.winner:
                continue
            va = int(r.votes_a if r.condition_a == p.condition_a else r.votes_b)
            vb = int(r.votes - va)
            labels[p.id] = Label.from_votes(p.id, va, vb)
        if len(labels) == len(pairs):
            return [labels[p.id] for p in pairs]
        raise WaitingForInput(self._waiting(name, frame, len(labels), len(pairs), context))

    def _waiting(self, name: str, frame, done: int, total: int, ctx: AnnotationContext) -> str:
        from llbench.study import answers_frame

        answers = answers_frame(ctx.home, name)
        per = answers.groupby("participant").size().sort_values(ascending=False)
        people = ", ".join(f"{p} {n}/{total}" for p, n in per.items()) or "none yet"
        ties = int(((frame["votes"] >= ctx.votes) & (frame["winner"] == "")).sum())
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [
            f"HiLLIE stage {ctx.stage} waits for labels: {done}/{total} pairs have {ctx.votes} "
            f"answers and a majority (participants: {people})"
            + (f"; {ties} tied pair(s) need one more answer" if ties else "")
            + ".",
            f"Serve the study: llbench --home {ctx.home} study serve {name} --host {self.host} "
            f"--port {self.port}",
            f"and ask {ctx.votes} annotators to label every pair at http://{host}:{self.port}/ "
            "(each with their own participant id).",
            f"Then run {ctx.command} again to continue training.",
        ]
        return "\n".join(lines)

    def provenance(self) -> dict[str, Any]:
        return {"studies": list(self.studies), "host": self.host, "port": self.port}


def build_study(options: Mapping[str, Any]) -> StudyAnnotator:
    return StudyAnnotator(**_only(options, ("host", "port", "title"), "study"))


def build_simulated(options: Mapping[str, Any]) -> SimulatedAnnotator:
    return SimulatedAnnotator(**_only(options, ("committee", "noise"), "simulated"))


def build_oracle(options: Mapping[str, Any]) -> OracleAnnotator:
    return OracleAnnotator(**_only(options, ("metric",), "oracle"))


def _only(options: Mapping[str, Any], keys: tuple[str, ...], who: str) -> dict[str, Any]:
    extra = set(options) - set(keys) - {"references"}
    if extra:
        raise ConfigError(f"hillie: unknown {who} annotator option(s) {sorted(extra)}; {keys}")
    return {k: options[k] for k in keys if k in options}
