"""Annotators: who labels image pairs for human-in-the-loop training.

HiLLIE (Zhao et al., Sec. 3.2.1 and Appendix B) shows each selected pair of enhanced images of
the same content to three annotators, who each mark the better image; the majority vote is the
pair's ranking label. An *annotator* plugin provides those labels: people through llbench's
study server, a simulated committee of no-reference models, an oracle with held-out references,
or a third party's crowd-sourcing service. Plugins register an
:class:`~llbench.api.specs.AnnotatorSpec` whose ``build(options)`` returns an :class:`Annotator`::

    from llbench.api import Annotator, AnnotatorSpec, Label, hookimpl

    class Crowd(Annotator):
        human = True

        def annotate(self, pairs, context):
            job = submit_or_find_job(context.run, context.stage, pairs)
            if not job.complete():
                raise WaitingForInput(f"crowd job {job.url}: {job.progress()}")
            return [Label.from_votes(p.id, job.votes_a(p.id), job.votes_b(p.id)) for p in pairs]

    @hookimpl
    def register_annotators(register):
        register(AnnotatorSpec(name="crowd", build=lambda options: Crowd(), summary="...",
                               human=True))

``annotate`` either returns one :class:`Label` per pair, or raises
:class:`~llbench.errors.WaitingForInput` saying what it waits for and where; the training that
asked is stored as waiting, and running the same command again calls ``annotate`` again with the
same pairs. ``annotate`` must therefore be idempotent: find the job it created before instead of
creating a second one. This module imports nothing heavy.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIDES = ("a", "b")


@dataclass(frozen=True)
class Pair:
    """One pair to label: two versions of the same content (e.g. one input enhanced by two
    stages of a model).

    ``id`` is unique within a training run and stable across resumes. ``condition_a`` /
    ``condition_b`` name what produced each image (``"f1"``, ``"f2"``). ``reference`` is a
    held-out normal-light image of the content, given only to annotators whose spec declares
    ``leaks_supervision`` (an oracle ablation); it is None otherwise.
    """

    id: str
    content: str
    condition_a: str
    path_a: Path
    condition_b: str
    path_b: Path
    reference: Path | None = None


@dataclass(frozen=True)
class Label:
    """The label of one pair: which side is better (``"a"`` or ``"b"``) and the votes behind it.

    ``agreement`` is the share of votes for the winner (1.0: unanimous; 2/3: two of three).
    """

    pair: str
    winner: str
    votes_a: int
    votes_b: int

    def __post_init__(self) -> None:
        if self.winner not in SIDES:
            raise ValueError(f"label of pair {self.pair!r}: winner must be 'a' or 'b'")
        if self.votes_a < 0 or self.votes_b < 0:
            raise ValueError(f"label of pair {self.pair!r}: negative vote count")
        if (self.votes_a > self.votes_b and self.winner != "a") or (
            self.votes_b > self.votes_a and self.winner != "b"
        ):
            raise ValueError(f"label of pair {self.pair!r}: the winner lost the vote")

    @property
    def votes(self) -> int:
        return self.votes_a + self.votes_b

    @property
    def agreement(self) -> float:
        return max(self.votes_a, self.votes_b) / self.votes if self.votes else 1.0

    @classmethod
    def from_votes(cls, pair: str, votes_a: int, votes_b: int) -> Label:
        """The majority label of a vote; a tie is an error (ask one more annotator)."""
        if votes_a == votes_b:
            raise ValueError(f"pair {pair!r}: a tied vote ({votes_a}:{votes_b}) has no majority")
        return cls(pair, "a" if votes_a > votes_b else "b", int(votes_a), int(votes_b))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "winner": self.winner,
            "votes_a": self.votes_a,
            "votes_b": self.votes_b,
            "agreement": self.agreement,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Label:
        return cls(str(d["pair"]), str(d["winner"]), int(d["votes_a"]), int(d["votes_b"]))


@dataclass
class AnnotationContext:
    """What an annotator knows about the request.

    ``run`` identifies the training (stable across resumes; use it to name jobs), ``stage`` is
    the loop's stage, ``votes`` how many annotators should label each pair (HiLLIE: 3),
    ``home`` the llbench home (studies live there), ``workdir`` a folder the annotator may write
    to, ``seed`` the run's seed (simulated annotators draw from it), ``device`` the torch device
    of the run (a string or ``torch.device``), and ``command`` the command that resumes the run
    (for messages).
    """

    run: str
    stage: int
    home: Path
    workdir: Path
    seed: int = 0
    votes: int = 3
    device: Any = "cpu"
    command: str = "the same `llbench run` command"
    extra: dict[str, Any] = field(default_factory=dict)


class Annotator(abc.ABC):
    """Labels pairs; see the module docstring for the contract."""

    #: labels come from people (a run may wait for them)
    human: bool = False
    #: reads held-out references (results are an ablation, not human-in-the-loop training)
    leaks_supervision: bool = False

    @abc.abstractmethod
    def annotate(self, pairs: Sequence[Pair], context: AnnotationContext) -> list[Label]:
        """One :class:`Label` per pair, in the order of ``pairs``, or raise
        :class:`~llbench.errors.WaitingForInput` while labels are missing."""

    def provenance(self) -> dict[str, Any]:
        """Facts about this annotator for the run's provenance (models, noise, study names)."""
        return {}
