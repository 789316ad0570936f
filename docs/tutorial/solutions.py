"""Solutions to the tutorial's exercises, for teachers (and for the tests of nanocnn.exercises).

Each is written the way a learner would write it after reading the notebook: plain loops where the notebook
uses loops, NumPy where it is the clearer way to say the same thing."""

import numpy as np


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def conv2d(x, weight, bias, stride, padding):
    N, C, H, W = x.shape
    F, _, K, _ = weight.shape
    OH, OW = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((N, F, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = xp[:, :, i * stride : i * stride + K, j * stride : j * stride + K]  # (N, C, K, K)
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", window, weight) + bias
    return out


def conv2d_backward(x, weight, dout, stride, padding):
    N, C, H, W = x.shape
    F, _, K, _ = weight.shape
    OH, OW = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp, dweight = np.zeros_like(xp), np.zeros_like(weight)
    for i in range(OH):
        for j in range(OW):
            rows, cols = slice(i * stride, i * stride + K), slice(j * stride, j * stride + K)
            dweight += np.einsum("nf,nckl->fckl", dout[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nf,fckl->nckl", dout[:, :, i, j], weight)
    dbias = dout.sum(axis=(0, 2, 3))
    return dxp[:, :, padding : padding + H, padding : padding + W], dweight, dbias


def maxpool2d_backward(x, dout, kernel, stride):
    dx = np.zeros_like(x)
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
                    a, b = np.unravel_index(np.argmax(window), window.shape)  # the first maximum
                    dx[n, c, i * stride + a, j * stride + b] += dout[n, c, i, j]
    return dx


def softmax_cross_entropy(logits, labels):
    N = len(labels)
    z = logits - logits.max(axis=1, keepdims=True)  # the largest becomes 0: exp never overflows
    log_sum = np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p = z - log_sum
    loss = -log_p[np.arange(N), labels].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), labels] -= 1
    return loss, dlogits / N


def training_step(model, optimizer, images, labels):
    import nanocnn as nc

    loss, dlogits = nc.softmax_cross_entropy(model(images), labels)
    model.backward(dlogits, input_grad=False)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def batch_norm(x, gamma, beta, eps):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)  # biased: divided by N * H * W
    xhat = (x - mean) / np.sqrt(var + eps)
    return xhat * gamma[None, :, None, None] + beta[None, :, None, None]


def prelu_class():
    """The PReLU layer of notebook 5 (a function, so that importing this file needs no nanocnn)."""
    import nanocnn as nc

    class PReLU(nc.Module):
        """out = x where x > 0, weight[c] * x elsewhere. x : (N, C, H, W) -> (N, C, H, W)."""

        def __init__(self, channels, dtype=np.float32):
            self.channels = channels
            self.weight = nc.Parameter(np.full(channels, 0.25, dtype=dtype))
            self._x = None

        def forward(self, x):
            self._x = x if self.grad_enabled else None
            return np.where(x > 0, x, self.weight.data[:, None, None] * x)

        def backward(self, grad_out, input_grad=True):
            negative = self._x <= 0
            self.weight.grad += (grad_out * self._x * negative).sum(axis=(0, 2, 3))
            return np.where(negative, self.weight.data[:, None, None] * grad_out, grad_out) if input_grad else None

    return PReLU
