"""Bayesian Knowledge Tracing: EM fitting over every sequence of a skill at once (numpy),
prediction and the online update of one answer.

Model (Corbett & Anderson 1995), per skill: a student either knows it (L) or not; before
the first answer P(L) = ``prior``; after each opportunity an unknown skill becomes known
with probability ``learn`` (no forgetting); a known skill is answered right with
probability 1 − ``slip``, an unknown one with probability ``guess``.

The fit is Baum–Welch: scaled forward–backward over all students' sequences together.
Sequences are sorted longest first, so at step t the sequences still running are the
first n_t rows and every array operation works on a plain slice (no padding masks).
Several starts (``restarts``) guard against local optima; the one with the highest
log-likelihood wins.  Guess and slip are capped below 0.5 so the two states cannot swap
meaning (the usual identifiability constraint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GUESS = 0.45
MAX_SLIP = 0.45
EPS = 1e-6


@dataclass(frozen=True)
class Params:
    prior: float
    learn: float
    guess: float
    slip: float

    def as_dict(self) -> dict:
        return {"prior": self.prior, "learn": self.learn, "guess": self.guess, "slip": self.slip}


DEFAULT = Params(prior=0.3, learn=0.12, guess=0.2, slip=0.1)


@dataclass
class Sequences:
    """Answers of one skill, sorted longest sequence first: ``matrix[t, :active[t]]`` are
    the t-th answers (0/1) of the students still answering at step t."""

    matrix: np.ndarray  # (T, N) float64, zero-padded
    active: np.ndarray  # (T,) int
    lengths: np.ndarray  # (N,) int, descending
    order: np.ndarray  # (N,) index into the caller's student list

    @classmethod
    def build(cls, sequences: list[np.ndarray]) -> Sequences:
        """From one array of 0/1 answers per student (in time order)."""
        lengths = [len(s) for s in sequences]
        students = np.repeat(np.arange(len(sequences)), lengths)
        correct = np.concatenate(sequences) if sequences else np.zeros(0)
        return cls.from_columns(students, correct)[0]

    @classmethod
    def from_columns(
        cls, students: np.ndarray, correct: np.ndarray
    ) -> tuple[Sequences, np.ndarray]:
        """From parallel arrays already ordered by (student, time): the sequences and the
        distinct students in the caller's order."""
        if len(students) == 0:
            return cls(
                np.zeros((0, 0)),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
            ), students
        boundaries = np.flatnonzero(np.diff(students)) + 1
        starts = np.concatenate(([0], boundaries))
        ends = np.concatenate((boundaries, [len(students)]))
        lengths = ends - starts
        order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[order]
        longest = int(sorted_lengths[0])
        n = len(starts)
        matrix = np.zeros((longest, n), dtype=np.float64)
        # Position of every answer inside its sequence, then one scatter into the matrix.
        position = np.arange(len(students)) - np.repeat(starts, lengths)
        column_of_sequence = np.empty(n, dtype=np.int64)
        column_of_sequence[order] = np.arange(n)
        columns = np.repeat(column_of_sequence, lengths)
        matrix[position, columns] = correct
        counts = np.bincount(sorted_lengths, minlength=longest + 1)
        # active[t] = number of sequences longer than t
        active = n - np.cumsum(counts)[:longest]
        return cls(matrix, active.astype(np.int64), sorted_lengths, order), students[starts]


def _emissions(obs: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """P(observation | unknown), P(observation | known) for a vector of 0/1 answers."""
    e_unknown = np.where(obs > 0.5, p.guess, 1.0 - p.guess)
    e_known = np.where(obs > 0.5, 1.0 - p.slip, p.slip)
    return e_unknown, e_known


def forward(seqs: Sequences, p: Params) -> tuple[list, list, float]:
    """Filtered P(known) after each answer, the predictive P(known) before it, and the
    log-likelihood."""
    filtered, predictive = [], []
    loglik = 0.0
    n0 = int(seqs.active[0]) if len(seqs.active) else 0
    before = np.full(n0, p.prior)
    for t in range(len(seqs.active)):
        n = int(seqs.active[t])
        before = before[:n]
        e0, e1 = _emissions(seqs.matrix[t, :n], p)
        known = before * e1
        scale = known + (1.0 - before) * e0
        loglik += float(np.log(scale).sum())
        post = known / scale
        predictive.append(before)
        filtered.append(post)
        before = post + (1.0 - post) * p.learn
    return filtered, predictive, loglik


def _em_step(seqs: Sequences, p: Params) -> tuple[Params, float]:
    steps = len(seqs.active)
    alphas, scales = [], []
    n0 = int(seqs.active[0])
    a_known_prev = None
    a_unknown_prev = None
    loglik = 0.0
    for t in range(steps):
        n = int(seqs.active[t])
        e0, e1 = _emissions(seqs.matrix[t, :n], p)
        if t == 0:
            u = np.full(n0, 1.0 - p.prior) * e0
            k = np.full(n0, p.prior) * e1
        else:
            u_prev, k_prev = a_unknown_prev[:n], a_known_prev[:n]
            u = u_prev * (1.0 - p.learn) * e0
            k = (u_prev * p.learn + k_prev) * e1
        c = u + k
        loglik += float(np.log(c).sum())
        u, k = u / c, k / c
        alphas.append((u, k))
        scales.append(c)
        a_unknown_prev, a_known_prev = u, k
    # Backward pass with the same scales; accumulate expected counts on the fly.
    b_u = np.ones(int(seqs.active[-1]))
    b_k = np.ones(int(seqs.active[-1]))
    learn_num = learn_den = 0.0
    guess_num = guess_den = slip_num = slip_den = 0.0
    prior_num = 0.0
    for t in range(steps - 1, -1, -1):
        n = int(seqs.active[t])
        if len(b_u) < n:  # sequences that ended at t: their beta is 1
            b_u = np.concatenate((b_u, np.ones(n - len(b_u))))
            b_k = np.concatenate((b_k, np.ones(n - len(b_k))))
        u, k = alphas[t]
        g_u, g_k = u * b_u, k * b_k
        norm = g_u + g_k
        g_u, g_k = g_u / norm, g_k / norm
        obs = seqs.matrix[t, :n]
        guess_num += float((g_u * obs).sum())
        guess_den += float(g_u.sum())
        slip_num += float((g_k * (1.0 - obs)).sum())
        slip_den += float(g_k.sum())
        if t == 0:
            prior_num = float(g_k.sum())
            break
        # Transitions t-1 -> t for the n sequences alive at t.
        e0, e1 = _emissions(obs, p)
        u_prev, _k_prev = alphas[t - 1]
        u_prev = u_prev[:n]
        c = scales[t]
        xi_learn = u_prev * p.learn * e1 * b_k / c
        learn_num += float(xi_learn.sum())
        # P(unknown at t-1 | all) for these n sequences
        xi_stay = u_prev * (1.0 - p.learn) * e0 * b_u / c
        learn_den += float((xi_learn + xi_stay).sum())
        # beta at t-1 (for the sequences alive at t; the others get 1 above)
        nb_u = (1.0 - p.learn) * e0 * b_u + p.learn * e1 * b_k
        nb_k = e1 * b_k
        b_u, b_k = nb_u / c, nb_k / c
    n_seq = n0
    new = Params(
        prior=float(np.clip(prior_num / max(n_seq, 1), EPS, 1 - EPS)),
        learn=float(np.clip(learn_num / learn_den, EPS, 1 - EPS)) if learn_den > 0 else p.learn,
        guess=float(np.clip(guess_num / guess_den, EPS, MAX_GUESS)) if guess_den > 0 else p.guess,
        slip=float(np.clip(slip_num / slip_den, EPS, MAX_SLIP)) if slip_den > 0 else p.slip,
    )
    return new, loglik


def fit(
    seqs: Sequences,
    restarts: int = 3,
    max_iter: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> tuple[Params, float]:
    """EM fit of one skill; returns the best parameters and their log-likelihood."""
    if seqs.matrix.size == 0:
        return DEFAULT, 0.0
    rng = np.random.default_rng(seed)
    starts = [DEFAULT] + [
        Params(
            prior=float(rng.uniform(0.05, 0.9)),
            learn=float(rng.uniform(0.01, 0.4)),
            guess=float(rng.uniform(0.05, 0.4)),
            slip=float(rng.uniform(0.02, 0.3)),
        )
        for _ in range(max(0, restarts - 1))
    ]
    best, best_ll = DEFAULT, -np.inf
    for start in starts:
        p, previous = start, -np.inf
        for _ in range(max_iter):
            p_next, ll = _em_step(seqs, p)
            improved = ll - previous
            p, previous = p_next, ll
            if improved < tol * max(1.0, abs(ll)) * 1e-2:
                break
        _f, _pr, ll = forward(seqs, p)
        if ll > best_ll:
            best, best_ll = p, ll
    return best, best_ll


def predict_correct(before_known: np.ndarray | float, p: Params):
    """P(next answer right) given P(known) before it."""
    return before_known * (1.0 - p.slip) + (1.0 - before_known) * p.guess


def update(known_before: float, correct: bool, p: Params) -> float:
    """Online update: P(known) before the next opportunity, after seeing one answer."""
    if correct:
        right = known_before * (1.0 - p.slip)
        post = right / (right + (1.0 - known_before) * p.guess)
    else:
        wrong = known_before * p.slip
        post = wrong / (wrong + (1.0 - known_before) * (1.0 - p.guess))
    return post + (1.0 - post) * p.learn


def final_mastery(seqs: Sequences, p: Params) -> np.ndarray:
    """P(known) before the next opportunity, for each sequence in the caller's order."""
    filtered, _pred, _ll = forward(seqs, p)
    out = np.empty(len(seqs.lengths))
    for t, post in enumerate(filtered):
        # sequences of length t+1 end here: rows active[t+1]..active[t]
        n = len(post)
        n_next = int(seqs.active[t + 1]) if t + 1 < len(seqs.active) else 0
        ending = post[n_next:n]
        out[n_next:n] = ending + (1.0 - ending) * p.learn
    result = np.empty_like(out)
    result[seqs.order] = out
    return result
