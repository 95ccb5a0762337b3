"""Sub-commands added by feature packages: each module defines ``register(subparsers)``; the
parser sets ``func(args, settings) -> int`` on its sub-parser."""
