"""The `shiftinv` command line; one module per subcommand, each with `add_parser(sub)`."""

import argparse
import os
import sys

from keras_shiftinv._backend import exit_if_cli_cannot_run

exit_if_cli_cannot_run()  # one line and exit 2, before the subcommands import Keras and its backend

from keras_shiftinv.cli import evaluate
from keras_shiftinv.cli import export
from keras_shiftinv.cli import finetune
from keras_shiftinv.cli import predict
from keras_shiftinv.cli import segment
from keras_shiftinv.cli import table1
from keras_shiftinv.cli import train
from keras_shiftinv.errors import UsageError

COMMANDS = (train, evaluate, table1, export, segment, finetune, predict)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="shiftinv", description="Shift-robust CNNs: train, evaluate, table1, export, segment."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UsageError as e:
        print(f"shiftinv {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
