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
from keras_shiftinv.cli._errors import as_flags
from keras_shiftinv.cli._errors import os_error_line
from keras_shiftinv.cli._errors import print_os_error
from keras_shiftinv.errors import UsageError

COMMANDS = (train, evaluate, table1, export, segment, finetune, predict)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `shiftinv <command>: error: ...` and a pointer to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(
        prog="shiftinv", description="Shift-robust CNNs: train, evaluate, table1, export, segment."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    quiet_start_up()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UsageError as e:
        print(f"shiftinv {args.command}: error: {as_flags(e)}", file=sys.stderr)  # Python arguments as flags
        return 2
    except Exception as e:  # disk full, read-only, no permission: one line (cli/_errors.py)
        line = os_error_line(e)
        if line is None:
            raise
        print_os_error(args.command, line)
        return 2
    return 0


def quiet_start_up():
    """No TensorFlow start-up lines (see `keras_shiftinv._startup`); `SHIFTINV_VERBOSE=1` keeps them."""
    from keras_shiftinv import _startup

    _startup.quiet_tensorflow_import()


if __name__ == "__main__":
    sys.exit(main())
