"""Root of the ``jaas`` command: sub-commands are imported only when used.

Each sub-command lives in its own module as a click command or group named like the
module (``jaas.cli.sim:sim``). A command whose module is not part of this build yet is
simply not listed, so ``jaas --help`` always shows what works.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from jaas._version import __version__
from jaas.cli._errors import _debug, _set_debug, describe

# name -> (module, attribute, one-line help shown by ``jaas --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "sim": ("jaas.cli.sim", "sim", "Simulate a detector run: RAW files or index-level events."),
    "raw": ("jaas.cli.raw", "raw", "Inspect, verify and salvage RAW files."),
    "convert": ("jaas.cli.process", "convert", "Convert RAW files to RTRAW (ROOT)."),
    "reco": ("jaas.cli.reco", "reco", "Reconstruct RTRAW files into ESD (ROOT)."),
    "index": ("jaas.cli.process", "index", "Build index files (Parquet) from ESD files."),
    "store": ("jaas.cli.store", "store", "Event catalog: add, list, show and verify files."),
    "db": ("jaas.cli.db", "db", "Database schema: show the revision, upgrade in place."),
    "ibd": ("jaas.cli.analysis", "ibd", "Run the standard IBD selection on a dataset."),
    "query": ("jaas.cli.analysis", "query", "Run a selection or correlation query on a dataset."),
    "kup": ("jaas.cli.kup", "kup", "Keep-up production: start, feed, watch and stop the pipeline."),
    "cluster": ("jaas.cli.cluster", "cluster", "Start or stop a local Dask cluster for analyses."),
    "worker": ("jaas.cli.worker", "worker", "Start a Dask worker that owns a list of files."),
    "transfer": ("jaas.cli.transfer", "transfer", "Sites, replication rules and transfers."),
    "demo": ("jaas.cli.demo", "demo", "Simulate a run and analyse it end to end."),
    "portal": ("jaas.cli.portal", "portal", "Operator web portal (API, live dashboard), tokens."),
    "lab": ("jaas.cli.lab", "lab", "Start JupyterLab with a dataset open in every kernel."),
    "hub": ("jaas.cli.hub", "hub", "Multi-user JupyterHub sharing one jaas Dask cluster."),
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _, _) in COMMANDS.items() if _available(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        if not _available(module_name):
            return None
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jaas")
@click.option(
    "--debug",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_set_debug,
    help="Show the full traceback of an error (also JAAS_DEBUG=1).",
)
@click.option(
    "--catalog",
    "catalog_url",
    metavar="URL",
    help="Catalog URL or SQLite path for the commands that take --catalog.",
)
@click.pass_context
def cli(ctx: click.Context, catalog_url: str | None) -> None:
    """jaas: keep-up production, event store and time-correlation analysis for a
    JUNO-like neutrino detector.

    Run `jaas COMMAND --help` for the options of each command.
    """
    if catalog_url is not None:
        ctx.meta["jaas.catalog"] = catalog_url


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``jaas`` script, for every command at once.

    Any error a command raises (jaas's own, OS errors such as an unwritable output path,
    database errors, anything unexpected) prints as one line ``error: ...`` naming what
    was wrong and how to recover, exit code 1. ``jaas --debug`` or ``JAAS_DEBUG=1`` shows
    the traceback instead. (Tests that call ``cli`` through click's CliRunner still see
    the original exception in ``result.exception``.)
    """
    _set_debug(None, None, False)  # type: ignore[arg-type]
    try:
        return cli.main(args=argv, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:  # output piped into `head` and the like
        raise SystemExit(1) from None
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        if _debug():
            raise
        click.echo(f"error: {describe(exc)}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
