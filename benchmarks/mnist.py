"""10,000 real MNIST handwritten digits (28x28 greyscale) as an image folder (components/data/mnist.py
says where they come from).

    .venv/bin/python benchmarks/mnist.py /tmp/mnist [--count 10000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.data.mnist import write_mnist  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", type=Path)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    print(write_mnist(arguments.destination, arguments.count, arguments.seed))


if __name__ == "__main__":
    main()
