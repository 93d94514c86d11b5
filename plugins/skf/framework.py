"""SKF around any trainable method, through the public hooks of :mod:`llbench.api`.

:class:`SKF` takes a built :class:`~llbench.api.TrainableMethod` that exposes
:meth:`~llbench.api.TrainableMethod.decoder_sites` and
:meth:`~llbench.api.TrainableMethod.training_phases`, and a frozen segmenter (the semantic
knowledge bank). It

1. installs one SE module (:mod:`.se`) on each chosen decoder site with
   :func:`llbench.api.transform_site`; the module is fed by the segmenter's output on the
   network's current input (``batch[0]`` in training, the image given to :meth:`SKF.enhance`),
   computed once per forward pass without gradients (the segmenter is frozen, Eq. 1-3);
2. trains the base's own phases, wrapping the *last* phase's loss with the SCH loss
   (:mod:`.losses`) and the generator side of the SA loss (:mod:`.adversarial`), adding the SE
   parameters to that phase's optimizer, updating the discriminator after each generator step
   (``Phase.extra_step``) and keeping its state in the checkpoint (``Phase.extra_state``). The
   paper applies SCH and SA to the last sub-network of multi-stage bases (Sec. 4.1).

Which semantic source feeds which site (``se.sources``, default ``{}`` = automatic): the finest
site gets the segmentation logits at input size; the other sites, from fine to coarse, get the
segmenter's features from its finest stride upwards (``tiny-seg``: its encoder at strides 2 and 4);
without features every site gets the logits. For DRBN with HRNet this is the authors' assignment: 1/4 <- HRNet 1/8
(96 channels), 1/2 <- HRNet 1/4 (48), full <- logits (59). A source can be named per site:
``"logits"``, ``"probs"`` or ``"stride:N"``.

Weights: ``state_dict()`` holds the base's tensors under ``base.`` and the SE modules' under
``se.<site>.``; segmenter and discriminator are not part of the enhancer (the discriminator lives
in the training checkpoint only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from llbench.api import (
    Phase,
    Segmentation,
    Segmenter,
    TrainableMethod,
    TrainContext,
    count_parameters,
    transform_site,
)
from llbench.errors import ConfigError, WeightsError

from .adversarial import Discriminator, SALoss
from .losses import sch_loss
from .se import SEModule


def freeze(segmenter: Segmenter) -> None:
    """Eval mode and ``requires_grad = False`` for every module of ``segmenter``."""
    for m in segmenter.modules():
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)


class SiteModules(nn.Module):
    """The SE modules by site name (any name, even one an ``nn.Module`` attribute has, such as
    ``half``: entries live in ``_modules`` only and are reached by item)."""

    def __init__(self, modules: Mapping[str, nn.Module]):
        super().__init__()
        for name, module in modules.items():
            self._modules[name] = module

    def __getitem__(self, name: str) -> nn.Module:
        return self._modules[name]

    def __len__(self) -> int:
        return len(self._modules)

    def items(self):
        return self._modules.items()


class SKF(TrainableMethod):
    """A base method with semantic-aware knowledge guidance (see the module docstring).

    ``config`` keys: ``se`` (``enabled``, ``sites``, ``sources``, ``heads``, ``ffn_expansion``),
    ``sch`` (``weight``, ``bins``, ``alpha``, ``semantic``, ``normalization``, ``erode``,
    ``radius``), ``sa`` (``weight``, ``global_weight``, ``local_weight``, ``semantic``,
    ``local_in_generator``, ``patch``, ``lr_ratio``, ``betas``), ``checkpoint_every``.
    """

    def __init__(
        self,
        base: TrainableMethod,
        segmenter: Segmenter,
        config: Mapping[str, Any],
        device: torch.device | str,
        name: str = "skf",
    ):
        super().__init__(config, device)
        self.name = name
        self.base = base
        self.segmenter = segmenter
        freeze(segmenter)
        self._input: torch.Tensor | None = None
        self._seg: Segmentation | None = None
        self.training_info: dict[str, Any] = {}
        se_cfg = self.config["se"]
        probe = self._probe()
        self.num_classes = int(probe.logits.shape[1])
        self.sites = self._chosen_sites() if se_cfg["enabled"] else ()
        self.sources = self._assign_sources(probe)
        self.se = SiteModules(
            {
                s.name: SEModule(
                    self._source_channels(self.sources[s.name], probe),
                    s.channels,
                    heads=int(se_cfg["heads"]),
                    ffn_expansion=float(se_cfg["ffn_expansion"]),
                )
                for s in self.sites
            }
        ).to(self.device)
        self.net = self.se
        self.handles = [transform_site(base, s.name, self._transform(s.name)) for s in self.sites]
        self.discriminator: Discriminator | None = None

    # -- semantics ---------------------------------------------------------------------------
    def _probe(self) -> Segmentation:
        with torch.no_grad():
            return self.segmenter.segment(torch.zeros(1, 3, 64, 64, device=self.device))

    def _strides(self, seg: Segmentation) -> tuple[int, ...]:
        strides = tuple(seg.strides) or tuple(self.segmenter.feature_strides)
        if seg.features and len(strides) != len(seg.features):
            raise ConfigError(
                f"segmenter {self.segmenter.name!r} returns {len(seg.features)} features but "
                f"declares strides {strides}"
            )
        return strides if seg.features else ()

    def _chosen_sites(self):
        sites = tuple(self.base.decoder_sites())
        if not sites:
            raise ConfigError(
                f"{type(self.base).__name__} declares no decoder sites "
                "(TrainableMethod.decoder_sites), so SE modules have nowhere to go; set "
                "se.enabled = false to train with the SKF losses only"
            )
        wanted = list(self.config["se"]["sites"])
        if not wanted:
            return sites
        known = {s.name: s for s in sites}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ConfigError(f"se.sites {unknown} are not decoder sites (known: {list(known)})")
        return tuple(known[w] for w in wanted)

    def _assign_sources(self, probe: Segmentation) -> dict[str, str]:
        strides = sorted(self._strides(probe))
        ordered = sorted(self.sites, key=lambda s: s.stride)  # fine to coarse
        auto: dict[str, str] = {}
        for i, site in enumerate(ordered):
            if i == 0 or i - 1 >= len(strides):
                auto[site.name] = "logits"
            else:
                auto[site.name] = f"stride:{strides[i - 1]}"
        chosen = dict(self.config["se"]["sources"])
        unknown = sorted(set(chosen) - set(auto))
        if unknown:
            raise ConfigError(f"se.sources names {unknown}, which are not chosen sites")
        auto.update(chosen)
        for src in auto.values():
            self._source_channels(src, probe)  # validates
        return auto

    def _source(self, src: str, seg: Segmentation) -> torch.Tensor:
        if src == "logits":
            return seg.logits
        if src == "probs":
            return seg.probs
        if src.startswith("stride:"):
            stride = int(src.split(":", 1)[1])
            strides = self._strides(seg)
            if stride in strides:
                return seg.features[strides.index(stride)]
            raise ConfigError(
                f"segmenter {self.segmenter.name!r} has no feature of stride {stride} "
                f"(its strides: {strides or 'none'})"
            )
        raise ConfigError(f"unknown SE source {src!r}: use 'logits', 'probs' or 'stride:N'")

    def _source_channels(self, src: str, probe: Segmentation) -> int:
        return int(self._source(src, probe).shape[1])

    def _guidance(self) -> Segmentation:
        if self._seg is None:
            if self._input is None:
                raise RuntimeError(
                    "SKF: the wrapped network ran outside SKF.enhance / SKF's training, so its SE "
                    "modules have no semantic input"
                )
            with torch.no_grad():
                self._seg = self.segmenter.segment(self._input)
        return self._seg

    def _transform(self, site: str):
        def fn(feature: torch.Tensor) -> torch.Tensor:
            src = self._source(self.sources[site], self._guidance()).to(feature.dtype)
            return self.se[site](feature, src)

        return fn

    def _guided(self, x: torch.Tensor):
        skf = self

        class _Scope:
            def __enter__(self_inner):
                skf._input, skf._seg = x, None

            def __exit__(self_inner, *exc):
                skf._input, skf._seg = None, None

        return _Scope()

    # -- inference ---------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        low = low.to(self.device, torch.float32)
        self.se.eval()
        with self._guided(low):
            return self.base.enhance(low)

    def modules(self) -> list[nn.Module]:
        return list(self.base.modules()) + [self.se]

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"base.{k}": v for k, v in self.base.state_dict().items()}
        out.update({f"se.{k}": v for k, v in self.se.state_dict().items()})
        return out

    #: Optional ``state -> state`` mapping of an official checkpoint layout to ours (DRBN-SKF).
    official_map = None

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if self.official_map is not None and not any(k.startswith("base.") for k in state):
            state = self.official_map(state)
        base = {k[5:]: v for k, v in state.items() if k.startswith("base.")}
        se = {k[3:]: v for k, v in state.items() if k.startswith("se.")}
        other = [k for k in state if not k.startswith(("base.", "se."))]
        if other or not base:
            raise WeightsError(
                f"weights do not fit {self.name}: expected keys 'base.*' and 'se.*' (an SKF "
                f"checkpoint), found {other[:3] or 'no base.* keys'}"
            )
        self.base.load_state_dict(base)
        try:
            self.se.load_state_dict(se)
        except RuntimeError as exc:
            raise WeightsError(f"SE weights do not fit {self.name}: {exc}") from exc

    def decoder_sites(self):
        return tuple(self.base.decoder_sites())

    # -- training ----------------------------------------------------------------------------
    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        phases = list(self.base.training_phases(ctx))
        if not phases:
            raise ConfigError(f"{type(self.base).__name__}.training_phases returned no phases")
        wrapped = [dataclasses.replace(p, loss=self._guided_loss(p.loss)) for p in phases[:-1]]
        return wrapped + [self._wrap_last(phases[-1], ctx)]

    def _guided_loss(self, loss):
        def run(step, batch):
            with self._guided(batch[0]):
                return loss(step, batch)

        return run

    def _wrap_last(self, phase: Phase, ctx: TrainContext) -> Phase:
        cfg_sch, cfg_sa = self.config["sch"], self.config["sa"]
        use_sch = float(cfg_sch["weight"]) > 0
        use_sa = float(cfg_sa["weight"]) > 0
        sa: SALoss | None = None
        d_opt = None
        gen = torch.Generator().manual_seed(int(ctx.seed) + 17)
        if use_sa:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(ctx.seed) + 1)
                self.discriminator = Discriminator(self.num_classes).to(self.device)
            sa = SALoss(
                self.discriminator,
                global_weight=float(cfg_sa["global_weight"]),
                local_weight=float(cfg_sa["local_weight"]),
                semantic=bool(cfg_sa["semantic"]),
                local_in_generator=bool(cfg_sa["local_in_generator"]),
                patch=int(cfg_sa["patch"]),
            )
            d_lr = float(cfg_sa["lr_ratio"]) * self._base_lr(phase)
            d_opt = torch.optim.Adam(
                self.discriminator.parameters(),
                lr=d_lr,
                betas=tuple(float(b) for b in cfg_sa["betas"]),
                eps=1e-8,
            )
            self.training_info["discriminator_lr"] = d_lr
        cache: dict[str, torch.Tensor] = {}
        base_loss = phase.loss

        def loss(step, batch):
            low, high = batch[0], batch[1]
            with self._guided(low):
                output, terms = base_loss(step, batch)
            terms = dict(terms)
            if use_sch or use_sa:
                with torch.set_grad_enabled(use_sa):
                    seg = self.segmenter.segment(output)
                probs = seg.probs
                if use_sch:
                    terms["sch"] = float(cfg_sch["weight"]) * sch_loss(
                        output,
                        high,
                        seg.labels.detach(),
                        self.num_classes,
                        bins=int(cfg_sch["bins"]),
                        alpha=float(cfg_sch["alpha"]),
                        semantic=bool(cfg_sch["semantic"]),
                        normalization=str(cfg_sch["normalization"]),
                        erode=int(cfg_sch["erode"]),
                        radius=int(cfg_sch["radius"]),
                    )
                if sa is not None:
                    self.discriminator.train()  # batch statistics, as the code's D in train mode
                    for p in self.discriminator.parameters():
                        p.requires_grad_(False)
                    terms["sa_g"] = float(cfg_sa["weight"]) * sa.generator_loss(output, probs, gen)
                    for p in self.discriminator.parameters():
                        p.requires_grad_(True)
                    cache["probs"] = probs.detach()
            return output, terms

        def d_step(step, batch, output):
            values = {}
            if phase.extra_step is not None:
                values.update(phase.extra_step(step, batch, output))
            if sa is None:
                return values
            high = batch[1]
            with torch.no_grad():
                real_probs = self.segmenter.segment(high).probs
            self.discriminator.train()
            terms = sa.discriminator_loss(
                output.detach(), high, cache.pop("probs"), real_probs, gen
            )
            d_loss = terms["d_global"] + terms["d_local"]
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            values.update({k: float(v.detach()) for k, v in terms.items()})
            values["d_loss"] = float(d_loss.detach())
            return values

        def state():
            out = {"base": phase.extra_state() if phase.extra_state else None}
            if sa is not None:
                out["discriminator"] = self.discriminator.state_dict()
                out["d_optimizer"] = d_opt.state_dict()
            return out

        def load_state(saved):
            if phase.load_extra_state is not None and saved.get("base") is not None:
                phase.load_extra_state(saved["base"])
            if sa is not None and saved.get("discriminator") is not None:
                self.discriminator.load_state_dict(saved["discriminator"])
                d_opt.load_state_dict(saved["d_optimizer"])

        return dataclasses.replace(
            phase,
            loss=loss,
            modules=list(phase.modules) + [self.se],
            extra_step=d_step if (sa is not None or phase.extra_step) else None,
            extra_state=state,
            load_extra_state=load_state,
        )

    @staticmethod
    def _base_lr(phase: Phase) -> float:
        """The learning rate the base's last phase starts with (read from its own optimizer)."""
        probe = phase.make_optimizer([nn.Parameter(torch.zeros(1))])
        return float(probe.param_groups[0]["lr"])

    def saved_modules(self, phases: list[Phase]) -> dict[str, nn.Module]:
        """Every module the checkpoint holds: the base's, the SE modules."""
        mods: list[nn.Module] = []
        for m in list(self.base.modules()) + [m for p in phases for m in p.modules]:
            if m is not self.se and all(m is not k for k in mods):
                mods.append(m)
        saved = {f"base{i}": m for i, m in enumerate(mods)}
        saved["se"] = self.se
        return saved

    def fit(self, ctx: TrainContext) -> None:
        phases = self.training_phases(ctx)
        summary = self.fit_phases(ctx, self.name, phases, self.saved_modules(phases))
        self.training_info.update(summary)

    # -- provenance --------------------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        counts = {
            "base": count_parameters(self.base.modules()),
            "se": count_parameters(self.se),
        }
        counts.update({f"se.{k}": count_parameters(m) for k, m in self.se.items()})
        counts["total"] = counts["base"] + counts["se"]
        return counts

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "segmenter": self.segmenter.name,
            "segmenter_info": dict(getattr(self.segmenter, "info", {}) or {}),
            "sites": {s.name: self.sources[s.name] for s in self.sites},
            "parameters": self.parameter_counts(),
            "sch": dict(self.config["sch"]),
            "sa": dict(self.config["sa"]),
            "se_enabled": bool(self.config["se"]["enabled"]),
            "code_bugs_fixed": ["second SA mask aliased the first", "D loss never trained conv0"],
            "base": self.base.provenance(),
        }
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info
