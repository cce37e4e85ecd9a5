"""``dlautoml knowledge``: seeding the knowledge base of the tracking server from a corpus of public
datasets (flows/knowledge.py), what it holds, and moving it between servers as a file (the meta-model
of the training stage reads it; see components/search/knowledge.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from components.errors import UserInputError

knowledge_app = typer.Typer(
    help="The knowledge base: every finished search on the tracking server, read by the meta-model of later searches.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
PARAMS = typer.Option(Path("params.yaml"), help="parameters file (its tracking section names the server)")


def _point_at_server(params: Path) -> Path:
    """Points MLflow at the server params.yaml names; returns the artifact folder for new experiments."""
    import mlflow

    from components.config import load_params

    tracking = load_params(params).tracking
    mlflow.set_tracking_uri(tracking.uri(Path(".")))
    return Path(tracking.artifact_folder).resolve()


@knowledge_app.command()
def build(
    datasets: list[str] = typer.Argument(None, help="corpus datasets to search [default: all of them]", show_default=False),
    minutes: float = typer.Option(0.5, min=0.1, help="training budget of each dataset's search (training.max_minutes)"),
    folder: Path = typer.Option(Path(".dlautoml/corpus"), help="where the datasets' workspaces go (each replaced)"),
    params: Path = PARAMS,
) -> None:
    """Seed the knowledge base: search each dataset of the corpus (tables, sequences and images that the
    package registries carry) on this tracking server. Each search starts cold; `knowledge show` lists them."""
    from components.data.corpus import CORPUS, corpus_dataset
    from dlautoml.cli import _quiet_services

    _quiet_services()
    names = datasets or list(CORPUS)
    try:
        for name in names:  # every name checked before a flow run starts
            corpus_dataset(name)
        from flows.knowledge import knowledge_build

        workspaces = knowledge_build(names, str(folder), params_file=str(params), minutes=minutes)
    except UserInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    except Exception as error:  # a search failed: the flow has logged which and why
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"searched {len(workspaces)} dataset(s) into the knowledge base; their workspaces are under {folder}")


@knowledge_app.command()
def show(params: Path = PARAMS) -> None:
    """List the finished searches: dataset, modality, task, family, trials, best validation score, landmarker, samples."""
    from components.search.knowledge_files import knowledge_table, read_knowledge

    _point_at_server(params)
    typer.echo(knowledge_table(read_knowledge()))


@knowledge_app.command("export")
def export_(file: Path = typer.Argument(..., help="JSON file to write"), params: Path = PARAMS) -> None:
    """Write every finished search (meta-features and scored configurations) to a file."""
    from components.search.knowledge_files import export_knowledge

    _point_at_server(params)
    typer.echo(f"exported {export_knowledge(file)} search(es) to {file}")


@knowledge_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="a file written by `dlautoml knowledge export`"), params: Path = PARAMS
) -> None:
    """Add the searches of an exported file that this tracking server does not hold yet."""
    from components.search.knowledge_files import IMPORT_EXPERIMENT, import_knowledge

    artifacts = _point_at_server(params)
    try:
        added, held = import_knowledge(file, artifacts)
    except UserInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"imported {added} search(es) into experiment {IMPORT_EXPERIMENT}; {held} already held")
