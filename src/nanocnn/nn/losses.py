"""Softmax cross-entropy, fused so that it is stable for any finite logits."""

from __future__ import annotations

import numpy as np

from ..validation import UserError, check_labels


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """logits : (N, K) -> log probabilities (N, K), via log-sum-exp after subtracting each row's max."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """logits : (N, K) -> probabilities (N, K); rows sum to 1."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits : (N, K) floating; labels : (N,) ints in [0, K).
    Returns (loss, dlogits): loss a Python float, the batch mean of -log p[n, labels[n]];
    dlogits (N, K) in logits' dtype, equal to (softmax(logits) - onehot(labels)) / N.
    """
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        got = f"shape {logits.shape}, dtype {logits.dtype}" if isinstance(logits, np.ndarray) else type(logits).__name__
        raise UserError(f"softmax_cross_entropy: logits must be a floating array (N, K), got {got}")
    N, K = logits.shape
    labels = check_labels(labels, N, K)
    logp = log_softmax(logits)  # (N, K)
    rows = np.arange(N)
    loss = -logp[rows, labels].mean(dtype=np.float64) if N else 0.0
    dlogits = np.exp(logp)  # softmax, (N, K)
    dlogits[rows, labels] -= 1
    dlogits /= max(N, 1)
    return float(loss) + 0.0, dlogits  # + 0.0: a loss of -0.0 (every p = 1) reads 0.0
