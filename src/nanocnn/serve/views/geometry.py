"""The playground of the article's formula: where a kernel's windows fall along one axis of an input, and how
many there are, OH = (H + 2P - K) // S + 1, computed by nanocnn's own functions; when no window fits, why."""

from ...nn.functional import conv_output_size
from ...validation import UserError, check_kernel_fits


def geometry(size, kernel, stride, padding):
    padded = size + 2 * padding
    try:
        check_kernel_fits("Conv2d", (size, size), (kernel, kernel), (padding, padding))
        fits, reason = True, None
    except UserError as e:
        fits, reason = False, str(e)
    output = conv_output_size(size, kernel, stride, padding) if fits else 0
    starts = [o * stride for o in range(output)]  # in padded coordinates: 0 is the first row of padding
    covered = starts[-1] + kernel if fits else 0
    return {
        "size": size,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "padded": padded,
        "fits": fits,
        "output": output,
        "formula": f"({size} + 2·{padding} − {kernel}) // {stride} + 1 = {output}" if fits else None,
        "starts": starts,
        "unused": padded - covered if fits else None,  # rows at the end no window reaches (the stride skips them)
        "reason": reason,
    }
