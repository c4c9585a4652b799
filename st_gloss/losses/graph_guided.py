"""GraphGuidedLoss: G-Loss as a sentence-transformers loss."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from st_gloss import distributed, functional
from st_gloss.compat import SentenceTransformer
from st_gloss.losses.base import LabelledTextLoss
from st_gloss.masking import stratified_labelled_mask
from st_gloss.memory import EmbeddingMemory
from st_gloss.sigma import SIGMA_RULES, compute_sigma

CITATION = """
@inproceedings{sharma2025gloss,
    title={G-Loss: Graph-Guided Fine-Tuning of Language Models},
    author={Sharma and Agarwal and Kumar},
    booktitle={Proceedings of the Learning on Graphs Conference (LoG)},
    year={2025},
    eprint={2604.25853},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
"""

DEGENERATE_BATCH_WARNING = (
    "GraphGuidedLoss got a batch in which no label can be propagated (one class only, or every class "
    "a single example); its graph loss is 0 for that batch. G-Loss needs several examples of several "
    "classes per batch: train with batch_sampler=st_gloss.ClassBalancedBatchSampler (or "
    "BatchSamplers.GROUP_BY_LABEL) and a batch size of 32 or more."
)


def _is_real(value) -> bool:
    """A real number: Python, numpy or a one-element tensor, not a bool
    ([`st_gloss.functional.as_real`][st_gloss.functional.as_real])."""
    try:
        functional.as_real(value, "value")
    except ValueError:
        return False
    return True


def _class_weight_list(class_weight, name: str) -> list[float]:
    """One finite, non-negative float per class (any sequence, array or tensor of real numbers), not all zero."""
    if isinstance(class_weight, Tensor):
        class_weight = class_weight.detach().cpu().tolist()
    try:
        weights = list(class_weight)
    except TypeError:
        weights = None
    if weights is None or not weights or not all(_is_real(w) and 0.0 <= float(w) < math.inf for w in weights) \
            or not any(w > 0 for w in weights):
        raise ValueError(
            f"{name}: class_weight must be None, 'balanced' or one finite weight >= 0 per class (not all 0), "
            f"got {class_weight!r}"
        )
    return [float(w) for w in weights]


class GraphGuidedLoss(LabelledTextLoss):
    r"""G-Loss: fine-tune the embedding space by propagating labels over the mini-batch graph.

    For each batch the loss embeds the texts, L2-normalises them and builds a fully connected graph
    with Gaussian weights. It hides the labels of a random, class-stratified part of the batch and
    propagates the visible labels to the hidden nodes in closed form (the harmonic solution of
    Zhu, Ghahramani & Lafferty, 2003; iteratively past 2048 hidden nodes). The loss is the
    negative log-likelihood of the hidden nodes' true classes under the propagated distributions.
    Gradients flow through the whole graph, so every example's position matters for every other:
    the model learns the global class structure of the space rather than pairwise or triplet
    constraints.

    $$W_{ij} = \exp\!\Big(-\frac{\lVert x_i - x_j\rVert^2}{2\sigma^2}\Big),\quad W_{ii}=0$$

    $$P = D^{-1} W,\qquad F_u = (I - P_{uu})^{-1} P_{ul} Y_l$$

    $$\mathcal{L}_G = -\frac{1}{|u|} \sum_{i \in u} \log F_{i, y_i}$$

    $$\mathcal{L} = \lambda\, \mathcal{L}_G + (1 - \lambda)\, \mathcal{L}_{CE}$$

    Embeddings with a NaN or inf entry (an fp16 overflow, diverged weights) are refused with a
    ``ValueError`` that names the cause and the fix, never turned into a normal-looking loss with
    NaN gradients.

    Without ``num_labels`` the loss is the paper's standalone G-Loss ($\lambda = 1$). With
    ``num_labels`` it owns a linear head on the sentence embedding and returns both parts,
    $\lambda \mathcal{L}_G$ and $(1-\lambda)\mathcal{L}_{CE}$, as a dict (the trainer sums and logs
    them), computed from one forward pass of the encoder. The head is trained with the model but
    is not saved with it.

    Args:
        model: the SentenceTransformer to fine-tune.
        labelled_fraction: $\gamma$, the share of each class in a batch that keeps its label
            (strictly between 0 and 1). The paper uses 0.5 to 0.7.
        sigma: the Gaussian kernel width $\sigma$: a positive number, ``"sqrt_median"`` (the paper's
            rule, $\sqrt{\mathrm{median\ distance}/3}$) or ``"dicm"`` (the closest pair of different
            classes over 3, from the authors' code). A rule is applied to every batch until
            `calibrate_sigma` fixes it from the training set, as the paper does.
        num_labels: number of classes; with it the loss owns a linear classification head (the
            paper's integrated mode) and checks that every label is below it. Without it any
            label ids >= 0 are accepted: the graph numbers the classes present in each batch (and
            memory) 0..k-1, which leaves the loss unchanged, so ids as large as ``2**40`` cost
            nothing. Negative ids are refused.
        graph_weight: $\lambda$, the weight of the graph loss. Defaults to 1 without a head and 0.8
            with one (the paper uses 0.7 to 0.9).
        normalization: ``"row"`` ($D^{-1}W$, default; equals scikit-learn's ``LabelPropagation``) or
            ``"symmetric"`` (the authors' code: $D^{-1/2} W D^{-1/2}$, then column- and
            row-normalised), to reproduce the paper.
        class_weight: ``None``, ``"balanced"`` (per batch, $w_c = n / (k\, n_c)$ as in the authors'
            code) or one finite weight >= 0 per class id, for the graph loss of skewed datasets.
        seed: seed of the masking generator. ``None`` takes ``torch.initial_seed()`` at the first
            step, which the trainer sets from its ``seed`` argument.
        embedding_dimension: size of the sentence embedding, when the model cannot report it.
        propagation: how the hidden nodes are solved: ``"closed_form"`` (the LU solve of the
            paper, exact, $O(|u|^3)$), ``"iterative"`` (``num_iterations`` propagation steps,
            $O(k|u|^2C)$) or ``"auto"`` (default: closed form up to 2048 hidden nodes, iterative
            above; see [`st_gloss.functional.resolve_propagation`][st_gloss.functional.resolve_propagation]).
        graph: ``"dense"`` (fully connected, the paper's graph) or ``"knn"`` (each node linked to
            its ``num_neighbors`` nearest nodes: a sparse graph for batches of thousands).
        num_neighbors: neighbours per node of the ``"knn"`` graph.
        num_iterations: steps of the iterative solver.
        memory_steps: $M$, keep the detached embeddings and labels of the last $M$ training steps
            ([`EmbeddingMemory`][st_gloss.memory.EmbeddingMemory]) and add them to each batch's graph as
            labelled nodes. ``0`` (default) is the paper's per-batch graph. Old embeddings are
            stale: they come from older weights and get no gradient.
        gather_across_devices: with several processes (DDP, ``torchrun``, accelerate), build one
            graph over the batches of all processes
            ([`st_gloss.distributed.gather_with_grad`][st_gloss.distributed.gather_with_grad]),
            so a global batch of $N \times B$ texts is one graph; the label mask is the same on
            every process. A no-op with one process.
        solve_dtype: ``"float64"``, ``"float32"`` or ``None`` (default: float64 on CPU and CUDA,
            float32 on MPS) for the graph and the solve, whatever the dtype of the embeddings.
        unlabelled_weight: $\beta$, weight of a term on the texts without a label (-1): the mean
            entropy of their propagated distributions (entropy minimisation), added to the graph
            loss. ``0`` (default): they carry labels but have no term of their own.

    References:
        - Sharma, Agarwal & Kumar, "G-Loss: Graph-Guided Fine-Tuning of Language Models",
          LoG 2025, https://arxiv.org/abs/2604.25853
        - Zhu, Ghahramani & Lafferty, "Semi-Supervised Learning Using Gaussian Fields and Harmonic
          Functions", ICML 2003.

    Requirements:
        1. Each input is a single text labelled with an integer class, or with -1 for a text
           without a label (semi-supervised: it is a hidden node that carries labels, with no loss
           term of its own).
        2. Each batch holds several examples of each of several classes: a class with one example
           in the batch is never scored, and a batch of one class has nothing to propagate.

    Inputs:
        | Texts | Labels |
        |---|---|
        | single inputs | class (or -1: no label) |

    Recommendations:
        - On several GPUs, ``gather_across_devices=True`` makes the graph as large as the global
          batch; ``memory_steps`` makes it larger still at no encoder cost. Past 2048 hidden
          nodes the default ``propagation="auto"`` switches to the iterative solver.
        - Use ``batch_sampler=st_gloss.ClassBalancedBatchSampler`` in the training arguments, so
          that every batch holds several examples of several classes; with skewed classes use
          ``ClassBalancedBatchSampler.with_options(balanced=True)``.
        - Batches of 32 to 128: the graph of a larger batch sees more of the class structure; the
          loss costs $O(B^2 d + |u|^3)$, small next to the encoder at these sizes.
        - Call `calibrate_sigma` on the training texts before training to fix $\sigma$ as
          the paper does; otherwise the rule is applied per batch.

    Relations:
        - `BatchAllTripletLoss` and
          `BatchHardTripletLoss` use the
          same (text, class) inputs but constrain triplets, not the whole graph.
        - `SoftmaxLoss` trains a
          classification head on pairs; the head of this loss is on single texts.

    Examples:
        ```python
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
        )
        from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss

        model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
        train_dataset = Dataset.from_dict({
            "text": ["A gripping, funny film.", "Dull and far too long.",
                     "I loved every minute.", "A waste of two hours."],
            "label": [1, 0, 1, 0],
        })
        loss = GraphGuidedLoss(model, labelled_fraction=0.7, sigma="sqrt_median")
        loss.calibrate_sigma(train_dataset["text"])  # fix sigma on the training set
        args = SentenceTransformerTrainingArguments(
            output_dir="gloss-model",
            per_device_train_batch_size=64,
            batch_sampler=ClassBalancedBatchSampler,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train_dataset, loss=loss,
        )
        trainer.train()
        ```
    """

    accepts_unlabelled = True
    """Texts labelled -1 (`st_gloss.functional.UNLABELLED`) join the graph as hidden nodes without a
    loss term of their own (semi-supervised G-Loss); they never enter the memory or the CE head."""

    def __init__(
        self,
        model: SentenceTransformer,
        labelled_fraction: float = 0.7,
        sigma: float | str = "sqrt_median",
        num_labels: int | None = None,
        graph_weight: float | None = None,
        normalization: str = "row",
        class_weight: str | Sequence[float] | None = None,
        seed: int | None = None,
        embedding_dimension: int | None = None,
        propagation: str = "auto",
        graph: str = "dense",
        num_neighbors: int = functional.DEFAULT_KNN_NEIGHBORS,
        num_iterations: int = functional.DEFAULT_NUM_ITERATIONS,
        memory_steps: int = 0,
        gather_across_devices: bool = False,
        solve_dtype: str | None = None,
        unlabelled_weight: float = 0.0,
    ) -> None:
        super().__init__(
            model,
            num_labels,
            graph_weight,
            weight_name="graph_weight",
            embedding_dimension=embedding_dimension,
        )
        name = type(self).__name__
        if not (_is_real(labelled_fraction) and 0.0 < float(labelled_fraction) < 1.0):
            raise ValueError(
                f"{name}: labelled_fraction (gamma) must lie strictly between 0 and 1, got "
                f"{labelled_fraction!r}; the paper uses 0.5 to 0.7"
            )
        if isinstance(sigma, str):
            if sigma not in SIGMA_RULES:
                raise ValueError(f"{name}: unknown sigma rule {sigma!r}; use a positive number or one of {SIGMA_RULES}")
        elif _is_real(sigma) and 0.0 < float(sigma) < math.inf:
            sigma = float(sigma)
        else:
            raise ValueError(f"{name}: sigma must be a positive number or one of {SIGMA_RULES}, got {sigma!r}")
        if isinstance(class_weight, str) and class_weight != "balanced":
            raise ValueError(
                f"{name}: class_weight must be None, 'balanced' or one weight per class, got {class_weight!r}"
            )
        if class_weight is not None and not isinstance(class_weight, str):
            class_weight = _class_weight_list(class_weight, name)
            if num_labels is not None and len(class_weight) != num_labels:
                raise ValueError(f"{name}: class_weight has {len(class_weight)} weights for {num_labels} classes")
        if seed is not None:
            if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
                raise ValueError(f"{name}: seed must be an integer or None, got {seed!r}")
            seed = int(seed)

        if not (_is_real(unlabelled_weight) and 0.0 <= float(unlabelled_weight) < math.inf):
            raise ValueError(f"{name}: unlabelled_weight must be a number >= 0, got {unlabelled_weight!r}")
        if solve_dtype not in (None, "float32", "float64"):
            raise ValueError(f"{name}: solve_dtype must be 'float64', 'float32' or None, got {solve_dtype!r}")
        try:
            options = functional._solver_options(normalization, propagation, graph, num_neighbors, num_iterations, None)
            memory = EmbeddingMemory(functional.as_integer(memory_steps, "memory_steps", minimum=0))
        except ValueError as error:
            hint = " (0: no memory)" if "memory_steps" in str(error) else ""
            raise ValueError(f"{name}: {error}{hint}") from None

        self.labelled_fraction = float(labelled_fraction)
        self.sigma = sigma
        self.calibrated_sigma: float | None = None
        self.normalization = normalization
        self.class_weight = class_weight
        self.seed = seed
        self.propagation = propagation
        self.graph = graph
        self.num_neighbors = options["num_neighbors"]
        self.num_iterations = options["num_iterations"]
        self.memory = memory
        self.gather_across_devices = bool(gather_across_devices)
        self.solve_dtype = solve_dtype
        self.unlabelled_weight = float(unlabelled_weight)
        self._solve_dtype = None if solve_dtype is None else getattr(torch, solve_dtype)
        self._generator: torch.Generator | None = None
        self._warned_degenerate = False

    # ------------------------------------------------------------------ forward

    def compute_loss_from_embeddings(
        self, embeddings: Tensor | Sequence[Tensor], labels: Tensor
    ) -> Tensor | dict[str, Tensor]:
        """The loss of one batch from its sentence embeddings ``(B, d)`` and labels ``(B,)``.

        Returns a scalar (standalone) or ``{"graph": lambda * L_G, "ce": (1 - lambda) * L_CE}``.
        With ``gather_across_devices`` the graph holds the batches of all processes (every process
        computes the same graph loss); with ``memory_steps`` it also holds the stored past batches
        as labelled nodes, and a training step (model in training mode, gradients enabled) pushes
        this batch into the memory afterwards.
        """
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        labels, labels_cpu = self.check_labels(embeddings, labels)
        batch, batch_labels, batch_labels_cpu = embeddings, labels, labels_cpu
        if self.gather_across_devices and distributed.is_distributed():
            sizes = distributed.batch_sizes(embeddings)  # exchanged once for both gathers
            batch = distributed.gather_with_grad(embeddings, sizes)
            batch_labels = distributed.gather(labels, sizes)
            batch_labels_cpu = batch_labels.cpu()
        # After the gather, so that a NaN on one process stops every process (not a hang in a collective).
        self.check_embeddings(batch)
        mask = stratified_labelled_mask(batch_labels_cpu, self.labelled_fraction, self._masking_generator(embeddings))
        out_dtype = torch.promote_types(embeddings.dtype, torch.float32)

        nodes, node_labels, node_mask = batch, batch_labels, mask.to(embeddings.device)
        node_labels_cpu = batch_labels_cpu
        memory_embeddings = self.memory.embeddings()
        if memory_embeddings is not None:
            memory_labels = self.memory.labels()
            nodes = torch.cat([batch, memory_embeddings.to(batch.dtype)])
            node_labels = torch.cat([batch_labels, memory_labels.to(batch_labels.device)])
            node_labels_cpu = torch.cat([batch_labels_cpu, memory_labels])
            node_mask = torch.cat([node_mask, node_mask.new_ones(memory_embeddings.shape[0])])

        known = node_labels_cpu >= 0  # False for texts without a label (UNLABELLED, -1)
        present, known_classes = node_labels_cpu[known].unique(return_inverse=True)
        node_classes = torch.full_like(node_labels_cpu, functional.UNLABELLED)
        node_classes[known] = known_classes
        weights = self.class_weight
        if isinstance(weights, list) and self.num_labels is None:
            weights = self._weights_of(present)  # refuses an id without a weight, in every batch
        scored = ~mask & (batch_labels_cpu >= 0)  # hidden nodes with a known label: the loss's terms
        if not bool(scored.any()) or present.numel() < 2:
            self._warn_degenerate()
            graph = (embeddings * 0.0).sum().to(out_dtype)  # zeroed first: a float16 sum can overflow
        else:
            if self.num_labels is None:
                # Ids as they come (2**40 is a valid id) would make one-hot targets of 2**40
                # columns: number the classes present 0..k-1 instead, which leaves the loss unchanged.
                num_classes = present.numel()
                node_labels = node_classes.to(batch_labels.device, non_blocking=True)
                batch_labels = node_labels[: batch.shape[0]]
            else:
                num_classes = self.num_labels
            if weights == "balanced":
                weights = functional.balanced_class_weights(batch_labels[batch_labels >= 0], num_classes)
            graph = functional.graph_loss(
                nodes,
                node_labels,
                node_mask,
                self.sigma_for_batch(batch, batch_labels, nodes, node_labels),
                num_classes=num_classes,
                normalization=self.normalization,
                class_weights=weights,
                propagation=self.propagation,
                graph=self.graph,
                num_neighbors=self.num_neighbors,
                num_iterations=self.num_iterations,
                solve_dtype=self._solve_dtype,
                unlabelled_weight=self.unlabelled_weight,
            )
        if self.memory_steps and torch.is_grad_enabled() and getattr(self.model, "training", True):
            rows = (batch_labels_cpu >= 0).nonzero().squeeze(1)  # the memory's nodes are labelled ones
            if rows.numel() == batch_labels_cpu.numel():
                self.memory.push(batch.detach(), batch_labels_cpu)
            else:
                self.memory.push(batch.detach()[rows.to(batch.device)], batch_labels_cpu[rows])
        return self.with_head("graph", graph, embeddings, labels)

    @property
    def memory_steps(self) -> int:
        """$M$, the number of past batches the memory holds (0: the paper's per-batch graph)."""
        return self.memory.num_steps

    @property
    def graph_weight(self) -> float:
        """$\\lambda$, the weight of the graph loss (1 without a head)."""
        return self.head_weight

    # ------------------------------------------------------------------ sigma

    def sigma_for_batch(
        self, embeddings: Tensor, labels: Tensor, nodes: Tensor | None = None, node_labels: Tensor | None = None
    ) -> Tensor | float:
        """The sigma used for this batch: the calibrated value, the fixed value, or the rule applied to the batch.

        ``nodes`` and ``node_labels`` (the batch and the memory) stand in for a batch of one class
        under the ``"dicm"`` rule, which needs two classes: with a memory such a batch is not degenerate.
        """
        if self.calibrated_sigma is not None:
            return self.calibrated_sigma
        if isinstance(self.sigma, str):
            if self.sigma == "dicm":
                # The rule reads the class of every node: texts without a label (-1) are left out.
                known = labels >= 0
                if nodes is not None and bool((labels[known] != labels[known][0]).sum() == 0):
                    embeddings, labels = nodes, node_labels
                    known = labels >= 0
                embeddings, labels = embeddings[known], labels[known]
            return compute_sigma(self.sigma, embeddings.detach(), labels)
        return float(self.sigma)

    @torch.no_grad()
    def calibrate_sigma(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | None = None,
        *,
        rule: str | None = None,
        max_texts: int = 2048,
        batch_size: int = 64,
        seed: int = 0,
        show_progress_bar: bool | None = None,
    ) -> float:
        """Fix sigma from the training set before training, as the paper does.

        Encodes up to ``max_texts`` texts (a seeded random subset) with the current model and applies
        ``rule`` (default: this loss's rule, or ``"sqrt_median"`` when sigma is a number) to all their
        pairs. The value is then used for every batch and shown in `get_config_dict`.

        Args:
            texts: training texts.
            labels: their labels (needed by the ``"dicm"`` rule only).
            rule: ``"sqrt_median"`` or ``"dicm"``.
            max_texts: how many texts to encode at most.
            batch_size: encoding batch size.
            seed: seed of the subset.
            show_progress_bar: passed to ``model.encode``.

        Returns:
            The calibrated sigma.

        Examples:
            >>> loss = GraphGuidedLoss(model)  # doctest: +SKIP
            >>> loss.calibrate_sigma(train_dataset["text"])  # doctest: +SKIP
            0.61
        """
        rule = rule or (self.sigma if isinstance(self.sigma, str) else "sqrt_median")
        if rule not in SIGMA_RULES:
            raise ValueError(f"{type(self).__name__}: unknown sigma rule {rule!r}; use one of {SIGMA_RULES}")
        texts = list(texts)
        if len(texts) < 2:
            raise ValueError(f"{type(self).__name__}.calibrate_sigma needs at least two texts, got {len(texts)}")
        if rule == "dicm" and labels is None:
            raise ValueError(f"{type(self).__name__}.calibrate_sigma: the 'dicm' rule needs the labels of the texts")
        index = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))[:max_texts].tolist()
        subset = [texts[i] for i in index]
        embeddings = self.model.encode(
            subset, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=show_progress_bar
        )
        subset_labels = None if labels is None else torch.as_tensor([int(labels[i]) for i in index])
        if rule == "dicm" and subset_labels is not None:  # the rule needs classes: texts without a label out
            known = subset_labels >= 0
            embeddings, subset_labels = embeddings[known.to(embeddings.device)], subset_labels[known]
        sigma = float(compute_sigma(rule, embeddings.float(), subset_labels))
        self.calibrated_sigma = sigma
        self.sigma = rule
        return sigma

    # ------------------------------------------------------------------ helpers

    def _weights_of(self, present: Tensor) -> list[float]:
        """The ``class_weight`` of each label id in ``present`` (sorted ids), refusing ids it has no weight for."""
        high = int(present[-1])
        if high >= len(self.class_weight):
            raise ValueError(
                f"{type(self).__name__}: class_weight has {len(self.class_weight)} weights, none for label {high}; "
                "give one weight per class id (and num_labels to check them when the loss is built)"
            )
        return [self.class_weight[int(i)] for i in present]

    def _masking_generator(self, embeddings: Tensor) -> torch.Generator:
        if self._generator is None:
            seed = self.seed if self.seed is not None else torch.initial_seed()
            if self.gather_across_devices:
                # Every process must draw the same mask over the gathered batch.
                seed = distributed.shared_seed(seed, embeddings.device)
            self._generator = torch.Generator().manual_seed(int(seed) % (2**63))
        return self._generator

    def _warn_degenerate(self) -> None:
        if not self._warned_degenerate:
            warnings.warn(DEGENERATE_BATCH_WARNING, UserWarning, stacklevel=3)
            self._warned_degenerate = True

    # ------------------------------------------------------------------ model card

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's parameters, JSON-safe, for the model card."""
        return {
            "labelled_fraction": self.labelled_fraction,
            "sigma": self.sigma,
            "calibrated_sigma": self.calibrated_sigma,
            "num_labels": self.num_labels,
            "graph_weight": self.graph_weight,
            "normalization": self.normalization,
            "class_weight": self.class_weight,
            "seed": self.seed,
            "propagation": self.propagation,
            "graph": self.graph,
            "num_neighbors": self.num_neighbors,
            "num_iterations": self.num_iterations,
            "memory_steps": self.memory_steps,
            "gather_across_devices": self.gather_across_devices,
            "solve_dtype": self.solve_dtype,
            "unlabelled_weight": self.unlabelled_weight,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the G-Loss paper, shown in the model card."""
        return CITATION
