"""A third-party plugin: a quantile clusterer and a `seglens hello` command."""
import click
import numpy as np

from seglens import hookimpl
from seglens.model import ClusterResult


class QuantileClusterer:
    """Splits users into `k` equal-sized groups along the first reduced dimension."""

    def __init__(self, options):
        self.k = int(options.get("k", 3)) if options.get("k") != "auto" else 3

    def cluster(self, points, seed):
        ranks = np.argsort(np.argsort(points[:, 0]))
        labels = (ranks * self.k // len(points)).astype(np.int64)
        return ClusterResult(labels, np.ones(len(points)), {}, {"k": self.k})


@hookimpl
def register_clusterers(register):
    register("quantile", QuantileClusterer, description="equal-sized slices of the first dimension")


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        """Say hello (proves plugins can add commands)."""
        click.echo(f"hello {name} from the sample plugin")
