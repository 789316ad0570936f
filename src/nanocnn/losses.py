"""Softmax cross-entropy, fused so that it is stable for any finite logits."""
import numpy as np


def check_labels(labels, n, num_classes):
    """labels must be n integers in [0, num_classes); raises ValueError naming the bad value."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"softmax_cross_entropy: labels must have shape ({n},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"softmax_cross_entropy: labels must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"softmax_cross_entropy: labels must be in [0, {num_classes}), got {bad}")
    return labels


def log_softmax(logits):
    """logits : (N, K) -> log probabilities (N, K), via log-sum-exp after subtracting each row's max."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits):
    """logits : (N, K) -> probabilities (N, K); rows sum to 1."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits : (N, K) floating; labels : (N,) ints in [0, K).
    Returns (loss, dlogits): loss a Python float, the batch mean of -log p[n, labels[n]];
    dlogits (N, K) in logits' dtype, equal to (softmax(logits) - onehot(labels)) / N.
    """
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        got = f"shape {logits.shape}, dtype {logits.dtype}" if isinstance(logits, np.ndarray) else type(logits).__name__
        raise ValueError(f"softmax_cross_entropy: logits must be a floating array (N, K), got {got}")
    N, K = logits.shape
    labels = check_labels(labels, N, K)
    logp = log_softmax(logits)                                      # (N, K)
    rows = np.arange(N)
    loss = -logp[rows, labels].mean(dtype=np.float64) if N else 0.0
    dlogits = np.exp(logp)                                          # softmax, (N, K)
    dlogits[rows, labels] -= 1
    dlogits /= max(N, 1)
    return float(loss), dlogits
