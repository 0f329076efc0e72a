"""`python -m data_pipeline`: the command line (see data_pipeline.cli.commands)."""
import sys

from data_pipeline.cli import main

sys.exit(main())
