"""Run the article's own code, unchanged in substance, as the baseline for the seed preset.

The article's code is not copied into this repository: this script extracts it at run time
from the article text (``../shared/seed/cnn-from-scratch-article.txt``), repairs only what
stops it from running as Python (typographic quotes, the placeholder data path, and the
triple-quoted notes that break the loop's indentation), and runs it as a whole process.

    python benchmarks/article_baseline.py [--article PATH] [--data PATH] [--print-code]

It prints the article's accuracy line and the wall time of the whole process.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extract_code(article_text: str, data_path: str) -> str:
    """Return the article's program as runnable Python source."""
    start = article_text.index("# this code is a bare-bones walk through")
    code = article_text[start:]
    code = code.replace("\u201c", '"').replace("\u201d", '"').replace("\u00a0", " ")
    code = re.sub(r'mnistlocation = "[^"]*"', f"mnistlocation = {data_path!r}", code)
    # The article's notes are triple-quoted strings at column 0 inside the training loop,
    # which Python reads as the end of the loop body; they are comments, so drop them.
    code = re.sub(r"\n'''\n.*?\n'''\n", "\n", code, flags=re.S)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--article", default=str(ROOT.parent / "shared/seed/cnn-from-scratch-article.txt"))
    parser.add_argument("--data", default=str(ROOT / "src/nanocnn/data/mnist.npz"))
    parser.add_argument("--print-code", action="store_true", help="print the extracted program and exit")
    args = parser.parse_args()
    if not Path(args.article).is_file():
        print(
            f"error: the article text is not at {args.article}: this script runs the article's own code, "
            f"extracted from it; pass --article PATH",
            file=sys.stderr,
        )
        return 2
    code = extract_code(Path(args.article).read_text(encoding="utf-8"), args.data)
    if args.print_code:
        print(code)
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, f.name], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    Path(f.name).unlink()
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    print(f"article accuracy: {float(result.stdout.split()[-1]):.4f}")
    print(f"article wall time: {seconds:.2f} s (whole process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
