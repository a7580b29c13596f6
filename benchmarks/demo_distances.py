"""Mean representation distance per demo category under a backbone (default: the embedded MiniLM).

    python benchmarks/demo_distances.py [--backbone minilm] [--size 1000]

Prints a Markdown table (mean, median, 10th/90th percentile of ‖h_c − h_r‖ per category) and the share of
pairs whose two answers map to the same h (distance < 1e-6). The README quotes its output.
"""

import argparse
import time

import pandas as pd

from normbt_viz.model.backbones import load_backbone
from normbt_viz.data.sources import load_pairs
from normbt_viz.model.features import cached_representations, tokenize_pairs
from normbt_viz.model.distance import pair_distance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    started = time.time()
    pairs = load_pairs("demo", demo_size=args.size).pairs
    backbone = load_backbone(args.backbone)
    tokenized = tokenize_pairs(backbone, pairs, args.max_length)
    h_chosen, h_rejected, hit = cached_representations(backbone, pairs, tokenized, args.max_length)
    distance = pair_distance(h_chosen, h_rejected).numpy()
    table = pd.DataFrame({"category": pairs["category"], "distance": distance}).groupby("category")["distance"]
    summary = pd.DataFrame({
        "pairs": table.size(),
        "mean": table.mean(),
        "median": table.median(),
        "p10": table.quantile(0.1),
        "p90": table.quantile(0.9),
        "same_h": table.apply(lambda d: (d < 1e-6).mean()),
    }).sort_values("mean")
    print(f"backbone {args.backbone} (pooling {backbone.pooling}), {len(pairs)} demo pairs, max_length {args.max_length}, "
          f"truncated {tokenized.n_truncated}, cache {'hit' if hit else 'miss'}, {time.time() - started:.1f} s")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
